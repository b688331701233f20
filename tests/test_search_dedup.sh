#!/bin/bash
# test_search_dedup.sh — duplicate texts collapse in search results: five
# copies of a license paragraph (one with a different header, so its chunk
# is cut elsewhere; one with a word changed) show once with "and N more",
# the other paths in --json; --all keeps them; a different text stays.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/search_dedup.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
unset CAIRN_DB
cd "$TMP" || exit 1
"$CAIRN" init >/dev/null 2>&1 || exit 1
LIC="This program is distributed in the hope that it will be useful, but without any warranty; without even the implied warranty of merchantability or fitness for a particular purpose. See the license for more details about the zanzibar clause."
mkdir -p a b c d e f
for x in a b c; do printf '%s\n' "$LIC" > $x/copyright; done
printf 'Files: *\nCopyright: someone\n\n%s\n' "$LIC" > d/copyright
printf '%s\n' "${LIC/useful/helpful}" > e/copyright
printf 'The zanzibar clause of the ferry timetable says boats leave at noon.\n' > f/notes.txt
"$CAIRN" add . --quiet >/dev/null 2>&1
out=$("$CAIRN" search zanzibar clause 2>&1)
echo "$out" | sed 's/^/  | /'
check "[ \$(grep -c 'copyright' <<<\"\$out\") -eq 2 ]"          # one result line + its 'and N more' line
check "grep -q 'and 4 more with the same text' <<<\"\$out\""
check "grep -q 'f/notes.txt' <<<\"\$out\""
js=$("$CAIRN" search --json zanzibar clause 2>&1)
check "python3 -c 'import json,sys; d=json.load(sys.stdin); r=[x for x in d[\"results\"] if x[\"path\"].endswith(\"copyright\")]; assert len(r)==1 and r[0][\"duplicates\"]==4 and len(r[0][\"duplicate_paths\"])==4, r' <<<\"\$js\""
all=$("$CAIRN" search --all zanzibar clause 2>&1)
check "[ \$(grep -c 'copyright' <<<\"\$all\") -eq 5 ]"
check "! grep -q 'more with the same text' <<<\"\$all\""
# --k counts distinct texts: two results here, not capped by the duplicates
k2=$("$CAIRN" search --k 2 --json zanzibar clause 2>&1)
check "python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d[\"results\"])==2' <<<\"\$k2\""
# --group doc collapses too
g=$("$CAIRN" search --group doc zanzibar clause 2>&1)
check "grep -q 'and 4 more' <<<\"\$g\""
echo "$n checks, $fail failures"
[ $fail -eq 0 ]
