#!/bin/bash
# test_check_repair.sh — cairn check finds damage and inconsistencies (exit
# 1) and passes a sound store (exit 0; 2 when there is no store); search
# never prints a damaged chunk; cairn repair rebuilds a store whose pages
# were overwritten at random (keeping a backup) into one equal to a clean
# run, after which check passes again.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/checkrepair.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap "[ -n \"${KEEP:-}\" ] || rm -rf $TMP" EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
cd "$TMP"
python3 - corpus <<'EOF'
import os, random, sys
rnd = random.Random(11)
words = [''.join(rnd.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rnd.randint(3, 8))) for _ in range(2000)]
for i in range(150):
    d = os.path.join(sys.argv[1], 'd%d' % (i % 5))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'f%03d.txt' % i), 'w') as f:
        f.write('marker%d\n\n' % i)
        for p in range(12):
            f.write(' '.join(rnd.choice(words) for _ in range(60)) + '\n\n')
EOF
q="select d.path || ':' || c.ord || ':' || c.chunk_key from chunks c join docs d on d.id = c.doc_id order by 1"
mkdir ref && cp -r corpus ref/ && (cd ref && "$CAIRN" init >/dev/null && "$CAIRN" add corpus -q)
sqlite3 ref/.cairn/store.db "$q" > ref.keys

"$CAIRN" check > c0.out 2>&1; check "[ $? -eq 2 ]"          # no store here
"$CAIRN" init >/dev/null
"$CAIRN" add corpus -q
"$CAIRN" check > c1.out 2>&1; rc=$?
check "[ $rc -eq 0 ] && grep -q '^cairn check: ok (150 documents' c1.out"
"$CAIRN" check --json > c1.json; check "python3 -c 'import json; d=json.load(open(\"c1.json\")); assert d[\"ok\"] and d[\"chunks_verified\"] > 0'"
DB=.cairn/store.db

# a logical inconsistency: a document's chunk removed behind cairn's back
cp $DB keep.db
sqlite3 $DB "delete from chunks where id = (select max(id) from chunks)"
"$CAIRN" check > c2.out 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'problem: store: 1 documents whose chunk count differs' c2.out"
check "grep -q 'problem: index: chunk [0-9]* is in the index but not in the store' c2.out"
cp keep.db $DB; rm -f $DB-wal $DB-shm

# damaged text that still decodes: check names it, search never shows it
sqlite3 $DB "update chunks set text = 'marker7 zzgarbage' where id = (select min(c.id) from chunks c join docs d on d.id = c.doc_id where d.path = 'corpus/d2/f007.txt')"
"$CAIRN" check > c3.out 2>&1; rc=$?
check "[ $rc -eq 1 ] && grep -q 'its text does not match its checksum' c3.out"
"$CAIRN" search marker7 > s3.out 2> s3.err
check "! grep -q zzgarbage s3.out"
check "grep -q 'damaged' s3.err"

# random 64-byte overwrites of store.db pages (after a checkpoint): the
# store cannot be trusted any more; check says so, repair rebuilds it
sqlite3 $DB "pragma wal_checkpoint(truncate)" >/dev/null
python3 - $DB <<'EOF'
import os, random, sys
p = sys.argv[1]
size = os.path.getsize(p)
rnd = random.Random(5)
with open(p, 'r+b') as f:
    page = 4096
    for _ in range(20):
        pg = rnd.randrange(1, size // page)        # never page 0 (the header)
        f.seek(pg * page + rnd.choice([0, 8, 100, 1000, 2000]))
        f.write(bytes(rnd.randrange(256) for _ in range(64)))
EOF
"$CAIRN" check > c4.out 2>&1; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q '^problem: store' c4.out"
"$CAIRN" status > st4.out 2>&1
if ! grep -q '^documents:' st4.out; then check "grep -q 'cairn repair' st4.out"; fi
"$CAIRN" repair > r.out 2>&1; rc=$?
check "[ $rc -eq 0 ]"
check "ls .cairn/store.db.damaged-* >/dev/null 2>&1"
check "grep -q 'salvaged 1 source' r.out"
"$CAIRN" check > c5.out 2>&1; rc=$?
check "[ $rc -eq 0 ]"
sqlite3 $DB "$q" > got.keys
check "cmp -s ref.keys got.keys"
"$CAIRN" search marker42 --json > s5.json
check "python3 -c 'import json; r=json.load(open(\"s5.json\"))[\"results\"]; assert r and r[0][\"path\"]==\"corpus/d2/f042.txt\", r[:1]'"

# the damaged store.db itself, unreadable from its first page: repair
# still rebuilds (sources are gone with it: nothing to salvage, but no crash)
mkdir other && (cd other && "$CAIRN" init >/dev/null && cp -r ../corpus . && "$CAIRN" add corpus -q && \
  sqlite3 .cairn/store.db "pragma wal_checkpoint(truncate)" >/dev/null && \
  printf 'this is not a database at all, sixty-four bytes of junk........' | dd of=.cairn/store.db conv=notrunc 2>/dev/null)
(cd other && "$CAIRN" check > c6.out 2>&1); check "[ $? -eq 1 ] && grep -q 'cannot be opened' other/c6.out"
(cd other && "$CAIRN" repair > r6.out 2>&1); check "[ $? -eq 0 ]"
(cd other && "$CAIRN" check > c7.out 2>&1); check "[ $? -eq 0 ]"
echo "$n checks, $fail failures"
[ $fail -eq 0 ]
