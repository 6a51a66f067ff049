#!/bin/sh
# Builds bench/loadgen with a plain compiler line (no meson needed).
# Usage: bench/build.sh [output]   (default: bench/build/loadgen)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/build/loadgen}
mkdir -p "$(dirname "$out")"
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow \
  -o "$out" "$here/loadgen.c" "$here/lg_conn.c" "$here/lg_msg.c" "$here/lg_hist.c" \
  -luv -lwslay -lcrypto -lm
echo "$out"
