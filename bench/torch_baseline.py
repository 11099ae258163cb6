#!/usr/bin/env python3
"""PyTorch baseline for the visattn benchmarks (bench/run.ts starts it; prints ONE line of JSON).

Times the same math as bench/cases.ts, with the same protocol (warm-up >= 2 calls and >= warmup
time, then >= 15 timed calls or a time budget; median and min), fp32, on the CPU with
torch.set_num_threads(--threads), or on CUDA (torch.cuda.synchronize after each call; TF32 off, so
that the comparison is fp32 against fp32).

  python3 bench/torch_baseline.py --device cpu --threads 1 \
      --spec '[{"name":"gemm.total","dims":[1024,1024,1024]}]' [--quick]

Names: gemm.fwd (a@b), gemm.dA (dC@b.T), gemm.dB (a.T@dC), gemm.bwd (both gradients),
gemm.total (forward + both gradients), softmax.fwd, softmax.bwd (the softmax gradient kernel that
autograd runs, from the saved output), layerNorm.fwd, layerNorm.bwd (native_layer_norm_backward
from the saved mean/rstd: dX, dGamma, dBeta), outlook.fwd and outlook.fwdbwd (VOLO outlook attention
core, timm's eager formulation: unfold → scale·logits → softmax → matmul → fold; fwdbwd adds the
autograd backward for dV and dLogits; dims [B, H, W, C, heads, k, pad, stride]), halo.fwd and
halo.fwdbwd (HaloNet halo attention core, timm's unfold formulation: blocked queries, zero-padded and
unfolded key/value windows, rel→abs relative logits per axis, softmax, matmul; fwdbwd adds the
autograd backward for q, k, v and both tables; dims [B, H, W, heads, dk, dv, block, halo, stride]),
mld.xattn.*, mld.groupfc.* and mld.head.* (ML-Decoder: the cross-attention core through PyTorch's
scaled-dot-product attention, the group FC as a batched einsum, and the whole head in the reference
formulation with its per-group loop; see mld_case), kmeans.fwd / kmeans.fwdbwd (kMaX k-means
cross-attention: logits einsum + argmax + scatter-add, autograd gather; dims [B, N, L, D, Dv]).
"""
import argparse
import json
import sys
import time

import torch


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--spec", required=True, help="JSON list of {name, dims}")
    p.add_argument("--quick", action="store_true")
    return p.parse_args()


def softmax_backward(dy, y):
    # the kernel autograd calls; its last argument changed from a tensor to a dtype in 1.11
    try:
        return torch._softmax_backward_data(dy, y, -1, y.dtype)
    except (TypeError, RuntimeError):
        return torch._softmax_backward_data(dy, y, -1, y)


def make_case(name, dims, dev):
    g = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape, mean=0.0, std=1.0):
        return (torch.randn(*shape, generator=g) * std + mean).to(dev)

    if name.startswith("gemm."):
        M, N, K = dims
        a, b, dc = randn(M, K), randn(K, N), randn(M, N)
        kind = name.split(".", 1)[1]
        if kind == "fwd":
            return lambda: a @ b
        if kind == "dA":
            return lambda: dc @ b.t()
        if kind == "dB":
            return lambda: a.t() @ dc
        if kind == "bwd":
            return lambda: (dc @ b.t(), a.t() @ dc)
        if kind == "total":
            return lambda: (a @ b, dc @ b.t(), a.t() @ dc)
    elif name.startswith("softmax."):
        R, C = dims
        x, dy = randn(R, C, std=2.0), randn(R, C)
        if name == "softmax.fwd":
            return lambda: torch.softmax(x, -1)
        if name == "softmax.bwd":
            y = torch.softmax(x, -1)
            return lambda: softmax_backward(dy, y)
    elif name.startswith("layerNorm."):
        R, C = dims
        x = randn(R, C, mean=0.5, std=2.0)
        gamma, beta = randn(C, mean=1.0, std=0.2), randn(C, std=0.2)
        dy = randn(R, C)
        eps = 1e-5
        if name == "layerNorm.fwd":
            return lambda: torch.nn.functional.layer_norm(x, (C,), gamma, beta, eps)
        if name == "layerNorm.bwd":
            _, mean, rstd = torch.native_layer_norm(x, [C], gamma, beta, eps)
            mask = [True, True, True]
            return lambda: torch.ops.aten.native_layer_norm_backward(dy, x, [C], mean, rstd, gamma, beta, mask)
    elif name.startswith("outlook."):
        return outlook_case(name, dims, randn)
    elif name.startswith("halo."):
        return halo_case(name, dims, randn)
    elif name.startswith("mld."):
        return mld_case(name, dims, randn)
    elif name.startswith("kmeans."):
        return kmeans_case(name, dims, randn)
    raise ValueError("unknown benchmark " + name)


def sdpa(q, k, v):
    """PyTorch's scaled-dot-product attention: the public fused op when this PyTorch has it (>= 2.0),
    else 1.13's private one (same math, returns (out, weights)), else the explicit formulation."""
    import torch.nn.functional as F

    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    if hasattr(F, "_scaled_dot_product_attention"):
        return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, False)[0]
    return torch.softmax((q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5, dim=-1) @ v


def ml_decoder_reference(N, K, g, D_in, D, M, F_dim, p):
    """The ML-Decoder head in the reference formulation (spec §1.2), written for this baseline:
    embedding linear + ReLU, frozen queries expanded over the batch, the decoder layer without
    self-attention (t0 + dropout(t0), LN1, nn.MultiheadAttention, LN2, FFN, LN3) and the group FC as
    the reference computes it: a Python loop of one matmul per group into a zero buffer."""
    nn = torch.nn

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(D_in, D)
            self.query = nn.Parameter(torch.randn(K, D), requires_grad=False)
            self.norm1, self.norm2, self.norm3 = nn.LayerNorm(D), nn.LayerNorm(D), nn.LayerNorm(D)
            self.drop, self.drop1, self.drop2, self.drop3 = (nn.Dropout(p) for _ in range(4))
            self.attn = nn.MultiheadAttention(D, M, dropout=p)
            self.linear1, self.linear2 = nn.Linear(D, F_dim), nn.Linear(F_dim, D)
            self.pool = nn.Parameter(torch.randn(K, D, g) * (2.0 / (D * g + K * g)) ** 0.5)
            self.pool_bias = nn.Parameter(torch.zeros(N))

        def forward(self, x):  # x [B, T, D_in]
            B = x.shape[0]
            mem = torch.relu(self.embed(x)).transpose(0, 1)  # [T, B, D]
            t = self.query.unsqueeze(1).expand(-1, B, -1)  # [K, B, D], no copy
            t = self.norm1(t + self.drop1(t))
            t = self.norm2(t + self.drop2(self.attn(t, mem, mem)[0]))
            t = self.norm3(t + self.drop3(self.linear2(self.drop(torch.relu(self.linear1(t))))))
            h = t.transpose(0, 1)  # [B, K, D]
            out = torch.zeros(B, K, g, dtype=h.dtype, device=h.device)
            for i in range(K):
                out[:, i, :] = h[:, i, :] @ self.pool[i]
            return out.flatten(1)[:, :N] + self.pool_bias

    return Head()


def kmeans_case(name, dims, randn):
    """kMaX k-means cross-attention in eager PyTorch: logits einsum, argmax over the clusters,
    scatter-add of the values into the clusters (no dense one-hot); fwdbwd: the values' gradient
    through autograd (a gather). dims [B, N, L, D, Dv]."""
    B, N, L, D, Dv = dims
    pixels, centers, values0, dup = randn(B, N, D), randn(B, L, D), randn(B, N, Dv), randn(B, L, Dv)

    def forward(values):
        logits = torch.einsum("bnd,bld->bln", pixels, centers)
        assign = logits.argmax(dim=1)  # [B, N]
        update = torch.zeros(B, L, Dv, dtype=values.dtype).scatter_add(1, assign.unsqueeze(-1).expand(-1, -1, Dv), values)
        return update, assign, logits

    if name == "kmeans.fwd":
        return lambda: forward(values0)[:2]
    values1 = values0.clone().requires_grad_(True)

    def fwdbwd():
        with torch.enable_grad():
            update, assign, logits = forward(values1)
            (dv,) = torch.autograd.grad(update, (values1,), dup)
        return update.detach(), assign, logits, dv

    return fwdbwd


def mld_case(name, dims, randn):
    """ML-Decoder benchmarks. mld.xattn.*: dims [B, Lq, Lk, M, d] (queries shared by the batch,
    expanded without a copy), the core through PyTorch's scaled-dot-product attention, autograd for
    the backward. mld.groupfc.*: dims [B, K, D, g, N], the batched einsum formulation.
    mld.head.*: dims [B, T, D_in, N, K, D, M, F, dropout·1000, train], the reference head (training
    mode: forward + backward of sum(logits·dL) through autograd; else one eval forward)."""
    kind = name.split(".")
    if kind[1] == "xattn":
        B, Lq, Lk, M, d = dims
        q0 = randn(1, M, Lq, d).expand(B, -1, -1, -1)
        k0, v0, dout = randn(B, M, Lk, d), randn(B, M, Lk, d), randn(B, M, Lq, d)
        if kind[2] in ("fwd", "b1"):
            return lambda: sdpa(q0, k0, v0)
        q1 = randn(1, M, Lq, d).requires_grad_(True)
        k1, v1 = k0.clone().requires_grad_(True), v0.clone().requires_grad_(True)

        def fwdbwd():
            with torch.enable_grad():
                out = sdpa(q1.expand(B, -1, -1, -1), k1, v1)
                return (out.detach(),) + torch.autograd.grad(out, (q1, k1, v1), dout)

        return fwdbwd
    if kind[1] == "groupfc":
        B, K, D, g, N = dims
        x0, w0, b0, dl = randn(B, K, D), randn(K, D, g), randn(N), randn(B, N)
        def fwd(x, w, b):
            return torch.einsum("bkd,kdg->bkg", x, w).flatten(1)[:, :N] + b
        if kind[2] == "fwd":
            return lambda: fwd(x0, w0, b0)
        leaves = [t.clone().requires_grad_(True) for t in (x0, w0, b0)]

        def fwdbwd():
            with torch.enable_grad():
                out = fwd(*leaves)
                return (out.detach(),) + torch.autograd.grad(out, leaves, dl)

        return fwdbwd
    if kind[1] == "head":
        B, T, D_in, N, K, D, M, F_dim, p1000, train = dims
        g = -(-N // K)
        torch.manual_seed(0)
        head = ml_decoder_reference(N, K, g, D_in, D, M, F_dim, p1000 / 1000.0)
        x0, dl = randn(B, T, D_in), randn(B, N)
        if not train:
            head.eval()
            return lambda: head(x0)
        head.train()
        params = [q for q in head.parameters() if q.requires_grad]

        def fwdbwd():
            with torch.enable_grad():
                x = x0.clone().requires_grad_(True)
                out = head(x)
                return (out.detach(),) + torch.autograd.grad(out, [x] + params, dl)

        return fwdbwd
    raise ValueError("unknown benchmark " + name)


def rel_to_abs_1d(q, rel, win):
    """Relative logits along the last query axis in the unfold formulation: x = q·relᵀ over the 2·win−1
    table rows, then the rel→abs padding trick (pad each row with one zero, flatten, pad by
    2·win−1−b_q, view as (b_q+1)×(2·win−1), keep rows :b_q and columns win−1:) so that entry
    (qx, kx) holds q·rel[kx − qx + win − 1]. q [N, a, b_q, d] → [N, a, b_q, win]."""
    import torch.nn.functional as F

    N, a, bq, _ = q.shape
    rows = rel.shape[0]
    x = (q @ rel.t()).reshape(N * a, bq, rows)
    x = F.pad(x, [0, 1]).flatten(1)
    x = F.pad(x, [0, rows - bq]).reshape(N * a, bq + 1, rows)
    return x[:, :bq, win - 1:].reshape(N, a, bq, win)


def halo_case(name, dims, randn):
    """HaloNet halo attention core as timm's HaloAttn.forward computes it (after the q and kv
    projections): queries blocked, keys/values zero-padded by the halo and unfolded into win×win
    windows, relative logits through the rel→abs trick per axis, softmax over the window, weighted sum.
    Inputs in visattn's layouts: q [B,Hq,Wq,M,dk], k [B,H,W,M,dk], v [B,H,W,M,dv], tables [2win−1,dk]."""
    import torch.nn.functional as F

    B, H, W, M, dk, dv, b, h, s = dims
    bq, win = b // s, b + 2 * h
    nh, nw = H // b, W // b
    scale = dk ** -0.5
    q0, k0, v0 = randn(B, H // s, W // s, M, dk), randn(B, H, W, M, dk), randn(B, H, W, M, dv)
    rh0, rw0 = randn(2 * win - 1, dk, std=dk ** -0.5), randn(2 * win - 1, dk, std=dk ** -0.5)
    dout = randn(B, H // s, W // s, M, dv)

    def windows(t, d):
        # [B,H,W,M,d] → channels-first, pad by the halo, unfold → [B·M, nb, win², d]
        t = t.permute(0, 3, 4, 1, 2).reshape(B, M * d, H, W)
        t = F.pad(t, [h, h, h, h]).unfold(2, win, b).unfold(3, win, b)
        return t.reshape(B * M, d, nh * nw, win * win).permute(0, 2, 3, 1)

    def forward(q, k, v, rel_h, rel_w):
        qb = q.reshape(B, nh, bq, nw, bq, M, dk).permute(0, 5, 1, 3, 2, 4, 6).reshape(B * M * nh * nw, bq, bq, dk)
        kw, vw = windows(k, dk), windows(v, dv)
        # width: [N, qy, qx, kx] broadcast over ky; height: the same on the transposed query block
        lw = rel_to_abs_1d(qb, rel_w, win).reshape(-1, bq, bq, 1, win)
        lh = rel_to_abs_1d(qb.transpose(1, 2), rel_h, win).transpose(1, 2).reshape(-1, bq, bq, win, 1)
        rel = (lw + lh).reshape(B * M, nh * nw, bq * bq, win * win)
        attn = (qb.reshape(B * M, nh * nw, bq * bq, dk) @ kw.transpose(-1, -2)) * scale + rel
        out = attn.softmax(dim=-1) @ vw  # [B·M, nb, bq², dv]
        out = out.reshape(B, M, nh, nw, bq, bq, dv).permute(0, 2, 4, 3, 5, 1, 6)
        return out.reshape(B, H // s, W // s, M, dv)

    if name == "halo.fwd":
        return lambda: forward(q0, k0, v0, rh0, rw0)
    if name == "halo.fwdbwd":
        leaves = [t.detach().clone().requires_grad_(True) for t in (q0, k0, v0, rh0, rw0)]

        def fwdbwd():
            with torch.enable_grad():
                out = forward(*leaves)
                grads = torch.autograd.grad(out, leaves, dout)
            return (out.detach(),) + tuple(grads)

        return fwdbwd
    raise ValueError("unknown benchmark " + name)


def outlook_case(name, dims, randn):
    """VOLO outlook attention core as timm's OutlookAttention.forward computes it (after the v and attn
    linears, before proj): v channels-last [B,H,W,C] and logits [B,h,w,M,k²,k²] in, out [B,H,W,C]."""
    import torch.nn.functional as F

    B, H, W, C, M, k, pad, s = dims
    h = (H + 2 * pad - k) // s + 1
    w = (W + 2 * pad - k) // s + 1
    K2, d = k * k, C // M
    scale = d ** -0.5
    v0 = randn(B, H, W, C)
    logits0 = randn(B, h, w, M, K2, K2, std=3.0)
    dout = randn(B, H, W, C)

    def forward(v_cl, logits):
        v = v_cl.permute(0, 3, 1, 2)  # timm: v = self.v(x).permute(0, 3, 1, 2)
        v = F.unfold(v, kernel_size=k, padding=pad, stride=s)
        v = v.reshape(B, M, d, K2, h * w).permute(0, 1, 4, 3, 2)  # [B, M, hw, K2, d]
        attn = logits.reshape(B, h * w, M, K2, K2).permute(0, 2, 1, 3, 4)  # [B, M, hw, K2, K2]
        attn = (attn * scale).softmax(dim=-1)
        x = (attn @ v).permute(0, 1, 4, 3, 2).reshape(B, C * K2, h * w)
        x = F.fold(x, output_size=(H, W), kernel_size=k, padding=pad, stride=s)
        return x.permute(0, 2, 3, 1)  # channels-last view, as timm feeds proj

    if name == "outlook.fwd":
        return lambda: forward(v0, logits0)
    if name == "outlook.fwdbwd":
        v1 = v0.detach().clone().requires_grad_(True)
        l1 = logits0.detach().clone().requires_grad_(True)

        def fwdbwd():
            with torch.enable_grad():
                out = forward(v1, l1)
                dv, dl = torch.autograd.grad(out, (v1, l1), dout)
            return out.detach(), dv, dl

        return fwdbwd
    raise ValueError("unknown benchmark " + name)


def bench(fn, dev, quick):
    warmup_s, budget_s, min_reps, max_reps = (0.05, 0.3, 5, 30) if quick else (0.2, 2.0, 15, 200)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    # on a GPU each timed call starts with a cold L2, as in visattn's harness: 256 MB read and
    # rewritten and the device synchronised before the clock starts
    flush = torch.zeros(64 * 2 ** 20, device="cuda") if dev == "cuda" else None

    def once():
        if flush is not None:
            flush.mul_(1.0)
            sync()
        t0 = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - t0

    w0 = time.perf_counter()
    warm, warm_s = 0, 0.0
    while warm < 2 or time.perf_counter() - w0 < warmup_s:
        warm_s += once()
        warm += 1
        if warm >= 1000:
            break
    est = max(1e-6, warm_s / warm)
    reps = min(max_reps, max(min_reps, int(budget_s / est + 0.999)))
    samples = sorted(once() * 1e3 for _ in range(reps))
    n = len(samples)
    median = samples[n // 2] if n % 2 else 0.5 * (samples[n // 2 - 1] + samples[n // 2])
    return {"median_ms": median, "min_ms": samples[0], "reps": n}


def main():
    args = parse()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            print(json.dumps({"error": "torch.cuda is not available"}))
            return 1
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    spec = json.loads(args.spec)
    results = {}
    with torch.no_grad():
        for case in spec:
            name = case["name"]
            try:
                fn = make_case(name, case["dims"], args.device)
                results[name] = bench(fn, args.device, args.quick)
            except Exception as e:  # one failing case must not hide the others
                results[name] = {"error": "%s: %s" % (type(e).__name__, e)}
    out = {
        "torch": torch.__version__,
        "device": args.device,
        "threads": torch.get_num_threads() if args.device == "cpu" else None,
        "cuda": torch.cuda.get_device_name(0) if args.device == "cuda" else None,
        "results": results,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
