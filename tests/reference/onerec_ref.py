"""PyTorch reference of the libonerec model (SPEC.md §2-§3), written from the spec, not from the C.

It reads a model from a libonerec HDF5 file (h5py) and computes, in float64, what the library
computes in float32: the encoder output z_enc with its key mask, teacher-forced decoder logits
and exact log p(item | user). tests/reference/make_fixtures.py uses it to write the golden
fixtures that tests/test_model_golden.c compares against.

Run with Debian's interpreter: /usr/bin/python3 (python3-torch, python3-h5py).

Model file layout (see lib/model_io.c): /config attributes; one dataset per parameter under
/<module group>/<name>; linear weights stored [in, out] (y = x @ W).

Inputs follow onerec_user_batch: per pathway a dict with 'offsets' [B+1] (ragged rows, oldest
first), 'items' ([n] ids or [n, levels] semantic IDs), 'cat' [n, seq_cat_count] (-1 missing),
'num' [n, seq_num_count]; any of them may be None. Static: 'static_cat' [B, n], 'static_num'.
"""
import math

import h5py
import numpy as np
import torch

DT = torch.float64
KMEANS_ITERS = 10

# Smallest gaps seen between a discrete choice and its runner-up (k-means assignment relative
# to the vectors' norms, representative relative to its distance, MoE top-k absolute). make_fixtures.py rejects inputs whose choices are near-ties, which
# float32 (C) and float64 (here) could resolve differently.
margins = {"kmeans": float("inf"), "moe": float("inf")}


def _gap(values, chosen):
    """Relative gap between values[chosen] (the minimum) and the nearest other value; exact ties
    (identical vectors) are skipped: both implementations break them by index."""
    v = np.asarray(values, dtype=np.float64)
    d = np.delete(v, chosen) - v[chosen]
    d = d[d != 0.0]
    if d.size == 0:
        return float("inf")
    return float(d.min() / max(abs(v[chosen]), 1e-30))


I32_FIELDS = [
    "enc_layers", "dec_layers", "d_model", "heads", "ffn_dim", "experts", "top_k", "expert_dim",
    "moe_encoder", "moe_decoder", "levels", "codebook", "use_static", "use_short", "use_positive",
    "use_lifelong", "short_len", "positive_len", "lifelong_queries", "qformer_layers",
    "lifelong_tokens", "lifelong_cluster_max", "lifelong_max_items", "static_cat_count",
    "static_emb_dim", "static_num_count", "item_input", "item_dim", "seq_cat_count",
    "seq_num_count",
]
F_FIELDS = ["norm_eps", "leaky_slope", "init_std"]
ITEM_BY_SID = 1


# ---------------------------------------------------------------- files

def load_model(path):
    """Returns (cfg dict, params dict 'group/name' -> float64 tensor)."""
    with h5py.File(path, "r") as f:
        kind = f.attrs["onerec_kind"]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        assert kind == "model", "%s is a %s file" % (path, kind)
        c = f["config"].attrs
        cfg = {k: int(c[k]) for k in I32_FIELDS}
        cfg.update({k: float(c[k]) for k in F_FIELDS})
        cfg["item_vocab"] = int(c["item_vocab"])
        cfg["static_cat_vocab"] = [int(c["static_cat_vocab_%d" % i])
                                   for i in range(cfg["static_cat_count"])]
        cfg["seq_cat_vocab"] = [int(c["seq_cat_vocab_%d" % i]) for i in range(cfg["seq_cat_count"])]
        cfg["seq_cat_dim"] = [int(c["seq_cat_dim_%d" % i]) for i in range(cfg["seq_cat_count"])]
        params = {}

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith(("config", "golden")):
                params[name] = torch.tensor(np.asarray(obj, dtype=np.float64), dtype=DT)
        f.visititems(visit)
    return cfg, params


def write_model(path, cfg, params):
    """Writes cfg + params (dict 'group/name' -> float32 array) in libonerec's format."""
    with h5py.File(path, "w") as f:
        f.attrs["onerec_kind"] = np.bytes_("model")
        f.attrs["format_version"] = np.int64(1)
        f.attrs["library_version"] = np.bytes_("reference")
        g = f.create_group("config")
        for k in I32_FIELDS + ["item_vocab"]:
            g.attrs[k] = np.int64(cfg[k])
        for k in F_FIELDS:
            g.attrs[k] = np.float64(np.float32(cfg[k]))
        for i, v in enumerate(cfg["static_cat_vocab"][: cfg["static_cat_count"]]):
            g.attrs["static_cat_vocab_%d" % i] = np.int64(v)
        for i in range(cfg["seq_cat_count"]):
            g.attrs["seq_cat_vocab_%d" % i] = np.int64(cfg["seq_cat_vocab"][i])
            g.attrs["seq_cat_dim_%d" % i] = np.int64(cfg["seq_cat_dim"][i])
        for name, arr in params.items():
            f.create_dataset(name, data=np.asarray(arr, dtype=np.float32))


# ---------------------------------------------------------------- parameter shapes

def param_shapes(cfg):
    """The parameter list of a configuration: [(name, shape, kind)], kind in normal/ones/zeros.
    Mirrors SPEC + lib/model_config.c's table (written independently, checked by the loader)."""
    d, L, K = cfg["d_model"], cfg["levels"], cfg["codebook"]
    out = []
    seq = cfg["use_short"] or cfg["use_positive"] or cfg["use_lifelong"]
    sid = cfg["item_input"] == ITEM_BY_SID
    item_width = cfg["item_dim"] * (L if sid else 1)
    seq_in = item_width + sum(cfg["seq_cat_dim"][: cfg["seq_cat_count"]]) + cfg["seq_num_count"]
    static_in = cfg["static_cat_count"] * cfg["static_emb_dim"] + cfg["static_num_count"]
    T = (cfg["use_static"] + cfg["use_short"] * cfg["short_len"]
         + cfg["use_positive"] * cfg["positive_len"] + cfg["use_lifelong"] * cfg["lifelong_queries"])
    if cfg["use_static"]:
        for i in range(cfg["static_cat_count"]):
            out.append(("features/static%d" % i, (cfg["static_cat_vocab"][i], cfg["static_emb_dim"]), "emb"))
    if seq:
        rows = L * K if sid else cfg["item_vocab"]
        out.append(("features/item_sid" if sid else "features/item", (rows, cfg["item_dim"]), "emb"))
        for i in range(cfg["seq_cat_count"]):
            out.append(("features/seq%d" % i, (cfg["seq_cat_vocab"][i], cfg["seq_cat_dim"][i]), "emb"))

    def path(g, n_in):
        out.extend([(g + "/w1", (n_in, d), "normal"), (g + "/b1", (d,), "zeros"), (g + "/w2", (d, d), "normal")])

    def attn(g):
        out.extend([(g + "/attn_norm", (d,), "ones"), (g + "/wqkv", (d, 3 * d), "normal"), (g + "/wo", (d, d), "normal")])

    def xattn(g):
        out.extend([(g + "/cross_norm", (d,), "ones"), (g + "/cross_wq", (d, d), "normal"),
                    (g + "/cross_wkv", (d, 2 * d), "normal"), (g + "/cross_wo", (d, d), "normal")])

    def ffn(g, h):
        out.extend([(g + "/ffn_norm", (d,), "ones"), (g + "/w_gate", (d, h), "normal"),
                    (g + "/w_up", (d, h), "normal"), (g + "/w_down", (h, d), "normal")])

    def mlp(g, moe):
        if not moe:
            ffn(g, cfg["ffn_dim"])
            return
        E, h = cfg["experts"], cfg["expert_dim"]
        out.extend([(g + "/ffn_norm", (d,), "ones"), (g + "/router", (d, E), "normal"),
                    (g + "/router_bias", (E,), "zeros"), (g + "/experts_w_gate", (E, d, h), "normal"),
                    (g + "/experts_w_up", (E, d, h), "normal"), (g + "/experts_w_down", (E, h, d), "normal")])

    if cfg["use_static"]:
        path("static", static_in)
    if cfg["use_short"]:
        path("short", seq_in)
    if cfg["use_positive"]:
        path("positive", seq_in)
    if cfg["use_lifelong"]:
        path("lifelong", seq_in)
        out.append(("qformer/query", (cfg["lifelong_queries"], d), "normal"))
        for l in range(cfg["qformer_layers"]):
            xattn("qformer/layer%d" % l)
            ffn("qformer/layer%d" % l, cfg["ffn_dim"])
    out.append(("encoder/pos", (T, d), "normal"))
    for l in range(cfg["enc_layers"]):
        attn("encoder/layer%d" % l)
        mlp("encoder/layer%d" % l, cfg["moe_encoder"])
    out.append(("encoder/norm", (d,), "ones"))
    out.append(("decoder/tok_emb", (1 + (L - 1) * K, d), "emb"))
    out.append(("decoder/pos", (L, d), "normal"))
    for l in range(cfg["dec_layers"]):
        attn("decoder/layer%d" % l)
        xattn("decoder/layer%d" % l)
        mlp("decoder/layer%d" % l, cfg["moe_decoder"])
    out.append(("decoder/norm", (d,), "ones"))
    out.append(("decoder/heads", (L, d, K), "normal"))
    return out


# ---------------------------------------------------------------- building blocks

def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def attention(q, k, v, heads, key_mask=None, causal=False):
    """q [B, tq, d], k/v [B, tk, d], key_mask [B, tk] bool (True = attend). A query that sees no
    key gets 0."""
    B, tq, d = q.shape
    tk = k.shape[1]
    hd = d // heads
    qh = q.view(B, tq, heads, hd).transpose(1, 2)
    kh = k.view(B, tk, heads, hd).transpose(1, 2)
    vh = v.view(B, tk, heads, hd).transpose(1, 2)
    s = qh @ kh.transpose(-1, -2) / math.sqrt(hd)
    allowed = torch.ones(B, 1, tq, tk, dtype=torch.bool)
    if key_mask is not None:
        allowed = allowed & key_mask.view(B, 1, 1, tk)
    if causal:
        allowed = allowed & torch.ones(tq, tk, dtype=torch.bool).tril(tk - tq).view(1, 1, tq, tk)
    s = s.masked_fill(~allowed, float("-inf"))
    any_key = allowed.any(-1, keepdim=True)
    p = torch.softmax(s.masked_fill(~any_key, 0.0), dim=-1) * any_key
    o = p @ vh
    return o.transpose(1, 2).reshape(B, tq, d)


def swiglu_ffn(P, g, x):
    return (torch.nn.functional.silu(x @ P[g + "/w_gate"]) * (x @ P[g + "/w_up"])) @ P[g + "/w_down"]


def moe_ffn(cfg, P, g, x, load=None):
    """x [n, d] (already normed). Top-k by probs + bias, gates = probs (unbiased)."""
    E, k = cfg["experts"], cfg["top_k"]
    probs = torch.softmax(x @ P[g + "/router"], dim=-1)
    score = (probs.float() + P[g + "/router_bias"].float()).numpy()  # the C selects in float32
    out = torch.zeros_like(x)
    for i in range(x.shape[0]):
        ranked = sorted(range(E), key=lambda e: (-score[i, e], e))
        order = ranked[:k]
        if k < E:
            margins["moe"] = min(margins["moe"], float(score[i, ranked[k - 1]] - score[i, ranked[k]]))
        for e in order:
            h = torch.nn.functional.silu(x[i] @ P[g + "/experts_w_gate"][e]) * (x[i] @ P[g + "/experts_w_up"][e])
            out[i] += probs[i, e] * (h @ P[g + "/experts_w_down"][e])
            if load is not None:
                load[e] += 1
    return out


def mlp(cfg, P, g, x, moe, load=None):
    """Pre-norm FFN residual over x [..., d]."""
    eps = cfg["norm_eps"]
    xn = rmsnorm(x, P[g + "/ffn_norm"], eps)
    if moe:
        shape = xn.shape
        return x + moe_ffn(cfg, P, g, xn.reshape(-1, shape[-1]), load).view(shape)
    return x + swiglu_ffn(P, g, xn)


def self_attn(cfg, P, g, x, key_mask=None, causal=False):
    d = cfg["d_model"]
    xn = rmsnorm(x, P[g + "/attn_norm"], cfg["norm_eps"])
    qkv = xn @ P[g + "/wqkv"]
    o = attention(qkv[..., :d], qkv[..., d:2 * d], qkv[..., 2 * d:], cfg["heads"], key_mask, causal)
    return x + o @ P[g + "/wo"]


def cross_attn(cfg, P, g, x, mem, key_mask):
    d = cfg["d_model"]
    xn = rmsnorm(x, P[g + "/cross_norm"], cfg["norm_eps"])
    q = xn @ P[g + "/cross_wq"]
    kv = mem @ P[g + "/cross_wkv"]
    o = attention(q, kv[..., :d], kv[..., d:], cfg["heads"], key_mask)
    return x + o @ P[g + "/cross_wo"]


# ---------------------------------------------------------------- pathways

def item_block(cfg, P, item):
    """Embedding of one interaction's item (id or semantic IDs); -1 = zero."""
    sid = cfg["item_input"] == ITEM_BY_SID
    if not sid:
        t = P["features/item"]
        return t[item] if item >= 0 else torch.zeros(t.shape[1], dtype=DT)
    t = P["features/item_sid"]
    K = cfg["codebook"]
    return torch.cat([t[l * K + c] if c >= 0 else torch.zeros(t.shape[1], dtype=DT)
                      for l, c in enumerate(item)])


def seq_token_input(cfg, P, inp, row, num_override=None):
    """The concatenated feature vector of interaction `row` of a ragged input (None = padding)."""
    L = cfg["levels"]
    sid = cfg["item_input"] == ITEM_BY_SID
    parts = []
    if row is None:
        item = [-1] * L if sid else -1
    else:
        items = inp["items"]
        item = [int(v) for v in items[row]] if sid else int(items[row])
    parts.append(item_block(cfg, P, item))
    for f in range(cfg["seq_cat_count"]):
        t = P["features/seq%d" % f]
        v = -1 if row is None or inp.get("cat") is None else int(inp["cat"][row][f])
        parts.append(t[v] if v >= 0 else torch.zeros(t.shape[1], dtype=DT))
    nn = cfg["seq_num_count"]
    if nn:
        if num_override is not None:
            parts.append(torch.tensor(num_override, dtype=DT))
        elif row is None or inp.get("num") is None:
            parts.append(torch.zeros(nn, dtype=DT))
        else:
            parts.append(torch.tensor(np.asarray(inp["num"][row], dtype=np.float64), dtype=DT))
    return torch.cat(parts)


def path_mlp(cfg, P, g, f):
    h = torch.nn.functional.leaky_relu(f @ P[g + "/w1"] + P[g + "/b1"], cfg["leaky_slope"])
    return h @ P[g + "/w2"]


def span(inp, b):
    if inp is None or inp.get("offsets") is None:
        return 0, 0
    return int(inp["offsets"][b]), int(inp["offsets"][b + 1])


def fifth_root(n):
    k = int(math.floor(n ** 0.2))
    while k > 0 and k ** 5 > n:
        k -= 1
    while (k + 1) ** 5 <= n:
        k += 1
    return k


def kmeans(vec, idx, k):
    n = len(idx)
    X = vec[idx]
    cen = np.stack([X[j * n // k] for j in range(k)]).astype(np.float64)
    assign = np.full(n, -1)
    for _ in range(KMEANS_ITERS):
        dist = ((X[:, None, :].astype(np.float64) - cen[None, :, :]) ** 2).sum(-1)
        new = dist.argmin(1)  # first minimum = lower centre on ties
        # the library computes these distances in float32 as |x|^2 + |c|^2 - 2 x.c: a gap is
        # safe when it is large against the norms, not only against the distance
        scale = (X.astype(np.float64) ** 2).sum(-1) + (cen ** 2).sum(-1).max()
        for i in range(n):
            g = _gap(dist[i], new[i]) * max(dist[i][new[i]], 1e-30) / scale[i]
            margins["kmeans"] = min(margins["kmeans"], g)
        changed = (new != assign).any()
        assign = new
        if not changed:
            break
        for j in range(k):
            if (assign == j).any():
                cen[j] = X[assign == j].astype(np.float64).mean(0)
    return assign


def compress(vec, M, cap):
    """Hierarchical k-means of SPEC §2. vec [n, dim] float32 (chronological). Returns the kept
    clusters in chronological order of representatives: list of (rep, members)."""
    n = vec.shape[0]
    clusters = []
    todo = [list(range(n))] if n else []
    while todo:
        D = todo.pop()
        if len(D) <= M:
            clusters.append(D)
            continue
        k = max(2, fifth_root(len(D)))
        assign = kmeans(vec, np.array(D), k)
        if len(set(assign.tolist())) < 2:
            assign = np.array([i * k // len(D) for i in range(len(D))])
        for j in range(k):
            child = [D[i] for i in range(len(D)) if assign[i] == j]
            if child:
                todo.append(child)
    out = []
    for D in clusters:
        X = vec[D].astype(np.float64)
        mean = X.mean(0)
        dist = ((X - mean) ** 2).sum(-1)
        rep = D[int(dist.argmin())]
        margins["kmeans"] = min(margins["kmeans"], _gap(dist, int(dist.argmin())))
        out.append((rep, D))
    if len(out) > cap:
        out = sorted(out, key=lambda c: (-len(c[1]), c[0]))[:cap]
    return sorted(out, key=lambda c: c[0])


def encode(cfg, P, batch):
    """Returns (z [B, T, d] float64, key mask [B, T] bool)."""
    B = batch["batch"]
    d = cfg["d_model"]
    eps = cfg["norm_eps"]
    toks, masks = [], []
    sid = cfg["item_input"] == ITEM_BY_SID
    if cfg["use_static"]:
        rows = []
        for b in range(B):
            parts = []
            for f in range(cfg["static_cat_count"]):
                t = P["features/static%d" % f]
                v = -1 if batch.get("static_cat") is None else int(batch["static_cat"][b][f])
                parts.append(t[v] if v >= 0 else torch.zeros(t.shape[1], dtype=DT))
            if cfg["static_num_count"]:
                sn = batch.get("static_num")
                parts.append(torch.zeros(cfg["static_num_count"], dtype=DT) if sn is None
                             else torch.tensor(np.asarray(sn[b], dtype=np.float64), dtype=DT))
            rows.append(torch.cat(parts))
        toks.append(path_mlp(cfg, P, "static", torch.stack(rows)).view(B, 1, d))
        present = batch.get("static_cat") is not None or batch.get("static_num") is not None
        masks.append(torch.full((B, 1), present, dtype=torch.bool))
    for use, key, lenkey, g in (("use_short", "short_term", "short_len", "short"),
                                ("use_positive", "positive", "positive_len", "positive")):
        if not cfg[use]:
            continue
        L = cfg[lenkey]
        inp = batch.get(key)
        out = torch.zeros(B, L, d, dtype=DT)
        m = torch.zeros(B, L, dtype=torch.bool)
        for b in range(B):
            lo, hi = span(inp, b)
            take = min(hi - lo, L)
            start = hi - take
            feats = torch.stack([seq_token_input(cfg, P, inp, start + i if i < take else None)
                                 for i in range(L)])
            out[b] = path_mlp(cfg, P, g, feats)
            m[b, :take] = True
        toks.append(out)
        masks.append(m)
    if cfg["use_lifelong"]:
        Ll, Nq = cfg["lifelong_tokens"], cfg["lifelong_queries"]
        inp = batch.get("lifelong")
        out = torch.zeros(B, Nq, d, dtype=DT)
        m = torch.zeros(B, Nq, dtype=torch.bool)
        for b in range(B):
            lo, hi = span(inp, b)
            cnt = min(hi - lo, cfg["lifelong_max_items"])
            start = hi - cnt
            if cnt > Ll:
                vec = np.stack([item_block(cfg, P, [int(v) for v in inp["items"][start + i]] if sid
                                           else int(inp["items"][start + i])).numpy().astype(np.float32)
                                for i in range(cnt)])
                cl = compress(vec, cfg["lifelong_cluster_max"], Ll)
                feats = []
                for rep, mem in cl:
                    num = None
                    if inp.get("num") is not None and cfg["seq_num_count"]:
                        rows = np.asarray(inp["num"], dtype=np.float64)[[start + i for i in mem]]
                        num = rows.mean(0).astype(np.float32).astype(np.float64)
                    feats.append(seq_token_input(cfg, P, inp, start + rep, num))
                ncl = len(cl)
            else:
                feats = [seq_token_input(cfg, P, inp, start + i) for i in range(cnt)]
                ncl = cnt
            feats += [seq_token_input(cfg, P, inp, None) for _ in range(Ll - ncl)]
            mem = path_mlp(cfg, P, "lifelong", torch.stack(feats)).view(1, Ll, d)
            mm = torch.zeros(1, Ll, dtype=torch.bool)
            mm[0, :ncl] = True
            q = P["qformer/query"].view(1, Nq, d).clone()
            for l in range(cfg["qformer_layers"]):
                g = "qformer/layer%d" % l
                q = cross_attn(cfg, P, g, q, mem, mm)
                q = q + swiglu_ffn(P, g, rmsnorm(q, P[g + "/ffn_norm"], eps))
            out[b] = q[0]
            m[b, :] = ncl > 0
        toks.append(out)
        masks.append(m)
    x = torch.cat(toks, dim=1) + P["encoder/pos"]
    mask = torch.cat(masks, dim=1)
    for l in range(cfg["enc_layers"]):
        g = "encoder/layer%d" % l
        x = self_attn(cfg, P, g, x, mask)
        x = mlp(cfg, P, g, x, cfg["moe_encoder"])
    return rmsnorm(x, P["encoder/norm"], eps), mask


def decode(cfg, P, z, mask, offsets, codes):
    """Teacher-forced logits [n, L, K] for targets codes [n, L] grouped per user by offsets."""
    L, K, d = cfg["levels"], cfg["codebook"], cfg["d_model"]
    codes = np.asarray(codes)
    n = codes.shape[0]
    ids = np.zeros((n, L), dtype=np.int64)
    for j in range(1, L):
        ids[:, j] = 1 + (j - 1) * K + codes[:, j - 1]
    x = P["decoder/tok_emb"][torch.tensor(ids)] + P["decoder/pos"]
    user = np.zeros(n, dtype=np.int64)
    for b in range(len(offsets) - 1):
        user[offsets[b]:offsets[b + 1]] = b
    zr, mr = z[torch.tensor(user)], mask[torch.tensor(user)]
    for l in range(cfg["dec_layers"]):
        g = "decoder/layer%d" % l
        x = self_attn(cfg, P, g, x, None, causal=True)
        x = cross_attn(cfg, P, g, x, zr, mr)
        x = mlp(cfg, P, g, x, cfg["moe_decoder"])
    x = rmsnorm(x, P["decoder/norm"], cfg["norm_eps"])
    return torch.einsum("nld,ldk->nlk", x, P["decoder/heads"])


def score(cfg, logits, codes):
    """log p(item | user) = sum_j log_softmax(logits[:, j])[code_j]."""
    lp = torch.log_softmax(logits, dim=-1)
    codes = torch.tensor(np.asarray(codes), dtype=torch.long)
    return lp.gather(-1, codes.unsqueeze(-1)).squeeze(-1).sum(-1)


# ---------------------------------------------------------------- training (issue 5)

def ntp_loss(logits, codes):
    """Mean next-token cross-entropy over every target row and level."""
    codes = torch.tensor(np.asarray(codes), dtype=torch.long)
    lp = torch.log_softmax(logits, dim=-1)
    return -lp.gather(-1, codes.unsqueeze(-1)).squeeze(-1).mean()


def is_sparse(name):
    """Embedding tables: their own learning rate, no weight decay."""
    return name.startswith("features/") or name == "decoder/tok_emb"


def decays(name, shape):
    """Weight decay only on dense matrices: not on gains, biases, tables, positions, queries."""
    base = name.rsplit("/", 1)[-1]
    return len(shape) >= 2 and not is_sparse(name) and base not in ("pos", "query")


def lr_at(opt, step, peak):
    """Linear warm-up, then cosine to min_lr_ratio x peak at total_steps."""
    w, t = opt["warmup_steps"], opt["total_steps"]
    if w > 0 and step <= w:
        return peak * step / w
    if t <= w:
        return peak
    p = min(1.0, (step - w) / (t - w))
    lo = peak * opt["min_lr_ratio"]
    return lo + (peak - lo) * 0.5 * (1.0 + math.cos(math.pi * p))


def train_step(cfg, P, batch, codes, opt):
    """One update from fresh optimiser state on one batch (one target per user): NTP loss,
    autograd gradients, clipping by the global norm, AdamW (step 1), then the MoE routing-bias
    update bias_e += u sign(mean_load - load_e) from the loads of this forward pass.
    Returns (loss, grads dict, new params dict, grad norm)."""
    Pg = {k: v.clone().requires_grad_(not k.endswith("router_bias")) for k, v in P.items()}
    E = cfg["experts"]
    loads = {}
    orig_mlp, orig_numpy = mlp, torch.Tensor.numpy

    def counting(cfg_, P_, g, x, moe, _load=None):
        if moe:
            loads.setdefault(g, np.zeros(E, dtype=np.int64))
        return orig_mlp(cfg_, P_, g, x, moe, loads[g] if moe else None)
    # The discrete choices (top-k, k-means) read values through .numpy(): detached, as they
    # carry no gradient.
    torch.Tensor.numpy = lambda self, *a, **k: orig_numpy(self.detach(), *a, **k)
    globals()["mlp"] = counting
    try:
        z, mask = encode(cfg, Pg, batch)
        logits = decode(cfg, Pg, z, mask, np.arange(batch["batch"] + 1), codes)
        loss = ntp_loss(logits, codes)
        loss.backward()
    finally:
        globals()["mlp"] = orig_mlp
        torch.Tensor.numpy = orig_numpy
    grads = {k: (v.grad.detach().clone() if v.grad is not None else torch.zeros_like(v))
             for k, v in Pg.items()}
    norm = math.sqrt(sum(float((g * g).sum()) for k, g in grads.items()))
    scale = opt["clip_norm"] / norm if 0 < opt["clip_norm"] < norm else 1.0
    b1, b2, eps = opt["beta1"], opt["beta2"], opt["adam_eps"]
    new = {}
    for k, p in P.items():
        if k.endswith("router_bias"):
            load = loads[k.rsplit("/", 1)[0]].astype(np.float64)
            new[k] = p + opt["moe_bias_rate"] * torch.tensor(np.sign(load.mean() - load), dtype=DT)
            continue
        g = grads[k] * scale
        m = (1 - b1) * g
        v = (1 - b2) * g * g
        mh, vh = m / (1 - b1), v / (1 - b2)
        lr = lr_at(opt, 1, opt["lr_sparse"] if is_sparse(k) else opt["lr_dense"])
        wd = opt["weight_decay"] if decays(k, tuple(p.shape)) else 0.0
        new[k] = p - lr * (mh / (vh.sqrt() + eps) + wd * p)
    return float(loss), grads, new, norm


# ---------------------------------------------------------------- generation

def beam_search(cfg, P, z, mask, cat_codes, beam, k):
    """Constrained beam search (lib/beam_search.c) for every user of an encoded batch.

    cat_codes [N, L]: the catalogue's semantic IDs. Each step extends every live prefix by the
    codes that continue some catalogue item, scores them with the full log-softmax over all
    codes (so a result's log-probability is its exact score), and keeps the `beam` best (the
    last level keeps k), ranked by score, then earlier parent, then lower code.
    Returns (rows [B, k] catalogue rows, -1 past the end; logp [B, k]; the smallest gap between
    the last kept and the first dropped candidate, which fixtures keep away from float32 noise)."""
    L = cfg["levels"]
    cat_codes = np.asarray(cat_codes)
    by_prefix = {}
    for row, c in enumerate(cat_codes):
        for j in range(L):
            by_prefix.setdefault(tuple(int(v) for v in c[:j]), set()).add(int(c[j]))
    leaf = {tuple(int(v) for v in c): row for row, c in enumerate(cat_codes)}
    B = z.shape[0]
    rows = np.full((B, k), -1, dtype=np.int64)
    logp = np.full((B, k), -np.inf)
    gap = float("inf")
    for b in range(B):
        live = [((), 0.0)] if len(cat_codes) else []
        for j in range(L):
            if not live:
                break
            codes = np.zeros((len(live), L), dtype=np.int64)
            for r, (p, _) in enumerate(live):
                codes[r, :j] = p
            logits = decode(cfg, P, z[b:b + 1], mask[b:b + 1], [0, len(live)], codes)[:, j]
            lp = torch.log_softmax(logits, dim=-1)
            cand = []
            for r, (p, s) in enumerate(live):
                for c in sorted(by_prefix[p]):
                    cand.append((s + float(lp[r, c]), r, c))
            cand.sort(key=lambda t: (-t[0], t[1], t[2]))
            keep = beam if j < L - 1 else k
            if len(cand) > keep:
                gap = min(gap, cand[keep - 1][0] - cand[keep][0])
            live = [(live[r][0] + (c,), s) for s, r, c in cand[:keep]]
        for i, (p, s) in enumerate(live):
            rows[b, i] = leaf[p]
            logp[b, i] = s
    return rows, logp, gap
