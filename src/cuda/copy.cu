// CUDA fill and copy: any strides on either side (up to 16 dims), every dtype conversion the CPU
// copy does (the same rules: half and bfloat16 through float, round to nearest even; bool is
// "!= 0"), and copies between the host and the device.
//
// Same dtype and both dense in the same layout: one cudaMemcpyAsync on the current stream (device
// to host, and host to device above 64 KiB, wait for the stream; a smaller host-to-device copy is
// first copied on the host into a ring of pinned slots and queued from there, without a wait:
// window tables, constants, a batch of token ids). Same dtype, out contiguous and src a transposed
// view (its last dim strided, the one before it contiguous; any batch dims in front): a
// shared-memory tiled transpose (32 x 32 tiles, padded rows), coalesced on both sides. Same dtype
// and, with the dims that walk both as one merged, the innermost dim contiguous on both sides in
// whole 16-byte chunks (a permute that keeps the last dim, a slice of a wider tensor): one
// 16-byte load and store per chunk, each row's offsets from its coordinates (rows_copy). Otherwise
// loops.cuh's map: each element's two offsets from its linear index (or its vector / repeated-row
// paths); across devices the source is first made dense on its own device (unless it is, a
// channels-last tensor included), moved with one memcpy into a staging tensor of its layout (or
// straight into out when out has that layout and dtype), and converted/strided on the
// destination's side (loops.cuh's map). Between two GPUs that
// memcpy is a peer copy queued on the destination's stream after an event of the source's.
//
// non_blocking (copy_non_blocking): a dense same-dtype copy between pinned host memory and the
// device is queued and not waited for. The pinned host storage is kept alive by a list of copies
// in flight, each with an event recorded after it; each later non-blocking copy drops the entries
// whose events have completed. So the caller may drop its tensor at once; as in PyTorch, it
// synchronizes (the stream or the device) before it reads a device-to-host result.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "core/kernels.hpp"
#include "core/tensor_impl.hpp"
#include "cuda/allocator.hpp"
#include "cuda/common.cuh"
#include "cuda/dims.hpp"
#include "cuda/loops.cuh"
#include "ember/cuda/cuda.hpp"

namespace ember::cuda {
namespace {

using detail::BF16Bits;
using detail::HalfBits;
using detail::stream_of;
using detail::visit_device_dtype;

// (Device lambdas may not sit inside the generic lambdas of the dtype visits: each lives in a
// named function template.)
template <class O, class I>
void convert_on_device(const Tensor& out, const Tensor& src) {
  detail::map<O, I, /*kRowPath=*/true>(
      out, [] __device__(I v) { return detail::convert<O>(v); }, src);
}

template <class O>
void fill_with(const Tensor& out, O v) {
  detail::map<O>(out, [v] __device__() { return v; });
}

// ---- arange and linspace: the values computed on the device, as the CPU's (kernels.hpp) ----

enum class Sequence { kIntegral, kArange, kLinspace };

struct SequenceArgs {
  int64_t n = 0, si = 0, sti = 0;     // kIntegral: si + i * sti in int64
  double s = 0.0, e = 0.0, st = 0.0;  // kArange: s + i * st; kLinspace: from s to e by st
};

/// out[i] for i < n, every product and sum rounded apart (no fused multiply-add), as on the CPU.
template <class O, Sequence kMode>
__global__ void sequence_kernel(O* __restrict__ out, SequenceArgs a) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < a.n;
       i += int64_t{gridDim.x} * blockDim.x) {
    if constexpr (kMode == Sequence::kIntegral) {
      out[i] = detail::convert<O>(a.si + i * a.sti);
    } else if constexpr (kMode == Sequence::kArange) {
      out[i] = detail::convert<O>(__dadd_rn(a.s, __dmul_rn(static_cast<double>(i), a.st)));
    } else {
      out[i] = detail::convert<O>(
          i < a.n / 2 ? __dadd_rn(a.s, __dmul_rn(a.st, static_cast<double>(i)))
                      : __dsub_rn(a.e, __dmul_rn(a.st, static_cast<double>(a.n - 1 - i))));
    }
  }
}

template <Sequence kMode>
void launch_sequence(const Tensor& out, const SequenceArgs& a) {
  if (a.n == 0) return;
  detail::DeviceGuard guard(out.device().index());
  visit_device_dtype(out.dtype(), [&](auto ot) {
    using O = typename decltype(ot)::type;
    sequence_kernel<O, kMode><<<detail::blocks_for(a.n), detail::kThreads, 0, stream_of(out)>>>(
        static_cast<O*>(out.data_ptr()), a);
    EMBER_CUDA_CHECK_LAUNCH();
  });
}

// ---- transposed copies: a shared-memory tiled transpose ----

constexpr int kTile = 32;     // a tile is kTile x kTile elements
constexpr int kTileRows = 8;  // block (kTile, kTileRows): each thread moves kTile / kTileRows

/// out (B, R, C) contiguous from src with src(b, i, j) at batch_offset(b) + i + j * ldc: out's
/// rows are src's contiguous dim, so a row-major walk of either side strides the other.
struct TransposeGeometry {
  int64_t R = 0, C = 0, ldc = 0;
  int nbatch = 0;  // batch dims (of size > 1), outermost first
  int64_t bsize[detail::kMaxDims], bstride[detail::kMaxDims];
};

/// The geometry when out is contiguous and src is the transposed case above (src's last dim of
/// size > 1 not its contiguous one, the one before it of stride 1); false otherwise.
bool transpose_geometry(const Tensor& out, const Tensor& src, TransposeGeometry& g) {
  if (!out.is_contiguous() || src.is_contiguous()) return false;
  int64_t dims[detail::kMaxDims + 2];
  int nd = 0;
  for (int64_t d = 0; d < out.dim(); ++d) {
    if (out.size(d) == 1) continue;
    if (nd == detail::kMaxDims + 2) return false;
    dims[nd++] = d;
  }
  if (nd < 2) return false;
  const int64_t dr = dims[nd - 2], dc = dims[nd - 1];
  if (src.stride(dr) != 1 || src.stride(dc) == 1) return false;
  g.R = out.size(dr);
  g.C = out.size(dc);
  g.ldc = src.stride(dc);
  g.nbatch = nd - 2;
  for (int k = 0; k < g.nbatch; ++k) {
    g.bsize[k] = out.size(dims[k]);
    g.bstride[k] = src.stride(dims[k]);
  }
  return true;
}

/// One block per kTile x kTile tile of one batch: the tile is read with threadIdx.x along src's
/// contiguous dim (coalesced), kept in shared memory padded to kTile + 1 columns (the column walk
/// of the write phase touches 32 different banks), and written with threadIdx.x along out's rows
/// (coalesced). Grid (column tiles, row tiles, batches), each grid-stride; at most 40 registers
/// (6 blocks, 1536 threads per SM) so that enough tiles are in flight.
template <class T>
__global__ void __launch_bounds__(kTile * kTileRows, 6)
    transpose_kernel(T* __restrict__ out, const T* __restrict__ src, TransposeGeometry g) {
  __shared__ T tile[kTile][kTile + 1];  // [column j][row i]
  const int64_t tiles_r = (g.R + kTile - 1) / kTile, tiles_c = (g.C + kTile - 1) / kTile;
  int64_t batches = 1;
  for (int k = 0; k < g.nbatch; ++k) batches *= g.bsize[k];
  for (int64_t b = blockIdx.z; b < batches; b += gridDim.z) {
    int64_t src_b = 0;
    for (int64_t k = g.nbatch - 1, rest = b; k >= 0; --k) {
      src_b += (rest % g.bsize[k]) * g.bstride[k];
      rest /= g.bsize[k];
    }
    const T* s = src + src_b;
    T* o = out + b * g.R * g.C;  // (R, C)
    for (int64_t tr = blockIdx.y; tr < tiles_r; tr += gridDim.y) {
      for (int64_t tc = blockIdx.x; tc < tiles_c; tc += gridDim.x) {
        const int64_t i0 = tr * kTile, j0 = tc * kTile;
        {
          const int64_t i = i0 + threadIdx.x;
#pragma unroll
          for (int y0 = 0; y0 < kTile; y0 += kTileRows) {
            const int y = y0 + static_cast<int>(threadIdx.y);
            const int64_t j = j0 + y;
            if (i < g.R && j < g.C) tile[y][threadIdx.x] = s[i + j * g.ldc];
          }
        }
        __syncthreads();
        {
          const int64_t j = j0 + threadIdx.x;
#pragma unroll
          for (int y0 = 0; y0 < kTile; y0 += kTileRows) {
            const int y = y0 + static_cast<int>(threadIdx.y);
            const int64_t i = i0 + y;
            if (i < g.R && j < g.C) o[i * g.C + j] = tile[threadIdx.x][y];
          }
        }
        __syncthreads();  // the tile is refilled by the next step
      }
    }
  }
}

/// out = src for the same dtype when src is out transposed (transpose_geometry): the tiled
/// kernel on the elements as raw bits; false (nothing launched) otherwise.
bool transpose_copy(const Tensor& out, const Tensor& src) {
  TransposeGeometry g;
  if (out.dtype() != src.dtype() || !transpose_geometry(out, src, g)) return false;
  int64_t batches = 1;
  for (int k = 0; k < g.nbatch; ++k) batches *= g.bsize[k];
  auto cap = [](int64_t v) { return static_cast<unsigned>(v < 65535 ? v : 65535); };
  const dim3 grid(cap((g.C + kTile - 1) / kTile), cap((g.R + kTile - 1) / kTile), cap(batches));
  auto launch = [&](auto tag) {
    using T = typename decltype(tag)::type;
    transpose_kernel<T><<<grid, dim3(kTile, kTileRows), 0, stream_of(out)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(src.data_ptr()), g);
    EMBER_CUDA_CHECK_LAUNCH();
  };
  detail::visit_bits(out.element_size(), launch);
  return true;
}

// ---- copies whose rows are contiguous on both sides: 16-byte chunks, one offset per row ----

/// out = src (one dtype) where, with the dims that walk both as one merged, the innermost dim is
/// contiguous in both (rows) and the rows sit anywhere (the outer dims' strides), every row
/// starting on a 16-byte boundary and whole 16-byte chunks long: e.g. an attention gradient
/// (B, H, T, D) written into its third of the (B, T, 3 H D) qkv gradient. Counted in chunks.
struct RowsGeometry {
  int nd = 0;  // outer dims (of size > 1), outermost first
  int64_t size[detail::kMaxDims], out_step[detail::kMaxDims], src_step[detail::kMaxDims];
  int64_t rows = 1, chunks = 0;  // rows; 16-byte chunks per row
};
using Chunk16 = detail::Chunk<uint64_t, 2>;

/// The geometry above; false when out and src do not fit it (nothing to gain over the other
/// paths: a single dense run, or rows not in whole aligned chunks).
bool rows_geometry(const Tensor& out, const Tensor& src, RowsGeometry& g) {
  if (out.dtype() != src.dtype() || out.sizes() != src.sizes()) return false;
  constexpr int kMax = detail::kMaxDims + 1;
  int64_t size[kMax], os[kMax], ss[kMax];
  int n = 0;
  for (int64_t d = 0; d < out.dim(); ++d) {
    if (out.size(d) == 1) continue;
    if (n == kMax) return false;
    size[n] = out.size(d), os[n] = out.stride(d), ss[n] = src.stride(d);
    ++n;
  }
  detail::coalesce_dims(n, size, {os, ss});
  const int64_t es = static_cast<int64_t>(out.element_size());
  if (n < 2 || os[n - 1] != 1 || ss[n - 1] != 1 || (size[n - 1] * es) % 16 != 0) return false;
  if (!detail::aligned16(out.data_ptr()) || !detail::aligned16(src.data_ptr())) return false;
  g.nd = n - 1;
  g.chunks = size[n - 1] * es / 16;
  g.rows = 1;
  for (int k = 0; k < g.nd; ++k) {
    if (os[k] <= 0 || ss[k] < 0 || (os[k] * es) % 16 != 0 || (ss[k] * es) % 16 != 0) return false;
    g.size[k] = size[k];
    g.out_step[k] = os[k] * es / 16;
    g.src_step[k] = ss[k] * es / 16;
    g.rows *= size[k];
  }
  return true;
}

/// Thread (x, y) of block (bx, by) moves chunk bx * blockDim.x + x of rows by * blockDim.y + y,
/// + gridDim.y * blockDim.y, ...: each row's offsets from its coordinates (one division per outer
/// dim and row), then one 16-byte load and store.
__global__ void copy_rows_kernel(Chunk16* __restrict__ out, const Chunk16* __restrict__ src,
                                 RowsGeometry g) {
  const int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (c >= g.chunks) return;
  for (int64_t r = blockIdx.y * int64_t{blockDim.y} + threadIdx.y; r < g.rows;
       r += int64_t{gridDim.y} * blockDim.y) {
    int64_t o = 0, s = 0;
    for (int64_t k = g.nd - 1, rest = r; k >= 0; --k) {
      const int64_t i = rest % g.size[k];
      rest /= g.size[k];
      o += i * g.out_step[k];
      s += i * g.src_step[k];
    }
    out[o + c] = src[s + c];
  }
}

/// out = src when rows_geometry applies: copy_rows_kernel; false (nothing launched) otherwise.
/// The general path would take each element's offsets in both from its coordinates (one division
/// per dim of each) and move 2 or 4 bytes at a time.
bool rows_copy(const Tensor& out, const Tensor& src) {
  RowsGeometry g;
  if (!rows_geometry(out, src, g)) return false;
  int bx = 1;
  while (bx < detail::kThreads && bx < g.chunks) bx *= 2;
  const int by = detail::kThreads / bx;
  const int64_t gx = (g.chunks + bx - 1) / bx, gy = (g.rows + by - 1) / by;
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>(gy < 65535 ? gy : 65535));
  copy_rows_kernel<<<grid, dim3(bx, by), 0, stream_of(out)>>>(
      static_cast<Chunk16*>(out.data_ptr()), static_cast<const Chunk16*>(src.data_ptr()), g);
  EMBER_CUDA_CHECK_LAUNCH();
  return true;
}

/// Both dense in one layout (contiguous, or both channels-last) with the same dtype: bytes can
/// be moved as they are.
bool raw_copyable(const Tensor& out, const Tensor& src) {
  return out.dtype() == src.dtype() && is_dense(out) && detail::same_layout(src, out);
}

/// A fresh tensor on `device` laid out as dense t (its strides), for staging t's bytes.
Tensor dense_like(const Tensor& t, Device device) {
  Tensor flat = make_tensor({t.numel()}, t.dtype(), device, "copy");
  return make_view(flat, t.sizes().vec(), t.strides().vec(), 0);
}

/// out = src (converted, strided), both on out's CUDA device.
void copy_on_device(const Tensor& out, const Tensor& src) {
  const int64_t n = out.numel();
  if (n == 0) return;
  detail::DeviceGuard guard(out.device().index());
  cudaStream_t stream = stream_of(out);
  if (raw_copyable(out, src)) {
    EMBER_CUDA_CHECK(cudaMemcpyAsync(out.data_ptr(), src.data_ptr(), out.nbytes(),
                                     cudaMemcpyDeviceToDevice, stream));
    return;
  }
  if (transpose_copy(out, src) || rows_copy(out, src)) return;
  visit_device_dtype(out.dtype(), [&](auto ot) {
    using O = typename decltype(ot)::type;
    visit_device_dtype(src.dtype(), [&](auto it) {
      using I = typename decltype(it)::type;
      convert_on_device<O, I>(out, src);
    });
  });
}

/// GPU to GPU: src made dense on its device, one peer copy (on out's stream, after src's stream
/// has produced it) into a dense tensor on out's device, then the conversion and strides there.
/// Synchronous with respect to the host, like the host copies.
void copy_between_devices(const Tensor& out, const Tensor& src) {
  Tensor packed = src;
  if (!is_dense(src)) {
    packed = make_tensor(src.sizes(), src.dtype(), src.device(), "copy");
    copy_on_device(packed, src);
  }
  Tensor staged = raw_copyable(out, packed) ? out : dense_like(packed, out.device());
  const int from = packed.device().index(), to = out.device().index();
  cudaEvent_t ready = nullptr;
  {
    detail::DeviceGuard guard(from);
    EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    EMBER_CUDA_CHECK(cudaEventRecord(ready, stream_of(packed)));
  }
  {
    detail::DeviceGuard guard(to);
    const cudaError_t wait = cudaStreamWaitEvent(stream_of(out), ready, 0);
    const cudaError_t copy = wait != cudaSuccess
                                 ? wait
                                 : cudaMemcpyPeerAsync(staged.data_ptr(), to, packed.data_ptr(),
                                                       from, packed.nbytes(), stream_of(out));
    const cudaError_t done = copy != cudaSuccess ? copy : cudaStreamSynchronize(stream_of(out));
    (void)cudaEventDestroy(ready);
    EMBER_CUDA_CHECK(done);
  }
  if (!staged.is_same(out)) copy_on_device(out, staged);
}

}  // namespace

void arange(const Tensor& out, Scalar start, Scalar step, bool integral) {
  SequenceArgs a;
  a.n = out.numel();
  if (integral) {
    a.si = start.to_long();
    a.sti = step.to_long();
    launch_sequence<Sequence::kIntegral>(out, a);
  } else {
    a.s = start.to_double();
    a.st = step.to_double();
    launch_sequence<Sequence::kArange>(out, a);
  }
}

void linspace(const Tensor& out, double start, double end) {
  SequenceArgs a;
  a.n = out.numel();
  a.s = start;
  a.e = end;
  a.st = a.n > 1 ? (end - start) / static_cast<double>(a.n - 1) : 0.0;
  launch_sequence<Sequence::kLinspace>(out, a);
}

void fill(const Tensor& out, Scalar value) {
  visit_device_dtype(out.dtype(), [&](auto ot) {
    using O = typename decltype(ot)::type;
    O v;
    if constexpr (std::is_same_v<O, HalfBits>) {
      const Half h = value.to<Half>();
      std::memcpy(&v, &h, sizeof(v));
    } else if constexpr (std::is_same_v<O, BF16Bits>) {
      const BFloat16 h = value.to<BFloat16>();
      std::memcpy(&v, &h, sizeof(v));
    } else {
      v = value.to<O>();
    }
    fill_with<O>(out, v);
  });
}

namespace {

/// Host-to-device copies of up to kUploadBytes go through a ring of pinned slots per device: the
/// source is copied into a slot on the host, and the DMA from there is queued without waiting for
/// the stream (from pageable memory a blocking copy must wait, as PyTorch's does, since the
/// source may be freed as soon as the call returns). A slot is reused once the event recorded
/// after its copy has completed: kUploadSlots uploads later, so in practice long done.
constexpr size_t kUploadBytes = size_t{64} << 10;
constexpr unsigned kUploadSlots = 16;

struct UploadRing {
  std::mutex mu;
  std::shared_ptr<Storage> slots;  // kUploadSlots x kUploadBytes, pinned
  cudaEvent_t done[kUploadSlots] = {};
  unsigned next = 0;
};

/// The ring of the current device (made on first use; never freed: it lives as long as the
/// process's CUDA context).
UploadRing& upload_ring(int device) {
  static std::mutex mu;
  static auto* rings = new std::vector<UploadRing*>();
  std::lock_guard<std::mutex> lock(mu);
  if (rings->size() <= static_cast<size_t>(device))
    rings->resize(static_cast<size_t>(device) + 1, nullptr);
  UploadRing*& r = (*rings)[static_cast<size_t>(device)];
  if (r == nullptr) {
    auto ring = std::make_unique<UploadRing>();
    ring->slots = detail::allocate_pinned_storage(kUploadBytes * kUploadSlots, "copy");
    for (cudaEvent_t& e : ring->done)
      EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    r = ring.release();
  }
  return *r;
}

/// dst (CUDA, dense) = host (dense, the same bytes) through the upload ring, queued on dst's
/// stream with no wait; false (nothing done) above kUploadBytes. The caller holds a DeviceGuard
/// of dst's device.
bool upload_small(const Tensor& dst, const Tensor& host) {
  const size_t n = host.nbytes();
  if (n > kUploadBytes) return false;
  UploadRing& r = upload_ring(dst.device().index());
  std::lock_guard<std::mutex> lock(r.mu);
  const unsigned s = r.next++ % kUploadSlots;
  const cudaError_t q = cudaEventQuery(r.done[s]);  // the slot's last DMA has read it?
  if (q == cudaErrorNotReady) {
    (void)cudaGetLastError();
    EMBER_CUDA_CHECK(cudaEventSynchronize(r.done[s]));
  } else {
    EMBER_CUDA_CHECK(q);
  }
  char* slot = static_cast<char*>(r.slots->data) + s * kUploadBytes;
  std::memcpy(slot, host.data_ptr(), n);
  const cudaStream_t stream = stream_of(dst);
  EMBER_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), slot, n, cudaMemcpyHostToDevice, stream));
  EMBER_CUDA_CHECK(cudaEventRecord(r.done[s], stream));
  return true;
}

}  // namespace

void copy(const Tensor& out, const Tensor& src) {
  if (out.numel() == 0) return;
  if (out.device().is_cuda() && src.device().is_cuda()) {
    if (out.device() == src.device()) {
      copy_on_device(out, src);
    } else {
      copy_between_devices(out, src);
    }
    return;
  }
  if (out.device().is_cuda()) {  // host -> device
    // Dense (contiguous or channels-last as it is), src's dtype; expanded sources materialise.
    const Tensor host = is_dense(src) ? src : src.contiguous();
    Tensor staged = raw_copyable(out, host) ? out : dense_like(host, out.device());
    {
      detail::DeviceGuard guard(out.device().index());
      if (!upload_small(staged, host)) {
        EMBER_CUDA_CHECK(cudaMemcpyAsync(staged.data_ptr(), host.data_ptr(), host.nbytes(),
                                         cudaMemcpyHostToDevice, stream_of(out)));
        // The copy is complete before `host` may die.
        EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(out)));
      }
    }
    if (!staged.is_same(out)) copy_on_device(out, staged);
    return;
  }
  // device -> host: a dense copy on the device first (unless src is dense, channels-last
  // included), then one memcpy, then the CPU conversion.
  Tensor dev = src;
  if (!is_dense(src)) {
    dev = make_tensor(src.sizes(), src.dtype(), src.device(), "copy");
    copy_on_device(dev, src);
  }
  Tensor host = raw_copyable(out, dev) ? out : dense_like(dev, Device(kCPU));
  {
    detail::DeviceGuard guard(dev.device().index());
    EMBER_CUDA_CHECK(cudaMemcpyAsync(host.data_ptr(), dev.data_ptr(), dev.nbytes(),
                                     cudaMemcpyDeviceToHost, stream_of(dev)));
    EMBER_CUDA_CHECK(cudaStreamSynchronize(stream_of(dev)));
  }
  if (!host.is_same(out)) cpu::copy(out, host);
}

namespace {

/// Pinned host storages in use by queued copies, each with an event recorded after its copy.
struct InFlight {
  std::shared_ptr<Storage> storage;
  cudaEvent_t done;
};
std::mutex& in_flight_mutex() {
  static std::mutex mu;
  return mu;
}
std::vector<InFlight>& in_flight() {
  static std::vector<InFlight> v;
  return v;
}

/// Drops the storages whose copies have finished; the caller holds in_flight_mutex().
void collect_finished() {
  std::vector<InFlight>& v = in_flight();
  size_t kept = 0;
  for (InFlight& f : v) {
    const cudaError_t err = cudaEventQuery(f.done);
    if (err == cudaErrorNotReady) {
      (void)cudaGetLastError();
      v[kept++] = std::move(f);
      continue;
    }
    (void)cudaGetLastError();
    (void)cudaEventDestroy(f.done);
  }
  v.resize(kept);
}

}  // namespace

void copy_non_blocking(const Tensor& out, const Tensor& src) {
  const bool to_device = out.is_cuda();
  const Tensor& host = to_device ? src : out;
  const Tensor& dev = to_device ? out : src;
  if (out.numel() == 0 || !host.is_pinned() || !raw_copyable(out, src)) {
    copy(out, src);
    return;
  }
  detail::DeviceGuard guard(dev.device().index());
  const cudaStream_t stream = stream_of(dev);
  std::lock_guard<std::mutex> lock(in_flight_mutex());
  collect_finished();
  cudaEvent_t done = nullptr;
  EMBER_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  const cudaError_t err =
      to_device ? cudaMemcpyAsync(out.data_ptr(), src.data_ptr(), out.nbytes(),
                                  cudaMemcpyHostToDevice, stream)
                : cudaMemcpyAsync(out.data_ptr(), src.data_ptr(), out.nbytes(),
                                  cudaMemcpyDeviceToHost, stream);
  if (err != cudaSuccess) (void)cudaEventDestroy(done);
  EMBER_CUDA_CHECK(err);
  EMBER_CUDA_CHECK(cudaEventRecord(done, stream));
  in_flight().push_back({host.unsafe_impl()->storage, done});
}

}  // namespace ember::cuda
