#!/usr/bin/python3
"""torch_ops.py -- per-op forward and backward times of PyTorch at the shapes
tapegrad's op benchmark uses, printed as a table and as JSON keyed for a join
with `tapegrad bench`:

    "<op>/<dtype>/<shape>/<fwd|bwd>"     e.g. "matmul/f32/256x256x256/fwd"

  matmul         shape MxNxK: A (M,K) · B (K,N); 256³ and the MLP products
                 (784-128-10 and 784-1024-1024-10 at batch 128)
  add, mul       two inputs of the shape (no broadcasting)
  relu, exp      one input
  sum            the whole tensor to a scalar
  softmax        over the last axis
  cross_entropy  logits of the shape (N, C), int labels, mean reduction
Elementwise shapes: 1024x1024 (1M elements) and 4096x4096.
The JSON holds {"results": {"<threads>": {"<key>": {"ms", "min_ms", "cpu_ms", "gflops"}}}}
(ms: median wall time per call; cpu_ms: process CPU time per call, which at
1 thread is robust to descheduling on a shared machine)
(GFLOP/s: the matmul's 2MNK forward / 4MNK backward; elementwise ops: a
nominal flop count per element, for a rough rate only).

fwd is the op alone under torch.no_grad() (the kernel, nothing recorded);
bwd is the op's backward alone: y.backward(g, retain_graph=True) on inputs
that require a gradient (which accumulates into .grad, as a tapegrad VJP
does). Each figure is the median of 7 repeats, each at least 20 ms long.

  /usr/bin/python3 benchmarks/torch_ops.py [--threads 1,2] [--json FILE]
        [--dtype f32,f64] [--quick] [--filter SUBSTRING] [--blas openmp|pthread|system]

Thread counts and BLAS are set as in torch_train.py (child process per
thread count; OMP/OpenBLAS thread variables; OpenBLAS on LD_LIBRARY_PATH).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True      # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import blas_info, child_env, loadavg, machine, stats  # noqa: E402

MATMUL_SHAPES = [  # (M, N, K)
    (256, 256, 256),
    (128, 128, 784), (128, 10, 128),                            # 784-128-10, batch 128
    (128, 1024, 784), (128, 1024, 1024), (128, 10, 1024),       # 784-1024-1024-10, batch 128
]
ELEM_SHAPES = [(1024, 1024), (4096, 4096)]
ELEM_OPS = ["add", "mul", "relu", "exp", "sum", "softmax", "cross_entropy",
            "tanh", "sigmoid", "gelu", "softplus", "elu", "silu", "log_softmax"]


def shape_str(s):
    return "x".join(str(d) for d in s)


def cases(torch, dt):
    """(name, make_inputs() -> list of tensors, fn(inputs) -> output, fwd_flops, bwd_flops)."""
    F = torch.nn.functional
    out = []
    for (M, N, K) in MATMUL_SHAPES:
        out.append((f"matmul/{dt}/{M}x{N}x{K}", lambda M=M, N=N, K=K: [torch.rand(M, K) - 0.5, torch.rand(K, N) - 0.5],
                    lambda t: torch.mm(t[0], t[1]), 2.0 * M * N * K, 4.0 * M * N * K))
    for s in ELEM_SHAPES:
        n = s[0] * s[1]
        ss = shape_str(s)
        out += [
            (f"add/{dt}/{ss}", lambda s=s: [torch.rand(*s), torch.rand(*s)], lambda t: t[0] + t[1], n, 2 * n),
            (f"mul/{dt}/{ss}", lambda s=s: [torch.rand(*s), torch.rand(*s)], lambda t: t[0] * t[1], n, 2 * n),
            (f"relu/{dt}/{ss}", lambda s=s: [torch.rand(*s) - 0.5], lambda t: torch.relu(t[0]), n, n),
            (f"exp/{dt}/{ss}", lambda s=s: [torch.rand(*s) - 0.5], lambda t: torch.exp(t[0]), n, n),
            (f"sum/{dt}/{ss}", lambda s=s: [torch.rand(*s)], lambda t: t[0].sum(), n, n),
            (f"softmax/{dt}/{ss}", lambda s=s: [torch.rand(*s)], lambda t: torch.softmax(t[0], -1), 4 * n, 4 * n),
            (f"cross_entropy/{dt}/{ss}", lambda s=s: [torch.rand(*s), torch.randint(0, s[1], (s[0],))],
             lambda t: F.cross_entropy(t[0], t[1]), 4 * n, 3 * n),
            # the activations on inputs in [-3, 3); gelu is the exact (erf) one in both,
            # softplus PyTorch's default (beta 1; its linear branch above 20 is not reached)
            (f"tanh/{dt}/{ss}", lambda s=s: [6 * torch.rand(*s) - 3], lambda t: torch.tanh(t[0]), n, n),
            (f"sigmoid/{dt}/{ss}", lambda s=s: [6 * torch.rand(*s) - 3], lambda t: torch.sigmoid(t[0]), n, n),
            (f"gelu/{dt}/{ss}", lambda s=s: [6 * torch.rand(*s) - 3], lambda t: F.gelu(t[0]), n, n),
            (f"softplus/{dt}/{ss}", lambda s=s: [6 * torch.rand(*s) - 3], lambda t: F.softplus(t[0]), n, n),
            (f"elu/{dt}/{ss}", lambda s=s: [6 * torch.rand(*s) - 3], lambda t: F.elu(t[0]), n, n),
            (f"silu/{dt}/{ss}", lambda s=s: [6 * torch.rand(*s) - 3], lambda t: F.silu(t[0]), n, n),
            (f"log_softmax/{dt}/{ss}", lambda s=s: [torch.rand(*s)], lambda t: torch.log_softmax(t[0], -1), 4 * n, 4 * n),
        ]
    return out


def time_call(fn, quick):
    """Median seconds per call over 7 repeats of >= 20 ms (quick: 3 of 1 ms)."""
    reps, min_s = (3, 0.001) if quick else (7, 0.02)
    fn()
    iters = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        if time.perf_counter() - t0 >= min_s * 0.9 or iters >= 1 << 20:
            break
        iters *= 2
    per, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(iters):
            fn()
        per.append((time.perf_counter() - t0) / iters)
        cpu.append((time.process_time() - c0) / iters)
    st = stats(per)
    st["cpu"] = stats(cpu)["med"]
    return st


def child(a):
    import torch
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    torch.mm(torch.rand(64, 64), torch.rand(64, 64))
    blas = blas_info()
    print(f"PyTorch {torch.__version__}, {a.threads} thread(s); BLAS: {blas.get('openblas', blas['libraries'])} "
          f"{blas.get('openblas_core', '')}")
    print(f"{'op':<36} {'fwd ms':>10} {'bwd ms':>10} {'fwd GFLOP/s':>12} {'bwd GFLOP/s':>12}")
    results = {}
    for dt in a.dtype.split(","):
        torch.set_default_dtype(torch.float32 if dt == "f32" else torch.float64)
        for name, make, fn, ff, bf in cases(torch, dt):
            if a.filter and a.filter not in name:
                continue
            inp = make()
            with torch.no_grad():
                sf = time_call(lambda: fn(inp), a.quick)
            diff = [t.requires_grad_() for t in inp if t.is_floating_point()]
            y = fn(inp)
            g = torch.ones_like(y) if y.dim() == 0 else torch.rand_like(y)
            sb = time_call(lambda: y.backward(g, retain_graph=True), a.quick)
            del diff
            results[f"{name}/fwd"] = {"ms": sf["med"] * 1e3, "min_ms": sf["min"] * 1e3, "cpu_ms": sf["cpu"] * 1e3,
                                      "gflops": ff / sf["med"] * 1e-9}
            results[f"{name}/bwd"] = {"ms": sb["med"] * 1e3, "min_ms": sb["min"] * 1e3, "cpu_ms": sb["cpu"] * 1e3,
                                      "gflops": bf / sb["med"] * 1e-9}
            print(f"{name:<36} {sf['med'] * 1e3:10.4f} {sb['med'] * 1e3:10.4f} {ff / sf['med'] * 1e-9:12.2f} "
                  f"{bf / sb['med'] * 1e-9:12.2f}", flush=True)
    with open(a.child_json, "w") as f:
        json.dump({"impl": "pytorch", "torch": torch.__version__, "threads": a.threads, "blas": blas,
                   "machine": machine(), "loadavg": loadavg(), "results": results}, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2")
    p.add_argument("--json")
    p.add_argument("--dtype", default="f32")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--filter", default="")
    p.add_argument("--blas", default="openmp", choices=["openmp", "pthread", "system"])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-json", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        a.threads = int(a.threads)
        child(a)
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print(f"torch_ops: no torch in {sys.executable}; run it with /usr/bin/python3", file=sys.stderr)
        return 3
    merged = {"impl": "pytorch", "results": {}, "threads": [], "blas": {}}
    for n in [int(x) for x in a.threads.split(",")]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            tmp = tf.name
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(n), "--child-json", tmp,
               "--dtype", a.dtype, "--filter", a.filter] + (["--quick"] if a.quick else [])
        if subprocess.run(cmd, env=child_env(n, a.blas)).returncode != 0:
            print(f"torch_ops: the {n}-thread run failed", file=sys.stderr)
            return 1
        with open(tmp) as f:
            part = json.load(f)
        os.unlink(tmp)
        merged["torch"], merged["machine"] = part["torch"], part["machine"]
        merged["threads"].append(n)
        merged["blas"][str(n)] = part["blas"]
        merged["results"][str(n)] = part["results"]
    if a.json:
        with open(a.json, "w") as f:
            json.dump(merged, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
