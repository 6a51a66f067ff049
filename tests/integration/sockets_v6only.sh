#!/bin/sh
# For sockets.test.js: run inside a network namespace of its own
# (unshare -n), where net.ipv6.bindv6only=1 changes nothing outside.
# huddle listens on [::]:18480; prints the status an IPv4 and an IPv6
# client get from /webrtc/health (000: not reachable). Exits 2 when the
# namespace cannot be set up (no ip, a read-only /proc/sys, no IPv6):
# the test skips then.
BIN=$1
command -v ip >/dev/null && command -v curl >/dev/null || exit 2
ip link set lo up 2>/dev/null || exit 2
sysctl -q -w net.ipv6.bindv6only=1 2>/dev/null || exit 2
ip -6 addr show dev lo 2>/dev/null | grep -q '::1' || exit 2
D=$(mktemp -d)
"$BIN" --listen '[::]:18480' --data-dir "$D" --jwt-secret 0123456789abcdef0123456789abcdef --log-level warn 2>"$D/err" &
P=$!
i=0
while [ $i -lt 50 ] && ! curl -s -m 1 -o /dev/null 'http://[::1]:18480/webrtc/health'; do sleep 0.1; i=$((i + 1)); done
printf 'v4 '; curl -s -m 3 -o /dev/null -w '%{http_code}\n' http://127.0.0.1:18480/webrtc/health
printf 'v6 '; curl -s -m 3 -o /dev/null -w '%{http_code}\n' 'http://[::1]:18480/webrtc/health'
kill $P
wait $P 2>/dev/null
rm -rf "$D"
