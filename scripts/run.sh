#!/bin/sh
# Sets up and runs the server: installs missing Debian packages, builds with
# Meson, and starts huddle (default 127.0.0.1:8080, data under ./data).
# Extra arguments are passed to huddle, e.g. scripts/run.sh --listen 0.0.0.0:8080
# --dev-tokens=false (do that whenever it listens beyond loopback).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/deps.sh run
[ -f build/build.ninja ] || meson setup build -Dwerror=true
ninja -C build
# Development tokens let the web app's join screen work without an application
# (README "Development tokens"); the default listen address is loopback only.
[ $# -eq 0 ] && echo "run.sh: when it says listening, open http://127.0.0.1:8080/ in two tabs (Ctrl-C stops it)"
exec ./build/huddle --dev-tokens "$@"
