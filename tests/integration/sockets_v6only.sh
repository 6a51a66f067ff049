#!/bin/sh
# For sockets.test.js: run inside a network namespace of its own
# (unshare -n), where net.ipv6.bindv6only=1 changes nothing outside.
# huddle listens on [::]:18480; prints the status an IPv4 and an IPv6
# client get from /webrtc/health (000: not reachable).
BIN=$1
ip link set lo up || exit 2
sysctl -q -w net.ipv6.bindv6only=1 || exit 2
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
