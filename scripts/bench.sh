#!/bin/sh
# Build, then run the tapegrad-vs-PyTorch training comparison
# (benchmarks/compare.py; arguments are passed on, e.g. --rounds 5).
set -eu
cd "$(dirname "$0")/.."
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec /usr/bin/python3 benchmarks/compare.py --build build "$@"
