// Dataset readers: IDX / MNIST, CIFAR-10/100, ImageFolder on generated files; real
// Fashion-MNIST when installed; a table of corrupt files per reader; concurrent get.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>

#include "data/data_test_util.hpp"
#include "ember/data/datasets.hpp"

using namespace ember;
using namespace ember::data;
using ember::test::read_bytes;
using ember::test::TempDir;
using ember::test::write_bytes;
namespace fs = std::filesystem;

namespace {

std::string u32be(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// An IDX header: magic 00 00 type ndim, then the sizes.
std::string idx_header(uint8_t type, std::vector<uint32_t> dims) {
  std::string h = {0, 0, static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) h += u32be(d);
  return h;
}

// uint8 tensor with p[i] = (i * step) mod 256.
Tensor pattern_u8(std::vector<int64_t> sizes, int64_t step) {
  Tensor t = empty(sizes, kUInt8);
  for (int64_t i = 0; i < t.numel(); ++i) t.data_ptr<uint8_t>()[i] = static_cast<uint8_t>(i * step);
  return t;
}

bool same(const Tensor& a, const Tensor& b) { return ember::test::bitwise_equal(a, b); }

// A corrupt-file case: what to run, and the substrings its IOError must contain.
struct ErrorCase {
  std::string name;
  std::function<void()> run;
  std::vector<std::string> expect;
};

void check_cases(const std::vector<ErrorCase>& cases) {
  for (const ErrorCase& c : cases) {
    INFO("case: " << c.name);
    REQUIRE_THROWS_AS(c.run(), IOError);
    for (const std::string& s : c.expect) REQUIRE_THROWS_WITH(c.run(), Catch::Contains(s));
  }
}

}  // namespace

// ---- IDX ----

TEST_CASE("MNIST: IDX round trip for every dtype, raw and gzip") {
  TempDir dir;
  Tensor u8 = pattern_u8({2, 3, 4}, 11);
  Tensor i8 = arange(-12, 12, kInt64).to(kInt8).reshape({4, 6});
  Tensor i32 = tensor(std::vector<int32_t>{1, -2, 2147483647, -2147483647 - 1, 65536, 0});
  Tensor f32 =
      tensor(std::vector<float>{1.0f, -0.5f, 3.25e-20f, 1e30f, 0.0f, -0.0f}).reshape({3, 2});
  Tensor f64 = tensor(std::vector<double>{1.0, -1e300, 0.1, 2.5, 1e-310, 7}).reshape({1, 2, 1, 3});
  for (bool gz : {false, true}) {
    int k = 0;
    for (const Tensor& t : {u8, i8, i32, f32, f64}) {
      const std::string path = dir.file(detail::str_cat("t", k++, gz ? ".idx.gz" : ".idx"));
      write_idx(path, t, gz);
      const std::string bytes = read_bytes(path);
      if (gz) {
        REQUIRE(static_cast<uint8_t>(bytes[0]) == 0x1f);  // gzip magic
        REQUIRE(static_cast<uint8_t>(bytes[1]) == 0x8b);
      }
      Tensor back = read_idx(path);
      INFO("dtype " << t.dtype() << " gzip " << gz);
      REQUIRE(back.dtype() == t.dtype());
      REQUIRE(back.sizes() == t.sizes());
      REQUIRE(same(back, t));
    }
  }
}

TEST_CASE("MNIST: IDX bytes are big-endian and int16 widens to int32") {
  TempDir dir;
  write_idx(dir.file("a.idx"), tensor(std::vector<int32_t>{1, -2}), false);
  const std::string expect = idx_header(0x0C, {2}) + std::string("\0\0\0\1\xff\xff\xff\xfe", 8);
  REQUIRE(read_bytes(dir.file("a.idx")) == expect);
  write_idx(dir.file("f.idx"), tensor(std::vector<float>{1.0f}), false);
  REQUIRE(read_bytes(dir.file("f.idx")) == idx_header(0x0D, {1}) + std::string("\x3f\x80\0\0", 4));

  // int16 has no Ember dtype: read as int32, sign kept.
  write_bytes(dir.file("s.idx"),
              idx_header(0x0B, {3}) + std::string("\x00\x05\xff\xfe\x80\x00", 6));
  Tensor s = read_idx(dir.file("s.idx"));
  REQUIRE(s.dtype() == kInt32);
  REQUIRE(s.data_ptr<int32_t>()[0] == 5);
  REQUIRE(s.data_ptr<int32_t>()[1] == -2);
  REQUIRE(s.data_ptr<int32_t>()[2] == -32768);

  // int8 negative values; hand-written file
  write_bytes(dir.file("c.idx"), idx_header(0x09, {2}) + std::string("\x80\x7f", 2));
  Tensor c = read_idx(dir.file("c.idx"));
  REQUIRE(c.dtype() == kInt8);
  REQUIRE(c.data_ptr<int8_t>()[0] == -128);
  REQUIRE(c.data_ptr<int8_t>()[1] == 127);
}

TEST_CASE("MNIST: IDX with a zero dimension reads as an empty tensor") {
  TempDir dir;
  write_bytes(dir.file("e.idx"), idx_header(0x08, {0, 28, 28}));
  Tensor e = read_idx(dir.file("e.idx"));
  REQUIRE(e.sizes() == IntArrayRef({0, 28, 28}));
  REQUIRE(e.numel() == 0);
  write_idx(dir.file("e2.idx.gz"), e, true);
  REQUIRE(read_idx(dir.file("e2.idx.gz")).sizes() == IntArrayRef({0, 28, 28}));
}

TEST_CASE("MNIST: write_idx rejects what IDX cannot hold") {
  TempDir dir;
  REQUIRE_THROWS_AS(write_idx(dir.file("x"), zeros({2}, kInt64), false), DTypeError);
  REQUIRE_THROWS_AS(write_idx(dir.file("x"), scalar_tensor(1, kUInt8), false), ShapeError);
  REQUIRE_THROWS_AS(write_idx(dir.file("x"), Tensor(), false), ValueError);
  REQUIRE(!fs::exists(dir.file("x")));
}

TEST_CASE("MNIST: corrupt IDX files raise IOError naming the file") {
  TempDir dir;
  auto raw = [&](const std::string& name, const std::string& bytes) {
    const std::string p = dir.file(name);
    write_bytes(p, bytes);
    return p;
  };
  // A valid gzip file, then corrupted copies of it.
  const std::string good_gz = dir.file("good.idx.gz");
  write_idx(good_gz, pattern_u8({50, 100}, 7), true);
  std::string corrupt = read_bytes(good_gz);
  for (size_t i = 20; i < 60; ++i) corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5a);
  const std::string bad_gz = raw("bad.idx.gz", corrupt);
  const std::string cut_gz = raw("cut.idx.gz", read_bytes(good_gz).substr(0, 40));

  const std::string magic = raw("magic.idx", std::string("\x01\x00\x08\x01\0\0\0\1x", 9));
  const std::string type = raw("type.idx", std::string("\x00\x00\x07\x01\0\0\0\1x", 9));
  const std::string ndim0 = raw("ndim0.idx", std::string("\x00\x00\x08\x00", 4));
  const std::string ndim9 = raw("ndim9.idx", idx_header(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}) + "x");
  const std::string short_magic = raw("short.idx", std::string("\x00\x00", 2));
  const std::string empty_file = raw("empty.idx", "");
  const std::string short_dims = raw("dims.idx", std::string("\x00\x00\x08\x03\0\0\0\5\0\0", 10));
  const std::string short_data = raw("data.idx", idx_header(0x08, {2, 5}) + "12345");
  const std::string short_f64 = raw("f64.idx", idx_header(0x0E, {2}) + std::string(12, 'x'));
  const std::string trailing = raw("trail.idx", idx_header(0x08, {3}) + "abcXY");
  const std::string absurd = raw("absurd.idx", idx_header(0x08, {1u << 31, 1u << 31}) + "x");
  const std::string overflow =
      raw("overflow.idx", idx_header(0x0E, std::vector<uint32_t>(8, 0xffffffffu)));
  const std::string directory = dir.file("a_directory");
  fs::create_directories(directory);

  check_cases({
      {"missing file", [&] { read_idx(dir.file("nope.idx")); }, {"nope.idx", "no such file"}},
      {"directory", [&] { read_idx(directory); }, {"a_directory", "is a directory"}},
      {"empty file", [&] { read_idx(empty_file); }, {"empty.idx", "truncated header"}},
      {"header under 4 bytes", [&] { read_idx(short_magic); }, {"short.idx", "truncated header"}},
      {"wrong magic", [&] { read_idx(magic); }, {"magic.idx", "not an IDX file"}},
      {"unknown type",
       [&] { read_idx(type); },
       {"type.idx", "unknown element type code 0x07 (expected"}},
      {"ndim 0", [&] { read_idx(ndim0); }, {"ndim0.idx", "ndim 0"}},
      {"ndim 9", [&] { read_idx(ndim9); }, {"ndim9.idx", "ndim 9"}},
      {"truncated sizes",
       [&] { read_idx(short_dims); },
       {"dims.idx", "truncated header: expected 16 bytes for 3 dimensions, got 10"}},
      {"truncated data",
       [&] { read_idx(short_data); },
       {"data.idx", "truncated data", "asks for 10 bytes, got 5"}},
      {"truncated float64 data",
       [&] { read_idx(short_f64); },
       {"f64.idx", "asks for 16 bytes, got 12"}},
      {"trailing bytes", [&] { read_idx(trailing); }, {"trail.idx", "2 trailing bytes"}},
      {"absurd dimensions 2^31 x 2^31",
       [&] { read_idx(absurd); },
       {"absurd.idx", "absurd dimensions (2147483648, 2147483648)"}},
      {"product overflows", [&] { read_idx(overflow); }, {"overflow.idx", "overflows 64 bits"}},
      {"corrupt gzip", [&] { read_idx(bad_gz); }, {"bad.idx.gz", "gzip stream"}},
      {"truncated gzip", [&] { read_idx(cut_gz); }, {"cut.idx.gz", "gzip stream"}},
  });
}

TEST_CASE("MNIST: a header asking for 8 GiB with 10 bytes of data fails fast") {
  TempDir dir;
  // 65536 x 65536 x 2 = 2^33 bytes: exactly at the cap, so only the data's absence stops it.
  const std::string p = dir.file("huge.idx");
  write_bytes(p, idx_header(0x08, {65536, 65536, 2}) + "0123456789");
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_THROWS_AS(read_idx(p), IOError);
  REQUIRE_THROWS_WITH(read_idx(p), Catch::Contains("huge.idx") &&
                                       Catch::Contains("asks for 8589934592 bytes, got 10"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(s < 1.0);  // an 8 GiB allocation and fill would take far longer
}

TEST_CASE("MNIST: mutated IDX files either read or raise IOError") {
  // A small fuzz pass: random byte flips, truncations and extensions of valid raw and gzip files.
  TempDir dir;
  const std::string raw_path = dir.file("v.idx"), gz_path = dir.file("v.idx.gz");
  write_idx(raw_path, pattern_u8({3, 4, 5}, 3), false);
  write_idx(gz_path, tensor(std::vector<float>(40, 1.5f)).reshape({2, 20}), true);
  test::FakeRng rng(11);
  int reads = 0, errors = 0;
  for (const std::string& src : {raw_path, gz_path}) {
    const std::string good = read_bytes(src);
    for (int trial = 0; trial < 400; ++trial) {
      std::string b = good;
      const int64_t kind = rng.below(3);
      if (kind == 0) {
        for (int k = 0; k < 1 + rng.below(4); ++k)
          b[static_cast<size_t>(rng.below(static_cast<int64_t>(b.size())))] ^=
              static_cast<char>(1 + rng.below(255));
      } else if (kind == 1) {
        b.resize(static_cast<size_t>(rng.below(static_cast<int64_t>(b.size()))));
      } else {
        b += std::string(static_cast<size_t>(1 + rng.below(8)), 'z');
      }
      const std::string p = dir.file("m.idx");
      write_bytes(p, b);
      try {
        Tensor t = read_idx(p);
        ++reads;
      } catch (const IOError& e) {
        ++errors;
        REQUIRE(std::string(e.what()).find("m.idx") != std::string::npos);
      }
    }
  }
  REQUIRE(errors > 0);
  REQUIRE(reads + errors == 800);
}

// ---- MNIST over generated files ----

TEST_CASE("MNIST: generated gz files give images, labels and HWC examples") {
  TempDir dir;
  const test::FakeImages f = test::write_fake_mnist(dir.path.string(), 37, 1, true, true);
  MNIST ds(dir.path.string(), true);
  REQUIRE(ds.size() == 37);
  REQUIRE(ds.images().sizes() == IntArrayRef({37, 28, 28}));
  REQUIRE(ds.images().dtype() == kUInt8);
  REQUIRE(ds.labels().dtype() == kInt64);
  REQUIRE(same(ds.images(), f.images.squeeze(3)));
  REQUIRE(same(ds.labels(), f.labels));
  REQUIRE(ds.classes().size() == 10);
  REQUIRE(ds.images_path().ends_with("train-images-idx3-ubyte.gz"));
  for (int64_t i : {0, 5, 36}) {
    Example e = ds.get(i);
    REQUIRE(e.data.sizes() == IntArrayRef({28, 28, 1}));
    REQUIRE(e.data.dtype() == kUInt8);
    REQUIRE(same(e.data, f.images[i]));
    REQUIRE(e.target.dim() == 0);
    REQUIRE(e.target.dtype() == kInt64);
    REQUIRE(e.target.item<int64_t>() == f.labels.data_ptr<int64_t>()[i]);
  }
  REQUIRE_THROWS_AS(ds.get(37), IndexError);
  REQUIRE_THROWS_AS(ds.get(-1), IndexError);
  // The example is a copy: writing to it leaves the dataset alone.
  Example e = ds.get(3);
  e.data.fill_(7);
  REQUIRE(same(ds.get(3).data, f.images[3]));
}

TEST_CASE("MNIST: test split, raw files preferred over gz, torchvision layout, transforms") {
  TempDir dir;
  const test::FakeImages raw = test::write_fake_mnist(dir.path.string(), 12, 1, false, false);
  test::write_fake_mnist(dir.path.string(), 12, 2, true, false);  // .gz with other content
  MNIST ds(dir.path.string(), false);
  REQUIRE(ds.images_path().ends_with("t10k-images-idx3-ubyte"));
  REQUIRE(same(ds.labels(), raw.labels));
  REQUIRE_THROWS_AS(MNIST(dir.path.string(), true), IOError);  // no train files

  // root/FashionMNIST/raw
  const test::FakeImages f =
      test::write_fake_mnist((dir.path / "FashionMNIST" / "raw").string(), 9, 3, true, true);
  auto to_float = [](const Tensor& t) { return t.to(kFloat32).div(255.0); };
  auto plus_100 = [](const Tensor& t) { return t.add(100); };
  FashionMNIST fm(dir.path.string(), true, to_float, plus_100);
  REQUIRE(fm.size() == 9);
  REQUIRE(fm.classes()[0] == "T-shirt/top");
  REQUIRE(fm.classes()[9] == "Ankle boot");
  Example e = fm.get(4);
  REQUIRE(e.data.dtype() == kFloat32);
  REQUIRE(e.data.sizes() == IntArrayRef({28, 28, 1}));
  REQUIRE(e.data.max().item<float>() == 1.0f);  // the bright rows (255)
  REQUIRE(e.target.item<int64_t>() == f.labels.data_ptr<int64_t>()[4] + 100);
}

TEST_CASE("MNIST: corrupt MNIST files raise IOError naming the file") {
  TempDir dir;
  const std::string root = dir.path.string();
  auto setup = [&](int64_t n_images, std::vector<uint8_t> labels) {
    fs::remove_all(dir.path);
    fs::create_directories(dir.path);
    test::write_fake_mnist(root, n_images, 1, false, true);
    write_idx(dir.file("train-labels-idx1-ubyte"),
              tensor(std::vector<int64_t>(labels.begin(), labels.end())).to(kUInt8), false);
  };
  const std::string labels = "train-labels-idx1-ubyte";
  const std::string images = "train-images-idx3-ubyte";
  check_cases({
      {"missing files",
       [&] { MNIST(dir.file("nowhere"), true); },
       {"nowhere/train-images-idx3-ubyte'", "nowhere/train-images-idx3-ubyte.gz'",
        "nowhere/MNIST/raw/train-images-idx3-ubyte.gz", "not found"}},
      {"count mismatch",
       [&] {
         setup(4, {1, 2, 3});
         MNIST(root, true);
       },
       {labels, "3 labels but", images, "holds 4 images"}},
      {"label >= 10",
       [&] {
         setup(3, {1, 10, 3});
         MNIST(root, true);
       },
       {labels, "label 10 at index 1 is out of range for 10 classes"}},
      {"images not 3-D",
       [&] {
         setup(3, {1, 2, 3});
         write_idx(dir.file(images), zeros({3, 784}, kUInt8), false);
         MNIST(root, true);
       },
       {images, "expected uint8 images of shape (N, H, W), got uint8 (3, 784)"}},
      {"float labels",
       [&] {
         setup(3, {1, 2, 3});
         write_idx(dir.file(labels), zeros({3}, kFloat32), false);
         MNIST(root, true);
       },
       {labels, "expected uint8 labels"}},
      {"truncated images file",
       [&] {
         setup(3, {1, 2, 3});
         const std::string b = read_bytes(dir.file(images));
         write_bytes(dir.file(images), b.substr(0, b.size() - 100));
         MNIST(root, true);
       },
       {images, "truncated data"}},
  });
}

// ---- real Fashion-MNIST ----

TEST_CASE("MNIST: real Fashion-MNIST from the Debian package") {
  const std::string root = default_fashion_mnist_root();
  if (!fs::exists(fs::path(root) / "train-images-idx3-ubyte.gz") &&
      !fs::exists(fs::path(root) / "train-images-idx3-ubyte")) {
    WARN("skipped: Fashion-MNIST not found at " << root);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  FashionMNIST train(root, true);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("Fashion-MNIST train loaded from %s in %.0f ms\n", train.images_path().c_str(), ms);
  FashionMNIST test(root, false);

  REQUIRE(train.size() == 60000);
  REQUIRE(test.size() == 10000);
  REQUIRE(train.images().sizes() == IntArrayRef({60000, 28, 28}));
  REQUIRE(test.images().sizes() == IntArrayRef({10000, 28, 28}));
  REQUIRE(train.get(0).data.sizes() == IntArrayRef({28, 28, 1}));
  for (auto [ds, per_class] : {std::pair{&train, 6000}, std::pair{&test, 1000}}) {
    std::vector<int64_t> hist(10, 0);
    const int64_t* l = ds->labels().data_ptr<int64_t>();
    for (int64_t i = 0; i < ds->size(); ++i) ++hist[static_cast<size_t>(l[i])];
    for (int64_t c : hist) REQUIRE(c == per_class);
  }
  // Values checked against Python's gzip module on the same files.
  const int64_t* tl = train.labels().data_ptr<int64_t>();
  REQUIRE(std::vector<int64_t>(tl, tl + 10) == std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5});
  REQUIRE(test.labels().data_ptr<int64_t>()[1] == 2);
  REQUIRE(train.images()[0].sum(kInt64).item<int64_t>() == 76247);
  REQUIRE(train.images().sum(kInt64).item<int64_t>() == 3431114169LL);
  REQUIRE(train.images()[0][14][14].item<int64_t>() == 217);
  REQUIRE(test.images()[9999].sum(kInt64).item<int64_t>() == 24390);
  // The raw header through read_idx: (60000, 28, 28) uint8.
  Tensor labels = read_idx((fs::path(root) / "train-labels-idx1-ubyte.gz").string());
  REQUIRE(labels.dtype() == kUInt8);
  REQUIRE(labels.sizes() == IntArrayRef({60000}));
}

// ---- CIFAR ----

TEST_CASE("MNIST: CIFAR-10 planes land in HWC order") {
  TempDir dir;
  const std::string sub = (dir.path / "cifar-10-batches-bin").string();
  const test::FakeImages f = test::write_fake_cifar10(sub, 4, 7, true);
  // A hand check on record 6 of the whole set (batch 2, record 2): byte 1 + c*1024 + y*32 + x.
  const std::string batch2 = read_bytes((fs::path(sub) / "data_batch_2.bin").string());
  REQUIRE(batch2.size() == 4 * 3073);
  CIFAR10 ds(dir.path.string(), true);
  REQUIRE(ds.size() == 20);
  REQUIRE(ds.images().sizes() == IntArrayRef({20, 32, 32, 3}));
  REQUIRE(same(ds.images(), f.images));
  REQUIRE(same(ds.labels(), f.labels));
  REQUIRE(ds.classes()[0] == "airplane");
  REQUIRE(ds.classes()[9] == "truck");
  const uint8_t* rec = reinterpret_cast<const uint8_t*>(batch2.data()) + 2 * 3073;
  Example e = ds.get(6);
  REQUIRE(e.data.sizes() == IntArrayRef({32, 32, 3}));
  REQUIRE(e.target.item<int64_t>() == rec[0]);
  const uint8_t* px = e.data.data_ptr<uint8_t>();
  for (auto [y, x] : {std::pair{0, 0}, std::pair{5, 17}, std::pair{31, 31}, std::pair{20, 3}})
    for (int c = 0; c < 3; ++c) REQUIRE(px[(y * 32 + x) * 3 + c] == rec[1 + c * 1024 + y * 32 + x]);

  // Test split in root itself, class names from batches.meta.txt.
  TempDir dir2;
  const test::FakeImages t = test::write_fake_cifar10(dir2.path.string(), 6, 8, false, true);
  CIFAR10 ts(dir2.path.string(), false);
  REQUIRE(ts.size() == 6);
  REQUIRE(same(ts.images(), t.images));
  REQUIRE(ts.classes() ==
          std::vector<std::string>{"c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"});
}

TEST_CASE("MNIST: CIFAR-100 fine and coarse labels") {
  TempDir dir;
  const test::FakeImages f =
      test::write_fake_cifar100((dir.path / "cifar-100-binary").string(), 11, 5, false);
  CIFAR100 fine(dir.path.string(), false);
  CIFAR100 coarse(dir.path.string(), false, nullptr, nullptr, true);
  REQUIRE(fine.size() == 11);
  REQUIRE(same(fine.images(), f.images));
  REQUIRE(same(coarse.images(), f.images));
  REQUIRE(same(fine.labels(), f.labels));
  REQUIRE(same(coarse.labels(), f.coarse));
  REQUIRE(fine.classes().size() == 100);
  REQUIRE(coarse.classes().size() == 20);
  REQUIRE(fine.classes()[0] == "apple");
  REQUIRE(coarse.classes()[19] == "vehicles_2");
  REQUIRE(fine.get(10).target.item<int64_t>() == f.labels.data_ptr<int64_t>()[10]);
  REQUIRE(same(fine.get(10).data, f.images[10]));
}

TEST_CASE("MNIST: corrupt CIFAR files raise IOError naming the file") {
  TempDir dir;
  const std::string root = dir.path.string();
  auto fresh = [&] {
    fs::remove_all(dir.path);
    test::write_fake_cifar10(root, 2, 1, true);
  };
  auto patch = [&](const std::string& name, size_t at, char v) {
    std::string b = read_bytes(dir.file(name));
    b[at] = v;
    write_bytes(dir.file(name), b);
  };
  check_cases({
      {"no batches",
       [&] { CIFAR10(dir.file("void"), true); },
       {"void/data_batch_1.bin", "void/cifar-10-batches-bin/data_batch_1.bin", "not found"}},
      {"missing batch",
       [&] {
         fresh();
         fs::remove(dir.file("data_batch_3.bin"));
         CIFAR10(root, true);
       },
       {"data_batch_3.bin", "no such file"}},
      {"size not a multiple",
       [&] {
         fresh();
         write_bytes(dir.file("data_batch_4.bin"), std::string(3073 + 5, '\0'));
         CIFAR10(root, true);
       },
       {"data_batch_4.bin", "size 3078 bytes is not a positive multiple of the 3073-byte record"}},
      {"empty batch",
       [&] {
         fresh();
         write_bytes(dir.file("data_batch_5.bin"), "");
         CIFAR10(root, true);
       },
       {"data_batch_5.bin", "size 0 bytes"}},
      {"label out of range",
       [&] {
         fresh();
         patch("data_batch_2.bin", 3073, 10);  // record 1's label
         CIFAR10(root, true);
       },
       {"data_batch_2.bin", "label 10 of record 1 is out of range for 10 classes"}},
      {"bad meta file",
       [&] {
         fresh();
         write_bytes(dir.file("batches.meta.txt"), "a\nb\n");
         CIFAR10(root, true);
       },
       {"batches.meta.txt", "expected 10 class names, one per line, got 2"}},
      {"CIFAR-100 size",
       [&] {
         fs::remove_all(dir.path);
         test::write_fake_cifar100(root, 3, 1, true);
         write_bytes(dir.file("train.bin"), std::string(3073 * 2, '\0'));
         CIFAR100(root, true);
       },
       {"train.bin", "3074-byte record"}},
      {"CIFAR-100 coarse label",
       [&] {
         fs::remove_all(dir.path);
         test::write_fake_cifar100(root, 3, 1, true);
         patch("train.bin", 3074 * 2, 20);
         CIFAR100(root, true);  // fine labels requested, coarse byte still checked
       },
       {"train.bin", "label 20 of record 2 is out of range for 20 classes"}},
      {"CIFAR-100 fine label",
       [&] {
         fs::remove_all(dir.path);
         test::write_fake_cifar100(root, 3, 1, true);
         patch("train.bin", 1, 100);
         CIFAR100(root, true);
       },
       {"train.bin", "label 100 of record 0 is out of range for 100 classes"}},
  });
}

// ---- ImageFolder ----

TEST_CASE("MNIST: ImageFolder classes, order, labels and exact PNG pixels") {
  TempDir dir;
  const std::string root = (dir.path / "images").string();
  std::vector<test::FakeImageFile> files =
      test::write_fake_image_folder(root, {"dog", "Cat", "bird"}, 3, 42);
  // Extras: a nested directory (walked after the class directory's own files, as os.walk
  // sorted does), an upper-case extension, a file that is not an image, and a JPEG.
  fs::create_directories(fs::path(root) / "dog" / "a");
  const std::vector<uint8_t> flat(4 * 6 * 3, 200);
  const std::string nested = (fs::path(root) / "dog" / "a" / "z.png").string();
  REQUIRE(stbi_write_png(nested.c_str(), 6, 4, 3, flat.data(), 18) != 0);
  const std::string upper = (fs::path(root) / "bird" / "UPPER.PNG").string();
  REQUIRE(stbi_write_png(upper.c_str(), 6, 4, 3, flat.data(), 18) != 0);
  write_bytes((fs::path(root) / "Cat" / "notes.txt").string(), "not an image");
  std::vector<uint8_t> rgb(16 * 8 * 3);
  for (size_t i = 0; i < rgb.size(); i += 3) {
    rgb[i] = 250;
    rgb[i + 1] = 10;
    rgb[i + 2] = 120;
  }
  const std::string jpg = (fs::path(root) / "Cat" / "photo.jpg").string();
  REQUIRE(stbi_write_jpg(jpg.c_str(), 16, 8, 3, rgb.data(), 95) != 0);

  // A link cycle (dog/a/back -> dog) is walked once, not forever.
  fs::create_directory_symlink("..", fs::path(root) / "dog" / "a" / "back");

  ImageFolder ds(root);
  REQUIRE(ds.classes() == std::vector<std::string>{"Cat", "bird", "dog"});  // byte-wise
  REQUIRE(ds.class_to_idx().at("bird") == 1);
  REQUIRE(ds.size() == 12);
  const auto& s = ds.samples();
  // Cat: img_0..2, photo.jpg; bird: UPPER.PNG, img_0..2; dog: img_0..2, a/z.png
  std::vector<std::pair<std::string, int64_t>> expect;
  for (size_t i = 0; i < 3; ++i) expect.push_back({files[i].path, 0});
  expect.push_back({jpg, 0});
  expect.push_back({upper, 1});
  for (size_t i = 3; i < 6; ++i) expect.push_back({files[i].path, 1});
  for (size_t i = 6; i < 9; ++i) expect.push_back({files[i].path, 2});
  expect.push_back({nested, 2});
  REQUIRE(s == expect);

  for (size_t i = 0; i < files.size(); ++i) {
    const size_t index = i < 3 ? i : i < 6 ? i + 2 : i + 2;
    Example e = ds.get(static_cast<int64_t>(index));
    INFO(files[i].path);
    REQUIRE(e.data.dtype() == kUInt8);
    REQUIRE(same(e.data, files[i].pixels));
    REQUIRE(e.target.item<int64_t>() == files[i].label);
  }
  Example j = ds.get(3);
  REQUIRE(j.data.sizes() == IntArrayRef({8, 16, 3}));
  const uint8_t* p = j.data.data_ptr<uint8_t>();
  for (int64_t i = 0; i < 16 * 8; ++i) {
    REQUIRE(std::abs(p[3 * i] - 250) <= 8);
    REQUIRE(std::abs(p[3 * i + 1] - 10) <= 8);
    REQUIRE(std::abs(p[3 * i + 2] - 120) <= 8);
  }
  // Only .jpg: the PNG classes have no image.
  REQUIRE_THROWS_WITH(ImageFolder(root, nullptr, nullptr, {".JPG"}),
                      Catch::Contains("found no image for the classes 'bird', 'dog'"));
  // Transforms.
  ImageFolder tf(
      root, [](const Tensor& t) { return t.to(kFloat32); },
      [](const Tensor& t) { return t.mul(10); });
  REQUIRE(tf.get(11).data.dtype() == kFloat32);
  REQUIRE(tf.get(11).target.item<int64_t>() == 20);
}

TEST_CASE("MNIST: corrupt ImageFolder trees raise IOError naming the path") {
  TempDir dir;
  const fs::path root = dir.path / "tree";
  const std::string r = root.string();
  test::write_fake_image_folder(r, {"a", "b"}, 1, 3);
  const std::string good = (root / "a" / "img_0.png").string();
  const std::string png = read_bytes(good);
  auto add = [&](const std::string& name, const std::string& bytes) {
    const std::string p = (root / "b" / name).string();
    write_bytes(p, bytes);
    return p;
  };
  const std::string garbage = add("garbage.png", "this is not a png file at all");
  const std::string truncated = add("truncated.png", png.substr(0, png.size() / 2));
  // A PNG header (IHDR) saying 70000 x 1: stb accepts it, the side cap refuses it.
  std::string wide = png.substr(0, 33);
  wide.replace(16, 4, u32be(70000));
  wide.replace(20, 4, u32be(1));
  const std::string wide_png = add("wide.png", wide);
  // A PGM header saying 20000 x 20000 (4e8 pixels > 2^28) and no pixel data.
  const std::string big_pgm = add("big.pgm", "P5\n20000 20000\n255\n");
  fs::create_directories(dir.path / "empty_root");
  fs::create_directories(dir.path / "no_images" / "cls");
  write_bytes((dir.path / "no_images" / "cls" / "readme.txt").string(), "x");
  write_bytes((dir.path / "plain_file").string(), "x");

  ImageFolder ds(r);
  auto index_of = [&](const std::string& path) {
    for (size_t i = 0; i < ds.samples().size(); ++i)
      if (ds.samples()[i].first == path) return static_cast<int64_t>(i);
    FAIL("not a sample: " << path);
    return int64_t{-1};
  };
  check_cases({
      {"missing root",
       [&] { ImageFolder((dir.path / "missing").string()); },
       {"missing", "no such directory"}},
      {"root is a file",
       [&] { ImageFolder((dir.path / "plain_file").string()); },
       {"plain_file", "not a directory"}},
      {"empty root",
       [&] { ImageFolder((dir.path / "empty_root").string()); },
       {"empty_root", "no class directories"}},
      {"class without images",
       [&] { ImageFolder((dir.path / "no_images").string()); },
       {"no_images", "found no image for the classes 'cls'"}},
      {"garbage png", [&] { ds.get(index_of(garbage)); }, {"garbage.png", "cannot decode image"}},
      {"truncated png",
       [&] { ds.get(index_of(truncated)); },
       {"truncated.png", "cannot decode image"}},
      {"absurd side",
       [&] { ds.get(index_of(wide_png)); },
       {"wide.png", "absurd image size 70000x1"}},
      {"absurd pixel count",
       [&] { ds.get(index_of(big_pgm)); },
       {"big.pgm", "absurd image size 20000x20000"}},
      {"file removed after the scan",
       [&] {
         fs::remove(good);
         ds.get(index_of(good));
       },
       {"img_0.png", "no such file"}},
  });
}

// ---- threads ----

TEST_CASE("MNIST: concurrent get from 4 threads matches sequential") {
  TempDir dir;
  test::write_fake_mnist((dir.path / "mnist").string(), 64, 9, true, true);
  test::write_fake_cifar10((dir.path / "cifar").string(), 8, 9, false);
  test::write_fake_image_folder((dir.path / "folder").string(), {"x", "y", "z"}, 8, 9);
  const std::vector<std::shared_ptr<const Dataset>> sets = {
      std::make_shared<MNIST>((dir.path / "mnist").string(), true),
      std::make_shared<CIFAR10>((dir.path / "cifar").string(), false),
      std::make_shared<ImageFolder>((dir.path / "folder").string())};
  for (const auto& ds : sets) {
    const int64_t n = ds->size();
    std::vector<Example> seq;
    for (int64_t i = 0; i < n; ++i) seq.push_back(ds->get(i));
    std::vector<std::vector<Example>> par(4, std::vector<Example>(static_cast<size_t>(n)));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int64_t k = 0; k < 3 * n; ++k) {
          const int64_t i = (k * 7 + t * 13) % n;  // every thread visits every index
          par[static_cast<size_t>(t)][static_cast<size_t>(i)] = ds->get(i);
        }
      });
    }
    for (std::thread& th : threads) th.join();
    for (int t = 0; t < 4; ++t) {
      for (int64_t i = 0; i < n; ++i) {
        const Example& a = seq[static_cast<size_t>(i)];
        const Example& b = par[static_cast<size_t>(t)][static_cast<size_t>(i)];
        REQUIRE(b.data.defined());
        REQUIRE(same(a.data, b.data));
        REQUIRE(same(a.target, b.target));
      }
    }
  }
}
