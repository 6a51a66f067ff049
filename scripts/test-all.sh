#!/bin/sh
# Sets up and runs every test: installs missing Debian and npm packages,
# builds, runs unit and integration tests on the normal build, then again on
# an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh test
(cd tests && npm ci --no-audit --no-fund --loglevel=error)

[ -f build/build.ninja ] || meson setup build -Dwerror=true
ninja -C build
scripts/test.sh build

[ -f build-asan/build.ninja ] || meson setup build-asan -Dwerror=true \
  -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan
scripts/test.sh build-asan

# Fuzz smoke run: every target replays its seed corpus and fuzzes a few
# seconds (long runs: scripts/fuzz.sh TARGET SECONDS, see docs/security.md).
echo "== fuzz smoke"
mkdir -p build-fuzz-smoke
FUZZ_DIR=build-fuzz-smoke scripts/fuzz.sh all "${FUZZ_SMOKE_SECONDS:-3}" > build-fuzz-smoke/smoke.log 2>&1 ||
  { tail -50 build-fuzz-smoke/smoke.log; exit 1; }
grep -E '^== fuzz_|stat::number_of_executed_units' build-fuzz-smoke/smoke.log
echo "== all tests passed"
