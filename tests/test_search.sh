#!/usr/bin/env bash
# test_search.sh — cairn search end to end: the index follows add, edit and
# rm through the store's change log; --json fields; terminal output; a
# corrupt index is reported; an analyzer change rebuilds the index.
set -euo pipefail
: "${CAIRN:?}" "${CAIRN_TEST_TMP:=/tmp}"
T="$CAIRN_TEST_TMP/test_search.$$"
rm -rf "$T" && mkdir -p "$T/proj/notes"
trap 'rm -rf "$T"' EXIT
cd "$T/proj"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > notes/pumps.md <<'EOF'
# Garden pumps

## Maintenance
Clean the impeller of the centrifugal pump every spring. A clogged impeller
reduces the flow rate.
EOF
cat > notes/bread.md <<'EOF'
# Baking
Sourdough bread needs a lively starter and a long, cool fermentation.
EOF
for i in $(seq 1 30); do echo "filler document number $i about weather and clouds" > "notes/filler$i.txt"; done

"$CAIRN" init >/dev/null
"$CAIRN" add notes --quiet >/dev/null
[ -f .cairn/index/MANIFEST ] || fail "add did not build the index"

# JSON: required fields, best hit first
out=$("$CAIRN" search --json --k 3 "how do I clean a pump impeller")
echo "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
r = d["results"]
assert len(r) >= 1, r
top = r[0]
for k in ("doc_id", "path", "chunk_id", "score", "snippet", "text", "metadata", "ingested_at"):
    assert k in top, k
assert top["path"].endswith("notes/pumps.md"), top["path"]
assert "impeller" in top["snippet"], top["snippet"]
assert isinstance(top["metadata"], dict) and top["metadata"].get("type") == "markdown", top["metadata"]
assert top["heading_path"].endswith("Maintenance"), top["heading_path"]
assert all(r[i]["score"] >= r[i + 1]["score"] for i in range(len(r) - 1))
' || fail "json output: $out"

# terminal output (not a TTY: no escape codes)
txt=$("$CAIRN" search sourdough starter)
echo "$txt" | grep -q "bread.md" || fail "terminal output: $txt"
if printf '%s' "$txt" | grep -q $'\033'; then fail "escape codes when not a TTY"; fi
"$CAIRN" search --k 2 zzzunknownword | grep -q "no results" || fail "no-results message"

# --group doc: documents ranked by document-level BM25, each once, shown by
# its best chunk (manual.txt spans several chunks that all mention impellers)
for i in $(seq 1 12); do
  echo "Section $i. The impeller housing and the volute of the pump are inspected for wear."
  for j in $(seq 1 12); do echo "Routine step $j of section $i concerns seals, bearings, valves and gaskets."; done
  echo
done > notes/manual.txt
"$CAIRN" add notes --quiet >/dev/null
"$CAIRN" search --json --k 10 impeller | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"]
assert sum(x["path"].endswith("manual.txt") for x in r) >= 3, [x["path"] for x in r]' || fail "chunk ranking"
"$CAIRN" search --json --k 10 --group doc impeller | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"]
paths = [x["path"] for x in r]
assert len(paths) == len(set(paths)) == 2, paths
assert all(x["text"] and "impeller" in x["text"].lower() for x in r), r
assert r[0]["score"] >= r[1]["score"]' || fail "--group doc"
"$CAIRN" search --group doc --where 'path GLOB "*pumps*"' impeller | grep -q "pumps.md" || fail "--group doc --where"
if "$CAIRN" search --group doc --where 'path GLOB "*pumps*"' impeller | grep -q manual; then fail "--group doc ignored --where"; fi
set +e
"$CAIRN" search --group para impeller 2>"$T/err"; rc=$?
set -e
[ "$rc" = 2 ] && grep -q "doc or chunk" "$T/err" || fail "--group bad value: $rc"
rm notes/manual.txt
"$CAIRN" rm notes/manual.txt >/dev/null
# the index applied those deletions, so the store's log was trimmed; an
# index deleted now is rebuilt from the live chunks, silently and correctly
rm -rf .cairn/index
"$CAIRN" search --json impeller >"$T/out" 2>"$T/err" || fail "search after index removal"
[ ! -s "$T/err" ] || fail "rebuild after trim warned: $(cat "$T/err")"
python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["results"]
assert r and all(x["path"].endswith("notes/pumps.md") for x in r), r' "$T/out" || fail "results after rebuild: $(cat "$T/out")"

# edit: old words disappear, new ones are found
sleep 1
cat > notes/bread.md <<'EOF'
# Baking
Rye crackers with caraway seeds.
EOF
"$CAIRN" add notes --quiet >/dev/null
n=$("$CAIRN" search --json sourdough | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
[ "$n" = 0 ] || fail "stale chunk after edit ($n results for sourdough)"
"$CAIRN" search --json caraway | grep -q "bread.md" || fail "edited text not found"

# rm: gone from results
"$CAIRN" rm notes/pumps.md >/dev/null
n=$("$CAIRN" search --json impeller | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
[ "$n" = 0 ] || fail "removed document still found"

# analyzer change in the config rebuilds the index (stemming off: "clouds" != "cloud")
"$CAIRN" search --json cloud | grep -q filler || fail "stemmed match before config change"
printf '\n[analyzer]\nstemmer = none\n' >> .cairn/config
n=$("$CAIRN" search --json cloud | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
[ "$n" = 0 ] || fail "analyzer change did not rebuild the index ($n)"
grep -q "stemmer=none" .cairn/index/MANIFEST || fail "manifest analyzer"

# a bad config value is a clear error
printf '\n[bm25]\nk1 = lots\n' >> .cairn/config
if "$CAIRN" search cloud 2>err.txt; then fail "bad config accepted"; fi
grep -q "k1" err.txt || fail "bad config message: $(cat err.txt)"
sed -i '/k1 = lots/d' .cairn/config

# a corrupt segment is reported and the index rebuilt from the store
seg=$(ls .cairn/index/seg-*.bm25 | head -1)
printf 'garbage' | dd of="$seg" bs=1 seek=200 conv=notrunc 2>/dev/null
"$CAIRN" search --json weather 2>err.txt | grep -q filler || fail "no results after rebuilding a corrupt index"
grep -qi "corrupt" err.txt || fail "corrupt index not reported: $(cat err.txt)"
"$CAIRN" search --json weather 2>err.txt | grep -q filler || fail "search after rebuild"
[ ! -s err.txt ] || fail "still complaining after rebuild: $(cat err.txt)"
rm -rf .cairn/index
"$CAIRN" search --json weather | grep -q filler || fail "index not rebuilt after deletion"

# the store's deletion log trimmed past the index's mark (while another
# process held the index lock): the index notices and rebuilds
echo "unique kumquat orchard" > notes/fruit.txt
"$CAIRN" add notes --quiet >/dev/null
"$CAIRN" search --json kumquat | grep -q fruit.txt || fail "fruit not indexed"
flock .cairn/index/LOCK sleep 3 &
lockpid=$!
sleep 0.5
"$CAIRN" rm notes/fruit.txt >/dev/null
python3 -c "import sqlite3; c = sqlite3.connect('.cairn/store.db'); c.execute('delete from chunk_deletions'); c.commit()"
wait $lockpid
"$CAIRN" search --json kumquat 2>err.txt | python3 -c 'import json,sys; assert not json.load(sys.stdin)["results"]' || fail "removed chunk found after log trim"
grep -q "trimmed" err.txt || fail "log trim not reported: $(cat err.txt)"
s=$(python3 -c "import sqlite3; print(sqlite3.connect('.cairn/store.db').execute('select count(*) from chunks').fetchone()[0])")
i=$("$CAIRN" search --index-info | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
[ "$s" = "$i" ] || fail "after log trim: store $s chunks, index $i"

# usage errors
set +e
"$CAIRN" search >/dev/null 2>&1; [ $? = 2 ] || fail "no query: exit code"
"$CAIRN" search --k 0 x >/dev/null 2>&1; [ $? = 2 ] || fail "--k 0: exit code"
set -e
echo "test_search: ok"
