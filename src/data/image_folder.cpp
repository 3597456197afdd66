// ImageFolder: root/<class>/**/<image>, like torchvision.datasets.ImageFolder, decoded with
// stb_image (Debian's compiled libstb; its failure reason is thread-local, so get() is
// thread-safe as long as nobody changes stb's global flags such as flip-on-load).
#include <stb_image.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include "data/reader_util.hpp"
#include "ember/data/datasets.hpp"
#include "ember/error.hpp"
#include "ember/memory.hpp"
#include "ember/ops.hpp"
#include "io/file.hpp"

namespace ember::data {

namespace fs = std::filesystem;
using reader_detail::where;

namespace {

constexpr int kMaxSide = 65535;
constexpr int64_t kMaxPixels = int64_t{1} << 28;
// The most bytes per pixel any single buffer stb_image allocates while decoding takes (12 for a
// Radiance HDR file decoded as float RGB, 8 for 16-bit RGBA PNG), rounded up. A header whose
// decode could need more than max_allocation_bytes() is refused before stb allocates anything.
constexpr uint64_t kDecodeBytesPerPixel = 16;

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r != nullptr ? r : "unknown error";
}

void check_image_size(int64_t w, int64_t h, const std::string& path, const char* op) {
  EMBER_CHECK(w > 0 && h > 0 && w <= kMaxSide && h <= kMaxSide && w * h <= kMaxPixels, IOError,
              where(op, path), ": absurd image size ", w, "x", h, " (the limit is ", kMaxSide,
              " per side and 2^28 pixels)");
}

// stb_image's callback reader over the file's bytes. stb 2.27 (Debian 12) copies the pixels of a
// PNM file, the rows of an uncompressed TGA file and the pixels of a flat HDR file with an
// unchecked stbi__getn, which in memory mode leaves the destination uninitialized when the file
// is truncated: the tensor would hold stale heap or stack bytes. Through these callbacks every
// byte past the end of the file reads as 0, as stb's byte-wise reads already make it for the
// other formats.
struct StbReader {
  const unsigned char* data;
  size_t size;
  size_t pos = 0;

  static int read(void* user, char* out, int n) {
    auto* r = static_cast<StbReader*>(user);
    const size_t want = n > 0 ? static_cast<size_t>(n) : 0;
    const size_t got = std::min(want, r->size - r->pos);
    if (got > 0) std::memcpy(out, r->data + r->pos, got);
    if (want > got) std::memset(out + got, 0, want - got);
    r->pos += got;
    return static_cast<int>(got);
  }
  static void skip(void* user, int n) {  // n < 0 steps back ("unget")
    auto* r = static_cast<StbReader*>(user);
    const int64_t to = static_cast<int64_t>(r->pos) + n;
    r->pos = static_cast<size_t>(std::clamp<int64_t>(to, 0, static_cast<int64_t>(r->size)));
  }
  static int eof(void* user) {
    const auto* r = static_cast<const StbReader*>(user);
    return r->pos >= r->size ? 1 : 0;
  }
};

// stb_image grows its buffer for a PNG's IDAT data to the length a chunk declares before reading
// it (up to 2^30 bytes), so a 60-byte file declaring a 1 GiB chunk would allocate 1 GiB. Every
// chunk up to IEND must fit in the file. Other formats are left to stb.
void check_png_chunks(std::string_view b, const std::string& path, const char* op) {
  constexpr std::string_view kSignature("\x89PNG\r\n\x1a\n", 8);
  if (b.substr(0, 8) != kSignature) return;
  size_t pos = 8;
  while (b.size() - pos >= 8) {
    const auto* p = reinterpret_cast<const unsigned char*>(b.data() + pos);
    const uint64_t length =
        (uint64_t{p[0]} << 24) | (uint64_t{p[1]} << 16) | (uint64_t{p[2]} << 8) | uint64_t{p[3]};
    std::string type(b.substr(pos + 4, 4));
    for (char& ch : type)
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '?';
    const uint64_t left = b.size() - pos - 8;  // after the length and type
    EMBER_CHECK(length + 4 <= left, IOError, where(op, path), ": cannot decode image: PNG chunk '",
                type, "' at byte ", pos, " declares ", length, " bytes, but only ", left,
                " remain in the file (with its CRC)");
    pos += 12 + static_cast<size_t>(length);
    if (type == "IEND") return;
  }
}

Tensor load_rgb(const std::string& path, const char* op) {
  reader_detail::require_regular_file(path, op);
  // The file is read once, so the header stb_info checks is the one stb_load decodes.
  std::error_code ec;
  const uint64_t file_size = fs::file_size(path, ec);
  EMBER_CHECK(!ec, IOError, where(op, path), ": cannot stat: ", ec.message());
  const uint64_t max_file = std::min<uint64_t>(INT_MAX, max_allocation_bytes());  // stb takes int
  EMBER_CHECK(file_size <= max_file, IOError, where(op, path), ": the file is ", file_size,
              " bytes, over the limit of ", max_file, " bytes for an image");
  const std::string bytes = io_detail::read_prefix(path, 0, file_size, nullptr, where(op, path));
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int size = static_cast<int>(bytes.size());
  check_png_chunks(bytes, path, op);

  int w = 0, h = 0, c = 0;
  // The header first: a crafted header must not make stb allocate gigabytes. stb_info reports a
  // top-down BMP's height as negative (its load makes it positive).
  EMBER_CHECK(stbi_info_from_memory(data, size, &w, &h, &c) == 1, IOError, where(op, path),
              ": cannot decode image: ", stb_reason());
  const int64_t info_w = std::abs(int64_t{w}), info_h = std::abs(int64_t{h});
  check_image_size(info_w, info_h, path, op);
  const uint64_t decode_bytes = kDecodeBytesPerPixel * static_cast<uint64_t>(info_w * info_h);
  EMBER_CHECK(decode_bytes <= max_allocation_bytes(), IOError, where(op, path),
              ": cannot decode image: ", info_w, "x", info_h, " may need ", decode_bytes,
              " bytes to decode, over the allocation limit of ", max_allocation_bytes(),
              " bytes (set_max_allocation_bytes)");
  StbReader reader{data, bytes.size()};
  const stbi_io_callbacks callbacks{&StbReader::read, &StbReader::skip, &StbReader::eof};
  unsigned char* px = stbi_load_from_callbacks(&callbacks, &reader, &w, &h, &c, 3);
  EMBER_CHECK(px != nullptr, IOError, where(op, path), ": cannot decode image: ", stb_reason());
  if (w <= 0 || h <= 0 || w > kMaxSide || h > kMaxSide || int64_t{w} * int64_t{h} > kMaxPixels) {
    stbi_image_free(px);  // stb_load disagrees with stb_info (never seen; checked all the same)
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
