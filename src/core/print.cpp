// Printing tensors the way PyTorch does: tensor([[1., 2.], [3., 4.]]) with aligned columns,
// 4 decimals or scientific notation, summarised with "..." above 1000 elements.
#include <cmath>
#include <cstdio>
#include <ostream>
#include <sstream>
#include <string>

#include "core/dispatch.hpp"
#include "core/tensor_impl.hpp"
#include "ember/ops.hpp"

namespace ember {
namespace {

constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;

struct Formatter {
  bool floating = false, is_bool = false, int_mode = true, sci = false;
  size_t width = 1;

  std::string format(double v) const {
    char buf[64];
    if (is_bool) return v != 0 ? "True" : "False";
    if (!floating) {
      std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
      return buf;
    }
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    if (sci) {
      std::snprintf(buf, sizeof buf, "%.4e", v);
    } else if (int_mode) {
      std::snprintf(buf, sizeof buf, "%.0f.", v);
    } else {
      std::snprintf(buf, sizeof buf, "%.4f", v);
    }
    return buf;
  }
  std::string pad(double v) const {
    std::string s = format(v);
    return std::string(width > s.size() ? width - s.size() : 0, ' ') + s;
  }
};

/// Reads element at a multi-index as double.
double value_at(const Tensor& t, const std::vector<int64_t>& idx) {
  int64_t off = 0;
  for (size_t i = 0; i < idx.size(); ++i) off += idx[i] * t.strides()[i];
  return visit_dtype(t.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    return convert<double>(static_cast<const T*>(t.data_ptr())[off]);
  });
}

void collect(const Tensor& t, std::vector<int64_t>& idx, bool summarize, std::vector<double>& out) {
  size_t d = idx.size();
  if (d == static_cast<size_t>(t.dim())) {
    out.push_back(value_at(t, idx));
    return;
  }
  int64_t n = t.sizes()[d];
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) i = n - kEdgeItems;
    idx.push_back(i);
    collect(t, idx, summarize, out);
    idx.pop_back();
  }
}

void emit(std::ostream& os, const Tensor& t, std::vector<int64_t>& idx, bool summarize,
          const Formatter& f, int indent) {
  size_t d = idx.size();
  if (d == static_cast<size_t>(t.dim())) {
    os << f.pad(value_at(t, idx));
    return;
  }
  os << '[';
  int64_t n = t.sizes()[d];
  const bool last_dim = d + 1 == static_cast<size_t>(t.dim());
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) {
      os << ',';
      if (last_dim) {
        os << ' ';
      } else {
        os << std::string(t.dim() - d - 1, '\n') << std::string(indent + d + 1, ' ');
      }
    }
    if (summarize && n > 2 * kEdgeItems && i == kEdgeItems) {
      os << (last_dim ? " ..." : "...") << ',';
      if (last_dim) {
        os << ' ';
      } else {
        os << std::string(t.dim() - d - 1, '\n') << std::string(indent + d + 1, ' ');
      }
      i = n - kEdgeItems;
    }
    idx.push_back(i);
    emit(os, t, idx, summarize, f, indent);
    idx.pop_back();
  }
  os << ']';
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Tensor& t0) {
  if (!t0.defined()) return os << "[ undefined tensor ]";
  Tensor t = t0.is_cpu() ? t0 : t0.cpu();
  const bool summarize = t.numel() > kThreshold;
  Formatter f;
  f.floating = t.is_floating_point();
  f.is_bool = t.dtype() == kBool;
  std::vector<int64_t> idx;
  std::vector<double> vals;
  collect(t, idx, summarize, vals);
  if (f.floating) {
    double amax = 0, amin = INFINITY;
    bool any_finite = false;
    for (double v : vals) {
      if (!std::isfinite(v)) continue;
      any_finite = true;
      if (v != std::nearbyint(v)) f.int_mode = false;
      double a = std::fabs(v);
      amax = std::max(amax, a);
      if (a != 0) amin = std::min(amin, a);
    }
    if (any_finite) {
      if (f.int_mode) {
        f.sci = amax > 1e8;
      } else {
        f.sci = amax / (amin == INFINITY ? 1 : amin) > 1000.0 || amax > 1e8 ||
                (amin != INFINITY && amin < 1e-4);
      }
    }
  }
  for (double v : vals) f.width = std::max(f.width, f.format(v).size());

  os << "tensor(";
  if (t.numel() == 0 && t.dim() > 0) {
    os << "[]";
    bool needs_size = t.dim() != 1;
    if (needs_size) os << ", size=" << t.sizes();
  } else if (t.dim() == 0) {
    os << f.format(vals.at(0));
  } else {
    emit(os, t, idx, summarize, f, 7);
  }
  const DType dt = t.dtype();
  if (dt != get_default_dtype() && dt != kInt64 && dt != kBool) os << ", dtype=" << dt;
  if (!t0.is_cpu()) os << ", device='" << t0.device() << "'";
  if (t0.requires_grad()) os << ", requires_grad=True";
  return os << ')';
}

}  // namespace ember
