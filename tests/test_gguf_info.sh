#!/bin/bash
# test_gguf_info.sh — `cairn model info` on the shared models and on damaged files.
set -u
: "${CAIRN:?}"
SHARED="${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-../shared}}"
[ -d "$SHARED/models" ] || { echo "SKIP: shared models absent"; exit 77; }
TMP="${CAIRN_TEST_TMP:-/tmp}/gguf_info.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }

M="$SHARED/models/stories260K/stories260K.gguf"
out=$("$CAIRN" model info "$M"); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '^architecture  llama' <<<\"\$out\""
check "grep -Eq 'embedding_length +64$' <<<\"\$out\""
check "grep -Eq 'block_count +5$' <<<\"\$out\""
check "grep -Eq 'vocab size +512$' <<<\"\$out\""
check "grep -Eq 'bos +1 +\"<s>\"' <<<\"\$out\""
check "grep -q '292800 parameters' <<<\"\$out\""
check "grep -Eq '^  F32 +48 +292800 +1171200' <<<\"\$out\""

out=$("$CAIRN" model info "$M" --json --tensors); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '\"embedding_length\":	64' <<<\"\$out\""
check "grep -q '\"head_count_kv\"\\|\"attention.head_count_kv\":	4' <<<\"\$out\""
check "grep -q '\"vocab_size\":	512' <<<\"\$out\""
check "grep -q '\"params\":	292800' <<<\"\$out\""
check "[ \$(grep -c '\"offset\":' <<<\"\$out\") -eq 48 ]"

out=$("$CAIRN" model info "$SHARED/models/glove-bert/glove6B-100d-bert-22k-d128-Q4_K_M.gguf" --tensors); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q 'MOSTLY_Q4_K_M' <<<\"\$out\""
check "grep -Eq '^  Q6_K +1 ' <<<\"\$out\""
check "grep -Eq 'blk.0.ffn_down.weight +Q6_K +\\[512, 128\\]' <<<\"\$out\""

# --check scans the data: clean files pass, a NaN in a weight is found.
out=$("$CAIRN" model info "$M" --check); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q 'check: 0 of 48 tensors' <<<\"\$out\""
cp "$M" "$TMP/nan.gguf" && chmod u+w "$TMP/nan.gguf"
printf '\xff\xff\xff\xff' | dd of="$TMP/nan.gguf" bs=1 seek=$((14176 + 4 * 10)) conv=notrunc status=none
out=$("$CAIRN" model info "$TMP/nan.gguf" --check); rc=$?
check "[ $rc -eq 1 ]"
check "grep -q \"token_embd.weight' (F32): non-finite value at value 10\" <<<\"\$out\""
check "grep -q 'check: 1 of 48 tensors' <<<\"\$out\""

# Damaged files: a clean error, exit 1, never a crash.
head -c 5000 "$M" > "$TMP/trunc.gguf"
"$CAIRN" model info "$TMP/trunc.gguf" >/dev/null 2>"$TMP/err"; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q 'corrupt input' '$TMP/err'"
head -c 1185000 "$M" > "$TMP/trunc2.gguf"
"$CAIRN" model info "$TMP/trunc2.gguf" >/dev/null 2>"$TMP/err"; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q 'past the end' '$TMP/err'"
printf 'GGUF\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00' > "$TMP/hostile.gguf"
"$CAIRN" model info "$TMP/hostile.gguf" >/dev/null 2>"$TMP/err"; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q 'tensor count' '$TMP/err'"
"$CAIRN" model info "$TMP/missing.gguf" >/dev/null 2>&1; rc=$?
check "[ $rc -eq 1 ]"
"$CAIRN" model info >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"
"$CAIRN" model bogus x >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"

echo "$((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
