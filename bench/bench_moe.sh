#!/usr/bin/env bash
# bench_moe.sh — issue-5 speed table: a Mixtral-style MoE (512 hidden, 8 layers,
# 8/4 heads, 8 experts top-2, ffn 1024 per expert, vocab 32000, random weights)
# in F16 / Q8_0 / Q4_0 / Q4_K, and a DENSE model with the MoE's active
# parameters (ffn 2048 = 2 experts x 1024, same everything else) in the same
# type, measured one after the other with `cairn bench` (2 threads, medians).
#
#   bench/bench_moe.sh [BUILD_DIR]     TYPES="f16 q8_0 q4_0 q4_k" REPS=3 PP=512 TG=128
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
MODELS=${MODELS:-/tmp/cairn-bench-moe}
TYPES=${TYPES:-"f16 q8_0 q4_0 q4_k"}
REPS=${REPS:-3}; PP=${PP:-512}; TG=${TG:-128}; THREADS=${THREADS:-2}
mkdir -p "$MODELS"
C="$BUILD/cairn"
common="--arch llama --embd 512 --layers 8 --heads 8 --kv-heads 4 --vocab 32000 --ctx 2048 --seed 1"
echo "| model | type | file MiB | params M | active M | pp$PP t/s | tg$TG t/s | peak RSS MiB |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for t in $TYPES; do
  T=$(echo "$t" | tr a-z A-Z)
  moe="$MODELS/moe-$t.gguf"; dense="$MODELS/dense-$t.gguf"
  [ -s "$moe" ] || "$C" model synth "$moe" $common --experts 8 --experts-used 2 --ff 1024 --type "$T" >/dev/null
  [ -s "$dense" ] || "$C" model synth "$dense" $common --ff 2048 --type "$T" >/dev/null
  for kind in moe dense; do
    f="$MODELS/$kind-$t.gguf"
    "$C" bench -m "$f" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json | python3 -c '
import json, os, sys
j = json.load(sys.stdin)
print("| %s | %s | %.0f | %.1f | %.1f | %.0f | %.1f | %.0f |" % (sys.argv[1], sys.argv[2], j["file_bytes"] / 2**20,
      j["params"] / 1e6, j["active_params"] / 1e6, j["prompt_tokens_per_s"], j["gen_tokens_per_s"], j["peak_rss_bytes"] / 2**20))
' "$kind" "$t"
  done
done
