#!/usr/bin/python3
"""Residual k-means with faiss (the peer of libonerec's RQ-Kmeans in bench/tokenizer).

Reads n x d float32 vectors (raw, row-major) and fits `levels` rounds of faiss.Kmeans on the
residuals, each followed by a nearest-centroid search of all vectors, exactly as RQ-Kmeans
does. Prints one JSON object: seconds (training + assignment, the data already in memory),
loss (sum of squared final residuals / sum of squared inputs), per-level seconds.
Run with Debian's /usr/bin/python3 and python3-faiss."""
import argparse
import json
import sys
import time

import numpy as np

try:
    import faiss
except ImportError as e:
    print("faiss_kmeans.py: cannot import faiss (apt-get install python3-faiss): %s" % e,
          file=sys.stderr)
    sys.exit(3)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--d", type=int, required=True)
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--k", type=int, default=256)
    p.add_argument("--iterations", type=int, default=25)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--max-train", type=int, default=0,
                   help="training points per level (0: faiss's default, 256 x k)")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args()
    if a.threads > 0:
        faiss.omp_set_num_threads(a.threads)
    x = np.fromfile(a.data, dtype=np.float32)
    if x.size != a.n * a.d:
        sys.exit("faiss_kmeans.py: %s holds %d floats, expected %d x %d" %
                 (a.data, x.size, a.n, a.d))
    x = x.reshape(a.n, a.d)
    per_centroid = (a.max_train // a.k) if a.max_train > 0 else 256
    t0 = time.perf_counter()
    r = x.copy()
    level_seconds = []
    for level in range(a.levels):
        t1 = time.perf_counter()
        km = faiss.Kmeans(a.d, a.k, niter=a.iterations, seed=a.seed + level,
                          max_points_per_centroid=per_centroid, verbose=False)
        km.train(r)
        _, idx = km.index.search(r, 1)
        r -= km.centroids[idx[:, 0]]
        level_seconds.append(time.perf_counter() - t1)
    seconds = time.perf_counter() - t0
    loss = float(np.square(r, dtype=np.float64).sum() / np.square(x, dtype=np.float64).sum())
    print(json.dumps({"seconds": seconds, "loss": loss, "level_seconds": level_seconds,
                      "faiss_version": faiss.__version__,
                      "threads": faiss.omp_get_max_threads()}))


if __name__ == "__main__":
    main()
