#!/bin/sh
# The default suite under valgrind memcheck, in a portable debug build
# (build-vg/; see README.md, Testing). Arguments go to `meson test`, e.g. a
# test name to run just that one. About 45 minutes on 2 cores.
set -eu
cd "$(dirname "$0")/.."
[ -f build-vg/build.ninja ] || meson setup build-vg -Dnative=false -Dbuildtype=debug >/dev/null
ninja -C build-vg >/dev/null
exec meson test -C build-vg --setup=valgrind --num-processes "${JOBS:-2}" "$@"
