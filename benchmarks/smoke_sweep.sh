#!/bin/sh
# Smoke test of bench_sweep: tiny sizes at 1 and 2 threads, the JSON keys,
# and the gradient it reports (the sum of dL/dx after one sweep) against the
# same sum computed here in double from the closed form:
#   L = sum(sigmoid(relu(3 tanh x))), dL/dx = s(1 - s) [3t > 0] 3 (1 - t^2),
#   t = tanh x, s = sigmoid(3t), x_i = ((7919 i) mod 1001 - 500) * 0.004f.
# No timing checks.
set -u
exe=$1
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
fail=0
for t in 1 2; do
    if ! "$exe" --threads $t --seconds 0.05 --json "$dir/t$t.json" 40 100 >"$dir/out$t.txt" 2>&1; then
        cat "$dir/out$t.txt"; echo "bench_sweep --threads $t failed"; exit 1
    fi
    cat "$dir/out$t.txt"
done
python3 - "$dir" <<'PY' || fail=1
import json, math, struct, sys
d = sys.argv[1]
bad = 0
for n in (40, 100):
    want = 0.0
    for i in range(n * n):
        x = struct.unpack("f", struct.pack("f", ((i * 7919) % 1001 - 500) * 0.004))[0]
        t = math.tanh(x)
        s = 1 / (1 + math.exp(-3 * t))
        want += s * (1 - s) * 3 * (1 - t * t) if t > 0 else 0.0
    for th in (1, 2):
        r = json.load(open(f"{d}/t{th}.json"))["results"].get(f"sweep/n{n}/t{th}")
        if not r or not all(k in r for k in ("ms", "min_ms", "fwd_ms", "bwd_ms", "min_bwd_ms")):
            print(f"missing in the JSON: sweep/n{n}/t{th}"); bad = 1; continue
        if abs(r["checksum"] - want) > 1e-4 * abs(want):
            print(f"n {n}, {th} thread(s): sum of dL/dx {r['checksum']:.9g}, closed form {want:.9g}"); bad = 1
sys.exit(bad)
PY
[ $fail -eq 0 ] && echo "bench_sweep smoke: ok"
exit $fail
