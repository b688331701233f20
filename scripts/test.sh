#!/usr/bin/env bash
# test.sh — set up, build (warnings are errors) and run the whole test suite,
# in the release build and in the sanitizer (ASan+UBSan) build.
# CAIRN_TEST_SANITIZE=0 skips the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
cmake --preset release >/dev/null
cmake --build --preset release -j"$jobs"
ctest --preset release -j"$jobs"
if [ "${CAIRN_TEST_SANITIZE:-1}" != 0 ]; then
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j"$jobs"
  ctest --preset asan -j"$jobs"
fi
