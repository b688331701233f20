#!/usr/bin/env bash
# test_gateway_serve.sh — the gateway in a real cairn serve, with a second
# cairn serve on loopback as the cloud (its test switch makes it fail, answer
# 429/500, time out, be slow or drop a stream halfway, and it records every
# byte it receives). tests/serve/gateway.js drives the gateway with the
# unmodified OpenAI Node client: every policy against every failure, the
# broken stream, local failures, the randomized privacy run over cairn-rag.
# Then budgets through restarts: a token cap stops upstream use, still stops
# after a restart (persisted), and lifts at the next UTC day (injected clock).
set -euo pipefail
: "${CAIRN:?}" "${CAIRN_SRC:?}" "${CAIRN_TEST_TMP:=/tmp}"
SHARED="${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-$CAIRN_SRC/../shared}}"
MODEL="$SHARED/models/stories260K/stories260K.gguf"
OPENAI="$SHARED/clients/openai-node/node_modules/openai"
if [ ! -f "$MODEL" ] || [ ! -d "$OPENAI" ]; then echo "SKIP: shared models or the openai client absent"; exit 77; fi
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
export CAIRN_TEST_SHARED="$SHARED"
T="$CAIRN_TEST_TMP/test_gateway_serve.$$"
rm -rf "$T" && mkdir -p "$T/cloud" "$T/proj/notes/secret"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "== $f" >&2; tail -20 "$f" >&2; done; exit 1; }

# start_server LOG DIR ARGS... : sets PORT and SPID
start_server() {
  local log=$1 dir=$2; shift 2
  (cd "$dir" && exec "$CAIRN" serve --port 0 "$@") > "$log" 2>&1 &
  SPID=$!
  PIDS+=($SPID)
  for _ in $(seq 1 600); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$PORT" ] && return 0
    kill -0 "$SPID" 2>/dev/null || fail "a server did not start: $(cat "$log")"
    sleep 0.1
  done
  fail "a server did not report its port"
}
stop_server() { kill "$1"; wait "$1" 2>/dev/null || true; }

# the cloud: a plain cairn serve with the test switch
echo '{"mode":"ok"}' > "$T/fault.json"
CAIRN_TEST_FAULT_FILE="$T/fault.json" CAIRN_TEST_RECORD="$T/record.txt" \
  start_server "$T/cloud.log" "$T/cloud" --no-store -m "$MODEL" -t 1
CLOUD=$PORT
LOCAL_MODEL=$(curl -s "http://127.0.0.1:$CLOUD/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')

# the store: public and private documents (by tag and by path glob), each
# with a unique word to ask about and a marker to look for upstream
cd "$T/proj"
python3 - "$T/manifest.json" <<'EOF'
import json, random, sys
random.seed(7)
letters = "bcdfghjklmnpqrstvwxz"
docs = []
for i in range(24):
    word = "".join(random.choice(letters) for _ in range(3)) + "ola" + "".join(random.choice(letters) for _ in range(3))
    kind = random.choice(["public", "public", "tag", "glob"])
    mark = "DOCMARK%04d%s" % (i, "".join(random.choice(letters) for _ in range(6)))
    path = "notes/%s/doc%d.md" % ("secret" if kind == "glob" else "", i) if kind == "glob" else "notes/doc%d.md" % i
    open(path, "w").write("The %s is described here. Marker %s. Contact x%d@corp.example for more about %s.\n" % (word, mark, i, word))
    docs.append({"path": path, "word": word, "mark": mark, "kind": kind, "private": kind != "public"})
json.dump(docs, open(sys.argv[1], "w"))
open("tagged.txt", "w").write("\n".join(d["path"] for d in docs if d["kind"] == "tag"))
EOF
"$CAIRN" init >/dev/null
for f in notes/*.md notes/secret/*.md; do
  if grep -qx "$f" tagged.txt; then "$CAIRN" add "$f" --tag private=true --quiet >/dev/null
  else "$CAIRN" add "$f" --quiet >/dev/null; fi
done
# the cloud's whole (non-streamed) answer to a 400-token prompt must fit
# the timeout; sanitizer builds are several times slower
UP_TIMEOUT=3s
[ -n "${CAIRN_SANITIZED:-}" ] && UP_TIMEOUT=10s
cat >> .cairn/config <<EOF

[upstream cloud]
url = http://127.0.0.1:$CLOUD/v1
models = $LOCAL_MODEL
timeout = $UP_TIMEOUT
breaker_failures = 1000

[privacy]
paths = notes/secret/*

[redact]
email = [a-z0-9]+@[a-z.]+
EOF

start_server "$T/gw.log" "$T/proj" -m "$MODEL" -t 1 --ctx 448
GW=$PORT
CAIRN_URL="http://127.0.0.1:$GW" FAULT_FILE="$T/fault.json" RECORD="$T/record.txt" MANIFEST="$T/manifest.json" \
  LOCAL_MODEL="$LOCAL_MODEL" node "$CAIRN_SRC/tests/serve/gateway.js" || fail "gateway.js"
curl -s "http://127.0.0.1:$GW/v1/gateway" | python3 -c '
import json, sys
g = json.load(sys.stdin)
u = g["upstreams"][0]
assert u["name"] == "cloud" and u["requests"] > 0 and u["errors"] > 0 and u["state"] in ("up", "open", "half-open"), g
assert "timeout" in u["last_error"] or u["last_error"], g' || fail "/v1/gateway health"
stop_server "$SPID"

# budgets through restarts, with the injected clock
echo '{"mode":"ok"}' > "$T/fault.json"
echo 1700000000 > "$T/now"      # 2023-11-14 22:13:20 UTC
cp .cairn/config "$T/budget.ini"
printf '\n[upstream cloud]\nbudget_tokens = 120\n' >> "$T/budget.ini"
req() {
  curl -s -o "$T/out.json" -w '%{http_code}' -H 'X-Cairn-Route-Policy: cloud-only' \
    -d "{\"model\":\"$LOCAL_MODEL\",\"max_tokens\":4,\"messages\":[{\"role\":\"user\",\"content\":\"Once upon a time\"}]}" \
    "http://127.0.0.1:$1/v1/chat/completions"
}
export CAIRN_GATEWAY_NOW="@$T/now"
start_server "$T/gw2.log" "$T/proj" -m "$MODEL" -t 1 --gateway "$T/budget.ini"
n=0
while [ "$(req "$PORT")" = 200 ]; do n=$((n+1)); [ $n -lt 50 ] || fail "the token budget never stopped upstream use"; done
grep -q budget "$T/out.json" || fail "the stop does not say budget: $(cat "$T/out.json")"
[ $n -ge 1 ] || fail "no request fit the budget"
used=$(curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^cairn_gateway_budget_tokens_used{upstream="cloud"} //p')
[ "$used" -le 120 ] || fail "budget overrun: $used tokens of 120"
stop_server "$SPID"
start_server "$T/gw3.log" "$T/proj" -m "$MODEL" -t 1 --gateway "$T/budget.ini"
[ "$(req "$PORT")" = 429 ] || fail "the spent budget did not survive a restart"
echo $(( (1700000000 / 86400 + 1) * 86400 )) > "$T/now"    # midnight UTC
[ "$(req "$PORT")" = 200 ] || fail "the budget did not reset at the day boundary: $(cat "$T/out.json")"
stop_server "$SPID"
unset CAIRN_GATEWAY_NOW
ls .cairn/gateway/audit-2023-11-14.jsonl .cairn/gateway/audit-2023-11-15.jsonl >/dev/null || fail "audit files per day"
echo "ok ($n requests fit the 120-token budget)"
