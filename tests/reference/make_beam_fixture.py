"""Writes tests/reference/fixtures/beam.h5: constrained beam-search results of the PyTorch
reference (onerec_ref.beam_search, float64) for the models and user batches of the golden
fixtures golden_dense.h5 and golden_moe.h5 (read, never changed), over a random catalogue.
tests/test_generate_golden.c compares libonerec's beam search with them.

    /usr/bin/python3 tests/reference/make_beam_fixture.py

Layout: /<name>/item_ids int64 [N], /<name>/codes int32 [N, L]; /<name>/beam<W> with attributes
beam and k and datasets items int64 [B, k] (-1 past the end) and logp float64 [B, k]. A
catalogue whose beam boundaries hold a near-tie (float32 and float64 could rank differently) is
redrawn."""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onerec_ref as ref  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
N_ITEMS = 90
SETTINGS = ((4, 3), (16, 8), (128, 10))  # (beam, k); 128 >= N_ITEMS: the exact top k


def read_batch(path):
    with h5py.File(path, "r") as f:
        g = f["golden/inputs"]
        batch = dict(batch=int(g.attrs["batch"]))
        for k in ("static_cat", "static_num"):
            batch[k] = np.asarray(g[k]) if k in g else None
        for p in ("short_term", "positive", "lifelong"):
            if p in g:
                batch[p] = {k: (np.asarray(g[p][k]) if k in g[p] else None)
                            for k in ("offsets", "items", "cat", "num")}
    return batch


def main():
    out = os.path.join(FIX, "beam.h5")
    with h5py.File(out + ".tmp", "w") as f:
        for name, seed in (("dense", 1), ("moe", 2)):
            path = os.path.join(FIX, "golden_%s.h5" % name)
            cfg, P = ref.load_model(path)
            z, mask = ref.encode(cfg, P, read_batch(path))
            L, K = cfg["levels"], cfg["codebook"]
            for attempt in range(50):
                rng = np.random.default_rng(seed + 100 * attempt)
                flat = rng.choice(K ** L, size=N_ITEMS, replace=False)
                codes = np.stack([(flat // K ** (L - 1 - j)) % K for j in range(L)], 1).astype(np.int32)
                ref.margins.update(kmeans=float("inf"), moe=float("inf"))
                res = [ref.beam_search(cfg, P, z, mask, codes, w, k) for w, k in SETTINGS]
                gap = min([r[2] for r in res] + [ref.margins["moe"]])  # MoE routing of the beams
                if gap > 1e-4:
                    break
                print("%s: attempt %d has a near-tie (%g), redrawing" % (name, attempt, gap))
            else:
                raise SystemExit("no tie-free catalogue found")
            g = f.create_group(name)
            ids = (500 + 3 * np.arange(N_ITEMS)).astype(np.int64)
            g.create_dataset("item_ids", data=ids)
            g.create_dataset("codes", data=codes)
            for (w, k), (rows, logp, _) in zip(SETTINGS, res):
                s = g.create_group("beam%d" % w)
                s.attrs["beam"] = np.int64(w)
                s.attrs["k"] = np.int64(k)
                s.create_dataset("items", data=np.where(rows >= 0, ids[np.maximum(rows, 0)], -1))
                s.create_dataset("logp", data=logp)
            print("%s: min gap %g" % (name, gap))
    os.replace(out + ".tmp", out)
    print("wrote %s (%d bytes)" % (out, os.path.getsize(out)))


if __name__ == "__main__":
    with torch.no_grad():
        main()
