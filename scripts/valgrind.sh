#!/bin/sh
# Runs the integration suite (or the test files given) with every huddle the
# tests start running under valgrind memcheck, then reports what memcheck
# found. The goal is zero reports: any memcheck error or definite/indirect
# leak makes the server exit 25 (the tests' exit-code check fails) and is
# listed at the end.
#
# Usage: scripts/valgrind.sh [BUILD_DIR] [TEST_FILE...]
#   BUILD_DIR: a normal (non-sanitizer) build, default build
#   TEST_FILE: default tests/integration/*.test.js
# Environment: VALGRIND_LOGS (where the per-process logs go; default a
# fresh temp dir), VALGRIND_TEST_CONCURRENCY (node --test files at once,
# default 2).
# Slow: memcheck runs the server 20-50 times slower; tests that measure
# memory (RSS) or depend on tight timeouts can fail for that reason alone,
# which the summary tells apart from memcheck reports.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${1:-build}
[ $# -gt 0 ] && shift
files="$*"
[ -n "$files" ] || files=$(ls tests/integration/*.test.js)
logs=${VALGRIND_LOGS:-$(mktemp -d /tmp/huddle-valgrind.XXXXXX)}
mkdir -p "$logs"

wrapper="$logs/huddle-under-valgrind"
cat > "$wrapper" <<WRAP
#!/bin/sh
exec valgrind --tool=memcheck --error-exitcode=25 --leak-check=full \\
  --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect \\
  --track-origins=yes --num-callers=30 --log-file="$logs/vg.%p.log" \\
  "$root/$build/huddle" "\$@"
WRAP
chmod +x "$wrapper"

echo "== integration tests under valgrind ($build); logs in $logs"
# shellcheck disable=SC2086
conc=""
node --help 2>/dev/null | grep -q -- --test-concurrency && conc="--test-concurrency=${VALGRIND_TEST_CONCURRENCY:-2}"
HUDDLE_BIN="$wrapper" node --test $conc $files > "$logs/node-test.log" 2>&1
rc=$?
grep -E '^# (tests|pass|fail)' "$logs/node-test.log"
grep -E '^not ok' "$logs/node-test.log" | sed 's/^/  test: /'

runs=$(ls "$logs"/vg.*.log 2>/dev/null | wc -l)
bad=$(grep -l 'ERROR SUMMARY: [1-9]' "$logs"/vg.*.log 2>/dev/null)
cut=$(grep -L 'ERROR SUMMARY' "$logs"/vg.*.log 2>/dev/null)
echo "== memcheck: $runs server processes"
[ -n "$cut" ] && echo "killed before memcheck could summarize (SIGKILL after a hang): $(echo $cut | wc -w)"
if [ -n "$bad" ]; then
  echo "memcheck reports in:"
  for f in $bad; do
    echo "  $f: $(grep 'ERROR SUMMARY' "$f")"
  done
  exit 1
fi
echo "memcheck: 0 errors, 0 definite or indirect leaks in every process"
exit $rc
