#!/usr/bin/env bash
# fuzz.sh — run every libFuzzer harness for a set time, keeping each one's
# corpus in fuzz/corpus/<harness>/ (new interesting inputs are added there;
# commit only small seeds, `-merge=1` below keeps the corpus minimal).
#
# usage: scripts/fuzz.sh [SECONDS_PER_HARNESS=60] [HARNESS...]
#   builds the fuzz preset (clang, ASan+UBSan, libFuzzer) first;
#   JOBS=N runs N fuzzing processes per harness (default 1: the machine may
#   be shared). Crashes land in build/fuzz/crashes/<harness>/.
# Prints per harness: executions, exec/s, coverage (cov: edges) and
# features (ft:) from libFuzzer's final stats line, and crashes found.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}
shift || true
JOBS=${JOBS:-1}
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j2 >/dev/null
HARNESSES=("$@")
if [ ${#HARNESSES[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do HARNESSES+=("$(basename "$f" .c)"); done
fi
printf '%-16s %12s %10s %8s %8s %8s\n' harness executions exec/s cov ft crashes
for h in "${HARNESSES[@]}"; do
  corpus=fuzz/corpus/$h
  crashes=build/fuzz/crashes/$h
  mkdir -p "$corpus" "$crashes" build/fuzz/work
  log=build/fuzz/$h.log
  touch "build/fuzz/work/$h.start"
  # new inputs go to a scratch directory, merged minimally into the corpus after
  rm -rf "build/fuzz/work/$h" && mkdir -p "build/fuzz/work/$h"
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "build/fuzz/$h" -max_total_time="$SECS" $( [ "$JOBS" -gt 1 ] && echo "-jobs=$JOBS -workers=$JOBS" ) -print_final_stats=1 \
    -artifact_prefix="$crashes/" -timeout=25 -rss_limit_mb=2048 "build/fuzz/work/$h" "$corpus" > "$log" 2>&1
  set -e
  "build/fuzz/$h" -merge=1 "$corpus" "build/fuzz/work/$h" >/dev/null 2>&1 || true
  execs=$( (grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" || true) | awk '{s+=$2} END {print s+0}')
  last=$( (grep -E '^#[0-9]+.*cov:' "$log" || true) | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | awk '{print $2}' || true)
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | awk '{print $2}' || true)
  eps=$( (grep -ho 'stat::average_exec_per_sec: *[0-9]*' "$log" || true) | tail -1 | awk '{print $2}')
  nc=$(find "$crashes" -type f -newer "build/fuzz/work/$h.start" | wc -l)   # this run's
  printf '%-16s %12s %10s %8s %8s %8s\n' "$h" "${execs:-?}" "${eps:-?}" "${cov:-?}" "${ft:-?}" "$nc"
done
