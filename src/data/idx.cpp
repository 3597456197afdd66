// IDX files (read through zlib, so .gz and raw alike), MNIST / Fashion-MNIST on top of them, and
// the in-memory labeled-image dataset that MNIST and CIFAR share.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <limits>

#include "data/reader_util.hpp"
#include "ember/data/datasets.hpp"
#include "ember/error.hpp"
#include "ember/ops.hpp"
#include "io/file.hpp"

namespace ember::data {

using reader_detail::where;

namespace {

constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 33;  // 8 GiB of element data
constexpr int kMaxIdxDims = 8;
constexpr size_t kFirstChunk = size_t{1} << 20;  // the buffer starts at 1 MiB and doubles

struct IdxType {
  uint8_t code;
  size_t file_size;  // bytes per element in the file
  DType dtype;       // what Ember returns
};
constexpr std::array<IdxType, 6> kIdxTypes = {{{0x08, 1, kUInt8},
                                               {0x09, 1, kInt8},
                                               {0x0B, 2, kInt32},  // int16 widened
                                               {0x0C, 4, kInt32},
                                               {0x0D, 4, kFloat32},
                                               {0x0E, 8, kFloat64}}};

// Closes the gzFile on scope exit.
struct GzGuard {
  gzFile f;
  ~GzGuard() {
    if (f != nullptr) gzclose(f);
  }
};

// What went wrong with the stream: zlib's message (without the "path: " prefix zlib adds), or
// the system's for a read error.
std::string gz_problem(gzFile f, const std::string& path) {
  int err = Z_OK;
  const char* msg = gzerror(f, &err);
  if (err == Z_ERRNO) return detail::str_cat("cannot read: ", std::strerror(errno));
  std::string m = msg != nullptr ? msg : "";
  const std::string prefix = path + ": ";
  if (m.compare(0, prefix.size(), prefix) == 0) m.erase(0, prefix.size());
  return detail::str_cat("corrupt or truncated gzip stream: ", m.empty() ? "unknown error" : m);
}

// Reads up to n bytes, stopping early only at the end of the data. IOError on a stream error
// (a corrupt or truncated gzip stream, a read error).
size_t gz_read_full(gzFile f, void* buf, size_t n, const std::string& path) {
  size_t total = 0;
  while (total < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - total, size_t{1} << 30));
    const int r = gzread(f, static_cast<char*>(buf) + total, chunk);
    EMBER_CHECK(r >= 0, IOError, where("read_idx", path), ": ", gz_problem(f, path));
    if (r == 0) break;
    total += static_cast<size_t>(r);
  }
  if (total < n) {
    int err = Z_OK;
    gzerror(f, &err);
    EMBER_CHECK(err == Z_OK, IOError, where("read_idx", path), ": ", gz_problem(f, path));
  }
  return total;
}

uint32_t load_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Copies n big-endian elements of `Bytes` bytes from src to native order at dst.
template <size_t Bytes>
void copy_from_big_endian(uint8_t* dst, const uint8_t* src, size_t n) {
  if (n == 0) return;  // an empty tensor's pointers may be null
  if constexpr (Bytes == 1 || std::endian::native == std::endian::big) {
    std::memcpy(dst, src, n * Bytes);
  } else {
    for (size_t i = 0; i < n; ++i)
      for (size_t b = 0; b < Bytes; ++b) dst[i * Bytes + b] = src[i * Bytes + Bytes - 1 - b];
  }
}

}  // namespace

// ---- IDX ----

Tensor read_idx(const std::string& path) {
  reader_detail::require_regular_file(path, "read_idx");
  GzGuard gz{gzopen(path.c_str(), "rb")};
  EMBER_CHECK(gz.f != nullptr, IOError, where("read_idx", path),
              ": cannot open: ", std::strerror(errno));
  gzbuffer(gz.f, 1u << 18);

  // magic: 00 00 <type> <ndim>
  uint8_t magic[4];
  const size_t got_magic = gz_read_full(gz.f, magic, 4, path);
  EMBER_CHECK(got_magic == 4, IOError, where("read_idx", path),
              ": truncated header: expected at least 4 bytes, got ", got_magic);
  EMBER_CHECK(magic[0] == 0 && magic[1] == 0, IOError, where("read_idx", path),
              ": not an IDX file: the first two bytes are ", int{magic[0]}, " ", int{magic[1]},
              ", expected 0 0");
  const IdxType* type = nullptr;
  for (const IdxType& t : kIdxTypes)
    if (t.code == magic[2]) type = &t;
  EMBER_CHECK(type != nullptr, IOError, where("read_idx", path),
              ": not an IDX file: unknown element type code 0x", std::hex, std::setw(2),
              std::setfill('0'), int{magic[2]}, std::dec,
              " (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)");
  const int ndim = magic[3];
  EMBER_CHECK(ndim >= 1 && ndim <= kMaxIdxDims, IOError, where("read_idx", path), ": ndim ", ndim,
              " is not supported (expected 1 to ", kMaxIdxDims, ")");

  // sizes: ndim big-endian u32
  uint8_t dims_be[4 * kMaxIdxDims];
  const size_t dims_bytes = 4 * static_cast<size_t>(ndim);
  const size_t got_dims = gz_read_full(gz.f, dims_be, dims_bytes, path);
  EMBER_CHECK(got_dims == dims_bytes, IOError, where("read_idx", path),
              ": truncated header: expected ", 4 + dims_bytes, " bytes for ", ndim,
              " dimensions, got ", 4 + got_dims);
  std::vector<int64_t> sizes(static_cast<size_t>(ndim));
  uint64_t bytes = type->file_size;
  // A tensor's strides are products of its non-zero sizes; with a zero dimension the byte count
  // stays 0 while (0, 2^32-1, 2^32-1, 2^32-1) would still overflow int64 strides.
  uint64_t extent = 1;
  bool overflow = false, stride_overflow = false;
  for (int d = 0; d < ndim; ++d) {
    const uint32_t s = load_be32(dims_be + 4 * d);
    sizes[static_cast<size_t>(d)] = s;
    overflow = overflow || __builtin_mul_overflow(bytes, uint64_t{s}, &bytes);
    stride_overflow = stride_overflow ||
                      __builtin_mul_overflow(extent, uint64_t{std::max<uint32_t>(s, 1)}, &extent) ||
                      extent > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  EMBER_CHECK(!overflow && bytes <= kMaxIdxBytes, IOError, where("read_idx", path),
              ": absurd dimensions ", IntArrayRef(sizes), ": ",
              overflow ? std::string("the byte count overflows 64 bits")
                       : detail::str_cat(bytes, " bytes of data"),
              ", the limit is 2^33 bytes");
  EMBER_CHECK(!stride_overflow, IOError, where("read_idx", path), ": absurd dimensions ",
              IntArrayRef(sizes), ": the product of the non-zero sizes overflows int64 strides");

  // Data: the buffer grows as bytes arrive, so a header that lies about its size costs at most
  // twice what the file really holds.
  std::vector<uint8_t> buf;
  size_t got = 0;
  while (got < bytes) {
    const size_t want = std::min<size_t>(bytes, std::max(kFirstChunk, 2 * buf.size()));
    buf.resize(want);
    const size_t r = gz_read_full(gz.f, buf.data() + got, want - got, path);
    got += r;
    if (got < want) break;
  }
  EMBER_CHECK(got == bytes, IOError, where("read_idx", path), ": truncated data: the header ",
              IntArrayRef(sizes), " asks for ", bytes, " bytes, got ", got);
  uint8_t extra[4096];
  const size_t trailing = gz_read_full(gz.f, extra, sizeof(extra), path);
  EMBER_CHECK(trailing == 0, IOError, where("read_idx", path), ": ",
              trailing == sizeof(extra) ? "at least " : "", trailing, " trailing bytes after the ",
              bytes, " bytes of data for ", IntArrayRef(sizes));

  Tensor out = empty(sizes, type->dtype);
  const size_t n = static_cast<size_t>(out.numel());
  uint8_t* dst = static_cast<uint8_t*>(out.data_ptr());
  switch (type->code) {
    case 0x08:
    case 0x09:
      copy_from_big_endian<1>(dst, buf.data(), n);
      break;
    case 0x0B: {  // int16 -> int32
      int32_t* d32 = reinterpret_cast<int32_t*>(dst);
      for (size_t i = 0; i < n; ++i)
        d32[i] = static_cast<int16_t>(static_cast<uint16_t>((buf[2 * i] << 8) | buf[2 * i + 1]));
      break;
    }
    case 0x0C:
    case 0x0D:
      copy_from_big_endian<4>(dst, buf.data(), n);
      break;
    default:
      copy_from_big_endian<8>(dst, buf.data(), n);
      break;
  }
  return out;
}

void write_idx(const std::string& path, const Tensor& t, bool gzip) {
  EMBER_CHECK(t.defined(), ValueError, "[write_idx] '", path, "': the tensor is undefined");
  uint8_t code = 0;
  switch (t.dtype()) {
    case kUInt8:
      code = 0x08;
      break;
    case kInt8:
      code = 0x09;
      break;
    case kInt32:
      code = 0x0C;
      break;
    case kFloat32:
      code = 0x0D;
      break;
    case kFloat64:
      code = 0x0E;
      break;
    default:
      break;
  }
  EMBER_CHECK(code != 0, DTypeError, "[write_idx] '", path, "': IDX cannot hold ", t.dtype(),
              " (expected uint8, int8, int32, float32 or float64)");
  EMBER_CHECK(t.dim() >= 1 && t.dim() <= kMaxIdxDims, ShapeError, "[write_idx] '", path,
              "': IDX holds 1 to ", kMaxIdxDims, " dimensions, got ", t.sizes());
  for (int64_t s : t.sizes())
    EMBER_CHECK(s <= int64_t{std::numeric_limits<uint32_t>::max()}, ShapeError, "[write_idx] '",
                path, "': a dimension does not fit in 32 bits: ", t.sizes());
  const Tensor c = t.cpu().contiguous();
  const size_t elem = c.element_size();
  const size_t n = static_cast<size_t>(c.numel());

  std::vector<uint8_t> raw(4 + 4 * static_cast<size_t>(c.dim()) + n * elem);
  raw[0] = raw[1] = 0;
  raw[2] = code;
  raw[3] = static_cast<uint8_t>(c.dim());
  for (int64_t d = 0; d < c.dim(); ++d) {
    const uint32_t s = static_cast<uint32_t>(c.size(d));
    for (int b = 0; b < 4; ++b) raw[4 + 4 * d + b] = static_cast<uint8_t>(s >> (24 - 8 * b));
  }
  uint8_t* data = raw.data() + 4 + 4 * c.dim();
  const uint8_t* src = static_cast<const uint8_t*>(c.data_ptr());
  // The swap is its own inverse: native -> big-endian is the same byte reversal.
  if (elem == 1) copy_from_big_endian<1>(data, src, n);
  if (elem == 4) copy_from_big_endian<4>(data, src, n);
  if (elem == 8) copy_from_big_endian<8>(data, src, n);

  io_detail::AtomicWriter out(path, "write_idx");
  if (!gzip) {
    out.write(raw.data(), raw.size());
  } else {
    z_stream zs{};
    EMBER_CHECK(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                             Z_DEFAULT_STRATEGY) == Z_OK,
                IOError, "[write_idx] '", path, "': deflateInit2 failed");
    std::vector<uint8_t> chunk(size_t{1} << 18);
    size_t pos = 0;
    int rc = Z_OK;
    do {
      const size_t in_now = std::min<size_t>(raw.size() - pos, size_t{1} << 30);
      zs.next_in = raw.data() + pos;
      zs.avail_in = static_cast<uInt>(in_now);
      pos += in_now;
      const int flush = pos == raw.size() ? Z_FINISH : Z_NO_FLUSH;
      do {
        zs.next_out = chunk.data();
        zs.avail_out = static_cast<uInt>(chunk.size());
        rc = deflate(&zs, flush);
        if (rc == Z_STREAM_ERROR) break;
        out.write(chunk.data(), chunk.size() - zs.avail_out);
      } while (zs.avail_out == 0);
    } while (rc != Z_STREAM_END && rc != Z_STREAM_ERROR);
    deflateEnd(&zs);
    EMBER_CHECK(rc == Z_STREAM_END, IOError, "[write_idx] '", path, "': deflate failed");
  }
  out.commit();
}

// ---- labeled images held in memory ----

int64_t LabeledImageDataset::size() const { return labels_.defined() ? labels_.size(0) : 0; }

Example LabeledImageDataset::get(int64_t index) const {
  check_index(index, size(), name_);
  // A copy, so an in-place transform cannot change the dataset.
  Example e{images_[index].clone(), scalar_tensor(labels_.data_ptr<int64_t>()[index], kInt64)};
  if (transform_) e.data = transform_(e.data);
  if (target_transform_) e.target = target_transform_(e.target);
  return e;
}

// ---- MNIST ----

namespace {

std::vector<std::string> digit_classes() {
  return {"0 - zero", "1 - one", "2 - two",   "3 - three", "4 - four",
          "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"};
}

// The file `stem` (raw, else .gz) in root or root/<name>/raw.
std::string find_idx(const std::string& root, const char* name, const std::string& stem) {
  const std::filesystem::path r(root);
  const std::filesystem::path raw_dir = r / name / "raw";
  return reader_detail::first_existing(
      {(r / stem).string(), (r / (stem + ".gz")).string(), (raw_dir / stem).string(),
       (raw_dir / (stem + ".gz")).string()},
      name, stem.c_str());
}

}  // namespace

MNIST::MNIST(const std::string& root, bool train, Transform transform, Transform target_transform)
    : MNIST("MNIST", digit_classes(), root, train, std::move(transform),
            std::move(target_transform)) {}

MNIST::MNIST(const char* name, std::vector<std::string> classes, const std::string& root,
             bool train, Transform transform, Transform target_transform)
    : LabeledImageDataset(name, std::move(transform), std::move(target_transform)) {
  classes_ = std::move(classes);
  const std::string prefix = train ? "train" : "t10k";
  images_path_ = find_idx(root, name, prefix + "-images-idx3-ubyte");
  labels_path_ = find_idx(root, name, prefix + "-labels-idx1-ubyte");

  Tensor images = read_idx(images_path_);
  EMBER_CHECK(images.dtype() == kUInt8 && images.dim() == 3, IOError, where(name, images_path_),
              ": expected uint8 images of shape (N, H, W), got ", images.dtype(), " ",
              images.sizes());
  Tensor labels = read_idx(labels_path_);
  EMBER_CHECK(labels.dtype() == kUInt8 && labels.dim() == 1, IOError, where(name, labels_path_),
              ": expected uint8 labels of shape (N), got ", labels.dtype(), " ", labels.sizes());
  EMBER_CHECK(labels.size(0) == images.size(0), IOError, where(name, labels_path_), ": ",
              labels.size(0), " labels but '", images_path_, "' holds ", images.size(0), " images");
  const uint8_t* l = labels.data_ptr<uint8_t>();
  const int64_t num_classes = static_cast<int64_t>(classes_.size());
  for (int64_t i = 0; i < labels.size(0); ++i)
    EMBER_CHECK(l[i] < num_classes, IOError, where(name, labels_path_), ": label ", int{l[i]},
                " at index ", i, " is out of range for ", num_classes, " classes");
  images_ = images.unsqueeze(3);
  labels_ = labels.to(kInt64);
}

FashionMNIST::FashionMNIST(const std::string& root, bool train, Transform transform,
                           Transform target_transform)
    : MNIST("FashionMNIST",
            {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
             "Bag", "Ankle boot"},
            root, train, std::move(transform), std::move(target_transform)) {}

std::string default_fashion_mnist_root() {
  const char* env = std::getenv("EMBER_FASHION_MNIST");
  if (env != nullptr && *env != '\0') return env;
  return "/usr/share/datasets/fashion-mnist";
}

}  // namespace ember::data
