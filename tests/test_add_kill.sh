#!/bin/bash
# test_add_kill.sh — a `cairn add` killed with SIGKILL at several points
# leaves no half-ingested document, and rerunning it completes the job with
# exactly the chunks a clean run produces.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/add_kill.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }

# A corpus big enough that an add takes a while: 400 files of ~40 KB.
python3 - "$TMP/corpus" <<'EOF'
import os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(2, 9))) for _ in range(3000)]
for i in range(400):
    d = os.path.join(root, 'd%02d' % (i % 12))
    os.makedirs(d, exist_ok=True)
    ext = '.md' if i % 3 == 0 else '.txt'
    with open(os.path.join(d, 'f%04d%s' % (i, ext)), 'w') as f:
        for p in range(40):
            if ext == '.md' and p % 10 == 0:
                f.write('## Section %d\n\n' % p)
            sent = []
            for s in range(rnd.randint(3, 7)):
                sent.append(' '.join(rnd.choice(words) for _ in range(rnd.randint(6, 16))).capitalize() + '.')
            f.write(' '.join(sent) + '\n\n')
EOF

# Reference: a clean, uninterrupted run.
mkdir -p "$TMP/ref" && "$CAIRN" init --db "$TMP/ref" >/dev/null
"$CAIRN" add "$TMP/corpus" --db "$TMP/ref" --quiet; rc=$?
check "[ $rc -eq 0 ]"
REF="$TMP/ref/.cairn/store.db"
ref_docs=$(sqlite3 "$REF" "select count(*) from docs")
ref_chunks=$(sqlite3 "$REF" "select count(*) from chunks")
sqlite3 "$REF" "select d.path || ':' || c.ord || ':' || c.chunk_key from chunks c join docs d on d.id=c.doc_id order by 1" \
  | sed "s|$TMP/corpus|C|" > "$TMP/ref.keys"
check "[ $ref_docs -eq 400 ]"

consistent() {  # every document has exactly its chunks; no orphans; OK files have their docs
  local db=$1
  local bad
  bad=$(sqlite3 "$db" "select count(*) from docs d where d.nchunks != (select count(*) from chunks c where c.doc_id = d.id)")
  [ "$bad" = 0 ] || { echo "docs with missing chunks: $bad"; return 1; }
  bad=$(sqlite3 "$db" "select count(*) from chunks c where not exists (select 1 from docs d where d.id = c.doc_id)")
  [ "$bad" = 0 ] || { echo "orphan chunks: $bad"; return 1; }
  bad=$(sqlite3 "$db" "select count(*) from files f where f.state = 1 and f.ndocs != (select count(*) from docs d where d.file_id = f.id)")
  [ "$bad" = 0 ] || { echo "complete files missing docs: $bad"; return 1; }
  bad=$(sqlite3 "$db" "select count(*) from doc_meta m where not exists (select 1 from docs d where d.id = m.doc_id)")
  [ "$bad" = 0 ] || { echo "orphan metadata: $bad"; return 1; }
  sqlite3 "$db" "pragma integrity_check" | grep -qx ok
}

mkdir -p "$TMP/i" && "$CAIRN" init --db "$TMP/i" >/dev/null
# SIGINT stops cleanly: exit 130, a message, whole documents kept
"$CAIRN" add "$TMP/corpus" --db "$TMP/i" --quiet >"$TMP/int.out" 2>&1 &
pid=$!
sleep 0.3
kill -INT $pid 2>/dev/null && interrupted=1 || interrupted=0
wait $pid; rc=$?
if [ $interrupted = 1 ] && [ $rc -ne 0 ]; then
  check "[ $rc -eq 130 ] && grep -q 'interrupted' $TMP/int.out"
else   # finished before the signal arrived: then it must be complete
  check "[ \"\$(sqlite3 $TMP/i/.cairn/store.db 'select count(*) from docs')\" = 400 ]"
fi
check "consistent $TMP/i/.cairn/store.db"

# Kill at several points of a run, then rerun to completion.
mkdir -p "$TMP/k" && "$CAIRN" init --db "$TMP/k" >/dev/null
DB="$TMP/k/.cairn/store.db"
killed=0
for delay in 0.15 0.3 0.5 0.8 1.2; do
  "$CAIRN" add "$TMP/corpus" --db "$TMP/k" --quiet >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  if kill -9 $pid 2>/dev/null; then killed=$((killed+1)); fi
  wait $pid 2>/dev/null
  check "consistent $DB"
done
check "[ $killed -ge 1 ]"

partial_docs=$(sqlite3 "$DB" "select count(*) from docs")
"$CAIRN" add "$TMP/corpus" --db "$TMP/k" --quiet; rc=$?
check "[ $rc -eq 0 ]"
check "consistent $DB"
check "[ \"\$(sqlite3 $DB 'select count(*) from docs')\" = $ref_docs ]"
check "[ \"\$(sqlite3 $DB 'select count(*) from chunks')\" = $ref_chunks ]"
check "[ \"\$(sqlite3 $DB 'select count(*) from files where state != 1')\" = 0 ]"
sqlite3 "$DB" "select d.path || ':' || c.ord || ':' || c.chunk_key from chunks c join docs d on d.id=c.doc_id order by 1" \
  | sed "s|$TMP/corpus|C|" > "$TMP/k.keys"
check "cmp -s $TMP/ref.keys $TMP/k.keys"
# chunk ids were never reused: every deletion logged refers to an id no longer present
check "[ \"\$(sqlite3 $DB 'select count(*) from chunk_deletions x join chunks c on c.id = x.chunk_id')\" = 0 ]"
echo "killed $killed runs; $partial_docs docs were in after the kills; $ref_docs after the rerun"
echo "$n checks, $fail failures"
[ $fail -eq 0 ]
