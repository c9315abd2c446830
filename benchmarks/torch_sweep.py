#!/usr/bin/python3
"""torch_sweep.py — PyTorch twin of bench_sweep.c: the same graph
(a = tanh(x); c = 2a + a; L = sum(sigmoid(relu(c)))) on an n x n float32
leaf, forward and backward timed separately (median, min in ms), the leaf's
gradient accumulating across iterations as in the C benchmark.

    /usr/bin/python3 benchmarks/torch_sweep.py [--threads T] [--seconds S] [--json FILE] [N ...]

(--json: the figures as benchmarks/compare.py reads them, keys "sweep/n<N>/t<T>")

No BLAS call is involved, so the BLAS build does not matter here.
"""
import argparse
import json
import statistics
import sys
import time

try:
    import torch
except ImportError:
    sys.exit("torch_sweep: PyTorch is not importable (Debian: apt install python3-torch; "
             "run with /usr/bin/python3)")


def bench(n, seconds):
    i = torch.arange(n * n, dtype=torch.int64)
    x = (((i * 7919) % 1001 - 500).to(torch.float32) * 0.004).reshape(n, n).requires_grad_()
    fw, bw = [], []
    start = None
    for r in range(-3, 4096):
        if r == 0:
            start = time.perf_counter()
        elif r >= 10 and time.perf_counter() - start > seconds:
            break
        t0 = time.perf_counter()
        a = torch.tanh(x)
        c = a * 2.0 + a
        loss = torch.sigmoid(torch.relu(c)).sum()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if r == -3:
            checksum = x.grad.double().sum().item()
        if r >= 0:
            fw.append((t1 - t0) * 1e3)
            bw.append((t2 - t1) * 1e3)
    tot = [f + b for f, b in zip(fw, bw)]
    reps = len(fw)
    threads = torch.get_num_threads()
    print("%6d  %3d  %9.3f %9.3f  %9.3f %9.3f  %9.3f %9.3f  %6d  %.6e" % (
        n, torch.get_num_threads(), statistics.median(fw), min(fw), statistics.median(bw), min(bw),
        statistics.median(tot), min(tot), reps, checksum), flush=True)
    return "sweep/n%d/t%d" % (n, threads), {
        "ms": statistics.median(tot), "min_ms": min(tot), "fwd_ms": statistics.median(fw), "min_fwd_ms": min(fw),
        "bwd_ms": statistics.median(bw), "min_bwd_ms": min(bw), "reps": reps, "checksum": checksum}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("sizes", nargs="*", type=int, default=[512, 2048, 4096])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("torch %s: tanh, 2a, +a, relu, sigmoid, sum on an n x n f32 leaf: forward, backward, both (ms)"
          % torch.__version__)
    print("%6s  %3s  %9s %9s  %9s %9s  %9s %9s  %6s  %s" % ("n", "thr", "fwd", "min", "bwd", "min", "total", "min",
                                                         "iters", "sum of dL/dx"))
    results = dict(bench(n, a.seconds) for n in a.sizes)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"benchmark": "torch_sweep", "threads": a.threads, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
