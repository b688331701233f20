#!/usr/bin/env bash
# test_generate.sh — the `cairn generate` / `cairn bench` CLI contract on the shared
# models: --json prompt_ids and greedy ids equal llama.cpp's references (F32 model:
# every prompt, every token), streaming text equals the JSON text, --stop, sampling
# with a seed is reproducible, bench JSON fields, usage errors.
set -u
SHARED=${CAIRN_TEST_SHARED:-${CAIRN_TEST_SHARED_DEFAULT:-../shared}}
M=$SHARED/models/stories260K
[ -f "$M/stories260K.gguf" ] || { echo "SKIP: shared models absent"; exit 77; }
PY=python3
T=${CAIRN_TEST_TMP:-/tmp}/test_generate.$$
mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# 1. greedy ids for every reference prompt (F32 model and tiny-random F16)
for pair in "$M/stories260K.gguf:$M/ref-llamacpp-greedy.stories260K.json" \
            "$SHARED/models/llama-2-tiny-random/llama-2-tiny-random.gguf:$SHARED/models/llama-2-tiny-random/ref-llamacpp-greedy.json"; do
  model=${pair%%:*}; ref=${pair#*:}
  n=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$ref")
  for i in $(seq 0 $((n - 1))); do
    prompt=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[int(sys.argv[2])]["prompt"])' "$ref" "$i")
    steps=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[int(sys.argv[2])]["generated_ids"]))' "$ref" "$i")
    "$CAIRN" generate -m "$model" -p "$prompt" -n "$steps" --temp 0 -t 2 --json > "$T/out.json"
    check "greedy ids $(basename "$model") '$prompt'" "$PY - '$ref' $i '$T/out.json' <<'PYEOF'
import json, sys
ref = json.load(open(sys.argv[1]))[int(sys.argv[2])]
out = json.load(open(sys.argv[3]))
ok = out['prompt_ids'] == ref['prompt_ids'] and out['ids'] == ref['generated_ids']
ok = ok and out['text'] == ref['generated_text'] and out['timings']['gen_tokens_per_s'] > 0
ok = ok and out['timings']['prompt_tokens_per_s'] > 0
if not ok:
    print('want', ref['prompt_ids'], ref['generated_ids'], repr(ref['generated_text']), file=sys.stderr)
    print('got ', out, file=sys.stderr)
sys.exit(0 if ok else 1)
PYEOF"
  done
done

# 2. streamed text equals the JSON text (greedy, same model, Q8_0 KV cache too)
for kv in f16 q8_0; do
  "$CAIRN" generate -m "$M/stories260K.gguf" -p "Tom and his dog" -n 30 --temp 0 --kv-type $kv > "$T/stream.txt" 2>/dev/null
  "$CAIRN" generate -m "$M/stories260K.gguf" -p "Tom and his dog" -n 30 --temp 0 --kv-type $kv --json > "$T/j.json"
  check "stream == json text (kv $kv)" "$PY -c 'import json,sys; t=json.load(open(sys.argv[1]))[\"text\"]; s=open(sys.argv[2]).read(); sys.exit(0 if s == t + \"\\n\" else 1)' '$T/j.json' '$T/stream.txt'"
done

# 3. stop strings: output ends before the first occurrence
"$CAIRN" generate -m "$M/stories260K.gguf" -p "Once upon a time" -n 40 --temp 0 --stop "Lily" --stop "qqq" --json > "$T/stop.json"
check "--stop" "$PY -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j[\"text\"] == \", there was a little girl named \" and j[\"stop\"] == \"stop\" else 1)' '$T/stop.json'"

# 4. sampling: same seed -> same ids, other seed -> (almost surely) different
a=$("$CAIRN" generate -m "$M/stories260K.gguf" -p "Once upon a time" -n 30 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --seed 7 --json)
b=$("$CAIRN" generate -m "$M/stories260K.gguf" -p "Once upon a time" -n 30 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --seed 7 --json)
c=$("$CAIRN" generate -m "$M/stories260K.gguf" -p "Once upon a time" -n 30 --temp 1.0 --top-k 0 --top-p 1 --min-p 0 --seed 8 --json)
ids() { $PY -c 'import json,sys; print(json.loads(sys.argv[1])["ids"])' "$1"; }
check "seeded sampling reproducible" "[ \"$(ids "$a")\" = \"$(ids "$b")\" ]"
check "different seed differs" "[ \"$(ids "$a")\" != \"$(ids "$c")\" ]"
"$CAIRN" generate -m "$M/stories260K.gguf" -p "Once" -n 20 --temp 0.7 --top-k 5 --top-p 0.9 --min-p 0.1 \
  --repeat-penalty 1.3 --presence-penalty 0.5 --seed 1 --json > "$T/s.json"
check "all sampling options accepted" "$PY -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if len(j[\"ids\"]) >= 1 else 1)' '$T/s.json'"

# 5. bench JSON fields
"$CAIRN" bench -m "$M/stories260K-Q4_0.gguf" -p 32 -n 8 -r 1 --json > "$T/b.json"
check "bench --json" "$PY -c '
import json,sys; j=json.load(open(sys.argv[1]))
sys.exit(0 if j[\"prompt_tokens_per_s\"] > 0 and j[\"gen_tokens_per_s\"] > 0 and j[\"peak_rss_bytes\"] > 0 and j[\"weight_bytes_per_token\"] > 0 else 1)' '$T/b.json'"

# 6. errors: usage (2) and failures (1) with a message, never a crash
"$CAIRN" generate -m "$M/stories260K.gguf" > /dev/null 2>&1; check "missing prompt -> 2" "[ $? -eq 2 ]"
"$CAIRN" generate -m "$M/stories260K.gguf" -p x --temp abc > /dev/null 2>&1; check "bad --temp -> 2" "[ $? -eq 2 ]"
"$CAIRN" generate -m "$M/stories260K.gguf" -p x --bogus > /dev/null 2>&1; check "unknown flag -> 2" "[ $? -eq 2 ]"
"$CAIRN" generate -m "$T/none.gguf" -p x 2> "$T/err.txt"; rc=$?
check "missing model -> 1 with message" "[ $rc -eq 1 ] && grep -q 'loading model' '$T/err.txt'"
head -c 1000 "$M/stories260K.gguf" > "$T/trunc.gguf"
"$CAIRN" generate -m "$T/trunc.gguf" -p x 2> /dev/null; check "truncated model -> 1" "[ $? -eq 1 ]"
"$CAIRN" generate -m "$M/stories260K.gguf" -p "Once upon a time" -n 5000 -c 64 --temp 0 --ignore-eos --json > "$T/ctx.json"
check "context full stops cleanly" "$PY -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j[\"stop\"] == \"context\" and len(j[\"prompt_ids\"]) + len(j[\"ids\"]) == 65 else 1)' '$T/ctx.json'"
# options of the other command are refused, not ignored; seeds are unsigned
"$CAIRN" bench -m "$M/stories260K.gguf" -p 4 -n 2 -r 1 --temp 0.5 2> "$T/o.err"
check "bench --temp -> 2 with message" "[ $? -eq 2 ] && grep -q 'generate only' '$T/o.err'"
"$CAIRN" generate -m "$M/stories260K.gguf" -p x -r 3 2> "$T/o.err"
check "generate -r -> 2 with message" "[ $? -eq 2 ] && grep -q 'bench only' '$T/o.err'"
"$CAIRN" generate -m "$M/stories260K.gguf" -p x --seed -1 > /dev/null 2>&1; check "--seed -1 -> 2" "[ $? -eq 2 ]"
"$CAIRN" model synth "$T/s.gguf" --seed abc > /dev/null 2>&1; check "synth --seed abc -> 2" "[ $? -eq 2 ]"
"$CAIRN" model synth --help > /dev/null 2>&1; check "synth --help -> 0" "[ $? -eq 0 ]"
"$CAIRN" bench -m "$M/stories260K.gguf" -p 8 -n 2 -r 1 --weights nope > /dev/null 2>&1; check "bad --weights -> 2" "[ $? -eq 2 ]"
for w in auto copy mmap mmap-huge; do
  "$CAIRN" generate -m "$M/stories260K.gguf" -p "Once upon a time" -n 8 --temp 0 --weights $w --json > "$T/w-$w.json"
done
check "--weights modes give the same tokens" "$PY -c '
import json,sys; r=[json.load(open(f))[\"ids\"] for f in sys.argv[1:]]; sys.exit(0 if all(x == r[0] for x in r) and r[0] else 1)' '$T/w-auto.json' '$T/w-copy.json' '$T/w-mmap.json' '$T/w-mmap-huge.json'"
# chat: a model without a template says so; a named template wraps the prompt
"$CAIRN" generate -m "$M/stories260K.gguf" -p Hello --chat -n 2 2> "$T/chat.err"
check "--chat without a template -> 1" "[ $? -eq 1 ] && grep -q 'no chat template' '$T/chat.err'"
"$CAIRN" generate -m "$M/stories260K.gguf" -p Hello --chat-template nope -n 2 2> /dev/null
check "unknown --chat-template -> 2" "[ $? -eq 2 ]"
"$CAIRN" generate -m "$M/stories260K.gguf" -p Hello -n 2 --temp 0 --json > "$T/plain.json"
"$CAIRN" generate -m "$M/stories260K.gguf" -p Hello --system "Be brief." --chat-template chatml -n 2 --temp 0 --json > "$T/chat.json"
check "--chat-template chatml wraps the prompt" "$PY -c 'import json,sys; a=json.load(open(sys.argv[1])); b=json.load(open(sys.argv[2])); sys.exit(0 if b[\"chat_template\"] == \"chatml\" and len(b[\"prompt_ids\"]) > len(a[\"prompt_ids\"]) + 10 else 1)' '$T/plain.json' '$T/chat.json'"
# kernel switches (docs/kernels.md): a forced level is the one bench reports; an
# unknown name or a level this CPU lacks falls back with one warning; AMX off
# by CAIRN_NO_AMX=1; the default thread count (no -t) and 1 or 3 threads give
# the same greedy tokens
# (the switches of the TEST@level entries are cleared first: this part sets its own)
bj() { env -u CAIRN_KERNELS -u CAIRN_NO_AMX -u CAIRN_AMX "$@" "$CAIRN" bench -m "$M/stories260K-Q4_0.gguf" -p 8 -n 2 -r 1 --json 2> "$T/k.err"; }
field() { $PY -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
bj > "$T/k0.json"; default_level=$(field "$T/k0.json" kernels)
bj CAIRN_KERNELS=scalar > "$T/k1.json"
check "CAIRN_KERNELS=scalar forces scalar, no AMX" "[ \"$(field "$T/k1.json" kernels)\" = scalar ] && [ \"$(field "$T/k1.json" amx)\" = False ] && [ ! -s '$T/k.err' ]"
bj CAIRN_KERNELS=avx-512 > "$T/k2.json"
check "unknown CAIRN_KERNELS -> default level with a warning" "[ \"$(field "$T/k2.json" kernels)\" = '$default_level' ] && grep -q 'not a kernel level' '$T/k.err'"
bj CAIRN_KERNELS=avx512 > "$T/k3.json"
if [ "$(field "$T/k3.json" kernels)" = avx512 ]; then
  check "CAIRN_KERNELS=avx512 on an AVX-512 host: no warning" "[ ! -s '$T/k.err' ]"
else
  check "CAIRN_KERNELS=avx512 without AVX-512 -> best level below, with a warning" "[ \"$(field "$T/k3.json" kernels)\" = '$default_level' ] && grep -q 'lacks AVX-512' '$T/k.err'"
fi
bj CAIRN_NO_AMX=1 > "$T/k4.json"
check "CAIRN_NO_AMX=1 -> same level, AMX off" "[ \"$(field "$T/k4.json" kernels)\" = '$default_level' ] && [ \"$(field "$T/k4.json" amx)\" = False ]"
for t in 1 3 default; do
  topt="-t $t"; [ $t = default ] && topt=
  "$CAIRN" generate -m "$M/stories260K-Q4_0.gguf" -p "Once upon a time" -n 24 --temp 0 $topt --json > "$T/t-$t.json"
done
check "greedy tokens equal with 1, 3 and the default number of threads" "$PY -c '
import json,sys; r=[json.load(open(f))[\"ids\"] for f in sys.argv[1:]]; sys.exit(0 if all(x == r[0] for x in r) and len(r[0]) == 24 else 1)' '$T/t-1.json' '$T/t-3.json' '$T/t-default.json'"
exit $fail
