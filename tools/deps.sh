#!/usr/bin/env bash
# Installs the Debian packages libonerec builds and tests with (the one list; .ci/run uses it).
set -euo pipefail
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y build-essential pkg-config libopenblas-dev libhdf5-dev libcmocka-dev \
  abigail-tools
