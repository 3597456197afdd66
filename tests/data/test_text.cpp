// Text data: read_text_file, CharTokenizer, pretokenize, BPETokenizer (hand-computed training,
// agreement with naive reference trainer and encoder, round trips on arbitrary bytes, files,
// corrupt files, threads) and TokenDataset.
#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "core/utf8.hpp"
#include "ember/data/text.hpp"
#include "io/io_test_util.hpp"
#include "test_util.hpp"

using namespace ember;
using namespace ember::data;
using test::TempDir;
using test::write_bytes;

namespace {

using Merge = BPETokenizer::Merge;
using Ids = std::vector<int64_t>;

std::vector<std::string> strings(const std::vector<std::string_view>& v) {
  return std::vector<std::string>(v.begin(), v.end());
}

std::string utf8(char32_t cp) {
  std::string s;
  detail::append_utf8(s, cp);
  return s;
}

// Random valid UTF-8 drawing from all four sequence lengths (no surrogates).
std::string random_utf8(std::mt19937& rng, size_t n_chars) {
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    char32_t cp;
    switch (rng() % 4) {
      case 0:
        cp = 0x20 + rng() % 0x5F;
        break;
      case 1:
        cp = 0x80 + rng() % (0x800 - 0x80);
        break;
      case 2:
        cp = 0x800 + rng() % (0x10000 - 0x800);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp -= 0x800;
        break;
      default:
        cp = 0x10000 + rng() % (0x110000 - 0x10000);
        break;
    }
    s += utf8(cp);
  }
  return s;
}

std::string random_bytes(std::mt19937& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xFF);
  return s;
}

// Words of a small alphabet (many distinct chunks, many ties) mixed with real words, digits,
// punctuation, contractions, UTF-8 and assorted whitespace.
std::string synthetic_corpus(size_t n_words, uint32_t seed) {
  static const std::vector<std::string> common = {
      "the",  "The",   "and",    "of",    "to",    "in", "that", "it's", "don't",
      "café", "naïve", "日本語", "42",    "1999",  "!!", "...",  ",",    ".",
      "—",    "lower", "lowest", "newer", "wider", "\n", "\n\n", "\t",   "  "};
  std::mt19937 rng(seed);
  std::string s;
  for (size_t i = 0; i < n_words; ++i) {
    if (rng() % 3 == 0) {
      const size_t len = 1 + rng() % 7;
      std::string w;
      for (size_t k = 0; k < len; ++k) w += static_cast<char>('a' + rng() % 5);
      s += w;
    } else {
      s += common[rng() % common.size()];
    }
    if (rng() % 4 != 0) s += ' ';
  }
  return s;
}

// The textbook algorithm: rescan every chunk for pair counts at every step.
std::vector<Merge> naive_train(std::string_view corpus, int64_t vocab_size) {
  std::map<std::string, int64_t> chunk_counts;
  for (std::string_view c : pretokenize(corpus)) ++chunk_counts[std::string(c)];
  std::vector<std::pair<Ids, int64_t>> words;
  for (const auto& [c, n] : chunk_counts) {
    Ids ids;
    for (char ch : c) ids.push_back(static_cast<uint8_t>(ch));
    words.emplace_back(ids, n);
  }
  std::vector<Merge> merges;
  while (256 + static_cast<int64_t>(merges.size()) < vocab_size) {
    std::map<Merge, int64_t> counts;
    for (const auto& [ids, n] : words) {
      for (size_t i = 0; i + 1 < ids.size(); ++i) counts[{ids[i], ids[i + 1]}] += n;
    }
    Merge best{-1, -1};
    int64_t best_count = 0;
    for (const auto& [p, n] : counts) {  // in pair order: the first maximum is the smallest pair
      if (n > best_count) best = p, best_count = n;
    }
    if (best_count < 2) break;
    const int64_t x = 256 + static_cast<int64_t>(merges.size());
    merges.push_back(best);
    for (auto& [ids, n] : words) {
      Ids out;
      for (size_t i = 0; i < ids.size();) {
        if (i + 1 < ids.size() && ids[i] == best.first && ids[i + 1] == best.second) {
          out.push_back(x);
          i += 2;
        } else {
          out.push_back(ids[i++]);
        }
      }
      ids = out;
    }
  }
  return merges;
}

// GPT-2's bpe() as written in encoder.py: merge the lowest-ranked pair everywhere, repeat.
Ids naive_encode(const BPETokenizer& tok, std::string_view text) {
  std::map<Merge, int64_t> rank;
  for (size_t r = 0; r < tok.merges().size(); ++r) rank[tok.merges()[r]] = static_cast<int64_t>(r);
  Ids out;
  for (std::string_view c : pretokenize(text)) {
    Ids ids;
    for (char ch : c) ids.push_back(static_cast<uint8_t>(ch));
    for (;;) {
      int64_t best = -1;
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        const auto it = rank.find({ids[i], ids[i + 1]});
        if (it != rank.end() && (best < 0 || it->second < best)) best = it->second;
      }
      if (best < 0) break;
      const Merge m = tok.merges()[static_cast<size_t>(best)];
      Ids merged;
      for (size_t i = 0; i < ids.size();) {
        if (i + 1 < ids.size() && ids[i] == m.first && ids[i + 1] == m.second) {
          merged.push_back(256 + best);
          i += 2;
        } else {
          merged.push_back(ids[i++]);
        }
      }
      ids = merged;
    }
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

Ids tensor_values(const Tensor& t) {
  const Tensor c = t.contiguous();
  const int64_t* p = c.data_ptr<int64_t>();
  return Ids(p, p + c.numel());
}

}  // namespace

// ---- files ----

TEST_CASE("read_text_file: whole file, any bytes, typed errors name the path") {
  TempDir dir;
  const std::string bytes = std::string("a\0b\xff\n", 5) + std::string(100000, 'x');
  const std::string path = dir.file("t.txt");
  write_text_file(path, bytes);
  CHECK(read_text_file(path) == bytes);
  CHECK(dir.listing() == std::vector<std::string>{"t.txt"});  // no .tmp left behind
  write_text_file(path, "short");
  CHECK(read_text_file(path) == "short");
  write_text_file(dir.file("empty"), "");
  CHECK(read_text_file(dir.file("empty")).empty());

  const std::string missing = dir.file("missing.txt");
  EMBER_CHECK_THROWS(read_text_file(missing), IOError, "[read_text_file]", missing.c_str());
  EMBER_CHECK_THROWS(read_text_file(dir.path.string()), IOError, "directory");
  const std::string nowhere = dir.file("no/such/dir/out.txt");
  EMBER_CHECK_THROWS(write_text_file(nowhere, "x"), IOError, "[write_text_file]", "no/such/dir");
}

// ---- CharTokenizer ----

TEST_CASE("CharTokenizer: vocabulary is the sorted set of characters") {
  const CharTokenizer tok = CharTokenizer::from_text("hello world");
  const std::string expected = " dehlorw";  // sorted(set("hello world"))
  REQUIRE(tok.vocab_size() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) CHECK(tok.vocab()[i] == char32_t(expected[i]));
  CHECK(tok.encode("hello") == Ids{3, 2, 4, 4, 5});
  CHECK(tok.decode(Ids{7, 5, 6, 4, 1}) == "world");
  CHECK(CharTokenizer::from_text("").vocab_size() == 0);
  CHECK(CharTokenizer().encode("").empty());
}

TEST_CASE("CharTokenizer: round trip with multi-byte UTF-8") {
  const std::string text = "naïve café — 日本語 🙂";
  const CharTokenizer tok = CharTokenizer::from_text(text);
  // Distinct code points: n a ï v e ' ' c f é — 日 本 語 🙂
  CHECK(tok.vocab_size() == 14);
  CHECK(std::is_sorted(tok.vocab().begin(), tok.vocab().end()));
  CHECK(tok.vocab().back() == U'🙂');
  const Ids ids = tok.encode(text);
  CHECK(ids.size() == 18);  // code points, not bytes
  CHECK(tok.decode(ids) == text);

  const Tensor t = tok.encode_tensor(text);
  CHECK(t.dtype() == kInt64);
  CHECK(t.sizes() == IntArrayRef{18});
  CHECK(tensor_values(t) == ids);
  CHECK(tok.decode(t) == text);
  CHECK(tok.decode(t.to(kInt32)) == text);

  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    const std::string s = random_utf8(rng, rng() % 200);
    const CharTokenizer r = CharTokenizer::from_text(s);
    CHECK(r.decode(r.encode(s)) == s);
  }
}

TEST_CASE("CharTokenizer: errors name the offset, the character or the id") {
  const CharTokenizer tok = CharTokenizer::from_text("abc é");
  // Lone continuation byte, invalid lead byte, overlong, surrogate, beyond U+10FFFF, truncated.
  const std::vector<std::string> bad = {
      "ab\x80", "ab\xff", "ab\xc0\x80", "ab\xed\xa0\x80", "ab\xf4\x90\x80\x80", "ab\xe6\x97"};
  for (const std::string& s : bad) {
    INFO(s);
    EMBER_CHECK_THROWS(CharTokenizer::from_text(s), ValueError, "invalid UTF-8", "byte offset 2");
    EMBER_CHECK_THROWS(tok.encode(s), ValueError, "[CharTokenizer.encode]", "byte offset 2");
  }
  EMBER_CHECK_THROWS(tok.encode("abz"), ValueError, "'z' (U+007A)", "byte offset 2",
                     "not in the vocabulary");
  EMBER_CHECK_THROWS(tok.encode("ab\n"), ValueError, "'\\n' (U+000A)");
  EMBER_CHECK_THROWS(tok.encode("é日"), ValueError, "U+65E5", "byte offset 2");
  EMBER_CHECK_THROWS(tok.decode(Ids{0, 5}), IndexError, "token id 5", "position 1");
  EMBER_CHECK_THROWS(tok.decode(Ids{-1}), IndexError, "token id -1");
  EMBER_CHECK_THROWS(tok.decode(ones({2, 2}, kInt64)), ShapeError, "1-D");
  EMBER_CHECK_THROWS(tok.decode(ones({2}, kFloat32)), DTypeError, "integer");
  EMBER_CHECK_THROWS(CharTokenizer(std::vector<char32_t>{'b', 'a'}), ValueError,
                     "strictly increasing");
  EMBER_CHECK_THROWS(CharTokenizer(std::vector<char32_t>{0xD800}), ValueError, "scalar value");
}

TEST_CASE("CharTokenizer: save and load, corrupt files raise IOError naming the file") {
  TempDir dir;
  const std::string text = "naïve café — 日本語 🙂\n";
  const CharTokenizer tok = CharTokenizer::from_text(text);
  const std::string path = dir.file("char.json");
  tok.save(path);
  CHECK(dir.listing() == std::vector<std::string>{"char.json"});
  const CharTokenizer back = CharTokenizer::load(path);
  CHECK(back.vocab() == tok.vocab());
  CHECK(back.encode(text) == tok.encode(text));

  const std::string good = test::read_bytes(path);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "malformed JSON"},
      {good.substr(0, good.size() / 2), "malformed JSON"},
      {R"({"type": "bpe", "version": 1, "vocab": []})", "type"},
      {R"({"type": "char", "version": 2, "vocab": []})", "version"},
      {R"({"type": "char", "version": 1})", "vocab"},
      {R"({"type": "char", "version": 1, "vocab": [98, 97]})", "entry 1"},
      {R"({"type": "char", "version": 1, "vocab": [97, 97]})", "entry 1"},
      {R"({"type": "char", "version": 1, "vocab": ["a"]})", "not an integer"},
      {R"({"type": "char", "version": 1, "vocab": [55296]})", "scalar value"},
      {R"({"type": "char", "version": 1, "vocab": [-1]})", "scalar value"},
      {R"({"type": "char", "version": 1, "vocab": [1114112]})", "scalar value"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string p = dir.file("bad" + std::to_string(i) + ".json");
    write_bytes(p, cases[i].first);
    INFO(cases[i].first);
    EMBER_CHECK_THROWS(CharTokenizer::load(p), IOError, p.c_str(), cases[i].second.c_str());
  }
  const std::string missing = dir.file("missing.json");
  EMBER_CHECK_THROWS(CharTokenizer::load(missing), IOError, missing.c_str());
}

// ---- pretokenize ----

TEST_CASE("BPETokenizer: pretokenize follows the GPT-2-like byte rule") {
  CHECK(strings(pretokenize("Hello world")) == std::vector<std::string>{"Hello", " world"});
  CHECK(
      strings(pretokenize("it's 42 apples!!  ok\n\nend")) ==
      std::vector<std::string>{"it", "'s", " 42", " apples", "!!", " ", " ok", "\n", "\n", "end"});
  CHECK(strings(pretokenize("we'll they're I'm 'x")) ==
        std::vector<std::string>{"we", "'ll", " they", "'re", " I", "'m", " '", "x"});
  // Bytes >= 0x80 are letters: UTF-8 words (and symbols) stay whole.
  CHECK(strings(pretokenize("café naïve 日本語")) ==
        std::vector<std::string>{"café", " naïve", " 日本語"});
  CHECK(strings(pretokenize("a\tb  ")) == std::vector<std::string>{"a", "\t", "b", "  "});
  CHECK(strings(pretokenize("x1y 2,3")) == std::vector<std::string>{"x", "1", "y", " 2", ",", "3"});
  CHECK(strings(pretokenize(std::string("a\0\0b", 4))) ==
        std::vector<std::string>{"a", std::string("\0\0", 2), "b"});
  CHECK(pretokenize("").empty());

  std::mt19937 rng(3);
  for (int trial = 0; trial < 100; ++trial) {
    const std::string s = random_bytes(rng, rng() % 300);
    std::string joined;
    for (std::string_view c : pretokenize(s)) {
      CHECK(!c.empty());
      joined += c;
    }
    CHECK(joined == s);
  }
}

// ---- BPETokenizer training ----

TEST_CASE("BPETokenizer: hand-computed training on aaabdaaabac") {
  // One chunk. Counts: aa 4 (two windows per aaa), ab 2, others 1 -> merge (a, a) = 256:
  //   [256 a b d 256 a b a c]; now (256, a) 2 and (a, b) 2 tie: the smaller pair (97, 98) = 257:
  //   [256 257 d 256 257 a c]; (256, 257) 2 -> 258: [258 d 258 a c]; every pair occurs once: stop.
  const BPETokenizer tok = BPETokenizer::train("aaabdaaabac", 1000);
  CHECK(tok.merges() == std::vector<Merge>{{97, 97}, {97, 98}, {256, 257}});
  CHECK(tok.vocab_size() == 259);
  CHECK(tok.token_bytes(256) == "aa");
  CHECK(tok.token_bytes(257) == "ab");
  CHECK(tok.token_bytes(258) == "aaab");
  CHECK(tok.token_bytes(100) == "d");
  CHECK(tok.encode("aaabdaaabac") == Ids{258, 100, 258, 97, 99});
  CHECK(tok.decode(Ids{258, 100, 258, 97, 99}) == "aaabdaaabac");
  CHECK(tok.encode("aaaa") == Ids{256, 256});
  CHECK(tok.encode("aaa") == Ids{256, 97});  // leftmost first, as GPT-2

  const BPETokenizer one = BPETokenizer::train("aaabdaaabac", 257);
  CHECK(one.merges() == std::vector<Merge>{{97, 97}});
  CHECK(BPETokenizer::train("aaabdaaabac", 256).merges().empty());
  BPETrainOptions options;
  options.min_frequency = 3;  // only (a, a) occurs 3 or more times
  CHECK(BPETokenizer::train("aaabdaaabac", 1000, options).merges() == std::vector<Merge>{{97, 97}});
}

TEST_CASE("BPETokenizer: hand-computed training never merges across chunks") {
  // Chunks "low", " lower", " lowest". Joined, "w " would occur twice; per chunk it never does.
  //   l o 3, o w 3 -> (108, 111) = 256 "lo" (tie, smaller pair)
  //   (256, w) 3 -> 257 "low"
  //   (' ', 257) 2 and (257, e) 2 tie -> (32, 257) = 258 " low"
  //   (258, e) 2 -> 259 " lowe"; then every pair occurs once.
  const BPETokenizer tok = BPETokenizer::train("low lower lowest", 1000);
  CHECK(tok.merges() == std::vector<Merge>{{108, 111}, {256, 119}, {32, 257}, {258, 101}});
  CHECK(tok.token_bytes(259) == " lowe");
  CHECK(tok.encode("low lower lowest") == Ids{257, 259, 'r', 259, 's', 't'});
  CHECK(tok.encode("lowlow") == Ids{257, 257});
  CHECK(tok.encode(" lo") == Ids{32, 256});
}

TEST_CASE("BPETokenizer: training and encoding agree with naive references") {
  const std::string corpus = synthetic_corpus(6000, 11);
  const BPETokenizer tok = BPETokenizer::train(corpus, 600);
  const std::vector<Merge> expected = naive_train(corpus, 600);
  REQUIRE(expected.size() == 344);  // the full vocabulary: every merge is checked
  REQUIRE(tok.merges().size() == expected.size());
  CHECK(tok.merges() == expected);
  CHECK(tok.vocab_size() == 256 + static_cast<int64_t>(expected.size()));

  const std::string other = synthetic_corpus(2000, 12);
  CHECK(tok.encode(other) == naive_encode(tok, other));
  CHECK(tok.encode(corpus) == naive_encode(tok, corpus));
  std::mt19937 rng(5);
  for (int trial = 0; trial < 30; ++trial) {
    const std::string s = random_bytes(rng, rng() % 400);
    CHECK(tok.encode(s) == naive_encode(tok, s));
  }
  // Long chunks take the heap path through many merges.
  const std::string long_run(5000, 'a');
  CHECK(tok.encode(long_run) == naive_encode(tok, long_run));
  std::string long_word;
  for (int i = 0; i < 3000; ++i) long_word += static_cast<char>('a' + rng() % 5);
  CHECK(tok.encode(long_word) == naive_encode(tok, long_word));
}

// ---- BPETokenizer round trips ----

TEST_CASE("BPETokenizer: decode(encode(s)) == s for arbitrary bytes and UTF-8") {
  const BPETokenizer tok = BPETokenizer::train(synthetic_corpus(4000, 21), 512);
  REQUIRE(tok.merges().size() > 100);
  std::mt19937 rng(9);
  for (int trial = 0; trial < 200; ++trial) {
    std::string s = random_bytes(rng, rng() % 500);  // NULs and invalid UTF-8 included
    if (trial % 4 == 0) s += std::string(3, '\0') + "\xff\xfe the café";
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  for (int trial = 0; trial < 100; ++trial) {
    const std::string s = random_utf8(rng, rng() % 300);
    const Ids ids = tok.encode(s);
    CHECK(tok.decode(ids) == s);
    for (int64_t id : ids) CHECK((id >= 0 && id < tok.vocab_size()));
  }
  CHECK(tok.encode("").empty());
  CHECK(tok.decode(Ids{}).empty());
  const Tensor t = tok.encode_tensor("the café");
  CHECK(t.dtype() == kInt64);
  CHECK(t.dim() == 1);
  CHECK(tensor_values(t) == tok.encode("the café"));
  CHECK(tok.decode(t) == "the café");
}

TEST_CASE("BPETokenizer: special tokens are matched literally, after the merges") {
  BPETrainOptions options;
  options.special_tokens = {"<|endoftext|>", "<|pad|>"};
  const std::string corpus = "the cat<|endoftext|>the hat<|endoftext|>the mat sat";
  // Split at the special tokens, the chunks are the, " cat", the, " hat", the, " mat", " sat":
  // "at" 4 -> 256; "th" 3 and "he" 3 tie -> (104, 101) = 257; (t, 257) 3 -> 258; then all 1.
  // Unsplit, "<|", "endoftext" and "|>" would each occur twice and be merged too.
  const BPETokenizer tok = BPETokenizer::train(corpus, 270, options);
  CHECK(tok.merges() == std::vector<Merge>{{97, 116}, {104, 101}, {116, 257}});
  CHECK(tok.vocab_size() == 261);
  const int64_t eot = 259;
  CHECK(tok.special_token_id("<|endoftext|>") == eot);
  CHECK(tok.special_token_id("<|pad|>") == eot + 1);
  CHECK(tok.token_bytes(eot) == "<|endoftext|>");
  EMBER_CHECK_THROWS(tok.special_token_id("<|nope|>"), ValueError, "<|nope|>");
  // No merge spans a special token or contains its bytes (the corpus is split at them).
  for (int64_t id = 256; id < eot; ++id) {
    CHECK(tok.token_bytes(id).find('<') == std::string::npos);
    CHECK(tok.token_bytes(id).find('|') == std::string::npos);
  }

  const Ids ids = tok.encode("hat<|endoftext|><|pad|>cat");
  CHECK(std::count(ids.begin(), ids.end(), eot) == 1);
  CHECK(std::count(ids.begin(), ids.end(), eot + 1) == 1);
  CHECK(tok.decode(ids) == "hat<|endoftext|><|pad|>cat");
  const Ids ordinary = tok.encode_ordinary("a<|pad|>");
  CHECK(std::count(ordinary.begin(), ordinary.end(), eot + 1) == 0);
  CHECK(tok.decode(ordinary) == "a<|pad|>");

  // At one position the longest special token wins; otherwise the leftmost.
  const BPETokenizer nested(std::vector<Merge>{}, {"<a>", "<a><b>", "b>"});
  CHECK(nested.encode("x<a><b>y") == Ids{'x', 257, 'y'});
  CHECK(nested.encode("<a>b>") == Ids{256, 258});
  CHECK(nested.encode("<a") == Ids{'<', 'a'});
}

TEST_CASE("BPETokenizer: encoding is deterministic across threads") {
  const BPETokenizer tok = BPETokenizer::train(synthetic_corpus(4000, 31), 500);
  const std::string text = synthetic_corpus(20000, 32);
  const Ids expected = tok.encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep) results[t] = tok.encode(text);
    });
  }
  for (std::thread& th : threads) th.join();
  for (const Ids& r : results) CHECK(r == expected);
  CHECK(tok.decode(expected) == text);
}

// ---- BPETokenizer files ----

TEST_CASE("BPETokenizer: save and load give identical encodings") {
  TempDir dir;
  BPETrainOptions options;
  options.special_tokens = {"<|endoftext|>"};
  const BPETokenizer tok = BPETokenizer::train(synthetic_corpus(3000, 41), 400, options);
  const std::string path = dir.file("bpe.json");
  tok.save(path);
  CHECK(dir.listing() == std::vector<std::string>{"bpe.json"});
  const BPETokenizer back = BPETokenizer::load(path);
  CHECK(back.merges() == tok.merges());
  CHECK(back.special_tokens() == tok.special_tokens());
  CHECK(back.vocab_size() == tok.vocab_size());
  const std::string text = synthetic_corpus(1000, 42) + "<|endoftext|>" + "\xff\x00 tail";
  CHECK(back.encode(text) == tok.encode(text));
  for (int64_t id = 0; id < tok.vocab_size(); ++id)
    CHECK(back.token_bytes(id) == tok.token_bytes(id));

  const BPETokenizer plain = BPETokenizer::train("aaabdaaabac", 300);
  plain.save(path);  // overwrites
  CHECK(BPETokenizer::load(path).merges() == plain.merges());
  CHECK(BPETokenizer::load(path).special_tokens().empty());
}

TEST_CASE("BPETokenizer: corrupt files raise IOError naming the file and the problem") {
  TempDir dir;
  const std::string good_path = dir.file("good.json");
  BPETrainOptions options;
  options.special_tokens = {"<|endoftext|>"};
  BPETokenizer::train("aaabdaaabac", 300, options).save(good_path);
  const std::string good = test::read_bytes(good_path);
  REQUIRE(BPETokenizer::load(good_path).merges().size() == 3);

  const std::string head = R"("type": "bpe", "version": 1)";
  const auto with = [&](const std::string& fields) { return "{" + head + ", " + fields + "}"; };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "malformed JSON"},
      {good.substr(0, good.size() - 5), "malformed JSON"},
      {good.substr(0, 10), "malformed JSON"},
      {std::string("\0\xff\x01garbage", 10), "malformed JSON"},
      {"[1, 2]", "expected a JSON object"},
      {R"({"version": 1, "merges": []})", "\"type\""},
      {R"({"type": "char", "version": 1, "merges": []})", "expected \"bpe\""},
      {R"({"type": "bpe", "version": 2, "merges": []})", "unsupported version 2"},
      {R"({"type": "bpe", "version": "1", "merges": []})", "unsupported version"},
      {R"({"type": "bpe", "merges": []})", "version"},
      {"{" + head + "}", "\"merges\""},
      {with(R"("merges": {})"), "\"merges\""},
      {with(R"("merges": [[97]])"), "merge 0 is not a pair"},
      {with(R"("merges": [[97, 98, 99]])"), "merge 0 is not a pair"},
      {with(R"("merges": [97, 98])"), "merge 0 is not a pair"},
      {with(R"("merges": [["a", "b"]])"), "not a 64-bit integer"},
      {with(R"("merges": [[97.5, 98]])"), "not a 64-bit integer"},
      {with(R"("merges": [[true, 98]])"), "not a 64-bit integer"},
      {with(R"("merges": [[null, 98]])"), "not a 64-bit integer"},
      {with(R"("merges": [[-1, 97]])"), "negative id -1"},
      {with(R"("merges": [[1e30, 97]])"), "not a 64-bit integer"},
      {with(R"("merges": [[18446744073709551615, 97]])"), "not a 64-bit integer"},
      {with(R"("merges": [[9223372036854775807, 97]])"), "not defined before it"},
      {with(R"("merges": [[256, 97]])"), "merge 0 refers to token 256"},
      {with(R"("merges": [[97, 98], [258, 97]])"), "merge 1 refers to token 258"},
      {with(R"("merges": [[97, 98], [97, 98]])"), "merge 1 repeats merge 0"},
      {with(R"("merges": [], "special_tokens": [])"), "\"special_tokens\" is not an object"},
      {with(R"("merges": [], "special_tokens": {"<s>": 300})"), "has id 300"},
      {with(R"("merges": [], "special_tokens": {"<s>": "256"})"), "not a 64-bit integer"},
      {with(R"("merges": [], "special_tokens": {"": 256})"), "empty"},
      {with(R"("merges": [], "special_tokens": {"<s>": 256, "</s>": 256})"), "share id 256"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string p = dir.file("bad" + std::to_string(i) + ".json");
    write_bytes(p, cases[i].first);
    INFO("case " << i << ": " << cases[i].first);
    EMBER_CHECK_THROWS(BPETokenizer::load(p), IOError, "[BPETokenizer.load]", p.c_str(),
                       cases[i].second.c_str());
  }
  const std::string missing = dir.file("missing.json");
  EMBER_CHECK_THROWS(BPETokenizer::load(missing), IOError, missing.c_str());
  EMBER_CHECK_THROWS(BPETokenizer::load(dir.path.string()), IOError, "directory");
}

TEST_CASE("BPETokenizer: constructor, train and lookup errors") {
  EMBER_CHECK_THROWS(BPETokenizer(std::vector<Merge>{{97, 256}}), ValueError, "merge 0",
                     "not defined before it");
  EMBER_CHECK_THROWS(BPETokenizer(std::vector<Merge>{{-3, 1}}), ValueError, "merge 0");
  EMBER_CHECK_THROWS(BPETokenizer(std::vector<Merge>{{1, 2}, {1, 2}}), ValueError, "repeats");
  EMBER_CHECK_THROWS(BPETokenizer(std::vector<Merge>{}, {"<s>", "<s>"}), ValueError, "twice");
  EMBER_CHECK_THROWS(BPETokenizer(std::vector<Merge>{}, {""}), ValueError, "empty");
  EMBER_CHECK_THROWS(BPETokenizer::train("abc", 255), ValueError, "vocab_size 255");
  BPETrainOptions options;
  options.special_tokens = {"<s>"};
  EMBER_CHECK_THROWS(BPETokenizer::train("abc", 256, options), ValueError, "special tokens");
  options.special_tokens.clear();
  options.min_frequency = 0;
  EMBER_CHECK_THROWS(BPETokenizer::train("abc", 300, options), ValueError, "min_frequency");

  const BPETokenizer tok;
  CHECK(tok.vocab_size() == 256);
  CHECK(tok.encode("hi") == Ids{'h', 'i'});
  EMBER_CHECK_THROWS(tok.token_bytes(256), IndexError, "token id 256");
  EMBER_CHECK_THROWS(tok.decode(Ids{104, 300}), IndexError, "token id 300", "position 1");
  EMBER_CHECK_THROWS(tok.decode(ones({3}, kFloat32)), DTypeError, "[BPETokenizer.decode]");
  EMBER_CHECK_THROWS(tok.decode(zeros({1, 3}, kInt64)), ShapeError, "[BPETokenizer.decode]");
}

// ---- TokenDataset ----

TEST_CASE("TokenDataset: windows are exact on an arange stream") {
  const TokenDataset ds(arange(10, kInt64), 3);
  REQUIRE(ds.size() == 7);  // starts 0..6: the last window's target ends at token 9
  for (int64_t i = 0; i < ds.size(); ++i) {
    const Example e = ds.get(i);
    CHECK(e.data.dtype() == kInt64);
    CHECK(e.data.sizes() == IntArrayRef{3});
    CHECK(e.data.is_contiguous());
    CHECK(tensor_values(e.data) == Ids{i, i + 1, i + 2});
    CHECK(tensor_values(e.target) == Ids{i + 1, i + 2, i + 3});
  }
  EMBER_CHECK_THROWS(ds.get(7), IndexError, "[TokenDataset]", "index 7");
  EMBER_CHECK_THROWS(ds.get(-1), IndexError, "[TokenDataset]");

  // Examples are copies: writing to one leaves the stream alone.
  Example e = ds.get(0);
  e.data.data_ptr<int64_t>()[0] = 99;
  CHECK(tensor_values(ds.get(0).data) == Ids{0, 1, 2});

  const TokenDataset strided(arange(10, kInt64), 3, 2);
  REQUIRE(strided.size() == 4);  // (10 - 3 - 1) / 2 + 1: starts 0, 2, 4, 6
  CHECK(tensor_values(strided.get(3).data) == Ids{6, 7, 8});
  CHECK(tensor_values(strided.get(3).target) == Ids{7, 8, 9});
  CHECK(TokenDataset(arange(10, kInt64), 3, 3).size() == 3);  // starts 0, 3, 6
  CHECK(TokenDataset(arange(10, kInt64), 3, 4).size() == 2);  // starts 0, 4
  CHECK(TokenDataset(arange(10, kInt64), 3, 100).size() == 1);
  CHECK(TokenDataset(arange(10, kInt64), 9).size() == 1);
  CHECK(TokenDataset(arange(4, kInt64), 3).size() == 1);
  CHECK(TokenDataset(arange(3, kInt64), 3).size() == 0);  // no room for the last target
  CHECK(TokenDataset(arange(2, kInt64), 3).size() == 0);
  CHECK(TokenDataset(empty({0}, kInt64), 1).size() == 0);

  const TokenDataset from_int32(arange(5, kInt32), 2);  // converted to int64
  CHECK(from_int32.get(1).data.dtype() == kInt64);
  CHECK(tensor_values(from_int32.get(1).target) == Ids{2, 3});
  // From a tokenizer's stream.
  const CharTokenizer ctok = CharTokenizer::from_text("abcdef");
  const TokenDataset chars(ctok.encode_tensor("abcdef"), 2);
  CHECK(ctok.decode(chars.get(2).data) == "cd");
  CHECK(ctok.decode(chars.get(2).target) == "de");
}

TEST_CASE("TokenDataset: typed errors and concurrent get") {
  EMBER_CHECK_THROWS(TokenDataset(arange(10, kInt64), 0), ValueError, "block_size", "0");
  EMBER_CHECK_THROWS(TokenDataset(arange(10, kInt64), -2), ValueError, "block_size");
  EMBER_CHECK_THROWS(TokenDataset(arange(10, kInt64), 2, 0), ValueError, "stride");
  EMBER_CHECK_THROWS(TokenDataset(zeros({2, 5}, kInt64), 2), ShapeError, "1-D", "(2, 5)");
  EMBER_CHECK_THROWS(TokenDataset(zeros({5}, kFloat32), 2), DTypeError, "integer", "float32");
  EMBER_CHECK_THROWS(TokenDataset(Tensor(), 2), ValueError, "undefined");

  const TokenDataset ds(arange(1000, kInt64), 16, 3);
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < ok.size(); ++t) {
    threads.emplace_back([&, t] {
      bool good = true;
      for (int64_t i = static_cast<int64_t>(t); i < ds.size(); i += 2) {
        const Example e = ds.get(i);
        const int64_t* d = e.data.data_ptr<int64_t>();
        const int64_t* y = e.target.data_ptr<int64_t>();
        for (int64_t k = 0; k < 16; ++k) good = good && d[k] == 3 * i + k && y[k] == 3 * i + k + 1;
      }
      ok[t] = good ? 1 : 0;
    });
  }
  for (std::thread& th : threads) th.join();
  CHECK(ok == std::vector<int>{1, 1, 1, 1});
}
