#!/bin/sh
# Performance regression check on this machine (not part of the tests: a
# timing is no unit test). Times the elementwise and row ops at 4096x4096,
# forward and VJP, on 1 thread (`tapegrad bench`) and compares the medians
# with benchmarks/baseline/ops-4096-t1.json; exit status 1 names every op
# that got slower by more than the threshold (default 25 %: medians on
# this 2-core guest move by up to ~15 % from run to run). It would have
# caught the softmax forward going 40 % slower on a compiler's choice
# (fixed in dcc573a). About a minute.
#   scripts/perfcheck.sh               compare with the stored baseline
#   scripts/perfcheck.sh --update      measure and store a new baseline
#   scripts/perfcheck.sh --threshold 0.15
# Run it on a quiet machine, as root for SCHED_FIFO (chrt), else plainly.
set -eu
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
base=benchmarks/baseline/ops-4096-t1.json
update=0
threshold=0.25
while [ $# -gt 0 ]; do
    case "$1" in
    --update) update=1 ;;
    --threshold) shift; threshold="$1" ;;
    *) echo "usage: scripts/perfcheck.sh [--update] [--threshold X]" >&2; exit 2 ;;
    esac
    shift
done
ops=""
for op in add mul relu sum exp tanh sigmoid silu elu softplus gelu softmax log_softmax cross_entropy; do
    ops="$ops --op $op"
done
rt=""
if [ "$(id -u)" = 0 ] && command -v chrt >/dev/null; then rt="chrt -f 50"; fi
# shellcheck disable=SC2086
if [ $update = 1 ]; then
    mkdir -p benchmarks/baseline
    $rt ./build/cli/tapegrad bench $ops --shape 4096x4096 --threads 1 --time-budget 0.3 --json "$base"
    echo "perfcheck: wrote $base"
else
    $rt ./build/cli/tapegrad bench $ops --shape 4096x4096 --threads 1 --time-budget 0.3 \
        --baseline "$base" --threshold "$threshold"
fi
