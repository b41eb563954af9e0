"""Recall@K in numpy (float32 GEMM on whatever BLAS numpy loads), the peer of @maskcon/eval.

Usage: python3 recall_numpy.py EMB.f32 LABELS.i32 N DIM
The plain way to compute it in numpy: rows L2-normalised (zero rows stay zero), for each chunk
of 1024 queries `x[chunk] @ x.T`, the query itself set to -inf, `argpartition` for the best
maxK, those sorted by (similarity desc, index asc). Prints one JSON line: seconds, peak RSS,
Recall@K, and the BLAS numpy uses. Run by `pnpm bench eval` with OPENBLAS_NUM_THREADS set.
"""
import json
import resource
import sys
import time

import numpy as np

KS = [1, 2, 5, 10]


def blas_name() -> str:
    with open('/proc/self/maps') as maps:
        libs = {line.split()[-1] for line in maps if 'blas' in line}
    return ', '.join(sorted(libs)) or 'unknown'


def main() -> None:
    emb_path, labels_path, n, dim = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    x = np.fromfile(emb_path, dtype=np.float32).reshape(n, dim)
    labels = np.fromfile(labels_path, dtype=np.int32)
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x = np.where(norms > 0, x / np.maximum(norms, 1e-30), 0).astype(np.float32)
    max_k = min(max(KS), n - 1)
    first_hit = np.empty(n, dtype=np.int64)
    chunk = 1024
    for q0 in range(0, n, chunk):
        q1 = min(q0 + chunk, n)
        sims = x[q0:q1] @ x.T  # chunk×N
        rows = np.arange(q1 - q0)
        sims[rows, rows + q0] = -np.inf  # never retrieve the query itself
        part = np.argpartition(-sims, max_k - 1, axis=1)[:, :max_k]  # chunk×maxK, unordered
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -vals), axis=1)  # similarity desc, then index asc
        idx = np.take_along_axis(part, order, axis=1)
        hit = labels[idx] == labels[q0:q1, None]
        first_hit[q0:q1] = np.where(hit.any(axis=1), hit.argmax(axis=1), max_k)
    recalls = {k: float((first_hit < min(k, max_k)).mean()) for k in KS}
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({'seconds': seconds, 'cpuSeconds': cpu, 'peakRssMB': peak_kb / 1024, 'recalls': recalls, 'blas': blas_name()}))


if __name__ == '__main__':
    main()
