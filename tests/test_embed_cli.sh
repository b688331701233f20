#!/bin/bash
# test_embed_cli.sh — `cairn embed`: text and --json output in input order,
# --file (lines, stdin), prefixes, --rerank, threads giving the same bits,
# and clear errors for bad input (not an encoder, truncated or missing file,
# usage). Models come from `cairn model synth`; glove-bert (../shared) adds a
# check against llama.cpp's reference vector when present.
set -u
T="$CAIRN_TEST_TMP/embed_cli.$$"
rm -rf "$T" && mkdir -p "$T"
PY=/usr/bin/python3
fail=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fail=1; }
check() { if [ "$2" == "$3" ]; then ok "$1"; else bad "$1: expected '$2' got '$3'"; fi; }

"$CAIRN" model synth "$T/bert.gguf" --arch bert --vocab 300 --embd 32 --ff 64 --ctx 64 >/dev/null || bad "synth bert"
"$CAIRN" model synth "$T/e5-small.gguf" --arch bert --vocab 300 --embd 32 --ff 64 --name my-e5-small >/dev/null || bad "synth e5"
"$CAIRN" model synth "$T/rr.gguf" --arch bert --vocab 300 --embd 32 --ff 64 --cls-out 1 >/dev/null || bad "synth reranker"
"$CAIRN" model synth "$T/llama.gguf" >/dev/null || bad "synth llama"

# text output: one line per text, dim values each
out=$("$CAIRN" embed -m "$T/bert.gguf" "the cat" "a dog sat" "")
check "text lines" 3 "$(printf '%s\n' "$out" | wc -l)"
check "text dims" 32 "$(printf '%s\n' "$out" | head -1 | wc -w)"

# --json: order, dim, model id, timings; the same vectors as the text output
"$CAIRN" embed -m "$T/bert.gguf" --json "the cat" "a dog sat" "" >"$T/a.json" || bad "json run"
"$CAIRN" embed -m "$T/bert.gguf" --json -t 2 "a dog sat" >"$T/b.json" || bad "json run 2"
printf 'the cat\r\na dog sat\n\n' >"$T/in.txt"
"$CAIRN" embed -m "$T/bert.gguf" --json --file "$T/in.txt" >"$T/c.json" || bad "json file"
printf 'the cat\na dog sat\n\n' | "$CAIRN" embed -m "$T/bert.gguf" --json --file - >"$T/d.json" || bad "json stdin"
printf '%s\n' "$out" >"$T/a.txt"
$PY - "$T" <<'PY' && ok "json shape, order, file, stdin, threads" || bad "json checks"
import json, sys, math
t = sys.argv[1]
a, b, c, d = (json.load(open(f"{t}/{n}.json")) for n in "abcd")
assert a["dim"] == 32 and len(a["embeddings"]) == 3 and all(len(v) == 32 for v in a["embeddings"])
assert a["model"].startswith("cairn-synth-bert@"), a["model"]
assert a["timings"]["n_texts"] == 3 and a["timings"]["n_truncated"] == 0 and a["timings"]["n_tokens"] >= 6
assert abs(sum(x * x for x in a["embeddings"][0]) - 1) < 1e-5
assert b["embeddings"][0] == a["embeddings"][1], "same text, 2 threads, alone: same vector"
assert c["embeddings"] == a["embeddings"], "--file lines (CRLF) = arguments"
assert d["embeddings"] == a["embeddings"], "--file - = arguments"
txt = [[float(x) for x in l.split()] for l in open(f"{t}/a.txt")]
assert all(abs(x - y) < 1e-6 for u, v in zip(txt, a["embeddings"]) for x, y in zip(u, v))
assert a["embeddings"][0] != a["embeddings"][1]
PY

# prefixes: e5 by name; --query changes the vector, equals embedding the prefixed text
q1=$("$CAIRN" embed -m "$T/e5-small.gguf" --query "cat")
q2=$("$CAIRN" embed -m "$T/e5-small.gguf" "query: cat")
q3=$("$CAIRN" embed -m "$T/e5-small.gguf" --doc "cat")
q4=$("$CAIRN" embed -m "$T/e5-small.gguf" "passage: cat")
check "query prefix" "$q2" "$q1"
check "doc prefix" "$q4" "$q3"
[ "$q1" != "$q3" ] && ok "query != doc" || bad "query == doc"

# truncation is counted and said
long=$(for i in $(seq 1 100); do printf 'word '; done)
"$CAIRN" embed -m "$T/bert.gguf" --json "$long" >"$T/l.json" 2>"$T/l.err" || bad "long run"
check "truncated count" 1 "$($PY -c "import json;print(json.load(open('$T/l.json'))['timings']['n_truncated'])")"
grep -q "truncated" "$T/l.err" && ok "truncation warning" || bad "no truncation warning"

# rerank
"$CAIRN" embed -m "$T/rr.gguf" --rerank "cat" --json "the cat" "a dog" >"$T/r.json" || bad "rerank run"
check "rerank scores" 2 "$($PY -c "import json;print(len(json.load(open('$T/r.json'))['scores']))")"
"$CAIRN" embed -m "$T/bert.gguf" --rerank "cat" "the cat" >/dev/null 2>"$T/r.err"
check "rerank on an embedder exit" 1 "$?"
grep -q "not a cross-encoder" "$T/r.err" && ok "rerank error message" || bad "rerank error: $(cat "$T/r.err")"

# bad input
"$CAIRN" embed -m "$T/llama.gguf" "x" >/dev/null 2>"$T/e1"
check "llama exit" 1 "$?"
grep -q "not an encoder" "$T/e1" && ok "llama message" || bad "llama message: $(cat "$T/e1")"
head -c 3000 "$T/bert.gguf" >"$T/cut.gguf"
"$CAIRN" embed -m "$T/cut.gguf" "x" >/dev/null 2>"$T/e2"
check "truncated exit" 1 "$?"
grep -q "cut.gguf" "$T/e2" && ok "truncated message names the file" || bad "truncated message: $(cat "$T/e2")"
"$CAIRN" embed -m "$T/missing.gguf" "x" >/dev/null 2>"$T/e3"
check "missing exit" 1 "$?"
grep -q "missing.gguf" "$T/e3" && ok "missing message" || bad "missing message: $(cat "$T/e3")"
"$CAIRN" embed -m "$T/bert.gguf" --file "$T/nofile.txt" >/dev/null 2>"$T/e4"
check "missing --file exit" 1 "$?"
"$CAIRN" embed "x" >/dev/null 2>&1; check "no model usage" 2 "$?"
"$CAIRN" embed -m "$T/bert.gguf" >/dev/null 2>&1; check "no texts usage" 2 "$?"
"$CAIRN" embed -m "$T/bert.gguf" -t 0 x >/dev/null 2>&1; check "bad -t usage" 2 "$?"
"$CAIRN" embed -m "$T/bert.gguf" --file "$T/in.txt" x >/dev/null 2>&1; check "file and texts usage" 2 "$?"
"$CAIRN" embed -m "$T/bert.gguf" --bogus x >/dev/null 2>&1; check "unknown option usage" 2 "$?"

# glove-bert against llama.cpp's vector (when the shared models are present)
SHARED="${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-../shared}}"
G="$SHARED/models/glove-bert"
if [ -f "$G/glove6B-100d-bert-15k-f16.gguf" ]; then
    txt=$($PY -c "import json;print(json.load(open('$G/ref-llamacpp-embeddings.glove6B-100d-bert-15k-f16.json'))['docs_then_queries'][3]['text'])")
    "$CAIRN" embed -m "$G/glove6B-100d-bert-15k-f16.gguf" --json "$txt" >"$T/g.json" || bad "glove run"
    $PY - "$T/g.json" "$G/ref-llamacpp-embeddings.glove6B-100d-bert-15k-f16.json" <<'PY' && ok "glove vs llama.cpp" || bad "glove vs llama.cpp"
import json, sys
o = json.load(open(sys.argv[1]))["embeddings"][0]
r = json.load(open(sys.argv[2]))["docs_then_queries"][3]["embedding_l2"]
assert max(abs(x - y) for x, y in zip(o, r)) < 2e-5
PY
else
    echo "note: glove-bert absent, reference check skipped"
fi
rm -rf "$T"
exit $fail
