#!/bin/bash
# test_ls_show.sh — cairn ls (documents with state, chunks, age; skipped
# files with their reasons; --where; --json), cairn show (by path, by id,
# PATH#KEY for a record, a file of many records listed; --json), and the
# ripgrep-style search options --files and -C N.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/ls_show.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
cd "$TMP" || exit 1
"$CAIRN" init >/dev/null 2>&1 || exit 1
mkdir docs
printf '# Guide\n\nFirst sentence here. The walrus sleeps on ice. Last sentence there.\n\n## Setup\n\nInstall the walrus feeder.\n' > docs/guide.md
printf '{"_id":"r1","text":"walrus facts"}\n{"_id":"r2","text":"seal facts"}\n' > docs/recs.jsonl
head -c 2000 /dev/urandom > docs/blob.bin; printf 'x\0y' >> docs/blob.bin
"$CAIRN" add docs --tag team=zoo >/dev/null 2>&1

out=$("$CAIRN" ls 2>&1); echo "$out" | sed 's/^/  | /'
check "grep -q '^ok .* markdown  *docs/guide.md\$' <<<\"\$out\""
check "grep -q 'docs/recs.jsonl#r1' <<<\"\$out\" && grep -q 'docs/recs.jsonl#r2' <<<\"\$out\""
check "grep -q '^skipped .*docs/blob.bin: binary file' <<<\"\$out\""
check "grep -q '3 documents, .* 1 files skipped, 0 not finished' <<<\"\$out\""
out=$("$CAIRN" ls --where 'type = "jsonl"' 2>&1)
check "grep -q 'recs.jsonl#r1' <<<\"\$out\" && ! grep -q guide.md <<<\"\$out\" && grep -q '2 documents' <<<\"\$out\""
out=$("$CAIRN" ls --where 'type = ' 2>&1); rc=$?
check "[ $rc -ne 0 ] && grep -q 'column' <<<\"\$out\""                  # filter errors point at the column
js=$("$CAIRN" ls --json 2>&1)
check "python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d[\"documents\"])==3 and d[\"files\"][0][\"state\"]==\"skipped\" and \"binary\" in d[\"files\"][0][\"reason\"]' <<<\"\$js\""

out=$("$CAIRN" show docs/guide.md 2>&1); echo "$out" | head -20 | sed 's/^/  | /'
check "grep -q '^document [0-9]*: docs/guide.md' <<<\"\$out\""
check "grep -q '  team: zoo' <<<\"\$out\" && grep -q '  type: markdown' <<<\"\$out\""
check "grep -q '#0 .*Guide' <<<\"\$out\""
check "grep -q 'Guide > Setup' <<<\"\$out\""
id=$(sed -n 's/^document \([0-9]*\):.*/\1/p' <<<"$out")
out2=$("$CAIRN" show "$id" 2>&1); check "[ \"\$out2\" = \"\$out\" ]"
out=$("$CAIRN" show docs/recs.jsonl 2>&1)
check "grep -q 'holds 2 documents' <<<\"\$out\" && grep -q r2 <<<\"\$out\""
out=$("$CAIRN" show 'docs/recs.jsonl#r2' 2>&1); check "grep -q 'seal facts' <<<\"\$out\""
js=$("$CAIRN" show --json docs/guide.md 2>&1)
check "python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[\"type\"]==\"markdown\" and d[\"metadata\"][\"team\"]==\"zoo\" and len(d[\"chunks\"])>=1' <<<\"\$js\""
out=$("$CAIRN" show docs/nothing.md 2>&1); rc=$?
check "[ $rc -ne 0 ] && grep -q 'no document for docs/nothing.md' <<<\"\$out\""

out=$("$CAIRN" search --files walrus 2>&1)
check "[ \"\$(sort <<<\"\$out\" | uniq -d)\" = '' ] && grep -qx 'docs/guide.md' <<<\"\$out\" && grep -qx 'docs/recs.jsonl' <<<\"\$out\""
out=$("$CAIRN" search --k 1 -C 1 sleeps 2>&1)
check "grep -q 'First sentence here. The walrus sleeps on ice. Last sentence there.' <<<\"\$out\""
out=$("$CAIRN" search -C x walrus 2>&1); rc=$?; check "[ $rc -eq 2 ]"
# no escape codes without a terminal
out=$("$CAIRN" search walrus 2>&1); check "! grep -q \$'\\033' <<<\"\$out\""
# a query of only stop words says so
out=$("$CAIRN" search the of and 2>&1); check "grep -q 'has only stop words' <<<\"\$out\""
out=$("$CAIRN" search zzzunknown 2>&1); check "grep -q 'no results for' <<<\"\$out\" && ! grep -q 'stop words' <<<\"\$out\""
js=$("$CAIRN" search --json the 2>&1); check "grep -q '\"only_stop_words\":true' <<<\"\$js\""
echo "$n checks, $fail failures"
[ $fail -eq 0 ]
