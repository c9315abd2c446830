#!/usr/bin/python3
"""compare.py -- tapegrad against PyTorch on the same training work, in one
command:

  /usr/bin/python3 benchmarks/compare.py [--build build] [--rounds 3]
      [--threads 1,2] [--out benchmarks/out] [--quick] [--wait-quiet LOAD]

For each round and each thread count it runs build/benchmarks/bench_train
and then benchmarks/torch_train.py with that thread count (A B A B ...: the
two sides alternate, so a burst of load from other processes hits both), then
bench_sweep and torch_sweep.py (the reverse sweep over a graph of large
elementwise intermediates), each writing JSON. Per benchmark the figure is the median over rounds of each
run's median (min and max over rounds are kept too). Peak memory and the
GEMM peak are measured in the first round only.

Prints the ratio table (tapegrad time / PyTorch time: below 1 tapegrad is
faster) for 1 and 2 threads, the project's targets, and writes
  OUT/compare.json   every run's figures, the aggregates, machine and load
  OUT/ratios.dat     the ratio table as gnuplot data
  OUT/compare.png    the ratio chart (gnuplot; skipped if gnuplot is missing)
Without PyTorch (python3-torch for /usr/bin/python3, or the python named by
TAPEGRAD_TORCH_PYTHON) it says so and runs tapegrad alone.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The python that has torch: Debian's (the pyenv python3 first on PATH has none).
TORCH_PY = os.environ.get("TAPEGRAD_TORCH_PYTHON", "/usr/bin/python3")

# (key without the thread suffix, the figure compared, label, unit)
ROWS = [
    ("step/784-128-10/b32", "ms", "step 784-128-10 b32", "ms"),
    ("step/784-128-10/b128", "ms", "step 784-128-10 b128", "ms"),
    ("step/784-128-10/b512", "ms", "step 784-128-10 b512", "ms"),
    ("step/784-1024-1024-10/b128", "ms", "step 784-1024-1024-10 b128", "ms"),
    ("epoch/fashion-mnist/784-128-10/b128", "s", "Fashion-MNIST epoch", "s"),
    ("tiny/chain1000", "ns_per_op", "tiny op (fwd+bwd)", "ns"),
    ("sweep/n512", "ms", "sweep 512x512 fwd+bwd", "ms"),
    ("sweep/n512", "bwd_ms", "sweep 512x512 bwd", "ms"),
    ("sweep/n2048", "ms", "sweep 2048x2048 fwd+bwd", "ms"),
    ("sweep/n2048", "bwd_ms", "sweep 2048x2048 bwd", "ms"),
]
SWEEP_SIZES = ["512", "2048"]
# PyTorch 1.13 on this machine, medians of quiet runs measured before this
# script existed (issue 4): a yardstick for runs made under load.
ANCHORS = {
    "epoch/fashion-mnist/784-128-10/b128/t1": 0.53, "epoch/fashion-mnist/784-128-10/b128/t2": 0.38,
    "step/784-128-10/b128/t1": 1.05, "step/784-128-10/b128/t2": 0.90,
    "step/784-1024-1024-10/b128/t1": 23.4, "step/784-1024-1024-10/b128/t2": 17.3,
}


def peak_of(agg):
    """tapegrad's 1-thread GEMM peak (GFLOP/s) from its aggregate."""
    return max(agg.get("peak/gemm/f32/256x256x256/t1", {}).get("gflops_best", 0),
               agg.get("peak/matmul_nograd/f32/256x256x256/t1", {}).get("gflops_best", 0)) or float("nan")


# Fields aggregated (median over rounds) besides the compared figure.
EXTRA = ["min_ms", "p25_ms", "p75_ms", "fwd_ms", "bwd_ms", "opt_ms", "gflops", "pct_peak", "cpu_ms", "min_s",
         "cpu_s", "fwd_ns", "bwd_ns", "gflops_best", "gflops_median"]


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def wait_quiet(limit, max_wait):
    """Wait (up to max_wait s) until the 1-minute load average is below limit."""
    t0 = time.time()
    while loadavg()[0] > limit and time.time() - t0 < max_wait:
        time.sleep(10)
    return loadavg()


def have_torch():
    if not os.path.exists(TORCH_PY):
        return False
    r = subprocess.run([TORCH_PY, "-c", "import torch"], capture_output=True)
    return r.returncode == 0


def run_json(cmd, env=None):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tf:
        path = tf.name
    try:
        r = subprocess.run(cmd + ["--json", path], env=env)
        if r.returncode != 0:
            raise SystemExit(f"compare: failed ({r.returncode}): {' '.join(cmd)}")
        with open(path) as f:
            return json.load(f)
    finally:
        os.unlink(path)


def aggregate(runs):
    """runs: list of {"results": {key: {field: value}}} -> {key: {field: median, field_rounds: [...]}}"""
    out = {}
    for run in runs:
        for key, fields in run["results"].items():
            for f, v in fields.items():
                if isinstance(v, (int, float)):
                    out.setdefault(key, {}).setdefault(f, []).append(v)
    agg = {}
    for key, fields in out.items():
        agg[key] = {}
        for f, vals in fields.items():
            # min fields: the best over rounds; everything else: median of medians
            agg[key][f] = min(vals) if f.startswith("min") else statistics.median(vals)
            if f in ("ms", "s", "ns_per_op", "bwd_ms"):
                agg[key][f + "_rounds"] = vals
    return agg


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ns":
        return f"{v:.0f}"
    if unit == "s":
        return f"{v:.3f}"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}"


def ratio_chart(dat, png, table, threads, title, size="1000,560", xtics="rotate by -25", extra=""):
    """Write table [(label, [ratio per thread])] as gnuplot data to dat and
    draw it to png as clustered bars on a log2 axis with the line at 1;
    None (and says why) without gnuplot or ratios."""
    with open(dat, "w") as f:
        f.write("# benchmark " + " ".join(f"ratio_t{t}" for t in threads) + "   (tapegrad time / PyTorch time)\n")
        for label, ratios in table:
            f.write(f'"{label}" ' + " ".join(f"{r:.4f}" if r else "NaN" for r in ratios) + "\n")
    vals = [r for _, rs in table for r in rs if r]
    if not shutil.which("gnuplot") or not vals:
        print(("gnuplot not found" if vals else "no ratios (no PyTorch figures)") + ": no chart drawn")
        return None
    lo = 2 ** math.floor(math.log2(min(vals + [0.5]) / 1.5))
    hi = 2 ** math.ceil(math.log2(max(vals + [1.0]) * 1.5))
    tics = ", ".join(f"{2.0 ** k:g}" for k in range(int(math.log2(lo)), int(math.log2(hi)) + 1))
    cols = " , ".join(f"'{dat}' using {i + 2}:xtic(1) title '{t} thread{'s' if t > 1 else ''}'"
                      for i, t in enumerate(threads))
    script = f"""
set terminal pngcairo size {size} noenhanced
set output '{png}'
set title '{title}'
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set logscale y 2
set yrange [{lo:g}:{hi:g}]
set ytics ({tics})
set grid ytics
set xtics {xtics}
set key outside top center horizontal
set format y '%g'
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb 'black'
{extra}
plot {cols}
"""
    r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    if r.returncode != 0:
        print("gnuplot failed: " + r.stderr.strip())
        return None
    return png


def plot(out_dir, table, threads):
    return ratio_chart(os.path.join(out_dir, "ratios.dat"), os.path.join(out_dir, "compare.png"), table, threads,
                       "tapegrad time / PyTorch time (below 1: tapegrad faster)",
                       extra="set arrow from graph 0, first 0.5 to graph 1, first 0.5 nohead dt 2 lc rgb 'red'\n"
                             "set label 'epoch target 0.5' at graph 0.75, first 0.56 textcolor rgb 'red'")


def report(a, threads, runs, loads, torch_ok, meta=None):
    """Aggregate, print the tables and targets, draw the chart, write compare.json."""
    agg = {side: aggregate(rs) for side, rs in runs.items()}
    tg, pt = agg["tapegrad"], agg["pytorch"]

    # ---- the ratio table ----
    print(f"\n===== tapegrad vs PyTorch: median over {a.rounds} round(s) of each run's median =====")
    if a.quick:
        print("(--quick: a few steps on 2048 images; the figures check the plumbing and mean nothing)")
    hdr = f"{'benchmark':<28}"
    for t in threads:
        hdr += f" | {t}T tapegrad  PyTorch   ratio"
    print(hdr)
    table = []
    for key, field, label, unit in ROWS:
        line = f"{label:<28}"
        ratios = []
        for t in threads:
            a_v = tg.get(f"{key}/t{t}", {}).get(field)
            b_v = pt.get(f"{key}/t{t}", {}).get(field)
            ratio = a_v / b_v if a_v and b_v else None
            ratios.append(ratio)
            line += f" | {fmt(a_v, unit):>9}{unit:<2} {fmt(b_v, unit):>7}{unit:<2} {ratio:6.3f}" if ratio else \
                f" | {fmt(a_v, unit):>9}{unit:<2} {fmt(b_v, unit):>7}{unit:<2} {'-':>6}"
        table.append((label, ratios))
        print(line)

    # ---- best case: fastest single step / epoch / chain seen in any round ----
    print("\nbest case (minimum over every step of every round: what each side does when nothing interferes)")
    print(f"{'':<28}" + "".join(f" | {t}T tapegrad  PyTorch   ratio" for t in threads) + " | PyTorch quiet anchors")
    for key, field, label, unit in ROWS:
        mf = {"ms": "min_ms", "s": "min_s", "ns_per_op": "min_ns_per_op", "bwd_ms": "min_bwd_ms"}[field]
        line = f"{label:<28}"
        for t in threads:
            a_v = tg.get(f"{key}/t{t}", {}).get(mf)
            b_v = pt.get(f"{key}/t{t}", {}).get(mf)
            r_ = f"{a_v / b_v:6.3f}" if a_v and b_v else f"{'-':>6}"
            line += f" | {fmt(a_v, unit):>9}{unit:<2} {fmt(b_v, unit):>7}{unit:<2} {r_}"
        anchors = [ANCHORS.get(f"{key}/t{t}") for t in threads]
        if any(anchors):
            line += " | " + " ".join(f"{t}T {fmt(v, unit)}{unit}" for t, v in zip(threads, anchors) if v)
        print(line)

    # ---- CPU-time view (1 thread): robust to descheduling on a shared machine ----
    if 1 in threads and pt:
        print("\n1 thread, process CPU time instead of wall time (descheduling does not count; cache and memory\n"
              "bandwidth shared with other processes still do)")
        for key, field, label, unit in ROWS:
            cf = {"ms": "cpu_ms", "s": "cpu_s"}.get(field)
            a_v = tg.get(f"{key}/t1", {}).get(cf) if cf else None
            b_v = pt.get(f"{key}/t1", {}).get(cf) if cf else None
            if a_v and b_v:
                print(f"{label:<28} | {fmt(a_v, unit):>9}{unit:<2} {fmt(b_v, unit):>7}{unit:<2} {a_v / b_v:6.3f}")

    # ---- load ----
    mean_load = statistics.mean(l_["load_before"][0] for l_ in loads) if loads else 0
    ncpu = os.cpu_count() or 1
    if mean_load > 0.5 * ncpu:
        print(f"\nWARNING: the machine was loaded (mean 1-min load {mean_load:.1f} on {ncpu} CPUs). Wall-time figures\n"
              "are inflated for both sides, PyTorch's 2-thread ones catastrophically (its OpenMP barriers wait for\n"
              "a descheduled thread); judge by the best-case and CPU-time tables and the quiet anchors below,\n"
              "or rerun with --wait-quiet 1.5.")

    # ---- targets ----
    print("\ntargets (ratio = tapegrad / PyTorch; 'anchor': PyTorch measured earlier on this machine, quiet)")
    for t in threads:
        k = f"epoch/fashion-mnist/784-128-10/b128/t{t}"
        e_tg, e_pt = tg.get(k, {}), pt.get(k, {})
        anchor = ANCHORS.get(k)
        views = []
        if e_tg.get("s") and e_pt.get("s"):
            views.append(("median", e_tg["s"] / e_pt["s"]))
        if e_tg.get("min_s") and e_pt.get("min_s"):
            views.append(("best case", e_tg["min_s"] / e_pt["min_s"]))
        if e_tg.get("min_s") and anchor and e_tg.get("images") == 60000:
            views.append((f"best vs anchor {anchor} s", e_tg["min_s"] / anchor))
        if views:
            worst = max(r_ for _, r_ in views)
            print(f"  epoch at {t} thread(s): tapegrad {e_tg.get('s', 0):.3f} s (best {e_tg.get('min_s', 0):.3f}); ratio "
                  + ", ".join(f"{n} {r_:.2f}x" for n, r_ in views)
                  + f" (target <= 0.5x): {'MET' if worst <= 0.5 else 'not met' if min(r_ for _, r_ in views) > 0.5 else 'mixed'}")
    for t, goal in ((1, 85), (2, 75)):
        big = tg.get(f"step/784-1024-1024-10/b128/t{t}", {})
        if not big or t not in threads:
            continue
        # % of the t-thread peak (the 1-thread GEMM peak times t), as bench_train reports it
        best = big["gflop_per_step"] / (big["min_ms"] * 1e-3) / (t * peak_of(tg)) * 100 if big.get("min_ms") else 0
        cpu = f", {big.get('pct_peak_cpu', 0):.1f}% by CPU time" if t == 1 else ""
        print(f"  784-1024-1024-10 step at {t} thread(s): {big.get('pct_peak', 0):.1f}% of the {t}-thread GEMM peak by "
              f"median wall time{cpu}, {best:.1f}% for the best step (target >= {goal}%): "
              f"{'MET (median)' if big.get('pct_peak', 0) >= goal else 'best step only' if best >= goal else 'not met'}")
    tiny = tg.get("tiny/chain1000/t1", {})
    if tiny:
        print(f"  tiny recorded op: {tiny['ns_per_op']:.0f} ns forward+backward (target <= 150 ns; PyTorch "
              f"{pt.get('tiny/chain1000/t1', {}).get('ns_per_op', float('nan')):.0f} ns, anchor 7500): "
              f"{'MET' if tiny['ns_per_op'] <= 150 else 'not met'}")

    # ---- memory ----
    mems = sorted(k for k in tg if k.startswith("mem/"))
    if mems:
        print("\npeak memory: training run's own peak above the loaded data (MiB) and whole-process VmHWM")
        for k in mems:
            m_tg, m_pt = tg[k], pt.get(k, {})
            print(f"  {k:<36} tapegrad {m_tg.get('train_delta_mb', 0):7.2f} (expected "
                  f"{m_tg.get('expected_mb', 0):6.2f}; VmHWM {m_tg.get('vmhwm_mb', 0):6.1f})   PyTorch "
                  f"{m_pt.get('train_delta_mb', float('nan')):7.2f} (VmHWM {m_pt.get('vmhwm_mb', float('nan')):6.1f})")

    png = plot(a.out, table, threads)
    if meta is None:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(sys.argv), "rounds": a.rounds,
                "threads": threads, "loads": loads, "quick": a.quick}
        try:
            meta["commit"] = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                                            text=True).stdout.strip()
        except OSError:
            pass
    if torch_ok and runs["pytorch"]:
        meta["torch"] = runs["pytorch"][0].get("torch")
        meta["blas"] = {k: v for r_ in runs["pytorch"][:len(threads)] for k, v in r_.get("blas", {}).items()}
    if runs["tapegrad"]:
        meta["machine"] = runs["tapegrad"][0].get("machine")
    out = {"meta": meta, "aggregate": agg, "ratios": {label: dict(zip(map(str, threads), rs)) for label, rs in table},
           "runs": runs}
    with open(os.path.join(a.out, "compare.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(f"\nwrote {os.path.join(a.out, 'compare.json')}" + (f" and {png}" if png else ""))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--out", default=os.path.join(HERE, "out"))
    p.add_argument("--quick", action="store_true", help="tiny counts everywhere (checks the plumbing only)")
    p.add_argument("--seconds", default="1.5", help="time budget per step configuration (both sides)")
    p.add_argument("--epochs", default="3", help="measured epochs per run (both sides)")
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="before each run wait until the 1-min load average is below this (0: do not wait)")
    p.add_argument("--max-wait", type=float, default=300, help="longest wait for quiet, seconds")
    p.add_argument("--blas", default="openmp", choices=["openmp", "pthread", "system"])
    p.add_argument("--report", metavar="COMPARE_JSON",
                   help="run nothing: print the tables and redraw the chart from an earlier compare.json")
    a = p.parse_args()
    if a.report:
        with open(a.report) as f:
            old = json.load(f)
        m = old["meta"]
        a.rounds, a.quick = m["rounds"], m.get("quick", False)
        os.makedirs(a.out, exist_ok=True)
        return report(a, m["threads"], old["runs"], m["loads"], bool(old["runs"]["pytorch"]), m)
    threads = [int(t) for t in a.threads.split(",")]
    bench = os.path.join(a.build, "benchmarks", "bench_train")
    sweep = os.path.join(a.build, "benchmarks", "bench_sweep")
    if shutil.which("ninja") and os.path.exists(os.path.join(a.build, "build.ninja")):
        subprocess.run(["ninja", "-C", a.build, "benchmarks/bench_train", "benchmarks/bench_sweep"], check=True,
                       stdout=subprocess.DEVNULL)
    for prog in (bench, sweep):
        if not os.path.exists(prog):
            raise SystemExit(f"compare: {prog} not found; build first (meson setup build && ninja -C build)")
    torch_ok = have_torch()
    if not torch_ok:
        print(f"compare: PyTorch is not available ({TORCH_PY} cannot import torch; Debian: apt install "
              "python3-torch): running tapegrad alone")
    os.makedirs(a.out, exist_ok=True)

    common = ["--seconds", a.seconds, "--epochs", a.epochs] + (["--quick"] if a.quick else [])
    runs = {"tapegrad": [], "pytorch": []}
    loads = []
    for r in range(a.rounds):
        only = "peak,step,epoch,tiny,mem" if r == 0 else "peak,step,epoch,tiny"
        for t in threads:
            if a.wait_quiet:
                wait_quiet(a.wait_quiet, a.max_wait)
            l0 = loadavg()
            print(f"\n===== round {r + 1}/{a.rounds}, {t} thread(s): tapegrad (load {l0}) =====", flush=True)
            runs["tapegrad"].append(run_json([bench, "--threads", str(t), "--only", only] + common))
            loads.append({"round": r + 1, "threads": t, "side": "tapegrad", "load_before": l0, "load_after": loadavg()})
            if torch_ok:
                if a.wait_quiet:
                    wait_quiet(a.wait_quiet, a.max_wait)
                l0 = loadavg()
                print(f"\n===== round {r + 1}/{a.rounds}, {t} thread(s): PyTorch (load {l0}) =====", flush=True)
                runs["pytorch"].append(run_json([TORCH_PY, os.path.join(HERE, "torch_train.py"), "--threads", str(t),
                                                 "--only", only, "--blas", a.blas] + common))
                loads.append({"round": r + 1, "threads": t, "side": "pytorch", "load_before": l0,
                              "load_after": loadavg()})
            # The sweep graph, both sides in turn (no BLAS call: the BLAS build does not matter).
            sw = ["--threads", str(t), "--seconds", "0.2" if a.quick else "1"] + SWEEP_SIZES
            print(f"\n===== round {r + 1}/{a.rounds}, {t} thread(s): sweep graph =====", flush=True)
            runs["tapegrad"].append(run_json([sweep] + sw))
            if torch_ok:
                runs["pytorch"].append(run_json([TORCH_PY, os.path.join(HERE, "torch_sweep.py")] + sw))

    return report(a, threads, runs, loads, torch_ok)


if __name__ == "__main__":
    sys.exit(main())
