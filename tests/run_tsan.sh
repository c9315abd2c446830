#!/bin/sh
# ThreadSanitizer run. Builds tapegrad in build-tsan with -fsanitize=thread
# and without OpenMP (libgomp is not instrumented, so its threads would only
# produce noise), then runs tests/test_threads under meson: two training
# contexts on two threads from a cold start (libxsmm's initialisation and
# the first dispatch of every GEMM kernel under contention), and two threads
# saving one checkpoint path. TSAN_OPTIONS (tests/meson.build) halt on the
# first report, which fails the test. No suppressions are needed.
#   tests/run_tsan.sh          the threads test only (about half a minute cold)
#   tests/run_tsan.sh --all    every test under TSan (a few minutes)
# scripts/test.sh runs the first form. The full log is in
# build-tsan/meson-logs/testlog.txt.
# NOTE: gcc 12's TSan runtime dies with "unexpected memory mapping" on
# kernels with 32 bits of mmap randomisation (vm.mmap_rnd_bits); there, run
# it as `setarch "$(uname -m)" -R tests/run_tsan.sh`.
set -u
cd "$(dirname "$0")/.."
dir=build-tsan
if [ ! -f "$dir/build.ninja" ]; then
    mkdir -p "$dir"
    meson setup "$dir" -Db_sanitize=thread -Db_lundef=false -Dopenmp=disabled \
        -Dbuildtype=debug >"$dir/setup.log" 2>&1 || { cat "$dir/setup.log"; exit 1; }
fi
rm -f "$dir/meson-logs/testlog.json"      # no stale results if the build fails
if [ "${1:-}" = "--all" ]; then
    ninja -C "$dir" >"$dir/build.log" 2>&1 || { tail -50 "$dir/build.log"; exit 1; }
    exec meson test -C "$dir" --no-rebuild --print-errorlogs \
        --num-processes "$(nproc 2>/dev/null || echo 2)"
fi
ninja -C "$dir" tests/test_threads >"$dir/build.log" 2>&1 || { tail -50 "$dir/build.log"; exit 1; }
exec meson test -C "$dir" --no-rebuild --print-errorlogs threads
