#!/usr/bin/env bash
# test_search_kill.sh — the search index survives SIGKILL of `cairn add`
# (during ingest or during the index catch-up) and of a catch-up run by
# `cairn search`: after the next command the index covers exactly the
# store's live chunks, and searches find current text only.
set -euo pipefail
: "${CAIRN:?}" "${CAIRN_TEST_TMP:=/tmp}"
T="$CAIRN_TEST_TMP/test_search_kill.$$"
rm -rf "$T" && mkdir -p "$T/proj/src"
trap 'rm -rf "$T"' EXIT
cd "$T/proj"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ~600 files of generated text (unique marker word per file)
python3 - <<'PY'
import random
random.seed(7)
words = ["alpha", "beta", "gamma", "delta", "river", "stone", "cloud", "engine", "signal", "harbor",
         "market", "forest", "copper", "lantern", "meadow", "quartz", "saddle", "timber", "violet", "willow"]
for i in range(600):
    with open(f"src/f{i:04d}.txt", "w") as f:
        for p in range(8):
            f.write(" ".join(random.choice(words) for _ in range(120)) + f" marker{i} .\n\n")
PY
"$CAIRN" init >/dev/null

store_chunks() { python3 -c "import sqlite3; print(sqlite3.connect('.cairn/store.db').execute('select count(*) from chunks').fetchone()[0])"; }
index_chunks() { "$CAIRN" search --index-info | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])'; }

for delay in 0.2 0.5 0.9 1.4; do
  "$CAIRN" add src --quiet >/dev/null 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  # whatever state the kill left, the next search catches up exactly
  s=$(store_chunks); i=$(index_chunks)
  [ "$s" = "$i" ] || fail "after kill at ${delay}s: store has $s chunks, index $i"
done
"$CAIRN" add src --quiet >/dev/null
s=$(store_chunks); i=$(index_chunks)
[ "$s" = "$i" ] || fail "after completing: store $s, index $i"
[ "$s" -gt 600 ] || fail "too few chunks: $s"
"$CAIRN" search --json marker599 | grep -q 'f0599.txt' || fail "last file not searchable"

# deletions, then a kill during the catch-up of a search
rm src/f00*.txt
"$CAIRN" add src --quiet >/dev/null 2>&1 || true
"$CAIRN" rm src/f0100.txt >/dev/null
"$CAIRN" search --json marker5 >/dev/null &
pid=$!
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
s=$(store_chunks); i=$(index_chunks)
[ "$s" = "$i" ] || fail "after deletions: store $s, index $i"
n=$("$CAIRN" search --json marker100 | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
[ "$n" = 0 ] || fail "removed file still found"
echo "test_search_kill: ok"
