#!/bin/sh
# Performance regression check on this machine (not part of the tests: a
# timing is no unit test). Times the elementwise and row ops at 4096x4096,
# and every op at 128x1024 (in cache), forward and VJP, on 1 thread
# (`tapegrad bench`, the ops' sample inputs: gelu's are in [-3, 3], so its
# exp-free path only) and compares the medians with
# benchmarks/baseline/CPU/ops-4096-t1.json and ops-128x1024-t1.json, where
# CPU names this processor (vendor-family-model from /proc/cpuinfo: a Zen 4
# and a Zen 5 run the same op at different speeds, and a baseline from the
# other one would hide a regression or invent one); ops flagged
# are timed once more and only those slow both times count. It would have
# caught the softmax forward going 40 % slower on a compiler's choice (fixed
# in dcc573a) and the loss VJPs' masked loads (fixed in the commit that
# added the second suite). About two minutes.
#   scripts/perfcheck.sh                  compare with the stored baseline
#   scripts/perfcheck.sh --threshold X    flag slowdowns beyond X (0 < X < 1;
#                                         default 0.25: medians on this 2-core
#                                         guest move by up to ~15 % run to run)
#   scripts/perfcheck.sh --update         measure and store a new baseline
# Exit status: 0 no regression, 1 a regression (each one named), 2 bad
# arguments, 3 could not measure (build, baseline, bench failed).
# Run it on a quiet machine; as root it runs under SCHED_FIFO (chrt).
set -u
usage() { echo "usage: scripts/perfcheck.sh [--update | --threshold X]" >&2; exit 2; }
update=0
threshold=0.25
while [ $# -gt 0 ]; do
    case "$1" in
    --update) update=1 ;;
    --threshold)
        [ $# -ge 2 ] || usage
        threshold="$2"
        shift
        # 0 < X < 1: "25" would mean 2500 %
        awk -v t="$threshold" 'BEGIN { exit !(t + 0 > 0 && t + 0 < 1) }' || usage ;;
    -h | --help) usage ;;
    *) usage ;;
    esac
    shift
done
cd "$(dirname "$0")/.." || exit 3
if [ ! -f build/build.ninja ]; then
    meson setup build >/dev/null || { echo "perfcheck: meson setup failed" >&2; exit 3; }
fi
if ! out=$(ninja -C build 2>&1); then
    printf '%s\n' "$out" >&2
    echo "perfcheck: the build failed" >&2
    exit 3
fi
cpu=$(awk -F': *' '/^vendor_id/ && !v { v = $2 } /^cpu family/ && !f { f = $2 }
                  /^model[ \t]*:/ && !m { m = $2 } END { if (v != "") print v "-" f "-" m }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu" ] || cpu=unknown-cpu
bdir=benchmarks/baseline/$cpu
rt=""
if [ "$(id -u)" = 0 ] && command -v chrt >/dev/null && chrt -f 50 true 2>/dev/null; then
    rt="chrt -f 50"
fi

# check SHAPE BASELINE BUDGET [OPS...]: one suite (no ops named: every op
# that runs at SHAPE). Sets worst to 1 on a regression, exits 3 when it
# cannot measure.
worst=0
check() {
    shape=$1 base=$2 budget=$3
    shift 3
    ops=""
    for op in "$@"; do ops="$ops --op $op"; done
    if [ $update = 0 ] && [ ! -f "$base" ]; then
        echo "perfcheck: no baseline $base for this CPU ($cpu; stored for:" \
             "$(ls benchmarks/baseline 2>/dev/null | tr '\n' ' ')); make one with --update" >&2
        exit 3
    fi
    set -- ./build/cli/tapegrad bench --shape "$shape" --threads 1 --time-budget "$budget"
    if [ $update = 1 ]; then
        mkdir -p "$bdir"
        # shellcheck disable=SC2086
        $rt "$@" $ops --json "$base.new" >/dev/null || { echo "perfcheck: the benchmark failed" >&2; exit 3; }
        mv "$base.new" "$base"
        echo "perfcheck: wrote $base"
        return
    fi
    log=$(mktemp) || exit 3
    # shellcheck disable=SC2086
    $rt "$@" $ops --baseline "$base" --threshold "$threshold" >"$log" 2>&1
    rc=$?
    cat "$log"
    if [ $rc -ne 0 ] && ! grep -q "REGRESSION" "$log"; then
        rm -f "$log"
        echo "perfcheck: the benchmark failed" >&2
        exit 3
    fi
    if [ $rc -ne 0 ]; then
        # A busy host slows single runs by 30 % and more: time the flagged ops
        # once more and report only what is slow twice.
        again=$(grep "REGRESSION" "$log" | awk '{ split($1, k, "/"); print k[1] }' | sort -u)
        reops=""
        for op in $again; do reops="$reops --op $op"; done
        echo "perfcheck: timing again:$reops"
        # shellcheck disable=SC2086
        $rt "$@" $reops --baseline "$base" --threshold "$threshold" >"$log" 2>&1
        rc=$?
        sed -n '/^baseline comparison/,$p' "$log"
        if [ $rc -ne 0 ] && ! grep -q "REGRESSION" "$log"; then
            rm -f "$log"
            echo "perfcheck: the benchmark failed" >&2
            exit 3
        fi
    fi
    rm -f "$log"
    [ $rc -eq 0 ] || worst=1
}

# Out of cache: the elementwise and row ops at 4096x4096.
check 4096x4096 "$bdir/ops-4096-t1.json" 0.3 \
    add mul relu sum exp tanh sigmoid silu elu softplus gelu softmax log_softmax cross_entropy
# In cache: every op at 128x1024 (a batch of 128 by a 1024-wide layer), where
# compute and per-call costs show that memory hides at 4096x4096 (the loss
# VJPs' masked loads past dy: bce_with_logits 1.25 ms here, 68 us since).
check 128x1024 "$bdir/ops-128x1024-t1.json" 0.1
exit $worst
