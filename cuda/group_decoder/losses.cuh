// visattn — element-wise ML-Decoder ops: dropout (DropoutParams) and the multi-label losses
// (MultiLabelLossParams: ASL, spec §1.4, and stable BCE). Grid-stride loops, 64-bit indices.
//
// Numerics of the losses (fp32, every quantity to a few ulp for any finite x):
//   e = exp(−|x|); p = σ(x) and q = 1 − p = σ(−x) are e/(1+e) or 1/(1+e) (never 1 − p);
//   log p = −(max(−x,0) + log1p(e)), log q = −(max(x,0) + log1p(e));
//   log max(p, eps) = max(log p, log eps).
//   ASL negatives: p_m = 1 − p_neg = max(p − clip, 0) is taken as p − clip when p > clip (the clamp
//   at 1 is inactive), and log p_neg as log(q + clip), or log1p(−p_m) when p_m < 1/2 (p_neg near 1).
//   With clip = 0: p_neg = q, p_m = p.
//   Weights: w+ = q^γ+, w− = p_m^γ−.  loss = −(y·w+·log max(p,eps) + (1−y)·w−·log max(p_neg,eps)).
//   Gradient with the weights constant (d log max(p,eps)/dx = q when p > eps, else 0;
//   d log max(p_neg,eps)/dx = −p·q/p_neg when p > clip and p_neg > eps, else 0):
//     g = −y·w+·[p > eps]·q + (1−y)·w−·[p > clip, p_neg > eps]·p·q/p_neg
//   focalGrad adds the weights' derivatives (dw+/dx = −γ+·p·w+, dw−/dx = γ−·p_m^(γ−−1)·p·q when p > clip):
//     g += y·γ+·p·w+·log max(p,eps) − (1−y)·γ−·p_m^(γ−−1)·p·q·log max(p_neg,eps)
//   BCE: loss = x·(1−y) + log1p(e) (x ≥ 0) or −x·y + log1p(e) (x < 0), both terms ≥ 0 for y ∈ [0,1];
//   grad = p·(1−y) − y·q (= p − y without the cancellation of p − 1).
#pragma once
#include "common/compat.cuh"

#include <cmath>
#include <cstdint>

#include "visattn/philox.h"

VA_CUDA_NAMESPACE_BEGIN

constexpr int kMlThreads = 256;

// out[i] = keep(i) ? x[i] / (1 − p) : 0. Thread item = one Philox group of four elements.
template <int DUMMY>
__global__ void __launch_bounds__(kMlThreads)
    dropoutKernel(const float* __restrict__ x, float* __restrict__ out, int64_t n, float p,
                  uint64_t seed, uint64_t offset) {
  const float keepProb = 1.0f - p;
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; g < groups;
       g += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const va::philox::U4 r = va::philox::philox4x32_10(static_cast<uint64_t>(g), offset, seed);
    for (int t = 0; t < 4; ++t) {
      const int64_t i = 4 * g + t;
      if (i >= n) break;
      out[i] = va::philox::uniform24(r.v[t]) >= p ? x[i] / keepProb : 0.0f;
    }
  }
}

struct MlLossArgs {
  int64_t n;
  int kind;  // 0 ASL, 1 BCE
  float gammaPos, gammaNeg, clip, eps, logEps;
  bool focalGrad;
};

__device__ __forceinline__ void mlLossElement(const MlLossArgs& a, float x, float y, float* loss,
                                              float* grad) {
  const float e = expf(-fabsf(x));
  const float inv = 1.0f / (1.0f + e);
  const float p = x >= 0.0f ? inv : e * inv;  // σ(x)
  const float q = x >= 0.0f ? e * inv : inv;  // σ(−x) = 1 − p
  const float sp = log1pf(e);
  if (a.kind == 1) {
    *loss = (x >= 0.0f ? x * (1.0f - y) : -x * y) + sp;
    if (grad) *grad = p * (1.0f - y) - y * q;
    return;
  }
  const float logp = -(fmaxf(-x, 0.0f) + sp);
  const float logq = -(fmaxf(x, 0.0f) + sp);
  const float logpc = fmaxf(logp, a.logEps);
  // negative branch: p_m = 1 − p_neg, log p_neg, and whether the clamp at 1 is inactive
  float pm, logpn, pn;
  bool shifted;
  if (a.clip > 0.0f) {
    shifted = p > a.clip;
    if (shifted) {
      pm = p - a.clip;
      pn = q + a.clip;
      logpn = pm < 0.5f ? log1pf(-pm) : logf(pn);
    } else {
      pm = 0.0f;
      pn = 1.0f;
      logpn = 0.0f;
    }
  } else {
    shifted = true;
    pm = p;
    pn = q;
    logpn = logq;
  }
  const float logpnc = fmaxf(logpn, a.logEps);
  const float wpos = powf(q, a.gammaPos);
  const float wneg = powf(pm, a.gammaNeg);
  *loss = -(y * wpos * logpc + (1.0f - y) * wneg * logpnc);
  if (!grad) return;
  const float pq = p * q;
  const bool posLive = p > a.eps;
  const bool negLive = shifted && pn > a.eps;
  float g = 0.0f;
  if (posLive) g -= y * wpos * q;
  if (negLive) g += (1.0f - y) * wneg * (pq / pn);
  if (a.focalGrad) {
    if (a.gammaPos != 0.0f) g += y * a.gammaPos * p * wpos * logpc;
    if (a.gammaNeg != 0.0f && shifted && pm > 0.0f)
      g -= (1.0f - y) * a.gammaNeg * powf(pm, a.gammaNeg - 1.0f) * pq * logpnc;
  }
  *grad = g;
}

template <int DUMMY>
__global__ void __launch_bounds__(kMlThreads)
    multiLabelLossKernel(const float* __restrict__ logits, const float* __restrict__ targets,
                         float* __restrict__ loss, float* __restrict__ grad, MlLossArgs a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float l, g;
    mlLossElement(a, __ldg(logits + i), __ldg(targets + i), &l, grad ? &g : nullptr);
    loss[i] = l;
    if (grad) grad[i] = g;
  }
}

VA_CUDA_NAMESPACE_END
