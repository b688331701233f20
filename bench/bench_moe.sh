#!/usr/bin/env bash
# bench_moe.sh — issue-5 speed table: a Mixtral-style MoE (512 hidden, 8 layers,
# 8/4 heads, 8 experts top-2, ffn 1024 per expert, vocab 32000, random weights)
# in F16 / Q8_0 / Q4_0 / Q4_K / Q4_K_M, and a DENSE model with the MoE's
# active parameters (ffn 2048 = 2 experts x 1024, same everything else) in the
# same type, measured one after the other with `cairn bench` (2 threads,
# medians), and the MoE / dense generation ratio (issue 5: >= 0.8).
# q4_k_m is llama.cpp's mix (Q6_K output and some ffn_down/attn_v), made with
# `cairn quantize` from the F16 files; the other types are written directly.
#
#   bench/bench_moe.sh [BUILD_DIR]     TYPES="f16 q8_0 q4_0 q4_k q4_k_m" REPS=3 PP=512 TG=128
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
MODELS=${MODELS:-/tmp/cairn-bench-moe}
TYPES=${TYPES:-"f16 q8_0 q4_0 q4_k q4_k_m"}
REPS=${REPS:-3}; PP=${PP:-512}; TG=${TG:-128}; THREADS=${THREADS:-2}
mkdir -p "$MODELS"
C="$BUILD/cairn"
common="--arch llama --embd 512 --layers 8 --heads 8 --kv-heads 4 --vocab 32000 --ctx 2048 --seed 1"
synth() {   # synth KIND TYPE FILE
  local extra="--ff 2048"
  [ "$1" = moe ] && extra="--experts 8 --experts-used 2 --ff 1024"
  if [ "$2" = q4_k_m ]; then
    [ -s "$MODELS/$1-f16.gguf" ] || synth "$1" f16 "$MODELS/$1-f16.gguf"
    "$C" quantize "$MODELS/$1-f16.gguf" "$3" Q4_K_M >/dev/null
  else
    "$C" model synth "$3" $common $extra --type "$(echo "$2" | tr a-z A-Z)" >/dev/null
  fi
}
# Which CPU and kernel path the numbers come from (docs/performance.md names both):
# the forced level and the AMX switch pass through (CAIRN_KERNELS, CAIRN_NO_AMX).
cpu_line() {
  local cpu amx
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  amx=$(grep -qw amx_tile /proc/cpuinfo && echo yes || echo no)
  echo "cpu: ${cpu:-unknown} (AMX in hardware: $amx); CAIRN_KERNELS=${CAIRN_KERNELS:-auto} CAIRN_NO_AMX=${CAIRN_NO_AMX:-0}"
}
cpu_line
echo "| model | type | file MiB | params M | active M | pp$PP t/s | tg$TG t/s | peak RSS MiB | MoE / dense tg |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for t in $TYPES; do
  moe_tg=""
  for kind in moe dense; do
    f="$MODELS/$kind-$t.gguf"
    [ -s "$f" ] || synth "$kind" "$t" "$f"
    j=$("$C" bench -m "$f" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json)
    row=$(echo "$j" | python3 -c '
import json, sys
j = json.load(sys.stdin)
ratio = "%.2f" % (float(sys.argv[3]) / j["gen_tokens_per_s"]) if sys.argv[3] else ""
print("| %s | %s | %.0f | %.1f | %.1f | %.0f | %.1f | %.0f | %s |" % (sys.argv[1], sys.argv[2], j["file_bytes"] / 2**20,
      j["params"] / 1e6, j["active_params"] / 1e6, j["prompt_tokens_per_s"], j["gen_tokens_per_s"], j["peak_rss_bytes"] / 2**20, ratio))
' "$kind" "$t" "$moe_tg")
    echo "$row"
    [ "$kind" = moe ] && moe_tg=$(echo "$j" | python3 -c 'import json,sys; print(json.load(sys.stdin)["gen_tokens_per_s"])')
  done
done
