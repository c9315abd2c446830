#!/usr/bin/python3
"""torch_train.py -- the PyTorch half of the training comparison: the same work
as benchmarks/bench_train.c, measured the same way, with the same JSON keys.

  step   one Adam step of an MLP (forward, cross-entropy, backward, Adam step,
         zero_grad) for 784-128-10 at batch 32/128/512 and 784-1024-1024-10 at
         batch 128: ms per step (median, min, IQR after warm-up), the phases
  epoch  seconds per Fashion-MNIST epoch (784-128relu-10, Adam 1e-3, batch 128,
         tensors preloaded, torch.randperm each epoch, batches by index_select)
  tiny   ns per recorded op: 1000 chained add/mul on 0-d tensors, + backward
  mem    peak RSS of a training run in a fresh process (VmHWM)
  peak   torch.mm 256x256x256 f32 GFLOP/s (the BLAS's GEMM)

Run it with Debian's python (/usr/bin/python3, which has python3-torch):

  /usr/bin/python3 benchmarks/torch_train.py [--threads 1,2] [--json FILE] [--quick]
      [--only peak,step,epoch,tiny,mem] [--blas openmp|pthread|system]

Each thread count runs in its own child process whose environment fixes the
thread count for torch (torch.set_num_threads) and for the BLAS
(OMP_NUM_THREADS, OPENBLAS_NUM_THREADS), puts the chosen OpenBLAS first on
LD_LIBRARY_PATH (Debian's torch links libblas.so.3 through the alternatives
system; the OpenMP build of OpenBLAS shares torch's libgomp thread pool), and
drops OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE so OpenBLAS picks its kernel
itself. The child prints which BLAS library it actually loaded and which
OpenBLAS kernel runs.
"""
import argparse
import ctypes
import gzip
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist"
BLAS_DIRS = {
    "openmp": "/usr/lib/x86_64-linux-gnu/openblas-openmp",
    "pthread": "/usr/lib/x86_64-linux-gnu/openblas-pthread",
}
N_BATCHES = 8
CHAIN = 1000
MLPS = {"784-128-10": [784, 128, 10], "784-1024-1024-10": [784, 1024, 1024, 10]}
STEP_CASES = [("784-128-10", 32), ("784-128-10", 128), ("784-128-10", 512), ("784-1024-1024-10", 128)]


# ---- statistics ---------------------------------------------------------------

def quantile(v, q):
    pos = q * (len(v) - 1)
    i = int(pos)
    return v[i] + (pos - i) * (v[i + 1] - v[i]) if i + 1 < len(v) else v[-1]


def stats(v):
    v = sorted(v)
    return {"med": quantile(v, 0.5), "min": v[0], "p25": quantile(v, 0.25), "p75": quantile(v, 0.75), "n": len(v)}


def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = line.split(":", 1)[1].strip()
    return {"cpu": cpu, "cpus": os.cpu_count(), "mem": mem, "kernel": platform.release(),
            "python": platform.python_version()}


# ---- BLAS identification --------------------------------------------------------

def blas_info():
    """Which BLAS/LAPACK libraries this process has mapped, and for OpenBLAS
    its kernel (core name), configuration, threading model and thread count."""
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if any(k in base for k in ("blas", "lapack", "mkl", "gomp", "iomp")):
                libs.add(os.path.realpath(path))
    info = {"libraries": sorted(libs)}
    for path in sorted(libs):
        if "openblas" not in os.path.basename(path):
            continue
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            info["openblas"] = path
            info["openblas_core"] = lib.openblas_get_corename().decode()
            info["openblas_config"] = lib.openblas_get_config().decode().strip()
            info["openblas_threads"] = lib.openblas_get_num_threads()
            info["openblas_parallel"] = {0: "sequential", 1: "pthreads", 2: "openmp"}.get(
                lib.openblas_get_parallel(), "?")
        except (OSError, AttributeError) as e:
            info["openblas_error"] = str(e)
    if not any("openblas" in os.path.basename(p) or "mkl" in p for p in libs):
        info["warning"] = "no optimised BLAS mapped: torch runs the reference BLAS or its own kernels"
    return info


# ---- the benchmarks -------------------------------------------------------------

def make_mlp(torch, widths):
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1]))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def step_flops(widths, B):
    f = 0.0
    for i in range(len(widths) - 1):
        f += 2.0 * B * widths[i] * widths[i + 1] * (2 if i == 0 else 3)
    return f


class Trainer:
    def __init__(self, torch, widths):
        self.torch = torch
        torch.manual_seed(42)
        self.model = make_mlp(torch, widths)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.F = torch.nn.functional

    def step(self, x, y, ph=None):
        """forward + cross-entropy, backward, Adam step, zero_grad; phase end
        times into ph[0..2]. Returns the loss."""
        loss = self.F.cross_entropy(self.model(x), y)
        if ph is not None:
            ph[0] = time.perf_counter()
        loss.backward()
        lv = loss.item()
        if ph is not None:
            ph[1] = time.perf_counter()
        self.opt.step()
        self.opt.zero_grad()
        if ph is not None:
            ph[2] = time.perf_counter()
        return lv


def random_batches(torch, B, widths):
    g = torch.Generator().manual_seed(1234)
    xs = [torch.rand(B, widths[0], generator=g) for _ in range(N_BATCHES)]
    ys = [torch.randint(0, widths[-1], (B,), generator=g) for _ in range(N_BATCHES)]
    return xs, ys


def bench_peak(torch, a, results):
    n = 256
    A, B = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
    C = torch.empty(n, n)
    flop = 2.0 * n ** 3
    reps, min_s = (3, 0.002) if a.quick else (11, 0.03)
    iters, rates, cpu_rates = 1, [], []
    with torch.no_grad():
        for r in range(-1, reps):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(iters):
                torch.mm(A, B, out=C)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r < 0:
                while dt * iters < min_s * 0.9 and iters < (1 << 20):
                    iters *= 2
                continue
            rates.append(flop * iters / dt * 1e-9)
            cpu_rates.append(flop * iters / dc * 1e-9 * a.threads)
    s, sc = stats(rates), stats(cpu_rates)
    print(f"GEMM torch.mm f32 256x256x256, {a.threads} thread(s): best {max(rates):.1f} GFLOP/s by wall time "
          f"(median {s['med']:.1f}); by process CPU time x threads: best {max(cpu_rates):.1f} (median {sc['med']:.1f})\n")
    results[f"peak/torch_mm/f32/256x256x256/t{a.threads}"] = {
        "wall_gflops_best": max(rates), "wall_gflops_median": s["med"], "gflops_best": max(cpu_rates),
        "gflops_median": sc["med"]}


def bench_step(torch, a, name, B, results):
    widths = MLPS[name]
    xs, ys = random_batches(torch, B, widths)
    t = Trainer(torch, widths)
    max_steps, min_steps = (5, 3) if a.quick else (4000, 30)
    budget = 0.05 if a.quick else a.seconds
    w0 = time.perf_counter()
    s = 0
    while s < 5 or (not a.quick and time.perf_counter() - w0 < 0.1 * budget):
        t.step(xs[s % N_BATCHES], ys[s % N_BATCHES])
        s += 1
    tot, fw, bw, op, cpu = [], [], [], [], []
    ph = [0.0, 0.0, 0.0]
    m0 = time.perf_counter()
    n = 0
    while n < max_steps and (n < min_steps or time.perf_counter() - m0 < budget):
        k = n % N_BATCHES
        t0, c0 = time.perf_counter(), time.process_time()
        t.step(xs[k], ys[k], ph)
        cpu.append(time.process_time() - c0)
        tot.append(ph[2] - t0)
        fw.append(ph[0] - t0)
        bw.append(ph[1] - ph[0])
        op.append(ph[2] - ph[1])
        n += 1
    st, sf, sb, so, sc = stats(tot), stats(fw), stats(bw), stats(op), stats(cpu)
    gflop = step_flops(widths, B) * 1e-9
    gfs = gflop / st["med"]
    print(f"{name:<18} {B:5d} {a.threads:3d}  {st['med'] * 1e3:9.3f} {st['min'] * 1e3:9.3f}  "
          f"{st['p25'] * 1e3:8.3f}-{st['p75'] * 1e3:<8.3f} {100 * sf['med'] / st['med']:4.0f}% "
          f"{100 * sb['med'] / st['med']:4.0f}% {100 * so['med'] / st['med']:4.0f}%  {gfs:7.1f}  {n:6d}", flush=True)
    results[f"step/{name}/b{B}/t{a.threads}"] = {
        "ms": st["med"] * 1e3, "min_ms": st["min"] * 1e3, "p25_ms": st["p25"] * 1e3, "p75_ms": st["p75"] * 1e3,
        "steps": n, "fwd_ms": sf["med"] * 1e3, "bwd_ms": sb["med"] * 1e3, "opt_ms": so["med"] * 1e3,
        "gflop_per_step": gflop, "gflops": gfs, "cpu_ms": sc["med"] * 1e3}


def read_idx_gz(path):
    import numpy as np
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    nd = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def load_fashion(torch, data_dir):
    images = read_idx_gz(os.path.join(data_dir, "train-images-idx3-ubyte.gz"))
    labels = read_idx_gz(os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    X = torch.from_numpy(images.reshape(images.shape[0], -1).astype("float32") / 255.0)
    Y = torch.from_numpy(labels.astype("int64"))
    return X, Y


def run_epoch(t, torch, X, Y, gen, max_batches=0, B=128):
    perm = torch.randperm(X.shape[0], generator=gen)
    total, nb = 0.0, 0
    for i in range(0, X.shape[0], B):
        if max_batches and nb >= max_batches:
            break
        idx = perm[i:i + B]
        lv = t.step(X.index_select(0, idx), Y.index_select(0, idx))
        if not math.isfinite(lv):
            raise SystemExit("torch_train: the loss is not finite")
        total += lv
        nb += 1
    return total / max(nb, 1)


def bench_epoch(torch, a, X, Y, results):
    t = Trainer(torch, MLPS["784-128-10"])
    gen = torch.Generator().manual_seed(42)
    measured = 1 if a.quick else a.epochs
    if not a.quick:
        run_epoch(t, torch, X, Y, gen, max_batches=20)        # warm-up, as the C side
    secs, cpus, losses = [], [], []
    for _ in range(measured):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(run_epoch(t, torch, X, Y, gen))
        secs.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    s = stats(secs)
    print(f"Fashion-MNIST epoch  {a.threads:3d}   {s['med']:9.3f} {s['min']:9.3f}  {measured:6d}   {X.shape[0]:7d}  "
          f"{losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)
    results[f"epoch/fashion-mnist/784-128-10/b128/t{a.threads}"] = {
        "s": s["med"], "min_s": s["min"], "epochs": measured, "images": int(X.shape[0]),
        "loss_first": losses[0], "loss_last": losses[-1], "cpu_s": stats(cpus)["med"]}


def bench_tiny(torch, a, results):
    warm, reps = (2, 5) if a.quick else (20, 1000)
    fw, bw, tot = [], [], []
    xgrad = 0.0
    start = 0.0
    for r in range(-warm, reps):
        if r == 0:
            start = time.perf_counter()
        elif r >= 30 and time.perf_counter() - start > a.seconds:
            break
        t0 = time.perf_counter()
        x = torch.tensor(1.0, requires_grad=True)
        c_mul, c_add = torch.tensor(1.0001), torch.tensor(0.001)
        y = x
        for i in range(CHAIN):
            y = y * c_mul if i & 1 else y + c_add
        t1 = time.perf_counter()
        y.backward()
        xgrad = x.grad.item()
        del y, x                                  # the graph dies here ("reset")
        t3 = time.perf_counter()
        if r >= 0:
            fw.append((t1 - t0) / CHAIN * 1e9)
            bw.append((t3 - t1) / CHAIN * 1e9)
            tot.append((t3 - t0) / CHAIN * 1e9)
    st, sf, sb = stats(tot), stats(fw), stats(bw)
    print(f"tiny op chain        {a.threads:3d}   {st['med']:9.1f} {st['min']:9.1f}  {sf['med']:9.1f} {sb['med']:9.1f}"
          f"   (dx = {xgrad:.4f})", flush=True)
    results[f"tiny/chain{CHAIN}/t{a.threads}"] = {
        "ns_per_op": st["med"], "min_ns_per_op": st["min"], "p25_ns": st["p25"], "p75_ns": st["p75"],
        "fwd_ns": sf["med"], "bwd_ns": sb["med"], "reps": st["n"]}


def mem_child(torch, a):
    """In a fresh process: RSS after importing torch, after the data, then
    VmHWM reset and the training run's own peak (as bench_train's)."""
    name, B, steps = a.mem_child
    B, steps = int(B), int(steps)
    widths = MLPS[name]
    start = status_kb("VmRSS")
    if a.data_for_mem:
        X, Y = load_fashion(torch, a.data_for_mem)
        data_bytes = X.numel() * 4 + Y.numel() * 8
    else:
        xs, ys = random_batches(torch, B, widths)
        data_bytes = N_BATCHES * B * (widths[0] * 4 + 8)
    data, load_hwm = status_kb("VmRSS"), status_kb("VmHWM")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t = Trainer(torch, widths)
    if a.data_for_mem:
        run_epoch(t, torch, X, Y, torch.Generator().manual_seed(42), max_batches=steps)
    else:
        for s in range(steps):
            t.step(xs[s % N_BATCHES], ys[s % N_BATCHES])
    print(json.dumps({"start_kb": start, "data_kb": data, "load_hwm_kb": load_hwm,
                      "train_hwm_kb": status_kb("VmHWM"), "data_bytes": data_bytes}))


def bench_mem(a, results, env):
    cases = [("784-128-10", None), ("784-1024-1024-10", None)]
    if os.path.isdir(a.data):
        cases.append(("784-128-10", a.data))
    steps = 3 if a.quick else 50
    MB = 1024.0
    for name, data in cases:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(a.threads),
               "--mem-child", name, "128", str(steps)] + (["--data-for-mem", data] if data else [])
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"memory {name}: the child run failed: {r.stderr.strip()[-300:]}")
            continue
        m = json.loads(r.stdout.strip().splitlines()[-1])
        peak = max(m["train_hwm_kb"], m["load_hwm_kb"]) / MB
        train = (m["train_hwm_kb"] - m["data_kb"]) / MB
        print(f"{name:<16} {128:5d} {'fmnist' if data else 'rand':<6} {peak:8.1f} {m['start_kb'] / MB:7.1f} "
              f"{(m['data_kb'] - m['start_kb']) / MB:7.1f} {(m['load_hwm_kb'] - m['data_kb']) / MB:7.1f}  {train:8.2f}",
              flush=True)
        results[f"mem/{name}/b128/{'fashion-mnist' if data else 'random'}"] = {
            "vmhwm_mb": peak, "start_rss_mb": m["start_kb"] / MB, "data_rss_mb": (m["data_kb"] - m["start_kb"]) / MB,
            "data_bytes_mb": m["data_bytes"] / 2 ** 20, "loader_transient_mb": (m["load_hwm_kb"] - m["data_kb"]) / MB,
            "train_delta_mb": train}


# ---- driver ---------------------------------------------------------------------

def child_env(threads, blas):
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        env.pop(k, None)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    if blas in BLAS_DIRS:
        d = BLAS_DIRS[blas]
        if not os.path.exists(os.path.join(d, "libblas.so.3")):
            raise SystemExit(f"torch_train: {d}/libblas.so.3 not found (is the OpenBLAS package installed?)")
        env["LD_LIBRARY_PATH"] = d + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    return env


def child(a):
    import torch
    torch.set_num_threads(a.threads)
    if a.mem_child:
        mem_child(torch, a)
        return
    results = {}
    torch.mm(torch.rand(64, 64), torch.rand(64, 64))        # load the BLAS before looking for it
    blas = blas_info()
    load0 = loadavg()
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "LD_LIBRARY_PATH",
                                          "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    print(f"PyTorch {torch.__version__}, {a.threads} thread(s) (torch.get_num_threads() = {torch.get_num_threads()}), "
          f"load {load0}\n  BLAS libraries mapped: {', '.join(blas['libraries']) or 'none'}")
    if "openblas_core" in blas:
        print(f"  OpenBLAS kernel {blas['openblas_core']}, {blas['openblas_parallel']}, "
              f"{blas['openblas_threads']} thread(s): {blas['openblas_config']}")
    if "warning" in blas:
        print(f"  WARNING: {blas['warning']}")
    print(f"  environment: {env}\n")
    if "peak" in a.only:
        bench_peak(torch, a, results)
    if "step" in a.only:
        print("train step (fwd+CE, backward, Adam, zero_grad); shares are medians of each phase")
        print(f"{'model':<18} {'batch':>5} {'thr':>3}  {'ms/step':>9} {'min ms':>9}  {'IQR ms':>17} {'fwd':>5} {'bwd':>5} "
              f"{'opt':>5}  {'GFLOP/s':>7}  {'steps':>6}")
        for name, B in STEP_CASES:
            bench_step(torch, a, name, B, results)
        print()
    if "epoch" in a.only:
        if os.path.isdir(a.data):
            X, Y = load_fashion(torch, a.data)
            if a.quick:
                X, Y = X[:2048].clone(), Y[:2048].clone()
            print("Fashion-MNIST epoch (784-128relu-10, Adam 1e-3, batch 128, shuffled; after a 20-step warm-up)")
            print(f"{'':<20} {'thr':>3}   {'s/epoch':>9} {'min s':>9}  {'epochs':>6}   {'images':>7}  train loss first -> last")
            bench_epoch(torch, a, X, Y, results)
            del X, Y
            print()
        else:
            print(f"Fashion-MNIST not found in {a.data}: epoch benchmark skipped\n")
    if "tiny" in a.only:
        print(f"chain of {CHAIN} recorded add/mul on 0-d f32 tensors, forward + backward + graph release")
        print(f"{'':<20} {'thr':>3}   {'ns/op':>9} {'min ns':>9}  {'fwd ns':>9} {'bwd ns':>9}")
        bench_tiny(torch, a, results)
        print()
    if "mem" in a.only:
        print("peak memory of a training run, each in a fresh process (MiB): peak VmHWM; RSS after import torch;\n"
              "added by the data; the loader's transient; the training run's own peak above the loaded state")
        print(f"{'model':<16} {'batch':>5} {'data':<6} {'VmHWM':>8} {'start':>7} {'data':>7} {'load':>7}  {'train':>8}")
        bench_mem(a, results, dict(os.environ))
        print()
    out = {"impl": "pytorch", "torch": torch.__version__, "threads": a.threads, "machine": machine(), "blas": blas,
           "env": env, "loadavg_start": load0, "loadavg_end": loadavg(), "results": results}
    with open(a.child_json, "w") as f:
        json.dump(out, f, indent=1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--json", help="write the figures as JSON")
    p.add_argument("--quick", action="store_true", help="tiny counts (a smoke run; figures meaningless)")
    p.add_argument("--only", default="peak,step,epoch,tiny,mem")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--seconds", type=float, default=1.5, help="time budget per step configuration")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--blas", default="openmp", choices=["openmp", "pthread", "system"],
                   help="OpenBLAS build put first on LD_LIBRARY_PATH (system: the alternatives' choice)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child-json", help=argparse.SUPPRESS)
    p.add_argument("--mem-child", nargs=3, help=argparse.SUPPRESS)
    p.add_argument("--data-for-mem", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        a.threads = int(a.threads)
        child(a)
        return 0
    try:
        import torch  # noqa: F401  (only to say early and clearly that it is missing)
    except ImportError:
        print(f"torch_train: no torch in {sys.executable}; run it with /usr/bin/python3 (python3-torch)",
              file=sys.stderr)
        return 3
    merged = None
    for n in [int(x) for x in a.threads.split(",")]:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            tmp = tf.name
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--threads", str(n), "--child-json", tmp,
               "--only", a.only, "--data", a.data, "--seconds", str(a.seconds), "--epochs", str(a.epochs)]
        if a.quick:
            cmd.append("--quick")
        r = subprocess.run(cmd, env=child_env(n, a.blas))
        if r.returncode != 0:
            print(f"torch_train: the {n}-thread run failed", file=sys.stderr)
            return 1
        with open(tmp) as f:
            part = json.load(f)
        os.unlink(tmp)
        if merged is None:
            merged = dict(part, threads=[n], blas={str(n): part["blas"]}, env={str(n): part["env"]})
        else:
            merged["results"].update(part["results"])
            merged["threads"].append(n)
            merged["blas"][str(n)] = part["blas"]
            merged["env"][str(n)] = part["env"]
            merged["loadavg_end"] = part["loadavg_end"]
    if a.json:
        with open(a.json, "w") as f:
            json.dump(merged, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
