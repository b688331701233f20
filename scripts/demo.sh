#!/usr/bin/env bash
# demo.sh — set up, build, index cairn's own docs/ into a fresh store, search it and ask it a question.
#   scripts/demo.sh [SEARCH QUERY] [QUESTION]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" >/dev/null
CAIRN=$PWD/build/release/cairn
store=$(mktemp -d /tmp/cairn-demo.XXXXXX)
"$CAIRN" init --db "$store"
"$CAIRN" add --db "$store" docs README.md
"$CAIRN" status --db "$store"
query=${1:-"chunk size and overlap"}
echo; echo "\$ cairn search \"$query\""
"$CAIRN" search --db "$store" --k 5 "$query"
question=${2:-"what happens to a chunk id when its document is re-ingested?"}
echo; echo "\$ cairn ask \"$question\"   (no model: an extractive answer; -m MODEL.gguf generates one)"
"$CAIRN" ask --db "$store" "$question"
echo; echo "(store left at $store)"
