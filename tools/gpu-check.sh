#!/bin/sh
# The GPU check of the CUDA backend, for a machine with an NVIDIA GPU (docs/CUDA.md): builds the
# library, the plugin, the tests and the benches, runs the CUDA parity tests (failing, not
# skipping, when the GPU is not usable), compute-sanitizer's memcheck over them, the whole suite
# and the benches (each step under a time cap; about 4 minutes in all on 16 cores), and writes six
# files under $OUT:
#   summary.txt build.log parity.log tests.log memcheck.log bench.log
#
#   tools/gpu-check.sh               on the GPU machine, from the repository root
#   tools/gpu-check.sh --fetch-debs  on a Debian 12 build machine: download the .debs of the
#                                    build dependencies into $ONEREC_DEBS (default .deps)
#
# Dependencies the GPU machine lacks (OpenBLAS, HDF5, cmocka and what they link) come as .debs in
# $ONEREC_DEBS, unpacked with dpkg -x into a private root (never into /). Environment: OUT (default
# /tmp/onerec-gpu-check), BUILD (build/gpu), MEMCHECK=0 skips compute-sanitizer, BENCH=0 the
# benches.
set -u
cd "$(dirname "$0")/.." || exit 1
DEBS=${ONEREC_DEBS:-.deps}
PKGS="libopenblas-pthread-dev libopenblas0-pthread libgfortran5 libquadmath0 libhdf5-dev
  libhdf5-103-1 libsz2 libaec0 libcurl4 libbrotli1 libssl3 libffi8 libgmp10 libgnutls30
  libgssapi-krb5-2 libhogweed6 libidn2-0 libk5crypto3 libkrb5-3 libkrb5support0 libldap-2.5-0
  libnettle8 libnghttp2-14 libp11-kit0 libpsl5 librtmp1 libsasl2-2 libssh2-1 libtasn1-6
  libunistring2 libzstd1 libkeyutils1 libcom-err2 libcmocka0 libcmocka-dev"

if [ "${1:-}" = --fetch-debs ]; then
  # shellcheck disable=SC2086 # one word per package
  mkdir -p "$DEBS" && cd "$DEBS" && exec apt-get download $PKGS
fi

OUT=${OUT:-/tmp/onerec-gpu-check}
BUILD=${BUILD:-build/gpu}
mkdir -p "$OUT"
S=$OUT/summary.txt
: >"$S"
fail=0
say() { echo "$*" | tee -a "$S"; }
step() { # step NAME LOG TIMEOUT_S COMMAND...: runs it, logs it, records pass/fail
  name=$1 log=$2 limit=$3
  shift 3
  t0=$(date +%s)
  timeout "$limit" "$@" >>"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then say "ok    $name ($(($(date +%s) - t0)) s)"; else
    say "FAIL  $name: exit $rc after $(($(date +%s) - t0)) s (see $(basename "$log"))"
    fail=1
  fi
  return $rc
}

say "onerec gpu-check $(date -u +%FT%TZ) commit $(git rev-parse --short HEAD 2>/dev/null)"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
  >>"$S" 2>&1 || say "nvidia-smi failed: no GPU visible"

# nvcc: the Makefile's /usr/local/cuda, else the one on PATH
set --
CUDA=/usr/local/cuda
if [ ! -x $CUDA/bin/nvcc ] && command -v nvcc >/dev/null; then
  CUDA=$(dirname "$(dirname "$(command -v nvcc)")")
  set -- CUDA_HOME="$CUDA"
fi
say "nvcc: $("$CUDA/bin/nvcc" --version 2>/dev/null | tail -1) ($CUDA)"

# OpenBLAS, HDF5, cmocka: installed, or carried as .debs
if ! pkg-config --exists openblas hdf5 cmocka 2>/dev/null; then
  if ! ls "$DEBS"/*.deb >/dev/null 2>&1; then
    say "FAIL  openblas/hdf5/cmocka are not installed and $DEBS holds no .debs (docs/CUDA.md)"
    exit 1
  fi
  case $DEBS in /*) R=$DEBS/root ;; *) R=$(pwd)/$DEBS/root ;; esac
  rm -rf "$R" && mkdir -p "$R"
  for f in "$DEBS"/*.deb; do dpkg -x "$f" "$R" || say "dpkg -x $f failed"; done
  L=$R/usr/lib/x86_64-linux-gnu
  LD_LIBRARY_PATH="$L:$L/openblas-pthread:$L/hdf5/serial${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export LD_LIBRARY_PATH
  I=$R/usr/include
  set -- "$@" TEST_LIBS="-L$L -lcmocka" \
    DEP_CFLAGS="-I$I/x86_64-linux-gnu/openblas-pthread -I$I/hdf5/serial -I$I" \
    DEP_LIBS="-L$L/openblas-pthread -lopenblas -L$L/hdf5/serial -lhdf5 -ldl -lpthread -lm"
  say "deps: $(find "$DEBS" -maxdepth 1 -name '*.deb' | wc -l) .debs unpacked into $R"
fi

J=$(nproc)
step build "$OUT/build.log" 300 make -j"$J" BUILD="$BUILD" "$@" all cuda \
  "$BUILD/tests/test_cuda_parity" || { say "build failed: nothing to run"; exit 1; }
step "build benches" "$OUT/build.log" 120 make -j"$J" BUILD="$BUILD" "$@" bench
exports=$(nm -D --defined-only "$BUILD"/libonerec-cuda.so.* | awk '{print $3}' | tr '\n' ' ')
say "plugin exports: $exports"

export ONEREC_BACKEND_PATH="$BUILD"
# Without a usable GPU the parity tests must fail here, not skip.
step parity "$OUT/parity.log" 120 env ONEREC_REQUIRE_CUDA=1 "$BUILD/tests/test_cuda_parity"
grep -E "parity:|NMSE|FAILED|ERROR" "$OUT/parity.log" | head -20 >>"$S"

if [ "${MEMCHECK:-1}" != 0 ] && command -v compute-sanitizer >/dev/null; then
  step "compute-sanitizer memcheck" "$OUT/memcheck.log" 240 env ONEREC_REQUIRE_CUDA=1 \
    compute-sanitizer --tool memcheck --error-exitcode 1 "$BUILD/tests/test_cuda_parity"
  grep -E "ERROR SUMMARY" "$OUT/memcheck.log" | tail -1 >>"$S"
fi

step "test suite" "$OUT/tests.log" 240 make -j"$J" BUILD="$BUILD" "$@" test
grep -E "FAILED|TESTS FAILED" "$OUT/tests.log" | head -10 >>"$S"

if [ "${BENCH:-1}" != 0 ]; then
  for b in "$BUILD"/bench/*; do
    [ -x "$b" ] || continue
    echo "== $b" >>"$OUT/bench.log"
    step "bench $(basename "$b")" "$OUT/bench.log" 120 "$b" --json --quick
  done
fi

if [ $fail -eq 0 ]; then say "gpu-check: all passed"; else say "gpu-check: FAILED"; fi
exit $fail
