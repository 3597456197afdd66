// Whole-file text reads and writes, and TokenDataset (next-token windows over a token stream).
#include "ember/data/text.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::data {

// ---- files ----

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  EMBER_CHECK(!std::filesystem::is_directory(path, ec), IOError, "[read_text_file] '", path,
              "' is a directory");
  std::ifstream f(path, std::ios::binary);
  EMBER_CHECK(f.is_open(), IOError, "[read_text_file] cannot open '", path,
              "': ", std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  while (f.read(buf, sizeof(buf)) || f.gcount() > 0) {
    out.append(buf, static_cast<size_t>(f.gcount()));
  }
  EMBER_CHECK(!f.bad(), IOError, "[read_text_file] reading '", path, "' failed");
  return out;
}

void write_text_file(const std::string& path, std::string_view contents) {
  const std::string tmp = detail::str_cat(path, ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    EMBER_CHECK(f.is_open(), IOError, "[write_text_file] cannot create '", tmp,
                "': ", std::strerror(errno));
    f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    f.close();
    if (f.fail()) {
      std::remove(tmp.c_str());
      throw IOError(detail::str_cat("[write_text_file] writing '", tmp, "' failed"));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw IOError(detail::str_cat("[write_text_file] cannot rename '", tmp, "' to '", path,
                                  "': ", std::strerror(err)));
  }
}

// ---- TokenDataset ----

TokenDataset::TokenDataset(Tensor tokens, int64_t block_size, int64_t stride)
    : block_size_(block_size), stride_(stride) {
  EMBER_CHECK(tokens.defined(), ValueError, "[TokenDataset] the token tensor is undefined");
  EMBER_CHECK(tokens.dim() == 1, ShapeError, "[TokenDataset] expected a 1-D token tensor, got ",
              tokens.sizes());
  EMBER_CHECK(is_integral(tokens.dtype()), DTypeError,
              "[TokenDataset] expected an integer token tensor, got ", tokens.dtype());
  EMBER_CHECK(block_size >= 1, ValueError, "[TokenDataset] block_size must be >= 1, got ",
              block_size);
  EMBER_CHECK(stride >= 1, ValueError, "[TokenDataset] stride must be >= 1, got ", stride);
  tokens_ = tokens.to(kInt64).contiguous();
  const int64_t n = tokens_.numel();
  // Window i needs tokens [i*stride, i*stride + block_size] (the last one is the final target).
  size_ = n > block_size ? (n - block_size - 1) / stride + 1 : 0;
}

Example TokenDataset::get(int64_t index) const {
  check_index(index, size_, "TokenDataset");
  const int64_t start = index * stride_;
  return {tokens_.narrow(0, start, block_size_).clone(),
          tokens_.narrow(0, start + 1, block_size_).clone()};
}

}  // namespace ember::data
