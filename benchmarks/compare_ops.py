#!/usr/bin/python3
"""compare_ops.py -- op throughput, tapegrad against PyTorch, side by side:

  /usr/bin/python3 benchmarks/compare_ops.py [--build build] [--rounds 3]
      [--threads 1,2] [--out benchmarks/out/ops] [--filter SUBSTRING] [--quick]

Per round and thread count it runs `tapegrad bench` over the ops and shapes
benchmarks/torch_ops.py knows (matmul at 256^3 and the MLP products; add,
mul, relu, exp, sum, softmax, cross_entropy at 1024x1024 and 4096x4096) and
then torch_ops.py with the same thread count, alternating the two. Both key
their figures "<op>/<dtype>/<shape>/<fwd|bwd>": fwd is the op's kernel alone
(tapegrad: the forward function; PyTorch: under no_grad), bwd the VJP alone
(tapegrad: the op's backward; PyTorch: y.backward(g) on the recorded op).
Per key the figure is the median over rounds of each run's median.

Prints, per thread count, tapegrad and PyTorch median times, the ratio
(tapegrad / PyTorch: below 1 tapegrad is faster), tapegrad's GFLOP/s, GB/s
and percent of this machine's peak (GEMM probe for matmul, memory-bandwidth
probe for the rest: `tapegrad bench` measures both at its start), and writes
  OUT/compare_ops.json   every run's figures and the aggregates
  OUT/ops_ratios.dat     the ratio table as gnuplot data
  OUT/compare_ops.png    the ratio chart (skipped without gnuplot)
Without PyTorch it says so and reports tapegrad alone.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_PY = os.environ.get("TAPEGRAD_TORCH_PYTHON", "/usr/bin/python3")
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
from torch_ops import ELEM_OPS, ELEM_SHAPES, MATMUL_SHAPES, shape_str  # noqa: E402  (no torch import)
from compare import have_torch, loadavg, ratio_chart  # noqa: E402


def tapegrad_groups():
    """(ops, shape) pairs: one `tapegrad bench` run each."""
    groups = [(["matmul"], f"{m}x{n}x{k}") for (m, n, k) in MATMUL_SHAPES]
    groups += [(ELEM_OPS, shape_str(s)) for s in ELEM_SHAPES]
    return groups


def run_tapegrad(a, threads, probe):
    """One `tapegrad bench` pass over every group at `threads`: {key: fields}, peaks."""
    exe = os.path.join(a.build, "cli", "tapegrad")
    results, peaks = {}, {}
    for ops, shape in tapegrad_groups():
        if a.filter:    # only the ops with a key the filter matches
            ops = [op for op in ops
                   if any(a.filter in f"{op}/f32/{shape}/{ph}" for ph in ("fwd", "bwd", "fwdbwd"))]
            if not ops:
                continue
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
            path = tf.name
        cmd = [exe, "bench", "--shape", shape, "--threads", str(threads), "--json", path,
               "--time-budget", "0.02" if a.quick else str(a.time_budget)]
        for op in ops:
            cmd += ["--op", op]
        if not probe:
            cmd.append("--no-probe")
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:      # a crash, or an op whose output did not match its reference
            raise SystemExit(f"compare_ops: failed ({r.returncode}): {' '.join(cmd)}\n"
                             + "\n".join(r.stdout.splitlines()[-12:]) + "\n" + r.stderr)
        with open(path) as f:
            d = json.load(f)
        os.unlink(path)
        if probe:
            ctx = d["context"]
            peaks = {"gemm": ctx.get("gemm_peak_f32_gflops", 0), "mem": ctx.get("mem_triad_gbps", 0),
                     "mem_all": ctx.get("mem_triad_gbps_all_cpus", 0), "cpus": ctx.get("num_cpus", 1)}
            probe = False
        for b in d["benchmarks"]:
            if b.get("phase") not in ("fwd", "bwd", "fwdbwd"):
                continue
            key = f"{b['op']}/{b['dtype']}/{b['shape']}/{b['phase']}"
            results[key] = {"ms": b["real_time"] * 1e-6, "min_ms": b["min_ns"] * 1e-6,
                            "gflops": b["GFLOPS"], "gbps": b["GBps"], "label": b.get("label", "")}
    return results, peaks


def run_torch(a, threads):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
        path = tf.name
    cmd = [TORCH_PY, os.path.join(HERE, "torch_ops.py"), "--threads", str(threads), "--json", path,
           "--blas", a.blas] + (["--quick"] if a.quick else []) + (["--filter", a.filter] if a.filter else [])
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"compare_ops: PyTorch run failed ({r.returncode}): {' '.join(cmd)}")
    with open(path) as f:
        d = json.load(f)
    os.unlink(path)
    return d["results"][str(threads)], d.get("blas", {}).get(str(threads), {})


def median_over(runs, key, field):
    vals = [r[key][field] for r in runs if key in r and field in r[key]]
    if not vals:
        return None
    return min(vals) if field.startswith("min") else statistics.median(vals)


def pct(row, peaks, threads):
    """% of the peak of `threads` threads: the 1-thread GEMM peak times the
    threads for compute-bound rows, else the triad bandwidth measured on
    as many threads (as `tapegrad bench` reports it)."""
    nt = min(threads, peaks.get("cpus", 1) or 1)
    peak = nt * peaks.get("gemm", 0)
    bw = peaks.get("mem_all") if nt > 1 and peaks.get("mem_all") else peaks.get("mem")
    if not peak or not bw:
        return None
    # The roofline, as tapegrad bench decides it (its label is only set on
    # the run that probed): compute-bound when flops per byte exceed the
    # machine balance.
    if row["gbps"] <= 0 or row["gflops"] / row["gbps"] > peak / bw:
        row["label"] = "compute"
        return 100 * row["gflops"] / peak
    row["label"] = "memory"
    return 100 * row["gbps"] / bw


def plot(out, keys, ratios, threads):
    return ratio_chart(os.path.join(out, "ops_ratios.dat"), os.path.join(out, "compare_ops.png"),
                       [(k, [ratios[t].get(k) for t in threads]) for k in keys], threads,
                       "op throughput: tapegrad time / PyTorch time (below 1: tapegrad faster)",
                       size="1400,600", xtics="rotate by -45 font ',8'")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--out", default=os.path.join(HERE, "out", "ops"))
    p.add_argument("--filter", default="", help="only keys containing this, e.g. matmul or 4096")
    p.add_argument("--time-budget", type=float, default=0.3, help="tapegrad bench seconds per measurement")
    p.add_argument("--blas", default="openmp", choices=["openmp", "pthread", "system"])
    p.add_argument("--quick", action="store_true", help="tiny budgets (checks the plumbing only)")
    p.add_argument("--report", metavar="COMPARE_OPS_JSON", help="reprint the tables of an earlier run, run nothing")
    a = p.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    os.makedirs(a.out, exist_ok=True)
    if a.report:
        with open(a.report) as f:
            d = json.load(f)
        a.rounds = d["rounds"]
        tg = {int(t): v for t, v in d["tapegrad_runs"].items()}
        pt = {int(t): v for t, v in d["pytorch_runs"].items()}
        return report(a, d["threads"], tg, pt, d["peaks"], d["blas"], d["load_1min"])
    if not os.path.exists(os.path.join(a.build, "cli", "tapegrad")):
        raise SystemExit(f"compare_ops: no {a.build}/cli/tapegrad; build first (meson setup build && ninja -C build)")
    torch_ok = have_torch()
    if not torch_ok:
        print(f"compare_ops: PyTorch not importable from {TORCH_PY} (Debian: apt install python3-torch); "
              "running tapegrad alone")
    tg_runs = {t: [] for t in threads}
    pt_runs = {t: [] for t in threads}
    peaks, blas, loads = {}, {}, []
    for rnd in range(a.rounds):
        for t in threads:
            loads.append(loadavg()[0])
            print(f"round {rnd + 1}/{a.rounds}, {t} thread(s): tapegrad (load {loads[-1]:.1f})", flush=True)
            res, pk = run_tapegrad(a, t, probe=not peaks)
            peaks = peaks or pk
            tg_runs[t].append(res)
            if torch_ok:
                print(f"round {rnd + 1}/{a.rounds}, {t} thread(s): PyTorch", flush=True)
                res, blas[t] = run_torch(a, t)
                pt_runs[t].append(res)
    return report(a, threads, tg_runs, pt_runs, peaks, blas, loads)


def report(a, threads, tg_runs, pt_runs, peaks, blas, loads):
    """Aggregate, print the tables, draw the chart, write compare_ops.json."""
    keys = sorted({k for t in threads for r in tg_runs[t] for k in r if not k.endswith("/fwdbwd")},
                  key=lambda k: (k.split("/")[0] != "matmul", k))
    agg, ratios = {}, {t: {} for t in threads}
    for t in threads:
        print(f"\n{t} thread(s); tapegrad / PyTorch, medians over {a.rounds} round(s); peaks of 1 thread: "
              f"GEMM {peaks.get('gemm', 0):.1f} GFLOP/s, memory {peaks.get('mem', 0):.1f} GB/s "
              f"(all CPUs: {peaks.get('mem_all', 0):.1f})")
        print(f"{'op/dtype/shape/phase':<36} {'tapegrad ms':>12} {'PyTorch ms':>12} {'ratio':>7} "
              f"{'GFLOP/s':>9} {'GB/s':>8} {'%peak':>8}")
        for k in keys:
            row = {"key": k, "ms": median_over(tg_runs[t], k, "ms"), "min_ms": median_over(tg_runs[t], k, "min_ms"),
                   "gflops": median_over(tg_runs[t], k, "gflops"), "gbps": median_over(tg_runs[t], k, "gbps"),
                   "label": tg_runs[t][0].get(k, {}).get("label", ""),
                   "torch_ms": median_over(pt_runs[t], k, "ms"), "torch_min_ms": median_over(pt_runs[t], k, "min_ms")}
            if row["ms"] is None:
                continue
            row["pct_peak"] = pct(row, peaks, t)
            row["ratio"] = row["ms"] / row["torch_ms"] if row["torch_ms"] else None
            ratios[t][k] = row["ratio"]
            agg[f"{k}/t{t}"] = row
            f = lambda v, s: s.format(v) if v is not None else "-"  # noqa: E731
            print(f"{k:<36} {f(row['ms'], '{:12.4f}')} {f(row['torch_ms'], '{:12.4f}')} {f(row['ratio'], '{:7.2f}')} "
                  f"{f(row['gflops'], '{:9.2f}')} {f(row['gbps'], '{:8.1f}')} {f(row['pct_peak'], '{:6.1f}%')}"
                  f"{row['label'][:1] if row['pct_peak'] is not None else ''}")
    png = plot(a.out, keys, ratios, threads)
    with open(os.path.join(a.out, "compare_ops.json"), "w") as f:
        json.dump({"threads": threads, "rounds": a.rounds, "peaks": peaks, "blas": blas, "load_1min": loads,
                   "aggregate": agg, "tapegrad_runs": tg_runs, "pytorch_runs": pt_runs}, f, indent=1)
    print(f"\nwrote {os.path.join(a.out, 'compare_ops.json')}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
