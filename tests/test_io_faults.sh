#!/bin/bash
# test_io_faults.sh — I/O fault injection over every fault point of the
# store and index write paths (base/iofault.c; SQLite's writes through the
# store's VFS shim). For each command (add, sync after edits, rm, search
# catching up its index) the run is first counted (CAIRN_IO_COUNT_FILE),
# then repeated failing at each point N in turn, as a full disk that stays
# full (ENOSPC, sticky) and as one I/O error (EIO, once). After every
# injected fault:
#   - the command exits with a clear message (no crash, nothing "malformed"),
#   - `cairn check` finds no problem,
#   - rerunning the command without faults completes the job, and the store
#     then equals a clean run.
# Search must keep answering from the last committed index when its
# catch-up cannot write. Prints the number of fault points exercised.
# The release build runs every point in both modes; a sanitizer build
# (CAIRN_SANITIZED, ~10x slower per run) every 4th, offset per mode, unless
# CAIRN_IO_FAULT_STEP says otherwise.
set -u
: "${CAIRN:?}"
TMP="${CAIRN_TEST_TMP:-/tmp}/iofaults.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0; points=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1 ${2:-}"; fail=$((fail+1)); fi; }
unset CAIRN_DB CAIRN_IO_FAIL_AFTER CAIRN_IO_COUNT_FILE
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
cd "$TMP"
python3 - <<'EOF'
import os, random
rnd = random.Random(3)
words = [''.join(rnd.choice('abcdefghij') for _ in range(rnd.randint(3, 7))) for _ in range(400)]
for part in ('a', 'b'):
    for i in range(8):
        d = os.path.join('src', part, 'd%d' % (i % 2))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'f%d.txt' % i), 'w') as f:
            f.write('word%s%d\n\n' % (part, i))
            for p in range(6):
                f.write(' '.join(rnd.choice(words) for _ in range(50)) + '\n\n')
with open('src/a/r.jsonl', 'w') as f:
    for i in range(10):
        f.write('{"id": "r%d", "text": "record %d %s"}\n' % (i, i, ' '.join(rnd.choice(words) for _ in range(30))))
EOF
KEYS="select d.path || ':' || d.rkey || ':' || c.ord || ':' || c.chunk_key from chunks c join docs d on d.id = c.doc_id order by 1"
keys() { sqlite3 "$1/.cairn/store.db" "$KEYS"; }

# The states a scenario starts from, built once without faults.
mkdir base0 && (cd base0 && "$CAIRN" init >/dev/null && cp -r ../src .)
cp -r base0 base1 && (cd base1 && "$CAIRN" add src/a -q)
# after edits on disk (for sync): one changed, one deleted, one new file
cp -r base1 base2 && (cd base2 && echo "appended words" >> src/a/d0/f0.txt && rm src/a/d1/f1.txt && \
  echo "wordnew brand new file" > src/a/d0/new.txt)
# index behind the store (for search): the index of base1 with base1 + src/b in the store
cp -r base1 base3 && cp -r base3/.cairn/index ix.old && (cd base3 && "$CAIRN" add src/b -q) && \
  rm -rf base3/.cairn/index && cp -r ix.old base3/.cairn/index

# Reference outcomes of each scenario (clean runs).
run_cmd() {  # scenario dir: run the scenario's command there
  case $1 in
    add)    "$CAIRN" add src/a -q ;;
    sync)   "$CAIRN" sync -q ;;
    rm)     "$CAIRN" rm src/a/d1 -q ;;
    search) "$CAIRN" search worda3 --json ;;
  esac
}
declare -A start=([add]=base0 [sync]=base2 [rm]=base1 [search]=base3)
for sc in add sync rm search; do
  rm -rf ref.$sc && cp -r ${start[$sc]} ref.$sc
  (cd ref.$sc && run_cmd $sc > ../ref.$sc.out 2>&1); check "[ $? -eq 0 ]" "(clean $sc)"
  keys ref.$sc > ref.$sc.keys
done
check "grep -q 'src/a/d1/f3.txt' ref.search.out"

STEP=${CAIRN_IO_FAULT_STEP:-1}
[ -n "${CAIRN_SANITIZED:-}" ] && STEP=${CAIRN_IO_FAULT_STEP:-4}
for sc in add sync rm search; do
  rm -rf w && cp -r ${start[$sc]} w
  (cd w && CAIRN_IO_COUNT_FILE="$TMP/count" run_cmd $sc > /dev/null 2>&1)
  K=$(cat count)
  check "[ $K -gt 0 ]" "($sc has no fault points)"
  off=0
  for mode in sticky eio; do
    for N in $(seq $((off % STEP)) $STEP $((K - 1))); do
      points=$((points + 1))
      rm -rf w && cp -r ${start[$sc]} w
      spec="$N:sticky"; [ $mode = eio ] && spec="$N:eio"
      (cd w && CAIRN_IO_FAIL_AFTER=$spec run_cmd $sc > ../out 2> ../err); rc=$?
      what="($sc, fault at point $N, $mode)"
      check "[ $rc -lt 128 ]" "$what: crashed (rc $rc)"
      check "! grep -qi 'malformed\|internal error\|corrupt' err" "$what: $(head -c 300 err)"
      if [ $rc -ne 0 ]; then
        check "grep -qi 'no space left\|disk is full\|input/output\|I/O error' err" "$what: unclear message: $(head -c 300 err)"
      fi
      if [ $sc = search ]; then
        # a reader answers from the last committed index whatever the index writer met
        if [ $rc -eq 0 ]; then check "grep -q 'src/a/d1/f3.txt' out" "$what: no result"; fi
        check "grep -q '\"path\"' out || grep -qi 'cannot open\|disk is full\|no space\|I/O\|input/output' err" "$what: neither results nor a reason"
      fi
      (cd w && "$CAIRN" check --no-sources > ../chk 2>&1); rc=$?
      check "[ $rc -eq 0 ]" "$what: check after the fault: $(grep problem chk | head -3)"
      (cd w && run_cmd $sc > /dev/null 2> ../err2); rc=$?
      if [ $sc = rm ] && [ $rc -eq 1 ] && grep -q 'not in the store' err2; then rc=0; fi   # the faulty run had removed it
      check "[ $rc -eq 0 ]" "$what: rerun: $(head -c 300 err2)"
      keys w > got.keys
      check "cmp -s ref.$sc.keys got.keys" "$what: store differs from a clean run"
      (cd w && "$CAIRN" check --no-sources > ../chk 2>&1); check "[ $? -eq 0 ]" "$what: check after the rerun"
    done
    off=$((off + STEP / 2 + 1))
  done
  echo "$sc: $K fault points, as a full disk and as an I/O error ($( [ $STEP = 1 ] && echo "all" || echo "every ${STEP}th"))"
done
echo "fault points exercised: $points"
echo "$n checks, $fail failures"
[ $fail -eq 0 ]
