// CharTokenizer (one token per code point) and BPETokenizer (GPT-2 style byte-level BPE): UTF-8
// handling, pre-tokenization, incremental BPE training, heap-driven encoding, JSON files.
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <unordered_set>

#include "core/utf8.hpp"
#include "ember/data/text.hpp"
#include "ember/error.hpp"
#include "ember/memory.hpp"
#include "ember/ops.hpp"

namespace ember::data {

using json = nlohmann::json;

namespace {

// The most bytes all of a BPE vocabulary's tokens may hold together, whatever the merge list says
// (GPT-2's 50257 tokens hold well under a megabyte).
constexpr uint64_t kMaxVocabBytes = uint64_t{1} << 30;

// ---- UTF-8 ----

// Length (1-4) of the well-formed UTF-8 sequence at s[i], storing its code point in cp; 0 when
// the bytes there are not well-formed (RFC 3629: no overlongs, surrogates or values > U+10FFFF).
int utf8_next(std::string_view s, size_t i, char32_t& cp) {
  const uint8_t c = static_cast<uint8_t>(s[i]);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  int len;
  char32_t min;
  if ((c & 0xE0) == 0xC0) {
    len = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < static_cast<size_t>(len)) return 0;
  for (int k = 1; k < len; ++k) {
    const uint8_t d = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool valid_code_point(int64_t cp) {
  return cp >= 0 && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
}

// "'a' (U+0061)" for printable ASCII, "'\n' (U+000A)" for the usual escapes, else "U+00E9".
std::string describe_code_point(char32_t cp) {
  char hex[16];
  std::snprintf(hex, sizeof(hex), "U+%04X", static_cast<unsigned>(cp));
  const char* esc = cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : cp == '\r' ? "\\r" : nullptr;
  if (esc != nullptr) return detail::str_cat("'", esc, "' (", hex, ")");
  if (cp >= 0x20 && cp < 0x7F && cp != '\'' && cp != '\\') {
    return detail::str_cat("'", static_cast<char>(cp), "' (", hex, ")");
  }
  return hex;
}

std::string byte_hex(uint8_t b) {
  char hex[8];
  std::snprintf(hex, sizeof(hex), "0x%02x", static_cast<unsigned>(b));
  return hex;
}

// ---- tensors of ids ----

std::vector<int64_t> ids_from_tensor(const Tensor& t, const char* op) {
  EMBER_CHECK(t.defined(), ValueError, "[", op, "] the id tensor is undefined");
  EMBER_CHECK(t.dim() == 1, ShapeError, "[", op, "] expected a 1-D tensor of token ids, got ",
              t.sizes());
  EMBER_CHECK(is_integral(t.dtype()), DTypeError, "[", op,
              "] expected an integer tensor of token ids, got ", t.dtype());
  EMBER_CHECK(t.is_cpu(), DeviceError, "[", op, "] expected a CPU tensor, got ", t.device());
  const Tensor c = t.to(kInt64).contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + c.numel());
}

Tensor ids_to_tensor(const std::vector<int64_t>& ids) {
  Tensor t = empty({static_cast<int64_t>(ids.size())}, kInt64);
  if (!ids.empty()) std::memcpy(t.data_ptr<int64_t>(), ids.data(), ids.size() * sizeof(int64_t));
  return t;
}

// ---- JSON files ----

template <class... Args>
[[noreturn]] void bad_file(const char* op, const std::string& path, Args&&... args) {
  throw IOError(detail::str_cat("[", op, "] ", path, ": ", std::forward<Args>(args)...));
}

// Appends compact JSON for v to out, stopping once out is over kBriefChars; containers nested
// more than kBriefDepth deep print as [...] / {...}. json::dump recurses once per nesting level,
// so a hostile file of 30000 nested arrays would overflow the stack in an error message.
constexpr size_t kBriefChars = 40;
constexpr int kBriefDepth = 4;
void brief_into(const json& v, std::string& out, int depth) {
  if (!v.is_array() && !v.is_object()) {
    out += v.dump();  // a scalar (its strings were checked to be UTF-8 by the parser)
    return;
  }
  const bool array = v.is_array();
  if (depth >= kBriefDepth && !v.empty()) {
    out += array ? "[...]" : "{...}";
    return;
  }
  out += array ? '[' : '{';
  bool first = true;
  for (auto it = v.begin(); it != v.end() && out.size() <= kBriefChars; ++it) {
    if (!first) out += ',';
    first = false;
    if (!array) {
      out += json(it.key()).dump();
      out += ':';
    }
    brief_into(*it, out, depth + 1);
  }
  out += array ? ']' : '}';
}

// A short rendering of a JSON value for error messages.
std::string brief(const json& v) {
  std::string s;
  brief_into(v, s, 0);
  if (s.size() > kBriefChars) s = s.substr(0, kBriefChars - 3) + "...";
  return s;
}

// The value as int64 when it is a JSON integer that fits, else nullopt.
std::optional<int64_t> as_int(const json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  return std::nullopt;
}

// Parses the file and checks {"type": type, "version": 1}.
json load_json(const std::string& path, const char* op, const char* type) {
  const std::string text = read_text_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    bad_file(op, path, "malformed JSON: ", e.what());
  }
  if (!j.is_object()) bad_file(op, path, "expected a JSON object, got ", brief(j));
  const auto t = j.find("type");
  if (t == j.end() || !t->is_string()) bad_file(op, path, "missing the string field \"type\"");
  if (t->get<std::string>() != type) {
    bad_file(op, path, "type is ", brief(*t), ", expected \"", type, "\"");
  }
  const auto v = j.find("version");
  if (v == j.end()) bad_file(op, path, "missing the field \"version\"");
  const std::optional<int64_t> version = as_int(*v);
  if (!version || *version != 1) {
    bad_file(op, path, "unsupported version ", brief(*v), ", expected 1");
  }
  return j;
}

void save_json(const json& j, const std::string& path, const char* op) {
  std::string text;
  try {
    text = j.dump();
  } catch (const json::exception& e) {
    throw IOError(detail::str_cat("[", op, "] ", path, ": cannot serialize: ", e.what()));
  }
  text += '\n';
  write_text_file(path, text);
}

// ---- pre-tokenization ----

enum class ByteClass : uint8_t { kLetter, kDigit, kSpace, kOther };

constexpr ByteClass classify(uint8_t c) {
  if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return ByteClass::kLetter;
  if (c >= '0' && c <= '9') return ByteClass::kDigit;
  if (c == ' ' || (c >= '\t' && c <= '\r')) return ByteClass::kSpace;
  return ByteClass::kOther;
}

struct ClassTable {
  ByteClass c[256];
  constexpr ClassTable() : c() {
    for (int i = 0; i < 256; ++i) c[i] = classify(static_cast<uint8_t>(i));
  }
};
constexpr ClassTable kClass;

inline ByteClass cls(std::string_view s, size_t i) { return kClass.c[static_cast<uint8_t>(s[i])]; }

// Length of a GPT-2 contraction ('s 't 're 've 'm 'll 'd) at s[i] == '\'', or 0.
size_t contraction_length(std::string_view s, size_t i) {
  const size_t left = s.size() - i - 1;
  if (left >= 1) {
    const char a = s[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (left >= 2) {
      const char b = s[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  return 0;
}

// Calls emit(chunk) for each chunk of `text` (the rule is documented at pretokenize).
template <class F>
void for_each_chunk(std::string_view text, F&& emit) {
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    if (text[i] == '\'') {
      const size_t len = contraction_length(text, i);
      if (len > 0) {
        emit(text.substr(i, len));
        i += len;
        continue;
      }
    }
    size_t j = i;  // first byte of the run
    if (text[i] == ' ' && i + 1 < n && cls(text, i + 1) != ByteClass::kSpace) j = i + 1;
    const ByteClass k = cls(text, j);
    size_t e = j + 1;
    while (e < n && cls(text, e) == k) ++e;
    // Whitespace before a non-space byte leaves its last byte to that byte's chunk.
    if (k == ByteClass::kSpace && e < n && e - i >= 2) --e;
    emit(text.substr(i, e - i));
    i = e;
  }
}

// Calls on_text(piece) for the text between special tokens and on_special(k) for special token k,
// matching the leftmost occurrence first, the longest at one position.
template <class F, class G>
void split_specials(std::string_view text, const std::vector<std::string>& specials, F&& on_text,
                    G&& on_special) {
  constexpr size_t npos = std::string_view::npos;
  std::vector<size_t> next(specials.size());
  for (size_t t = 0; t < specials.size(); ++t) next[t] = text.find(specials[t]);
  size_t pos = 0;
  for (;;) {
    size_t best = npos, best_t = 0;
    for (size_t t = 0; t < specials.size(); ++t) {
      if (next[t] < best ||
          (next[t] == best && best != npos && specials[t].size() > specials[best_t].size())) {
        best = next[t];
        best_t = t;
      }
    }
    if (best == npos) {
      if (pos < text.size()) on_text(text.substr(pos));
      return;
    }
    if (best > pos) on_text(text.substr(pos, best - pos));
    on_special(best_t);
    pos = best + specials[best_t].size();
    for (size_t t = 0; t < specials.size(); ++t) {
      if (next[t] != npos && next[t] < pos) next[t] = text.find(specials[t], pos);
    }
  }
}

// ---- BPE encoding of one chunk ----

inline uint64_t pair_key(int64_t a, int64_t b) {
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
}

using RankMap = std::unordered_map<uint64_t, int32_t>;

inline int32_t rank_of(const RankMap& ranks, int32_t a, int32_t b) {
  const auto it = ranks.find(pair_key(a, b));
  return it == ranks.end() ? -1 : it->second;
}

// Per-call state of encode: the chunk cache (chunk -> its ids' place in the output) and buffers.
struct EncodeState {
  struct Symbol {
    int32_t id, prev, next;
  };
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> cache;  // -> (offset, length)
  std::vector<Symbol> symbols;
  std::vector<uint64_t> heap;  // (rank << 32 | position), a min-heap
};

// GPT-2's bpe() on one chunk: repeatedly merge the lowest-ranked adjacent pair, leftmost first.
// A min-heap of (rank, position) over a linked list of symbols makes it O(n log n): a merge only
// creates pairs of higher rank (the new token exists only from its own merge on), so popping
// (rank, position) in order applies every occurrence of rank r left to right, as GPT-2 does.
void bpe_chunk(std::string_view chunk, const RankMap& ranks, EncodeState& st,
               std::vector<int64_t>& out) {
  const int32_t n = static_cast<int32_t>(chunk.size());
  auto& sym = st.symbols;
  auto& heap = st.heap;
  sym.resize(static_cast<size_t>(n));
  heap.clear();
  for (int32_t i = 0; i < n; ++i) {
    sym[static_cast<size_t>(i)] = {static_cast<uint8_t>(chunk[static_cast<size_t>(i)]), i - 1,
                                   i + 1 < n ? i + 1 : -1};
  }
  const auto push = [&](int32_t r, int32_t pos) {
    heap.push_back((static_cast<uint64_t>(r) << 32) | static_cast<uint32_t>(pos));
    std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
  };
  for (int32_t i = 0; i + 1 < n; ++i) {
    const int32_t r =
        rank_of(ranks, sym[static_cast<size_t>(i)].id, sym[static_cast<size_t>(i + 1)].id);
    if (r >= 0) push(r, i);
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    const uint64_t e = heap.back();
    heap.pop_back();
    const int32_t r = static_cast<int32_t>(e >> 32);
    const int32_t i = static_cast<int32_t>(e & 0xFFFFFFFFu);
    EncodeState::Symbol& s = sym[static_cast<size_t>(i)];
    if (s.id < 0 || s.next < 0) continue;
    EncodeState::Symbol& t = sym[static_cast<size_t>(s.next)];
    if (rank_of(ranks, s.id, t.id) != r) continue;  // stale entry
    s.id = 256 + r;
    t.id = -1;
    s.next = t.next;
    if (s.next >= 0) sym[static_cast<size_t>(s.next)].prev = i;
    if (s.prev >= 0) {
      const int32_t rp = rank_of(ranks, sym[static_cast<size_t>(s.prev)].id, s.id);
      if (rp >= 0) push(rp, s.prev);
    }
    if (s.next >= 0) {
      const int32_t rn = rank_of(ranks, s.id, sym[static_cast<size_t>(s.next)].id);
      if (rn >= 0) push(rn, i);
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[static_cast<size_t>(i)].next) {
    out.push_back(sym[static_cast<size_t>(i)].id);
  }
}

void encode_chunks(std::string_view text, const RankMap& ranks, EncodeState& st,
                   std::vector<int64_t>& out) {
  for_each_chunk(text, [&](std::string_view c) {
    if (c.size() == 1) {
      out.push_back(static_cast<uint8_t>(c[0]));
      return;
    }
    const auto [it, inserted] = st.cache.try_emplace(c, out.size(), 0);
    if (!inserted) {  // a repeated chunk: copy the ids of its first occurrence
      const auto [offset, length] = it->second;
      const size_t old = out.size();
      out.resize(old + length);
      std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(offset), length,
                  out.begin() + static_cast<std::ptrdiff_t>(old));
      return;
    }
    const size_t start = out.size();
    bpe_chunk(c, ranks, st, out);
    it->second.second = out.size() - start;
  });
}

}  // namespace

// ---- CharTokenizer ----

CharTokenizer::CharTokenizer(std::vector<char32_t> vocab) : vocab_(std::move(vocab)) {
  EMBER_CHECK(vocab_.size() < static_cast<size_t>(INT32_MAX), ValueError,
              "[CharTokenizer] vocabulary too large: ", vocab_.size());
  for (size_t i = 0; i < vocab_.size(); ++i) {
    const char32_t cp = vocab_[i];
    EMBER_CHECK(valid_code_point(cp), ValueError, "[CharTokenizer] entry ", i, " (",
                static_cast<uint32_t>(cp), ") is not a Unicode scalar value");
    EMBER_CHECK(i == 0 || vocab_[i - 1] < cp, ValueError,
                "[CharTokenizer] the vocabulary must be strictly increasing: entry ", i, " ",
                describe_code_point(cp), " follows ", describe_code_point(vocab_[i - 1]));
    if (cp < 128) ascii_ids_[cp] = static_cast<int32_t>(i);
  }
}

CharTokenizer CharTokenizer::from_text(std::string_view text) {
  std::vector<bool> seen(0x110000, false);
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    const int len = utf8_next(text, i, cp);
    EMBER_CHECK(len > 0, ValueError, "[CharTokenizer.from_text] invalid UTF-8 at byte offset ", i,
                " (byte ", byte_hex(static_cast<uint8_t>(text[i])), ")");
    seen[cp] = true;
    i += static_cast<size_t>(len);
  }
  std::vector<char32_t> vocab;
  for (char32_t cp = 0; cp < 0x110000; ++cp) {
    if (seen[cp]) vocab.push_back(cp);
  }
  return CharTokenizer(std::move(vocab));
}

std::vector<int64_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const uint8_t c = static_cast<uint8_t>(text[i]);
    char32_t cp = c;
    int len = 1;
    int64_t id = -1;
    if (c < 0x80) {
      id = ascii_ids_[c];
    } else {
      len = utf8_next(text, i, cp);
      EMBER_CHECK(len > 0, ValueError, "[CharTokenizer.encode] invalid UTF-8 at byte offset ", i,
                  " (byte ", byte_hex(c), ")");
      const auto it = std::lower_bound(vocab_.begin(), vocab_.end(), cp);
      if (it != vocab_.end() && *it == cp) id = it - vocab_.begin();
    }
    EMBER_CHECK(id >= 0, ValueError, "[CharTokenizer.encode] character ", describe_code_point(cp),
                " at byte offset ", i, " is not in the vocabulary of ", vocab_.size(),
                " characters");
    out.push_back(id);
    i += static_cast<size_t>(len);
  }
  return out;
}

Tensor CharTokenizer::encode_tensor(std::string_view text) const {
  return ids_to_tensor(encode(text));
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    EMBER_CHECK(id >= 0 && id < vocab_size(), IndexError, "[CharTokenizer.decode] token id ", id,
                " at position ", i, " is out of range for a vocabulary of ", vocab_size());
    detail::append_utf8(out, vocab_[static_cast<size_t>(id)]);
  }
  return out;
}

std::string CharTokenizer::decode(const Tensor& ids) const {
  return decode(ids_from_tensor(ids, "CharTokenizer.decode"));
}

void CharTokenizer::save(const std::string& path) const {
  json j = {{"type", "char"}, {"version", 1}};
  json& v = j["vocab"] = json::array();
  for (char32_t cp : vocab_) v.push_back(static_cast<uint32_t>(cp));
  save_json(j, path, "CharTokenizer.save");
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  const char* op = "CharTokenizer.load";
  const json j = load_json(path, op, "char");
  const auto v = j.find("vocab");
  if (v == j.end() || !v->is_array()) bad_file(op, path, "missing the array field \"vocab\"");
  std::vector<char32_t> vocab;
  vocab.reserve(v->size());
  for (size_t i = 0; i < v->size(); ++i) {
    const std::optional<int64_t> cp = as_int((*v)[i]);
    if (!cp) bad_file(op, path, "vocab entry ", i, " is not an integer: ", brief((*v)[i]));
    if (!valid_code_point(*cp)) {
      bad_file(op, path, "vocab entry ", i, " (", *cp, ") is not a Unicode scalar value");
    }
    if (i > 0 && vocab.back() >= static_cast<char32_t>(*cp)) {
      bad_file(op, path, "vocab entry ", i, " (", *cp, ") is not greater than the one before");
    }
    vocab.push_back(static_cast<char32_t>(*cp));
  }
  return CharTokenizer(std::move(vocab));
}

// ---- pretokenize ----

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> out;
  for_each_chunk(text, [&](std::string_view c) { out.push_back(c); });
  return out;
}

// ---- BPETokenizer: construction ----

BPETokenizer::BPETokenizer() : BPETokenizer(std::vector<Merge>{}) {}

BPETokenizer::BPETokenizer(std::vector<Merge> merges, std::vector<std::string> special_tokens)
    : merges_(std::move(merges)), special_tokens_(std::move(special_tokens)) {
  EMBER_CHECK(merges_.size() + special_tokens_.size() < static_cast<size_t>(INT32_MAX - 256),
              ValueError, "[BPETokenizer] too many tokens: ", merges_.size(), " merges and ",
              special_tokens_.size(), " special tokens");
  tokens_.reserve(256 + merges_.size() + special_tokens_.size());
  for (int b = 0; b < 256; ++b) tokens_.emplace_back(1, static_cast<char>(b));
  ranks_.reserve(merges_.size());
  // A merge's token is the concatenation of two earlier ones, so a list of 40 merges can describe
  // a 2^40-byte token. The vocabulary's bytes are capped (kMaxVocabBytes, and the allocation
  // limit when lower) before anything that large is built.
  const uint64_t max_bytes = std::min<uint64_t>(kMaxVocabBytes, max_allocation_bytes());
  uint64_t total_bytes = 256;
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto [a, b] = merges_[r];
    const int64_t limit = 256 + static_cast<int64_t>(r);
    EMBER_CHECK(a >= 0 && a < limit && b >= 0 && b < limit, ValueError, "[BPETokenizer] merge ", r,
                " (", a, ", ", b, ") refers to a token not defined before it (ids < ", limit, ")");
    const auto [it, inserted] = ranks_.emplace(pair_key(a, b), static_cast<int32_t>(r));
    EMBER_CHECK(inserted, ValueError, "[BPETokenizer] merge ", r, " (", a, ", ", b,
                ") repeats merge ", it->second);
    const std::string& left = tokens_[static_cast<size_t>(a)];
    const std::string& right = tokens_[static_cast<size_t>(b)];
    total_bytes += left.size() + right.size();
    EMBER_CHECK(total_bytes <= max_bytes, ValueError, "[BPETokenizer] merge ", r, " (", a, ", ", b,
                ") makes a token of ", left.size() + right.size(),
                " bytes, and the vocabulary's tokens exceed the limit of ", max_bytes,
                " bytes in all");
    tokens_.push_back(left + right);
  }
  std::unordered_set<std::string_view> seen;
  for (size_t k = 0; k < special_tokens_.size(); ++k) {
    const std::string& s = special_tokens_[k];
    EMBER_CHECK(!s.empty(), ValueError, "[BPETokenizer] special token ", k, " is empty");
    EMBER_CHECK(seen.insert(s).second, ValueError, "[BPETokenizer] special token '", s,
                "' appears twice");
    tokens_.push_back(s);
  }
}

int64_t BPETokenizer::special_token_id(std::string_view token) const {
  for (size_t k = 0; k < special_tokens_.size(); ++k) {
    if (special_tokens_[k] == token) return static_cast<int64_t>(256 + merges_.size() + k);
  }
  throw ValueError(
      detail::str_cat("[BPETokenizer.special_token_id] '", token, "' is not a special token"));
}

const std::string& BPETokenizer::token_bytes(int64_t id) const {
  EMBER_CHECK(id >= 0 && id < vocab_size(), IndexError, "[BPETokenizer.token_bytes] token id ", id,
              " is out of range for a vocabulary of ", vocab_size());
  return tokens_[static_cast<size_t>(id)];
}

// ---- BPETokenizer: training ----

BPETokenizer BPETokenizer::train(std::string_view corpus, int64_t vocab_size,
                                 const BPETrainOptions& options) {
  const int64_t n_special = static_cast<int64_t>(options.special_tokens.size());
  EMBER_CHECK(vocab_size >= 256 + n_special, ValueError, "[BPETokenizer.train] vocab_size ",
              vocab_size, " is below 256 bytes + ", n_special, " special tokens");
  EMBER_CHECK(vocab_size < INT32_MAX, ValueError, "[BPETokenizer.train] vocab_size ", vocab_size,
              " is too large");
  EMBER_CHECK(options.min_frequency >= 1, ValueError,
              "[BPETokenizer.train] min_frequency must be >= 1, got ", options.min_frequency);
  static_cast<void>(BPETokenizer(std::vector<Merge>{}, options.special_tokens));  // validates them
  const size_t max_merges = static_cast<size_t>(vocab_size - 256 - n_special);

  // Chunk frequencies; chunks of one byte hold no pair.
  std::unordered_map<std::string_view, int64_t> chunk_counts;
  const auto count_chunks = [&](std::string_view piece) {
    for_each_chunk(piece, [&](std::string_view c) {
      if (c.size() >= 2) ++chunk_counts[c];
    });
  };
  split_specials(corpus, options.special_tokens, count_chunks, [](size_t) {});

  // Distinct chunks as words of token ids; pair counts weighted by chunk frequency; and, for each
  // pair, the words containing it (each word once per pair).
  struct Word {
    std::vector<int32_t> ids;
    int64_t count;
  };
  std::vector<Word> words;
  words.reserve(chunk_counts.size());
  for (const auto& [chunk, count] : chunk_counts) {
    Word w{std::vector<int32_t>(chunk.size()), count};
    for (size_t i = 0; i < chunk.size(); ++i) w.ids[i] = static_cast<uint8_t>(chunk[i]);
    words.push_back(std::move(w));
  }
  std::unordered_map<uint64_t, int64_t> pair_counts;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  const auto add_to_index = [&](uint64_t key, int32_t wi) {
    std::vector<int32_t>& list = where[key];
    if (list.empty() || list.back() != wi) list.push_back(wi);
  };
  for (size_t wi = 0; wi < words.size(); ++wi) {
    const Word& w = words[wi];
    for (size_t i = 0; i + 1 < w.ids.size(); ++i) {
      const uint64_t key = pair_key(w.ids[i], w.ids[i + 1]);
      pair_counts[key] += w.count;
      add_to_index(key, static_cast<int32_t>(wi));
    }
  }

  // A max-heap of (count, pair), ties to the smaller pair, with lazy updates: a pair's count only
  // falls after the merge that creates it (pairs that grow contain the new token, so they are new
  // and pushed once their count is known); a popped entry whose count is out of date is pushed
  // again with the current count, so the first up-to-date top is the true maximum.
  struct Entry {
    int64_t count;
    uint64_t pair;
  };
  const auto lower = [](const Entry& x, const Entry& y) {
    return x.count != y.count ? x.count < y.count : x.pair > y.pair;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(lower)> heap(lower);
  for (const auto& [key, count] : pair_counts) heap.push({count, key});

  const auto add_count = [&](uint64_t key, int64_t delta) {
    const auto it = pair_counts.try_emplace(key, 0).first;
    it->second += delta;
    if (it->second == 0) pair_counts.erase(it);
  };
  std::vector<Merge> merges;
  std::vector<int32_t> new_ids;
  std::vector<uint64_t> grown;
  while (merges.size() < max_merges && !heap.empty()) {
    const Entry top = heap.top();
    heap.pop();
    const auto found = pair_counts.find(top.pair);
    const int64_t current = found == pair_counts.end() ? 0 : found->second;
    if (current != top.count) {
      if (current > 0) heap.push({current, top.pair});
      continue;
    }
    if (current < options.min_frequency) break;
    const int32_t a = static_cast<int32_t>(top.pair >> 32);
    const int32_t b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    const int32_t x = static_cast<int32_t>(256 + merges.size());
    merges.emplace_back(a, b);

    const std::vector<int32_t> list = std::move(where[top.pair]);
    where.erase(top.pair);
    for (int32_t wi : list) {
      Word& w = words[static_cast<size_t>(wi)];
      new_ids.clear();
      bool changed = false;
      for (size_t i = 0; i < w.ids.size();) {
        if (i + 1 < w.ids.size() && w.ids[i] == a && w.ids[i + 1] == b) {
          new_ids.push_back(x);
          i += 2;
          changed = true;
        } else {
          new_ids.push_back(w.ids[i++]);
        }
      }
      if (!changed) continue;  // defensive: the index lists each word once per pair
      for (size_t i = 0; i + 1 < w.ids.size(); ++i) {
        add_count(pair_key(w.ids[i], w.ids[i + 1]), -w.count);
      }
      for (size_t i = 0; i + 1 < new_ids.size(); ++i) {
        const uint64_t key = pair_key(new_ids[i], new_ids[i + 1]);
        add_count(key, w.count);
        if (new_ids[i] == x || new_ids[i + 1] == x) {
          add_to_index(key, wi);
          grown.push_back(key);
        }
      }
      w.ids.swap(new_ids);
    }
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (uint64_t key : grown) {
      const auto it = pair_counts.find(key);
      if (it != pair_counts.end()) heap.push({it->second, key});
    }
    grown.clear();
  }
  return BPETokenizer(std::move(merges), options.special_tokens);
}

// ---- BPETokenizer: encode and decode ----

std::vector<int64_t> BPETokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 2 + 1);
  EncodeState st;
  const int64_t first_special = 256 + static_cast<int64_t>(merges_.size());
  split_specials(
      text, special_tokens_, [&](std::string_view piece) { encode_chunks(piece, ranks_, st, out); },
      [&](size_t k) { out.push_back(first_special + static_cast<int64_t>(k)); });
  return out;
}

std::vector<int64_t> BPETokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 2 + 1);
  EncodeState st;
  encode_chunks(text, ranks_, st, out);
  return out;
}

Tensor BPETokenizer::encode_tensor(std::string_view text) const {
  return ids_to_tensor(encode(text));
}

std::string BPETokenizer::decode(const std::vector<int64_t>& ids) const {
  size_t total = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    EMBER_CHECK(id >= 0 && id < vocab_size(), IndexError, "[BPETokenizer.decode] token id ", id,
                " at position ", i, " is out of range for a vocabulary of ", vocab_size());
    total += tokens_[static_cast<size_t>(id)].size();
  }
  std::string out;
  out.reserve(total);
  for (int64_t id : ids) out += tokens_[static_cast<size_t>(id)];
  return out;
}

std::string BPETokenizer::decode(const Tensor& ids) const {
  return decode(ids_from_tensor(ids, "BPETokenizer.decode"));
}

// ---- BPETokenizer: files ----

void BPETokenizer::save(const std::string& path) const {
  json j = {{"type", "bpe"}, {"version", 1}};
  json& m = j["merges"] = json::array();
  for (const auto& [a, b] : merges_) m.push_back({a, b});
  json& s = j["special_tokens"] = json::object();
  for (size_t k = 0; k < special_tokens_.size(); ++k) {
    s[special_tokens_[k]] = 256 + merges_.size() + k;
  }
  save_json(j, path, "BPETokenizer.save");
}

BPETokenizer BPETokenizer::load(const std::string& path) {
  const char* op = "BPETokenizer.load";
  const json j = load_json(path, op, "bpe");
  const auto m = j.find("merges");
  if (m == j.end() || !m->is_array()) bad_file(op, path, "missing the array field \"merges\"");
  std::vector<Merge> merges;
  merges.reserve(m->size());
  std::unordered_map<uint64_t, size_t> seen;
  for (size_t r = 0; r < m->size(); ++r) {
    const json& e = (*m)[r];
    if (!e.is_array() || e.size() != 2) {
      bad_file(op, path, "merge ", r, " is not a pair [left, right]: ", brief(e));
    }
    const int64_t limit = 256 + static_cast<int64_t>(r);
    int64_t ids[2];
    for (size_t k = 0; k < 2; ++k) {
      const std::optional<int64_t> id = as_int(e[k]);
      if (!id)
        bad_file(op, path, "merge ", r, " has an id that is not a 64-bit integer: ", brief(e[k]));
      if (*id < 0) bad_file(op, path, "merge ", r, " has a negative id ", *id);
      if (*id >= limit) {
        bad_file(op, path, "merge ", r, " refers to token ", *id,
                 ", which is not defined before it (ids < ", limit, ")");
      }
      ids[k] = *id;
    }
    const auto [it, inserted] = seen.emplace(pair_key(ids[0], ids[1]), r);
    if (!inserted) bad_file(op, path, "merge ", r, " repeats merge ", it->second);
    merges.emplace_back(ids[0], ids[1]);
  }
  std::vector<std::string> specials;
  const auto s = j.find("special_tokens");
  if (s != j.end()) {
    if (!s->is_object()) bad_file(op, path, "\"special_tokens\" is not an object");
    const int64_t first = 256 + static_cast<int64_t>(merges.size());
    const int64_t n = static_cast<int64_t>(s->size());
    specials.resize(static_cast<size_t>(n));
    for (const auto& [name, value] : s->items()) {
      const std::optional<int64_t> id = as_int(value);
      if (!id) {
        bad_file(op, path, "special token '", name,
                 "' has an id that is not a 64-bit integer: ", brief(value));
      }
      if (*id < first || *id >= first + n) {
        bad_file(op, path, "special token '", name, "' has id ", *id, ", expected one of ", first,
                 "..", first + n - 1, " (after the merges)");
      }
      std::string& slot = specials[static_cast<size_t>(*id - first)];
      if (!slot.empty())
        bad_file(op, path, "special tokens '", slot, "' and '", name, "' share id ", *id);
      if (name.empty()) bad_file(op, path, "a special token is empty");
      slot = name;
    }
  }
  try {
    return BPETokenizer(std::move(merges), std::move(specials));
  } catch (const ValueError& e) {
    bad_file(op, path, e.what());
  }
}

}  // namespace ember::data
