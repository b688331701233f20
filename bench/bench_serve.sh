#!/usr/bin/env bash
# bench_serve.sh — `cairn serve` under load on loopback, with the C load
# client bench_serve_load (keep-alive connections, one thread each):
#   search   /v1/search BM25 over 100k chunks (bench_bm25's corpus and
#            queries from ../shared), 32 concurrent clients
#   gen      SmolLM-135M-shaped Q4_0 (cairn model synth): 1 streaming client
#            vs 8 at once (--parallel 8), against `cairn bench` tg
#   embed    /v1/embeddings (batches of 32 texts, 1 client) against
#            `cairn embed --file` on the same 2000 texts (glove-bert Q8_0)
#   soak     64 concurrent clients for SOAK seconds (stories260K completions
#            and searches mixed), no errors allowed
#
#   bench/bench_serve.sh [BUILD_DIR] [search|gen|soak|all]
#   SEARCH_S=20 SOAK=60 CHUNKS=100000 TG=128
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build/release}" && pwd)
WHAT=${2:-all}
C="$BUILD/cairn"
L="$BUILD/bench_serve_load"
export CAIRN_TEST_SHARED=${CAIRN_TEST_SHARED:-$(cd .. && pwd)/shared}
TMP=$(mktemp -d /tmp/cairn-serve-bench-XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # user + system clock ticks of a process
serve() {   # serve LOG ARGS... -> PORT
  local log=$1; shift
  "$C" serve --port 0 "$@" > "$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 3000); do
    PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
    [ -n "$PORT" ] && return 0
    sleep 0.1
  done
  echo "server did not start: $(cat "$log")" >&2; exit 1
}

if [ "$WHAT" = search ] || [ "$WHAT" = all ]; then
  "$BUILD/bench_bm25" --no-fts --json --chunks "${CHUNKS:-100000}" --queries 300 --dump "$TMP" > /dev/null
  python3 - "$TMP" <<'PY'
import json, sys
d = sys.argv[1]
with open(d + "/chunks.txt") as f, open(d + "/corpus.jsonl", "w") as o:
    for i, line in enumerate(f):
        o.write(json.dumps({"_id": "c%d" % i, "text": line.strip()}) + "\n")
PY
  mkdir -p "$TMP/store" && (cd "$TMP/store" && "$C" init >/dev/null && printf '\n[chunk]\nsize = 400\n' >> .cairn/config &&
                            "$C" add "$TMP/corpus.jsonl" --quiet >/dev/null)
  chunks=$(cd "$TMP/store" && "$C" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
  serve "$TMP/search.log" --db "$TMP/store"
  "$L" --port "$PORT" --path /v1/search -c 1 -n 50 --body '{"query":@Q@,"k":10}' --queries "$TMP/queries.txt" >/dev/null  # warm
  echo "search: $chunks chunks, 32 keep-alive clients, ${SEARCH_S:-20} s"
  c0=$(cpu_ticks "${PIDS[-1]}")
  out=$("$L" --port "$PORT" --path /v1/search -c 32 -d "${SEARCH_S:-20}" --body '{"query":@Q@,"k":10}' --queries "$TMP/queries.txt" --json)
  c1=$(cpu_ticks "${PIDS[-1]}")
  # on a shared machine the wall-clock rate is what the server got; its CPU
  # time per request says what 2 free cores would give (load client excluded)
  python3 - "$out" "$c0" "$c1" "$(getconf CLK_TCK)" <<'PY'
import json, sys
o = json.loads(sys.argv[1]); ticks = (int(sys.argv[3]) - int(sys.argv[2])) / float(sys.argv[4])
cpu_ms = 1000.0 * ticks / max(1, o["requests"])
print("  %d requests in %.1f s: %.1f req/s, %d errors; latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms" %
      (o["requests"], o["seconds"], o["rps"], o["errors"], o["p50_ms"], o["p90_ms"], o["p99_ms"]))
print("  server CPU %.3f ms per request -> %.0f req/s on 2 free cores" % (cpu_ms, 2000.0 / cpu_ms if cpu_ms else 0))
PY
  kill "${PIDS[-1]}"
fi

if [ "$WHAT" = gen ] || [ "$WHAT" = all ]; then
  M="$TMP/smol-q4_0.gguf"
  "$C" model synth "$M" --vocab 49152 --embd 576 --ff 1536 --layers 30 --heads 9 --kv-heads 3 --ctx 2048 --tied --type Q4_0 >/dev/null
  TG=${TG:-128}
  tg=$("$C" bench -m "$M" -p 16 -n "$TG" -t 2 -r 3 --json | python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["gen_tokens_per_s"])')
  serve "$TMP/gen.log" --no-store -m "$M" --parallel 8 -t 2 --ctx 1024
  body='{"model":"smol-q4_0","prompt":"Once upon a time","max_tokens":'$TG',"temperature":0,"stream":true,"stream_options":{"include_usage":true}}'
  "$L" --port "$PORT" --path /v1/completions -c 1 -n 1 --body "$body" >/dev/null   # warm
  one=$("$L" --port "$PORT" --path /v1/completions -c 1 -n 3 --body "$body" --json)
  eight=$("$L" --port "$PORT" --path /v1/completions -c 8 -n 2 --body "$body" --json)
  python3 - "$tg" "$one" "$eight" <<'PY'
import json, sys
tg, one, eight = float(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
# per-stream rate of the single client: its tokens over its request time (prompt + generation)
print("generation (SmolLM-135M-shaped Q4_0, 2 threads): cairn bench tg %.1f tok/s" % tg)
print("  1 streaming client : %.1f tok/s (%.0f%% of tg), %d errors" % (one["tokens_per_s"], 100 * one["tokens_per_s"] / tg, one["errors"]))
print("  8 streaming clients: %.1f tok/s aggregate = %.2fx the single client, %d errors" %
      (eight["tokens_per_s"], eight["tokens_per_s"] / one["tokens_per_s"], eight["errors"]))
PY
  kill "${PIDS[-1]}"
fi

if [ "$WHAT" = embed ] || [ "$WHAT" = all ]; then
  EM="$CAIRN_TEST_SHARED/models/glove-bert/glove6B-100d-bert-22k-d128-Q8_0.gguf"
  python3 - "$CAIRN_TEST_SHARED/data/qa/squad-v1.1-dev" "$TMP" <<'PY'
import json, os, sys, glob
src, out = sys.argv[1], sys.argv[2]
texts = []
for f in sorted(glob.glob(os.path.join(src, "*.jsonl"))):
    for line in open(f):
        d = json.loads(line)
        t = d.get("question") or d.get("text") or ""
        if t:
            texts.append(" ".join(t.split())[:300])
        if len(texts) >= 2000:
            break
    if len(texts) >= 2000:
        break
open(os.path.join(out, "texts.txt"), "w").write("\n".join(texts) + "\n")
with open(os.path.join(out, "embed_bodies.txt"), "w") as o:
    for i in range(0, len(texts), 32):
        o.write(json.dumps({"model": "glove6B-100d-bert-22k-d128-Q8_0", "input": texts[i:i + 32]}) + "\n")
print(len(texts), "texts")
PY
  t0=$(date +%s%N); "$C" embed -m "$EM" -t 2 --file "$TMP/texts.txt" > /dev/null; t1=$(date +%s%N)
  n=$(wc -l < "$TMP/texts.txt")
  serve "$TMP/embed.log" --no-store --embed-model "$EM" -t 2
  nb=$(wc -l < "$TMP/embed_bodies.txt")
  out=$("$L" --port "$PORT" --path /v1/embeddings -c 1 -n "$nb" --bodies "$TMP/embed_bodies.txt" --json)
  python3 - "$n" "$t0" "$t1" "$out" <<'PY'
import json, sys
n, t0, t1, o = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
cli = n / ((t1 - t0) / 1e9)
srv = n / o["seconds"]
print("embeddings (glove-bert Q8_0, 2 threads, %d texts): cairn embed %.0f texts/s (incl. model load), /v1/embeddings %.0f texts/s (batches of 32, 1 client) = %.2fx, %d errors"
      % (n, cli, srv, srv / cli, o["errors"]))
PY
  kill "${PIDS[-1]}"
fi

if [ "$WHAT" = soak ] || [ "$WHAT" = all ]; then
  SOAK=${SOAK:-60}
  mkdir -p "$TMP/s2/notes" && cp docs/*.md "$TMP/s2/notes/" && (cd "$TMP/s2" && "$C" init >/dev/null && "$C" add notes --quiet >/dev/null)
  serve "$TMP/soak.log" --db "$TMP/s2" -m "$CAIRN_TEST_SHARED/models/stories260K/stories260K.gguf" --parallel 8 --queue 64 -t 2
  echo "soak: 64 clients for $SOAK s (32 completions of 16 tokens, 32 searches)"
  "$L" --port "$PORT" --path /v1/completions -c 32 -d "$SOAK" \
       --body '{"model":"stories260K","prompt":"Once upon a time","max_tokens":16,"temperature":0.8}' &
  a=$!
  "$L" --port "$PORT" --path /v1/search -c 32 -d "$SOAK" --body '{"query":"server limits and the prompt cache","k":5}' &
  b=$!
  wait $a; ra=$?; wait $b; rb=$?
  [ $ra -eq 0 ] && [ $rb -eq 0 ] && echo "soak: no errors" || { echo "soak: ERRORS"; exit 1; }
fi
