#!/bin/sh
# Install the build into a scratch root and build a user program outside the
# tree with nothing but gcc and pkg-config, as the README tells users to.
#   $1 = meson build dir, $2 = source dir
set -eu
build=$1; src=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
meson install -C "$build" --destdir "$root" --no-rebuild --quiet >/dev/null
pc=$(find "$root" -name tapegrad.pc | head -n 1)
[ -n "$pc" ] || { echo "tapegrad.pc not installed"; exit 1; }
libdir=$(dirname "$(find "$root" -name 'libtapegrad.so' | head -n 1)")
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$root"
cp "$src/tests/install_prog.c" "$root/prog.c"
cd "$root"
echo "gcc prog.c $(pkg-config --cflags --libs tapegrad)"
gcc -std=c11 -o prog prog.c $(pkg-config --cflags --libs tapegrad)
LD_LIBRARY_PATH="$libdir" ${TG_TEST_WRAPPER:-} ./prog   # valgrind under --setup=valgrind
