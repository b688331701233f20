#!/usr/bin/env bash
# test_fresh_random.sh — "never a stale or duplicate chunk", checked through
# search itself: random edits, appends, truncations, renames, moves across
# directories, deletions, editor-style saves and bursts; after each step
# `cairn search` must return exactly the current content and nothing else.
# Run twice: with `cairn sync` after each step, and with `cairn watch`
# running in the background (the check waits for it to catch up).
# With the shared glove-bert embedder present, the store also embeds its
# chunks, and `--mode dense` and `--mode hybrid` are checked the same way:
# a dense search for everything (k above the chunk count) returns exactly
# the current chunks (each from its file's current path and version, every
# live file present), a hybrid search for a file's unique token ranks that
# file first, and every chunk has a vector.
set -euo pipefail
: "${CAIRN:?}"
T=$(mktemp -d "${CAIRN_TEST_TMP:-/tmp}/freshrand.XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$T"' EXIT
SHARED=${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-$CAIRN_SRC/../shared}}
MODEL="$SHARED/models/glove-bert/glove6B-100d-bert-15k-f16.gguf"
[ -f "$MODEL" ] || { echo "note: $MODEL absent: dense and hybrid modes not checked"; MODEL=""; }
for mode in sync watch; do
  mkdir -p "$T/$mode"
  python3 - "$CAIRN" "$T/$mode" "$mode" "$MODEL" <<'PY'
import json, os, random, re, subprocess, sys, time
cairn, root, mode, model = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
os.chdir(root)
def run(*a):
    return subprocess.run([cairn, *a], check=True, capture_output=True, text=True).stdout
if model:
    run("init", "--embed-model", model)
else:
    run("init")
os.makedirs("data/a/b", exist_ok=True); os.makedirs("data/c", exist_ok=True)
rng = random.Random(7 if mode == "sync" else 11)
files = {}      # id -> [relpath, version]  (live files)
dead = set()    # ids of deleted files
nid = [0]
touched = set() # ids changed since the last successful check
dirs = ["data", "data/a", "data/a/b", "data/c"]
def body(i, v):
    w = ["river", "stone", "cloud", "maple", "orbit", "copper"]
    return "".join("tok%dv%d %s %s\n\n" % (i, v, rng.choice(w), rng.choice(w)) for _ in range(rng.randint(1, 5)))
def create():
    nid[0] += 1; i = nid[0]
    p = "%s/f%d.txt" % (rng.choice(dirs), i)
    open(p, "w").write(body(i, 1)); files[i] = [p, 1]; touched.add(i)
def op():
    if not files or rng.random() < 0.2:
        return create()
    i = rng.choice(sorted(files)); p, v = files[i]
    touched.add(i)
    k = rng.randint(0, 5)
    if k == 0:                                   # rewrite
        files[i][1] = v + 1; open(p, "w").write(body(i, v + 1))
    elif k == 1:                                 # truncate then refill (two writes)
        files[i][1] = v + 1; open(p, "w").close(); open(p, "a").write(body(i, v + 1))
    elif k == 2:                                 # rename / move
        q = "%s/m%d_%d.txt" % (rng.choice(dirs), i, rng.randint(0, 999))
        os.rename(p, q); files[i][0] = q
    elif k == 3:                                 # delete
        os.unlink(p); del files[i]; dead.add(i)
    elif k == 4:                                 # editor save: temp file + rename
        files[i][1] = v + 1
        tmp = os.path.join(os.path.dirname(p), ".%s.swp" % os.path.basename(p))
        open(tmp, "w").write(body(i, v + 1)); os.rename(tmp, p)
    else:                                        # append (whole file re-versioned)
        files[i][1] = v + 1; open(p, "w").write(body(i, v + 1) + body(i, v + 1))
def problems():
    # Only files changed since the last check can have changed in search;
    # every live file is checked at the end.
    bad = []
    for i, (p, v) in files.items():
        if i not in touched:
            continue
        r = json.loads(run("search", "tok%dv%d" % (i, v), "--mode", "bm25", "--k", "50", "--json"))["results"]
        paths = {x["path"] for x in r}
        if paths != {p}:
            bad.append("file %d v%d at %s: search finds %s" % (i, v, p, sorted(paths)))
        if v > 1:
            r = json.loads(run("search", "tok%dv%d" % (i, v - 1), "--mode", "bm25", "--k", "5", "--json"))["results"]
            if r:
                bad.append("file %d: stale version %d still found" % (i, v - 1))
        if model:
            r = json.loads(run("search", "tok%dv%d" % (i, v), "--mode", "hybrid", "--k", "3", "--json"))["results"]
            if not r or r[0]["path"] != p:
                bad.append("hybrid: file %d v%d at %s ranked first: %s" % (i, v, p, r[0]["path"] if r else None))
    for i in [d for d in dead if d in touched]:
        for v in range(1, 4):
            r = json.loads(run("search", "tok%dv%d" % (i, v), "--mode", "bm25", "--k", "5", "--json"))["results"]
            if r:
                bad.append("deleted file %d: version %d still found" % (i, v))
    st = json.loads(run("status", "--json"))
    if st["documents"] != len(files):
        bad.append("%d documents for %d files" % (st["documents"], len(files)))
    if model:
        e = st.get("embeddings", {})
        if e.get("embedded") != st["chunks"] or e.get("index_vectors") != st["chunks"]:
            bad.append("embeddings: %s for %d chunks" % (e, st["chunks"]))
        for m in ("dense", "hybrid"):
            r = json.loads(run("search", "river stone cloud", "--mode", m, "--k", "10000", "--depth", "10000",
                               "--json"))["results"]
            seen = set()
            for x in r:
                for i, v in re.findall(r"tok(\d+)v(\d+)", x["text"]):
                    i, v = int(i), int(v)
                    if i not in files or files[i][1] != v or files[i][0] != x["path"]:
                        bad.append("%s: stale chunk tok%dv%d at %s" % (m, i, v, x["path"]))
                    seen.add(i)
            if seen != set(files):
                bad.append("%s: files missing from a search for everything: %s" % (m, sorted(set(files) - seen)[:5]))
            if len(r) != st["chunks"]:
                bad.append("%s: %d results for %d chunks" % (m, len(r), st["chunks"]))
    return bad
for _ in range(5):
    create()
run("add", "data", "--quiet")
w = None
if mode == "watch":
    w = subprocess.Popen([cairn, "watch", "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
steps = 40 if mode == "sync" else 25
for step in range(steps):
    for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 8)):
        op()
    if mode == "sync":
        run("sync", "--quiet"); bad = problems()
    else:
        deadline = time.time() + 15
        while True:
            time.sleep(0.3)
            bad = problems()
            if not bad or time.time() > deadline:
                break
    if not bad:
        touched.clear()
    if bad:
        print("step %d (%s): %s" % (step, mode, "; ".join(bad[:5])), file=sys.stderr)
        if w: w.terminate()
        sys.exit(1)
touched.update(files); touched.update(dead)
bad = problems()
if bad:
    print("final (%s): %s" % (mode, "; ".join(bad[:5])), file=sys.stderr); sys.exit(1)
if w:
    w.terminate(); w.wait(timeout=10)
print("%s: %d steps ok, %d live files, %d deleted" % (mode, steps, len(files), len(dead)))
PY
done
