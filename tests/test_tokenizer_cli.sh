#!/bin/bash
# test_tokenizer_cli.sh — `cairn tokenize` against llama.cpp reference ids.
set -u
SHARED="${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-../shared}}"
[ -d "$SHARED/models" ] || { echo "SKIP: shared test assets absent"; exit 77; }
M="$SHARED/models/stories260K/stories260K.gguf"
G="$SHARED/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf"
fail=0
check() { # name expected actual
    if [ "$2" != "$3" ]; then echo "FAIL $1: expected '$2' got '$3'"; fail=1; else echo "ok   $1"; fi
}
check "ids" "1 403 407 261 378" "$("$CAIRN" tokenize -m "$M" -p "Once upon a time")"
check "stdin" "1 403 407 261 378" "$(printf 'Once upon a time' | "$CAIRN" tokenize -m "$M")"
check "no-special" "403 407 261 378" "$("$CAIRN" tokenize -m "$M" --no-special -p "Once upon a time")"
check "json" '{"ids": [1, 403, 407, 261, 378], "n_tokens": 5}' "$("$CAIRN" tokenize -m "$M" --json -p "Once upon a time")"
check "decode" "Once upon a time" "$("$CAIRN" tokenize -m "$M" --decode "1 403 407 261 378")"
check "decode special" "<s> Once upon a time" "$("$CAIRN" tokenize -m "$M" --special --decode "1 403 407 261 378")"
check "gpt2 parse-special" "15496 50256 995" "$("$CAIRN" tokenize -m "$G" --parse-special -p "Hello<|endoftext|> world")"
check "show" "$(printf '15496\tHello\n995\t\xc4\xa0world')" "$("$CAIRN" tokenize -m "$G" --show -p "Hello world")"
"$CAIRN" tokenize -m "$M" --decode "1 99999" >/dev/null 2>&1; check "bad id exit" "1" "$?"
"$CAIRN" tokenize -m /nonexistent.gguf -p x >/dev/null 2>&1; check "missing model exit" "1" "$?"
"$CAIRN" tokenize -p x >/dev/null 2>&1; check "usage exit" "2" "$?"
exit $fail
