#!/bin/sh
# `tapegrad bench` end to end with tiny time budgets: structure and exit
# statuses only, never timings.
#   $1 = the tapegrad program, $2 = a shared object of user ops (gradcheck_plugin)
set -u
tg=$1
plugin=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# 1. The smoke run: one op at a user shape, JSON and CSV written.
"$tg" bench --op add --shape 256x256 --time-budget 0.01 --json "$dir/a.json" --csv "$dir/a.csv" \
      > "$dir/out.txt" 2>&1 && ok || bad "smoke run failed: $(cat "$dir/out.txt")"
for want in "machine:" "peak:" "add " "256x256" " fwd " " bwd " " bwd_fresh " " fwdbwd " " engine_fwd " " engine_fwdbwd " \
            "overhead" "first" "1 cases timed, 0 mismatched"; do
    grep -q -- "$want" "$dir/out.txt" && ok || bad "output lacks '$want': $(cat "$dir/out.txt")"
done
grep -q '"name": "add/f32/256x256/fwd"' "$dir/a.json" && grep -q '"run_type": "iteration"' "$dir/a.json" \
    && grep -q '"time_unit": "ns"' "$dir/a.json" && grep -q '"benchmarks"' "$dir/a.json" && ok || bad "JSON: $(head -c 600 "$dir/a.json")"
[ "$(wc -l < "$dir/a.csv")" -eq 7 ] && head -n 1 "$dir/a.csv" | grep -q '^name,op,dtype,shape,threads,phase' \
    && ok || bad "CSV: $(cat "$dir/a.csv")"

# 2. Against its own JSON with a generous threshold: compared, no regression.
"$tg" bench --op add --shape 256x256 --time-budget 0.01 --no-probe --baseline "$dir/a.json" --threshold 1000 \
      > "$dir/b.txt" 2>&1 && ok || bad "baseline run failed: $(cat "$dir/b.txt")"
grep -q "6 compared, 0 regressions" "$dir/b.txt" && ok || bad "baseline: $(tail -3 "$dir/b.txt")"

# 3. An injected 3x faster baseline: every measurement is a regression, exit 1.
sed 's/"real_time": \([0-9.e+-]*\)/"real_time": 1/' "$dir/a.json" > "$dir/fast.json"
"$tg" bench --op add --shape 256x256 --time-budget 0.01 --no-probe --baseline "$dir/fast.json" > "$dir/c.txt" 2>&1
[ $? -eq 1 ] && grep -q "6 regressions" "$dir/c.txt" && grep -q "REGRESSION" "$dir/c.txt" && ok \
    || bad "regression not flagged: $(tail -4 "$dir/c.txt")"

# 4. Sample shapes, f64, a thread sweep; matmul at M,N,K.
"$tg" bench --op relu --op matmul --dtype f64 --threads 1,2 --time-budget 0.002 --no-probe --json "$dir/t.json" \
      > "$dir/d.txt" 2>&1 && ok || bad "sweep failed: $(cat "$dir/d.txt")"
grep -q '"name": "matmul/f64/v0:3x5,5x4/fwd/threads:2"' "$dir/t.json" && ok || bad "no threads:2 entry"
"$tg" bench --op matmul --shape 64x32x16 --time-budget 0.002 --no-probe > "$dir/e.txt" 2>&1 \
    && grep -q "64x32x16" "$dir/e.txt" && ok || bad "matmul shape: $(cat "$dir/e.txt")"

# 5. A user's op from a shared object, as gradcheck --load.
"$tg" bench --load "$plugin" --op plug_cube --time-budget 0.002 --no-probe > "$dir/f.txt" 2>&1 \
    && grep -q "plug_cube" "$dir/f.txt" && ok || bad "--load: $(cat "$dir/f.txt")"
"$tg" bench --load "$plugin" --list > "$dir/g.txt" 2>&1 && grep -q "plug_cube_bad" "$dir/g.txt" \
    && grep -q "sample_shape hook" "$dir/g.txt" && ok || bad "--list: $(cat "$dir/g.txt")"

# 6. Ops that cannot be timed, and usage errors.
"$tg" bench --op batch_norm --shape 8 --time-budget 0.002 --no-probe > "$dir/h.txt" 2>&1
[ $? -eq 1 ] && grep -q "a problem size is N,C" "$dir/h.txt" && ok || bad "hook: $(cat "$dir/h.txt")"
"$tg" bench --op layer_norm --shape 8x8 --time-budget 0.002 --no-probe > "$dir/h2.txt" 2>&1 \
    && grep -q "layer_norm .* 8x8 .* fwd" "$dir/h2.txt" && ok || bad "layer_norm hook: $(cat "$dir/h2.txt")"
"$tg" bench --op matmu > "$dir/i.txt" 2>&1
[ $? -eq 2 ] && grep -q "close names: matmul" "$dir/i.txt" && ok || bad "unknown op: $(cat "$dir/i.txt")"
"$tg" bench --shape 3x > /dev/null 2>&1; [ $? -eq 2 ] && ok || bad "bad shape accepted"
"$tg" bench --dtype f16 > /dev/null 2>&1; [ $? -eq 2 ] && ok || bad "bad dtype accepted"
"$tg" bench --threshold 0.2 > /dev/null 2>&1; [ $? -eq 2 ] && ok || bad "--threshold without --baseline accepted"
"$tg" bench --op add --variant 9 --no-probe > "$dir/j.txt" 2>&1; [ $? -eq 1 ] && grep -q "out of range" "$dir/j.txt" \
    && ok || bad "variant: $(cat "$dir/j.txt")"
"$tg" bench --op add --time-budget 0.002 --no-probe --baseline "$dir/missing.json" > "$dir/k.txt" 2>&1
[ $? -eq 1 ] && grep -q "cannot open" "$dir/k.txt" && ok || bad "missing baseline: $(cat "$dir/k.txt")"
"$tg" bench --help | grep -q -- "--time-budget" && ok || bad "--help"

echo "test_bench_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
