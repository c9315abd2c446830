#!/bin/sh
# Smoke test of bench_train: run it with tiny counts, check it exits 0, prints
# every table and writes a JSON file with every section. No timing checks.
set -u
exe=$1
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
if ! "$exe" --quick --json "$dir/out.json" >"$dir/out.txt" 2>&1; then
    cat "$dir/out.txt"; echo "bench_train --quick failed"; exit 1
fi
cat "$dir/out.txt"
fail=0
for want in "GEMM peak" "ms/step" "784-1024-1024-10" "ns/op" "VmHWM"; do
    grep -q -- "$want" "$dir/out.txt" || { echo "missing in the table: $want"; fail=1; }
done
for key in '"peak/gemm/f32/256x256x256/t1"' '"step/784-128-10/b32/t1"' '"step/784-1024-1024-10/b128/t2"' \
           '"tiny/chain1000/t1"' '"mem/784-128-10/b128/random"'; do
    grep -q -- "$key" "$dir/out.json" || { echo "missing in the JSON: $key"; fail=1; }
done
if [ -d /usr/share/datasets/fashion-mnist ]; then
    grep -q '"epoch/fashion-mnist/784-128-10/b128/t1"' "$dir/out.json" || { echo "missing in the JSON: epoch"; fail=1; }
fi
[ $fail -eq 0 ] && echo "bench_train smoke: ok"
exit $fail
