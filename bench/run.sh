#!/usr/bin/env bash
# bench/run.sh: huddle's benchmark suite, side by side with the servers a
# user would otherwise run (the PeerJS server, a room server on `ws`, and
# nginx's nchan pub/sub module). Installs what it needs, builds the load
# generator, then for each scenario starts each server in turn pinned to
# core 0 (taskset -c 0), drives it from core 1 (taskset -c 1) with
# bench/build/loadgen, and prints a table with ratios. Scenarios 2 and 3
# search for each server's own saturation (loadgen --search). Results:
# bench/out/<time>/ (one JSON per scenario and server, summary.md,
# profiles). See docs/performance.md.
#
#   bench/run.sh                      the whole suite (under 20 minutes)
#   bench/run.sh --only 2,3 --servers huddle --perf     profiles of huddle
#   bench/run.sh --quick              a smoke run, about three minutes
#   bench/run.sh --instructions       huddle's instructions and syscalls per
#                                     message (callgrind, strace): a few minutes
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
HUDDLE_BIN=${HUDDLE_BIN:-$ROOT/build/huddle}
LOADGEN=$HERE/build/loadgen
SECRET=${BENCH_SECRET:-bench-secret-bench-secret-bench-secret-0123}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
declare -A PORT=([huddle]=${HUDDLE_PORT:-18080} [peerjs]=${PEERJS_PORT:-19000} [wsroom]=${WSROOM_PORT:-19100}
                [nchan]=${NCHAN_PORT:-19200})
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so

ONLY="1,2,3,4,5"
SERVERS="huddle,peerjs,wsroom,nchan"
PROFILE=""          # perf | callgrind | strace
INSTRUCTIONS=0
INSTALL=1
QUICK=0
PERSIST=0
OUT=""

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF
Options:
  --only LIST        scenarios to run, e.g. 1,2 (default 1,2,3,4,5)
  --servers LIST     huddle,peerjs,wsroom,nchan (default all)
  --perf             profile each server with perf record (and count its syscalls)
  --callgrind        run huddle under valgrind --tool=callgrind at a light load
                     (instructions per delivered message, the whole profile)
  --instructions     huddle only, a few minutes: callgrind instructions and strace
                     syscalls per relayed message (scenario 3's mix, and 6 KiB offers
                     alone) and per delivery (scenario 2's rooms of 50, in bursts:
                     49 members each send 5 at once); the stable numbers
  --persist          scenario 5 only: scenario 2 with every chat durable (SQLite, PostgreSQL)
  --quick            small and short: a smoke run
  --no-install       do not apt-get / npm ci
  --out DIR          results directory (default bench/out/<time>)
Environment: HUDDLE_BIN, BENCH_SECRET, BENCH_PG_URL (scenario 5 on an existing PostgreSQL),
  BENCH_SERVER_CPU / BENCH_CLIENT_CPU (0 / 1), HUDDLE_PORT, PEERJS_PORT, WSROOM_PORT, NCHAN_PORT,
  PERF_CALLGRAPH (dwarf,16384; 'fp' is perf record -g), PERF_FREQ (499),
  S2_PERF_RATE / S3_PERF_RATE (the one step profiled: 1500 msg/s, 5000 relays/s),
  S1_CONNS, S3_PAIRS, S4_CONNS, STEP_S, RETRY_NOISY (2), QUIET_PCT / QUIET_TRIES (15 / 45);
  the search: S2_START / S3_START (first offered rate, 1000 / 1000), SEARCH_GROWTH (2),
  SEARCH_REFINE (bisection steps, 3), S2_MAX / S3_MAX (rate caps, 64000 / 64000);
  S2_RATES / S3_RATES: a fixed ladder instead of the search (as before);
  S5_ROOM_SIZE (50), S5_SYNC (full | normal): scenario 5's rooms and --store-sync;
  S5_PG=0 skips its PostgreSQL row.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=$2; shift ;;
    --servers) SERVERS=$2; shift ;;
    --perf) PROFILE=perf ;;
    --callgrind) PROFILE=callgrind ;;
    --instructions) INSTRUCTIONS=1 ;;
    --persist) PERSIST=1; ONLY=5 ;;
    --quick) QUICK=1 ;;
    --no-install) INSTALL=0 ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

OUT=${OUT:-$HERE/out/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
has() { case ",$1," in *",$2,"*) return 0 ;; esac; return 1; }
log() { printf '%s\n' "$*" | tee -a "$OUT/run.log"; }

# ---- install and build ----

install_deps() {
  local need=()
  for p in gcc pkg-config libuv1-dev libwslay-dev libssl-dev nodejs npm util-linux procps; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ "$PROFILE" = perf ] && ! command -v perf >/dev/null; then need+=(linux-perf); fi
  if { [ "$PROFILE" = callgrind ] || [ "$INSTRUCTIONS" = 1 ]; } && ! command -v valgrind >/dev/null; then need+=(valgrind); fi
  if [ "$INSTRUCTIONS" = 1 ] && ! command -v strace >/dev/null; then need+=(strace); fi
  # nchan: Debian's nginx module (pulls in nginx), only when it will run.
  if [ "$INSTRUCTIONS" = 0 ] && has "$SERVERS" nchan && [ ! -f "$NCHAN_MODULE" ]; then need+=(libnginx-mod-nchan); fi
  # nodejs may come from elsewhere (nvm, nodesource): then it is not a dpkg package.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    local kept=()
    for p in "${need[@]}"; do [ "$p" = nodejs ] || [ "$p" = npm ] || kept+=("$p"); done
    need=("${kept[@]}")
  fi
  if [ ${#need[@]} -gt 0 ]; then
    log "installing: ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ ! -d "$HERE/peers/node_modules/peer" ] || [ "$HERE/peers/package-lock.json" -nt "$HERE/peers/node_modules/.package-lock.json" ]; then
    log "npm ci in bench/peers"
    (cd "$HERE/peers" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

[ "$INSTALL" = 1 ] && install_deps
"$HERE/build.sh" "$LOADGEN" >/dev/null
if [ ! -x "$HUDDLE_BIN" ] || [ -f "$ROOT/build/build.ninja" ]; then
  if [ -f "$ROOT/build/build.ninja" ]; then ninja -C "$ROOT/build" >/dev/null
  else (cd "$ROOT" && meson setup build >/dev/null && ninja -C build >/dev/null); fi
fi

# Every client and every server needs a descriptor per connection.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT=$(ulimit -n)

# ---- the machine ----

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "kernel: $(uname -srm)"
  echo "nproc: $(nproc)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|Hypervisor|L1d|L2|L3|CPU max MHz)' || true
  echo "memory: $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
  echo "open files: $FD_LIMIT (hard $(ulimit -Hn))"
  echo "node: $(node --version)"
  # The tree's commit only describes the tree's own build.
  HUDDLE_BUILT="$HUDDLE_BIN"
  if [ "$(realpath "$HUDDLE_BIN" 2>/dev/null)" = "$(realpath "$ROOT/build/huddle" 2>/dev/null)" ]; then
    HUDDLE_BUILT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
  fi
  echo "huddle: $("$HUDDLE_BIN" --version 2>/dev/null | head -1) ($HUDDLE_BUILT)"
  echo "peer: $(node -p "require('$HERE/peers/node_modules/peer/package.json').version")," \
       "ws: $(node -p "require('$HERE/peers/node_modules/ws/package.json').version")"
  if [ -f "$NCHAN_MODULE" ]; then
    echo "nchan: $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'), $(nginx -v 2>&1 | sed 's/^nginx version: //')"
  fi
  echo "pinning: servers on CPU $SERVER_CPU (taskset -c $SERVER_CPU), load generator on CPU $CLIENT_CPU (taskset -c $CLIENT_CPU)"
} > "$OUT/machine.txt"
cat "$OUT/machine.txt" | tee -a "$OUT/run.log"

# ---- parameters ----

STEP_S=${STEP_S:-8}
S1_CONNS=${S1_CONNS:-20000}
# Scenarios 2 and 3 search for saturation: start at S*_START msg/s, grow by
# SEARCH_GROWTH until a step saturates, then bisect SEARCH_REFINE times
# (loadgen --search). S2_RATES / S3_RATES, when set, run a fixed ladder instead.
S2_RATES=${S2_RATES:-}
# Scenario 5's rooms (50, as scenario 2; smaller rooms persist more messages
# for the same deliveries) and its --store-sync (full | normal).
S5_ROOM_SIZE=${S5_ROOM_SIZE:-50}
S5_SYNC=${S5_SYNC:-full}
S3_RATES=${S3_RATES:-}
S2_START=${S2_START:-1000}
S3_START=${S3_START:-1000}
S2_MAX=${S2_MAX:-64000}
S3_MAX=${S3_MAX:-64000}
SEARCH_GROWTH=${SEARCH_GROWTH:-2}
SEARCH_REFINE=${SEARCH_REFINE:-3}
SETTLE_S=10
DRAIN_S=3    # after each step, wait at most this long for the stragglers
RETRY_NOISY=${RETRY_NOISY:-2}   # repeat a step this often when other processes were busy
S3_PAIRS=${S3_PAIRS:-1000}
S4_CONNS=${S4_CONNS:-5000}
HOLD_S=10
if [ "$QUICK" = 1 ]; then
  STEP_S=2; S1_CONNS=2000; S2_START=2000; S3_START=2000; SEARCH_REFINE=1; SETTLE_S=2; RETRY_NOISY=0
  DRAIN_S=1
  S3_PAIRS=200; S4_CONNS=1000; HOLD_S=3
fi
if [ "$PROFILE" = callgrind ]; then
  # Valgrind runs huddle some 50 times slower: a light fixed load.
  S1_CONNS=2000; S2_RATES=50; S3_RATES=200; S3_PAIRS=200; S4_CONNS=500; HOLD_S=5
  SERVERS=huddle
fi
if [ "$PROFILE" = perf ]; then
  # One busy but unsaturated step, so the profile shows steady state.
  S2_RATES=${S2_PERF_RATE:-1500}; S3_RATES=${S3_PERF_RATE:-5000}
fi
if [ "$INSTRUCTIONS" = 1 ]; then SERVERS=huddle; ONLY=""; RETRY_NOISY=0; fi
# Descriptors: the server and the load generator each hold one per client.
MAX_CONNS=$((FD_LIMIT - 100))
if [ "$S1_CONNS" -gt "$MAX_CONNS" ]; then
  log "note: scenario 1 asks for $S1_CONNS connections but RLIMIT_NOFILE is $FD_LIMIT (hard limit, cannot be raised here): using $MAX_CONNS"
  S1_CONNS=$MAX_CONNS
fi

# ---- servers ----

# Other people's builds and tests share this machine: start a server only
# once the machine has been quiet for a moment (loadgen repeats steps that
# were disturbed anyway, see --retry-noisy).
busy_ticks() { awk '/^cpu / {print $2 + $3 + $4; exit}' /proc/stat; }
wait_quiet() {
  local hz tries=0 a b pct
  hz=$(getconf CLK_TCK)
  while :; do
    a=$(busy_ticks); sleep 2; b=$(busy_ticks)
    pct=$(( (b - a) * 100 / (2 * hz) ))
    [ "$pct" -le "${QUIET_PCT:-15}" ] && return 0
    tries=$((tries + 1))
    if [ "$tries" -gt "${QUIET_TRIES:-45}" ]; then log "  machine still busy ($pct% of a core): going on"; return 0; fi
    [ "$tries" = 1 ] && log "  waiting for the machine to be quiet (other processes use $pct% of a core)"
    sleep 3
  done
}

SRV_PID=""
SRV_MEASURE_PID=""   # the process whose CPU and RSS count, when not SRV_PID (nchan's worker)
SRV_TMP=""           # the server's temp dir (huddle's data dir, nchan's prefix), removed at stop
start_server() { # name [extra huddle flags...]
  local name=$1; shift
  local port=${PORT[$name]}
  local logf="$OUT/server-$name.log"
  local wrap=(taskset -c "$SERVER_CPU")
  if [ "$PROFILE" = callgrind ] && [ "$name" = huddle ]; then
    wrap+=(valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind-$CUR-$name.%p")
  fi
  case "$name" in
    huddle)
      local data; data=$(mktemp -d /tmp/huddle-bench.XXXXXX)
      SRV_TMP=$data
      "${wrap[@]}" "$HUDDLE_BIN" --listen "127.0.0.1:$port" --data-dir "$data" --jwt-secret "$SECRET" \
        --rate-websocket-message 0/1m --rate-chat-message 0/1m --rate-room-create 0/1m \
        --max-connections-per-ip 1000000 --max-connections 1000000 --log-level warn "$@" \
        >>"$logf" 2>&1 &
      ;;
    nchan)
      # nginx with the nchan module and one worker process (one event loop,
      # like huddle's), in a temp dir: a pub/sub channel per room at
      # /sub/<room>, where a WebSocket both subscribes and publishes. Each
      # channel keeps its last message for 10 s (nchan's buffer, cut to the
      # minimum). The master stays (without it, nchan 1.3.6 aborts on a
      # double free at exit); the worker inherits the pinning and is the
      # process measured (SRV_MEASURE_PID). nchan takes nginx connections
      # that are no sockets (about one a channel), so worker_connections is
      # twice the descriptor limit: at 19,900 clients in 995 rooms, the
      # descriptor limit alone refused 1,157 of them (nginx warns about it
      # at start, harmlessly). nginx's error log ends up in server-nchan.log.
      local dir; dir=$(mktemp -d /tmp/huddle-bench-nchan.XXXXXX)
      SRV_TMP=$dir
      cat > "$dir/nginx.conf" <<EOF
load_module $NCHAN_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $FD_LIMIT;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $((2 * FD_LIMIT)); multi_accept on; }
http {
  access_log off;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  nchan_shared_memory_size 256M;
  server {
    listen 127.0.0.1:$port backlog=4096;
    location ~ ^/sub/([^/]+)\$ {
      nchan_pubsub websocket;
      nchan_channel_id \$1;
      nchan_message_buffer_length 1;
      nchan_message_timeout 10s;
    }
  }
}
EOF
      "${wrap[@]}" nginx -c "$dir/nginx.conf" -p "$dir/" -e "$dir/error.log" >>"$logf" 2>&1 &
      ;;
    peerjs|wsroom)
      local nodeflags=()
      [ "$PROFILE" = perf ] && nodeflags=(--perf-basic-prof)
      PORT=$port HOST=127.0.0.1 "${wrap[@]}" node "${nodeflags[@]}" "$HERE/peers/$name.js" >>"$logf" 2>&1 &
      ;;
  esac
  SRV_PID=$!
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      if [ "$name" = nchan ]; then
        SRV_MEASURE_PID=$(tr ' ' '\n' < "/proc/$SRV_PID/task/$SRV_PID/children" | grep -m1 .) || true
        [ -n "$SRV_MEASURE_PID" ] || { log "nchan: no worker process under $SRV_PID"; return 1; }
      fi
      return 0
    fi
    if ! kill -0 "$SRV_PID" 2>/dev/null; then log "$name exited at start:"; tail -5 "$logf"; return 1; fi
    sleep 0.1
  done
  log "$name did not listen on $port"; return 1
}

stop_server() {
  [ -n "$SRV_PID" ] || return 0
  kill -TERM "$SRV_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SRV_PID" 2>/dev/null || true
  wait "$SRV_PID" 2>/dev/null || true
  SRV_PID=""
  SRV_MEASURE_PID=""
  if [ -n "$SRV_TMP" ]; then
    case "$SRV_TMP" in
      */huddle-bench-nchan.*) [ -f "$SRV_TMP/error.log" ] && cat "$SRV_TMP/error.log" >> "$OUT/server-nchan.log" ;;
    esac
    rm -rf "$SRV_TMP"; SRV_TMP=""
  fi
}
trap 'stop_server' EXIT

# Hooks the load generator runs once all clients are in and when it is done.
hooks_for() { # name -> sets HOOKS
  local name=$1 tag="$CUR-$1" mpid=${SRV_MEASURE_PID:-$SRV_PID}
  HOOKS=()
  case "$PROFILE" in
    perf)
      HOOKS=(--hook-start "perf record -F ${PERF_FREQ:-499} --call-graph ${PERF_CALLGRAPH:-dwarf,16384} -p $mpid -o $OUT/perf-$tag.data >/dev/null 2>&1 & echo \$! > $OUT/.perf.pid;
perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,context-switches,task-clock -p $mpid -o $OUT/perfstat-$tag.txt >/dev/null 2>&1 & echo \$! > $OUT/.stat.pid"
             --hook-end "for f in $OUT/.perf.pid $OUT/.stat.pid; do kill -INT \$(cat \$f) 2>/dev/null; done;
for f in $OUT/.perf.pid $OUT/.stat.pid; do while kill -0 \$(cat \$f) 2>/dev/null; do sleep 0.2; done; done")
      ;;
    callgrind)
      [ "$name" = huddle ] && HOOKS=(--hook-start "callgrind_control -z $SRV_PID >/dev/null"
                                     --hook-end "callgrind_control -d $SRV_PID >/dev/null")
      ;;
    strace)
      # Counts every syscall of the server between the hooks (strace -c);
      # the second of sleep lets strace attach before the first send.
      HOOKS=(--hook-start "strace -c -f -q -o $OUT/strace-$tag.txt -p $mpid 2>/dev/null & echo \$! > $OUT/.strace.pid; sleep 1"
             --hook-end "kill -INT \$(cat $OUT/.strace.pid) 2>/dev/null; while kill -0 \$(cat $OUT/.strace.pid) 2>/dev/null; do sleep 0.2; done")
      ;;
  esac
  return 0
}

loadgen() { # name scenario-args...
  local name=$1; shift
  hooks_for "$name"
  # --workers auto: one load generator process per CPU in BENCH_CLIENT_CPU
  # (one here, by default: a second process on the same core would only
  # share it), each driving whole rooms or pairs.
  taskset -c "$CLIENT_CPU" "$LOADGEN" --proto "$name" --port "${PORT[$name]}" --secret "$SECRET" \
    --server-pid "${SRV_MEASURE_PID:-$SRV_PID}" --json "$OUT/$CUR-$name.json" --label "$CUR" --workers auto \
    --retry-noisy "$RETRY_NOISY" "${HOOKS[@]}" "$@" \
    2>>"$OUT/loadgen-$CUR-$name.err" | tee -a "$OUT/run.log" || log "loadgen exited with an error"
}

show_profile() { # name
  local tag="$CUR-$1"
  if [ "$PROFILE" = perf ] && [ -f "$OUT/perf-$tag.data" ]; then
    # The flat profile (self time), the split by library, and inclusive time
    # of the server's own functions (DWARF call graphs: no frame pointers).
    perf report -i "$OUT/perf-$tag.data" --no-children --stdio -g none --sort dso,sym \
      --percent-limit 0.7 2>/dev/null | grep -E '^ +[0-9.]+%' | head -30 > "$OUT/profile-$tag.txt" || true
    perf report -i "$OUT/perf-$tag.data" --no-children --stdio -g none --sort dso 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | head -8 > "$OUT/profile-dso-$tag.txt" || true
    perf report -i "$OUT/perf-$tag.data" --children --stdio -g none --sort sym --percent-limit 2 2>/dev/null \
      | grep -E '^ +[0-9.]+%' | grep -v -E '\[k\]|0x0000' | head -40 > "$OUT/profile-inclusive-$tag.txt" || true
    log "  $1 profile by library:"
    sed 's/^/    /' "$OUT/profile-dso-$tag.txt" | tee -a "$OUT/run.log"
    log "  top of the $1 profile (self time):"
    sed 's/^/    /' "$OUT/profile-$tag.txt" | head -25 | tee -a "$OUT/run.log"
    log "  inclusive (children) time of the named functions: $OUT/profile-inclusive-$tag.txt"
    if [ -f "$OUT/perfstat-$tag.txt" ]; then
      log "  $1 syscalls (perf stat):"
      grep -E 'syscalls|context|task-clock' "$OUT/perfstat-$tag.txt" | sed 's/^/    /' | tee -a "$OUT/run.log"
    fi
  fi
  if [ "$PROFILE" = strace ] && [ -f "$OUT/strace-$tag.txt" ]; then
    log "  $1 syscalls (strace -c -f, between the hooks):"
    grep -E ' (write|writev|sendmsg|sendto|sendmmsg|read|readv|recvfrom|epoll_wait|total)$' "$OUT/strace-$tag.txt" \
      | sed 's/^/    /' | tee -a "$OUT/run.log"
  fi
  if [ "$PROFILE" = callgrind ]; then
    local f; f=$(ls -t "$OUT"/callgrind-"$tag".*.[0-9]* 2>/dev/null | head -1 || true)
    if [ -n "$f" ]; then
      callgrind_annotate --inclusive=yes "$f" 2>/dev/null \
        | grep -E '^ *[0-9,]+ \( ?[0-9.]+%\)  [^ ]+:[^ ]+ \[' | head -40 > "$OUT/profile-$tag.txt" || true
      log "  $1 callgrind, instructions inclusive per function ($f):"
      sed 's/^/    /' "$OUT/profile-$tag.txt" | cut -c1-160 | head -30 | tee -a "$OUT/run.log"
    fi
  fi
}

# The offered loads of scenario 2 or 3 for one server: the saturation search
# (loadgen --search), or the fixed ladder of S2_RATES / S3_RATES. huddle runs
# first and ends with a latency probe at half its sustained rate; the peers
# run their probe at that same rate, so p50 / p99 compare at equal load.
ladder_for() { # scenario(2|3) server -> sets LADDER
  local rates start max half=""
  if [ "$1" = 2 ]; then rates=$S2_RATES; start=$S2_START; max=$S2_MAX
  else rates=$S3_RATES; start=$S3_START; max=$S3_MAX; fi
  if [ -n "$rates" ]; then LADDER=(--rates "$rates"); return 0; fi
  LADDER=(--search --rates "$start" --max-rate "$max" --growth "$SEARCH_GROWTH"
          --refine "$SEARCH_REFINE" --settle-s "$SETTLE_S")
  if [ "$2" != huddle ] && [ -f "$OUT/$CUR-huddle.json" ]; then
    half=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));
      const s=r.search||{}; if (s.sustained_msgs_s>0) console.log(s.sustained_msgs_s/2)' "$OUT/$CUR-huddle.json" 2>/dev/null || true)
  fi
  if [ -n "$half" ]; then LADDER+=(--probe "$half"); else LADDER+=(--probe-half); fi
}

LADDER_SC=""  # 2 or 3: run_each adds ladder_for's offered loads per server
run_each() { # scenario-args... over the selected servers
  local s
  for s in ${RUN_SERVERS//,/ }; do
    has "$SERVERS" "$s" || continue
    LADDER=()
    [ -n "$LADDER_SC" ] && ladder_for "$LADDER_SC" "$s"
    log ""
    log "== scenario $CUR on $s =="
    # Counted instructions and syscalls do not care who else runs.
    # (nor does a smoke run).
    [ "$PROFILE" = callgrind ] || [ "$PROFILE" = strace ] || [ "$QUICK" = 1 ] || wait_quiet
    start_server "$s" ${EXTRA_FLAGS[$s]:-} || continue
    loadgen "$s" "$@" "${LADDER[@]}"
    show_profile "$s"
    stop_server
  done
}

declare -A EXTRA_FLAGS=()
T0=$(date +%s)

if has "$ONLY" 1; then
  CUR=s1; RUN_SERVERS=huddle,peerjs,wsroom,nchan
  log ""; log "### 1. capacity: $S1_CONNS idle clients in rooms of 20, keepalive every 5 s, held ${HOLD_S} s"
  run_each --scenario capacity --conns "$S1_CONNS" --room-size 20 --hold "$HOLD_S" --keepalive 5 --concurrency 256
fi
if has "$ONLY" 2; then
  CUR=s2; RUN_SERVERS=huddle,wsroom,nchan; LADDER_SC=2
  log ""; log "### 2. room fan-out: 500 clients in rooms of 50, 200-byte chat, ${S2_RATES:-searching from $S2_START} msg/s offered, ${STEP_S} s a step (PeerJS has no rooms)"
  # The baseline keeps no chat (scenario 5 is the same load, stored).
  EXTRA_FLAGS[huddle]="--chat-durability off"
  run_each --scenario fanout --conns 500 --room-size 50 --msg-bytes 200 --duration "$STEP_S" --warmup 2 --drain "$DRAIN_S"
  EXTRA_FLAGS[huddle]=""; LADDER_SC=""
fi
if has "$ONLY" 3; then
  CUR=s3; RUN_SERVERS=huddle,peerjs,wsroom; LADDER_SC=3
  log ""; log "### 3. signaling relay: $S3_PAIRS pairs, offer 6 KiB / answer 4.5 KiB SDP + 4 candidates, ${S3_RATES:-searching from $S3_START} relays/s offered, ${STEP_S} s a step"
  run_each --scenario relay --pairs "$S3_PAIRS" --duration "$STEP_S" --warmup 2 --drain "$DRAIN_S"
  LADDER_SC=""
fi
if has "$ONLY" 4; then
  CUR=s4; RUN_SERVERS=huddle,peerjs,wsroom
  log ""; log "### 4. join storm: $S4_CONNS clients joining within 5 s, rooms of 20"
  run_each --scenario storm --conns "$S4_CONNS" --room-size 20 --storm-s 5 --hold 2
fi
if has "$ONLY" 5; then
  # Scenario 2's load with every chat message committed before anyone gets
  # it (--chat-durability durable): SQLite in the data dir, then PostgreSQL
  # in a throwaway cluster on this machine (scripts/with-postgres.sh's
  # recipe; BENCH_PG_URL names an existing database instead).
  RUN_SERVERS=huddle
  log ""; log "### 5. persistence on: scenario 2 with every chat message durable (SQLite, PostgreSQL), rooms of $S5_ROOM_SIZE, --store-sync $S5_SYNC"
  CUR=s5; LADDER_SC=2
  EXTRA_FLAGS[huddle]="--chat-durability durable --store-sync $S5_SYNC"
  run_each --scenario fanout --conns 500 --room-size "$S5_ROOM_SIZE" --msg-bytes 200 --duration "$STEP_S" --warmup 2 --drain "$DRAIN_S" --persist
  PG_URL=${BENCH_PG_URL:-}
  PG_STOP=""
  if [ "${S5_PG:-1}" = 0 ]; then
    PG_URL=""
    log "  S5_PG=0: PostgreSQL row skipped"
  elif [ -z "$PG_URL" ] && [ -x /usr/lib/postgresql/15/bin/initdb ]; then
    PGD=$(mktemp -d /tmp/huddle-bench-pg.XXXXXX)
    AS="sh -c"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PGD"; AS="su postgres -s /bin/sh -c"; fi
    PGPORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    $AS "/usr/lib/postgresql/15/bin/initdb -D $PGD/data -A trust -U huddle" >/dev/null
    # The cluster shares the server's core, as a database on the same small machine would.
    $AS "taskset -c $SERVER_CPU /usr/lib/postgresql/15/bin/pg_ctl -D $PGD/data -o '-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGD' -l $PGD/log -w start" >/dev/null
    psql -q -h 127.0.0.1 -p "$PGPORT" -U huddle -d postgres -c 'CREATE DATABASE huddle' >/dev/null
    PG_URL="postgres://huddle@127.0.0.1:$PGPORT/huddle"
    PG_STOP="$AS \"/usr/lib/postgresql/15/bin/pg_ctl -D $PGD/data -m fast -w stop\" >/dev/null; rm -rf $PGD"
  fi
  if [ -n "$PG_URL" ]; then
    CUR=s5pg
    EXTRA_FLAGS[huddle]="--chat-durability durable --store-sync $S5_SYNC --database-url $PG_URL"
    run_each --scenario fanout --conns 500 --room-size "$S5_ROOM_SIZE" --msg-bytes 200 --duration "$STEP_S" --warmup 2 --drain "$DRAIN_S" --persist
    [ -n "$PG_STOP" ] && eval "$PG_STOP"
  elif [ "${S5_PG:-1}" != 0 ]; then
    log "  no PostgreSQL 15 here (apt-get install postgresql) and no BENCH_PG_URL: PostgreSQL row skipped"
  fi
  EXTRA_FLAGS[huddle]=""; LADDER_SC=""
fi
if [ "$INSTRUCTIONS" = 1 ]; then
  # The stable numbers: user-space instructions (callgrind, between the
  # loadgen hooks) and syscalls (strace -c, a second run of the same load),
  # per relayed message and per delivery, at light fixed loads: valgrind
  # runs huddle some 50 times slower and strace stops it at every syscall.
  #   relay   scenario 3's mix (offer 6 KiB, answer 4.5 KiB, 4 candidates)
  #   offer   only directed 6 KiB offers
  #   burst   scenario 2's room of 50, in bursts: 49 members send 5 each at once
  RUN_SERVERS=huddle
  log ""; log "### instructions and syscalls per message (huddle; callgrind, then strace)"
  for PROFILE in callgrind strace; do
    tag=${PROFILE:0:2}
    CUR=$tag-relay
    run_each --scenario relay --pairs 100 --rates 200 --duration 5 --warmup 1 --drain 10 --keepalive 0
    CUR=$tag-offer
    run_each --scenario relay --pairs 100 --rates 200 --duration 5 --warmup 1 --drain 10 --keepalive 0 --relay-only offer
    CUR=$tag-burst
    EXTRA_FLAGS[huddle]="--chat-durability off"
    run_each --scenario fanout --conns 50 --room-size 50 --msg-bytes 200 --burst 5 --rates 122.5 --duration 6 --warmup 1 --drain 15 --keepalive 0
    EXTRA_FLAGS[huddle]=""
  done
  PROFILE=""
fi

log ""
log "suite time: $(( $(date +%s) - T0 )) s; results in $OUT"
node "$HERE/report.js" "$OUT" | tee -a "$OUT/run.log"
