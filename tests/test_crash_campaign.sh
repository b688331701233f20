#!/bin/bash
# test_crash_campaign.sh — the short version of bench/crash_campaign.sh:
# 12 trials of SIGKILL at a random instant during add, sync, watch, rm and
# index catch-ups, `cairn check` clean after each, the store equal to a
# clean run after completion (every 4 trials). The seed is printed.
set -u
: "${CAIRN:?}" "${CAIRN_SRC:?}"
command -v python3 >/dev/null || { echo "SKIP: python3 absent"; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 absent"; exit 77; }
COMPARE_EVERY=4 bash "$CAIRN_SRC/bench/crash_campaign.sh" 12 "$CAIRN" ${SEED:-}
