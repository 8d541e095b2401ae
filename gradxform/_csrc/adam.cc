// One-pass Adam / AdamW step for XLA on CPU, called through jax.ffi (gradxform._fused).
//
// Per element it reads p, g, m, v once and writes p, m, v once (28 bytes per float32
// parameter with float32 moments, 20 with bfloat16 moments), and performs, in float32,
// the same operations in the same order as gradxform's XLA path
// (scale_by_adam, [add_decayed_weights], scale_by_learning_rate, apply_updates):
//
//   m' = b1 * m + (1 - b1) * g            stored in m's dtype (bf16: round to nearest even)
//   v' = b2 * v + (1 - b2) * (g * g)      stored in v's dtype
//   d  = (m' * r1) / (sqrt(v' * r2) + eps)  with the stored m', v'; r = 1 / (1 - b**t)
//   u  = d * (-lr)                        Adam
//   u  = (d + wd * p) * (-lr)             AdamW (decoupled decay)
//   p' = p + u
//
// The step's scalars arrive as a float32 array [..., 9]: b1, 1 - b1, b2, 1 - b2, r1, r2,
// eps, -lr, wd, formed once per step in JAX, so a scheduled learning rate needs no
// recompilation. A leading batch of rows (from jax.vmap) gives each row its own scalars.
// The range is split into chunks that the calling thread and the XLA CPU thread pool
// take from a shared counter; the caller never waits on a task that has not started.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <type_traits>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int64_t kScalars = 9;
constexpr int64_t kChunk = 1 << 15;        // elements per work item
constexpr int64_t kParallelMin = 1 << 17;  // below this, one thread

XLA_FFI_ATTRIBUTE_ALWAYS_INLINE inline float Bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

XLA_FFI_ATTRIBUTE_ALWAYS_INLINE inline uint16_t F32ToBf16(float f) {  // round to nearest even; NaN stays a (quiet) NaN
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

template <typename T>
struct Moment;
template <>
struct Moment<float> {
  XLA_FFI_ATTRIBUTE_ALWAYS_INLINE static inline float Load(const float* x, int64_t i) { return x[i]; }
  XLA_FFI_ATTRIBUTE_ALWAYS_INLINE static inline float Store(float* x, int64_t i, float value) {
    x[i] = value;
    return value;
  }
};
template <>
struct Moment<uint16_t> {
  XLA_FFI_ATTRIBUTE_ALWAYS_INLINE static inline float Load(const uint16_t* x, int64_t i) { return Bf16ToF32(x[i]); }
  XLA_FFI_ATTRIBUTE_ALWAYS_INLINE static inline float Store(uint16_t* x, int64_t i, float value) {
    uint16_t h = F32ToBf16(value);
    x[i] = h;
    return Bf16ToF32(h);  // the direction uses the stored (rounded) moment
  }
};

struct Step {
  const float* p;
  const float* g;
  const void* m;
  const void* v;
  const float* s;
  float* po;
  void* mo;
  void* vo;
  int64_t n;     // elements in all
  int64_t row;   // elements per row of scalars
  bool decay;
};

// a * b + c, rounded once where the host has fused multiply-adds (as XLA's code is).
template <bool kFma>
XLA_FFI_ATTRIBUTE_ALWAYS_INLINE inline float Mad(float a, float b, float c) {
  if constexpr (kFma) {
    return __builtin_fmaf(a, b, c);
  } else {
    return a * b + c;
  }
}

// Which product of b * x + a * y XLA (LLVM) fuses: the first for a float32 moment, the
// second when the moment is read from bfloat16 (a convert stands before its product).
template <typename T, bool kFma>
XLA_FFI_ATTRIBUTE_ALWAYS_INLINE inline float Ema(float b, float x, float a, float y) {
  if constexpr (std::is_same_v<T, float>) {
    return Mad<kFma>(b, x, a * y);
  } else {
    return Mad<kFma>(a, y, b * x);
  }
}

template <typename M, typename V, bool kDecay, bool kFma>
XLA_FFI_ATTRIBUTE_ALWAYS_INLINE inline void Body(const Step& a, int64_t lo, int64_t hi) {
  const M* m = static_cast<const M*>(a.m);
  const V* v = static_cast<const V*>(a.v);
  M* mo = static_cast<M*>(a.mo);
  V* vo = static_cast<V*>(a.vo);
  while (lo < hi) {  // one row of scalars at a time
    const int64_t r = lo / a.row;
    const int64_t end = std::min(hi, (r + 1) * a.row);
    const float* s = a.s + r * kScalars;
    const float b1 = s[0], a1 = s[1], b2 = s[2], a2 = s[3], r1 = s[4], r2 = s[5];
    const float eps = s[6], neg_lr = s[7], wd = s[8];
#pragma GCC ivdep
    for (int64_t i = lo; i < end; ++i) {
      const float gi = a.g[i];
      const float mi = Moment<M>::Store(mo, i, Ema<M, kFma>(b1, Moment<M>::Load(m, i), a1, gi));
      const float vi =
          Moment<V>::Store(vo, i, Ema<V, kFma>(b2, Moment<V>::Load(v, i), a2, gi * gi));
      float d = (mi * r1) / (std::sqrt(vi * r2) + eps);
      if (kDecay) d = Mad<kFma>(wd, a.p[i], d);
      a.po[i] = Mad<kFma>(d, neg_lr, a.p[i]);
    }
    lo = end;
  }
}

using RangeFn = void (*)(const Step&, int64_t, int64_t);

template <typename M, typename V, bool kDecay>
void Range(const Step& a, int64_t lo, int64_t hi) {
  Body<M, V, kDecay, false>(a, lo, hi);
}

// XLA compiles for the host CPU and contracts a * b + c into fused multiply-adds where the
// host has them; so does this file, in a second copy of the loop chosen at run time, so
// that the results agree with XLA's to the last bit on either kind of x86-64 host.
#if defined(__x86_64__) && defined(__GNUC__)
#define GX_FMA_CLONE 1
template <typename M, typename V, bool kDecay>
__attribute__((target("avx2,fma"))) void RangeFma(const Step& a, int64_t lo, int64_t hi) {
  Body<M, V, kDecay, true>(a, lo, hi);
}
#endif

template <typename M, typename V>
RangeFn Pick(bool decay) {
#ifdef GX_FMA_CLONE
  static const bool fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (fma) return decay ? &RangeFma<M, V, true> : &RangeFma<M, V, false>;
#endif
  return decay ? &Range<M, V, true> : &Range<M, V, false>;
}

RangeFn Select(bool m_bf16, bool v_bf16, bool decay) {
  if (m_bf16) return v_bf16 ? Pick<uint16_t, uint16_t>(decay) : Pick<uint16_t, float>(decay);
  return v_bf16 ? Pick<float, uint16_t>(decay) : Pick<float, float>(decay);
}

// Work shared by the caller and the pool's tasks; kept alive by whoever holds it last.
struct Shared {
  Step step;
  RangeFn fn;
  int64_t chunks;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};

  void Drain() {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      fn(step, c * kChunk, std::min(step.n, (c + 1) * kChunk));
      done.fetch_add(1, std::memory_order_release);
    }
  }
};

ffi::Error AdamStep(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> p, ffi::Buffer<ffi::F32> g,
                    ffi::AnyBuffer m, ffi::AnyBuffer v, ffi::Buffer<ffi::F32> s, bool decay,
                    ffi::ResultBuffer<ffi::F32> po, ffi::Result<ffi::AnyBuffer> mo,
                    ffi::Result<ffi::AnyBuffer> vo) {
  const int64_t n = static_cast<int64_t>(p.element_count());
  auto size = [](const auto& b) { return static_cast<int64_t>(b.element_count()); };
  if (size(g) != n || size(m) != n || size(v) != n) {
    return ffi::Error::InvalidArgument("gradxform adam kernel: p, g, m, v differ in size");
  }
  for (auto t : {m.element_type(), v.element_type()}) {
    if (t != ffi::DataType::F32 && t != ffi::DataType::BF16) {
      return ffi::Error::InvalidArgument("gradxform adam kernel: moments must be f32 or bf16");
    }
  }
  const int64_t rows = size(s) / kScalars;
  if (rows < 1 || rows * kScalars != size(s) || (n > 0 && n % rows != 0)) {
    return ffi::Error::InvalidArgument("gradxform adam kernel: scalars must be [..., 9]");
  }
  if (n == 0) return ffi::Error::Success();
  Step step{p.typed_data(),     g.typed_data(),  m.untyped_data(),  v.untyped_data(),
            s.typed_data(),     po->typed_data(), mo->untyped_data(), vo->untyped_data(),
            n,                  n / rows,         decay};
  RangeFn fn = Select(m.element_type() == ffi::DataType::BF16,
                      v.element_type() == ffi::DataType::BF16, decay);
  const int64_t threads = pool.num_threads();
  if (n < kParallelMin || threads < 1) {
    fn(step, 0, n);
    return ffi::Error::Success();
  }
  auto shared = std::make_shared<Shared>();
  shared->step = step;
  shared->fn = fn;
  shared->chunks = (n + kChunk - 1) / kChunk;
  const int64_t helpers = std::min<int64_t>(threads, shared->chunks - 1);
  for (int64_t t = 0; t < helpers; ++t) {
    pool.Schedule([shared] { shared->Drain(); });
  }
  shared->Drain();
  while (shared->done.load(std::memory_order_acquire) < shared->chunks) {
    std::this_thread::yield();
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(GxAdamStep, AdamStep,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // p
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::AnyBuffer>()         // m
                                  .Arg<ffi::AnyBuffer>()         // v
                                  .Arg<ffi::Buffer<ffi::F32>>()  // scalars [..., 9]
                                  .Attr<bool>("decay")
                                  .Ret<ffi::Buffer<ffi::F32>>()  // p
                                  .Ret<ffi::AnyBuffer>()         // m
                                  .Ret<ffi::AnyBuffer>());       // v
