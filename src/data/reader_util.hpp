// Helpers shared by the dataset readers (idx.cpp, cifar.cpp, image_folder.cpp).
#pragma once

#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "ember/error.hpp"

namespace ember::data::reader_detail {

/// "[op] 'path'", the prefix of every reader error.
inline std::string where(const char* op, const std::string& path) {
  return detail::str_cat("[", op, "] '", path, "'");
}

/// IOError unless `path` names a regular file (symbolic links followed).
inline void require_regular_file(const std::string& path, const char* op) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  EMBER_CHECK(std::filesystem::exists(st), IOError, where(op, path), ": no such file");
  EMBER_CHECK(!std::filesystem::is_directory(st), IOError, where(op, path),
              ": is a directory, expected a file");
  EMBER_CHECK(std::filesystem::is_regular_file(st), IOError, where(op, path),
              ": not a regular file");
}

/// The first existing regular file among `candidates`; IOError listing them all when none is.
inline std::string first_existing(const std::vector<std::string>& candidates, const char* op,
                                  const char* what) {
  std::string tried;
  for (const std::string& c : candidates) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c, ec)) return c;
    tried += detail::str_cat(tried.empty() ? "" : ", ", "'", c, "'");
  }
  throw IOError(detail::str_cat("[", op, "] ", what, " not found; tried ", tried));
}

/// The non-empty lines of a small text file (trailing whitespace and '\r' removed).
inline std::vector<std::string> read_lines(const std::string& path, const char* op) {
  require_regular_file(path, op);
  std::ifstream in(path);
  EMBER_CHECK(in.good(), IOError, where(op, path), ": cannot open: ", std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  EMBER_CHECK(!in.bad(), IOError, where(op, path), ": read error: ", std::strerror(errno));
  return lines;
}

}  // namespace ember::data::reader_detail
