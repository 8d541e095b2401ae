// A one-pass Adam step for XLA CPU through jax.ffi: a measurement prototype for
// benchmarks/ffi_adam.py, not part of the gradxform package.
#include <cmath>
#include <cstdint>
#include <thread>
#include "xla/ffi/api/ffi.h"
namespace ffi = xla::ffi;

// One pass: reads p, g, m, v; writes p, m, v (28 bytes per float32 parameter).
static ffi::Error AdamImpl(ffi::Buffer<ffi::F32> p, ffi::Buffer<ffi::F32> g,
                           ffi::Buffer<ffi::F32> m, ffi::Buffer<ffi::F32> v,
                           ffi::Buffer<ffi::F32> s, float b1, float b2, float eps,
                           ffi::ResultBuffer<ffi::F32> po, ffi::ResultBuffer<ffi::F32> mo,
                           ffi::ResultBuffer<ffi::F32> vo) {
  const int64_t n = p.element_count();
  const float* P = p.typed_data(); const float* G = g.typed_data();
  const float* M = m.typed_data(); const float* V = v.typed_data();
  float* PO = po->typed_data(); float* MO = mo->typed_data(); float* VO = vo->typed_data();
  const float lr = s.typed_data()[0], c1 = s.typed_data()[1], c2 = s.typed_data()[2];
  const float a1 = 1.0f - b1, a2 = 1.0f - b2;
  auto work = [=](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; ++i) {
      float gi = G[i];
      float mi = b1 * M[i] + a1 * gi;
      float vi = b2 * V[i] + a2 * gi * gi;
      MO[i] = mi; VO[i] = vi;
      PO[i] = P[i] - lr * (mi * c1) / (std::sqrt(vi * c2) + eps);
    }
  };
  if (n < (1 << 16)) { work(0, n); return ffi::Error::Success(); }
  int64_t half = (n / 2) & ~int64_t(15);
  std::thread t(work, half, n);
  work(0, half);
  t.join();
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(GxAdam, AdamImpl,
    ffi::Ffi::Bind()
        .Arg<ffi::Buffer<ffi::F32>>().Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>().Arg<ffi::Buffer<ffi::F32>>()
        .Arg<ffi::Buffer<ffi::F32>>()
        .Attr<float>("b1").Attr<float>("b2").Attr<float>("eps")
        .Ret<ffi::Buffer<ffi::F32>>().Ret<ffi::Buffer<ffi::F32>>().Ret<ffi::Buffer<ffi::F32>>());
