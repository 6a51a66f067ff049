#!/bin/sh
# Runs a command with a throwaway PostgreSQL 15 cluster on a free loopback
# port (docs: /work/shared/notes/real-services.md recipe), then removes it.
# PostgreSQL refuses to run as root: as root the cluster runs as the
# `postgres` user. The command sees:
#   HUDDLE_TEST_PG_URL    postgres://huddle@127.0.0.1:PORT/huddle_unit (the C store suite empties it)
#   HUDDLE_TEST_PG_PORT   the port
#   HUDDLE_TEST_PG_CTL    "pg_ctl -D <data>" command line (stop/start it to test an outage)
#   HUDDLE_TEST_PG_AS     "su postgres -s /bin/sh -c" as root, "sh -c" otherwise
# Usage: scripts/with-postgres.sh COMMAND [ARGS...]
set -eu
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGBIN/initdb" ]; then
  echo "with-postgres: $PGBIN/initdb not found: install postgresql (scripts/deps.sh test)" >&2
  exit 1
fi
D=$(mktemp -d /tmp/huddle-pg-XXXXXX)
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$D"
  AS="su postgres -s /bin/sh -c"
else
  AS="sh -c"
fi
chmod 700 "$D"
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
CTL="$PGBIN/pg_ctl -D $D/data"
cleanup() {
  $AS "$CTL -m immediate -w stop" >/dev/null 2>&1 || true
  rm -rf "$D"
}
trap cleanup EXIT INT TERM
$AS "$PGBIN/initdb -D $D/data -A trust -U huddle" >"$D.initdb.log" 2>&1 || { cat "$D.initdb.log" >&2; rm -f "$D.initdb.log"; exit 1; }
rm -f "$D.initdb.log"
$AS "$CTL -o '-c listen_addresses=127.0.0.1 -p $PORT -k $D -c fsync=on' -l $D/log -w start" >/dev/null
psql -q -h 127.0.0.1 -p "$PORT" -U huddle -d postgres -c 'CREATE DATABASE huddle_unit' >/dev/null
export HUDDLE_TEST_PG_URL="postgres://huddle@127.0.0.1:$PORT/huddle_unit"
export HUDDLE_TEST_PG_PORT="$PORT"
export HUDDLE_TEST_PG_CTL="$CTL -o '-c listen_addresses=127.0.0.1 -p $PORT -k $D' -l $D/log"
export HUDDLE_TEST_PG_AS="$AS"
echo "with-postgres: PostgreSQL $($PGBIN/postgres --version | awk '{print $3}') on 127.0.0.1:$PORT ($D)"
set +e
"$@"
rc=$?
exit $rc
