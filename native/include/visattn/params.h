// visattn — one plain parameter struct per op family, shared by the cpu, emu and cuda backends.
//
// Conventions (all backends):
//  * Tensors are dense, row-major, channels-last. Pointers are device pointers of the backend that
//    receives the struct (host memory for cpu and emu).
//  * Validation happened in TypeScript (lib/ops): a backend trusts its struct (sizes > 0 unless the
//    field says otherwise, pointers valid, no aliasing between inputs and outputs unless stated).
//  * Outputs are OVERWRITTEN unless a field says "accumulate". Parameter gradients that a module
//    accumulates are summed in TypeScript with `add`.
//  * Sizes are int64_t; per-op element counts fit in int64_t.
#pragma once
#include <cstdint>

namespace va {

constexpr int kMaxDims = 8;

// out[o, i] = a[o|·, i] (op) b[o|·, i] for o < outer, i < inner.
// aBcast: a has only `inner` elements and is repeated over o (likewise bBcast).
enum class BinaryOp : int32_t { Add = 0, Sub = 1, Mul = 2 };
struct BinaryParams {
  BinaryOp op;
  const float* a;
  const float* b;
  float* out;
  int64_t outer, inner;
  bool aBcast, bBcast;
};

// out[i] = alpha * x[i] + beta
struct AffineParams {
  const float* x;
  float* out;
  int64_t n;
  float alpha, beta;
};

// Activations. gelu is the erf form: 0.5·x·(1 + erf(x/√2)); silu x·σ(x).
enum class UnaryOp : int32_t { Relu = 0, Gelu = 1, Silu = 2 };
struct UnaryParams {
  UnaryOp op;
  const float* x;
  float* out;
  int64_t n;
};
// dx[i] = dy[i] · f'(x[i]) (relu'(0) = 0)
struct UnaryBackwardParams {
  UnaryOp op;
  const float* x;
  const float* dy;
  float* dx;
  int64_t n;
};

// Batched GEMM: for every p < batch,
//   C_p = alpha · op(A_p) · op(B_p) + (bias broadcast over rows, if bias) + beta · C_p
// op(A_p) is M×K: A_p is stored [M,K] row-major, or [K,M] when transA.
// op(B_p) is K×N: B_p is stored [K,N] row-major, or [N,K] when transB.
// C_p is [M,N] row-major. A_p = a + p·strideA (likewise B, C); a stride of 0 broadcasts.
// strideC == 0 means "reduce over the batch": C = alpha·Σ_p op(A_p)op(B_p) + beta·C (the sum is
// deterministic: ascending p). When beta == 0, C is never read (it may hold NaN poison).
// bias (may be null) has N elements and is added once.
struct MatmulParams {
  const float* a;
  const float* b;
  float* c;
  const float* bias;
  int64_t batch, M, N, K;
  int64_t strideA, strideB, strideC;
  bool transA, transB;
  float alpha, beta;
};

// Row softmax over the last axis: rows × cols. log: log-softmax.
struct SoftmaxParams {
  const float* x;
  float* y;
  int64_t rows, cols;
  bool log;
};
// Recomputes the forward from x: softmax dx = y ⊙ (dy − Σ dy⊙y); log-softmax dx = dy − exp(y)·Σ dy.
struct SoftmaxBackwardParams {
  const float* x;
  const float* dy;
  float* dx;
  int64_t rows, cols;
  bool log;
};

// LayerNorm over the last axis (biased variance): y = (x − μ)/sqrt(var + eps) · gamma + beta.
// gamma and beta have `cols` elements (never null).
struct LayerNormParams {
  const float* x;
  const float* gamma;
  const float* beta;
  float* y;
  int64_t rows, cols;
  float eps;
};
// Recomputes μ, σ from x. dgamma and dbeta are OVERWRITTEN with the sums over all rows.
struct LayerNormBackwardParams {
  const float* x;
  const float* gamma;
  const float* dy;
  float* dx;
  float* dgamma;
  float* dbeta;
  int64_t rows, cols;
  float eps;
};

// y[o, i] = scale · Σ_{l < len} x[o, l, i]  (sum over the middle axis, ascending l; len >= 1)
struct ReduceParams {
  const float* x;
  float* y;
  int64_t outer, len, inner;
  float scale;
};

// Generic strided copy of 4-byte elements (float32 or int32, bit-exact when scale == 1):
// for every index tuple t < shape (ndim dims, ndim in [1, kMaxDims]):
//   dst[dstOffset + Σ t_d·dstStride_d] = scale · src[srcOffset + Σ t_d·srcStride_d]
// Strides and offsets are in elements; a src stride of 0 broadcasts. Destinations never overlap.
// Used for permute/transpose, slice, concat, broadcast (sum/mean backward) and their backwards.
struct CopyParams {
  const void* src;
  void* dst;
  int32_t ndim;
  int64_t shape[kMaxDims];
  int64_t srcStride[kMaxDims];
  int64_t dstStride[kMaxDims];
  int64_t srcOffset, dstOffset;
  float scale;
};

// dst[i] = bits (4-byte pattern) for i < n.
struct FillParams {
  void* dst;
  int64_t n;
  uint32_t bits;
};

// Channels-last 2-D average pooling without padding: x[B,H,W,C] → y[B,Ho,Wo,C].
// Window (i,j) covers rows [i·stride, i·stride + kernel) ∩ [0,H) (likewise columns) and divides by
// the number of in-image pixels it covers (ceil mode's partial windows average the valid ones).
// Ho, Wo are computed in TypeScript (floor or ceil mode, PyTorch's rule).
struct AvgPool2dParams {
  const float* x;
  float* y;
  int64_t B, H, W, C, Ho, Wo;
  int32_t kernel, stride;
};
// dx[b,y,x,c] = Σ over windows covering (y,x) of dy[b,i,j,c] / count(i,j). OVERWRITES dx.
struct AvgPool2dBackwardParams {
  const float* dy;
  float* dx;
  int64_t B, H, W, C, Ho, Wo;
  int32_t kernel, stride;
};

// Counter-based random numbers (Philox-4x32-10, key = seed, counter = (element index / 4, offset)).
// normal: out[i] = mean + std · N(0,1) via Box–Muller in double, rounded to float;
// uniform: out[i] in [0, 1) from the top 24 bits. Identical on every device.
enum class RandomKind : int32_t { Normal = 0, Uniform = 1 };
struct RandomParams {
  float* out;
  int64_t n;
  uint64_t seed;
  uint64_t offset;
  RandomKind kind;
  float mean, std;
};

// ---------------------------------------------------------------- VOLO outlook attention
// v[B,H,W,C] with C = heads·d (channel m·d + e belongs to head m); logits[B,h,w,heads,K2,K2] with
// K2 = kernel²: axis 4 is the DESTINATION position q in the window, axis 5 the SOURCE position r.
// Window (i,j), i < h, j < w, covers the pixels (stride·i − pad + a, stride·j − pad + c), a,c < kernel,
// at position index a·kernel + c; pixels outside the image have value 0 (attended, NOT masked).
//   A[b,i,j,m,q,:] = softmax_r(scale · logits[b,i,j,m,q,:])
//   out[b,y,x,m·d+e] = Σ over windows (i,j) and destination positions q that land on (y,x) of
//                      Σ_r A[b,i,j,m,q,r] · v[b, src(i,j,r), m·d+e]
// (a SUM over overlapping windows; destination positions outside the image are dropped).
// out is OVERWRITTEN; pixels covered by no window get 0.
struct OutlookParams {
  const float* v;
  const float* logits;
  float* out;
  int64_t B, H, W, C, h, w;
  int32_t heads, kernel, pad, stride;
  float scale;
};
// With G = dOut, Gw[q,e] = G[dest(q), m·d+e] (0 outside the image) and Vw[r,e] = v[src(r), m·d+e]:
//   dA[q,r] = Σ_e Gw[q,e]·Vw[r,e];  dLogits[q,r] = scale · A[q,r] · (dA[q,r] − Σ_r' A[q,r']·dA[q,r'])
//   dV[b,y,x,m·d+e] = Σ over windows (i,j) and source positions r reading (y,x) of Σ_q A[q,r]·Gw[q,e]
// dV and dLogits are OVERWRITTEN (dV by a deterministic gather: no atomics).
struct OutlookBackwardParams {
  const float* v;
  const float* logits;
  const float* dOut;
  float* dV;
  float* dLogits;
  int64_t B, H, W, C, h, w;
  int32_t heads, kernel, pad, stride;
  float scale;
};

// ---------------------------------------------------------------- HaloNet halo attention
// Blocked local self-attention with timm's HaloAttn semantics (spec §3.2/§3.4).
// q[B,Hq,Wq,M,dk], k[B,H,W,M,dk], v[B,H,W,M,dv], relH/relW[2·win−1, dk] (shared by the heads),
// out[B,Hq,Wq,M,dv], lse[B,Hq,Wq,M]. b = block, h = halo, win = b + 2h, stride s ∈ {1, 2}
// (s = 2 only with an even b: strided queries), b_q = b/s, Hq = H/s, Wq = W/s; H, W multiples of b.
// Block (I,J): queries (I·b_q + qy, J·b_q + qx), qy,qx < b_q; keys/values are the window pixels
// (I·b − h + ky, J·b − h + kx), ky,kx < win, j = ky·win + kx; pixels outside the map are ZERO keys and
// values that are ATTENDED (no mask).
//   R[i,j] = q_i·relW[kx − qx + win − 1] + q_i·relH[ky − qy + win − 1]
//   S[i,j] = scale·(q_i·k_j) + R[i,j]        (scalePosEmbed: S = scale·(q_i·k_j + R[i,j]))
//   lse_i = log Σ_j exp S[i,j] (natural log);   out_i = Σ_j exp(S[i,j] − lse_i)·v_j
// out and lse are OVERWRITTEN.
struct HaloParams {
  const float* q;
  const float* k;
  const float* v;
  const float* relH;
  const float* relW;
  float* out;
  float* lse;
  int64_t B, H, W;
  int32_t heads, dk, dv, block, halo, stride;
  float scale;
  bool scalePosEmbed;
};
// out and lse are the forward's outputs (the probabilities are recomputed as exp(S − lse)).
// With P = exp(S − lse), dP[i,j] = dOut_i·v_j, D_i = dOut_i·out_i, dS = P ⊙ (dP − D),
// dR = dS (scalePosEmbed: scale·dS):
//   dQ_i = scale·Σ_j dS[i,j]·k_j + Σ_j dR[i,j]·(relW[kx − qx + win − 1] + relH[ky − qy + win − 1])
//   dK_y,x = scale·Σ over the (window, query) pairs reading pixel (y,x) of dS·q_i   (padding dropped)
//   dV_y,x = Σ over the same pairs of P·dOut_i
//   dRelW[r] = Σ over all (image, block, head, i, j) with kx − qx + win − 1 = r of dR[i,j]·q_i (likewise dRelH)
// All five gradients are OVERWRITTEN, deterministically (no floating-point atomics: the summation
// order is a function of the shape only).
struct HaloBackwardParams {
  const float* q;
  const float* k;
  const float* v;
  const float* relH;
  const float* relW;
  const float* out;
  const float* lse;
  const float* dOut;
  float* dQ;
  float* dK;
  float* dV;
  float* dRelH;
  float* dRelW;
  int64_t B, H, W;
  int32_t heads, dk, dv, block, halo, stride;
  float scale;
  bool scalePosEmbed;
};

// ---------------------------------------------------------------- dropout
// out[i] = keep(i) ? x[i] / (1 − p) : 0 with keep(i) = philox::dropoutKeep(i, seed, offset, p), 0 <= p < 1.
// The mask depends only on (seed, offset, i): the backward is the same op applied to dOut.
struct DropoutParams {
  const float* x;
  float* out;
  int64_t n;
  float p;
  uint64_t seed;
  uint64_t offset;
};

// ---------------------------------------------------------------- ML-Decoder cross-attention
// q[Bq,Lq,M,d] with Bq = 1 (queries shared by the whole batch: read, never broadcast in memory) or
// Bq = B; k[B,Lk,M,d], v[B,Lk,M,dv]; out[B,Lq,M,dv], lse[B,M,Lq]. Per image b and head m:
//   S[i,j] = scale·q_i·k_j,  lse_i = log Σ_j exp S[i,j] (natural log),  P = exp(S − lse),
//   P̃[i,j] = P[i,j]·keep/(1 − dropout) with keep = philox::dropoutKeep(((b·M + m)·Lq + i)·Lk + j,
//            seed, 0, dropout) (dropout 0: P̃ = P, no mask drawn),
//   out_i = Σ_j P̃[i,j]·v_j.
// out and lse are OVERWRITTEN. Lk >= 1.
struct CrossAttentionParams {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  float* lse;
  int64_t B, Bq, Lq, Lk;
  int32_t heads, d, dv;
  float scale;
  float dropout;
  uint64_t seed;
};
// out and lse are the forward's. With dP̃ = dOut·vᵀ, D_i = dOut_i·out_i (= Σ_j P̃·dP̃),
// dS = P ⊙ (dP̃ ⊙ keep/(1 − dropout) − D):
//   dQ = scale·dS·k  (Bq = 1: SUMMED over the batch, in a fixed order),  dK = scale·dSᵀ·q,  dV = P̃ᵀ·dOut.
// All OVERWRITTEN, deterministically (no floating-point atomics).
struct CrossAttentionBackwardParams {
  const float* q;
  const float* k;
  const float* v;
  const float* out;
  const float* lse;
  const float* dOut;
  float* dQ;
  float* dK;
  float* dV;
  int64_t B, Bq, Lq, Lk;
  int32_t heads, d, dv;
  float scale;
  float dropout;
  uint64_t seed;
};

// ---------------------------------------------------------------- ML-Decoder group fully-connected
// x[B,K,D], w[K,D,g], bias[N] (may be null: no bias), out[B,N] with (K−1)·g < N <= K·g:
//   out[b,c] = Σ_d x[b, ⌊c/g⌋, d]·w[⌊c/g⌋, d, c mod g] + bias[c]
// (slots k·g + j >= N are never computed or written). out is OVERWRITTEN.
struct GroupFCParams {
  const float* x;
  const float* w;
  const float* bias;
  float* out;
  int64_t B, K, D, g, N;
};
// dX[b,k,d] = Σ_{j: k·g+j < N} w[k,d,j]·dOut[b,k·g+j];  dW[k,d,j] = Σ_b x[b,k,d]·dOut[b,k·g+j]
// (0 for the unused slots k·g + j >= N);  dBias[c] = Σ_b dOut[b,c]. All OVERWRITTEN, deterministic.
struct GroupFCBackwardParams {
  const float* x;
  const float* w;
  const float* dOut;
  float* dX;
  float* dW;
  float* dBias;
  int64_t B, K, D, g, N;
};

// ---------------------------------------------------------------- multi-label losses (per element)
// x = logits[i], y = targets[i] in [0, 1], p = σ(x).
//  Asl (asymmetric loss, spec §1.4): p_neg = min(1 − p + clip, 1),
//    L = −[ y·log(max(p, eps))·(1 − p)^γ+ + (1 − y)·log(max(p_neg, eps))·(1 − p_neg)^γ− ]
//    grad = ∂L/∂x with the focusing weights held constant (focalGrad false, the reference default) or
//    differentiated too (focalGrad true).
//  Bce: L = max(x, 0) − x·y + log(1 + exp(−|x|)) (stable sigmoid cross-entropy), grad = p − y.
// loss[i] (per element, OVERWRITTEN; the caller reduces) and grad[i] (may be null) = ∂L_i/∂x_i.
enum class MultiLabelLossKind : int32_t { Asl = 0, Bce = 1 };
struct MultiLabelLossParams {
  const float* logits;
  const float* targets;
  float* loss;
  float* grad;
  int64_t n;
  MultiLabelLossKind kind;
  float gammaPos, gammaNeg, clip, eps;
  bool focalGrad;
};

// ---------------------------------------------------------------- kMaX-DeepLab k-means cross-attention
// pixels[B,N,D], centers[B,L,D], values[B,N,Dv] →
//   score[b,l,n] = Σ_d pixels[b,n,d]·centers[b,l,d], accumulated over d = 0, 1, … in ascending order
//                  with fused multiply-add from 0, no split of d (the canonical score: identical centers
//                  score bit-identically on every device)
//   assign[b,n]  = the l with the largest score, the LOWEST such l on ties; NaN scores never win (the
//                  largest non-NaN score wins even when it is −inf); all scores NaN → 0
//   update[b,l,:] = Σ over the pixels n with assign[b,n] = l of values[b,n,:] (0 for an empty cluster),
//                  summed in an order that depends only on the shape (no float atomics)
//   logits[b,l,n] = score[b,l,n] when logits is not null.
// update, assign (and logits) are OVERWRITTEN.
struct KMeansParams {
  const float* pixels;
  const float* centers;
  const float* values;
  float* update;
  int32_t* assign;
  float* logits;
  int64_t B, N, L, D, Dv;
};
// dValues[b,n,:] = dUpdate[b, assign[b,n], :] (a gather; no gradient through the arg-max).
// An assign outside [0, L) makes the op FAIL (a stream error naming the op); dValues is then unspecified.
struct KMeansBackwardParams {
  const int32_t* assign;
  const float* dUpdate;
  float* dValues;
  int64_t B, N, L, Dv;
};

// ---------------------------------------------------------------- L2 normalisation (rows)
// y[r,:] = x[r,:] / max(‖x[r,:]‖₂, eps)  (PyTorch F.normalize). Backward with n = ‖x‖₂:
//   n > eps: dx = (dy − y·(y·dy)) / n;   n <= eps: dx = dy / eps.
struct L2NormalizeParams {
  const float* x;
  float* y;
  int64_t rows, cols;
  float eps;
};
struct L2NormalizeBackwardParams {
  const float* x;
  const float* dy;
  float* dx;
  int64_t rows, cols;
  float eps;
};

}  // namespace va
