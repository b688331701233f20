#!/usr/bin/env bash
# bench_gateway_serve.sh [N] — what a gateway-enabled `cairn serve` adds to
# a proxied request over calling the upstream directly, end to end on
# loopback: client (node, keep-alive) -> cairn serve --gateway (cloud-only,
# one redaction rule, audit log) -> tests/tools/fake_upstream.js, against
# client -> fake_upstream.js. Requests alternate, so machine load hits both.
# Needs a release build (build/release/cairn) and node.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
CAIRN=${CAIRN:-$SRC/build/release/cairn}
N=${1:-2000}
T=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
node "$SRC/tests/tools/fake_upstream.js" /dev/null > "$T/up.port" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$T/up.port" ] && break; sleep 0.05; done
UP=$(awk '{print $2}' "$T/up.port")
cat > "$T/gw.ini" <<EOI
[upstream cloud]
url = http://127.0.0.1:$UP/v1
models = big
timeout = 2s
[redact]
email = [a-z]+@[a-z]+\.[a-z]+
EOI
"$CAIRN" serve --no-store --port 0 --gateway "$T/gw.ini" > "$T/gw.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q listening "$T/gw.log" && break; sleep 0.05; done
GW=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/gw.log")
node "$SRC/bench/gateway_load.js" "http://127.0.0.1:$UP" "http://127.0.0.1:$GW" "$N"
