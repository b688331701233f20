#!/usr/bin/env bash
# test_ask.sh — cairn ask and cairn chat end to end: extractive answers with
# markers and sources, --json shape, a bad filter (clear error, store intact),
# staleness (an edited and a deleted source are flagged until cairn sync),
# chat over a plain pipe (/sources /where /reset /help /quit), and generated
# answers with a synthesized model: streaming, JSON timings, the model from
# the store's config, and the second chat turn reusing the cached prefix.
set -euo pipefail
: "${CAIRN:?}" "${CAIRN_TEST_TMP:=/tmp}"
T="$CAIRN_TEST_TMP/test_ask.$$"
rm -rf "$T" && mkdir -p "$T/proj/notes"
trap 'rm -rf "$T"' EXIT
cd "$T/proj"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > notes/pumps.md <<'EOF'
# Garden pumps

## Maintenance
Clean the impeller of the centrifugal pump every spring. A clogged impeller
reduces the flow rate of the pump.

## Storage
Drain the pump before the first frost so the housing does not crack.
EOF
cat > notes/bread.md <<'EOF'
# Baking
Sourdough bread needs a lively starter and a long, cool fermentation.
EOF
for i in $(seq 1 10); do echo "filler document number $i about weather and clouds." > "notes/filler$i.txt"; done
"$CAIRN" init >/dev/null
"$CAIRN" add notes --quiet >/dev/null

# extractive answer: says so, cites, lists sources
out=$("$CAIRN" ask "how often should I clean the pump impeller?")
echo "$out" | grep -q "^Extractive answer" || fail "no extractive label: $out"
echo "$out" | grep -q "Clean the impeller of the centrifugal pump every spring. \[1\]" || fail "best sentence: $out"
echo "$out" | grep -q "^Sources:" || fail "no sources: $out"
echo "$out" | grep -q "\[1\] notes/pumps.md > Garden pumps > Maintenance  ingested" || fail "source line: $out"
echo "$out" | grep -q STALE && fail "fresh sources flagged stale: $out"

# --json shape
"$CAIRN" ask --json --k 4 "pump impeller frost" > a.json
python3 - a.json <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("question", "answer", "kind", "citations", "sources", "dropped_citations", "stale", "timings"):
    assert k in d, k
assert d["kind"] == "extractive", d["kind"]
assert d["dropped_citations"] == 0 and d["stale"] is False
markers = [s["marker"] for s in d["sources"]]
assert markers == list(range(1, len(markers) + 1)), markers
for c in d["citations"]:
    assert c["marker"] in markers and c["path"].startswith("notes/") and c["chunk_ids"], c
for s in d["sources"]:
    for k in ("doc_id", "chunk_ids", "path", "heading_path", "page", "ingested_at", "age_s", "stale", "staleness"):
        assert k in s, k
    assert s["staleness"] == "fresh", s
for k in ("retrieval_ms", "prompt_tokens", "ttft_ms", "tokens_per_s", "reused_tokens"):
    assert k in d["timings"], k
assert "[1]" in d["answer"], d["answer"]
EOF

# --where narrows; a bad filter is a usage error naming the position; nothing changes
out=$("$CAIRN" ask --where 'path GLOB "notes/bread*"' --json "pump bread starter")
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["sources"] and all(s["path"]=="notes/bread.md" for s in d["sources"]), d["sources"]'
before=$("$CAIRN" status | grep -E "documents|chunks")
set +e
err=$("$CAIRN" ask --where 'path = ' "pump" 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 2 ] || fail "bad filter exit $rc"
echo "$err" | grep -q "cairn ask:" || fail "bad filter message: $err"
[ "$("$CAIRN" status | grep -E "documents|chunks")" = "$before" ] || fail "store changed"
set +e; "$CAIRN" ask --mode dense "pump" 2>/dev/null; rc=$?; "$CAIRN" ask --k 0 "pump" 2>/dev/null; rc2=$?; set -e
[ $rc -eq 2 ] && [ $rc2 -eq 2 ] || fail "dense mode / k 0 exit codes $rc $rc2"
out=$("$CAIRN" ask "zebra xylophone")
echo "$out" | grep -q "No sources matched" || fail "no-match output: $out"

# staleness: an edited source is flagged (and the answer says so) until sync
sleep 0.01
printf '\nNew text.\n' >> notes/pumps.md
out=$("$CAIRN" ask "clean the pump impeller")
echo "$out" | grep -q "STALE: changed on disk since ingest" || fail "stale source not flagged: $out"
echo "$out" | grep -q "This answer uses sources that changed on disk" || fail "answer does not say so: $out"
"$CAIRN" ask --json "clean the pump impeller" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["stale"] is True and d["stale_sources"] >= 1, d
assert any(s["staleness"] == "changed" and s["stale"] for s in d["sources"]), d["sources"]'
"$CAIRN" sync >/dev/null
"$CAIRN" ask --json "clean the pump impeller" | python3 -c '
import json, sys; d = json.load(sys.stdin); assert d["stale"] is False, d'
rm notes/bread.md
"$CAIRN" ask --json "sourdough starter" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert any(s["staleness"] == "missing" for s in d["sources"]), d["sources"]'
"$CAIRN" sync >/dev/null

# chat over a pipe
cat > q.txt <<'EOF'
/help
how often should I clean the impeller?
/sources
/where path = 
/where path GLOB "notes/filler*"
what about the weather?
/sources
/where
/reset
/frobnicate
/quit
never asked
EOF
set +e
"$CAIRN" chat < q.txt > chat.out 2> chat.err; rc=$?
set -e
[ $rc -eq 1 ] || fail "chat exit $rc (the bad /where and /frobnicate count as failures)"
grep -q "/where FILTER" chat.out || fail "no help: $(cat chat.out)"
grep -q "Clean the impeller of the centrifugal pump every spring. \[1\]" chat.out || fail "chat answer: $(cat chat.out)"
grep -q "^Sources: \[1\] notes/pumps.md" chat.out || fail "brief sources: $(cat chat.out)"
grep -q "(filter: path GLOB \"notes/filler\*\")" chat.out || fail "where: $(cat chat.out)"
grep -q "(no filter: all documents)" chat.out || fail "where reset: $(cat chat.out)"
grep -q "(conversation reset)" chat.out || fail "reset: $(cat chat.out)"
grep -q "unknown command /frobnicate" chat.err || fail "unknown command: $(cat chat.err)"
grep -q "cairn chat:" chat.err || fail "bad filter message: $(cat chat.err)"
grep -q "never asked" chat.out && fail "read past /quit"
awk '/\/sources|^Sources:/' chat.out >/dev/null
# after /where filler*, the sources of the weather answer are filler files only
sed -n '/weather/,$p' chat.out | grep "^  \[" | grep -v filler && fail "filter not applied: $(cat chat.out)"

# generated answers with a synthesized model
"$CAIRN" model synth m.gguf --ctx 2048 >/dev/null
out=$("$CAIRN" ask -m m.gguf -n 12 --verbose "how often should I clean the impeller?" 2> ask.err)
echo "$out" | grep -q "^Sources:" || fail "generated: no sources: $out"
echo "$out" | grep -q "^Extractive" && fail "generated answer labelled extractive"
grep -q "prompt tokens (0 reused from the cache)" ask.err || fail "verbose timings: $(cat ask.err)"
"$CAIRN" ask -m m.gguf -n 12 --json "drain the pump before frost" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["kind"] == "generated", d["kind"]
t = d["timings"]
assert t["prompt_tokens"] > 0 and t["gen_tokens"] >= 1 and t["ttft_ms"] > 0, t
assert isinstance(d["dropped_citations"], int) or float(d["dropped_citations"]).is_integer()'
# the model from the store config; --no-model overrides it
printf '\n[ask]\nmodel = %s\n' "$PWD/m.gguf" >> .cairn/config
"$CAIRN" ask -n 4 --json "pump" | python3 -c 'import json,sys; assert json.load(sys.stdin)["kind"] == "generated"'
"$CAIRN" ask --no-model --json "pump" | python3 -c 'import json,sys; assert json.load(sys.stdin)["kind"] == "extractive"'
set +e; "$CAIRN" ask -m missing.gguf "pump" 2>/dev/null; rc=$?; set -e
[ $rc -eq 1 ] || fail "missing model exit $rc"
# chat: the second turn reuses the first turn's KV
printf 'how often should I clean the impeller?\nand before the frost?\n' | "$CAIRN" chat -n 8 --json > chat.jsonl
python3 - chat.jsonl <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2, rows
a, b = rows
assert a["timings"]["reused_tokens"] == 0, a["timings"]
assert b["timings"]["reused_tokens"] > a["timings"]["prompt_tokens"] // 2, (a["timings"], b["timings"])
assert b["timings"]["prompt_tokens"] > a["timings"]["prompt_tokens"]
assert min(s["marker"] for s in b["sources"]) > max(s["marker"] for s in a["sources"])
EOF
echo "ok"
