#!/usr/bin/env bash
# test_sync_cli.sh — cairn sync and cairn watch end to end: counts reported,
# editors' save patterns, directory creation/removal, bursts, clean stop on
# SIGTERM, and a sync killed with SIGKILL completed by the next one.
set -euo pipefail
: "${CAIRN:?}"
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
echo "test_sync_cli: ok"
