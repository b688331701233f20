#!/usr/bin/env bash
# crash_campaign.sh — SIGKILL at random instants during add, sync, watch,
# rm and the index catch-ups and merges they run; after every kill
# `cairn check` must find no problem, and every COMPARE_EVERY trials (and at
# the end) the store, brought to completion by rerunning, must equal a
# clean run over the same files.
#
# usage: bench/crash_campaign.sh [TRIALS=200] [CAIRN=build/release/cairn] [SEED]
#   COMPARE_EVERY=10 (env)  how often to compare with a clean run
# Prints one line per trial that went wrong and a summary:
#   trials N, killed mid-run K, inconsistent 0, compared C, differing 0
# Exit status 1 when any store was inconsistent or differed.
set -u
TRIALS=${1:-200}
CAIRN=$(realpath "${2:-build/release/cairn}")
SEED=${3:-$RANDOM}
COMPARE_EVERY=${COMPARE_EVERY:-10}
RANDOM=$SEED
T=$(mktemp -d "${CAIRN_TEST_TMP:-/tmp}/crash.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
cd "$T"
unset CAIRN_DB CAIRN_IO_FAIL_AFTER
echo "crash campaign: $TRIALS trials, seed $SEED (rerun: $0 $TRIALS $CAIRN $SEED)"

# A corpus of text, markdown and a JSONL record file, in a few directories.
python3 - <<'PY'
import os, random
rnd = random.Random(1)
words = [''.join(rnd.choice('abcdefghijklmnop') for _ in range(rnd.randint(3, 8))) for _ in range(1500)]
for i in range(160):
    d = 'c/d%d' % (i % 6)
    os.makedirs(d, exist_ok=True)
    ext = '.md' if i % 4 == 0 else '.txt'
    with open('%s/f%03d%s' % (d, i, ext), 'w') as f:
        for p in range(rnd.randint(4, 14)):
            if ext == '.md' and p % 5 == 0:
                f.write('## part %d\n\n' % p)
            f.write(' '.join(rnd.choice(words) for _ in range(rnd.randint(40, 90))) + '\n\n')
with open('c/d0/records.jsonl', 'w') as f:
    for i in range(200):
        f.write('{"id": "r%d", "text": "%s"}\n' % (i, ' '.join(rnd.choice(words) for _ in range(40))))
PY
mkdir p && mv c p/ && cd p
"$CAIRN" init >/dev/null
"$CAIRN" add c -q
# a clean full add, timed: kills land in [0, 1.3 x this]
t0=$(date +%s%N); (mkdir -p ../probe && cp -r c ../probe/ && cd ../probe && "$CAIRN" init >/dev/null && "$CAIRN" add c -q); t1=$(date +%s%N)
rm -rf ../probe
SPAN_MS=$(( (t1 - t0) / 1000000 * 13 / 10 + 20 ))
echo "a clean add takes $(( (t1 - t0) / 1000000 )) ms; kills fall within ${SPAN_MS} ms"

KEYS="select d.path || ':' || d.rkey || ':' || c.ord || ':' || c.chunk_key from chunks c join docs d on d.id = c.doc_id order by 1"
edit_tree() {   # a few changes on disk, so the next sync has work
  local k f
  for k in 1 2 3; do
    f=$(ls c/d$((RANDOM % 6))/* 2>/dev/null | sed -n "$((RANDOM % 20 + 1))p")
    [ -n "$f" ] && echo "edited $RANDOM words here $RANDOM" >> "$f"
  done
  f=$(ls c/d$((RANDOM % 6))/*.txt 2>/dev/null | sed -n "$((RANDOM % 20 + 1))p")
  [ -n "$f" ] && rm -f "$f"
  echo "new file $RANDOM with words $RANDOM" > "c/d$((RANDOM % 6))/n$RANDOM.txt"
}

killed=0; bad=0; compared=0; differ=0
for trial in $(seq 1 "$TRIALS"); do
  edit_tree
  op=$((RANDOM % 6))
  delay_ms=$((RANDOM * SPAN_MS / 32768))
  delay=$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))
  # each op is given real work first (unkilled), then killed at random
  case $op in
    0) what="add";   "$CAIRN" rm c/d$((RANDOM % 6)) c/d$((RANDOM % 6)) -q --wait >/dev/null 2>&1
       "$CAIRN" add c -q --wait >/dev/null 2>&1 & ;;
    1) what="sync";  for f in $(ls c/d$((RANDOM % 6))/* | head -20); do echo "more $RANDOM" >> "$f"; done
       "$CAIRN" sync -q --wait >/dev/null 2>&1 & ;;
    2) what="rm";    "$CAIRN" add c -q --wait >/dev/null 2>&1
       "$CAIRN" rm c -q --wait >/dev/null 2>&1 & ;;
    3) what="watch"; "$CAIRN" rm c/d$((RANDOM % 6)) -q --wait >/dev/null 2>&1
       "$CAIRN" watch c -q --debounce 20 >/dev/null 2>&1 &
       ( sleep 0.05; edit_tree ) ;;
    4) what="add+index rebuild"; rm -rf .cairn/index; "$CAIRN" add c -q --wait >/dev/null 2>&1 & ;;
    5) what="search catch-up"; "$CAIRN" rm c/d$((RANDOM % 6)) -q --wait >/dev/null 2>&1
       "$CAIRN" add c -q --wait >/dev/null 2>&1
       rm -rf .cairn/index; "$CAIRN" search words >/dev/null 2>&1 & ;;
  esac
  pid=$!
  sleep "$delay"
  if kill -9 $pid 2>/dev/null; then killed=$((killed + 1)); fi
  wait $pid 2>/dev/null
  if ! "$CAIRN" check --no-sources > ../check.out 2>&1; then
    bad=$((bad + 1))
    echo "trial $trial ($what killed at ${delay}s): inconsistent store:"
    grep problem ../check.out | head -5
    cp -r .cairn "../inconsistent.$trial"
  fi
  if [ $((trial % COMPARE_EVERY)) = 0 ] || [ "$trial" = "$TRIALS" ]; then
    # finish the job, then compare with a clean run over the same files
    "$CAIRN" add c -q --wait >/dev/null 2>&1; "$CAIRN" sync -q --wait >/dev/null 2>&1
    rm -rf ../clean && mkdir ../clean && cp -r c ../clean/ && (cd ../clean && "$CAIRN" init >/dev/null && "$CAIRN" add c -q >/dev/null 2>&1)
    sqlite3 .cairn/store.db "$KEYS" > ../got.keys
    sqlite3 ../clean/.cairn/store.db "$KEYS" > ../ref.keys
    compared=$((compared + 1))
    if ! cmp -s ../got.keys ../ref.keys || ! "$CAIRN" check --no-sources >/dev/null 2>&1; then
      differ=$((differ + 1))
      echo "trial $trial: after completion the store differs from a clean run ($(diff ../got.keys ../ref.keys | grep -c '^[<>]') lines)"
    fi
  fi
done
echo "trials $TRIALS, killed mid-run $killed, inconsistent $bad, compared $compared, differing $differ"
[ $bad -eq 0 ] && [ $differ -eq 0 ]
