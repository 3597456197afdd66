// The safetensors header: dtype table, strict parser with the format's validation rules, and the
// byte-exact writer. The parser is a small schema-directed JSON reader rather than a general DOM:
// it sees every duplicate key, bounds every number and nesting depth, and never allocates more
// than the header's own size.
#include "io/header.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include "core/utf8.hpp"
#include "ember/error.hpp"

namespace ember::io_detail {

// ---- dtypes ----

namespace {

constexpr std::array<FormatDType, 22> kFormatTable = {{
    {"BOOL", 8, 0, kBool},
    {"F4", 4, 1, std::nullopt},
    {"F6_E2M3", 6, 2, std::nullopt},
    {"F6_E3M2", 6, 3, std::nullopt},
    {"U8", 8, 4, kUInt8},
    {"I8", 8, 5, kInt8},
    {"F8_E5M2", 8, 6, std::nullopt},
    {"F8_E4M3", 8, 7, std::nullopt},
    {"F8_E8M0", 8, 8, std::nullopt},
    {"F8_E4M3FNUZ", 8, 9, std::nullopt},
    {"F8_E5M2FNUZ", 8, 10, std::nullopt},
    {"I16", 16, 11, kInt32},  // widened: Ember has no int16
    {"U16", 16, 12, kInt32},  // widened: Ember has no uint16
    {"F16", 16, 13, kFloat16},
    {"BF16", 16, 14, kBFloat16},
    {"I32", 32, 15, kInt32},
    {"U32", 32, 16, kInt64},  // widened: Ember has no uint32
    {"F32", 32, 17, kFloat32},
    {"C64", 64, 18, std::nullopt},
    {"F64", 64, 19, kFloat64},
    {"I64", 64, 20, kInt64},
    {"U64", 64, 21, std::nullopt},
}};

}  // namespace

const FormatDType* find_format_dtype(std::string_view name) {
  for (const FormatDType& d : kFormatTable)
    if (name == d.name) return &d;
  return nullptr;
}

const FormatDType& format_dtype_of(DType t) {
  const char* name = "F32";
  switch (t) {
    case kBool:
      name = "BOOL";
      break;
    case kUInt8:
      name = "U8";
      break;
    case kInt8:
      name = "I8";
      break;
    case kInt32:
      name = "I32";
      break;
    case kInt64:
      name = "I64";
      break;
    case kFloat16:
      name = "F16";
      break;
    case kBFloat16:
      name = "BF16";
      break;
    case kFloat32:
      name = "F32";
      break;
    case kFloat64:
      name = "F64";
      break;
  }
  return *find_format_dtype(name);
}

// ---- UTF-8 ----

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (C0, C1) or past U+10FFFF (F5..FF)
    }
    if (static_cast<size_t>(end - p) <= n) return false;
    for (size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

// ---- the parser ----

namespace {

constexpr int kMaxSkipDepth = 128;  // serde_json's recursion limit

class HeaderParser {
 public:
  HeaderParser(std::string_view s, const std::string& where) : s_(s), where_(where) {}

  SafetensorsHeader parse() {
    SafetensorsHeader h;
    skip_ws();
    if (peek() != '{') fail("the header is not a JSON object");
    ++pos_;
    bool first = true, have_metadata = false;
    while (true) {
      skip_ws();
      if (peek() == '}' && first) {
        ++pos_;
        break;
      }
      std::string key = parse_string("a tensor name");
      skip_ws();
      expect(':');
      if (key == "__metadata__") {
        if (have_metadata) fail("duplicate key '__metadata__'");
        have_metadata = true;
        parse_metadata(h.metadata);
      } else {
        h.entries.push_back(parse_entry(std::move(key)));
      }
      first = false;
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == '}') {
        ++pos_;
        break;
      }
      fail("expected ',' or '}' between entries");
    }
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected bytes after the JSON object (padding must be spaces)");
    return h;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw IOError(detail::str_cat(where_, ": invalid header at byte ", pos_, ": ", what));
  }

  static std::string printable(const std::string& s) {
    if (s.size() <= 80) return s;
    return s.substr(0, 77) + "...";
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool at_end() const { return pos_ >= s_.size(); }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t'))
      ++pos_;
  }

  void expect(char c) {
    if (at_end()) fail(std::string("unexpected end of the header, expected '") + c + "'");
    if (s_[pos_] != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  uint32_t parse_hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<uint32_t>(c - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return v;
  }

  // A JSON string (the input was checked to be UTF-8 as a whole).
  std::string parse_string(const char* what) {
    if (peek() != '"') fail(std::string("expected a string for ") + what);
    ++pos_;
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.size() - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
              fail("lone high surrogate in \\u escape");
            pos_ += 2;
            uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          detail::append_utf8(out, cp);
          break;
        }
        default:
          fail("bad escape in a string");
      }
    }
  }

  // A non-negative JSON integer (no sign, fraction or exponent), as the reference's usize.
  uint64_t parse_uint(const std::string& what) {
    if (peek() == '-') fail(what + " is negative");
    if (peek() < '0' || peek() > '9') fail(what + " is not a non-negative integer");
    if (peek() == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
      fail(what + " has a leading zero");
    uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      uint64_t d = static_cast<uint64_t>(s_[pos_] - '0');
      if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) fail(what + " overflows 64 bits");
      v = v * 10 + d;
      ++pos_;
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E') fail(what + " is not an integer");
    return v;
  }

  // Skips any JSON value (an unknown field of a tensor entry), bounded in depth.
  void skip_value(int depth) {
    if (depth > kMaxSkipDepth) fail("values nested too deeply");
    skip_ws();
    char c = peek();
    if (c == '"') {
      parse_string("a value");
    } else if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++pos_;
      skip_ws();
      if (peek() == close) {
        ++pos_;
        return;
      }
      while (true) {
        skip_ws();
        if (c == '{') {
          parse_string("an object key");
          skip_ws();
          expect(':');
        }
        skip_value(depth + 1);
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        expect(close);
        return;
      }
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      if (c == '-') ++pos_;
      if (peek() < '0' || peek() > '9') fail("bad number");
      if (peek() == '0') {
        ++pos_;
      } else {
        while (peek() >= '0' && peek() <= '9') ++pos_;
      }
      if (peek() == '.') {
        ++pos_;
        if (peek() < '0' || peek() > '9') fail("bad number");
        while (peek() >= '0' && peek() <= '9') ++pos_;
      }
      if (peek() == 'e' || peek() == 'E') {
        ++pos_;
        if (peek() == '+' || peek() == '-') ++pos_;
        if (peek() < '0' || peek() > '9') fail("bad number");
        while (peek() >= '0' && peek() <= '9') ++pos_;
      }
    } else {
      for (const char* lit : {"true", "false", "null"}) {
        size_t n = std::strlen(lit);
        if (s_.substr(pos_, n) == lit) {
          pos_ += n;
          return;
        }
      }
      fail("expected a JSON value");
    }
  }

  void parse_metadata(std::map<std::string, std::string>& out) {
    skip_ws();
    if (s_.substr(pos_, 4) == "null") {  // the reference's Option: null means no metadata
      pos_ += 4;
      return;
    }
    if (peek() != '{') fail("'__metadata__' is not an object of strings");
    ++pos_;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      return;
    }
    while (true) {
      skip_ws();
      std::string key = parse_string("a metadata key");
      skip_ws();
      expect(':');
      skip_ws();
      if (peek() != '"') fail("'__metadata__' value of '" + printable(key) + "' is not a string");
      std::string value = parse_string("a metadata value");
      if (!out.emplace(key, std::move(value)).second)
        fail("duplicate '__metadata__' key '" + printable(key) + "'");
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return;
    }
  }

  SafetensorsEntry parse_entry(std::string name) {
    SafetensorsEntry e;
    e.name = std::move(name);
    const std::string who = "tensor '" + printable(e.name) + "'";
    skip_ws();
    if (peek() != '{') fail(who + " is not an object");
    ++pos_;
    bool have_dtype = false, have_shape = false, have_offsets = false;
    skip_ws();
    if (peek() == '}') fail(who + " has no 'dtype'");
    while (true) {
      skip_ws();
      std::string key = parse_string("a field name");
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "dtype") {
        if (have_dtype) fail(who + " has a duplicate 'dtype'");
        have_dtype = true;
        if (peek() != '"') fail(who + " 'dtype' is not a string");
        e.dtype = parse_string("a dtype");
        if (!find_format_dtype(e.dtype))
          fail(who + " has unknown dtype '" + printable(e.dtype) + "'");
      } else if (key == "shape") {
        if (have_shape) fail(who + " has a duplicate 'shape'");
        have_shape = true;
        if (peek() != '[') fail(who + " 'shape' is not an array");
        ++pos_;
        skip_ws();
        if (peek() == ']') {
          ++pos_;
        } else {
          while (true) {
            skip_ws();
            if (e.shape.size() == kMaxRank)
              fail(who + " has more than " + std::to_string(kMaxRank) + " dimensions");
            uint64_t d = parse_uint(who + " shape entry");
            if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
              fail(who + " shape entry " + std::to_string(d) + " exceeds int64");
            e.shape.push_back(static_cast<int64_t>(d));
            skip_ws();
            if (peek() == ',') {
              ++pos_;
              continue;
            }
            expect(']');
            break;
          }
        }
      } else if (key == "data_offsets") {
        if (have_offsets) fail(who + " has a duplicate 'data_offsets'");
        have_offsets = true;
        if (peek() != '[') fail(who + " 'data_offsets' is not an array of two integers");
        ++pos_;
        skip_ws();
        e.begin = parse_uint(who + " data_offsets[0]");
        skip_ws();
        if (peek() != ',') fail(who + " 'data_offsets' is not an array of two integers");
        ++pos_;
        skip_ws();
        e.end = parse_uint(who + " data_offsets[1]");
        skip_ws();
        if (peek() != ']') fail(who + " 'data_offsets' is not an array of two integers");
        ++pos_;
      } else {
        skip_value(1);  // the reference ignores unknown fields
      }
      skip_ws();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      break;
    }
    if (!have_dtype) fail(who + " has no 'dtype'");
    if (!have_shape) fail(who + " has no 'shape'");
    if (!have_offsets) fail(who + " has no 'data_offsets'");
    return e;
  }

  std::string_view s_;
  const std::string& where_;
  size_t pos_ = 0;
};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

uint64_t check_header_size(std::string_view prefix, uint64_t file_size, const std::string& where) {
  EMBER_CHECK(prefix.size() >= 8 && file_size >= 8, IOError, where, ": file is ", file_size,
              " bytes, shorter than the 8-byte header size");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(prefix[static_cast<size_t>(i)]);
  EMBER_CHECK(n <= kMaxHeaderSize, IOError, where, ": header size ", n, " exceeds the limit of ",
              kMaxHeaderSize, " bytes");
  EMBER_CHECK(n <= file_size - 8, IOError, where, ": header size ", n, " runs past the end of the ",
              file_size, "-byte file");
  return n;
}

SafetensorsHeader parse_header(std::string_view json, uint64_t data_size,
                               const std::string& where) {
  EMBER_CHECK(is_valid_utf8(json), IOError, where, ": the header is not valid UTF-8");
  HeaderParser parser(json, where);
  SafetensorsHeader h = parser.parse();
  h.header_size = json.size();

  std::vector<std::string> names;
  names.reserve(h.entries.size());
  for (const SafetensorsEntry& e : h.entries) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  auto dup = std::adjacent_find(names.begin(), names.end());
  EMBER_CHECK(dup == names.end(), IOError, where, ": duplicate tensor name '",
              HeaderParser::printable(*dup), "'");

  // The reference's validate(): sorted by offsets, each tensor starts where the previous one
  // ended, and its byte range is exactly numel * dtype size, with every product checked.
  std::stable_sort(h.entries.begin(), h.entries.end(),
                   [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  uint64_t expected_begin = 0;
  for (const SafetensorsEntry& e : h.entries) {
    const std::string who = "tensor '" + HeaderParser::printable(e.name) + "'";
    EMBER_CHECK(e.end >= e.begin, IOError, where, ": ", who, " has data_offsets [", e.begin, ", ",
                e.end, "] with end before begin");
    EMBER_CHECK(e.begin == expected_begin, IOError, where, ": ", who, " has data_offsets [",
                e.begin, ", ", e.end, "] but the previous tensor ends at ", expected_begin,
                e.begin < expected_begin ? " (overlap)" : " (gap)");
    EMBER_CHECK(e.end <= data_size, IOError, where, ": ", who, " has data_offsets [", e.begin, ", ",
                e.end, "] past the end of the ", data_size, "-byte data buffer");
    expected_begin = e.end;

    const FormatDType& dt = *find_format_dtype(e.dtype);
    uint64_t numel = 1, extent = 1;
    for (int64_t d : e.shape) {
      EMBER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel), IOError, where,
                  ": ", who, " shape ", shape_str(e.shape), " overflows the element count");
      // Ember also needs the strides (products of the non-zero sizes) to fit int64.
      EMBER_CHECK(!__builtin_mul_overflow(extent, static_cast<uint64_t>(std::max<int64_t>(d, 1)),
                                          &extent) &&
                      extent <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                  IOError, where, ": ", who, " shape ", shape_str(e.shape),
                  " overflows int64 strides");
    }
    uint64_t bits = 0;
    EMBER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dt.bits), &bits), IOError,
                where, ": ", who, " shape ", shape_str(e.shape), " of ", e.dtype,
                " overflows the byte count");
    EMBER_CHECK(bits % 8 == 0, IOError, where, ": ", who, " shape ", shape_str(e.shape), " of ",
                e.dtype, " does not fill whole bytes");
    EMBER_CHECK(bits / 8 == e.end - e.begin, IOError, where, ": ", who, " of ", e.dtype,
                " and shape ", shape_str(e.shape), " needs ", bits / 8, " bytes but data_offsets [",
                e.begin, ", ", e.end, "] hold ", e.end - e.begin);
  }
  EMBER_CHECK(expected_begin == data_size, IOError, where, ": the tensors cover ", expected_begin,
              " bytes but the data buffer holds ", data_size,
              " (the file must end with the last tensor)");
  return h;
}

// ---- the writer ----

namespace {

// serde_json's string escaping: \" \\ \b \f \n \r \t, \u00XX (lowercase) for other control
// characters, everything else (non-ASCII UTF-8 and '/') verbatim.
void append_json_string(std::string& out, const std::string& s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace

std::string encode_header(const std::vector<SafetensorsEntry>& entries,
                          const std::map<std::string, std::string>& metadata, const char* op) {
  std::string out = "{";
  bool first = true;
  if (!metadata.empty()) {
    out += "\"__metadata__\":{";
    for (const auto& [k, v] : metadata) {
      EMBER_CHECK(is_valid_utf8(k) && is_valid_utf8(v), ValueError, "[", op, "] metadata key '",
                  HeaderParser::printable(k), "' or its value is not valid UTF-8");
      if (!first) out += ',';
      first = false;
      append_json_string(out, k);
      out += ':';
      append_json_string(out, v);
    }
    out += '}';
    first = false;
  }
  for (const SafetensorsEntry& e : entries) {
    EMBER_CHECK(is_valid_utf8(e.name), ValueError, "[", op, "] tensor name '",
                HeaderParser::printable(e.name), "' is not valid UTF-8");
    if (!first) out += ',';
    first = false;
    append_json_string(out, e.name);
    out += ":{\"dtype\":\"";
    out += e.dtype;
    out += "\",\"shape\":[";
    for (size_t i = 0; i < e.shape.size(); ++i) {
      if (i) out += ',';
      out += std::to_string(e.shape[i]);
    }
    out += "],\"data_offsets\":[";
    out += std::to_string(e.begin);
    out += ',';
    out += std::to_string(e.end);
    out += "]}";
  }
  out += '}';
  out.append((8 - out.size() % 8) % 8, ' ');
  EMBER_CHECK(out.size() <= kMaxHeaderSize, ValueError, "[", op, "] the header would be ",
              out.size(), " bytes, over the format's limit of ", kMaxHeaderSize);
  return out;
}

}  // namespace ember::io_detail
