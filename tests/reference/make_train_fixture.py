"""Writes tests/reference/fixtures/train_step.h5, the golden training step of
tests/test_trainer.c: a small MoE model (libonerec format, written with h5py), a batch of users
with one target each, and what onerec_ref.train_step (float64, autograd) computes for one
update with the options stored under /train/opts: the loss, the gradient norm, the gradients of
a few tensors (one per kind of module) and every updated parameter.

    /usr/bin/python3 tests/reference/make_train_fixture.py
"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as mf  # noqa: E402
import onerec_ref as ref  # noqa: E402

OPT = dict(lr_dense=1e-2, lr_sparse=3e-2, beta1=0.9, beta2=0.99, adam_eps=1e-3,
           weight_decay=0.1, warmup_steps=2, total_steps=10, min_lr_ratio=0.1, clip_norm=0.5,
           moe_bias_rate=0.01)
GRADS = ["features/item_sid", "features/seq0", "short/w1", "qformer/query",
         "qformer/layer0/cross_wkv", "encoder/pos", "encoder/layer0/router",
         "encoder/layer1/experts_w_gate", "decoder/tok_emb", "decoder/layer0/cross_wkv",
         "decoder/layer1/ffn_norm", "decoder/heads"]


def main():
    cfg = mf.base_config()
    cfg.update(experts=4, top_k=2, expert_dim=8, moe_encoder=1, moe_decoder=1, item_input=1,
               item_dim=4, item_vocab=0, d_model=8, ffn_dim=12, codebook=8, qformer_layers=1)
    for k in ref.F_FIELDS:
        cfg[k] = float(np.float32(cfg[k]))
    for attempt in range(50):
        rng = np.random.default_rng(77 + 1000 * attempt)
        params = mf.random_params(cfg, rng)
        batch = mf.make_batch(cfg, rng)
        codes = mf.targets(cfg, rng, batch["batch"])
        P = {k: torch.tensor(v.astype(np.float64)) for k, v in params.items()}
        ref.margins.update(kmeans=float("inf"), moe=float("inf"))
        loss, grads, new, norm = ref.train_step(cfg, P, batch, codes, OPT)
        if ref.margins["kmeans"] < 1e-4 or ref.margins["moe"] < 1e-4:
            print("attempt %d has a near-tie (%s), retrying" % (attempt, ref.margins))
            continue
        break
    else:
        raise SystemExit("no tie-free inputs found")
    path = os.path.join(mf.OUT, "train_step.h5")
    ref.write_model(path, cfg, params)
    with h5py.File(path, "a") as f:
        g = f.create_group("train")
        mf.write_inputs(g.create_group("inputs"), batch)
        g.create_dataset("codes", data=codes)
        o = g.create_group("opts")
        for k, v in OPT.items():
            o.attrs[k] = float(v)  # all as float64: the C reads them one way
        g.attrs["loss"] = loss
        g.attrs["grad_norm"] = norm
        gg = g.create_group("grads")
        for k in GRADS:
            gg.create_dataset(k.replace("/", "."), data=grads[k].numpy().astype(np.float32))
        nw = g.create_group("updated")
        for k, v in new.items():
            nw.create_dataset(k.replace("/", "."), data=v.numpy().astype(np.float32))
    print("%s (%d bytes), loss %.6f, grad norm %.6f, margins %s"
          % (path, os.path.getsize(path), loss, norm, ref.margins))


if __name__ == "__main__":
    main()
