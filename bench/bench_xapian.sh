#!/usr/bin/env bash
# bench_xapian.sh — cairn's BM25 and Xapian 1.4 on one workload, in one run:
# bench_bm25 builds the 100k-chunk corpus and the natural-language queries
# from ../shared, measures cairn, and dumps both; bench_xapian indexes the
# same chunks and runs the same queries. Xapian is a comparison only
# (Debian's libxapian-dev; CMake builds bench_xapian when it is installed).
#
#   bench/bench_xapian.sh [BUILD_DIR]        (default build/release)
#   CHUNKS=100000 QUERIES=300
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
CHUNKS=${CHUNKS:-100000}
QUERIES=${QUERIES:-300}
if [ ! -x "$BUILD/bench_xapian" ]; then
  echo "bench_xapian is not built: install libxapian-dev (apt-get install libxapian-dev) and re-run cmake" >&2
  exit 1
fi
export CAIRN_TEST_SHARED=${CAIRN_TEST_SHARED:-$(cd .. && pwd)/shared}
TMP=$(mktemp -d /tmp/cairn-xapian-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
ours=$("$BUILD/bench_bm25" --no-fts --json --chunks "$CHUNKS" --queries "$QUERIES" --dump "$TMP")
theirs=$("$BUILD/bench_xapian" "$TMP")
python3 - "$ours" "$theirs" <<'PY'
import json, sys
o, x = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ours = o["engines"][0]
print("%d chunks, %d queries (%.1f analyzed terms on average), top %d" % (o["chunks"], o["queries"], o["mean_terms"], x["k"]))
print()
print("| engine | build s | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms |")
print("|---|---:|---:|---:|---:|---:|")
print("| %s | %.1f | %.2f | %.2f | %.2f | %.2f |" % (ours["name"], o["build_s"], ours["p50_ms"], ours["p99_ms"], ours["cpu_p50_ms"], ours["cpu_p99_ms"]))
print("| %s | %.1f | %.2f | %.2f | %.2f | %.2f |" % (x["engine"], x["build_s"], x["p50_ms"], x["p99_ms"], x["cpu_p50_ms"], x["cpu_p99_ms"]))
print()
print("cairn / xapian latency: p50 %.2f, p99 %.2f" % (ours["p50_ms"] / x["p50_ms"], ours["p99_ms"] / x["p99_ms"]))
PY
