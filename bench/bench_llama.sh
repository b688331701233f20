#!/usr/bin/env bash
# bench_llama.sh — issue-4 speed table: random-weight GGUFs of the SmolLM-135M and
# TinyLlama-1.1B shapes (written by bench/mkmodel into $MODELS, default /tmp/cairn-bench),
# `cairn bench` on each, and the machine's read bandwidth (bench/membw) for the bound.
#
#   bench/bench_llama.sh [BUILD_DIR]          (default build/release)
#   SHAPES="smollm tinyllama" TYPES="f16 q8_0 q4_0 q4_k_m" THREADS=2 REPS=3 PP=512 TG=128
#   CAIRN_NO_AMX=1 bench/bench_llama.sh      (an AMX host measuring its non-AMX path)
#   CAIRN_KERNELS=avx2 bench/bench_llama.sh  (a forced kernel level)
#
# Prints a markdown table ("bound t/s" = read bandwidth / weight bytes per token, the
# decode ceiling); one JSON line per run goes to $MODELS/results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
MODELS=${MODELS:-/tmp/cairn-bench}
SHAPES=${SHAPES:-"smollm tinyllama"}
TYPES=${TYPES:-"f16 q8_0 q4_0 q4_k_m"}
THREADS=${THREADS:-2}
REPS=${REPS:-3}
PP=${PP:-512}
TG=${TG:-128}
PY=${PYTHON:-python3}
mkdir -p "$MODELS"
for b in cairn mkmodel membw; do
  [ -x "$BUILD/$b" ] || { echo "missing $BUILD/$b (build first: cmake --build --preset release)" >&2; exit 1; }
done
# Which CPU and kernel path the numbers come from (docs/performance.md names both):
# the forced level and the AMX switch pass through (CAIRN_KERNELS, CAIRN_NO_AMX).
cpu_line() {
  local cpu amx
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  amx=$(grep -qw amx_tile /proc/cpuinfo && echo yes || echo no)
  echo "cpu: ${cpu:-unknown} (AMX in hardware: $amx); CAIRN_KERNELS=${CAIRN_KERNELS:-auto} CAIRN_NO_AMX=${CAIRN_NO_AMX:-0}"
}
cpu_line
BW=$("$BUILD/membw" "$THREADS" 1024 | $PY -c 'import json,sys; print(json.load(sys.stdin)["read_gb_per_s"])')
echo "read bandwidth, $THREADS threads: $BW GB/s"
echo
echo "| shape | type | file MiB | pp$PP t/s | tg$TG t/s | peak RSS MiB | weights MiB/token | GB/s | % of read bw | bound t/s | kernels |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
for shape in $SHAPES; do
  for type in $TYPES; do
    f="$MODELS/$shape-$type.gguf"
    [ -s "$f" ] || "$BUILD/mkmodel" "$f" "$shape" "$type"
    j=$("$BUILD/cairn" bench -m "$f" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json)
    echo "$j" >> "$MODELS/results.jsonl"
    echo "$j" | $PY -c '
import json, sys
j = json.load(sys.stdin); bw = float(sys.argv[3])
print("| %s | %s | %.0f | %.0f | %.1f | %.0f | %.1f | %.1f | %.0f%% | %.1f | %s |" % (sys.argv[1], sys.argv[2],
      j["file_bytes"] / 2**20, j["prompt_tokens_per_s"], j["gen_tokens_per_s"], j["peak_rss_bytes"] / 2**20,
      j["weight_bytes_per_token"] / 2**20, j["gen_weight_gb_per_s"], 100 * j["gen_weight_gb_per_s"] / bw,
      bw * 1e9 / j["weight_bytes_per_token"], j["kernels"] + ("+amx" if j.get("amx") else "")))
' "$shape" "$type" "$BW"
  done
done
