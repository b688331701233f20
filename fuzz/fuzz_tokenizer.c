/* fuzz_tokenizer.c — libFuzzer harness for the tokenizers (see docs/tokenizers.md).
 *
 * First input byte chooses the target:
 *   0..191   the rest is TEXT, encoded (with and without parse_special) and
 *            decoded by a SentencePiece, a byte-level BPE (GPT-2 and Llama 3
 *            patterns), a raw-text BPE (gemma4) and a WordPiece tokenizer built at start-up; SentencePiece
 *            and BPE must round-trip valid UTF-8 without special tokens.
 *            With CAIRN_TEST_SHARED set, the llama-spm, gpt-2, mpt and bert-bge
 *            vocabularies from ../shared are used too.
 *   192..255 the rest is a GGUF FILE: tokenizer_load, then encode/decode a few
 *            fixed strings if it loads.
 *
 *   cmake --preset fuzz && cmake --build --preset fuzz && ./build/fuzz/fuzz_tokenizer -max_total_time=60
 */
#define _GNU_SOURCE 1
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TOK 8
static cairn_tokenizer *toks[MAX_TOK];
static bool roundtrip[MAX_TOK];
static int n_toks;

static void add_file(const char *path, bool rt)
{
    gguf_file *g = NULL;
    cairn_tokenizer *t = NULL;
    if (n_toks < MAX_TOK && gguf_open(path, &g) == CAIRN_OK && tokenizer_load(g, &t) == CAIRN_OK) {
        roundtrip[n_toks] = rt;
        toks[n_toks++] = t;
    }
    gguf_close(g);
}

static void write_vocab(const char *path, const char *model, const char *pre, const char *const *strs, int n,
                        const int32_t *types, const float *scores, const char *const *merges, int nm)
{
    gguf_writer *w = NULL;
    if (gguf_writer_new(&w) != CAIRN_OK)
        return;
    gguf_writer_set_str(w, "tokenizer.ggml.model", model);
    if (pre)
        gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, (uint64_t)n);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, (uint64_t)n);
    if (scores)
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, (uint64_t)n);
    if (merges)
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)nm);
    gguf_writer_write(w, path);
    gguf_writer_free(w);
}

static void setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    char dir[] = "/tmp/fuzz_tokenizer.XXXXXX";
    if (!mkdtemp(dir))
        return;
    static char names[600][8];
    static const char *strs[600];
    static int32_t types[600];
    static float scores[600];
    char path[256];

    /* SentencePiece: specials, 256 byte tokens, a few pieces */
    int n = 0;
    const char *spm_extra[] = { "<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b", "ab", ("\xe2\x96\x81" "a"), "<|sp|>",
                                "\xe2\x96\x81\xe2\x96\x81", "\xc3\xa9" };
    int32_t spm_types[] = { 2, 3, 3, 1, 1, 1, 1, 1, 4, 1, 1 };
    for (int i = 0; i < 3; i++, n++) {
        strs[n] = spm_extra[i];
        types[n] = spm_types[i];
        scores[n] = 0;
    }
    for (int b = 0; b < 256; b++, n++) {
        snprintf(names[b], sizeof names[b], "<0x%02X>", b);
        strs[n] = names[b];
        types[n] = 6;
        scores[n] = 0;
    }
    for (int i = 3; i < (int)(sizeof spm_types / sizeof *spm_types); i++, n++) {
        strs[n] = spm_extra[i];
        types[n] = spm_types[i];
        scores[n] = (float)-i;
    }
    snprintf(path, sizeof path, "%s/spm.gguf", dir);
    write_vocab(path, "llama", NULL, strs, n, types, scores, NULL, 0);
    add_file(path, true);

    /* byte-level BPE: the 256 mapped bytes, a few merges, two specials */
    static char bmap[256][4];
    n = 0;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool pr = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = pr ? b : 256 + extra++;
        if (cp < 0x80) {
            bmap[b][0] = (char)cp;
        } else {
            bmap[b][0] = (char)(0xC0 | (cp >> 6));
            bmap[b][1] = (char)(0x80 | (cp & 0x3F));
        }
        strs[n] = bmap[b];
        types[n++] = 1;
    }
    const char *bpe_extra[] = { "he", "ll", "hell", "hello", "\xc4\xa0w", "<|endoftext|>", "  " };
    int32_t bpe_types[] = { 1, 1, 1, 1, 1, 3, 4 };
    for (int i = 0; i < 7; i++, n++) {
        strs[n] = bpe_extra[i];
        types[n] = bpe_types[i];
    }
    static const char *const merges[] = { "h e", "l l", "he ll", "hell o", "\xc4\xa0 w", "x y" };
    snprintf(path, sizeof path, "%s/gpt2.gguf", dir);
    write_vocab(path, "gpt2", "gpt-2", strs, n, types, NULL, merges, 6);
    add_file(path, true);
    snprintf(path, sizeof path, "%s/llama3.gguf", dir);
    write_vocab(path, "gpt2", "llama-bpe", strs, n, types, NULL, merges, 6);
    add_file(path, true);
    /* raw-text BPE (gemma4) over the same strings: no round trip (no byte tokens) */
    snprintf(path, sizeof path, "%s/gemma4.gguf", dir);
    write_vocab(path, "gpt2", "gemma4", strs, n, types, NULL, merges, 6);
    add_file(path, false);

    /* WordPiece */
    const char *wpm[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "\xe2\x96\x81hello", "\xe2\x96\x81un", "aff", "able",
                          "\xe2\x96\x81,", "\xe2\x96\x81\xe5\x8c\x97" };
    int32_t wt[] = { 3, 3, 3, 3, 1, 1, 1, 1, 1, 1 };
    snprintf(path, sizeof path, "%s/bert.gguf", dir);
    write_vocab(path, "bert", "default", wpm, 10, wt, NULL, NULL, 0);
    add_file(path, false);

    const char *sh = getenv("CAIRN_TEST_SHARED");
    if (sh) {
        const char *v[] = { "llama-spm", "gpt-2", "mpt", "bert-bge" };
        for (int i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "%s/models/llamacpp-vocab/ggml-vocab-%s.gguf", sh, v[i]);
            add_file(path, i < 3);
        }
    }
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t k = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!k || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) || (c == 0xF0 && s[i + 1] < 0x90) ||
            (c == 0xF4 && s[i + 1] >= 0x90))
            return false;
        i += k;
    }
    return true;
}

static void exercise(const cairn_tokenizer *t, const uint8_t *text, size_t len, bool rt)
{
    for (int ps = 0; ps < 2; ps++) {
        size_t n = 0;
        if (tokenizer_encode(t, (const char *)text, len, ps, ps, NULL, 0, &n) != CAIRN_OK)
            continue;
        int32_t *ids = cairn_calloc(n ? n : 1, sizeof *ids);
        if (!ids)
            return;
        size_t n2 = 0;
        if (tokenizer_encode(t, (const char *)text, len, ps, ps, ids, n, &n2) == CAIRN_OK) {
            if (n2 != n)
                abort();
            cairn_buf b;
            cairn_buf_init(&b, 0);
            if (tokenizer_decode(t, ids, n, &b) == CAIRN_OK && rt && !ps && valid_utf8(text, len) &&
                !memmem(text, len, "<|sp|>", 6) && !memmem(text, len, "  ", 2) &&
                !memmem(text, len, "\xe2\x96\x81", 3)) {
                if (b.len != len || memcmp(b.data, text, len) != 0)
                    abort(); /* decode(encode(s)) != s */
            }
            cairn_buf_free(&b);
            for (size_t i = 0; i < n; i++) {
                char piece[8];
                (void)tokenizer_piece(t, ids[i], piece, sizeof piece);
            }
        }
        cairn_free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size == 0)
        return 0;
    if (data[0] < 192) {
        for (int i = 0; i < n_toks; i++)
            exercise(toks[i], data + 1, size - 1, roundtrip[i]);
        return 0;
    }
    uint8_t *img = cairn_malloc(size - 1 ? size - 1 : 1);
    if (!img)
        return 0;
    memcpy(img, data + 1, size - 1);
    gguf_file *g = NULL;
    if (gguf_open_mem(img, size - 1, "fuzz", &g) == CAIRN_OK) {
        cairn_tokenizer *t = NULL;
        if (tokenizer_load(g, &t) == CAIRN_OK) {
            static const char *const texts[] = { "Hello world", " a\xc3\xa9<s>\xff\n\t 12345", "" };
            for (size_t i = 0; i < 3; i++)
                exercise(t, (const uint8_t *)texts[i], strlen(texts[i]), false);
            tokenizer_free(t);
        }
        gguf_close(g);
    }
    cairn_free(img);
    return 0;
}
