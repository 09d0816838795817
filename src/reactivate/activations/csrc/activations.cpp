// Fused CPU kernels of the adaptive activations AHAF, LEAF and the F-neuron.
//
// Each op is one fused pass over the input for forward and one for backward.
// Backward computes the input gradient and the parameter gradients together.
// The autograd functions save only the input and the parameters, so training
// keeps one input-sized tensor per activation.
//
// The ops are registered with TORCH_LIBRARY as composite functions that
// attach their own backward node, so one Python call reaches the whole
// forward and backward. They take float32 or float64 CPU tensors whose parameters have
// the input's dtype; the Python side sends every other case to the eager path.
//
// Parameter layout: the parameters of a set are flat (one value per set, or
// m weights per set for the F-neuron). The input is read as
// (outer, sets, inner) with one set for "layer", one per index of dimension
// 1 for "channel" and one per non-batch element for "neuron":
//   * inner > 1: a run of `inner` elements shares one set, so its gradients
//     go to per-chunk partial sums that are added up in a fixed order;
//   * inner == 1: the set changes with every element, so threads split the
//     sets and each sums its own sets over the batch.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace {


// Elements per task. Smaller inputs run on the calling thread, because an
// OpenMP region costs more than the work of a few thousand elements.
constexpr int64_t kGrain = 32768;

// exp(x) for float, written with arithmetic only so that the compiler can
// vectorise loops that call it: Cody-Waite range reduction to
// [-ln2/2, ln2/2] and a degree-6 polynomial. x * sigmoid(x) computed with it
// was within 1.6 float32 ulp of float64 on [-87, 87], as torch's own float32
// ops are. The argument is clamped to [-87.3, 88.7], where the result is a
// normal float.
inline float exp_approx(float x) {
  x = x > 88.7f ? 88.7f : x;
  x = x < -87.3f ? -87.3f : x;
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline float sigmoid(float z) {
  const float s = 1.0f / (1.0f + exp_approx(-z));
  // Below -87.3 the clamped exp would give about 1e-38 instead of a value
  // that rounds to 0; NaN fails the comparison and stays NaN.
  return z < -87.3f ? 0.0f : s;
}

inline double sigmoid(double z) {
  return 1.0 / (1.0 + std::exp(-z));
}

template <typename T>
inline T clamp_finite(T v) {
  const T big = std::numeric_limits<T>::max();
  return v > big ? big : (v < -big ? -big : v);
}

struct Layout {
  int64_t numel;
  int64_t sets;
  int64_t inner;
};

// Read x as (outer, sets, inner) for `sets` parameter sets: 1 (layer), the
// size of dimension 1 (channel) or the number of non-batch elements (neuron).
Layout make_layout(const at::Tensor& x, int64_t sets) {
  const int64_t numel = x.numel();
  if (sets == 1) {
    return {numel, 1, std::max<int64_t>(numel, 1)};
  }
  if (numel == 0) {
    // An empty batch: nothing to compute, and no shape left to check.
    return {0, sets, 1};
  }
  TORCH_CHECK(x.dim() >= 2, "expected an input with a batch dimension for ", sets, " parameter sets, got shape ", x.sizes());
  const int64_t batch = x.size(0);
  const int64_t per_sample = batch == 0 ? 0 : numel / batch;
  if (x.size(1) == sets) {
    return {numel, sets, sets == 0 ? 1 : per_sample / sets};
  }
  TORCH_CHECK(per_sample == sets, "parameter sets (", sets, ") match neither dimension 1 nor the non-batch elements of an input of shape ", x.sizes());
  return {numel, sets, 1};
}

// Call f(begin, end, set) for each run of elements in [begin, end) that
// starts at parameter set `set`. For inner > 1 the run shares that set; for
// inner == 1 element begin + t uses set + t.
template <typename F>
void for_each_run(const Layout& L, int64_t begin, int64_t end, F&& f) {
  int64_t i = begin;
  while (i < end) {
    int64_t set;
    int64_t stop;
    if (L.inner == 1) {
      set = i % L.sets;
      stop = std::min(end, i + (L.sets - set));
    } else {
      const int64_t row = i / L.inner;
      set = row % L.sets;
      stop = std::min(end, (row + 1) * L.inner);
    }
    f(i, stop, set);
    i = stop;
  }
}

void check_inputs(const at::Tensor& x, std::initializer_list<at::Tensor> params) {
  TORCH_CHECK(x.device().is_cpu(), "native activation kernels run on the CPU only, got an input on ", x.device());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "native activation kernels support float32 and float64, got ", x.scalar_type());
  for (const auto& p : params) {
    TORCH_CHECK(p.scalar_type() == x.scalar_type(), "parameter dtype ", p.scalar_type(), " differs from input dtype ", x.scalar_type());
    TORCH_CHECK(p.device().is_cpu(), "parameters must be on the CPU, got ", p.device());
  }
}

// Number of chunks for reductions: fixed for a given size and thread count,
// so the partial sums are added in the same order on every call.
int64_t reduction_chunks(int64_t numel) {
  const int64_t by_size = (numel + kGrain - 1) / kGrain;
  return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), by_size));
}

// Sum K values per parameter set over the runs of L, for layouts where a
// run of elements shares one set. body(i0, i1, set, acc) handles one run
// and adds its K sums to acc[0..K). Each chunk keeps its own double
// partial sums, and these are added in chunk order, so that every call with
// the same thread count gives the same bits. outs[k][set] receives the totals.
template <int K, typename T, typename Body>
void reduce_runs(const Layout& L, T* const (&outs)[K], Body&& body) {
  const int64_t chunks = reduction_chunks(L.numel);
  std::vector<double> partial(static_cast<size_t>(chunks * L.sets * K), 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t begin = L.numel * chunk / chunks;
      const int64_t end = L.numel * (chunk + 1) / chunks;
      double* chunk_sums = partial.data() + chunk * L.sets * K;
      for_each_run(L, begin, end, [&](int64_t i0, int64_t i1, int64_t set) { body(i0, i1, set, chunk_sums + set * K); });
    }
  });
  for (int64_t set = 0; set < L.sets; ++set) {
    for (int k = 0; k < K; ++k) {
      double total = 0.0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        total += partial[(chunk * L.sets + set) * K + k];
      }
      outs[k][set] = static_cast<T>(total);
    }
  }
}

// ---------------------------------------------------------------------------
// Saturated sigmoids.
//
// AHAF and LEAF started as ReLU use a slope such as gamma = 1e9, so that
// sigmoid(gamma x) is exactly 0 or 1 for nearly every input. The kernels
// below split each run into blocks. A block where every z = gamma x lies
// beyond the thresholds of Saturation<T> evaluates the same formulas with
// a step function in place of the exponential. Beyond those thresholds
// sigmoid() already returns exactly 0 or 1, so the results are the same
// bits either way, and the fast blocks cost about as much as a ReLU.

template <typename T>
struct Saturation;

// float: sigmoid() returns 0 below -87.3 and 1/(1 + 1.2e-38) = 1 above 87.3.
template <>
struct Saturation<float> {
  static constexpr float low = -87.5f;
  static constexpr float high = 87.5f;
};

// double: 1 + exp(-40) rounds to 1, and exp(710) overflows to inf.
template <>
struct Saturation<double> {
  static constexpr double low = -710.0;
  static constexpr double high = 40.0;
};

struct ExactSigmoid {
  template <typename T>
  static T apply(T z) {
    return sigmoid(z);
  }
};

struct StepSigmoid {
  template <typename T>
  static T apply(T z) {
    return z > T(0) ? T(1) : T(0);
  }
};

constexpr int64_t kSatBlock = 512;

// 1 when sigmoid(z) is not exactly 0 or 1 at z, and for a NaN z.
template <typename T>
inline int64_t unsaturated(T z) {
  return !(z <= Saturation<T>::low || z >= Saturation<T>::high);
}

// True when sigmoid(c x[t]) is exactly 0 or 1 for every t < n. The first
// element is tested alone first, so that blocks of an unsaturated function
// such as SiLU skip the scan.
template <typename T>
bool saturated(const T* x, T c, int64_t n) {
  if (n == 0 || unsaturated(c * x[0])) {
    return false;
  }
  int64_t count = 0;
#pragma omp simd reduction(+ : count)
  for (int64_t t = 0; t < n; ++t) {
    count += unsaturated(c * x[t]);
  }
  return count == 0;
}

// The same with one slope per element, c[t] clamped to a finite value.
template <typename T>
bool saturated(const T* x, const T* c, int64_t n) {
  if (n == 0 || unsaturated(clamp_finite(c[0]) * x[0])) {
    return false;
  }
  int64_t count = 0;
#pragma omp simd reduction(+ : count)
  for (int64_t t = 0; t < n; ++t) {
    count += unsaturated(clamp_finite(c[t]) * x[t]);
  }
  return count == 0;
}

// Call body(offset, count, Sigmoid{}) for the blocks of a run of n
// elements, with StepSigmoid where is_saturated(offset, count) holds.
template <typename Check, typename Body>
inline void for_each_block(int64_t n, Check&& is_saturated, Body&& body) {
  for (int64_t o = 0; o < n; o += kSatBlock) {
    const int64_t count = std::min(kSatBlock, n - o);
    if (is_saturated(o, count)) {
      body(o, count, StepSigmoid{});
    } else {
      body(o, count, ExactSigmoid{});
    }
  }
}

// ---------------------------------------------------------------------------
// Parameter sums over the batch with one set per element.
//
// There the kernels add each row's terms straight into the gradient arrays.
// Every kFlushRows rows those float sums move into double totals, so that a
// long batch keeps about the precision of the per-block sums of the other
// path instead of one float sum over every row.

constexpr int64_t kFlushRows = 64;

template <typename T>
class RowSums {
 public:
  // `arrays` are this task's slices of the gradient arrays, `count` values
  // each, zero on entry.
  RowSums(std::initializer_list<T*> arrays, int64_t count)
      : arrays_(arrays), count_(count), totals_(arrays_.size() * static_cast<size_t>(count), 0.0) {}

  // Record that a row is done. Every kFlushRows rows, the float sums move into the totals.
  void row_done(int64_t row) {
    if ((row + 1) % kFlushRows == 0) {
      flush();
    }
  }

  // Write the totals back into the gradient arrays.
  void finish() {
    flush();
    for (size_t a = 0; a < arrays_.size(); ++a) {
      for (int64_t i = 0; i < count_; ++i) {
        arrays_[a][i] = static_cast<T>(totals_[a * count_ + i]);
      }
    }
  }

 private:
  void flush() {
    for (size_t a = 0; a < arrays_.size(); ++a) {
      for (int64_t i = 0; i < count_; ++i) {
        totals_[a * count_ + i] += arrays_[a][i];
        arrays_[a][i] = T(0);
      }
    }
  }

  std::vector<T*> arrays_;
  int64_t count_;
  std::vector<double> totals_;
};

// ---------------------------------------------------------------------------
// AHAF: beta * x * sigmoid(gamma * x)

template <typename T>
void ahaf_forward_kernel(const T* x, T* y, const T* beta, const T* gamma, const Layout& L) {
  at::parallel_for(0, L.numel, kGrain, [&](int64_t begin, int64_t end) {
    for_each_run(L, begin, end, [&](int64_t i0, int64_t i1, int64_t set) {
      const T* xs = x + i0;
      T* ys = y + i0;
      if (L.inner == 1) {
        const T* b = beta + set;
        const T* c = gamma + set;
        for_each_block(
            i1 - i0, [&](int64_t o, int64_t n) { return saturated(xs + o, c + o, n); },
            [&](int64_t o, int64_t n, auto sig) {
              using S = decltype(sig);
#pragma omp simd
              for (int64_t t = o; t < o + n; ++t) {
                ys[t] = b[t] * xs[t] * S::apply(clamp_finite(c[t]) * xs[t]);
              }
            });
      } else {
        const T b = beta[set];
        const T c = clamp_finite(gamma[set]);
        for_each_block(
            i1 - i0, [&](int64_t o, int64_t n) { return saturated(xs + o, c, n); },
            [&](int64_t o, int64_t n, auto sig) {
              using S = decltype(sig);
#pragma omp simd
              for (int64_t t = o; t < o + n; ++t) {
                ys[t] = b * xs[t] * S::apply(c * xs[t]);
              }
            });
      }
    });
  });
}

// Gradients with s = sigmoid(gamma x) and u = x s (1 - s):
// d/dx = beta (s + gamma u), d/dbeta = x s, d/dgamma = beta x u.
// gamma * u stays finite for a clamped gamma = inf, because u is 0 wherever
// |gamma x| is large.
template <typename T>
void ahaf_backward_kernel(const T* g, const T* x, const T* beta, const T* gamma, T* gx, T* gbeta, T* ggamma,
                          const Layout& L) {
  if (L.inner == 1) {
    const int64_t outer = L.sets == 0 ? 0 : L.numel / L.sets;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(outer, 1));
    at::parallel_for(0, L.sets, grain, [&](int64_t j0, int64_t j1) {
      T* gb = gbeta + j0;
      T* gc = ggamma + j0;
      RowSums<T> sums({gb, gc}, j1 - j0);
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t base = o * L.sets + j0;
        const T* xs = x + base;
        const T* gs = g + base;
        T* gxs = gx + base;
        const T* b = beta + j0;
        const T* c = gamma + j0;
        for_each_block(
            j1 - j0, [&](int64_t k, int64_t n) { return saturated(xs + k, c + k, n); },
            [&](int64_t k, int64_t n, auto sig) {
              using S = decltype(sig);
#pragma omp simd
              for (int64_t t = k; t < k + n; ++t) {
                const T cc = clamp_finite(c[t]);
                const T s = S::apply(cc * xs[t]);
                const T u = xs[t] * s * (T(1) - s);
                const T gxv = gs[t] * xs[t];
                gb[t] += gxv * s;
                gc[t] += gxv * u * b[t];
                gxs[t] = gs[t] * b[t] * (s + cc * u);
              }
            });
        sums.row_done(o);
      }
      sums.finish();
    });
    return;
  }
  T* const outs[2] = {gbeta, ggamma};
  reduce_runs<2>(L, outs, [&](int64_t i0, int64_t i1, int64_t set, double* acc) {
    const T b = beta[set];
    const T c = clamp_finite(gamma[set]);
    const T* xs = x + i0;
    const T* gs = g + i0;
    T* gxs = gx + i0;
    for_each_block(
        i1 - i0, [&](int64_t o, int64_t n) { return saturated(xs + o, c, n); },
        [&](int64_t o, int64_t n, auto sig) {
          using S = decltype(sig);
          T sum_beta = 0;
          T sum_gamma = 0;
#pragma omp simd reduction(+ : sum_beta, sum_gamma)
          for (int64_t t = o; t < o + n; ++t) {
            const T s = S::apply(c * xs[t]);
            const T u = xs[t] * s * (T(1) - s);
            const T gxv = gs[t] * xs[t];
            sum_beta += gxv * s;
            sum_gamma += gxv * u;
            gxs[t] = gs[t] * b * (s + c * u);
          }
          acc[0] += sum_beta;
          acc[1] += static_cast<double>(sum_gamma) * b;
        });
  });
}

// ---------------------------------------------------------------------------
// LEAF: (p1 x + p2) sigmoid(p3 x) + p4

template <typename T>
void leaf_forward_kernel(const T* x, T* y, const T* p1, const T* p2, const T* p3, const T* p4, const Layout& L) {
  at::parallel_for(0, L.numel, kGrain, [&](int64_t begin, int64_t end) {
    for_each_run(L, begin, end, [&](int64_t i0, int64_t i1, int64_t set) {
      const T* xs = x + i0;
      T* ys = y + i0;
      if (L.inner == 1) {
        const T* a1 = p1 + set;
        const T* a2 = p2 + set;
        const T* a3 = p3 + set;
        const T* a4 = p4 + set;
        for_each_block(
            i1 - i0, [&](int64_t o, int64_t n) { return saturated(xs + o, a3 + o, n); },
            [&](int64_t o, int64_t n, auto sig) {
              using S = decltype(sig);
#pragma omp simd
              for (int64_t t = o; t < o + n; ++t) {
                ys[t] = (a1[t] * xs[t] + a2[t]) * S::apply(clamp_finite(a3[t]) * xs[t]) + a4[t];
              }
            });
      } else {
        const T a1 = p1[set], a2 = p2[set], a3 = clamp_finite(p3[set]), a4 = p4[set];
        for_each_block(
            i1 - i0, [&](int64_t o, int64_t n) { return saturated(xs + o, a3, n); },
            [&](int64_t o, int64_t n, auto sig) {
              using S = decltype(sig);
#pragma omp simd
              for (int64_t t = o; t < o + n; ++t) {
                ys[t] = (a1 * xs[t] + a2) * S::apply(a3 * xs[t]) + a4;
              }
            });
      }
    });
  });
}

// One element of LEAF's backward. With z = p3 x, s = sigmoid(z) and
// q = g s (1 - s): d/dx = p1 g s + q (p1 z + p2 p3), d/dp1 = g x s,
// d/dp2 = g s, d/dp3 = q (p1 x + p2) x, d/dp4 = g. p2 p3 is taken as 0 when
// p2 is 0 and z q is formed before the factor p1, so that p3 = inf gives no
// 0 * inf.
template <typename T>
struct LeafGrad {
  T gx, g1, g2, g3;
};

template <typename S, typename T>
inline LeafGrad<T> leaf_element(T g, T x, T a1, T a2, T a3) {
  const T z = clamp_finite(a3 * x);
  const T s = S::apply(z);
  const T gs = g * s;
  const T q = gs * (T(1) - s);
  const T p2p3 = a2 == T(0) ? T(0) : clamp_finite(a2 * a3);
  LeafGrad<T> r;
  r.g1 = gs * x;
  r.g2 = gs;
  r.g3 = q * (a1 * x + a2) * x;
  r.gx = z * q * a1 + q * p2p3 + gs * a1;
  return r;
}

template <typename T>
void leaf_backward_kernel(const T* g, const T* x, const T* p1, const T* p2, const T* p3, T* gx, T* g1, T* g2, T* g3,
                          T* g4, const Layout& L) {
  if (L.inner == 1) {
    const int64_t outer = L.sets == 0 ? 0 : L.numel / L.sets;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(outer, 1));
    at::parallel_for(0, L.sets, grain, [&](int64_t j0, int64_t j1) {
      RowSums<T> sums({g1 + j0, g2 + j0, g3 + j0, g4 + j0}, j1 - j0);
      for (int64_t o = 0; o < outer; ++o) {
        const int64_t base = o * L.sets + j0;
        const T* xs = x + base;
        const T* gs = g + base;
        T* gxs = gx + base;
        for_each_block(
            j1 - j0, [&](int64_t k, int64_t n) { return saturated(xs + k, p3 + j0 + k, n); },
            [&](int64_t k, int64_t n, auto sig) {
              using S = decltype(sig);
#pragma omp simd
              for (int64_t t = k; t < k + n; ++t) {
                const int64_t j = j0 + t;
                // gxs may be gs (see input_grad_buffer): read before writing.
                const T gv = gs[t];
                const LeafGrad<T> r = leaf_element<S>(gv, xs[t], p1[j], p2[j], clamp_finite(p3[j]));
                gxs[t] = r.gx;
                g1[j] += r.g1;
                g2[j] += r.g2;
                g3[j] += r.g3;
                g4[j] += gv;
              }
            });
        sums.row_done(o);
      }
      sums.finish();
    });
    return;
  }
  T* const outs[4] = {g1, g2, g3, g4};
  reduce_runs<4>(L, outs, [&](int64_t i0, int64_t i1, int64_t set, double* acc) {
    const T a1 = p1[set], a2 = p2[set], a3 = clamp_finite(p3[set]);
    const T* xs = x + i0;
    const T* gs = g + i0;
    T* gxs = gx + i0;
    const T p2p3 = a2 == T(0) ? T(0) : clamp_finite(a2 * a3);
    for_each_block(
        i1 - i0, [&](int64_t o, int64_t n) { return saturated(xs + o, a3, n); },
        [&](int64_t o, int64_t n, auto sig) {
          using S = decltype(sig);
          T s1 = 0, s2 = 0, s3 = 0, s4 = 0;
#pragma omp simd reduction(+ : s1, s2, s3, s4)
          for (int64_t t = o; t < o + n; ++t) {
            const T xv = xs[t];
            const T gv = gs[t];
            const T z = clamp_finite(a3 * xv);
            const T s = S::apply(z);
            const T gsv = gv * s;
            const T q = gsv * (T(1) - s);
            gxs[t] = z * q * a1 + q * p2p3 + gsv * a1;
            s1 += gsv * xv;
            s2 += gsv;
            s3 += q * (a1 * xv + a2) * xv;
            s4 += gv;
          }
          acc[0] += s1;
          acc[1] += s2;
          acc[2] += s3;
          acc[3] += s4;
        });
  });
}

// ---------------------------------------------------------------------------
// F-neuron: linear interpolation of m weights at centres low + j h.
//
// pos = (x - low) / h, k = floor(pos) clamped to [0, m - 2] (0 for NaN) and
// t = pos - k clamped to [0, 1]; f = w_k + (w_{k+1} - w_k) t. Inputs beyond
// the interval give the edge weight and zero input gradient.
//
// Each run is processed in blocks: a vectorised loop computes k and t of a
// block into small buffers, then a second loop gathers the weights (and, in
// backward, adds the weight gradients), which does not vectorise.

constexpr int64_t kBlock = 256;

template <typename T>
struct BinBlock {
  int32_t k[kBlock];
  T t[kBlock];
  bool inside[kBlock];
};

// Fill b for x[0, n), n <= kBlock. `last` is m - 1 as T.
template <typename T>
inline void locate_block(const T* x, int64_t n, T low_scaled, T inv_step, T last, BinBlock<T>& b) {
  const T top = last - T(1);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const T pos = x[i] * inv_step - low_scaled;
    T fl = std::floor(pos);
    fl = fl >= T(0) ? fl : T(0);  // also maps NaN to 0
    fl = fl <= top ? fl : top;
    T t = pos - fl;
    t = t < T(0) ? T(0) : t;
    t = t > T(1) ? T(1) : t;
    b.k[i] = static_cast<int32_t>(fl);
    b.t[i] = t;
    b.inside[i] = !(pos < T(0) || pos > last);
  }
}

template <typename T>
void fneuron_forward_kernel(const T* x, T* y, const T* w, int64_t m, T low, T inv_step, const Layout& L) {
  const T low_scaled = low * inv_step;
  const T last = T(m - 1);
  at::parallel_for(0, L.numel, kGrain, [&](int64_t begin, int64_t end) {
    BinBlock<T> b;
    for_each_run(L, begin, end, [&](int64_t i0, int64_t i1, int64_t set) {
      // With one set per element (inner == 1) element t reads set + t.
      const int64_t stride = L.inner == 1 ? m : 0;
      for (int64_t s0 = i0; s0 < i1; s0 += kBlock) {
        const int64_t n = std::min(kBlock, i1 - s0);
        locate_block(x + s0, n, low_scaled, inv_step, last, b);
        const T* ws = w + (set + (stride ? s0 - i0 : 0)) * m;
        T* ys = y + s0;
        for (int64_t i = 0; i < n; ++i) {
          const T* wk = ws + i * stride + b.k[i];
          ys[i] = wk[0] + (wk[1] - wk[0]) * b.t[i];
        }
      }
    });
  });
}

template <typename T>
void fneuron_backward_kernel(const T* g, const T* x, const T* w, T* gx, T* gw, int64_t m, T low, T inv_step,
                             bool weight_grad, const Layout& L) {
  const T low_scaled = low * inv_step;
  const T last = T(m - 1);
  if (L.inner == 1) {
    // One set per element along the contiguous axis: threads split the
    // sets, and each adds its sets' weight gradients over the batch.
    const int64_t outer = L.sets == 0 ? 0 : L.numel / L.sets;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(outer, 1));
    at::parallel_for(0, L.sets, grain, [&](int64_t j0, int64_t j1) {
      BinBlock<T> b;
      RowSums<T> sums({weight_grad ? gw + j0 * m : nullptr}, weight_grad ? (j1 - j0) * m : 0);
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t s0 = j0; s0 < j1; s0 += kBlock) {
          const int64_t n = std::min(kBlock, j1 - s0);
          const int64_t base = o * L.sets + s0;
          locate_block(x + base, n, low_scaled, inv_step, last, b);
          for (int64_t i = 0; i < n; ++i) {
            const int64_t j = s0 + i;
            const T gv = g[base + i];
            const T* wk = w + j * m + b.k[i];
            gx[base + i] = b.inside[i] ? (wk[1] - wk[0]) * inv_step * gv : T(0);
            if (weight_grad) {
              T* gk = gw + j * m + b.k[i];
              const T right = gv * b.t[i];
              gk[0] += gv - right;
              gk[1] += right;
            }
          }
        }
        sums.row_done(o);
      }
      sums.finish();
    });
    return;
  }
  // Runs share one set: per-chunk sums of g and g t per left bin k, kept in
  // two interleaved copies so that neighbouring elements in the same bin do
  // not wait on each other's additions.
  const int64_t chunks = reduction_chunks(L.numel);
  const int64_t width = L.sets * m;
  std::vector<double> partial(weight_grad ? static_cast<size_t>(chunks * width * 4) : 0, 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    BinBlock<T> b;
    for (int64_t chunk = c0; chunk < c1; ++chunk) {
      const int64_t begin = L.numel * chunk / chunks;
      const int64_t end = L.numel * (chunk + 1) / chunks;
      for_each_run(L, begin, end, [&](int64_t i0, int64_t i1, int64_t set) {
        const T* ws = w + set * m;
        double* total = weight_grad ? partial.data() + (chunk * width + set * m) * 4 : nullptr;
        double* right = total + (weight_grad ? m : 0);
        double* total2 = right + (weight_grad ? m : 0);
        double* right2 = total2 + (weight_grad ? m : 0);
        for (int64_t s0 = i0; s0 < i1; s0 += kBlock) {
          const int64_t n = std::min(kBlock, i1 - s0);
          locate_block(x + s0, n, low_scaled, inv_step, last, b);
          const T* gs = g + s0;
          T* gxs = gx + s0;
          for (int64_t i = 0; i < n; ++i) {
            const T* wk = ws + b.k[i];
            gxs[i] = b.inside[i] ? (wk[1] - wk[0]) * inv_step * gs[i] : T(0);
          }
          if (!weight_grad) {
            continue;
          }
          int64_t i = 0;
          for (; i + 1 < n; i += 2) {
            total[b.k[i]] += gs[i];
            right[b.k[i]] += static_cast<double>(gs[i]) * b.t[i];
            total2[b.k[i + 1]] += gs[i + 1];
            right2[b.k[i + 1]] += static_cast<double>(gs[i + 1]) * b.t[i + 1];
          }
          if (i < n) {
            total[b.k[i]] += gs[i];
            right[b.k[i]] += static_cast<double>(gs[i]) * b.t[i];
          }
        }
      });
    }
  });
  if (!weight_grad) {
    return;
  }
  // Weight k gets the left share (total - right) of bin k and the right
  // share of bin k - 1.
  for (int64_t set = 0; set < L.sets; ++set) {
    for (int64_t k = 0; k < m; ++k) {
      double value = 0.0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) {
        const double* base = partial.data() + (chunk * width + set * m) * 4;
        value += (base[k] + base[2 * m + k]) - (base[m + k] + base[3 * m + k]);
        if (k > 0) {
          value += base[m + k - 1] + base[3 * m + k - 1];
        }
      }
      gw[set * m + k] = static_cast<T>(value);
    }
  }
}

// ---------------------------------------------------------------------------
// Tensor-level functions

// These functions run once per call, so they avoid dispatcher calls where
// they can. contiguous() returns the tensor itself when it is already
// contiguous, as parameters nearly always are. A contiguous tensor of any
// shape is already the flat array the kernels read.

at::Tensor zeros_as(const at::Tensor& t) {
  return at::zeros(t.sizes(), t.options());
}

// The input as the kernels walk it, and the layout of its parameter sets.
// Three kinds of input are used as they are. Contiguous ones. Any dense
// layout when one parameter set covers everything: the kernels then walk
// memory order, and the outputs get the input's strides. And 4-d
// channels-last inputs with one set per channel, where the channel is the
// memory index modulo C, as for one set per element of the innermost
// dimension. Other inputs are copied to a contiguous tensor first.
struct Walk {
  at::Tensor x;
  Layout L;
};

Walk walk_input(const at::Tensor& x, int64_t sets) {
  if (x.is_contiguous()) {
    return {x, make_layout(x, sets)};
  }
  if (sets == 1 && x.is_non_overlapping_and_dense()) {
    return {x, Layout{x.numel(), 1, std::max<int64_t>(x.numel(), 1)}};
  }
  if (x.dim() == 4 && x.size(1) == sets && x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return {x, Layout{x.numel(), sets, 1}};
  }
  at::Tensor dense = x.contiguous();
  return {dense, make_layout(dense, sets)};
}

// The incoming gradient in the input's dtype and memory layout.
at::Tensor grad_as(const at::Tensor& grad, const at::Tensor& x) {
  at::Tensor g = grad.scalar_type() == x.scalar_type() ? grad : grad.to(x.scalar_type());
  if (g.strides() == x.strides()) {
    return g;
  }
  at::Tensor matched = at::empty_like(x);
  matched.copy_(g);
  return matched;
}

// The buffer that receives the input gradient. The AHAF and LEAF kernels
// overwrite the incoming gradient `g` when nothing else references it (no
// hook kept it, no retain_grad, no view shares its storage) and it is laid
// out exactly like the input. Each element of g is read before the input
// gradient is written to the same place. This saves one input-sized
// allocation per call, and on the CPU the page faults of fresh memory.
at::Tensor input_grad_buffer(const at::Tensor& g, const at::Tensor& x) {
  const bool reusable = g.use_count() == 1 && g.storage().use_count() == 1 && !g.requires_grad() &&
                        g.scalar_type() == x.scalar_type() && g.sizes() == x.sizes() &&
                        g.strides() == x.strides() && g.storage_offset() == 0 &&
                        g.storage().nbytes() == static_cast<size_t>(g.numel()) * g.element_size();
  return reusable ? g : at::empty_like(x);
}

at::Tensor ahaf_forward(const at::Tensor& x_in, const at::Tensor& beta_in, const at::Tensor& gamma_in) {
  check_inputs(x_in, {beta_in, gamma_in});
  const at::Tensor beta = beta_in.contiguous();
  const at::Tensor gamma = gamma_in.contiguous();
  TORCH_CHECK(beta.numel() == gamma.numel(), "beta and gamma must have the same number of elements");
  const auto [x, L] = walk_input(x_in, beta.numel());
  at::Tensor y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ahaf_forward", [&] {
    ahaf_forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                                  beta.const_data_ptr<scalar_t>(), gamma.const_data_ptr<scalar_t>(), L);
  });
  return y;
}

// `grad_in` is taken by value so that the caller can hand over the only
// reference to it, which input_grad_buffer may then reuse.
std::vector<at::Tensor> ahaf_backward(at::Tensor grad_in, const at::Tensor& x_in, const at::Tensor& beta_in,
                                      const at::Tensor& gamma_in) {
  const at::Tensor beta = beta_in.contiguous();
  const at::Tensor gamma = gamma_in.contiguous();
  const auto [x, L] = walk_input(x_in, beta.numel());
  const at::Tensor g = grad_as(grad_in, x);
  grad_in.reset();
  at::Tensor gx = input_grad_buffer(g, x);
  at::Tensor gbeta = zeros_as(beta);
  at::Tensor ggamma = zeros_as(gamma);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ahaf_backward", [&] {
    ahaf_backward_kernel<scalar_t>(g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                   beta.const_data_ptr<scalar_t>(), gamma.const_data_ptr<scalar_t>(),
                                   gx.mutable_data_ptr<scalar_t>(), gbeta.mutable_data_ptr<scalar_t>(),
                                   ggamma.mutable_data_ptr<scalar_t>(), L);
  });
  return {gx, gbeta, ggamma};
}

at::Tensor leaf_forward(const at::Tensor& x_in, const at::Tensor& p1_in, const at::Tensor& p2_in,
                        const at::Tensor& p3_in, const at::Tensor& p4_in) {
  check_inputs(x_in, {p1_in, p2_in, p3_in, p4_in});
  const at::Tensor p1 = p1_in.contiguous(), p2 = p2_in.contiguous(), p3 = p3_in.contiguous(),
                   p4 = p4_in.contiguous();
  TORCH_CHECK(p1.numel() == p2.numel() && p1.numel() == p3.numel() && p1.numel() == p4.numel(),
              "p1, p2, p3 and p4 must have the same number of elements");
  const auto [x, L] = walk_input(x_in, p1.numel());
  at::Tensor y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "leaf_forward", [&] {
    leaf_forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                                  p1.const_data_ptr<scalar_t>(), p2.const_data_ptr<scalar_t>(),
                                  p3.const_data_ptr<scalar_t>(), p4.const_data_ptr<scalar_t>(), L);
  });
  return y;
}

std::vector<at::Tensor> leaf_backward(at::Tensor grad_in, const at::Tensor& x_in, const at::Tensor& p1_in,
                                      const at::Tensor& p2_in, const at::Tensor& p3_in, const at::Tensor& p4_in) {
  const at::Tensor p1 = p1_in.contiguous(), p2 = p2_in.contiguous(), p3 = p3_in.contiguous();
  const auto [x, L] = walk_input(x_in, p1.numel());
  const at::Tensor g = grad_as(grad_in, x);
  grad_in.reset();
  at::Tensor gx = input_grad_buffer(g, x);
  at::Tensor g1 = zeros_as(p1), g2 = zeros_as(p2), g3 = zeros_as(p3), g4 = zeros_as(p4_in);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "leaf_backward", [&] {
    leaf_backward_kernel<scalar_t>(g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                   p1.const_data_ptr<scalar_t>(), p2.const_data_ptr<scalar_t>(),
                                   p3.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(),
                                   g1.mutable_data_ptr<scalar_t>(), g2.mutable_data_ptr<scalar_t>(),
                                   g3.mutable_data_ptr<scalar_t>(), g4.mutable_data_ptr<scalar_t>(), L);
  });
  return {gx, g1, g2, g3, g4};
}

at::Tensor fneuron_forward(const at::Tensor& x_in, const at::Tensor& weight_in, double low, double inv_step) {
  check_inputs(x_in, {weight_in});
  TORCH_CHECK(weight_in.dim() >= 1 && weight_in.size(-1) >= 2, "weight must end in a dimension of at least 2 weights");
  const int64_t m = weight_in.size(-1);
  const at::Tensor w = weight_in.contiguous();
  const auto [x, L] = walk_input(x_in, w.numel() / m);
  at::Tensor y = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fneuron_forward", [&] {
    fneuron_forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(),
                                     w.const_data_ptr<scalar_t>(), m, static_cast<scalar_t>(low),
                                     static_cast<scalar_t>(inv_step), L);
  });
  return y;
}

std::vector<at::Tensor> fneuron_backward(const at::Tensor& grad_in, const at::Tensor& x_in, const at::Tensor& weight_in,
                                         double low, double inv_step, bool weight_grad) {
  const int64_t m = weight_in.size(-1);
  const at::Tensor w = weight_in.contiguous();
  const auto [x, L] = walk_input(x_in, w.numel() / m);
  const at::Tensor g = grad_as(grad_in, x);
  at::Tensor gx = at::empty_like(x);
  // Without a weight gradient the kernel never writes gw, so it stays empty.
  at::Tensor gw = weight_grad ? zeros_as(w) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fneuron_backward", [&] {
    fneuron_backward_kernel<scalar_t>(g.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                                      w.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>(),
                                      weight_grad ? gw.mutable_data_ptr<scalar_t>() : nullptr, m, static_cast<scalar_t>(low),
                                      static_cast<scalar_t>(inv_step), weight_grad, L);
  });
  return {gx, gw};
}

// ---------------------------------------------------------------------------
// Autograd. Each op builds its backward node by hand, the way PyTorch's
// generated code does for its own operators. The torch::autograd::Function
// wrapper was not used because its bookkeeping (a context object, output
// wrapping, view checks) cost more than the kernel itself on a 64x512
// input. The backward passes are not differentiable, so a second derivative
// (backward with create_graph=True) raises an error.

using torch::autograd::SavedVariable;
using torch::autograd::variable_list;

void reject_double_backward() {
  TORCH_CHECK(!at::GradMode::is_enabled(),
              "the native activation kernels do not support double backward (create_graph=True); "
              "call reactivate.activations.set_backend('eager') for higher-order gradients");
}

// Base of the backward nodes, with the saved input and parameters.
struct SavedInputsNode : public torch::autograd::Node {
  std::vector<SavedVariable> saved;

  void save(std::initializer_list<at::Tensor> tensors) {
    saved.reserve(tensors.size());
    for (const auto& t : tensors) {
      saved.emplace_back(t, /*is_output=*/false);
    }
  }
  std::vector<at::Tensor> unpack() {
    std::vector<at::Tensor> out;
    out.reserve(saved.size());
    for (auto& v : saved) {
      out.push_back(v.unpack(getptr()));
    }
    return out;
  }
  void release_variables() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& v : saved) {
      v.reset_data();
    }
  }
};

// The ops define no forward-mode derivative, so a dual tensor must not pass
// through them without notice.
void reject_forward_ad(std::initializer_list<at::Tensor> inputs) {
  for (const auto& t : inputs) {
    TORCH_CHECK(!t._fw_grad(/*level=*/0).defined(),
                "forward-mode AD (jvp) is not supported by the adaptive activations; use reverse mode "
                "(backward, torch.func.grad or torch.func.vjp)");
  }
}

// Run `forward` (the kernels' own tensor calls need no autograd), then,
// when any input requires a gradient, attach a NodeT as the output's
// grad_fn. `inputs` are the differentiable inputs in the order backward
// returns their gradients, and `configure` sets the node's extra fields.
template <typename NodeT, typename Forward, typename Configure>
at::Tensor apply_op(std::initializer_list<at::Tensor> inputs, Forward&& forward, Configure&& configure) {
  reject_forward_ad(inputs);
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView guard;
    y = forward();
  }
  bool needed = false;
  for (const auto& t : inputs) {
    needed = needed || (t.defined() && t.requires_grad());
  }
  if (!needed || !at::GradMode::is_enabled()) {
    return y;
  }
  auto node = c10::make_intrusive<NodeT>();
  torch::autograd::edge_list edges;
  edges.reserve(inputs.size());
  for (const auto& t : inputs) {
    edges.push_back(torch::autograd::impl::gradient_edge(t));
  }
  node->set_next_edges(std::move(edges));
  node->save(inputs);
  configure(*node);
  torch::autograd::set_history(y, node);
  torch::autograd::fire_node_creation_hooks(node);
  return y;
}

struct AHAFNativeBackward : public SavedInputsNode {
  std::string name() const override { return "AHAFNativeBackward"; }
  variable_list apply(variable_list&& grads) override {
    reject_double_backward();
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto s = unpack();
    if (!grads[0].defined()) {
      return {at::Tensor(), at::Tensor(), at::Tensor()};
    }
    auto r = ahaf_backward(std::move(grads[0]), s[0], s[1], s[2]);
    return {r[0], r[1], r[2]};
  }
};

struct LEAFNativeBackward : public SavedInputsNode {
  std::string name() const override { return "LEAFNativeBackward"; }
  variable_list apply(variable_list&& grads) override {
    reject_double_backward();
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto s = unpack();
    if (!grads[0].defined()) {
      return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
    auto r = leaf_backward(std::move(grads[0]), s[0], s[1], s[2], s[3], s[4]);
    return {r[0], r[1], r[2], r[3], r[4]};
  }
};

struct FNeuronNativeBackward : public SavedInputsNode {
  double low = 0.0;
  double inv_step = 1.0;
  std::string name() const override { return "FNeuronNativeBackward"; }
  variable_list apply(variable_list&& grads) override {
    reject_double_backward();
    at::AutoDispatchBelowADInplaceOrView guard;
    const auto s = unpack();
    if (!grads[0].defined()) {
      return {at::Tensor(), at::Tensor()};
    }
    auto r = fneuron_backward(grads[0], s[0], s[1], low, inv_step, task_should_compute_output(1));
    return {r[0], r[1]};
  }
};

at::Tensor ahaf_op(const at::Tensor& x, const at::Tensor& beta, const at::Tensor& gamma) {
  return apply_op<AHAFNativeBackward>(
      {x, beta, gamma}, [&] { return ahaf_forward(x, beta, gamma); }, [](AHAFNativeBackward&) {});
}

at::Tensor leaf_op(const at::Tensor& x, const at::Tensor& p1, const at::Tensor& p2, const at::Tensor& p3,
                   const at::Tensor& p4) {
  return apply_op<LEAFNativeBackward>(
      {x, p1, p2, p3, p4}, [&] { return leaf_forward(x, p1, p2, p3, p4); }, [](LEAFNativeBackward&) {});
}

at::Tensor fneuron_op(const at::Tensor& x, const at::Tensor& weight, double low, double inv_step) {
  return apply_op<FNeuronNativeBackward>(
      {x, weight}, [&] { return fneuron_forward(x, weight, low, inv_step); },
      [&](FNeuronNativeBackward& node) {
        node.low = low;
        node.inv_step = inv_step;
      });
}

}  // namespace

TORCH_LIBRARY(reactivate_native, m) {
  m.def("ahaf(Tensor x, Tensor beta, Tensor gamma) -> Tensor", &ahaf_op);
  m.def("leaf(Tensor x, Tensor p1, Tensor p2, Tensor p3, Tensor p4) -> Tensor", &leaf_op);
  m.def("fneuron(Tensor x, Tensor weight, float low, float inv_step) -> Tensor", &fneuron_op);
}
