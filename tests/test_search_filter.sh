#!/usr/bin/env bash
# test_search_filter.sh — strict pre-filtering in `cairn search --where`:
# every result satisfies the filter, a selective filter still returns a full
# top-k, expired documents never appear, --fresh-within limits by age, and
# bad filters are errors pointing at the problem.
set -euo pipefail
: "${CAIRN:?}"
T=$(mktemp -d "${CAIRN_TEST_TMP:-/tmp}/searchfilter.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$CAIRN" init >/dev/null
mkdir -p notes
# 1000 documents about lighthouses; 8 of them are tagged rare (0.8%); the
# rare ones use the query word once, the others many times, so an
# after-ranking filter would find none of them in the top 10.
for i in $(seq 1 1000); do
  if [ $((i % 125)) = 0 ]; then
    printf -- '---\nkind: rare\nyear: %d\ntags: [a, b]\n---\nlighthouse keeper notes %d\n' $((2000 + i % 7)) $i > notes/n$i.md
  else
    printf -- '---\nkind: common\nyear: %d\n---\nlighthouse lighthouse lighthouse lighthouse beam %d\n' $((2000 + i % 7)) $i > notes/n$i.md
  fi
done
printf -- '---\nkind: rare\nexpires: 2001-01-01\n---\nlighthouse expired note\n' > notes/old.md
"$CAIRN" add notes -q

count() { python3 -c "import json,sys; print(len(json.load(sys.stdin)['results']))"; }
allkind() { python3 -c "import json,sys; r=json.load(sys.stdin)['results']; print(all(x['metadata'].get('kind')=='$1' for x in r))"; }

n=$("$CAIRN" search lighthouse --k 5 --where 'kind = rare' --json | count)
[ "$n" = 5 ] || fail "selective filter: want a full top-5, got $n"
[ "$("$CAIRN" search lighthouse --k 50 --where 'kind = rare' --json | count)" = 8 ] || fail "want all 8 rare documents"
[ "$("$CAIRN" search lighthouse --k 50 --where 'kind = rare' --json | allkind rare)" = True ] || fail "a result violates the filter"
[ "$("$CAIRN" search lighthouse --k 20 --where 'kind = rare AND tags CONTAINS b AND year >= 2000' --json | count)" = 8 ] || fail "combined filter"
[ "$("$CAIRN" search lighthouse --k 20 --where 'NOT kind = common' --json | allkind rare)" = True ] || fail "NOT filter"
[ "$("$CAIRN" search lighthouse --k 2000 --where 'path GLOB "*/n1??.md"' --json | count)" = 100 ] || fail "glob filter"
# expired documents never appear (even before a sync removes them)
"$CAIRN" search expired --k 10 --json | grep -q '"results":\[\]' || fail "expired document returned"
# freshness window
[ "$("$CAIRN" search lighthouse --k 3 --fresh-within 1h --json | count)" = 3 ] || fail "fresh-within 1h"
[ "$("$CAIRN" search lighthouse --k 3 --where 'ingested < now - 1d' --json | count)" = 0 ] || fail "ingested < now - 1d"
# errors, not empty results
for bad in 'colour = red' 'year > soon' 'kind = ' '(kind = rare' 'tags = a'; do
  if "$CAIRN" search lighthouse --where "$bad" > out.txt 2> err.txt; then fail "'$bad' should fail"; fi
  grep -q "filter error at column" err.txt || fail "'$bad': no positioned error: $(cat err.txt)"
done
if "$CAIRN" search lighthouse --fresh-within 7x 2> err.txt; then fail "bad duration accepted"; fi
echo "test_search_filter: ok"
