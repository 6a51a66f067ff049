#!/bin/sh
# Installs what huddle needs from Debian 12's packages, and only what is
# missing. Usage: scripts/deps.sh run|test
#   run:  the compiler, Meson/Ninja and the C libraries
#   test: also cmocka, the sqlite3 client (tests that age rows), Node.js
#         and npm (integration tests), Chromium and an emoji font (browser
#         tests)
set -eu

build_pkgs="gcc libc6-dev pkg-config meson ninja-build libuv1-dev libhttp-parser-dev \
libssl-dev libjansson-dev libjwt-dev libsqlite3-dev libmagic-dev libpq-dev libhiredis-dev"
test_pkgs="libcmocka-dev sqlite3 procps curl iproute2 prometheus systemd clamav-daemon chromium fonts-noto-color-emoji postgresql nginx openssl valgrind clang libclang-rt-14-dev redis-server"

want="$build_pkgs"
[ "${1:-run}" = test ] && want="$want $test_pkgs"

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js: any installed node >= 18 will do (Debian 12 ships 18).
if [ "${1:-run}" = test ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
  elif [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
    echo "deps: Node.js 18 or newer is needed, found $(node --version)" >&2
    exit 1
  fi
fi

[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "deps: run as root or install sudo" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing
