#!/usr/bin/env bash
# bench/persist_profile.sh: scenario 5 (or 2) at one fixed rate, huddle's
# loop thread and store writer thread measured apart (docs/performance.md,
# "Persistence", third pass).
#
#   bench/persist_profile.sh MODE RATE ROOM_SIZE [WRAP] [SYNC] [SECONDS]
#     MODE  durable | relaxed | off (--chat-durability; off = scenario 2)
#     WRAP  none      CPU per thread (/proc, user and system ticks)
#           callgrind instructions per thread (--separate-threads=yes; zeroed
#                     once every client is in, dumped at the end)
#           pstat     perf stat --per-thread: syscalls, context switches, task-clock
#           strace    strace -c -f over the whole run (strace.txt: syscalls by name)
#           perf      perf record -g --per-thread over the measured window (perf.data;
#                     perf report -i OUT/perf.data --sort pid,dso,sym)
#     SYNC  full | normal (--store-sync)
# Prints the result directory: lg.txt (loadgen), health0/1.json (the store's
# committed records and batches before and after), cpu0/1.txt, cg.*, pstat.txt.
# PERSIST_DATA_PARENT puts the data directory (the SQLite file) under another
# directory (/dev/shm: no device flush, to tell the disk's share from huddle's).
# PERSIST_DATABASE_URL=postgres://... stores in PostgreSQL instead of SQLite
# (scripts/with-postgres.sh sets HUDDLE_TEST_PG_URL for a throwaway cluster).
# huddle runs on CPU 0 and the load generator on CPU 1 (as bench/run.sh), on
# a random port in 20000-59999. HUDDLE_BIN picks the binary (build/huddle).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BIN=${HUDDLE_BIN:-$ROOT/build/huddle}
MODE=$1; RATE=$2; ROOM=$3; WRAP=${4:-none}; SYNC=${5:-full}; DUR=${6:-5}
"$HERE/build.sh" "$HERE/build/loadgen" >/dev/null
PORT=$((20000 + RANDOM % 40000))
OUT=$(mktemp -d /tmp/huddle-persist-profile.XXXXXX)
DATA=$(mktemp -d "${PERSIST_DATA_PARENT:-/tmp}/huddle-persist-data.XXXXXX")
SECRET=bench-secret-bench-secret-bench-secret-0123
W=(taskset -c 0)
[ "$WRAP" = callgrind ] && W+=(valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.%p")
[ "$WRAP" = strace ] && W+=(strace -c -f -o "$OUT/strace.txt")
"${W[@]}" "$BIN" --listen "127.0.0.1:$PORT" --data-dir "$DATA" --jwt-secret "$SECRET" \
  --rate-websocket-message 0/1m --rate-chat-message 0/1m --rate-room-create 0/1m \
  --max-connections-per-ip 1000000 --max-connections 1000000 --log-level warn \
  --chat-durability "$MODE" --store-sync "$SYNC" ${PERSIST_DATABASE_URL:+--database-url "$PERSIST_DATABASE_URL"} \
  > "$OUT/server.log" 2>&1 &
SP=$!
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
threads() { for t in /proc/$SP/task/*; do echo "$(basename "$t") $(cut -d' ' -f2,14,15 "$t/stat")"; done; }
HOOKS=()
case $WRAP in
  callgrind) HOOKS=(--hook-start "callgrind_control -z $SP >/dev/null" --hook-end "callgrind_control -d $SP >/dev/null") ;;
  pstat) HOOKS=(--hook-start "perf stat --per-thread -e raw_syscalls:sys_enter,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_pwrite64,syscalls:sys_enter_fdatasync,context-switches,task-clock -p $SP -o $OUT/pstat.txt >/dev/null 2>&1 & echo \$! > $OUT/.pp"
                --hook-end "kill -INT \$(cat $OUT/.pp); while kill -0 \$(cat $OUT/.pp) 2>/dev/null; do sleep 0.2; done") ;;
  perf) HOOKS=(--hook-start "perf record -g -p $SP -o $OUT/perf.data >/dev/null 2>&1 & echo \$! > $OUT/.pp"
              --hook-end "kill -INT \$(cat $OUT/.pp); while kill -0 \$(cat $OUT/.pp) 2>/dev/null; do sleep 0.2; done") ;;
  sched) HOOKS=(--hook-start "perf sched record -o $OUT/sched.data -- sleep 4 >/dev/null 2>&1 &") ;;
  none) threads > "$OUT/cpu0.txt"
        HOOKS=(--hook-end "for t in /proc/$SP/task/*; do echo \$(basename \$t) \$(cut -d' ' -f2,14,15 \$t/stat); done > $OUT/cpu1.txt") ;;
esac
curl -s "http://127.0.0.1:$PORT/webrtc/health" > "$OUT/health0.json"
taskset -c 1 "$HERE/build/loadgen" --port "$PORT" --secret "$SECRET" --server-pid "$SP" --scenario fanout \
  --conns 500 --room-size "$ROOM" --msg-bytes 200 --rates "$RATE" --duration "$DUR" --warmup 2 --drain 10 \
  --keepalive 0 --retry-noisy 0 --no-stop --json "$OUT/lg.json" "${HOOKS[@]}" > "$OUT/lg.txt" 2> "$OUT/lg.err"
curl -s "http://127.0.0.1:$PORT/webrtc/health" > "$OUT/health1.json"
# Under strace, huddle is strace's child: stop huddle and strace ends with it.
HP=$SP
[ "$WRAP" = strace ] && HP=$(pgrep -P "$SP" | head -1)
kill -TERM "$HP"; wait "$SP" 2>/dev/null
rm -rf "$DATA"
echo "$OUT"
