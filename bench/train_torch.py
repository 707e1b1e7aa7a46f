"""PyTorch peer of bench/train.c: full training steps of the model of bench/torch_peer.py (the
shapes of bench/infer_torch.py: SPEC preset 0.015B by default, batch 64, encoder input 1 + 20 +
256 + 128 tokens with 256 lifelong interactions per user, 3 levels x 8192 codes), float32,
written the way a PyTorch user would write a training step:

    features gathered from the embedding tables, encoder, teacher-forced decoder on the targets'
    semantic IDs, NTP cross-entropy (mean over targets and levels), loss.backward(),
    clip_grad_norm_(1.0), torch.optim.AdamW.step(), zero_grad()

with the C trainer's defaults (include/onerec/train.h): dense lr 1e-3, embedding tables 1e-2,
betas (0.9, 0.999), eps 1e-8, weight decay 0.01 on dense matrices only.

    /usr/bin/python3 bench/train_torch.py --threads 2 [--warmup N] [--reps N]

Times `warmup` untimed steps, then `reps` timed ones; prints one JSON line:
{"name": "train_step_b64", "torch": samples/s of the best step, "torch_median": ..., "unit":
"samples/s", ...}; the parameter count and per-step times go to stderr."""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from torch_peer import OneRec, add_shape_args

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
add_shape_args(ap)
ap.add_argument("--warmup", type=int, default=1)
ap.add_argument("--reps", type=int, default=3)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
B, K, L = a.batch, a.codes, a.levels


def log(*args):
    print("train_torch:", *args, file=sys.stderr, flush=True)


model = OneRec(d=a.d, heads=a.heads, layers=a.layers, codes=K, levels=L, short=a.short,
               positive=a.positive, queries=a.queries)
n_params = sum(p.numel() for p in model.parameters())
log("parameters %d" % n_params)
opt = torch.optim.AdamW(model.param_groups(), betas=(0.9, 0.999), eps=1e-8)
ids = model.random_ids(B, a.lifelong)
codes = torch.randint(0, K, (B, L))
dec_ids = model.teacher_ids(codes)


def step():
    z, mask, kvs = model.encode(model.features(ids), B)
    logits = model.decode(kvs, mask, dec_ids, False)
    loss = F.cross_entropy(logits.reshape(-1, K), codes.reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad()
    return loss.item()


for i in range(a.warmup):
    t0 = time.perf_counter()
    loss = step()
    log("warm-up step %d: %.3f s, loss %.4f" % (i + 1, time.perf_counter() - t0, loss))
times = []
for i in range(a.reps):
    t0 = time.perf_counter()
    loss = step()
    times.append(time.perf_counter() - t0)
    log("step %d: %.3f s, loss %.4f" % (i + 1, times[-1], loss))
print(json.dumps({"name": "train_step_b%d" % B, "torch": B / min(times),
                  "torch_median": B / statistics.median(times), "unit": "samples/s",
                  "params": n_params, "threads": a.threads}), flush=True)
