#!/usr/bin/env bash
# test_dense.sh — a store with an embedding model, end to end through the
# CLI: init --embed-model (and refusing a model that is not an encoder),
# add/rm/sync embed and drop vectors, status reports coverage, dense and
# hybrid search with strict filters, a changed model re-embeds everything
# and says so first, a damaged / truncated / foreign vector index is rebuilt
# from vectors.db with a message, a SIGKILLed embedding run resumes and ends
# with every chunk embedded exactly once. Needs ../shared (glove-bert).
set -euo pipefail
: "${CAIRN:?}"
SHARED=${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-$CAIRN_SRC/../shared}}
M1="$SHARED/models/glove-bert/glove6B-100d-bert-15k-f16.gguf"
M2="$SHARED/models/glove-bert/glove6B-100d-bert-22k-d128-Q8_0.gguf"
LLAMA="$SHARED/models/stories260K/stories260K.gguf"
[ -f "$M1" ] && [ -f "$M2" ] || { echo "skip: glove-bert models absent"; exit 77; }
T=$(mktemp -d "${CAIRN_TEST_TMP:-/tmp}/dense.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"

# a model that is not an encoder: clear error, no store
if [ -f "$LLAMA" ]; then
  mkdir bad && if (cd bad && "$CAIRN" init --embed-model "$LLAMA" 2>../err); then fail "init accepted a llama model"; fi
  grep -qi "encoder\|bert\|architecture" err || fail "unclear error for a non-encoder: $(cat err)"
  [ ! -d bad/.cairn ] || fail "a store was created despite the bad model"
fi
if "$CAIRN" init --db nomodel --embed-model "$T/missing.gguf" 2>err; then fail "init accepted a missing model"; fi

mkdir p && cd p
"$CAIRN" init --embed-model "$M1" >/dev/null
grep -q "^model = /.*/glove6B-100d-bert-15k-f16.gguf$" .cairn/config || fail "model not in config"
mkdir -p docs/a docs/b
for i in $(seq 1 40); do
  d=docs/a; [ $((i % 4)) = 0 ] && d=docs/b
  printf '# Note %d\n\nThe river flows past the stone bridge %d.\n\nA cloud of copper dust over the maple grove.\n' "$i" "$i" > "$d/n$i.md"
done
"$CAIRN" add docs --quiet
chunks=$("$CAIRN" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
emb=$("$CAIRN" status --json | python3 -c 'import json,sys; e=json.load(sys.stdin)["embeddings"]; print(e["embedded"], e["index_vectors"], e["model"])')
[ "$emb" = "$chunks $chunks $(echo "$emb" | cut -d' ' -f3)" ] || fail "coverage: $emb for $chunks chunks"
"$CAIRN" status | grep -q "embedded:   $chunks / $chunks chunks" || fail "status text lacks coverage"

# dense and hybrid search; strict filters: only docs/b, and a full top-k
q() { "$CAIRN" search "$@" --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print(len(r), " ".join(sorted({x["path"].split("/")[1] for x in r})))'; }
[ "$(q 'river bridge' --mode dense --k 5)" = "5 a b" ] || [ "$(q 'river bridge' --mode dense --k 5 | cut -d' ' -f1)" = 5 ] || fail "dense search"
[ "$(q 'river bridge' --mode dense --k 8 --where 'path ^= "docs/b"')" = "8 b" ] || fail "dense filter: $(q 'river bridge' --mode dense --k 8 --where 'path ^= "docs/b"')"
[ "$(q 'river bridge' --mode hybrid --k 8 --where 'path ^= "docs/b"')" = "8 b" ] || fail "hybrid filter"
nb=$(ls docs/b | wc -l)
[ "$(q 'cloud' --mode dense --k 100 --where 'path ^= "docs/b"' | cut -d' ' -f1)" -ge "$nb" ] || fail "dense filter lost chunks"
# the default mode is bm25 (chosen by measurement); [search] mode sets another
ids() { "$CAIRN" search "$@" --json | python3 -c 'import json,sys; print([x["chunk_id"] for x in json.load(sys.stdin)["results"]])'; }
[ "$(ids ocean water field --k 5)" = "$(ids ocean water field --k 5 --mode bm25)" ] || fail "default mode is not bm25"
printf '\n[search]\nmode = dense\n' >> .cairn/config
[ "$(ids ocean water field --k 5)" = "$(ids ocean water field --k 5 --mode dense)" ] || fail "[search] mode = dense ignored"
[ "$(ids ocean water field --k 5)" != "$(ids ocean water field --k 5 --mode bm25)" ] || fail "dense and bm25 agree: the check cannot tell"
sed -i '/^\[search\]$/,$d' .cairn/config
if "$CAIRN" search river --mode dense --group doc 2>err; then fail "--group doc with dense accepted"; fi
if "$CAIRN" search river --mode nonsense 2>err; then fail "bad mode accepted"; fi
# --rerank with an embedder that has no classification head: a clear error
if "$CAIRN" search river --mode hybrid --rerank "$M1" 2>err >/dev/null; then fail "rerank with an embedder accepted"; fi
grep -q "not a cross-encoder" err || fail "unclear rerank error: $(cat err)"
# --rerank with a cross-encoder (a synthetic one from our writer): the fused
# top N come back ordered by the scores `cairn embed --rerank` gives them
"$CAIRN" model synth "$T/rr.gguf" --arch bert --vocab 300 --embd 32 --ff 64 --cls-out 1 >/dev/null
"$CAIRN" search river bridge --mode hybrid --k 6 --rerank-top 6 --json > "$T/fused.json"
"$CAIRN" search river bridge --mode hybrid --k 6 --rerank "$T/rr.gguf" --rerank-top 6 --json > "$T/rr.json"
python3 - "$T" "$CAIRN" <<'PY' || fail "rerank order"
import json, subprocess, sys
t, cairn = sys.argv[1], sys.argv[2]
fused = json.load(open(t + "/fused.json"))["results"]
rr = json.load(open(t + "/rr.json"))["results"]
assert len(fused) == 6 and len(rr) == 6
assert sorted(x["chunk_id"] for x in fused) == sorted(x["chunk_id"] for x in rr), "rerank changed the set"
ref = json.loads(subprocess.run([cairn, "embed", "-m", t + "/rr.gguf", "--rerank", "river bridge", "--json"]
                                + [x["text"] for x in fused], check=True, capture_output=True, text=True).stdout)["scores"]
want = [fused[i]["chunk_id"] for i in sorted(range(6), key=lambda i: (-ref[i], i))]
got = [x["chunk_id"] for x in rr]
assert got == want, (got, want)
for x in rr:
    i = [f["chunk_id"] for f in fused].index(x["chunk_id"])
    assert abs(x["score"] - ref[i]) < 1e-4, (x["score"], ref[i])
PY

# rm drops vectors; sync after a delete too
"$CAIRN" rm docs/b >/dev/null
after=$("$CAIRN" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); e=s["embeddings"]; print(s["chunks"], e["embedded"], e["index_vectors"])')
set -- $after; [ "$1" = "$2" ] && [ "$1" = "$3" ] || fail "after rm: $after"
[ "$(q 'river bridge' --mode dense --k 50 --where 'path ^= "docs/b"')" = "0 " ] || fail "removed chunks still found"
rm docs/a/n1.md; echo "The copper maple." > docs/a/n2.md
"$CAIRN" sync --quiet
r=$("$CAIRN" search maple copper --mode dense --k 1000 --json | python3 -c '
import json,sys; r=json.load(sys.stdin)["results"]; print(len(r), sum(x["path"]=="docs/a/n1.md" for x in r), sum("bridge 2." in x["text"] for x in r))')
set -- $r; [ "$2" = 0 ] && [ "$3" = 0 ] || fail "stale dense results after sync: $r"

# a changed model re-embeds everything and says so before it starts
sed -i "s|^model = .*|model = $M2|" .cairn/config
"$CAIRN" sync 2>err >/dev/null
grep -q "embedding model changed" err || fail "no message on model change: $(cat err)"
m=$("$CAIRN" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); e=s["embeddings"]; print(e["model"], e["embedded"] == s["chunks"] == e["index_vectors"])')
case "$m" in *d128*True) ;; *) fail "after model change: $m" ;; esac
[ "$(q 'river bridge' --mode dense --k 3 | cut -d' ' -f1)" = 3 ] || fail "dense search after model change"

# a damaged, truncated or foreign index file: a message, rebuilt from vectors.db
want=$(q 'river bridge' --mode dense --k 5)
cp .cairn/vectors.idx good.idx
for damage in flip truncate foreign; do
  cp good.idx .cairn/vectors.idx
  case $damage in
    flip) printf '\xff\xfe' | dd of=.cairn/vectors.idx bs=1 seek=600 conv=notrunc status=none ;;
    truncate) truncate -s 5000 .cairn/vectors.idx ;;
    foreign) echo "not an index" > .cairn/vectors.idx ;;
  esac
  got=$(q 'river bridge' --mode dense --k 5 2>err)
  grep -q "rebuilding the vector index" err || fail "$damage: no rebuild message: $(cat err)"
  [ "$got" = "$want" ] || fail "$damage: results changed after rebuild: $got vs $want"
  "$CAIRN" search river --mode dense --k 1 2>err >/dev/null
  ! grep -q "rebuilding" err || fail "$damage: index not rewritten after the rebuild"
done
cd ..

# SIGKILL during embedding: the rerun finishes the job, each chunk once
mkdir k && cd k
"$CAIRN" init --embed-model "$M1" >/dev/null
echo "batch = 4" >> .cairn/config     # [embed] is the file's last section
mkdir d
python3 - <<'PY'
import random
r = random.Random(3)
w = "river stone cloud maple orbit copper bridge grove dust light water field".split()
for i in range(150):
    open("d/f%d.txt" % i, "w").write(" ".join(r.choice(w) for _ in range(400)) + "\n")
PY
"$CAIRN" add d --quiet &
pid=$!
python3 - "$pid" <<'PY'
import os, signal, sqlite3, sys, time
pid = int(sys.argv[1]); t0 = time.time()
while time.time() - t0 < 120:
    try:
        n = sqlite3.connect(".cairn/vectors.db", timeout=1).execute("SELECT count(*) FROM vecs").fetchone()[0]
    except Exception:
        n = 0
    if n >= 8:
        os.kill(pid, signal.SIGKILL); print("killed after", n, "vectors"); sys.exit(0)
    time.sleep(0.05)
sys.exit("embedding never started")
PY
wait $pid 2>/dev/null || true
part=$(python3 -c 'import sqlite3; print(sqlite3.connect(".cairn/vectors.db").execute("SELECT count(*) FROM vecs").fetchone()[0])')
total=$("$CAIRN" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["chunks"])')
[ "$part" -lt "$total" ] || echo "note: the kill came after embedding finished"
"$CAIRN" sync --quiet
r=$("$CAIRN" status --json | python3 -c 'import json,sys; s=json.load(sys.stdin); e=s["embeddings"]; print(s["chunks"], e["embedded"], e["index_vectors"])')
set -- $r; [ "$1" = "$2" ] && [ "$1" = "$3" ] || fail "after kill + sync: $r"
n=$("$CAIRN" search river --mode dense --k 10000 --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print(len(r), len({x["chunk_id"] for x in r}))')
[ "$n" = "$1 $1" ] || fail "dense search for everything after resume: $n for $1 chunks"
echo "ok"
