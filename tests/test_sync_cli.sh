#!/usr/bin/env bash
# test_sync_cli.sh — cairn sync and cairn watch end to end: counts reported,
# editors' save patterns, directory creation/removal, bursts, clean stop on
# SIGTERM, a sync killed with SIGKILL completed by the next one, and the caps
# and chunk size set in .cairn/config applied by sync exactly as by add.
set -euo pipefail
: "${CAIRN:?}"
unset CAIRN_DB CAIRN_MAX_FILE_MB CAIRN_MAX_STREAM_GB CAIRN_MAX_RECORD_MB CAIRN_CHUNK_SIZE CAIRN_CHUNK_OVERLAP
T=$(mktemp -d "${CAIRN_TEST_TMP:-/tmp}/synccli.XXXXXX")
mkdir -p "$T"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
json_field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(d$1)"; }

"$CAIRN" init >/dev/null
mkdir -p src/a src/b
for i in $(seq 1 20); do echo "common words file$i body" > "src/a/f$i.txt"; done
echo "bravo" > src/b/x.md
"$CAIRN" add src -q

# 1. sync reports each kind of change
echo "changed" >> src/a/f1.txt
mv src/a/f2.txt src/b/f2-moved.txt
rm src/a/f3.txt
echo "new one" > src/b/new.txt
out=$("$CAIRN" sync --json)
for kv in added:1 updated:1 moved:1 removed:1 unchanged:18; do
  k=${kv%%:*}; v=${kv#*:}
  got=$(echo "$out" | json_field "['$k']")
  [ "$got" = "$v" ] || fail "sync $k: want $v, got $got ($out)"
done
[ "$(("$CAIRN" status --json) | json_field "['stale']['new_files']")" = 0 ] || fail "stale after sync"

# 2. watch: saves become visible, deletes disappear, SIGTERM stops cleanly
docs() { "$CAIRN" status --json | json_field "['documents']"; }
wait_docs() { # wait until the document count is $1 (10 s at most)
  for _ in $(seq 1 100); do [ "$(docs)" = "$1" ] && return 0; sleep 0.1; done
  fail "documents: want $1, got $(docs)"
}
n0=$(docs)
"$CAIRN" watch > watch.log 2>&1 &
wpid=$!
sleep 1
echo "hello watch" > src/a/w1.txt                         # plain write
wait_docs $((n0 + 1))
printf 'saved\n' > src/a/.w2.txt.swp; mv src/a/.w2.txt.swp src/a/w2.txt   # editor: temp + rename
wait_docs $((n0 + 2))
mkdir -p src/c/d; echo "deep" > src/c/d/deep.txt             # new directories
wait_docs $((n0 + 3))
rm -rf src/c                                                 # directory removed
wait_docs $((n0 + 2))
for i in $(seq 1 300); do echo "burst $i" > "src/a/burst$i.txt"; done   # a burst
wait_docs $((n0 + 302))
rm src/a/burst*.txt
wait_docs $((n0 + 2))
kill -TERM $wpid
wait $wpid || fail "watch exited with $? on SIGTERM"
grep -q "stopped" watch.log || fail "watch did not say it stopped"

# 3. a sync killed with SIGKILL leaves a consistent store; the next sync completes
mkdir -p big
for i in $(seq 1 3000); do printf 'kill test document %d with some words in it\n\nand a second paragraph %d\n' $i $i > "big/k$i.txt"; done
"$CAIRN" sync "$T/big" --quiet > /dev/null &
spid=$!
sleep 0.5
kill -KILL $spid 2>/dev/null || true
wait $spid 2>/dev/null || true
"$CAIRN" sync "$T/big" --quiet > /dev/null
st=$("$CAIRN" status --json)
[ "$(echo "$st" | json_field "['files_partial']")" = 0 ] || fail "partial files after resync: $st"
n=$("$CAIRN" sync "$T/big" --json)
[ "$(echo "$n" | json_field "['unchanged']")" = 3000 ] || fail "after resync: $n"
[ "$(echo "$n" | json_field "['added']")" = 0 ] || fail "after resync: $n"
# 4. a watch killed with SIGKILL while applying a burst: the next sync completes
"$CAIRN" watch --quiet > /dev/null 2>&1 &
wpid=$!
sleep 1
mkdir -p src/burst
for i in $(seq 1 1500); do echo "watch kill $i" > "src/burst/w$i.txt"; done
sleep 0.6
kill -KILL $wpid 2>/dev/null || true
wait $wpid 2>/dev/null || true
"$CAIRN" sync --quiet > /dev/null
st=$("$CAIRN" status --json)
[ "$(echo "$st" | json_field "['files_partial']")" = 0 ] || fail "partial files after watch kill: $st"
[ "$(echo "$st" | json_field "['stale']['new_files']")" = 0 ] || fail "stale after watch kill + sync: $st"
n=$("$CAIRN" sync --json)
[ "$(echo "$n" | json_field "['added']")" = 0 ] || fail "after watch kill + resync: $n"
[ "$(echo "$n" | json_field "['updated']")" = 0 ] || fail "after watch kill + resync: $n"
[ "$("$CAIRN" search "watch kill 1234" --json | python3 -c "import json,sys; print(sum(1 for r in json.load(sys.stdin)['results'] if r['path'].endswith('w1234.txt')))")" = 1 ] || fail "burst file not searchable once"

# 5. caps and chunk size from .cairn/config: `cairn sync` refuses exactly what
#    `cairn add` refuses. Two identical stores get the same changes; one is
#    brought up to date with `cairn add`, the other with `cairn sync`; the
#    messages, counts, exit codes and resulting stores must be the same, and
#    what was not over a cap must be intact.
caps_store() { # $1 = directory: a store with small caps and one ingested tree
  mkdir -p "$1/docs"
  (cd "$1"
   "$CAIRN" init >/dev/null
   printf '[chunk]\nsize = 64\noverlap = 8\n[ingest]\nmax_file_mb = 1\nmax_stream_gb = 1\nmax_record_mb = 1\n' >> .cairn/config
   echo "kiwi keep this file" > docs/keep.txt
   echo "apple small" > docs/grow.txt
   for i in 1 2 3; do echo "{\"id\":\"r$i\",\"text\":\"record $i cherry\"}"; done > docs/recs.jsonl
   for i in $(seq 1 40); do echo "paragraph $i has several words of long markdown text to split"; done > docs/long.md
   "$CAIRN" add docs -q)
}
caps_change() { # the same edits in both stores
  (cd "$1"
   python3 -c "import sys; sys.stdout.write(('apple grown line\\n' * 200000)[:2200000])" > docs/grow.txt   # over max_file_mb
   python3 -c "import json; print(json.dumps({'id':'r4','text':'huge '*300000})); print(json.dumps({'id':'r5','text':'record five banana'}))" >> docs/recs.jsonl   # one line over max_record_mb
   echo "fig tail" >> docs/long.md                                        # re-chunked at chunk.size
   echo '{"id":"b1","text":"durian"}' > docs/big.jsonl
   truncate -s 1100M docs/big.jsonl)                                      # over max_stream_gb (sparse)
}
caps_state() { # documents, chunks, skipped files and what a few searches find
  (set -e; cd "$1"
   "$CAIRN" status --json | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['documents'], d['chunks'], d['files_skipped'])"
   for q in kiwi apple cherry banana huge durian fig paragraph; do
     "$CAIRN" search "$q" --k 50 --json | python3 -c "import json,sys; print('$q', sorted((r['path'], r['key'], r['text']) for r in json.load(sys.stdin)['results']))"
   done)
}
counts() { grep -oE '[0-9]+ (added|updated|unchanged|skipped|failed)' | sort; }
caps_store "$T/caps/viaadd"
caps_store "$T/caps/viasync"
caps_change "$T/caps/viaadd"
caps_change "$T/caps/viasync"
(cd "$T/caps/viaadd" && "$CAIRN" add docs > ../add.out 2> ../add.err) || fail "add under caps exited with $?"
(cd "$T/caps/viasync" && "$CAIRN" sync > ../sync.out 2> ../sync.err) || fail "sync under caps exited with $?"
sed "s#$T/caps/viasync/##" "$T/caps/sync.err" | sort > "$T/caps/sync.err.n"
sort "$T/caps/add.err" > "$T/caps/add.err.n"
diff "$T/caps/add.err.n" "$T/caps/sync.err.n" >&2 || fail "sync and add report the capped files differently"
grep -qx 'skipped: docs/grow.txt: 2200000 bytes exceeds the size cap of 1048576 bytes (ingest.max_file_mb)' "$T/caps/sync.err.n" \
  || fail "sync did not apply max_file_mb: $(cat "$T/caps/sync.err.n")"
grep -qx 'skipped: docs/big.jsonl: 1153433600 bytes exceeds the size cap of 1073741824 bytes for record files (ingest.max_stream_gb)' "$T/caps/sync.err.n" \
  || fail "sync did not apply max_stream_gb: $(cat "$T/caps/sync.err.n")"
grep -q 'docs/recs.jsonl: line 4: longer than the record cap of 1048576 bytes (ingest.max_record_mb)' "$T/caps/sync.err.n" \
  || fail "sync did not apply max_record_mb: $(cat "$T/caps/sync.err.n")"
[ "$(counts < "$T/caps/add.out")" = "$(counts < "$T/caps/sync.out")" ] || fail "counts differ: add: $(cat "$T/caps/add.out") sync: $(cat "$T/caps/sync.out")"
grep -q '2 skipped' "$T/caps/sync.out" || fail "sync skipped count: $(cat "$T/caps/sync.out")"
a=$(caps_state "$T/caps/viaadd") || fail "reading the store after add"
s=$(caps_state "$T/caps/viasync") || fail "reading the store after sync"
[ "$a" = "$s" ] || fail "store after sync differs from store after add:
add:  $a
sync: $s"
# the skipped files are up to date: status must not ask for another sync
stale=$(cd "$T/caps/viasync" && "$CAIRN" status --json | json_field "['stale']")
[ "$stale" = "{'new_files': 0, 'changed_files': 0, 'missing_files': 0}" ] || fail "stale after sync under caps: $stale"
(cd "$T/caps/viasync" && "$CAIRN" sync --json > ../sync2.out) || fail "second sync under caps"
for kv in added:0 updated:0 skipped:2 unchanged:3; do
  k=${kv%%:*}; v=${kv#*:}
  [ "$(json_field "['$k']" < "$T/caps/sync2.out")" = "$v" ] || fail "second sync $k: want $v ($(cat "$T/caps/sync2.out"))"
done
for q in kiwi cherry banana fig; do   # untouched and under-cap content is searchable
  echo "$s" | grep -q "^$q \[('docs/" || fail "'$q' not found after sync under caps: $s"
done
for q in huge durian; do              # over-cap content is not
  echo "$s" | grep -qx "$q \[\]" || fail "'$q' found although over a cap: $s"
done
echo "test_sync_cli: ok"
