// ImageFolder: root/<class>/**/<image>, like torchvision.datasets.ImageFolder, decoded with
// stb_image (Debian's compiled libstb; its failure reason is thread-local, so get() is
// thread-safe as long as nobody changes stb's global flags such as flip-on-load).
#include <stb_image.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include "data/reader_util.hpp"
#include "ember/data/datasets.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"

namespace ember::data {

namespace fs = std::filesystem;
using reader_detail::where;

namespace {

constexpr int kMaxSide = 65535;
constexpr int64_t kMaxPixels = int64_t{1} << 28;

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r != nullptr ? r : "unknown error";
}

void check_image_size(int w, int h, const std::string& path, const char* op) {
  EMBER_CHECK(
      w > 0 && h > 0 && w <= kMaxSide && h <= kMaxSide && int64_t{w} * int64_t{h} <= kMaxPixels,
      IOError, where(op, path), ": absurd image size ", w, "x", h, " (the limit is ", kMaxSide,
      " per side and 2^28 pixels)");
}

Tensor load_rgb(const std::string& path, const char* op) {
  reader_detail::require_regular_file(path, op);
  int w = 0, h = 0, c = 0;
  // The header first: a crafted header must not make stb allocate gigabytes.
  EMBER_CHECK(stbi_info(path.c_str(), &w, &h, &c) == 1, IOError, where(op, path),
              ": cannot decode image: ", stb_reason());
  check_image_size(w, h, path, op);
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 3);
  EMBER_CHECK(px != nullptr, IOError, where(op, path), ": cannot decode image: ", stb_reason());
  if (w <= 0 || h <= 0 || w > kMaxSide || h > kMaxSide || int64_t{w} * int64_t{h} > kMaxPixels) {
    stbi_image_free(px);  // the file changed between the two reads
    check_image_size(w, h, path, op);
  }
  return from_blob(
      px, {int64_t{h}, int64_t{w}, 3}, [](void* p) { stbi_image_free(p); }, kUInt8);
}

// Sorted-by-directory walk below `dir` (following links; a directory already visited, as through
// a link cycle, is skipped): appends (directory, sorted file names) for every directory.
void walk(const fs::path& dir, std::set<std::pair<dev_t, ino_t>>* visited,
          std::vector<std::pair<std::string, std::vector<std::string>>>* out) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !visited->insert({st.st_dev, st.st_ino}).second) return;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  EMBER_CHECK(!ec, IOError, where("ImageFolder", dir.string()), ": cannot list: ", ec.message());
  std::vector<std::string> files;
  std::vector<fs::path> subdirs;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) {
      subdirs.push_back(it->path());
    } else if (it->is_regular_file(ec2)) {
      files.push_back(it->path().filename().string());
    }
  }
  EMBER_CHECK(!ec, IOError, where("ImageFolder", dir.string()), ": cannot list: ", ec.message());
  std::sort(files.begin(), files.end());
  out->emplace_back(dir.string(), std::move(files));
  for (const fs::path& s : subdirs) walk(s, visited, out);
}

}  // namespace

Tensor load_image_rgb(const std::string& path) { return load_rgb(path, "load_image_rgb"); }

ImageFolder::ImageFolder(const std::string& root, Transform transform, Transform target_transform,
                         std::vector<std::string> extensions)
    : root_(root),
      transform_(std::move(transform)),
      target_transform_(std::move(target_transform)) {
  EMBER_CHECK(!extensions.empty(), ValueError, "[ImageFolder] '", root,
              "': the list of extensions is empty");
  for (std::string& e : extensions) e = lowercase(e);
  std::error_code ec;
  const fs::file_status st = fs::status(root, ec);
  EMBER_CHECK(fs::exists(st), IOError, where("ImageFolder", root), ": no such directory");
  EMBER_CHECK(fs::is_directory(st), IOError, where("ImageFolder", root), ": not a directory");

  fs::directory_iterator it(root, ec);
  EMBER_CHECK(!ec, IOError, where("ImageFolder", root), ": cannot list: ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (it->is_directory(ec2)) classes_.push_back(it->path().filename().string());
  }
  EMBER_CHECK(!ec, IOError, where("ImageFolder", root), ": cannot list: ", ec.message());
  EMBER_CHECK(!classes_.empty(), IOError, where("ImageFolder", root),
              ": no class directories found (expected root/<class>/<image>)");
  std::sort(classes_.begin(), classes_.end());  // byte-wise, like Python's sorted

  std::string empty_classes;
  for (size_t k = 0; k < classes_.size(); ++k) {
    std::vector<std::pair<std::string, std::vector<std::string>>> dirs;
    std::set<std::pair<dev_t, ino_t>> visited;
    walk(fs::path(root) / classes_[k], &visited, &dirs);
    std::sort(dirs.begin(), dirs.end());
    const size_t before = samples_.size();
    for (const auto& [dir, files] : dirs) {
      for (const std::string& f : files) {
        const std::string name = lowercase(f);
        const bool ok = std::any_of(extensions.begin(), extensions.end(),
                                    [&](const std::string& e) { return name.ends_with(e); });
        if (ok) samples_.emplace_back((fs::path(dir) / f).string(), static_cast<int64_t>(k));
      }
    }
    if (samples_.size() == before)
      empty_classes += detail::str_cat(empty_classes.empty() ? "" : ", ", "'", classes_[k], "'");
  }
  if (!empty_classes.empty()) {
    std::string exts;
    for (const std::string& e : extensions) exts += detail::str_cat(exts.empty() ? "" : " ", e);
    throw IOError(detail::str_cat(where("ImageFolder", root), ": found no image for the classes ",
                                  empty_classes, " (extensions: ", exts, ")"));
  }
}

std::map<std::string, int64_t> ImageFolder::class_to_idx() const {
  std::map<std::string, int64_t> m;
  for (size_t k = 0; k < classes_.size(); ++k) m.emplace(classes_[k], static_cast<int64_t>(k));
  return m;
}

Example ImageFolder::get(int64_t index) const {
  check_index(index, size(), "ImageFolder");
  const auto& [path, label] = samples_[static_cast<size_t>(index)];
  Example e{load_rgb(path, "ImageFolder"), scalar_tensor(label, kInt64)};
  if (transform_) e.data = transform_(e.data);
  if (target_transform_) e.target = target_transform_(e.target);
  return e;
}

}  // namespace ember::data
