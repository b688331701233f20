#!/usr/bin/env bash
# bench_answers.sh — extractive answers on SQuAD v1.1 dev: the store holds every
# paragraph (corpus.jsonl through `cairn add`), each question is asked as is, and
# bench_answers reports the retrieval hit rate next to how often the answer's first
# sentence (S1) / one of its first three (S3) contains a gold answer.
#
#   bench/bench_answers.sh [BUILD_DIR]     (default build/release)
#   SQUAD=../shared/data/qa/squad-v1.1-dev STORE=/tmp/cairn-squad LIMIT=0 (all 10,570)
#   VARIANTS="decay proximity ..." pairs, e.g. "0:0 0.15:0 0.15:0.25"
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
SQUAD=${SQUAD:-${CAIRN_TEST_SHARED:-../shared}/data/qa/squad-v1.1-dev}
STORE=${STORE:-/tmp/cairn-squad}
LIMIT=${LIMIT:-0}
VARIANTS=${VARIANTS:-"0:0 0.15:0 0.15:0.25 0.4:0"}
for b in cairn bench_answers; do
  [ -x "$BUILD/$b" ] || { echo "missing $BUILD/$b (build first)" >&2; exit 1; }
done
[ -f "$SQUAD/corpus.jsonl" ] || { echo "no SQuAD at $SQUAD" >&2; exit 1; }
if [ ! -d "$STORE/.cairn" ]; then
  mkdir -p "$STORE"
  "$BUILD/cairn" init --db "$STORE" >/dev/null
  "$BUILD/cairn" add --db "$STORE" --quiet "$SQUAD/corpus.jsonl" >/dev/null
fi
echo "| rank decay | proximity | questions | k | budget | hit@1 | hit@k | in context | S1 | S3 | any sentence | ms/question |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for v in $VARIANTS; do
  d=${v%%:*}; p=${v##*:}
  row=$("$BUILD/bench_answers" "$STORE/.cairn" "$SQUAD/answers.jsonl" --limit "$LIMIT" --decay "$d" --proximity "$p")
  echo "| $d | $p $row"
done
