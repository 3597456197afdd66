// TensorBoard event files: CRC-32C, TFRecord framing, a hand-written encoder for the few
// protocol-buffer messages involved (tensorflow/core/util/event.proto, framework/summary.proto)
// and a reader that validates each record.
#include "ember/io/tensorboard.hpp"

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "ember/error.hpp"
#include "io/png.hpp"
#include "ember/ops.hpp"

namespace ember {

// ---- CRC-32C ----

namespace {
std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[i] = c;
  }
  return t;
}
}  // namespace

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
  static const std::array<uint32_t, 256> table = make_crc32c_table();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t crc = crc32c(data, n);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

// ---- protocol-buffer encoding ----

namespace {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLength = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_key(std::string& out, uint32_t field, WireType type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | type);
}
void put_bytes_le(std::string& out, const void* p, size_t n) {
  out.append(static_cast<const char*>(p), n);  // x86-64 and every target Ember builds for are LE
}
void put_double(std::string& out, uint32_t field, double v) {
  put_key(out, field, kFixed64);
  put_bytes_le(out, &v, 8);
}
void put_float(std::string& out, uint32_t field, float v) {
  put_key(out, field, kFixed32);
  put_bytes_le(out, &v, 4);
}
void put_int(std::string& out, uint32_t field, int64_t v) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(v));
}
void put_string(std::string& out, uint32_t field, const std::string& s) {
  put_key(out, field, kLength);
  put_varint(out, s.size());
  out += s;
}
void put_packed_doubles(std::string& out, uint32_t field, const std::vector<double>& v) {
  put_key(out, field, kLength);
  put_varint(out, v.size() * 8);
  for (double d : v) put_bytes_le(out, &d, 8);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Event{wall_time, step, summary{value}} around one serialized Summary.Value.
std::string summary_event(const std::string& value, int64_t step, std::optional<double> wall) {
  std::string summary;
  put_string(summary, 1, value);  // Summary.value
  std::string event;
  put_double(event, 1, wall ? *wall : now_seconds());
  if (step != 0) put_int(event, 2, step);  // proto3 leaves out a default scalar
  put_string(event, 5, summary);
  return event;
}

void check_tag(const std::string& tag, const char* op) {
  EMBER_CHECK(!tag.empty(), ValueError, "[", op, "] the tag is empty");
}

}  // namespace

// ---- writer ----

TensorBoardWriter::TensorBoardWriter(const std::string& log_dir,
                                     const std::string& filename_suffix) {
  std::error_code ec;
  std::filesystem::create_directories(log_dir, ec);
  EMBER_CHECK(!ec && std::filesystem::is_directory(log_dir), IOError, "[TensorBoardWriter] '",
              log_dir, "': cannot create the log directory: ", ec.message());
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) std::strcpy(host, "localhost");
  static std::atomic<int> counter{0};
  const long long seconds = static_cast<long long>(now_seconds());
  path_ = (std::filesystem::path(log_dir) /
           detail::str_cat("events.out.tfevents.", seconds, ".", host, ".", getpid(), ".",
                           counter++, filename_suffix))
              .string();
  file_ = std::fopen(path_.c_str(), "wbx");  // x: never append to someone else's file
  EMBER_CHECK(file_ != nullptr, IOError, "[TensorBoardWriter] '", path_,
              "': cannot create the event file: ", std::strerror(errno));
  std::string first;
  put_double(first, 1, now_seconds());
  put_string(first, 3, "brain.Event:2");
  write_event(first);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardWriter::write_event(const std::string& event) {
  EMBER_CHECK(file_ != nullptr, IOError, "[TensorBoardWriter] '", path_, "': the writer is closed");
  std::string record;
  const uint64_t n = event.size();
  put_bytes_le(record, &n, 8);
  const uint32_t len_crc = masked_crc32c(record.data(), 8);
  put_bytes_le(record, &len_crc, 4);
  record += event;
  const uint32_t data_crc = masked_crc32c(event.data(), event.size());
  put_bytes_le(record, &data_crc, 4);
  const bool ok = std::fwrite(record.data(), 1, record.size(), file_) == record.size() &&
                  std::fflush(file_) == 0;
  EMBER_CHECK(ok, IOError, "[TensorBoardWriter] '", path_, "': write failed: ",
              std::strerror(errno));
}

void TensorBoardWriter::add_scalar(const std::string& tag, double value, int64_t step,
                                   std::optional<double> wall_time) {
  check_tag(tag, "add_scalar");
  std::string v;
  put_string(v, 1, tag);
  put_float(v, 2, static_cast<float>(value));  // simple_value is in a oneof: always written
  write_event(summary_event(v, step, wall_time));
}

void TensorBoardWriter::add_image(const std::string& tag, const Tensor& image, int64_t step,
                                  std::optional<double> wall_time) {
  check_tag(tag, "add_image");
  const io_detail::PngImage png = io_detail::encode_png_image(image, "add_image");
  std::string img;
  put_int(img, 1, png.height);
  put_int(img, 2, png.width);
  put_int(img, 3, png.channels);
  put_string(img, 4, png.bytes);
  std::string v;
  put_string(v, 1, tag);
  put_string(v, 4, img);
  write_event(summary_event(v, step, wall_time));
}

void TensorBoardWriter::add_histogram(const std::string& tag, const Tensor& values, int64_t step,
                                      int64_t bins, std::optional<double> wall_time) {
  check_tag(tag, "add_histogram");
  EMBER_CHECK(bins >= 1, ValueError, "[add_histogram] expected bins >= 1, got ", bins);
  EMBER_CHECK(values.defined() && values.numel() > 0, ValueError,
              "[add_histogram] expected a non-empty tensor");
  Tensor x = values.detach().to(kFloat64).contiguous().flatten();
  const double* p = x.data_ptr<double>();
  const int64_t n = x.numel();
  double lo = p[0], hi = p[0], sum = 0, sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) {
    EMBER_CHECK(std::isfinite(p[i]), ValueError, "[add_histogram] '", tag,
                "': the values contain Inf or NaN");
    lo = std::min(lo, p[i]);
    hi = std::max(hi, p[i]);
    sum += p[i];
    sum_sq += p[i] * p[i];
  }
  // numpy.histogram's edges: equal width over [min, max], or [v - 0.5, v + 0.5] for one value.
  const double first = lo == hi ? lo - 0.5 : lo, last = lo == hi ? hi + 0.5 : hi;
  const double width = (last - first) / static_cast<double>(bins);
  std::vector<double> limits(static_cast<size_t>(bins)), counts(static_cast<size_t>(bins), 0.0);
  for (int64_t b = 0; b < bins; ++b) limits[static_cast<size_t>(b)] = first + width * (b + 1);
  limits.back() = last;
  for (int64_t i = 0; i < n; ++i) {
    int64_t b = static_cast<int64_t>((p[i] - first) / width);
    b = std::clamp<int64_t>(b, 0, bins - 1);  // the maximum falls in the last bucket
    counts[static_cast<size_t>(b)] += 1;
  }
  std::string histo;
  put_double(histo, 1, lo);
  put_double(histo, 2, hi);
  put_double(histo, 3, static_cast<double>(n));
  put_double(histo, 4, sum);
  put_double(histo, 5, sum_sq);
  put_packed_doubles(histo, 6, limits);
  put_packed_doubles(histo, 7, counts);
  std::string v;
  put_string(v, 1, tag);
  put_string(v, 5, histo);
  write_event(summary_event(v, step, wall_time));
}

void TensorBoardWriter::flush() {
  if (file_ != nullptr) std::fflush(file_);
}

void TensorBoardWriter::close() {
  if (file_ == nullptr) return;
  const bool ok = std::fclose(file_) == 0;
  file_ = nullptr;
  EMBER_CHECK(ok, IOError, "[TensorBoardWriter] '", path_, "': close failed");
}

// ---- reader ----

namespace {

// A bounds-checked protocol-buffer cursor; every failure names the file and the record.
class ProtoReader {
 public:
  ProtoReader(std::string_view s, const std::string& where) : s_(s), where_(where) {}
  bool done() const { return pos_ >= s_.size(); }
  /// Reads a field key: its number and wire type.
  void key(uint32_t& field, uint32_t& type) {
    const uint64_t k = varint();
    field = static_cast<uint32_t>(k >> 3);
    type = static_cast<uint32_t>(k & 7);
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      need(1);
      const uint8_t b = static_cast<uint8_t>(s_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    fail("a varint is longer than 10 bytes");
  }
  template <class T>
  T fixed() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    need(n);
    std::string_view v = s_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return v;
  }
  void skip(uint32_t type) {
    switch (type) {
      case kVarint: varint(); break;
      case kFixed64: fixed<uint64_t>(); break;
      case kLength: bytes(); break;
      case kFixed32: fixed<uint32_t>(); break;
      default: fail(detail::str_cat("unknown wire type ", type));
    }
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw IOError(detail::str_cat(where_, ": malformed event: ", what));
  }
  const std::string& where() const { return where_; }

 private:
  void need(uint64_t n) const {
    if (n > s_.size() - pos_) fail("a field runs past the end of its message");
  }
  std::string_view s_;
  size_t pos_ = 0;
  const std::string& where_;
};

std::vector<double> packed_doubles(ProtoReader& r, uint32_t type) {
  std::vector<double> out;
  if (type == kFixed64) {  // unpacked form: one element
    out.push_back(r.fixed<double>());
    return out;
  }
  if (type != kLength) r.fail("a repeated double has the wrong wire type");
  std::string_view b = r.bytes();
  if (b.size() % 8 != 0) r.fail("a packed double field is not a multiple of 8 bytes");
  out.resize(b.size() / 8);
  if (!b.empty()) std::memcpy(out.data(), b.data(), b.size());  // an empty vector's data() is null
  return out;
}

TensorBoardValue parse_value(std::string_view s, const std::string& where) {
  TensorBoardValue v;
  ProtoReader r(s, where);
  while (!r.done()) {
    uint32_t field, type;
    r.key(field, type);
    if (field == 1 && type == kLength) {
      v.tag = std::string(r.bytes());
    } else if (field == 2 && type == kFixed32) {
      v.simple_value = r.fixed<float>();
    } else if (field == 4 && type == kLength) {
      v.has_image = true;
      ProtoReader ir(r.bytes(), where);
      while (!ir.done()) {
        uint32_t f, t;
        ir.key(f, t);
        if (f == 1 && t == kVarint) v.height = static_cast<int64_t>(ir.varint());
        else if (f == 2 && t == kVarint) v.width = static_cast<int64_t>(ir.varint());
        else if (f == 3 && t == kVarint) v.colorspace = static_cast<int64_t>(ir.varint());
        else if (f == 4 && t == kLength) v.encoded_image = std::string(ir.bytes());
        else ir.skip(t);
      }
    } else if (field == 5 && type == kLength) {
      v.has_histogram = true;
      ProtoReader hr(r.bytes(), where);
      while (!hr.done()) {
        uint32_t f, t;
        hr.key(f, t);
        if (f >= 1 && f <= 5 && t == kFixed64) {
          const double d = hr.fixed<double>();
          double* slots[] = {&v.min, &v.max, &v.num, &v.sum, &v.sum_squares};
          *slots[f - 1] = d;
        } else if (f == 6) {
          for (double d : packed_doubles(hr, t)) v.bucket_limit.push_back(d);
        } else if (f == 7) {
          for (double d : packed_doubles(hr, t)) v.bucket.push_back(d);
        } else {
          hr.skip(t);
        }
      }
    } else {
      r.skip(type);
    }
  }
  return v;
}

TensorBoardEvent parse_event(std::string_view s, const std::string& where) {
  TensorBoardEvent e;
  ProtoReader r(s, where);
  while (!r.done()) {
    uint32_t field, type;
    r.key(field, type);
    if (field == 1 && type == kFixed64) {
      e.wall_time = r.fixed<double>();
    } else if (field == 2 && type == kVarint) {
      e.step = static_cast<int64_t>(r.varint());
    } else if (field == 3 && type == kLength) {
      e.file_version = std::string(r.bytes());
    } else if (field == 5 && type == kLength) {
      ProtoReader sr(r.bytes(), where);
      while (!sr.done()) {
        uint32_t f, t;
        sr.key(f, t);
        if (f == 1 && t == kLength) e.values.push_back(parse_value(sr.bytes(), where));
        else sr.skip(t);
      }
    } else {
      r.skip(type);
    }
  }
  return e;
}

}  // namespace

std::vector<TensorBoardEvent> read_tensorboard_events(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  EMBER_CHECK(f != nullptr, IOError, "[read_tensorboard_events] '", path,
              "': cannot open: ", std::strerror(errno));
  std::string data;
  char buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) data.append(buf, got);
  std::fclose(f);

  std::vector<TensorBoardEvent> events;
  size_t pos = 0;
  for (int64_t record = 0; pos < data.size(); ++record) {
    const std::string where = detail::str_cat("[read_tensorboard_events] '", path, "' record ",
                                              record, " at byte ", pos);
    EMBER_CHECK(data.size() - pos >= 12, IOError, where, ": truncated record header");
    uint64_t n;
    uint32_t len_crc;
    std::memcpy(&n, data.data() + pos, 8);
    std::memcpy(&len_crc, data.data() + pos + 8, 4);
    EMBER_CHECK(len_crc == masked_crc32c(data.data() + pos, 8), IOError, where,
                ": the length's CRC does not match");
    EMBER_CHECK(n <= data.size() - pos - 12 && data.size() - pos - 12 - n >= 4, IOError, where,
                ": the record asks for ", n, " bytes but the file has ", data.size() - pos - 12,
                " left");
    const char* body = data.data() + pos + 12;
    uint32_t data_crc;
    std::memcpy(&data_crc, body + n, 4);
    EMBER_CHECK(data_crc == masked_crc32c(body, static_cast<size_t>(n)), IOError, where,
                ": the data's CRC does not match");
    events.push_back(parse_event(std::string_view(body, static_cast<size_t>(n)), where));
    pos += 12 + static_cast<size_t>(n) + 4;
  }
  return events;
}

}  // namespace ember
