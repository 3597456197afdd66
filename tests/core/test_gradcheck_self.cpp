// The gradcheck harness itself: it passes correct gradients and fails wrong ones.
#include "gradcheck.hpp"

using namespace ember;
using autograd::AutogradContext;

namespace {
struct Cube : autograd::Function<Cube> {  // y = x^3 with a correct backward
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * x * x * 3};
  }
};
struct WrongCube : autograd::Function<WrongCube> {  // y = x^3 with a wrong backward
  static Tensor forward(AutogradContext* ctx, const Tensor& x) {
    ctx->save_for_backward({x});
    return x * x * x;
  }
  static std::vector<Tensor> backward(AutogradContext* ctx, std::vector<Tensor> g) {
    Tensor x = ctx->get_saved_variables()[0];
    return {g[0] * x * x * 2.9};
  }
};
}  // namespace

TEST_CASE("gradcheck: accepts a correct backward and rejects a wrong one") {
  Tensor x = test::grad_input({2, 3});
  CHECK(test::gradcheck([](const std::vector<Tensor>& in) { return Cube::apply(in[0]); }, {x}));
  auto bad = test::gradcheck([](const std::vector<Tensor>& in) { return WrongCube::apply(in[0]); },
                             {x});
  CHECK_FALSE(bad.ok);
  CHECK(bad.report.find("analytic") != std::string::npos);
}
