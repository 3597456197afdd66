// cuda:: kernel entry points that have no CUDA kernel yet: each raises DeviceError naming the op.
// Without CUDA they are never reached (check_device_usable refuses CUDA tensors); in a CUDA build
// CMake defines EMBER_CUDA_HAS_<FAMILY> for each src/cuda/<family>.cu, and that family's stubs are
// left out here.
#include "core/kernels.hpp"
#include "ember/cuda/cuda.hpp"
#include "ember/error.hpp"

namespace ember::cuda {
namespace {
[[noreturn, maybe_unused]] void unsupported(const char* kernel) {
  throw DeviceError(detail::str_cat("[", kernel, "] no CUDA kernel is built for this op"));
}
}  // namespace

#ifndef EMBER_CUDA_HAS_COPY
void fill(const Tensor&, Scalar) { unsupported("fill"); }
void arange(const Tensor&, Scalar, Scalar, bool) { unsupported("arange"); }
void linspace(const Tensor&, double, double) { unsupported("linspace"); }
void copy(const Tensor&, const Tensor&) { unsupported("copy"); }
void copy_non_blocking(const Tensor&, const Tensor&) { unsupported("copy"); }
#endif
#ifndef EMBER_CUDA_HAS_ELEMENTWISE
void unary(const Tensor&, const Tensor&, UnaryOp, double, double) { unsupported("unary"); }
void binary(const Tensor&, const Tensor&, const Tensor&, BinaryOp, Scalar) { unsupported("binary"); }
void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { unsupported("where"); }
void activation_backward(const Tensor&, const Tensor&, const Tensor&, ActGrad, double, double) {
  unsupported("activation_backward");
}
#endif
#ifndef EMBER_CUDA_HAS_REDUCE
void reduce(const Tensor&, const Tensor&, IntArrayRef, ReduceOp) { unsupported("reduce"); }
void set_reduce_layout_variant(int) {}
void arg_reduce(const Tensor&, const Tensor&, const Tensor&, int64_t, bool) { unsupported("arg_reduce"); }
void cumsum(const Tensor&, const Tensor&, int64_t) { unsupported("cumsum"); }
void softmax(const Tensor&, const Tensor&, int64_t, bool) { unsupported("softmax"); }
#endif
#ifndef EMBER_CUDA_HAS_LINALG
void gemm(const Tensor&, const Tensor&, const Tensor&, Scalar, Scalar) { unsupported("gemm"); }
#endif
#ifndef EMBER_CUDA_HAS_GEMM_TC
bool gemm_tc(const Tensor&, const Tensor&, const Tensor&, const GemmEpilogue&) { return false; }
void set_gemm_tc_config(int) {}
#endif
#ifndef EMBER_CUDA_HAS_CONV_IMPLICIT_GEMM
bool conv2d_implicit_gemm(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Window2d&, int64_t, bool) { return false; }
bool conv2d_implicit_gemm_input_grad(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Window2d&, int64_t) { return false; }
bool conv2d_implicit_gemm_weight_grad(const Tensor&, const Tensor&, const Tensor&, const Window2d&, int64_t) { return false; }
void set_conv_variant(int) {}
#endif
#ifndef EMBER_CUDA_HAS_CUDNN
bool cudnn_conv2d(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Window2d&, int64_t, bool) { return false; }
bool cudnn_conv2d_input_grad(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Window2d&, int64_t) { return false; }
bool cudnn_conv2d_weight_grad(const Tensor&, const Tensor&, const Tensor&, const Window2d&, int64_t) { return false; }
bool cudnn_available() { return false; }
int64_t cudnn_version() { return 0; }
#endif
#ifndef EMBER_CUDA_HAS_CUBLAS
bool cublas_gemm(const Tensor&, const Tensor&, const Tensor&, Scalar, Scalar) { return false; }
bool cublas_available() { return false; }
#endif
#ifndef EMBER_CUDA_HAS_INDEX
void check_index_range(const Tensor&, int64_t, const char*, int64_t) { unsupported("check_index_range"); }
void gather(const Tensor&, const Tensor&, int64_t, const Tensor&) { unsupported("gather"); }
void scatter(const Tensor&, int64_t, const Tensor&, const Tensor&, bool) { unsupported("scatter"); }
void index_select(const Tensor&, const Tensor&, int64_t, const Tensor&) { unsupported("index_select"); }
void index_add(const Tensor&, int64_t, const Tensor&, const Tensor&, Scalar) { unsupported("index_add"); }
void count_nonzero(const Tensor&, const Tensor&) { unsupported("count_nonzero"); }
void nonzero(const Tensor&, const Tensor&) { unsupported("nonzero"); }
#endif
#ifndef EMBER_CUDA_HAS_SORT
void sort(const Tensor&, const Tensor&, const Tensor&, int64_t, bool, bool) { unsupported("sort"); }
void topk(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, bool, bool) { unsupported("topk"); }
#endif
#ifndef EMBER_CUDA_HAS_RANDOM
void uniform(const Tensor&, double, double, uint64_t, uint64_t) { unsupported("uniform"); }
void normal(const Tensor&, double, double, uint64_t, uint64_t) { unsupported("normal"); }
void randint(const Tensor&, int64_t, int64_t, uint64_t, uint64_t) { unsupported("randint"); }
void bernoulli(const Tensor&, const Tensor&, uint64_t, uint64_t) { unsupported("bernoulli"); }
void randperm(const Tensor&, uint64_t, uint64_t) { unsupported("randperm"); }
void multinomial(const Tensor&, const Tensor&, bool, uint64_t, uint64_t) { unsupported("multinomial"); }
#endif
#ifndef EMBER_CUDA_HAS_CONV
void im2col(const Tensor&, const Tensor&, const Window2d&) { unsupported("im2col"); }
void col2im(const Tensor&, const Tensor&, const Window2d&) { unsupported("col2im"); }
void max_pool2d(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t,
                int64_t) {
  unsupported("max_pool2d");
}
void depthwise_conv2d(const Tensor&, const Tensor&, const Tensor&, const Window2d&) {
  unsupported("depthwise_conv2d");
}
#endif
#ifndef EMBER_CUDA_HAS_NORMALIZATION
void layer_norm_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, double) {
  unsupported("layer_norm_forward");
}
void layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, const Tensor&) {
  unsupported("layer_norm_backward");
}
void batch_norm_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, double, const RunningStats&) {
  unsupported("batch_norm_forward");
}
void batch_norm_eval(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                     const Tensor&) {
  unsupported("batch_norm_eval");
}
void batch_norm_eval_relu(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                          const Tensor&, const Tensor&) {
  unsupported("batch_norm_eval_relu");
}
void batch_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, const Tensor&) {
  unsupported("batch_norm_backward");
}
void batch_norm_relu_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&, double, const RunningStats&) {
  unsupported("batch_norm_relu_forward");
}
void batch_norm_relu_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&) {
  unsupported("batch_norm_relu_backward");
}
void set_norm_sums_variant(int) {}
#endif
#ifndef EMBER_CUDA_HAS_CROSS_ENTROPY
void cross_entropy_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const Tensor&, const Tensor&, const Tensor&, int64_t, double) {
  unsupported("cross_entropy_forward");
}
void cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                            const Tensor&, const Tensor&, const Tensor&, int64_t, double) {
  unsupported("cross_entropy_backward");
}
#endif
#ifndef EMBER_CUDA_HAS_OPTIM
void adam_step(const std::vector<AdamStepTensors>&, const AdamStepOptions&) {
  unsupported("adam_step");
}
void sgd_step(const std::vector<SgdStepTensors>&, const SgdStepOptions&) { unsupported("sgd_step"); }
void foreach_norm(const Tensor&, const std::vector<Tensor>&, double) {
  unsupported("foreach_norm");
}
void foreach_mul_(const std::vector<Tensor>&, const Tensor&) { unsupported("foreach_mul_"); }
void foreach_unscale_(const std::vector<Tensor>&, double, const Tensor&) {
  unsupported("foreach_unscale_");
}
#endif

#ifndef EMBER_CUDA_HAS_ATTENTION
void set_attention_forward_variant(int) {}
void set_attention_backward_variant(int) {}
void attention_forward_flash(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                             const Tensor&, double, bool, double, uint64_t, uint64_t) {
  unsupported("attention_forward_flash");
}
void attention_backward_flash(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, double, bool, double, uint64_t, uint64_t) {
  unsupported("attention_backward_flash");
}
#endif

}  // namespace ember::cuda
