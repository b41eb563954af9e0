"""Recall@K in PyTorch on the CPU, the same computation as @maskcon/eval's recallAtK.

Usage: python3 recall_torch.py EMB.f32 LABELS.i32 N DIM THREADS
Rows are L2-normalised (zero rows stay zero), similarities come from a chunked matmul, the
query itself is excluded, and each query's top-maxK list is ordered by (similarity desc, index
asc) like the TypeScript tie rule. Prints one JSON line: seconds, peak RSS, Recall@K.
"""
import json
import resource
import sys
import time

import numpy as np
import torch

KS = [1, 2, 5, 10]


def blas_name() -> str:
    with open('/proc/self/maps') as maps:
        libs = {line.split()[-1] for line in maps if 'blas' in line}
    return ', '.join(sorted(libs)) or 'unknown'


def main() -> None:
    emb_path, labels_path, n, dim, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    torch.set_num_threads(threads)
    x = torch.from_numpy(np.fromfile(emb_path, dtype=np.float32).reshape(n, dim))
    labels = torch.from_numpy(np.fromfile(labels_path, dtype=np.int32).astype(np.int64))
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    with torch.no_grad():
        norms = x.norm(dim=1, keepdim=True)
        x = torch.where(norms > 0, x / norms.clamp_min(1e-30), torch.zeros_like(x))
        max_k = min(max(KS), n - 1)
        first_hit = torch.empty(n, dtype=torch.int64)
        chunk = 1024
        for q0 in range(0, n, chunk):
            q1 = min(q0 + chunk, n)
            sims = x[q0:q1] @ x.T  # chunk×N
            rows = torch.arange(q1 - q0)
            sims[rows, rows + q0] = float('-inf')  # never retrieve the query itself
            vals, idx = sims.topk(max_k, dim=1)  # chunk×maxK
            # Tie rule: equal similarities rank the lower index first, also across the cut.
            kth = vals[:, -1:]
            at_least = (sims >= kth).sum(dim=1)
            order = idx.sort(dim=1).indices  # index ascending, then a stable sort by value
            idx = idx.gather(1, order)
            vals = vals.gather(1, order)
            by_value = vals.sort(dim=1, descending=True, stable=True).indices
            idx = idx.gather(1, by_value)
            for r in torch.nonzero(at_least > max_k).flatten().tolist():
                cand = torch.nonzero(sims[r] >= kth[r]).flatten()  # ascending index
                s = sims[r, cand].sort(descending=True, stable=True).indices
                idx[r] = cand[s][:max_k]
            hit = labels[idx] == labels[q0:q1, None]  # chunk×maxK
            first = torch.where(hit.any(dim=1), hit.float().argmax(dim=1), torch.full((q1 - q0,), max_k))
            first_hit[q0:q1] = first
        recalls = {k: float((first_hit < min(k, max_k)).double().mean()) for k in KS}
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({'seconds': seconds, 'cpuSeconds': cpu, 'peakRssMB': peak_kb / 1024, 'recalls': recalls, 'torch': torch.__version__, 'blas': blas_name()}))


if __name__ == '__main__':
    main()
