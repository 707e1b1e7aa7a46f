#!/bin/sh
# Checks that a shared library exports exactly the symbols its version script lists, all with
# the onerec_ prefix (curl's tests 1119/1167 idea). Usage: check-symbols.sh LIB MAP
set -eu
lib=$1 map=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {sub(/@.*/, "", $3); print $3}' | sort -u >"$tmp/exported"
sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);[[:space:]]*$/\1/p' "$map" | sort -u >"$tmp/listed"
status=0
if grep -v '^onerec_' "$tmp/exported" >"$tmp/bad"; then
  echo "check-symbols: exported symbols without the onerec_ prefix:"; cat "$tmp/bad"; status=1
fi
if ! diff -u "$tmp/listed" "$tmp/exported" >"$tmp/diff"; then
  echo "check-symbols: exports differ from $map (- listed only, + exported only):"; cat "$tmp/diff"; status=1
fi
if ldd "$lib" | grep -Ei 'cuda|cublas|cudnn|nccl' >"$tmp/cuda"; then
  echo "check-symbols: $lib links CUDA libraries:"; cat "$tmp/cuda"; status=1
fi
[ $status -eq 0 ] && echo "check-symbols: $(wc -l <"$tmp/exported") exported symbols, all onerec_ and all in $map; no CUDA linked"
exit $status
