#!/bin/sh
# Install what tapegrad needs to build, test and train (Debian 12, as root).
# Idempotent: apt skips what is already there.
set -eu
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    gcc libc6-dev meson ninja-build pkg-config \
    libxsmm-dev libjansson-dev zlib1g-dev \
    python3 python3-numpy \
    dataset-fashion-mnist gnuplot-nox >/dev/null
