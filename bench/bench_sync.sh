#!/usr/bin/env bash
# bench_sync.sh — freshness costs (issue 3 targets):
#   * `cairn sync` of an unchanged tree of N files (target <= 1 s at 10,000)
#   * one changed file in that tree (target <= 200 ms + its ingest)
#   * `cairn watch`: a saved file searchable within (target) 1 s
# usage: bench/bench_sync.sh [CAIRN_BINARY] [N_FILES] [REPS]
set -euo pipefail
CAIRN=${1:-build/release/cairn}
CAIRN=$(realpath "$CAIRN")
N=${2:-10000}
R=${3:-5}
T=$(mktemp -d /tmp/bench_sync.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
cd "$T"
ms() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

"$CAIRN" init >/dev/null
python3 - "$N" <<'PY'
import os, sys, random
n = int(sys.argv[1]); random.seed(1)
words = "river stone cloud maple orbit lantern copper meadow signal harbor".split()
for i in range(n):
    d = "tree/d%02d/e%02d" % (i % 50, (i // 50) % 20)
    os.makedirs(d, exist_ok=True)
    with open("%s/f%05d.txt" % (d, i), "w") as f:
        f.write(" ".join(random.choice(words) for _ in range(120)) + " doc%05d\n" % i)
PY
t0=$(ms); "$CAIRN" add tree -q; t1=$(ms)
echo "files: $N   initial add: $(( (t1 - t0) / 1000000 )) ms"

for r in $(seq 1 "$R"); do
  t0=$(ms); "$CAIRN" sync -q >/dev/null; t1=$(ms); echo $(( (t1 - t0) / 1000000 ))
done | median | xargs -I{} echo "sync, unchanged tree: median {} ms over $R runs"

for r in $(seq 1 "$R"); do
  echo "edited $r" >> tree/d07/e03/f01357.txt 2>/dev/null || echo "edited $r" >> "$(find tree -name '*.txt' | head -1)"
  t0=$(ms); "$CAIRN" sync -q >/dev/null; t1=$(ms); echo $(( (t1 - t0) / 1000000 ))
done | median | xargs -I{} echo "sync, one changed file: median {} ms over $R runs"

"$CAIRN" watch --quiet >/dev/null 2>&1 &
sleep 2
for r in $(seq 1 "$R"); do
  word="fresh$r$RANDOM"
  t0=$(ms)
  printf 'now %s here\n' "$word" > tree/d01/e01/.tmp_save && mv tree/d01/e01/.tmp_save "tree/d01/e01/saved$r.txt"
  until "$CAIRN" search "$word" --json | grep -q "saved$r.txt"; do sleep 0.02; done
  t1=$(ms); echo $(( (t1 - t0) / 1000000 ))
done | median | xargs -I{} echo "watch, save to searchable: median {} ms over $R runs (includes a 150 ms debounce)"
