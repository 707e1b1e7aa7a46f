"""PyTorch peer of bench/infer.c: the same model shapes (SPEC preset 0.015B by default) in
float32, vectorised the way a PyTorch user would write it (random weights: only time is
measured; the model itself is bench/torch_peer.py, shared with bench/train_torch.py), and a
constrained beam search over the same catalogue file.

    /usr/bin/python3 bench/infer_torch.py --threads 2 --catalog C.h5 [--quick]

Prints one JSON line per measurement: {"name": ..., "torch": value, "unit": ...}."""
import argparse
import json
import time

import h5py
import numpy as np
import torch

from torch_peer import OneRec, add_shape_args

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--catalog", default=None)
add_shape_args(ap)
ap.add_argument("--beams", default="32,128,512")
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
B, K, L = a.batch, a.codes, a.levels
model = OneRec(d=a.d, heads=a.heads, layers=a.layers, codes=K, levels=L, short=a.short,
               positive=a.positive, queries=a.queries)
# inputs gathered once, outside the timed calls
with torch.no_grad():
    inputs = model.features(model.random_ids(B, a.lifelong))
encode, decode = model.encode, model.decode


def forward():
    z, mask, kvs = encode(inputs, B)
    codes = torch.randint(0, K, (B, L))
    lp = torch.log_softmax(decode(kvs, mask, model.teacher_ids(codes), False), -1)
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
