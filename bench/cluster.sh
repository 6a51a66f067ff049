#!/usr/bin/env bash
# bench/cluster.sh: one room over three instances sharing Redis against the
# same room on one instance, in the same run (issue 11, ADR 0006). Starts a
# throwaway redis-server and the instances on free loopback ports, drives
# them with bench/build/loadgen (--ports spreads the clients round-robin
# over the instances), and prints loadgen's step lines for each setup.
#
#   bench/cluster.sh            fan-out (a room of 30) and relay (30 pairs)
#   RATES_FAN=50,200 RATES_RELAY=500,2000 STEP_S=5 bench/cluster.sh
#
# Light on purpose (a shared 2-core machine): the numbers say what the hop
# costs, not what a dedicated machine can do.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
HUDDLE_BIN=${HUDDLE_BIN:-$ROOT/build/huddle}
LOADGEN=$HERE/build/loadgen
SECRET=bench-secret-bench-secret-bench-secret-0123
RATES_FAN=${RATES_FAN:-50,150}
RATES_RELAY=${RATES_RELAY:-300,1000}
STEP_S=${STEP_S:-5}
"$HERE/build.sh" "$LOADGEN" >/dev/null
TMP=$(mktemp -d)
PIDS=()
# Servers are started in command substitutions (subshells): their pids go to files.
cleanup() {
  for p in "${PIDS[@]}" $(cat "$TMP"/*.pid 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$TMP" --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

start() { # name extra-args...
  local name=$1; shift
  mkdir -p "$TMP/$name"
  "$HUDDLE_BIN" --listen 127.0.0.1:0 --data-dir "$TMP/$name" --jwt-secret "$SECRET" --log-level info \
    --rate-websocket-message 0/1m --rate-chat-message 0/1m --rate-room-create 0/1m --rate-api-call 0/1m \
    "$@" >"$TMP/$name.log" 2>&1 &
  echo $! >"$TMP/$name.pid"
  for _ in $(seq 100); do
    local p
    p=$(sed -n 's/.*listening addr=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/$name.log" | head -1)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.05
  done
  echo "huddle $name did not start" >&2; cat "$TMP/$name.log" >&2; exit 1
}

ONE=$(start one); ONE_PID=$(cat "$TMP/one.pid")
P1=$(start c1 --redis-url "redis://127.0.0.1:$RPORT"); C1_PID=$(cat "$TMP/c1.pid")
P2=$(start c2 --redis-url "redis://127.0.0.1:$RPORT"); C2_PID=$(cat "$TMP/c2.pid")
P3=$(start c3 --redis-url "redis://127.0.0.1:$RPORT"); C3_PID=$(cat "$TMP/c3.pid")
REDIS_PID=${PIDS[0]}
sleep 0.5

# CPU seconds (user + system) the given processes used so far.
cpu_s() {
  local t=0 p
  for p in "$@"; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "scale=2; $t / $(getconf CLK_TCK)" | bc
}

run() { # label pids args...
  local label=$1 pids=$2; shift 2
  echo "== $label"
  local c0; c0=$(cpu_s $pids)
  "$LOADGEN" --proto huddle --secret "$SECRET" --duration "$STEP_S" --warmup 2 --drain 2 --no-stop --retry-noisy 0 "$@" 2>"$TMP/lg.err" \
    | grep -E "step|latency" || { echo "loadgen failed:"; cat "$TMP/lg.err"; }
  echo "  server-side CPU for the whole run (huddle instances and Redis): $(echo "$(cpu_s $pids) - $c0" | bc) s"
}

echo "huddle $(cd "$ROOT" && git rev-parse --short HEAD), redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $(nproc) cores"
run "fan-out, a room of 30, one instance" "$ONE_PID" --scenario fanout --conns 30 --room-size 30 --rates "$RATES_FAN" --port "$ONE"
run "fan-out, a room of 30 over three instances" "$C1_PID $C2_PID $C3_PID $REDIS_PID" --scenario fanout --conns 30 --room-size 30 --rates "$RATES_FAN" --ports "$P1,$P2,$P3"
run "relay, 30 pairs, one instance" "$ONE_PID" --scenario relay --pairs 30 --rates "$RATES_RELAY" --port "$ONE"
run "relay, 30 pairs, each pair on two instances" "$C1_PID $C2_PID $C3_PID $REDIS_PID" --scenario relay --pairs 30 --rates "$RATES_RELAY" --ports "$P1,$P2,$P3"
