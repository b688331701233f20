#!/usr/bin/env bash
# test_serve.sh — a real `cairn serve` on a free loopback port, driven by the
# official OpenAI Node client (unmodified, from $CAIRN_TEST_SHARED/clients)
# and by raw sockets: tests/serve/openai_client.js (chat, completions,
# models, grounded chat, search, documents, errors), hostile.js (malformed
# HTTP, huge headers, slow bodies, bad UTF-8, upload traversal/symlinks)
# and concurrency.js (batched clients = alone, 429, disconnects).
set -euo pipefail
: "${CAIRN:?}" "${CAIRN_SRC:?}" "${CAIRN_TEST_TMP:=/tmp}"
SHARED="${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-$CAIRN_SRC/../shared}}"
MODEL="$SHARED/models/stories260K/stories260K.gguf"
OPENAI="$SHARED/clients/openai-node/node_modules/openai"
if [ ! -f "$MODEL" ] || [ ! -d "$OPENAI" ]; then echo "SKIP: shared models or the openai client absent"; exit 77; fi
command -v node >/dev/null || { echo "SKIP: node not installed"; exit 77; }
export CAIRN_TEST_SHARED="$SHARED"
T="$CAIRN_TEST_TMP/test_serve.$$"
rm -rf "$T" && mkdir -p "$T/proj/notes" "$T/outside"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$T"/*.log; do echo "== $f" >&2; tail -20 "$f" >&2; done; exit 1; }

# start_server LOG ARGS... : sets PORT (the server picks a free port and prints it)
start_server() {
  local log=$1; shift
  "$CAIRN" serve --port 0 "$@" > "$log" 2>&1 &
  PIDS+=($!)
  local pid=$!
  for _ in $(seq 1 3000); do   # up to 300 s: model loads under ASan on a loaded machine
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$PORT" ] && return 0
    kill -0 "$pid" 2>/dev/null || fail "the server did not start: $(cat "$log")"
    sleep 0.1
  done
  fail "the server did not report its port"
}

cd "$T/proj"
cat > notes/pumps.md <<'EOF2'
# Garden pumps

## Maintenance
Clean the impeller of the centrifugal pump every spring. A clogged impeller
reduces the flow rate.
EOF2
cat > notes/bread.md <<'EOF2'
# Baking
Sourdough bread needs a lively starter and a long, cool fermentation.
EOF2
"$CAIRN" init >/dev/null
"$CAIRN" add notes --quiet >/dev/null
echo "secret file outside the store" > "$T/outside/target.md"
mkdir -p .cairn/uploads
ln -s "$T/outside/target.md" .cairn/uploads/evil.md
printf 'k3y-%s\n' "$$" > "$T/key"

# the expected greedy text, from cairn generate
EXPECT=$("$CAIRN" generate -m "$MODEL" -p "Once upon a time" -n 30 --temp 0 --json -t 1 |
         python3 -c 'import json,sys; print(json.load(sys.stdin)["text"], end="")')
[ -n "$EXPECT" ] || fail "cairn generate gave no text"

EMB="$SHARED/models/glove-bert/glove6B-100d-bert-22k-d128-Q8_0.gguf"
EMB_ARGS=() CAIRN_EMBED_MODEL=""
if [ -f "$EMB" ]; then EMB_ARGS=(--embed-model "$EMB"); CAIRN_EMBED_MODEL=glove6B-100d-bert-22k-d128-Q8_0; fi
start_server "$T/a.log" -m "$MODEL" "${EMB_ARGS[@]}" --api-key-file "$T/key" --timeout 2 --parallel 2 -t 2
export CAIRN_URL="http://127.0.0.1:$PORT" CAIRN_KEY="k3y-$$" CAIRN_MODEL=stories260K CAIRN_EXPECT="$EXPECT" CAIRN_EMBED_MODEL
if [ -n "$CAIRN_EMBED_MODEL" ]; then   # the server's vector is cairn embed's
  "$CAIRN" embed -m "$EMB" --json "the cat sat on the mat" > "$T/embed.json" || fail "cairn embed"
  export CAIRN_EMBED_REF="$T/embed.json"
fi
node "$CAIRN_SRC/tests/serve/openai_client.js" || fail "openai client"
node "$CAIRN_SRC/tests/serve/hostile.js" || fail "hostile HTTP"
[ "$(cat "$T/outside/target.md")" = "secret file outside the store" ] || fail "an upload wrote through a symlink"
[ ! -L .cairn/uploads/evil.md ] && [ -f .cairn/uploads/evil.md ] || fail "the planted symlink was not replaced by a file"
[ ! -e "$T/proj/escape.md" ] && [ ! -e "$T/escape.md" ] && [ ! -e .cairn/escape.md ] || fail "an upload escaped"
curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 || node -e 'require("http").get(process.argv[1],r=>process.exit(r.statusCode==200?0:1))' "$CAIRN_URL/health" || fail "server died"

# a store without a chat model: /v1/ask answers extractively, chat models are 404
"$CAIRN" model synth "$T/rerank.gguf" --arch bert --pooling 4 --cls-out 1 >/dev/null
"$CAIRN" embed -m "$T/rerank.gguf" --rerank "a cat" --json "the dog" "a cat sat" "cars" > "$T/rerank.json"
start_server "$T/d.log" --db "$T/proj/.cairn" --rerank-model "$T/rerank.gguf"
python3 - "http://127.0.0.1:$PORT" "$T/rerank.json" <<'PY' || fail "extractive ask / rerank"
import json, sys, urllib.request, urllib.error
base = sys.argv[1]
def post(path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
st, a = post("/v1/ask", {"question": "How do I clean the centrifugal pump impeller?"})
assert st == 200 and a["kind"] == "extractive" and "impeller" in a["answer"] and "[1]" in a["answer"], a
assert a["sources"][0]["path"].endswith("pumps.md") and a["sources"][0]["staleness"] == "fresh", a
# every answer says which route answered, with no gateway too
req = urllib.request.Request(base + "/v1/ask", json.dumps({"question": "pump impeller"}).encode(), {"Content-Type": "application/json"})
with urllib.request.urlopen(req) as r:
    assert r.headers.get("X-Cairn-Route") == "local", dict(r.headers)
st, a = post("/v1/ask", {"question": "bread", "filter": "path GLOB ("})
assert st == 400 and "filter" in a["error"]["message"], a
st, a = post("/v1/chat/completions", {"model": "cairn-rag", "messages": [{"role": "user", "content": "x"}]})
assert st == 404 and a["error"]["code"] == "model_not_found", a
req = urllib.request.Request(base + "/v1/chat/completions", json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode(), {"Content-Type": "application/json"})
try:
    urllib.request.urlopen(req)
    assert False, "a chat request without a chat model succeeded"
except urllib.error.HTTPError as e:
    assert e.headers.get("X-Cairn-Route") == "error", dict(e.headers)
# rerank: the scores of cairn embed --rerank, best first, top_n
ref = json.load(open(sys.argv[2]))["scores"]
docs = ["the dog", "a cat sat", "cars"]
st, a = post("/v1/rerank", {"model": "rerank", "query": "a cat", "documents": docs})
assert st == 200 and len(a["results"]) == 3, a
order = sorted(range(3), key=lambda i: (-ref[i], i))
assert [x["index"] for x in a["results"]] == order, (a, ref)
assert all(x["relevance_score"] == ref[x["index"]] and x["document"]["text"] == docs[x["index"]] for x in a["results"]), (a, ref)
st, a = post("/v1/rerank", {"model": "rerank", "query": "a cat", "documents": docs, "top_n": 1})
assert st == 200 and len(a["results"]) == 1 and a["results"][0]["index"] == order[0], a
st, a = post("/v1/rerank", {"model": "rerank", "query": "a cat", "documents": []})
assert st == 400, a
st, a = post("/v1/rerank", {"model": "other", "query": "a cat", "documents": docs})
assert st == 404, a
PY

# many clients: a slower synthetic model so that long requests stay long
"$CAIRN" model synth "$T/syn.gguf" --embd 768 --layers 8 --heads 8 --ctx 2048 --type Q8_0 --seed 3 >/dev/null
start_server "$T/b.log" --no-store -m "$T/syn.gguf" --parallel 2 --queue 1 -t 2
CAIRN_URL="http://127.0.0.1:$PORT" CAIRN_KEY="" CAIRN_MODEL=syn CAIRN_LONG=1900 \
  node "$CAIRN_SRC/tests/serve/concurrency.js" || fail "concurrency"

# a non-loopback bind without a key says so loudly
"$CAIRN" serve --no-store -m "$MODEL" --host 0.0.0.0 --port 0 > "$T/c.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 3000); do grep -q "listening" "$T/c.log" && break; sleep 0.1; done
grep -q "WARNING: cairn serve is listening on 0.0.0.0 WITHOUT an API key" "$T/c.log" || fail "no warning: $(cat "$T/c.log")"
# usage errors
"$CAIRN" serve --api-key a --api-key-file b 2>/dev/null && fail "both key options accepted"
"$CAIRN" serve --no-store 2>/dev/null && fail "nothing to serve accepted"
"$CAIRN" serve --no-store -m "$MODEL" --host nowhere.invalid --port 0 2>/dev/null && fail "a host name accepted"
echo "ok"
