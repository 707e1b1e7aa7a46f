"""Writes the golden fixtures of tests/test_model_golden.c into tests/reference/fixtures/.

Each fixture is one HDF5 file: a complete libonerec model (random weights, in the library's
format, written here with h5py) plus a /golden group with a batch of user inputs and what the
PyTorch reference (onerec_ref.py, float64) computes for it: encoder output and key mask,
teacher-forced decoder logits and log p(item | user) for two sets of targets (grouped unevenly
per user, and one per user), and for MoE models the tokens routed to each expert.

    /usr/bin/python3 tests/reference/make_fixtures.py

Inputs are random but chosen so that no discrete decision (k-means assignment, cluster
representative, MoE top-k) is a near-tie that float32 and float64 could break differently:
a seed whose inputs contain one is skipped.
"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onerec_ref as ref  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def base_config():
    return dict(
        enc_layers=2, dec_layers=2, d_model=16, heads=2, ffn_dim=24, experts=0, top_k=1,
        expert_dim=0, moe_encoder=0, moe_decoder=0, levels=3, codebook=16, use_static=1,
        use_short=1, use_positive=1, use_lifelong=1, short_len=5, positive_len=6,
        lifelong_queries=4, qformer_layers=2, lifelong_tokens=6, lifelong_cluster_max=3,
        lifelong_max_items=30, static_cat_count=2, static_emb_dim=4, static_num_count=2,
        item_input=0, item_dim=8, seq_cat_count=2, seq_num_count=2, item_vocab=40,
        static_cat_vocab=[10, 5], seq_cat_vocab=[12, 4], seq_cat_dim=[6, 4],
        norm_eps=1e-6, leaky_slope=0.01, init_std=0.02)


CONFIGS = {
    # dense, items by id, all four pathways
    "dense": dict(),
    # MoE in encoder and decoder, items by semantic ID, all four pathways
    "moe": dict(experts=4, top_k=2, expert_dim=16, moe_encoder=1, moe_decoder=1, item_input=1,
                item_dim=4, item_vocab=0),
    # static and positive pathways left out, MoE decoder only, two levels, no numeric features
    "partial": dict(use_static=0, use_positive=0, experts=3, top_k=1, expert_dim=12,
                    moe_decoder=1, levels=2, codebook=12, seq_num_count=0, seq_cat_count=1,
                    seq_cat_vocab=[7], seq_cat_dim=[5], short_len=4),
}


def random_params(cfg, rng):
    params = {}
    for name, shape, kind in ref.param_shapes(cfg):
        if kind == "emb":
            a = rng.normal(0.0, 0.5, shape)
        elif kind == "ones":
            a = 1.0 + 0.1 * rng.normal(size=shape)
        elif kind == "zeros":  # biases and routing biases: non-zero, so they are exercised
            a = rng.normal(0.0, 0.1 if name.endswith("b1") else 0.05, shape)
        else:
            fan_in = shape[-2] if len(shape) >= 2 else shape[0]
            a = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        params[name] = a.astype(np.float32)
    return params


def ragged(rng, counts, make_row):
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows = [make_row() for _ in range(int(offsets[-1]))]
    return offsets, rows


def seq_input(cfg, rng, counts, cat_missing=0.15, item_missing=0.05):
    L, K = cfg["levels"], cfg["codebook"]
    sid = cfg["item_input"] == ref.ITEM_BY_SID
    n = int(sum(counts))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if sid:
        items = rng.integers(0, K, size=(n, L)).astype(np.int32)
        items[rng.random((n, L)) < item_missing] = -1
    else:
        items = rng.integers(0, cfg["item_vocab"], size=n).astype(np.int32)
        items[rng.random(n) < item_missing] = -1
    inp = dict(offsets=offsets, items=items)
    if cfg["seq_cat_count"]:
        cat = np.stack([rng.integers(0, v, size=n) for v in cfg["seq_cat_vocab"]], axis=1).astype(np.int32)
        cat[rng.random(cat.shape) < cat_missing] = -1
        inp["cat"] = cat
    if cfg["seq_num_count"]:
        inp["num"] = rng.normal(size=(n, cfg["seq_num_count"])).astype(np.float32)
    return inp


def make_batch(cfg, rng):
    B = 4
    batch = dict(batch=B)
    if cfg["use_static"]:
        sc = np.stack([rng.integers(0, v, size=B) for v in cfg["static_cat_vocab"]], axis=1).astype(np.int32)
        sc[1, 0] = -1  # a missing feature
        batch["static_cat"] = sc
        batch["static_num"] = rng.normal(size=(B, cfg["static_num_count"])).astype(np.float32)
    # user 0: everything, over-long; user 1: short histories, lifelong not compressed;
    # user 2: no short-term data, lifelong compressed; user 3: lifelong over max items
    batch["short_term"] = seq_input(cfg, rng, [7, 3, 0, 5])
    if cfg["use_positive"]:
        batch["positive"] = seq_input(cfg, rng, [2, 0, 6, 9])
    batch["lifelong"] = seq_input(cfg, rng, [12, 4, 0, 35] if cfg["use_positive"] else [13, 5, 20, 0])
    return batch


def targets(cfg, rng, n):
    return rng.integers(0, cfg["codebook"], size=(n, cfg["levels"])).astype(np.int32)


def write_inputs(g, batch):
    g.attrs["batch"] = np.int64(batch["batch"])
    for k in ("static_cat", "static_num"):
        if batch.get(k) is not None:
            g.create_dataset(k, data=batch[k])
    for p in ("short_term", "positive", "lifelong"):
        if batch.get(p) is None:
            continue
        sg = g.create_group(p)
        for k, v in batch[p].items():
            if v is not None:
                sg.create_dataset(k, data=v)


def build(name, overrides, seed):
    cfg = base_config()
    cfg.update(overrides)
    for k in ref.F_FIELDS:  # the file (and the C) hold them as float32
        cfg[k] = float(np.float32(cfg[k]))
    for attempt in range(50):
        rng = np.random.default_rng(seed + 1000 * attempt)
        params = random_params(cfg, rng)
        batch = make_batch(cfg, rng)
        off_a = np.array([0, 2, 2, 5, 6], dtype=np.int64)  # user 1 has no target
        codes_a = targets(cfg, rng, int(off_a[-1]))
        codes_b = targets(cfg, rng, batch["batch"])
        P = {k: torch.tensor(v.astype(np.float64)) for k, v in params.items()}
        ref.margins.update(kmeans=float("inf"), moe=float("inf"))
        load = None
        z, mask = ref.encode(cfg, P, batch)
        logits_a = ref.decode(cfg, P, z, mask, off_a, codes_a)
        logits_b = ref.decode(cfg, P, z, mask, np.arange(batch["batch"] + 1), codes_b)
        if ref.margins["kmeans"] < 1e-5 or ref.margins["moe"] < 1e-5:
            print("%s: seed attempt %d has a near-tie (%s), retrying" % (name, attempt, ref.margins))
            continue
        break
    else:
        raise SystemExit("no tie-free inputs found")
    # expert load of encode + decode(targets_a), counted by a second pass with counters
    if cfg["moe_encoder"] or cfg["moe_decoder"]:
        load = count_load(cfg, P, batch, z, mask, off_a, codes_a)
    path = os.path.join(OUT, "golden_%s.h5" % name)
    ref.write_model(path, cfg, params)
    # the reference reads the file back: what it computes from it is what the C test compares
    cfg2, P2 = ref.load_model(path)
    z2, mask2 = ref.encode(cfg2, P2, batch)
    assert torch.equal(z2, z) and torch.equal(mask2, mask)
    with h5py.File(path, "a") as f:
        g = f.create_group("golden")
        write_inputs(g.create_group("inputs"), batch)
        g.create_dataset("z", data=z.numpy().astype(np.float32))
        g.create_dataset("mask", data=mask.numpy().astype(np.uint8))
        for tag, off, codes, logits in (("targets_a", off_a, codes_a, logits_a),
                                         ("targets_b", None, codes_b, logits_b)):
            t = g.create_group(tag)
            if off is not None:
                t.create_dataset("offsets", data=off)
            t.create_dataset("codes", data=codes)
            t.create_dataset("logits", data=logits.numpy().astype(np.float32))
            t.create_dataset("logp", data=ref.score(cfg, logits, codes).numpy())
        if load is not None:
            g.create_dataset("expert_load", data=load)
    print("%s: %s (%d bytes), margins %s" % (name, path, os.path.getsize(path), ref.margins))


def count_load(cfg, P, batch, z, mask, off_a, codes_a):
    E = cfg["experts"]
    layers = (cfg["enc_layers"] if cfg["moe_encoder"] else 0) + (cfg["dec_layers"] if cfg["moe_decoder"] else 0)
    load = np.zeros((layers, E), dtype=np.int64)
    counters = iter([load[i] for i in range(layers)])
    orig = ref.mlp

    def counting(cfg_, P_, g, x, moe, _load=None):
        return orig(cfg_, P_, g, x, moe, next(counters) if moe else None)
    ref.mlp = counting
    try:
        ref.encode(cfg, P, batch)
        ref.decode(cfg, P, z, mask, off_a, codes_a)
    finally:
        ref.mlp = orig
    return load


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    for i, (name, overrides) in enumerate(CONFIGS.items()):
        build(name, overrides, 20240601 + i)


if __name__ == "__main__":
    main()
