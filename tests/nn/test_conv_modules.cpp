// Convolution, pooling and upsampling modules: shapes, PyTorch's parameter names and counts,
// default initialisation bounds, "same" padding and the padding modes, forward against the
// functional ops, state_dict round trips, printing, option errors, and gradcheck through a
// float64 module (input and parameters).
#include <cmath>
#include <sstream>

#include "ember/nn.hpp"
#include "ember/nn/modules/conv.hpp"
#include "ember/nn/modules/pooling.hpp"
#include "gradcheck.hpp"

using namespace ember;

namespace {

Tensor rnd(IntArrayRef sizes, uint64_t seed) {
  Generator g(seed);
  Tensor t = empty(sizes, kFloat64);
  uniform_(t, -1.0, 1.0, g);
  return t;
}

double max_abs(const Tensor& t) { return t.detach().abs().max().item<double>(); }

bool close(const Tensor& a, const Tensor& b, double tol = 1e-12) {
  return a.sizes() == b.sizes() && allclose(a, b, tol, tol);
}

/// Central differences of sum(f() * v) with respect to every element of the parameter p
/// (changed in place and restored), against autograd's p.grad.
bool parameter_gradcheck(Tensor p, const std::function<Tensor()>& f) {
  p.mutable_grad() = Tensor();
  Tensor y = f();
  Tensor v = rnd(y.sizes(), 99);
  (y * v).sum().backward();
  const std::vector<double> ana = test::values(p.grad());
  NoGradGuard no_grad;
  Tensor flat = p.view({-1});
  for (int64_t i = 0; i < flat.numel(); ++i) {
    double* e = p.data_ptr<double>() + i;
    const double orig = *e;
    *e = orig + 1e-6;
    const double up = (f() * v).sum().item<double>();
    *e = orig - 1e-6;
    const double down = (f() * v).sum().item<double>();
    *e = orig;
    const double num = (up - down) / 2e-6;
    if (!(std::abs(num - ana[static_cast<size_t>(i)]) <= 1e-5 + 1e-3 * std::abs(num))) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("Conv2d: parameters named and shaped as PyTorch's, default init bounds") {
  nn::Conv2d conv(nn::Conv2dOptions(4, 8, 3).groups(2));
  const std::vector<std::string> names = conv->named_parameters().keys();
  CHECK(names == std::vector<std::string>{"weight", "bias"});
  CHECK(conv->weight.sizes() == IntArrayRef({8, 2, 3, 3}));
  CHECK(conv->bias.sizes() == IntArrayRef({8}));
  CHECK(conv->num_parameters() == 8 * 2 * 3 * 3 + 8);
  // kaiming_uniform_(a = sqrt(5)) and the bias: U(-b, b), b = 1/sqrt(fan_in), fan_in = 2*3*3.
  const double bound = 1.0 / std::sqrt(18.0);
  CHECK(max_abs(conv->weight) <= bound);
  CHECK(max_abs(conv->weight) > 0.9 * bound);  // 144 draws fill the range
  CHECK(max_abs(conv->bias) <= bound);
  CHECK(max_abs(conv->bias) > 0.3 * bound);
  nn::Conv2d nb(nn::Conv2dOptions(3, 5, {2, 3}).bias(false));
  CHECK(nb->named_parameters().keys() == std::vector<std::string>{"weight"});
  CHECK(nb->weight.sizes() == IntArrayRef({5, 3, 2, 3}));
  // Transposed: weight (in, out / groups, k...), fan_in = weight.size(1) * k*k.
  nn::ConvTranspose2d tr(nn::ConvTranspose2dOptions(6, 4, 4).groups(2));
  CHECK(tr->weight.sizes() == IntArrayRef({6, 2, 4, 4}));
  CHECK(max_abs(tr->weight) <= 1.0 / std::sqrt(32.0));
  CHECK(max_abs(tr->bias) <= 1.0 / std::sqrt(32.0));
  nn::Conv1d c1(3, 6, 5);
  CHECK(c1->weight.sizes() == IntArrayRef({6, 3, 5}));
  CHECK(max_abs(c1->weight) <= 1.0 / std::sqrt(15.0));
}

TEST_CASE("Conv modules: forward equals the functional op with the module's parameters") {
  Tensor x = rnd({2, 4, 9, 8}, 1);
  nn::Conv2d conv(nn::Conv2dOptions(4, 6, {3, 2}).stride({2, 1}).padding(1).dilation(2).groups(2));
  conv->to(kFloat64);
  Tensor y = conv(x);
  CHECK(y.sizes() == IntArrayRef({2, 6, 4, 8}));  // (9 + 2 - 4 - 1) / 2 + 1, (8 + 2 - 2 - 1) + 1
  CHECK(close(y, conv2d(x, conv->weight, conv->bias, {2, 1}, 1, 2, 2)));
  CHECK(close(conv(x[0]), y[0]));  // unbatched
  nn::Conv1d c1(nn::Conv1dOptions(4, 2, 3).stride(2).padding(1));
  c1->to(kFloat64);
  Tensor s = rnd({3, 4, 10}, 2);
  CHECK(c1(s).sizes() == IntArrayRef({3, 2, 5}));
  CHECK(close(c1(s), conv1d(s, c1->weight, c1->bias, 2, 1)));
  // ConvTranspose2d with output_padding: (5 - 1) * 2 - 2 + 3 + 1 = 10.
  nn::ConvTranspose2d tr(
      nn::ConvTranspose2dOptions(4, 3, 3).stride(2).padding(1).output_padding(1));
  tr->to(kFloat64);
  Tensor z = tr(rnd({1, 4, 5, 5}, 3));
  CHECK(z.sizes() == IntArrayRef({1, 3, 10, 10}));
  CHECK(close(z, conv_transpose2d(rnd({1, 4, 5, 5}, 3), tr->weight, tr->bias, 2, 1, 1)));
  // output_size picks the output_padding: a stride-2 Conv2d of 10 or 9 rows gives 5 rows back.
  Tensor z9 = tr->forward_with_output_size(rnd({1, 4, 5, 5}, 3), {9, 10});
  CHECK(z9.sizes() == IntArrayRef({1, 3, 9, 10}));
  CHECK(close(z9, conv_transpose2d(rnd({1, 4, 5, 5}, 3), tr->weight, tr->bias, 2, 1, {0, 1})));
  EMBER_CHECK_THROWS(tr->forward_with_output_size(rnd({1, 4, 5, 5}, 3), {11, 10}), ValueError,
                     "[ConvTranspose2d]", "(11, 10)", "[9, 10]");
  nn::ConvTranspose1d t1(nn::ConvTranspose1dOptions(2, 2, 4).stride(2));
  t1->to(kFloat64);
  CHECK(t1(rnd({1, 2, 5}, 4)).sizes() == IntArrayRef({1, 2, 12}));
}

TEST_CASE("Conv2d: padding \"same\"/\"valid\" and the padding modes") {
  Tensor x = rnd({1, 2, 7, 6}, 5);
  for (int64_t k : {3, 4}) {
    nn::Conv2d same(nn::Conv2dOptions(2, 3, k).padding("same").dilation(2));
    same->to(kFloat64);
    Tensor y = same(x);
    CHECK(y.sizes() == IntArrayRef({1, 3, 7, 6}));
    const int64_t total = 2 * (k - 1), left = total / 2, right = total - left;
    CHECK(close(y, conv2d(pad(x, {left, right, left, right}), same->weight, same->bias, 1, 0, 2)));
    for (const char* mode : {"reflect", "replicate"}) {
      nn::Conv2d m(nn::Conv2dOptions(2, 3, k).padding("same").padding_mode(mode));
      m->to(kFloat64);
      const int64_t l = (k - 1) / 2, r = (k - 1) - l;
      CHECK(m(x).sizes() == IntArrayRef({1, 3, 7, 6}));
      CHECK(close(m(x), conv2d(pad(x, {l, r, l, r}, mode), m->weight, m->bias)));
    }
  }
  nn::Conv2d valid(nn::Conv2dOptions(2, 3, 3).padding("valid"));
  CHECK(valid(x.to(kFloat32)).sizes() == IntArrayRef({1, 3, 5, 4}));
  // circular: wrap-around, here along W with numeric padding (0, 2).
  nn::Conv2d circ(nn::Conv2dOptions(2, 1, {1, 3}).padding({0, 2}).padding_mode("circular"));
  circ->to(kFloat64);
  Tensor wrapped = cat({x.narrow(3, 4, 2), x, x.narrow(3, 0, 2)}, 3);
  CHECK(close(circ(x), conv2d(wrapped, circ->weight, circ->bias)));
  CHECK(circ(x).sizes() == IntArrayRef({1, 1, 7, 8}));
}

TEST_CASE("Conv modules: option errors") {
  EMBER_CHECK_THROWS(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).groups(2)), ValueError, "[Conv2d]",
                     "in_channels 3", "groups 2");
  EMBER_CHECK_THROWS(nn::Conv2d(nn::Conv2dOptions(4, 3, 3).groups(2)), ValueError, "[Conv2d]",
                     "out_channels 3");
  EMBER_CHECK_THROWS(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding("same").stride(2)), ValueError,
                     "[Conv2d]", "same");
  EMBER_CHECK_THROWS(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding("full")), ValueError, "[Conv2d]",
                     "full");
  EMBER_CHECK_THROWS(nn::Conv2d(nn::Conv2dOptions(4, 4, 3).padding_mode("mirror")), ValueError,
                     "[Conv2d]", "mirror");
  EMBER_CHECK_THROWS(nn::Conv2d(nn::Conv2dOptions(4, 4, {3, 3, 3})), ValueError, "[Conv2d]",
                     "(3, 3, 3)");
  EMBER_CHECK_THROWS(
      nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 3).padding_mode("reflect")), ValueError,
      "[ConvTranspose2d]", "zeros");
  EMBER_CHECK_THROWS(nn::Conv1d(0, 4, 3), ValueError, "[Conv1d]", "in_channels=0");
  nn::Conv2d conv(3, 4, 3);
  EMBER_CHECK_THROWS(conv(zeros({1, 2, 5, 5})), ShapeError, "[conv2d]", "(1, 2, 5, 5)");
}

TEST_CASE("Conv modules: state_dict round trip and printing") {
  nn::Conv2d a(nn::Conv2dOptions(2, 3, 3).stride(2).padding(1).bias(false));
  nn::Conv2d b(nn::Conv2dOptions(2, 3, 3).stride(2).padding(1).bias(false));
  CHECK_FALSE(equal(a->weight, b->weight));  // independent draws
  b->load_state_dict(a->state_dict());
  CHECK(equal(a->weight, b->weight));
  Tensor x = rnd({1, 2, 6, 6}, 6).to(kFloat32);
  CHECK(equal(a(x), b(x)));
  CHECK(a->name() == "Conv2d");
  CHECK(a->extra_repr() == "2, 3, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), bias=false");
  nn::Conv1d c(nn::Conv1dOptions(4, 8, 3).padding("same").groups(4).padding_mode("reflect"));
  CHECK(c->extra_repr() ==
        "4, 8, kernel_size=(3,), stride=(1,), padding=same, groups=4, padding_mode=reflect");
  nn::ConvTranspose2d t(nn::ConvTranspose2dOptions(4, 2, 4).stride(2).padding(1).output_padding(1));
  CHECK(t->extra_repr() ==
        "4, 2, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), output_padding=(1, 1)");
  std::ostringstream os;
  os << *a;
  CHECK(os.str().find("Conv2d(2, 3, kernel_size=(3, 3)") != std::string::npos);
}

TEST_CASE("Conv2d: gradcheck through a float64 module (input and parameters)") {
  nn::Conv2d conv(nn::Conv2dOptions(2, 3, 3).stride(2).padding(1));
  conv->to(kFloat64);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); },
                        {test::grad_input({2, 2, 5, 5})}));
  CHECK(test::gradgradcheck([&](const std::vector<Tensor>& in) { return tanh(conv(in[0])); },
                            {test::grad_input({1, 2, 4, 4})}));
  Tensor x = rnd({2, 2, 5, 5}, 7);
  CHECK(parameter_gradcheck(conv->weight, [&] { return conv(x); }));
  CHECK(parameter_gradcheck(conv->bias, [&] { return conv(x); }));
  nn::ConvTranspose2d tr(nn::ConvTranspose2dOptions(2, 2, 3).stride(2).output_padding(1));
  tr->to(kFloat64);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return tr(in[0]); },
                        {test::grad_input({1, 2, 3, 3})}));
  CHECK(parameter_gradcheck(tr->weight, [&] { return tr(rnd({1, 2, 3, 3}, 8)); }));
  nn::Conv2d refl(nn::Conv2dOptions(2, 2, 3).padding(1).padding_mode("circular"));
  refl->to(kFloat64);
  CHECK(test::gradcheck([&](const std::vector<Tensor>& in) { return refl(in[0]); },
                        {test::grad_input({1, 2, 4, 4})}));
}

TEST_CASE("Pooling and upsampling modules match the functional ops") {
  Tensor x = rnd({2, 3, 9, 8}, 10);
  nn::MaxPool2d mp(nn::MaxPool2dOptions(3).stride(2).padding(1));
  CHECK(equal(mp(x), max_pool2d(x, 3, 2, 1)));
  auto [v, i] = mp->forward_with_indices(x);
  CHECK(equal(std::get<1>(max_pool2d_with_indices(x, 3, 2, 1)), i));
  CHECK(mp->extra_repr() ==
        "kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=false");
  nn::MaxPool2d m2(2);
  CHECK(m2(x).sizes() == IntArrayRef({2, 3, 4, 4}));
  CHECK(nn::MaxPool1d(3)(x[0]).sizes() == IntArrayRef({3, 9, 2}));
  nn::AvgPool2d ap(nn::AvgPool2dOptions({2, 3}).stride(2).ceil_mode(true).count_include_pad(false));
  CHECK(equal(ap(x), avg_pool2d(x, {2, 3}, 2, 0, true, false)));
  CHECK(equal(nn::AvgPool1d(2)(x[0]), avg_pool1d(x[0], 2)));
  nn::AdaptiveAvgPool2d gap(1);
  CHECK(gap(x).sizes() == IntArrayRef({2, 3, 1, 1}));
  CHECK(close(gap(x), x.mean({2, 3}, true)));
  CHECK(equal(nn::AdaptiveAvgPool2d(IntArrayRef({3, 2}))(x), adaptive_avg_pool2d(x, {3, 2})));
  CHECK(equal(nn::AdaptiveMaxPool2d(IntArrayRef({3, 2}))(x),
              std::get<0>(adaptive_max_pool2d(x, {3, 2}))));
  CHECK(equal(nn::AdaptiveAvgPool1d(4)(x[0]), adaptive_avg_pool1d(x[0], 4)));
  nn::Upsample up(nn::UpsampleOptions().scale_factor({2}).mode("bilinear"));
  CHECK(up(x).sizes() == IntArrayRef({2, 3, 18, 16}));
  CHECK(equal(up(x), interpolate(x, std::nullopt, std::vector<double>{2}, "bilinear")));
  CHECK(up->extra_repr() == "scale_factor=(2), mode='bilinear'");
  nn::Upsample near(nn::UpsampleOptions().size({4, 5}));
  CHECK(equal(near(x), upsample_nearest2d(x, {4, 5})));
  EMBER_CHECK_THROWS(nn::Upsample(nn::UpsampleOptions()), ValueError, "[Upsample]");
  EMBER_CHECK_THROWS(nn::Upsample(nn::UpsampleOptions().size({2}).mode("cubic")), ValueError,
                     "[Upsample]", "cubic");
  // No parameters; a small CNN built from the layers runs forward and backward.
  CHECK(mp->parameters().empty());
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(3, 4, 3).padding(1)), nn::MaxPool2d(2),
                     nn::Conv2d(nn::Conv2dOptions(4, 2, 3).padding("same")),
                     nn::AdaptiveAvgPool2d(1));
  net->to(kFloat64);
  Tensor out = net(x);
  CHECK(out.sizes() == IntArrayRef({2, 2, 1, 1}));
  out.sum().backward();
  for (const Tensor& p : net->parameters()) CHECK(p.grad().defined());
  CHECK(net->named_parameters().keys() ==
        std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
}

TEST_CASE("a small CNN trains on a synthetic task with decreasing loss") {
  // Class 0: a bright horizontal bar, class 1: a vertical bar, at random positions, plus noise.
  const int64_t N = 32;
  Generator g(2024);
  Tensor images = empty({N, 1, 8, 8}, kFloat32);
  normal_(images, 0.0, 0.3, g);
  std::vector<int64_t> labels;
  Tensor pos = randint(1, 7, {N}, g);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t c = n % 2, p = pos[n].item<int64_t>();
    Tensor img = images[n][0];
    (c == 0 ? img.select(0, p) : img.select(1, p)).add_(2.0);
    labels.push_back(c);
  }
  Tensor target = tensor(labels);
  manual_seed(7);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 4, 3).padding(1)), nn::ReLU(),
                     nn::MaxPool2d(2), nn::Conv2d(nn::Conv2dOptions(4, 8, 3).padding("same")),
                     nn::ReLU(), nn::AdaptiveAvgPool2d(1), nn::Flatten(), nn::Linear(8, 2));
  std::vector<double> losses;
  for (int step = 0; step < 60; ++step) {
    net->zero_grad();
    Tensor loss = nn::functional::cross_entropy(net(images), target);
    loss.backward();
    losses.push_back(loss.item<double>());
    NoGradGuard no_grad;
    for (Tensor& p : net->parameters()) p.sub_(p.grad() * 0.5);
  }
  INFO("loss " << losses.front() << " -> " << losses.back());
  CHECK(losses.back() < 0.5 * losses.front());
  CHECK(losses.back() < 0.3);
}
