#!/bin/sh
# Mints a development token for the server that scripts/run.sh starts, from
# any folder: `huddle token` with that server's data directory (<repo>/data).
# Usage: scripts/token.sh --user alice [--room demo] [--role host] [--ttl 3600]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
exec "$root/build/huddle" token --data-dir "$root/data" "$@"
