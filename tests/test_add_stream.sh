#!/bin/bash
# test_add_stream.sh — record files (JSONL, CSV with a row per document) are
# streamed: a file larger than the whole-file cap (ingest.max_file_mb)
# ingests fully and searches correctly; malformed and over-long lines
# mid-file are reported with their line number and the other records kept;
# a SIGKILL midway through a big JSONL leaves the store consistent and a
# rerun completes it with exactly the chunks of a clean run.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/add_stream.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB CAIRN_MAX_FILE_MB CAIRN_MAX_STREAM_GB CAIRN_MAX_RECORD_MB
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 absent"; exit 77; }

# ~6 MB corpus.jsonl of 4000 BEIR-style records; line 1500 is malformed,
# line 2500 is an array, line 3000 is a 1.5 MB record (over a 1 MB record
# cap), the last record holds a unique word.
python3 - "$TMP/data" <<'EOF'
import os, random, sys
root = sys.argv[1]
os.makedirs(root)
rnd = random.Random(11)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(2, 9))) for _ in range(3000)]
with open(os.path.join(root, 'corpus.jsonl'), 'w') as f:
    for i in range(1, 4001):
        if i == 1500:
            f.write('{"_id": "bad", "text": "no closing quote}\n'); continue
        if i == 2500:
            f.write('[1, 2, 3]\n'); continue
        if i == 3000:
            f.write('{"_id": "huge", "text": "%s"}\n' % ('x' * 1500000)); continue
        if i == 3500:
            f.write('{"_id": "d10", "text": "a repeated id: kept as its own document"}\n'); continue
        text = ' '.join(rnd.choice(words) for _ in range(rnd.randint(20, 300)))
        if i == 4000:
            text += ' zanzibarquux'
        f.write('{"_id": "d%d", "title": "Title %d", "text": "%s", "metadata": {"year": %d}}\n' % (i, i, text, 1990 + i % 30))
with open(os.path.join(root, 'rows.csv'), 'w') as f:
    f.write('id,title,body\n')
    for i in range(1, 3001):
        body = ' '.join(rnd.choice(words) for _ in range(rnd.randint(20, 120)))
        if i % 7 == 0:
            body = '"' + body.replace(' ', '\n', 3) + ' said ""quoted"""'
        if i == 3000:
            body += ' csvlastrowword'
        f.write('r%d,Row %d,%s\n' % (i, i, body))
with open(os.path.join(root, 'big.txt'), 'w') as f:
    f.write(('plain text line\n') * 100000)
EOF
ls -la "$TMP/data" | sed 's/^/  /'

consistent() {  # every document has exactly its chunks; no orphans; OK files have their docs
  local db=$1 bad
  bad=$(sqlite3 "$db" "select count(*) from docs d where d.nchunks != (select count(*) from chunks c where c.doc_id = d.id)")
  [ "$bad" = 0 ] || { echo "docs with missing chunks: $bad"; return 1; }
  bad=$(sqlite3 "$db" "select count(*) from chunks c where not exists (select 1 from docs d where d.id = c.doc_id)")
  [ "$bad" = 0 ] || { echo "orphan chunks: $bad"; return 1; }
  bad=$(sqlite3 "$db" "select count(*) from files f where f.state = 1 and f.ndocs != (select count(*) from docs d where d.file_id = f.id)")
  [ "$bad" = 0 ] || { echo "complete files missing docs: $bad"; return 1; }
  sqlite3 "$db" "pragma integrity_check" | grep -qx ok
}

# Whole-file cap 1 MB, record cap 1 MB: the 6 MB JSONL and the CSV still
# stream; big.txt (1.6 MB, read whole) is skipped by the whole-file cap.
mkdir -p "$TMP/s" && "$CAIRN" init --db "$TMP/s" >/dev/null
printf '[ingest]\nmax_file_mb = 1\nmax_record_mb = 1\n' >> "$TMP/s/.cairn/config"
DB="$TMP/s/.cairn/store.db"
"$CAIRN" add "$TMP/data" --db "$TMP/s" >"$TMP/add.out" 2>"$TMP/add.err"; rc=$?
cat "$TMP/add.err" | sed 's/^/  stderr: /'
check "[ $rc -eq 0 ]"
check "grep -q 'corpus.jsonl: line 1500: invalid JSON' $TMP/add.err"
check "grep -q 'corpus.jsonl: line 2500: expected a JSON object' $TMP/add.err"
check "grep -q 'corpus.jsonl: line 3000: longer than the record cap of 1048576 bytes' $TMP/add.err"
check "grep -q 'big.txt: .*exceeds the size cap of 1048576 bytes (ingest.max_file_mb)' $TMP/add.out $TMP/add.err"
jdocs=$(sqlite3 "$DB" "select count(*) from docs where path like '%corpus.jsonl'")
check "[ \"$jdocs\" = 3997 ]"
check "grep -q 'corpus.jsonl: line 3500: id \"d10\" repeats an earlier record; keyed \"d10@line:3500\"' $TMP/add.err"
check "[ \"\$(sqlite3 $DB \"select count(*) from docs where rkey in ('d10', 'd10@line:3500')\")\" = 2 ]"
check "[ \"\$(sqlite3 $DB \"select count(*) from docs where path like '%rows.csv'\")\" = 3000 ]"
check "[ \"\$(sqlite3 $DB \"select count(*) from docs where rkey in ('bad', 'huge')\")\" = 0 ]"
check "[ \"\$(sqlite3 $DB \"select state from files where path like '%corpus.jsonl'\")\" = 1 ]"
check "consistent $DB"
"$CAIRN" search zanzibarquux --db "$TMP/s" --json --k 3 >"$TMP/q1.json"
check "python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[\"results\"]; sys.exit(0 if r and r[0][\"key\"] == \"d4000\" and r[0][\"path\"].endswith(\"corpus.jsonl\") else 1)' $TMP/q1.json"
"$CAIRN" search csvlastrowword --db "$TMP/s" --json --k 3 >"$TMP/q2.json"
check "python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[\"results\"]; sys.exit(0 if r and r[0][\"key\"] == \"r3000\" else 1)' $TMP/q2.json"
# a quoted multi-line CSV cell came through whole
check "[ \"\$(sqlite3 $DB \"select count(*) from chunks c join docs d on d.id = c.doc_id where d.rkey = 'r7' and c.text like '%said \\\"quoted\\\"%'\")\" = 1 ]"
# re-adding the unchanged files reads nothing again
"$CAIRN" add "$TMP/data" --db "$TMP/s" >"$TMP/add2.out" 2>&1
check "grep -q '0 added, 0 updated, 2 unchanged' $TMP/add2.out"

# A CSV row over the record cap is skipped with a warning naming its line
# (a quoted cell of 1.2 MB); the other rows are kept.
python3 - "$TMP/csvbad" <<'EOF'
import os, sys
os.makedirs(sys.argv[1])
with open(os.path.join(sys.argv[1], 'long.csv'), 'w') as f:
    f.write('id,body\n')
    for i in range(1, 101):
        f.write('r%d,%s\n' % (i, ('"' + 'y' * 1200000 + '"') if i == 50 else 'short row %d' % i))
EOF
"$CAIRN" add "$TMP/csvbad" --db "$TMP/s" >"$TMP/add3.out" 2>&1
check "grep -q 'long.csv: line 51: row longer than the record cap of 1048576 bytes (ingest.max_record_mb) (row skipped)' $TMP/add3.out"
check "[ \"\$(sqlite3 $DB \"select count(*) from docs where path like '%long.csv'\")\" = 99 ]"
check "[ \"\$(sqlite3 $DB \"select count(*) from docs where path like '%long.csv' and rkey in ('r49', 'r51', 'r100')\")\" = 3 ]"
check "consistent $DB"

# SIGKILL midway through the big JSONL, several times, then a rerun.
mkdir -p "$TMP/ref" && "$CAIRN" init --db "$TMP/ref" >/dev/null
printf '[ingest]\nmax_file_mb = 1\nmax_record_mb = 1\n' >> "$TMP/ref/.cairn/config"
"$CAIRN" add "$TMP/data/corpus.jsonl" --db "$TMP/ref" --quiet 2>/dev/null
keys() { sqlite3 "$1" "select d.rkey || ':' || c.ord || ':' || c.chunk_key from chunks c join docs d on d.id=c.doc_id order by 1"; }
keys "$TMP/ref/.cairn/store.db" > "$TMP/ref.keys"
mkdir -p "$TMP/k" && "$CAIRN" init --db "$TMP/k" >/dev/null
printf '[ingest]\nmax_file_mb = 1\nmax_record_mb = 1\n' >> "$TMP/k/.cairn/config"
KDB="$TMP/k/.cairn/store.db"
killed=0
for delay in 0.05 0.15 0.25 0.4 0.6; do
  "$CAIRN" add "$TMP/data/corpus.jsonl" --db "$TMP/k" --quiet >/dev/null 2>&1 &
  pid=$!
  sleep $delay
  if kill -9 $pid 2>/dev/null; then killed=$((killed+1)); fi
  wait $pid 2>/dev/null
  check "consistent $KDB"
done
check "[ $killed -ge 1 ]"
mid=$(sqlite3 "$KDB" "select count(*) from docs")
"$CAIRN" add "$TMP/data/corpus.jsonl" --db "$TMP/k" --quiet 2>/dev/null; rc=$?
check "[ $rc -eq 0 ]"
check "consistent $KDB"
check "[ \"\$(sqlite3 $KDB 'select count(*) from files where state != 1')\" = 0 ]"
keys "$KDB" > "$TMP/k.keys"
check "cmp -s $TMP/ref.keys $TMP/k.keys"
check "[ \"\$(wc -l < $TMP/ref.keys)\" -gt 4000 ]"
echo "killed $killed runs; $mid docs were in after the kills; $jdocs after the rerun"
echo "$n checks, $fail failures"
[ $fail -eq 0 ]
