#!/usr/bin/env bash
# bench_gateway_serve.sh [N] — what a gateway-enabled `cairn serve` adds to
# a proxied request over calling the upstream directly, end to end on
# loopback: client (node, keep-alive) -> cairn serve --gateway (cloud-only,
# one redaction rule, audit log) -> tests/tools/fake_upstream.js, against
# client -> fake_upstream.js. Requests alternate, so machine load hits both.
# Then, with the shared stories260K model as the local model: the time to
# the first answer token after an upstream timeout (the upstream told never
# to answer) against the local time to first token.
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
breaker_failures = 1000
[redact]
email = [a-z]+@[a-z]+\.[a-z]+
EOI
"$CAIRN" serve --no-store --port 0 --gateway "$T/gw.ini" > "$T/gw.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q listening "$T/gw.log" && break; sleep 0.05; done
GW=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/gw.log")
node "$SRC/bench/gateway_load.js" "http://127.0.0.1:$UP" "http://127.0.0.1:$GW" "$N"

MODEL=${CAIRN_TEST_SHARED:-$SRC/../shared}/models/stories260K/stories260K.gguf
[ -f "$MODEL" ] || { echo "(no $MODEL: fallback timing skipped)"; exit 0; }
curl -s -d '{"mode":"timeout"}' "http://127.0.0.1:$UP/_mode" >/dev/null
sed -i 's/^timeout = .*/timeout = 200ms/' "$T/gw.ini"
"$CAIRN" serve --no-store --port 0 -m "$MODEL" -t 1 --gateway "$T/gw.ini" > "$T/gw2.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q listening "$T/gw2.log" && break; sleep 0.05; done
GW2=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$T/gw2.log")
LOCAL_MODEL=$(curl -s "http://127.0.0.1:$GW2/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])') \
  node "$SRC/bench/gateway_fallback.js" "http://127.0.0.1:$GW2" 200 7
