#!/bin/sh
# Installs into a scratch DESTDIR, then builds examples/embed/minimal.c against the installed copy
# with pkg-config and runs it: what a user does after `make install`. Usage: check-install.sh BUILD
set -eu
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
make --no-print-directory -s install DESTDIR="$dest" PREFIX=/usr/local BUILD="$build" >/dev/null
for f in include/onerec/onerec.h lib/libonerec.so lib/libonerec.a lib/pkgconfig/onerec.pc bin/onerec; do
  [ -e "$dest/usr/local/$f" ] || { echo "check-install: $f not installed"; exit 1; }
done
export PKG_CONFIG_SYSROOT_DIR="$dest" PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig"
cc -std=c11 -o "$dest/minimal" examples/embed/minimal.c $(pkg-config --cflags --libs onerec)
out=$(LD_LIBRARY_PATH="$dest/usr/local/lib" "$dest/minimal")
echo "$out" | grep -q "libonerec $(sed -n 's/^#define ONEREC_VERSION_MAJOR //p' include/onerec/version.h)\." ||
  { echo "check-install: unexpected output: $out"; exit 1; }
echo "check-install: installed copy builds and runs with pkg-config: $(echo "$out" | head -1)"
