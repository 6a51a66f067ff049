#!/bin/sh
# Runs the unit tests (meson/cmocka) and the integration tests (node:test
# against the real binary) for one build directory.
# Usage: scripts/test.sh BUILD_DIR
set -eu
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Sanitizer builds: any leak or undefined behaviour fails the run.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=23}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:exitcode=24}"

echo "== unit tests ($build)"
meson test -C "$build" --suite unit --print-errorlogs

echo "== SDK tests ($build)"
HUDDLE_BIN="$root/$build/huddle" node --test tests/sdk/*.test.mjs

echo "== integration tests ($build)"
HUDDLE_BIN="$root/$build/huddle" node --test tests/integration/*.test.js
