#!/usr/bin/env python3
"""Write a vocabulary-only GGUF (tokenizer.ggml.* keys, no tensors) from a
Hugging Face BPE tokenizer.json (byte-level, or raw text with byte fallback
for PRE=gemma4), the way llama.cpp's converter lays
it out: tokens by id (holes become "[PAD<id>]"), added tokens typed control
(special) or user defined, merges as "left right", and tokenizer.ggml.pre.

Used to check cairn's tokenizers against llama.cpp's test vectors for
vocabularies that ../shared does not ship (see docs/tokenizers.md):

    hf_tokenizer_to_gguf.py tokenizer.json PRE OUT.gguf [tokenizer_config.json]

Standard library only. Developer tool: nothing in cairn's build or tests needs it.
"""
import json
import struct
import sys

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9


def s(b):
    b = b.encode("utf-8") if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b


def kv(key, typ, val):
    out = s(key) + struct.pack("<I", typ)
    if typ == T_STR:
        return out + s(val)
    if typ == T_U32:
        return out + struct.pack("<I", val)
    if typ == T_BOOL:
        return out + struct.pack("<?", val)
    raise ValueError(typ)


def kv_arr(key, elem, vals):
    out = s(key) + struct.pack("<IIQ", T_ARR, elem, len(vals))
    if elem == T_STR:
        return out + b"".join(s(v) for v in vals)
    if elem == T_I32:
        return out + struct.pack("<%di" % len(vals), *vals)
    raise ValueError(elem)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    tj = json.load(open(sys.argv[1], encoding="utf-8"))
    pre, out = sys.argv[2], sys.argv[3]
    cfg = json.load(open(sys.argv[4], encoding="utf-8")) if len(sys.argv) > 4 else {}
    model = tj["model"]
    if model.get("type") != "BPE":
        sys.exit("only BPE tokenizers are supported")
    vocab = dict(model["vocab"])
    added = {t["id"]: t for t in tj.get("added_tokens", [])}
    for i, t in added.items():
        vocab[t["content"]] = i
    n = max(vocab.values()) + 1
    by_id = {i: tok for tok, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i not in by_id:
            tokens.append("[PAD%d]" % i)
            types.append(USER_DEFINED)
        elif i in added:
            special = added[i].get("special")
            # llama.cpp's converter writes U+2581 in user-defined tokens as spaces
            tokens.append(by_id[i] if special else by_id[i].replace("\u2581", " "))
            types.append(CONTROL if special else USER_DEFINED)
        else:
            tokens.append(by_id[i])
            tok = by_id[i]
            is_byte = len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">")
            types.append(BYTE if is_byte and model.get("byte_fallback") else NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    bad = sum(1 for m in model["merges"] if not isinstance(m, str) and any(" " in p for p in m))
    if bad:
        print("warning: %d merges have a space inside an operand (ambiguous as \"left right\")" % bad)

    kvs = [
        kv("general.architecture", T_STR, "llama"),
        kv("general.name", T_STR, pre),
        kv("tokenizer.ggml.model", T_STR, "gpt2"),
        kv("tokenizer.ggml.pre", T_STR, pre),
        kv_arr("tokenizer.ggml.tokens", T_STR, tokens),
        kv_arr("tokenizer.ggml.token_type", T_I32, types),
        kv_arr("tokenizer.ggml.merges", T_STR, merges),
    ]

    def token_id(name):
        v = cfg.get(name)
        if isinstance(v, dict):
            v = v.get("content")
        return vocab.get(v) if v else None

    for key, name in (("bos", "bos_token"), ("eos", "eos_token"), ("padding", "pad_token")):
        i = token_id(name)
        if i is not None:
            kvs.append(kv("tokenizer.ggml.%s_token_id" % key, T_U32, i))
    if "add_bos_token" in cfg:
        kvs.append(kv("tokenizer.ggml.add_bos_token", T_BOOL, bool(cfg["add_bos_token"])))

    with open(out, "wb") as f:
        f.write(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)))
        for k in kvs:
            f.write(k)
    print("%s: %d tokens, %d merges, pre %s" % (out, n, len(merges), pre))


if __name__ == "__main__":
    main()
