#!/bin/sh
# Compares the built library's ABI with the committed baseline (abidiff). Added functions are
# allowed (a minor release); anything incompatible fails. Usage: check-abi.sh BASELINE LIB HDRDIR
set -eu
base=$1 lib=$2 hdr=$3
if ! command -v abidiff >/dev/null 2>&1; then
  echo "check-abi: abidiff not found (Debian package abigail-tools)"; exit 1
fi
set +e
abidiff --hd2 "$hdr" --no-added-syms "$base" "$lib" >abidiff.out 2>&1
rc=$?
set -e
# abidiff exit status is a bit field: 1 error, 2 usage error, 4 ABI change, 8 incompatible change.
if [ $((rc & 3)) -ne 0 ]; then
  cat abidiff.out; rm -f abidiff.out; echo "check-abi: abidiff failed to run ($rc)"; exit 1
fi
if [ $((rc & 8)) -ne 0 ]; then
  cat abidiff.out; rm -f abidiff.out
  echo "check-abi: INCOMPATIBLE change against $base; bump the major version or revert"; exit 1
fi
if [ $((rc & 4)) -ne 0 ]; then
  cat abidiff.out; rm -f abidiff.out
  echo "check-abi: the ABI changed against $base; if intended (and compatible), run 'make update-abi'"
  echo "           and describe the change in CHANGELOG.md"; exit 1
fi
rm -f abidiff.out
echo "check-abi: ABI matches $base"
