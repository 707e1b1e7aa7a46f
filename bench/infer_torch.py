"""PyTorch peer of bench/infer.c: the same model shapes (SPEC preset 0.015B by default) in
float32, vectorised the way a PyTorch user would write it (random weights: only time is
measured), and a constrained beam search over the same catalogue file.

    /usr/bin/python3 bench/infer_torch.py --threads 2 --catalog C.h5 [--quick]

Prints one JSON line per measurement: {"name": ..., "torch": value, "unit": ...}."""
import argparse
import json
import math
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--catalog", default=None)
ap.add_argument("--batch", type=int, default=64)
ap.add_argument("--d", type=int, default=128)
ap.add_argument("--layers", type=int, default=4)
ap.add_argument("--heads", type=int, default=4)
ap.add_argument("--codes", type=int, default=8192)
ap.add_argument("--levels", type=int, default=3)
ap.add_argument("--short", type=int, default=20)
ap.add_argument("--positive", type=int, default=256)
ap.add_argument("--queries", type=int, default=128)
ap.add_argument("--lifelong", type=int, default=256, help="lifelong interactions per user")
ap.add_argument("--beams", default="32,128,512")
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
d, H, K, L, B = a.d, a.heads, a.codes, a.levels, a.batch
ffn = 2 * d
seq_in = L * d + 512 + 128 + 128 + 3


def W(*shape):
    return torch.randn(*shape) * 0.02


class Attn:
    def __init__(self, cross=False):
        self.norm = torch.ones(d)
        self.wq = W(d, d) if cross else None
        self.wkv = W(d, 2 * d) if cross else None
        self.wqkv = None if cross else W(d, 3 * d)
        self.wo = W(d, d)


def rms(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w


def mha(q, k, v, mask=None, causal=False):
    Bq, tq, _ = q.shape
    tk = k.shape[1]
    hd = d // H
    q = q.view(Bq, tq, H, hd).transpose(1, 2)
    k = k.view(k.shape[0], tk, H, hd).transpose(1, 2)
    v = v.view(v.shape[0], tk, H, hd).transpose(1, 2)
    s = q @ k.transpose(-1, -2) / math.sqrt(hd)
    if mask is not None:
        s = s.masked_fill(~mask.view(mask.shape[0], 1, 1, tk), float("-inf"))
    if causal:
        s = s.masked_fill(~torch.ones(tq, tk, dtype=torch.bool).tril(), float("-inf"))
    return (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(Bq, tq, d)


def self_attn(p, x, mask=None, causal=False):
    qkv = rms(x, p.norm) @ p.wqkv
    return x + mha(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], mask, causal) @ p.wo


def cross_attn(p, x, kv, mask):
    q = rms(x, p.norm) @ p.wq
    return x + mha(q, kv[..., :d], kv[..., d:], mask) @ p.wo


class FFN:
    def __init__(self):
        self.norm, self.g, self.u, self.dn = torch.ones(d), W(d, ffn), W(d, ffn), W(ffn, d)

    def __call__(self, x):
        xn = rms(x, self.norm)
        return x + (F.silu(xn @ self.g) * (xn @ self.u)) @ self.dn


item_sid = W(L * K, d)
author, tag, label = W(8192, 512), W(1024, 128), W(16, 128)
stat = [W(8192, 64), W(4, 64), W(16, 64)]
path = {n: (W(seq_in if n != "static" else 192, d), torch.zeros(d), W(d, d))
        for n in ("static", "short", "positive", "lifelong")}
qf_query = W(a.queries, d)
qf = [(Attn(True), FFN()) for _ in range(2)]
T = 1 + a.short + a.positive + a.queries
enc_pos = W(T, d)
enc = [(Attn(), FFN()) for _ in range(a.layers)]
enc_norm = torch.ones(d)
dec_emb, dec_pos = W(1 + (L - 1) * K, d), W(L, d)
dec = [(Attn(), Attn(True), FFN()) for _ in range(a.layers)]
dec_norm = torch.ones(d)
heads = W(L, d, K)


def pmlp(name, x):
    w1, b1, w2 = path[name]
    return F.leaky_relu(x @ w1 + b1, 0.01) @ w2


def seq_tokens(name, n):
    sid = torch.randint(0, K, (B, n, L)) + torch.arange(L) * K
    x = torch.cat([item_sid[sid].reshape(B, n, L * d), author[torch.randint(0, 8192, (B, n))],
                   tag[torch.randint(0, 1024, (B, n))], label[torch.randint(0, 16, (B, n))],
                   torch.rand(B, n, 3)], -1)
    return x


inputs = {"static": torch.stack([torch.randint(0, v.shape[0], (B,)) for v in stat], 1),
          "short": seq_tokens("short", a.short), "positive": seq_tokens("positive", a.positive),
          "lifelong": seq_tokens("lifelong", a.lifelong)}


def encode(inp, nb):
    st = torch.cat([stat[i][inp["static"][:nb, i]] for i in range(3)], -1)
    toks = [pmlp("static", st).view(nb, 1, d), pmlp("short", inp["short"][:nb]),
            pmlp("positive", inp["positive"][:nb])]
    mem = pmlp("lifelong", inp["lifelong"][:nb])
    mmask = torch.ones(nb, mem.shape[1], dtype=torch.bool)
    q = qf_query.expand(nb, -1, -1)
    for ca, f in qf:
        q = f(cross_attn(ca, q, mem @ ca.wkv, mmask))
    toks.append(q)
    x = torch.cat(toks, 1) + enc_pos
    mask = torch.ones(nb, T, dtype=torch.bool)
    for at, f in enc:
        x = f(self_attn(at, x, mask))
    z = rms(x, enc_norm)
    return z, mask, [z @ ca.wkv for _, ca, _ in dec]


def decode(kvs, mask, ids, last_only):
    x = dec_emb[ids] + dec_pos[: ids.shape[1]]
    for (sa, ca, f), kv in zip(dec, kvs):
        x = f(cross_attn(ca, self_attn(sa, x, None, True), kv, mask))
    x = rms(x, dec_norm)
    if last_only:
        return x[:, -1] @ heads[ids.shape[1] - 1]
    return torch.einsum("nld,ldk->nlk", x, heads)


def forward():
    z, mask, kvs = encode(inputs, B)
    codes = torch.randint(0, K, (B, L))
    ids = torch.zeros(B, L, dtype=torch.long)
    for j in range(1, L):
        ids[:, j] = 1 + (j - 1) * K + codes[:, j - 1]
    lp = torch.log_softmax(decode(kvs, mask, ids, False), -1)
    return lp.gather(-1, codes.unsqueeze(-1)).sum()


def best(fn, reps):
    fn()
    t = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def emit(name, value, unit):
    print(json.dumps({"name": name, "torch": value, "unit": unit}), flush=True)


with torch.no_grad():
    emit("forward_b%d" % B, B / best(forward, a.reps), "samples/s")
    if a.catalog:
        with h5py.File(a.catalog, "r") as f:
            codes = np.asarray(f["catalog/codes"], dtype=np.int64)
        # legal next codes per prefix, the way a PyTorch user would index them
        children = [dict() for _ in range(L)]
        for j in range(L):
            keys = [tuple(r) for r in codes[:, :j]] if j else [()] * len(codes)
            tmp = {}
            for kk, c in zip(keys, codes[:, j]):
                tmp.setdefault(kk, set()).add(int(c))
            children[j] = {kk: torch.tensor(sorted(v)) for kk, v in tmp.items()}

        def beam_search(beam):
            z, mask, kvs = encode(inputs, 1)
            prefixes, score = [()], torch.zeros(1)
            for j in range(L):
                n = len(prefixes)
                ids = torch.zeros(n, j + 1, dtype=torch.long)
                for r, p in enumerate(prefixes):
                    for jj in range(1, j + 1):
                        ids[r, jj] = 1 + (jj - 1) * K + p[jj - 1]
                lp = torch.log_softmax(decode([kv.expand(n, -1, -1) for kv in kvs],
                                              mask.expand(n, -1), ids, True), -1)
                cand_s, cand_p = [], []
                for r, p in enumerate(prefixes):
                    ch = children[j][p]
                    cand_s.append(score[r] + lp[r, ch])
                    cand_p.append((r, ch))
                allc = torch.cat(cand_s)
                keep = beam if j < L - 1 else min(beam, 10)
                top = torch.topk(allc, min(keep, allc.numel()))
                owner = torch.cat([torch.full((len(ch),), r) for r, ch in cand_p])
                code = torch.cat([ch for _, ch in cand_p])
                prefixes = [prefixes[int(owner[i])] + (int(code[i]),) for i in top.indices]
                score = top.values
            return prefixes, score

        for bw in [int(x) for x in a.beams.split(",")]:
            emit("beam%d_latency" % bw, 1e3 * best(lambda: beam_search(bw), a.reps), "ms/request")
