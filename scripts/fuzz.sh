#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang and
# ASan + UBSan, and runs one or all of them for a given time.
#
# Usage: scripts/fuzz.sh [TARGET|all] [SECONDS]
#   TARGET: ws, http, envelope, sdp, token, filecheck, jscan (default: all)
#   SECONDS: run time per target (default 60; 0: build only)
# Environment: FUZZ_JOBS (parallel compiles, default 2), FUZZ_DIR (build
# directory, default build-fuzz). Each target's corpus grows in
# $FUZZ_DIR/corpus/TARGET, seeded from tests/fuzz/corpus/TARGET; crashes
# land in $FUZZ_DIR/artifacts/ and the script exits non-zero. A crash
# becomes a regression test: add its input to the seed corpus (the smoke run
# replays every seed) and a unit or integration test for the fixed code.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=${1:-all}
secs=${2:-60}
out=${FUZZ_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-2}
targets="ws http envelope sdp token filecheck jscan"
[ "$target" = all ] || targets=$target

CC=${CC_FUZZ:-clang}
PKGS="libuv openssl jansson libjwt sqlite3 hiredis"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -include $out/version.h -Isrc -fno-omit-frame-pointer \
 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lhttp_parser -lmagic -lm -lpthread"

mkdir -p "$out/obj" "$out/artifacts"
[ -f "$out/version.h" ] || { echo '#define HUDDLE_VERSION "fuzz"' > "$out/version.h.$$" && mv "$out/version.h.$$" "$out/version.h"; }
# The server's sources, main.c excepted, compiled once (only when changed).
srcs=$(sed -n "s/^ *'\(src\/[^']*\.c\)',*$/\1/p" meson.build)
for s in $srcs; do
  o="$out/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')"
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ -n "$(find src -name '*.h' -newer "$o" | head -1)" ]; then
    echo "$CC $CFLAGS -c $s -o $o"
  fi
done | xargs -r -P "$jobs" -I{} sh -c '{}'
objs=$(for s in $srcs; do echo "$out/obj/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')"; done)

WRAP_WS="-Wl,--wrap=conn_write,--wrap=conn_write_copy,--wrap=conn_close,--wrap=conn_end,--wrap=conn_timer"

status=0
for t in $targets; do
  bin="$out/fuzz_$t"
  extra=""
  [ "$t" = ws ] && extra=$WRAP_WS
  if [ ! -f "$bin" ] || [ "tests/fuzz/fuzz_$t.c" -nt "$bin" ] || [ -n "$(find "$out/obj" -newer "$bin" | head -1)" ]; then
    $CC $CFLAGS -fsanitize=fuzzer "tests/fuzz/fuzz_$t.c" $objs $extra $LIBS -o "$bin"
  fi
  [ "$secs" = 0 ] && continue
  mkdir -p "$out/corpus/$t"
  echo "== fuzz_$t for ${secs}s"
  if ! ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
      "$bin" -max_total_time="$secs" -max_len=8192 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$out/artifacts/${t}-" "$out/corpus/$t" "tests/fuzz/corpus/$t"; then
    echo "fuzz_$t: FINDING (see $out/artifacts/)" >&2
    status=1
  fi
done
exit $status
