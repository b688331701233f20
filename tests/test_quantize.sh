#!/bin/bash
# test_quantize.sh — `cairn quantize` end to end on stories260K: sizes, types, errors.
set -u
: "${CAIRN:?}"
SHARED="${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-../shared}}"
[ -d "$SHARED/models/stories260K" ] || { echo "SKIP: shared models absent"; exit 77; }
TMP="${CAIRN_TEST_TMP:-/tmp}/quantize.$$"
rm -rf "$TMP" && mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fail=0; n=0
check() { n=$((n+1)); if ! eval "$1"; then echo "FAIL: $1"; fail=$((fail+1)); fi; }
M="$SHARED/models/stories260K/stories260K.gguf"

out=$("$CAIRN" quantize "$M" "$TMP/q8.gguf" Q8_0); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '37 quantized, 11 kept' <<<\"\$out\""
check "grep -q '1185376 -> 379168 bytes' <<<\"\$out\""
check "grep -q '68.0% smaller' <<<\"\$out\""
info=$("$CAIRN" model info "$TMP/q8.gguf"); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q 'MOSTLY_Q8_0 (7)' <<<\"\$info\""
check "grep -Eq '^  Q8_0 +32 ' <<<\"\$info\""
check "grep -Eq '^  F16 +5 ' <<<\"\$info\""

out=$("$CAIRN" quantize "$M" "$TMP/q4km.gguf" q4_k_m --json -t 1); rc=$?
check "[ $rc -eq 0 ]"
check "python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"type\"] == \"Q4_K_M\" else 1)' <<<\"\$out\""
info=$("$CAIRN" model info "$TMP/q4km.gguf" --tensors); rc=$?
check "[ $rc -eq 0 ]"
check "grep -Eq 'output.weight +Q8_0' <<<\"\$info\""
check "grep -Eq 'blk.0.attn_q.weight +Q5_0' <<<\"\$info\""
check "grep -Eq 'blk.4.attn_v.weight +Q8_0' <<<\"\$info\""

# The quantized file is a valid input too (already-quantized tensors are kept).
out=$("$CAIRN" quantize "$TMP/q8.gguf" "$TMP/q8b.gguf" Q4_0); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '0 quantized, 48 kept' <<<\"\$out\""

# --allow-requantize converts them (Q8_0 -> Q4_0 stays within Q4_0's error).
out=$("$CAIRN" quantize "$TMP/q8.gguf" "$TMP/q4r.gguf" Q4_0 --pure --allow-requantize); rc=$?
check "[ $rc -eq 0 ]"
check "grep -q '32 quantized, 16 kept' <<<\"\$out\""
info=$("$CAIRN" model info "$TMP/q4r.gguf"); rc=$?
check "grep -Eq '^  Q4_0 +32 ' <<<\"\$info\""

# NaN in the input: the quantized scales are validated, nothing is written.
cp "$M" "$TMP/nan.gguf" && chmod u+w "$TMP/nan.gguf"
printf '\xff\xff\xff\xff' | dd of="$TMP/nan.gguf" bs=1 seek=$((14176 + 4 * 10)) conv=notrunc status=none
"$CAIRN" quantize "$TMP/nan.gguf" "$TMP/nanq.gguf" Q8_0 >/dev/null 2>"$TMP/err"; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q 'NaN/Inf' '$TMP/err'"
check "grep -q 'token_embd.weight' '$TMP/err'"
check "[ ! -e '$TMP/nanq.gguf' ]"

# --dry-run: the plan, nothing written.
out=$("$CAIRN" quantize "$M" "$TMP/dry.gguf" Q4_K_M --dry-run); rc=$?
check "[ $rc -eq 0 ]"
check "grep -Eq 'blk.4.attn_v.weight +\[64, 32\] +F32 +-> Q8_0 +2176' <<<\"\$out\""
check "grep -Eq 'blk.0.ffn_down.weight +\[172, 64\] +F32 +-> F16 ' <<<\"\$out\""
check "grep -q 'dry run: nothing written' <<<\"\$out\""
check "[ ! -e '$TMP/dry.gguf' ]"

# Errors: unknown type, missing input, damaged input, bad usage; no output left behind.
"$CAIRN" quantize "$M" "$TMP/x.gguf" Q3_XS >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"
"$CAIRN" quantize "$TMP/none.gguf" "$TMP/x.gguf" Q8_0 >/dev/null 2>&1; rc=$?
check "[ $rc -eq 1 ]"
head -c 70000 "$M" > "$TMP/trunc.gguf"
"$CAIRN" quantize "$TMP/trunc.gguf" "$TMP/x.gguf" Q8_0 >/dev/null 2>"$TMP/err"; rc=$?
check "[ $rc -eq 1 ]"
check "grep -q 'corrupt input' '$TMP/err'"
check "[ ! -e '$TMP/x.gguf' ]"
"$CAIRN" quantize "$M" >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"
# --json escapes paths; the thread count is checked against what is used
out=$("$CAIRN" quantize "$M" "$TMP/q\"uote.gguf" Q8_0 --json); rc=$?
check "[ $rc -eq 0 ]"
check "echo '$out' | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"out\"].endswith(\"q\\\"uote.gguf\") else 1)'"
"$CAIRN" quantize "$M" "$TMP/t.gguf" Q8_0 -t 65 >/dev/null 2>&1; rc=$?
check "[ $rc -eq 2 ]"

echo "$((n-fail)) passed, $fail failed"
[ $fail -eq 0 ]
