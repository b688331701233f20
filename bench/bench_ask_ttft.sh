#!/usr/bin/env bash
# bench_ask_ttft.sh — time to first token of `cairn ask` with a SmolLM-135M-shaped
# Q4_0 model (random weights and a SentencePiece-style vocabulary, `cairn model synth`) over 5 retrieved chunks of ~200 tokens,
# and in `cairn chat` the second question with the same system prompt: the prefix
# (system prompt + first turn) comes from the KV cache, so only the new turn is
# evaluated.
#
#   bench/bench_ask_ttft.sh [BUILD_DIR]        (default build/release)
#   MODELS=/tmp/cairn-bench THREADS=2 REPS=3
# Prints medians; the JSON lines of every run go to $MODELS/ask-ttft.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
MODELS=${MODELS:-/tmp/cairn-bench}
THREADS=${THREADS:-2}
REPS=${REPS:-1}
PY=${PYTHON:-python3}
mkdir -p "$MODELS"
M="$MODELS/smollm-synth-q4_0.gguf"
[ -s "$M" ] || "$BUILD/cairn" model synth "$M" --embd 576 --layers 30 --heads 9 --kv-heads 3 --ff 1536 \
  --vocab 49152 --tied --type Q4_0 --ctx 8192 >/dev/null
W=$(mktemp -d /tmp/cairn-ttft.XXXXXX)
trap 'rm -rf "$W"' EXIT
# five documents of about 200 tokens each by the model's tokenizer (the synthesized
# vocabulary's pieces are short: about 4 tokens per English word), all about the
# question's words
$PY - "$W/docs" <<'PY'
import os, random, sys
d = sys.argv[1]; os.makedirs(d)
random.seed(7)
words = ("harbour lighthouse keeper lamp tower storm reef vessel ferry museum granite lantern "
         "winter summer island coast beam signal night fog tide rock station").split()
for i in range(5):
    s = []
    while sum(len(x.split()) for x in s) < 42:
        s.append(" ".join(random.choice(words) for _ in range(random.randint(8, 14))).capitalize() + ".")
    open(os.path.join(d, "doc%d.txt" % i), "w").write("The lighthouse keeper and the harbour lamp. " + " ".join(s) + "\n")
PY
"$BUILD/cairn" init --db "$W" >/dev/null
"$BUILD/cairn" add --db "$W" --quiet "$W/docs" >/dev/null
OUT="$MODELS/ask-ttft.jsonl"
: > "$OUT"
ask() { "$BUILD/cairn" ask --db "$W" -m "$M" -t "$THREADS" -c 4096 -n 16 --k 5 --budget 2000 --json \
          "When did the lighthouse keeper light the harbour lamp?"; }
chat() { printf 'When did the lighthouse keeper light the harbour lamp?\nWhat did the storm do to the tower?\n' |
           "$BUILD/cairn" chat --db "$W" -m "$M" -t "$THREADS" -c 4096 -n 16 --k 5 --budget 2000 --json "$@"; }
"$BUILD/cairn" generate -m "$M" -p warm -n 1 -t "$THREADS" >/dev/null 2>&1   # the model file into the page cache
for r in $(seq 1 "$REPS"); do
  ask | sed 's/^/{"run": "ask", "j": /; s/$/}/' >> "$OUT"
  chat | sed 's/^/{"run": "chat", "j": /; s/$/}/' >> "$OUT"
  chat --no-prompt-cache | sed 's/^/{"run": "nocache", "j": /; s/$/}/' >> "$OUT"
done
$PY - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
ask = [r["j"] for r in rows if r["run"] == "ask"]
chat = [r["j"] for r in rows if r["run"] == "chat"]
nc = [r["j"] for r in rows if r["run"] == "nocache"]
t1, t2 = chat[0::2], chat[1::2]
med = lambda xs, k: statistics.median(x["timings"][k] for x in xs)
print("| run | sources | context tokens | prompt tokens | reused (KV cache) | evaluated | TTFT ms | prompt ms | gen t/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, xs in (("ask", ask), ("chat, question 1", t1), ("chat, question 2", t2),
                 ("chat, question 2, --no-prompt-cache", nc[1::2])):
    x = xs[0]
    print("| %s | %d | %d | %d | %d | %d | %.0f | %.0f | %.1f |" % (name, len(x["sources"]), x["context_tokens"],
          med(xs, "prompt_tokens"), med(xs, "reused_tokens"), med(xs, "prompt_tokens") - med(xs, "reused_tokens"),
          med(xs, "ttft_ms"), med(xs, "prompt_ms"), med(xs, "tokens_per_s")))
print("\nmedians of %d runs; chat question 2: TTFT with the prefix cache / without = %.2f"
      % (len(ask), med(t2, "ttft_ms") / med(nc[1::2], "ttft_ms")))
PY
