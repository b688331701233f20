#!/bin/bash
# test_add.sh — cairn init/add/rm/status end to end, and the fault cases:
# binary files, invalid UTF-8, size cap, empty directory, symlink loops,
# permission denied, newer schema, store discovery (walk up, --db, CAIRN_DB).
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/add.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'chmod -R u+rwx "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
json_field() { sed -n "s/.*\"$1\":[[:space:]]*\([^,]*\),\{0,1\}$/\1/p" | head -1; }

P="$TMP/proj"
mkdir -p "$P/docs/sub" "$P/empty" "$P/code"
cd "$P" || exit 1

# --- init ---
out=$("$CAIRN" init 2>&1); rc=$?
check "[ $rc -eq 0 ] && [ -f .cairn/store.db ] && [ -f .cairn/config ]"
check "grep -q 'Initialized' <<<\"\$out\""
"$CAIRN" init >/dev/null 2>&1; rc=$?
check "[ $rc -ne 0 ]"                                   # already exists

# --- corpus ---
cat > docs/guide.md <<'EOF'
---
title: The Guide
tags: [howto, intro]
version: 2
published: 2024-01-15
---
# Installing

Run the installer. It copies files.

## Configuring

Edit the config file with care.
EOF
printf 'Plain notes about zebras.\n\nSecond paragraph about giraffes.\n' > docs/notes.txt
printf 'int main(void)\n{\n    return 0;\n}\n' > code/main.c
printf 'caf\xe9 latin-1 text here\n' > docs/latin1.txt
head -c 4096 /dev/urandom > docs/blob.bin
printf 'x\0y' >> docs/blob.bin
printf 'sub doc\n' > docs/sub/deep.txt
printf '{"owner": "ann", "priority": 3, "reviewed": true, "labels": ["a", "b"], "due": "2025-01-01"}' > docs/notes.txt.meta.json
printf 'hidden\n' > docs/.hidden.txt
ln -s .. docs/sub/loop                                  # symlink loop

out=$("$CAIRN" add . --tag team=search --tag year=2024 2>&1); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q 'skipped: ./docs/blob.bin: binary' <<<\"\$out\""
check "grep -q 'warning: ./docs/latin1.txt: not UTF-8: read as ISO-8859-\|WINDOWS-125' <<<\"\$out\""
check "grep -q 'symlink loop' <<<\"\$out\""
check "grep -q 'empty directory' <<<\"\$out\" || true"   # only reported for a top-level empty dir
check "grep -q '5 added' <<<\"\$out\""
check "! grep -q hidden <<<\"\$out\""
check "! grep -q 'meta.json' <<<\"\$out\""

st=$("$CAIRN" status --json); rc=$?
check "[ $rc -eq 0 ]"
check "[ \"\$(json_field documents <<<\"\$st\")\" = 5 ]"
check "[ \"\$(json_field files_skipped <<<\"\$st\")\" = 1 ]"
chunks=$(json_field chunks <<<"$st")
check "[ \"$chunks\" -ge 6 ]"

DB=.cairn/store.db
q() { sqlite3 "$DB" "$1"; }
check "[ \"\$(q \"select title from docs where path='docs/guide.md'\")\" = 'The Guide' ]"
check "[ \"\$(q \"select count(*) from doc_meta m join docs d on d.id=m.doc_id where d.path='docs/guide.md' and m.key='tags'\")\" = 2 ]"
check "[ \"\$(q \"select m.type from doc_meta m join docs d on d.id=m.doc_id where d.path='docs/guide.md' and m.key='published'\")\" = 3 ]"
check "[ \"\$(q \"select n from doc_meta m join docs d on d.id=m.doc_id where d.path='docs/guide.md' and m.key='version'\")\" = 2.0 ]"
check "[ \"\$(q \"select s from doc_meta m join docs d on d.id=m.doc_id where d.path='docs/notes.txt' and m.key='owner'\")\" = ann ]"
check "[ \"\$(q \"select m.type from doc_meta m join docs d on d.id=m.doc_id where d.path='docs/notes.txt' and m.key='due'\")\" = 3 ]"
check "[ \"\$(q \"select s from doc_meta m join docs d on d.id=m.doc_id where d.path='code/main.c' and m.key='team'\")\" = search ]"
check "[ \"\$(q \"select m.type from doc_meta m join docs d on d.id=m.doc_id where d.path='code/main.c' and m.key='year'\")\" = 2 ]"
check "[ \"\$(q \"select heading_path from chunks c join docs d on d.id=c.doc_id where d.path='docs/guide.md' order by ord limit 1 offset 1\")\" = 'Installing > Configuring' ]"
check "q \"select text from chunks\" | grep -q \$'caf\\xc3\\xa9 latin-1'"     # converted, not U+FFFD

# --- re-add: unchanged, ids stable ---
ids1=$(q "select group_concat(id) from chunks")
out=$("$CAIRN" add . --tag team=search --tag year=2024 2>&1)
check "grep -q '0 added, 0 updated, 5 unchanged' <<<\"\$out\""
check "[ \"\$(q 'select group_concat(id) from chunks')\" = \"$ids1\" ]"

# --- edit one paragraph of the guide: other chunk ids kept, deletions logged ---
sed -i 's/Edit the config file with care./Edit the config file carefully and often./' docs/guide.md
keep=$(q "select c.id from chunks c join docs d on d.id=c.doc_id where d.path='docs/guide.md' and c.ord=0")
seq0=$(q "select coalesce((select seq from sqlite_sequence where name='chunk_deletions'), 0)")
out=$("$CAIRN" add docs --tag team=search --tag year=2024 2>&1)
check "grep -q '1 updated' <<<\"\$out\""
check "[ \"\$(q \"select c.id from chunks c join docs d on d.id=c.doc_id where d.path='docs/guide.md' and c.ord=0\")\" = $keep ]"
# one deletion logged; the index applied it, so the log is trimmed again
check "[ \"\$(q \"select seq from sqlite_sequence where name='chunk_deletions'\")\" = $((seq0 + 1)) ]"
check "[ \"\$(q \"select value from meta where key='deletions_ack.bm25'\")\" = $((seq0 + 1)) ]"
check "[ \"\$(q 'select count(*) from chunk_deletions')\" = 0 ]"
check "q \"select text from chunks\" | grep -q carefully"
check "! q \"select text from chunks\" | grep -q 'with care'"

# --- store discovery: from a subdirectory, --db before/after args, CAIRN_DB ---
(cd docs/sub && "$CAIRN" status >/dev/null 2>&1); rc=$?
check "[ $rc -eq 0 ]"
(cd "$TMP" && "$CAIRN" status >/dev/null 2>&1); rc=$?
check "[ $rc -ne 0 ]"
(cd "$TMP" && "$CAIRN" status --db "$P" >/dev/null 2>&1); rc=$?
check "[ $rc -eq 0 ]"
(cd "$TMP" && "$CAIRN" --db "$P" status >/dev/null 2>&1); rc=$?
check "[ $rc -eq 0 ]"
(cd "$TMP" && "$CAIRN" status --json --db "$P/.cairn" >/dev/null 2>&1); rc=$?
check "[ $rc -eq 0 ]"
(cd "$TMP" && CAIRN_DB="$P" "$CAIRN" status >/dev/null 2>&1); rc=$?
check "[ $rc -eq 0 ]"
out=$(cd "$TMP" && "$CAIRN" status 2>&1)
check "grep -q 'not in a cairn store' <<<\"\$out\""

# --- init elsewhere with --db, add files from outside the root (absolute paths) ---
"$CAIRN" init --db "$TMP/other" >/dev/null; rc=$?
check "[ $rc -eq 0 ] && [ -f \"$TMP/other/.cairn/store.db\" ]"
"$CAIRN" add "$P/docs/notes.txt" --db "$TMP/other" >/dev/null 2>&1; rc=$?
check "[ $rc -eq 0 ]"
check "[ \"\$(sqlite3 \"$TMP/other/.cairn/store.db\" 'select path from docs')\" = \"$P/docs/notes.txt\" ]"

# --- the store itself is never ingested ---
out=$("$CAIRN" add .cairn 2>&1); rc=$?
check "[ $rc -eq 0 ] && grep -q 'skipped: .cairn: this is the cairn store itself' <<<\"\$out\""

# --- empty directory, missing path, size cap ---
out=$("$CAIRN" add empty 2>&1); rc=$?
check "[ $rc -eq 0 ] && grep -q 'empty directory' <<<\"\$out\""
out=$("$CAIRN" add no/such/file 2>&1); rc=$?
check "[ $rc -eq 1 ] && grep -q 'failed: no/such/file: no such file' <<<\"\$out\""
head -c 3000000 /dev/zero | tr '\0' 'a' > big.txt
out=$(CAIRN_MAX_FILE_MB=1 "$CAIRN" add big.txt 2>&1); rc=$?
check "[ $rc -eq 0 ] && grep -q 'skipped: big.txt: .*exceeds the size cap' <<<\"\$out\""
printf '[ingest]\nmax_file_mb = 1\n' >> .cairn/config
out=$("$CAIRN" add big.txt 2>&1)
check "grep -q 'skipped' <<<\"\$out\""
printf '[chunk]\nsize = nonsense\n' >> .cairn/config
out=$("$CAIRN" status 2>&1); rc=$?
check "[ $rc -ne 0 ] && grep -q 'config:.*chunk.size' <<<\"\$out\""
sed -i '/nonsense/d' .cairn/config

# --- permission denied (as an unprivileged user when we are root) ---
mkdir -p locked && printf 'secret\n' > locked/s.txt && printf 'open\n' > readable.txt
chmod 000 locked
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv >/dev/null; then
    chmod -R a+rwX "$P/.cairn" "$P/readable.txt"; chmod a+rwx "$P" "$TMP"
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CAIRN" add locked readable.txt 2>&1); rc=$?
    check "[ $rc -eq 1 ] && grep -q 'failed: locked: permission denied' <<<\"\$out\""
    check "grep -q '1 added' <<<\"\$out\""
  fi
else
  out=$("$CAIRN" add locked readable.txt 2>&1); rc=$?
  check "[ $rc -eq 1 ] && grep -q 'failed: locked: permission denied' <<<\"\$out\""
fi
chmod 755 locked

# --- --exclude: by base name, by path, a directory is not entered ---
mkdir -p ex/build ex/keep && printf 'a\n' > ex/build/x.txt && printf 'b\n' > ex/keep/y.log && printf 'c\n' > ex/keep/z.txt
out=$("$CAIRN" add ex --exclude build --exclude '*.log' 2>&1); rc=$?
check "[ $rc -eq 0 ] && grep -q '1 added' <<<\"\$out\""
check "[ \"\$(q \"select count(*) from docs where path like 'ex/%'\")\" = 1 ]"
out=$("$CAIRN" add ex --exclude 'ex/keep/*' 2>&1)
check "[ \"\$(q \"select group_concat(path) from (select path from docs where path like 'ex/%' order by path)\")\" = 'ex/build/x.txt,ex/keep/z.txt' ]"

# --- rm ---
out=$("$CAIRN" rm docs 2>&1); rc=$?
check "[ $rc -eq 0 ] && grep -q 'removed docs' <<<\"\$out\""
check "[ \"\$(q \"select count(*) from docs where path like 'docs/%'\")\" = 0 ]"
check "[ \"\$(q \"select count(*) from chunks c left join docs d on d.id=c.doc_id where d.id is null\")\" = 0 ]"
check "[ \"\$(q \"select count(*) from doc_meta m left join docs d on d.id=m.doc_id where d.id is null\")\" = 0 ]"
out=$("$CAIRN" rm docs 2>&1); rc=$?
check "[ $rc -eq 1 ] && grep -q 'not in the store' <<<\"\$out\""

# --- rm keeps sync from bringing things back ---
mkdir -p rs/sub && printf 'one\n' > rs/a.txt && printf 'two\n' > 'rs/g[1].txt' && printf 'three\n' > rs/sub/c.txt
"$CAIRN" add rs --quiet
"$CAIRN" rm rs/a.txt 'rs/g[1].txt' >/dev/null; rc=$?
check "[ $rc -eq 0 ]"
check "q \"select options from sources where root = 'rs'\" | grep -q 'rs/a.txt'"
"$CAIRN" sync >/dev/null 2>&1
check "[ \"\$(q \"select group_concat(path) from docs where path like 'rs/%'\")\" = 'rs/sub/c.txt' ]"
out=$("$CAIRN" rm rs 2>&1); rc=$?
check "[ $rc -eq 0 ] && grep -q 'no longer a source' <<<\"\$out\""
check "[ \"\$(q \"select count(*) from sources where root = 'rs'\")\" = 0 ]"
"$CAIRN" sync >/dev/null 2>&1
check "[ \"\$(q \"select count(*) from docs where path like 'rs/%'\")\" = 0 ]"

# --- a store written by a newer cairn is refused ---
q "update meta set value = 999 where key = 'schema_version'"
out=$("$CAIRN" status 2>&1); rc=$?
check "[ $rc -ne 0 ] && grep -q 'newer cairn' <<<\"\$out\""
q "update meta set value = 1 where key = 'schema_version'"

# --- usage errors ---
"$CAIRN" add >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"
"$CAIRN" add --tag novalue . >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"
"$CAIRN" add --tag path=x . >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"

echo "$n checks, $fail failures"
[ $fail -eq 0 ]
