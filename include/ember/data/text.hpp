// Text data: whole-file reads, a character-level tokenizer, a byte-level BPE tokenizer (GPT-2
// style) and the sliding-window dataset that language-model training reads from a token stream.
// See docs/data_text.md for the pre-tokenization rule, the training tie-break and the JSON files.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ember/data/dataset.hpp"
#include "ember/tensor.hpp"

namespace ember::data {

// ---- files ----

/// The whole file as bytes. IOError naming the path when it is missing, a directory or unreadable.
std::string read_text_file(const std::string& path);
/// Writes `contents` to path + ".tmp", then renames it over `path`, so a failed write never leaves
/// a half-written file at `path`. IOError naming the path on failure.
void write_text_file(const std::string& path, std::string_view contents);

// ---- character-level tokenizer ----

/// One token per Unicode code point. The vocabulary is sorted by code point, so for ASCII text the
/// ids match the usual char-level GPT `sorted(set(text))`.
class CharTokenizer {
 public:
  /// An empty vocabulary.
  CharTokenizer() = default;
  /// `vocab` must be strictly increasing valid code points (no surrogates, <= U+10FFFF);
  /// ValueError otherwise.
  explicit CharTokenizer(std::vector<char32_t> vocab);
  /// The distinct code points of the UTF-8 `text`. ValueError with the byte offset of invalid
  /// UTF-8.
  static CharTokenizer from_text(std::string_view text);

  int64_t vocab_size() const { return static_cast<int64_t>(vocab_.size()); }
  /// id -> code point.
  const std::vector<char32_t>& vocab() const { return vocab_; }

  /// Token ids of the UTF-8 `text`. ValueError for invalid UTF-8 (with its byte offset) and for a
  /// character outside the vocabulary (named, escaped, with its byte offset).
  std::vector<int64_t> encode(std::string_view text) const;
  /// encode as an int64 1-D tensor.
  Tensor encode_tensor(std::string_view text) const;
  /// UTF-8 text of `ids`. IndexError for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int64_t>& ids) const;
  /// decode of a 1-D integer CPU tensor (ShapeError, DTypeError, DeviceError otherwise).
  std::string decode(const Tensor& ids) const;

  /// JSON `{"type": "char", "version": 1, "vocab": [code points...]}`, via write_text_file.
  void save(const std::string& path) const;
  /// Reads what save wrote. IOError naming the file and the problem for anything malformed.
  static CharTokenizer load(const std::string& path);

 private:
  std::vector<char32_t> vocab_;
  std::vector<int32_t> ascii_ids_ = std::vector<int32_t>(128, -1);  // ASCII code point -> id or -1
};

// ---- byte-level BPE tokenizer ----

/// Splits text into the chunks BPE works within (merges never cross a chunk boundary). A GPT-2-like
/// rule on bytes, where every byte >= 0x80 counts as a letter so UTF-8 words stay whole:
///   's 't 're 've 'm 'll 'd  |  ' '? letters+  |  ' '? digits+  |  ' '? other+  |  whitespace+
/// (letters: A-Z a-z and bytes >= 0x80; digits: 0-9; whitespace: space \t \n \v \f \r; other:
/// every remaining byte, NUL included). A whitespace run followed by a non-space byte leaves its
/// last byte to the next chunk, like GPT-2's `\s+(?!\S)`. The chunks are views into `text` and
/// concatenate back to it.
std::vector<std::string_view> pretokenize(std::string_view text);

/// Options of BPETokenizer::train.
struct BPETrainOptions {
  /// Appended after the merges (ids 256 + merges + k), matched literally by encode. The corpus is
  /// split at them during training, and they count towards vocab_size.
  std::vector<std::string> special_tokens;
  /// A pair is merged only while it occurs at least this often (counted over the whole corpus).
  int64_t min_frequency = 2;
};

/// Byte-level BPE as in GPT-2: ids 0..255 are the bytes, id 256 + r is the r-th merge, then the
/// special tokens. decode(encode(s)) == s for every byte string s, valid UTF-8 or not.
class BPETokenizer {
 public:
  using Merge = std::pair<int64_t, int64_t>;

  /// The 256 byte tokens, no merges.
  BPETokenizer();
  /// Merge r joins tokens merges[r] into token 256 + r; both ids must be < 256 + r, and no pair may
  /// repeat. Special tokens (non-empty, distinct) get ids from 256 + merges.size(). ValueError
  /// otherwise.
  explicit BPETokenizer(std::vector<Merge> merges, std::vector<std::string> special_tokens = {});

  /// Learns merges on `corpus` until vocab_size tokens (bytes + merges + special tokens) exist or
  /// no pair occurs min_frequency times. Each step merges the most frequent adjacent pair within a
  /// chunk of pretokenize(); ties go to the smallest (left id, right id). ValueError when
  /// vocab_size < 256 + number of special tokens.
  static BPETokenizer train(std::string_view corpus, int64_t vocab_size,
                            const BPETrainOptions& options = {});

  /// Bytes + merges + special tokens.
  int64_t vocab_size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<Merge>& merges() const { return merges_; }
  const std::vector<std::string>& special_tokens() const { return special_tokens_; }
  /// The id of a special token; ValueError when it is not one.
  int64_t special_token_id(std::string_view token) const;
  /// The bytes token `id` stands for (a special token's literal text). IndexError when out of
  /// range.
  const std::string& token_bytes(int64_t id) const;

  /// Token ids of `text`: special tokens are matched literally first (leftmost, then longest), the
  /// rest is pretokenized and each chunk merged lowest rank first, as GPT-2's bpe(). Thread-safe.
  std::vector<int64_t> encode(std::string_view text) const;
  /// encode without special-token matching (their text is encoded as ordinary bytes).
  std::vector<int64_t> encode_ordinary(std::string_view text) const;
  /// encode as an int64 1-D tensor.
  Tensor encode_tensor(std::string_view text) const;
  /// The concatenated bytes of `ids`. IndexError for an id outside [0, vocab_size()).
  std::string decode(const std::vector<int64_t>& ids) const;
  /// decode of a 1-D integer CPU tensor (ShapeError, DTypeError, DeviceError otherwise).
  std::string decode(const Tensor& ids) const;

  /// JSON `{"type": "bpe", "version": 1, "merges": [[a, b], ...], "special_tokens": {tok: id}}`.
  void save(const std::string& path) const;
  /// Reads what save wrote, validating everything. IOError naming the file and the problem,
  /// including merges whose tokens would total more than 1 GiB (or max_allocation_bytes()).
  static BPETokenizer load(const std::string& path);

 private:
  std::vector<Merge> merges_;
  std::vector<std::string> special_tokens_;
  std::vector<std::string> tokens_;              // id -> bytes
  std::unordered_map<uint64_t, int32_t> ranks_;  // (left << 32 | right) -> merge rank
};

// ---- dataset ----

/// Next-token windows over a token stream: example i is
///   data   = tokens[i*stride     : i*stride + block_size]
///   target = tokens[i*stride + 1 : i*stride + block_size + 1]
/// both int64 (block_size,) fresh contiguous copies. size() = (N - block_size - 1) / stride + 1
/// when N > block_size, else 0 (N = tokens.numel()). `tokens` must be 1-D (ShapeError) of an
/// integer dtype (DTypeError); it is converted to int64 once and shared, not copied, when already
/// int64. block_size and stride must be >= 1 (ValueError). get is thread-safe.
class TokenDataset : public Dataset {
 public:
  TokenDataset(Tensor tokens, int64_t block_size, int64_t stride = 1);
  int64_t size() const override { return size_; }
  Example get(int64_t index) const override;
  const Tensor& tokens() const { return tokens_; }
  int64_t block_size() const { return block_size_; }
  int64_t stride() const { return stride_; }

 private:
  Tensor tokens_;
  int64_t block_size_, stride_, size_;
};

}  // namespace ember::data
