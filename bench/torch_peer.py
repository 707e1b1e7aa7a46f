"""The PyTorch peer model shared by bench/infer_torch.py and bench/train_torch.py: the OneRec
model of include/onerec/model.h at the SPEC preset shapes (0.015B by default), float32, written
the way a PyTorch user would write it (nn.Module, vectorised tensor code, no fused kernels).

Layout (the same tensors as lib/model_config.c's parameter table, so the parameter counts
match onerec_model_param_count):
  features   item_sid [L*K, d], author [8192, 512], tag [1024, 128], label [16, 128],
             static uid [8192, 64], gender [4, 64], age [16, 64]
  pathways   static, short, positive, lifelong: LeakyReLU MLP (w1 [in, d], b1 [d], w2 [d, d]);
             in = 192 for static, L*d + 512 + 128 + 128 + 3 for the sequences
  qformer    queries [N_q, d]; per layer cross-attention (norm, wq, wkv, wo) + SwiGLU FFN
  encoder    positions [T, d]; per layer self-attention (norm, wqkv, wo) + FFN; final norm
  decoder    token table [1 + (L-1)*K, d], positions [L, d]; per layer causal self-attention,
             cross-attention, FFN; final norm; heads [L, d, K]
Weights are random (N(0, 0.02^2)): only time is measured."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SEQ_CAT = ((8192, 512), (1024, 128), (16, 128))  # author, tag, label: vocabulary, width
STATIC_CAT = (8192, 4, 16)  # uid (hashed), gender, age bucket
STATIC_DIM = 64
SEQ_NUM = 3  # timestamp, playtime, duration


def W(*shape):
    return nn.Parameter(torch.randn(*shape) * 0.02)


def rms(x, w):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * w



def add_shape_args(ap):
    """The model and input shapes both peers take (bench/infer.c and bench/train.c's)."""
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

class Attn(nn.Module):
    def __init__(self, d, cross=False):
        super().__init__()
        self.norm = nn.Parameter(torch.ones(d))
        if cross:
            self.wq, self.wkv = W(d, d), W(d, 2 * d)
        else:
            self.wqkv = W(d, 3 * d)
        self.wo = W(d, d)


class FFN(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.norm = nn.Parameter(torch.ones(d))
        self.g, self.u, self.dn = W(d, hidden), W(d, hidden), W(hidden, d)

    def forward(self, x):
        xn = rms(x, self.norm)
        return x + (F.silu(xn @ self.g) * (xn @ self.u)) @ self.dn


class Path(nn.Module):
    def __init__(self, n_in, d):
        super().__init__()
        self.w1, self.b1, self.w2 = W(n_in, d), nn.Parameter(torch.zeros(d)), W(d, d)

    def forward(self, x):
        return F.leaky_relu(x @ self.w1 + self.b1, 0.01) @ self.w2


class OneRec(nn.Module):
    def __init__(self, d=128, heads=4, layers=4, codes=8192, levels=3, short=20, positive=256,
                 queries=128, qformer_layers=2):
        super().__init__()
        self.d, self.H, self.K, self.L = d, heads, codes, levels
        self.short, self.positive = short, positive
        ffn = 2 * d
        seq_in = levels * d + sum(w for _, w in SEQ_CAT) + SEQ_NUM
        self.item_sid = W(levels * codes, d)
        self.seq_cat = nn.ParameterList([W(v, w) for v, w in SEQ_CAT])
        self.stat = nn.ParameterList([W(v, STATIC_DIM) for v in STATIC_CAT])
        self.path = nn.ModuleDict({n: Path(seq_in if n != "static" else
                                           STATIC_DIM * len(STATIC_CAT), d)
                                   for n in ("static", "short", "positive", "lifelong")})
        self.qf_query = W(queries, d)
        self.qf = nn.ModuleList([nn.ModuleList([Attn(d, True), FFN(d, ffn)])
                                 for _ in range(qformer_layers)])
        self.T = 1 + short + positive + queries
        self.enc_pos = W(self.T, d)
        self.enc = nn.ModuleList([nn.ModuleList([Attn(d), FFN(d, ffn)]) for _ in range(layers)])
        self.enc_norm = nn.Parameter(torch.ones(d))
        self.dec_emb, self.dec_pos = W(1 + (levels - 1) * codes, d), W(levels, d)
        self.dec = nn.ModuleList([nn.ModuleList([Attn(d), Attn(d, True), FFN(d, ffn)])
                                  for _ in range(layers)])
        self.dec_norm = nn.Parameter(torch.ones(d))
        self.heads = W(levels, d, codes)

    # ---- inputs ----
    def random_ids(self, B, lifelong):
        """Random categorical ids of a batch: static [B, 3] and, per sequence pathway, the
        items' semantic IDs (row offsets of item_sid included), author, tag, label ids and the
        numeric features."""
        K, L = self.K, self.L

        def seq(n):
            return {"sid": torch.randint(0, K, (B, n, L)) + torch.arange(L) * K,
                    "cat": [torch.randint(0, v, (B, n)) for v, _ in SEQ_CAT],
                    "num": torch.rand(B, n, SEQ_NUM)}

        return {"static": torch.stack([torch.randint(0, v, (B,)) for v in STATIC_CAT], 1),
                "short": seq(self.short), "positive": seq(self.positive),
                "lifelong": seq(lifelong)}

    def seq_features(self, s):
        """One pathway's per-interaction input rows [B, n, seq_in]: gathered embeddings + numeric
        features (differentiable with respect to the tables)."""
        B, n, L = s["sid"].shape
        return torch.cat([self.item_sid[s["sid"]].reshape(B, n, L * self.d)] +
                         [t[i] for t, i in zip(self.seq_cat, s["cat"])] + [s["num"]], -1)

    def features(self, ids):
        return {"static": ids["static"], "short": self.seq_features(ids["short"]),
                "positive": self.seq_features(ids["positive"]),
                "lifelong": self.seq_features(ids["lifelong"])}

    # ---- blocks ----
    def mha(self, q, k, v, mask=None, causal=False):
        d, H = self.d, self.H
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

    def self_attn(self, p, x, mask=None, causal=False):
        d = self.d
        qkv = rms(x, p.norm) @ p.wqkv
        return x + self.mha(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], mask, causal) @ p.wo

    def cross_attn(self, p, x, kv, mask):
        d = self.d
        q = rms(x, p.norm) @ p.wq
        return x + self.mha(q, kv[..., :d], kv[..., d:], mask) @ p.wo

    # ---- model ----
    def encode(self, inp, nb):
        """inp: features() of a batch (or its first nb users). Returns the encoder output, its
        key mask and the decoder layers' cross-attention keys/values."""
        d = self.d
        st = torch.cat([self.stat[i][inp["static"][:nb, i]] for i in range(len(self.stat))], -1)
        toks = [self.path["static"](st).view(nb, 1, d), self.path["short"](inp["short"][:nb]),
                self.path["positive"](inp["positive"][:nb])]
        mem = self.path["lifelong"](inp["lifelong"][:nb])
        mmask = torch.ones(nb, mem.shape[1], dtype=torch.bool)
        q = self.qf_query.expand(nb, -1, -1)
        for ca, f in self.qf:
            q = f(self.cross_attn(ca, q, mem @ ca.wkv, mmask))
        toks.append(q)
        x = torch.cat(toks, 1) + self.enc_pos
        mask = torch.ones(nb, self.T, dtype=torch.bool)
        for at, f in self.enc:
            x = f(self.self_attn(at, x, mask))
        z = rms(x, self.enc_norm)
        return z, mask, [z @ ca.wkv for _, ca, _ in self.dec]

    def decode(self, kvs, mask, ids, last_only):
        x = self.dec_emb[ids] + self.dec_pos[: ids.shape[1]]
        for (sa, ca, f), kv in zip(self.dec, kvs):
            x = f(self.cross_attn(ca, self.self_attn(sa, x, None, True), kv, mask))
        x = rms(x, self.dec_norm)
        if last_only:
            return x[:, -1] @ self.heads[ids.shape[1] - 1]
        return torch.einsum("nld,ldk->nlk", x, self.heads)

    def teacher_ids(self, codes):
        """Decoder input [BOS, s^1, ..., s^(L-1)] as rows of dec_emb, for codes [n, L]."""
        ids = torch.zeros(codes.shape[0], self.L, dtype=torch.long)
        for j in range(1, self.L):
            ids[:, j] = 1 + (j - 1) * self.K + codes[:, j - 1]
        return ids

    def param_groups(self, lr_dense=1e-3, lr_sparse=1e-2, weight_decay=0.01):
        """AdamW groups as the C trainer has them (include/onerec/train.h): embedding tables
        (features, decoder tokens) at the sparse rate, no decay; dense matrices decayed; RMSNorm
        gains, biases, positions and QFormer queries not decayed."""
        sparse, decay, no_decay = [], [], []
        for name, p in self.named_parameters():
            if name.startswith(("item_sid", "seq_cat", "stat.", "dec_emb")):
                sparse.append(p)
            elif p.dim() >= 2 and name not in ("enc_pos", "dec_pos", "qf_query"):
                decay.append(p)
            else:
                no_decay.append(p)
        return [{"params": sparse, "lr": lr_sparse, "weight_decay": 0.0},
                {"params": decay, "lr": lr_dense, "weight_decay": weight_decay},
                {"params": no_decay, "lr": lr_dense, "weight_decay": 0.0}]
