#!/bin/sh
# Every public recording function (tg_tensor *tg_X(tg_ctx *ctx, ...) in an
# ops header, and tg_model_forward) has its call-site macro in tg_sites.h.
#   $1 = source root
set -u
src=$1
missing=0
for f in $(grep -ohE '^tg_tensor \*tg_[a-z_0-9]+ *\(tg_ctx \*ctx' "$src"/ops/tg_*.h | sed -E 's/tg_tensor \*//; s/ *\(.*//' | sort -u) tg_model_forward; do
    grep -q "^#define $f(ctx, ...) TG_AT_($f, ctx, __VA_ARGS__)\$" "$src/ops/tg_sites.h" || { echo "no call-site macro for $f"; missing=$((missing + 1)); }
done
echo "test_sites: $((missing == 0)) passed, $((missing > 0)) failed"
[ $missing -eq 0 ]
