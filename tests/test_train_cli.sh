#!/bin/sh
# `tapegrad train` / `tapegrad eval` end to end on the Fashion-MNIST that
# Debian's dataset-fashion-mnist ships: a short run learns, resuming from a
# checkpoint continues bit-identically, eval agrees with train, CSV and PNG
# outputs are written, and bad input is refused with a clear message.
#   $1 = the tapegrad program
# Every run goes through $TG_TEST_WRAPPER when set (meson test --setup=valgrind).
set -u
tg_exe=$1
tg() { ${TG_TEST_WRAPPER:-} "$tg_exe" "$@"; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
pass=0; fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# 1. One epoch on a 10 000-image subset reaches at least 0.80.
tg train --limit 10000 --epochs 1 --batch 32 --csv "$dir/run.csv" --plot "$dir/run.png" \
      --checkpoint "$dir/run.ckpt" > "$dir/out.txt" 2>&1 || bad "short run failed: $(tail -3 "$dir/out.txt")"
last=$(tail -n 1 "$dir/out.txt")
acc=${last#test_accuracy=}
case "$last" in test_accuracy=0.[0-9][0-9][0-9][0-9]) ok ;; *) bad "last line is '$last'" ;; esac
awk "BEGIN { exit !($acc >= 0.80) }" && ok || bad "accuracy $acc < 0.80"
[ "$(wc -l < "$dir/run.csv")" -eq 2 ] && head -n 1 "$dir/run.csv" | grep -q '^epoch,train_loss,test_loss,test_accuracy' \
    && ok || bad "CSV: $(cat "$dir/run.csv")"
head -c 8 "$dir/run.png" | od -An -c | grep -q 'P   N   G' && ok || bad "no PNG chart"

# 2. eval on the checkpoint reproduces train's figure.
tg eval --checkpoint "$dir/run.ckpt" > "$dir/eval.txt" 2>&1 || bad "eval failed: $(cat "$dir/eval.txt")"
[ "$(tail -n 1 "$dir/eval.txt")" = "$last" ] && ok || bad "eval says '$(tail -n 1 "$dir/eval.txt")', train said '$last'"

# 3. Resume after epoch 1 == an uninterrupted 2-epoch run, to the byte.
#    (dropout and batch norm make the RNG and running statistics matter.)
args="--limit 3000 --test-limit 1000 --arch 784-64relu_bn_d0.2-10 --seed 7 --quiet"
tg train $args --epochs 2 --checkpoint "$dir/a.ckpt" > "$dir/a.txt" 2>&1 || bad "run a failed"
tg train $args --epochs 1 --checkpoint "$dir/b.ckpt" > /dev/null 2>&1 || bad "run b failed"
tg train $args --epochs 2 --resume "$dir/b.ckpt" --checkpoint "$dir/b.ckpt" > "$dir/b.txt" 2>&1 || bad "resume failed: $(cat "$dir/b.txt")"
cmp -s "$dir/a.ckpt" "$dir/b.ckpt" && ok || bad "resumed checkpoint differs from the uninterrupted one"
[ "$(tail -n 1 "$dir/a.txt")" = "$(tail -n 1 "$dir/b.txt")" ] && ok || bad "resumed accuracy differs"

# 3b. Threads: a run with --threads 2 is bit-identical when repeated, and to
#     the same run on one thread (every threaded kernel splits work so that
#     each value is computed as the serial code does). The layer is wide
#     enough for GEMM, elementwise ops, batch norm and Adam to use threads.
targs="--limit 2000 --test-limit 500 --arch 784-512relu_bn_d0.2-10 --seed 3 --quiet --epochs 2"
tg train $targs --threads 2 --checkpoint "$dir/t2a.ckpt" > "$dir/t2a.txt" 2>&1 || bad "threads run failed: $(cat "$dir/t2a.txt")"
tg train $targs --threads 2 --checkpoint "$dir/t2b.ckpt" > /dev/null 2>&1 || bad "threads run 2 failed"
tg train $targs --threads 1 --checkpoint "$dir/t1.ckpt" > /dev/null 2>&1 || bad "one-thread run failed"
cmp -s "$dir/t2a.ckpt" "$dir/t2b.ckpt" && ok || bad "two --threads 2 runs differ"
cmp -s "$dir/t2a.ckpt" "$dir/t1.ckpt" && ok || bad "--threads 2 differs from --threads 1"

# 4. A resumed run must be the same run.
tg train $args --seed 8 --epochs 2 --resume "$dir/b.ckpt" > "$dir/c.txt" 2>&1
[ $? -eq 1 ] && grep -q "seed is '7', this run's is '8'" "$dir/c.txt" && ok || bad "seed mismatch not refused: $(cat "$dir/c.txt")"

# 5. Bad input: clear messages, no crash.
tg train --data "$dir/nowhere" > "$dir/d.txt" 2>&1
[ $? -eq 1 ] && grep -q "nowhere" "$dir/d.txt" && ok || bad "missing data dir: $(cat "$dir/d.txt")"
tg train --arch 784-12foo-10 > "$dir/e.txt" 2>&1
[ $? -eq 1 ] && grep -q "unknown activation" "$dir/e.txt" && ok || bad "bad spec: $(cat "$dir/e.txt")"
tg train --lr abc > "$dir/f.txt" 2>&1
[ $? -eq 2 ] && grep -q "bad value for --lr" "$dir/f.txt" && ok || bad "bad flag: $(cat "$dir/f.txt")"
printf 'not a checkpoint' > "$dir/junk.ckpt"
tg eval --checkpoint "$dir/junk.ckpt" > "$dir/g.txt" 2>&1
[ $? -eq 1 ] && grep -q "junk.ckpt" "$dir/g.txt" && ok || bad "junk checkpoint: $(cat "$dir/g.txt")"

# 6. --detect-anomaly names the op where training blows up.
tg train --limit 2000 --epochs 1 --optim sgd --lr 1e6 --detect-anomaly --quiet > "$dir/h.txt" 2>&1
[ $? -eq 1 ] && grep -q "anomaly: .* produced" "$dir/h.txt" && ok || bad "anomaly: $(cat "$dir/h.txt")"

echo "test_train_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
