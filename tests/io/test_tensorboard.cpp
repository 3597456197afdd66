// TensorBoard event files: CRC-32C check values, the format's known byte sequences, and files
// re-read record by record (CRCs, scalars, PNG images, histograms, corruption).
#include <catch2/catch.hpp>
#include <filesystem>
#include <stb/stb_image.h>

#include "ember/ember.hpp"
#include "ember/io/tensorboard.hpp"
#include "io/io_test_util.hpp"

using namespace ember;
using namespace ember::test;

namespace {

std::string hex_bytes(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string only_event_file(const TempDir& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    names.push_back(e.path().string());
  REQUIRE(names.size() == 1);
  return names[0];
}

}  // namespace

TEST_CASE("crc32c: check values", "[tensorboard]") {
  REQUIRE(crc32c("123456789", 9) == 0xE3069283u);
  REQUIRE(crc32c("", 0) == 0u);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros and of 0xFF.
  std::string zeros(32, '\0'), ones(32, '\xff');
  REQUIRE(crc32c(zeros.data(), 32) == 0x8A9136AAu);
  REQUIRE(crc32c(ones.data(), 32) == 0x62A8AB43u);
  // Continuation: crc of a whole = crc of its tail continued from its head.
  REQUIRE(crc32c("56789", 5, crc32c("1234", 4)) == 0xE3069283u);
}

TEST_CASE("TensorBoardWriter: the first record and a scalar event are the format's bytes",
          "[tensorboard]") {
  TempDir dir;
  {
    TensorBoardWriter tb(dir.path.string());
    tb.add_scalar("loss", 0.5, 5, /*wall_time=*/1.0);
  }
  const std::string path = only_event_file(dir);
  REQUIRE(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
  const std::string bytes = read_bytes(path);
  // Record 1: Event{wall_time = now, file_version "brain.Event:2"}. The wall time differs from the
  // reference vector's 1.0, so check the framing and the fields around it.
  REQUIRE(hex_bytes(bytes.substr(0, 8)) == "1800000000000000");
  REQUIRE(bytes[12] == '\x09');
  REQUIRE(bytes.substr(21, 15) == std::string("\x1a\x0d", 2) + "brain.Event:2");
  // Record 2: the reference encoding of Event{1.0, step 5, summary{value{"loss", 0.5}}}.
  const std::string expected_event =
      "09000000000000f03f" "1005" "2a0d" "0a0b" "0a04" + hex_bytes("loss") + "150000003f";
  const std::string record2 = bytes.substr(40);
  REQUIRE(hex_bytes(record2.substr(12, record2.size() - 16)) == expected_event);
  REQUIRE(record2.size() == 12 + expected_event.size() / 2 + 4);
}

TEST_CASE("TensorBoardWriter: the first record matches the reference vector for wall_time 1.0",
          "[tensorboard]") {
  // The reference: 18 00.. | a3 7f 4b 22 | 09 <1.0> 1a 0d "brain.Event:2" | 86 bf 57 7a.
  std::string event = std::string("\x09\x00\x00\x00\x00\x00\x00\xf0\x3f\x1a\x0d", 11) +
                      "brain.Event:2";
  const uint64_t n = event.size();
  std::string len(reinterpret_cast<const char*>(&n), 8);
  const uint32_t len_crc = masked_crc32c(len.data(), 8);
  const uint32_t data_crc = masked_crc32c(event.data(), event.size());
  REQUIRE(len_crc == 0x224b7fa3u);   // bytes a3 7f 4b 22, little-endian
  REQUIRE(data_crc == 0x7a57bf86u);  // bytes 86 bf 57 7a
}

TEST_CASE("TensorBoardWriter: scalars, images and histograms read back", "[tensorboard]") {
  TempDir dir;
  std::string path;
  Tensor gray = arange(0, 12, kFloat32).div(11.0).view({1, 3, 4});  // (C, H, W) in [0, 1]
  Tensor rgb = arange(0, 2 * 3 * 3, kInt64).to(kUInt8).view({2, 3, 3}).mul(10);
  {
    TensorBoardWriter tb(dir.path.string(), ".test");
    path = tb.path();
    for (int64_t step = 0; step < 3; ++step) tb.add_scalar("train/loss", 2.0 - step, step, 100.0 + step);
    tb.add_scalar("zero", 0.0, 7);
    tb.add_image("gray", gray, 3);
    tb.add_image("rgb", rgb, 4);
    tb.add_histogram("w", tensor(std::vector<double>{0, 1, 1, 2, 3, 4}), 9, 4);
    tb.add_histogram("const", full({3}, 2.0), 10, 2);
  }
  REQUIRE(path.size() > 5);
  REQUIRE(path.substr(path.size() - 5) == ".test");
  std::vector<TensorBoardEvent> ev = read_tensorboard_events(path);
  REQUIRE(ev.size() == 1 + 3 + 1 + 2 + 2);
  REQUIRE(ev[0].file_version == "brain.Event:2");
  for (int64_t s = 0; s < 3; ++s) {
    const TensorBoardEvent& e = ev[static_cast<size_t>(1 + s)];
    REQUIRE(e.step == s);
    REQUIRE(e.wall_time == 100.0 + static_cast<double>(s));
    REQUIRE(e.values.size() == 1);
    REQUIRE(e.values[0].tag == "train/loss");
    REQUIRE(*e.values[0].simple_value == static_cast<float>(2.0 - static_cast<double>(s)));
  }
  REQUIRE(ev[4].values[0].simple_value.has_value());  // 0.0 is written (a oneof member)
  REQUIRE(*ev[4].values[0].simple_value == 0.0f);

  // Images decode to what was logged.
  const TensorBoardValue& g = ev[5].values[0];
  REQUIRE(g.has_image);
  REQUIRE(g.height == 3);
  REQUIRE(g.width == 4);
  REQUIRE(g.colorspace == 1);
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(g.encoded_image.data()),
                                            static_cast<int>(g.encoded_image.size()), &w, &h, &c, 0);
  REQUIRE(px != nullptr);
  REQUIRE(w == 4);
  REQUIRE(h == 3);
  for (int i = 0; i < 12; ++i) REQUIRE(px[i] == static_cast<unsigned char>(std::lround(i / 11.0 * 255.0)));
  stbi_image_free(px);
  const TensorBoardValue& r = ev[6].values[0];
  REQUIRE(r.colorspace == 3);
  px = stbi_load_from_memory(reinterpret_cast<const unsigned char*>(r.encoded_image.data()),
                             static_cast<int>(r.encoded_image.size()), &w, &h, &c, 0);
  REQUIRE(px != nullptr);
  REQUIRE(w == 3);
  REQUIRE(h == 2);
  REQUIRE(c == 3);
  for (int i = 0; i < 18; ++i) REQUIRE(px[i] == static_cast<unsigned char>(i * 10));
  stbi_image_free(px);

  // Histogram of {0, 1, 1, 2, 3, 4} in 4 buckets over [0, 4]: edges 1, 2, 3, 4.
  const TensorBoardValue& hv = ev[7].values[0];
  REQUIRE(hv.has_histogram);
  REQUIRE(hv.min == 0.0);
  REQUIRE(hv.max == 4.0);
  REQUIRE(hv.num == 6.0);
  REQUIRE(hv.sum == 11.0);
  REQUIRE(hv.sum_squares == 31.0);
  REQUIRE(hv.bucket_limit == std::vector<double>{1, 2, 3, 4});
  REQUIRE(hv.bucket == std::vector<double>{1, 2, 1, 2});
  const TensorBoardValue& cv = ev[8].values[0];
  REQUIRE(cv.bucket_limit == std::vector<double>{2.0, 2.5});
  REQUIRE(cv.bucket == std::vector<double>{0, 3});
}

TEST_CASE("read_tensorboard_events: every flipped byte is detected", "[tensorboard]") {
  TempDir dir;
  std::string path;
  {
    TensorBoardWriter tb(dir.path.string());
    path = tb.path();
    tb.add_scalar("a", 1.5, 1, 2.0);
    tb.add_image("img", zeros({2, 2}, kUInt8), 2, 3.0);
  }
  const std::string good = read_bytes(path);
  REQUIRE(read_tensorboard_events(path).size() == 3);
  const std::string bad = dir.file("bad");
  for (size_t i = 0; i < good.size(); ++i) {
    std::string b = good;
    b[i] = static_cast<char>(b[i] ^ 0x20);
    write_bytes(bad, b);
    REQUIRE_THROWS_AS(read_tensorboard_events(bad), IOError);
  }
  write_bytes(bad, good.substr(0, good.size() - 3));
  REQUIRE_THROWS_WITH(read_tensorboard_events(bad), Catch::Contains("record 2"));
  REQUIRE_THROWS_AS(read_tensorboard_events(dir.file("missing")), IOError);
}

TEST_CASE("TensorBoardWriter: bad input raises typed errors", "[tensorboard]") {
  TempDir dir;
  TensorBoardWriter tb(dir.path.string());
  REQUIRE_THROWS_AS(tb.add_scalar("", 1.0, 0), ValueError);
  REQUIRE_THROWS_AS(tb.add_image("x", zeros({2, 3, 4, 5}), 0), ShapeError);
  REQUIRE_THROWS_AS(tb.add_image("x", zeros({2, 3}, kInt64), 0), DTypeError);
  REQUIRE_THROWS_WITH(tb.add_image("x", zeros({2, 3, 3}), 0),
                      Catch::Contains("expected 1, 3 or 4 channels, got image (2, 3, 3)"));
  REQUIRE_THROWS_AS(tb.add_histogram("h", tensor(std::vector<double>{1.0, NAN}), 0), ValueError);
  REQUIRE_THROWS_AS(tb.add_histogram("h", zeros({3}), 0, 0), ValueError);
  tb.close();
  REQUIRE_THROWS_AS(tb.add_scalar("a", 1.0, 0), IOError);
  REQUIRE_THROWS_AS(TensorBoardWriter("/proc/definitely/not/here"), IOError);
}

TEST_CASE("make_grid and save_image: layout, range mapping, PNG on disk", "[image]") {
  // Three 1x2x2 images with values 1, 2, 3 in [0, 4]; two per row, padding 1, pad value 0.
  Tensor imgs = cat({full({1, 1, 2, 2}, 1.0), full({1, 1, 2, 2}, 2.0), full({1, 1, 2, 2}, 3.0)}, 0);
  Tensor g = make_grid(imgs, 2, 1, std::make_pair(0.0, 4.0));
  REQUIRE(g.sizes() == IntArrayRef({1, 7, 7}));
  REQUIRE(g[0][1][1].item<float>() == 0.25f);  // image 0 at (1, 1)
  REQUIRE(g[0][1][4].item<float>() == 0.5f);   // image 1 at (1, 4)
  REQUIRE(g[0][4][1].item<float>() == 0.75f);  // image 2 at (4, 1)
  REQUIRE(g[0][4][4].item<float>() == 0.0f);   // the empty cell is padding
  REQUIRE(g[0][0][0].item<float>() == 0.0f);
  REQUIRE_THROWS_AS(make_grid(zeros({2, 2, 2})), ShapeError);
  TempDir dir;
  save_image(g, dir.file("g.png"));
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(dir.file("g.png").c_str(), &w, &h, &c, 0);
  REQUIRE(px != nullptr);
  REQUIRE(w == 7);
  REQUIRE(h == 7);
  REQUIRE(c == 1);
  REQUIRE(px[1 * 7 + 4] == 128);  // round(0.5 * 255)
  stbi_image_free(px);
}
