#!/bin/sh
# Sets up and runs every test: installs missing Debian and npm packages,
# builds, runs unit, SDK and integration tests on the normal build, the
# browser tests (headless Chromium) on it once, then unit, SDK and integration
# tests again on an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh test
(cd tests && npm ci --no-audit --no-fund --loglevel=error)

[ -f build/build.ninja ] || meson setup build -Dwerror=true
ninja -C build
scripts/test.sh build

# Browser tests once, on the normal build: a sanitizer build adds minutes of
# CPU under three Chromium pages without testing anything the browser sees.
echo "== browser tests (build)"
# One file at a time: each runs up to three pages of real media.
for f in tests/e2e/*.test.js; do
  HUDDLE_E2E_REQUIRED=1 HUDDLE_BIN="$root/build/huddle" timeout -k 10 300 node --test "$f"
done

[ -f build-asan/build.ninja ] || meson setup build-asan -Dwerror=true \
  -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
ninja -C build-asan
scripts/test.sh build-asan
echo "== all tests passed"
