/*
 * test_tokenizer_unit.c — tokenizers on small vocabularies written by our
 * own GGUF writer (always runs; no shared assets needed).
 *
 * Expected ids are worked out by hand from each algorithm's definition
 * (SentencePiece: highest score first, leftmost on ties, byte fallback;
 * BPE: lowest rank first; WordPiece: greedy longest match, [UNK] for a word
 * with no full cover). Also: special-token splitting with and without
 * parse_special, lstrip/rstrip, pre-tokenizer splits of the Llama 3 and
 * Qwen2 patterns, hostile metadata, the buffer contracts, and every
 * allocation failing in turn.
 */
#include "t.h"
#include "tokenizer/tok_internal.h"

#include <pthread.h>

typedef struct tk {
    const char *s;
    float score;
    int type; /* 1 normal, 2 unknown, 3 control, 4 user, 6 byte */
} tk;

typedef struct vocab {
    const char *strs[600];
    float scores[600];
    int32_t types[600];
    int n;
} vocab;

static void v_add(vocab *v, const char *s, float score, int type)
{
    v->strs[v->n] = s;
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->n++;
}

static char byte_names[256][8];

static void v_add_bytes(vocab *v)
{
    for (int b = 0; b < 256; b++) {
        snprintf(byte_names[b], sizeof byte_names[b], "<0x%02X>", b);
        v_add(v, byte_names[b], 0.0f, 6);
    }
}

typedef void (*extra_fn)(gguf_writer *w);

static cairn_status write_and_load(const char *model, const char *pre, const vocab *v, const char *const *merges,
                                   int nm, extra_fn extra, cairn_tokenizer **out)
{
    static int seq;
    char path[1200];
    snprintf(path, sizeof path, "%s/v%d.gguf", t_tmpdir("tokunit"), seq++);
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_set_str(w, "general.architecture", "llama"));
    if (model)
        CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.model", model));
    if (pre)
        CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.pre", pre));
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->strs, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->scores, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->types, (uint64_t)v->n));
    if (merges)
        CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)nm));
    if (extra)
        extra(w);
    CHECK_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, &g));
    *out = NULL;
    cairn_status st = g ? tokenizer_load(g, out) : CAIRN_ERR_IO;
    gguf_close(g);
    return st;
}

/* encode and compare with an expected list (terminated by -99) */
static bool enc_is(const cairn_tokenizer *t, const char *s, bool add_special, bool parse_special, const int32_t *want)
{
    int32_t ids[256];
    size_t n = 0;
    cairn_status st = tokenizer_encode(t, s, strlen(s), add_special, parse_special, ids, 256, &n);
    size_t nw = 0;
    while (want[nw] != -99)
        nw++;
    bool ok = st == CAIRN_OK && n == nw && memcmp(ids, want, n * sizeof *ids) == 0;
    if (!ok) {
        fprintf(stderr, "  \"%s\" ->", s);
        for (size_t i = 0; i < n && i < 256; i++)
            fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, " (want");
        for (size_t i = 0; i < nw; i++)
            fprintf(stderr, " %d", want[i]);
        fprintf(stderr, ")\n");
    }
    return ok;
}
#define IDS(...) ((const int32_t[]){ __VA_ARGS__, -99 })
#define NOIDS ((const int32_t[]){ -99 })

static char *decode_str(const cairn_tokenizer *t, const char *s, bool add_special, bool parse_special, unsigned flags)
{
    int32_t ids[256];
    size_t n = 0;
    CHECK_OK(tokenizer_encode(t, s, strlen(s), add_special, parse_special, ids, 256, &n));
    cairn_buf b;
    cairn_buf_init(&b, 0);
    CHECK_OK(tokenizer_decode_ex(t, ids, n, flags, &b));
    char *r = strdup(b.data ? b.data : "");
    cairn_buf_free(&b);
    return r;
}

/* ------------------------------------------------------------------ */
/* SentencePiece                                                       */

#define U "\xe2\x96\x81" /* U+2581 */

/* ids: 0 <unk> 1 <s> 2 </s> 3..258 bytes, then: */
enum { S_SP = 259, S_A, S_B, S_C, S_AB, S_BC, S_SPA, S_USER, S_CTL, S_AA, S_SPSP };

static void spm_vocab(vocab *v)
{
    v->n = 0;
    v_add(v, "<unk>", 0, 2);
    v_add(v, "<s>", 0, 3);
    v_add(v, "</s>", 0, 3);
    v_add_bytes(v);
    v_add(v, U, -10, 1);
    v_add(v, "a", -5, 1);
    v_add(v, "b", -5, 1);
    v_add(v, "c", -5, 1);
    v_add(v, "ab", -2, 1);
    v_add(v, "bc", -1, 1);
    v_add(v, U "a", -3, 1);
    v_add(v, "<|sp|>", 0, 4);
    v_add(v, "<ctl>", 0, 3);
    v_add(v, "aa", -0.5f, 1);
    v_add(v, U U, -4, 1);
}

static void test_spm(void)
{
    vocab v;
    spm_vocab(&v);
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("llama", NULL, &v, NULL, 0, NULL, &t));
    if (!t)
        return;
    CHECK_EQ_INT(tokenizer_n_vocab(t), v.n);
    CHECK_EQ_INT(tokenizer_bos(t), 1);
    CHECK_EQ_INT(tokenizer_eos(t), 2);
    CHECK(tokenizer_add_bos(t) && !tokenizer_add_eos(t));
    CHECK(tokenizer_is_eog(t, 2) && !tokenizer_is_eog(t, 1));
    /* "▁abc": bc (-1) beats ab (-2) and ▁a (-3); then ▁a */
    CHECK(enc_is(t, "abc", false, false, IDS(S_SPA, S_BC)));
    CHECK(enc_is(t, "abc", true, false, IDS(1, S_SPA, S_BC)));
    /* equal scores: the leftmost "aa" first */
    CHECK(enc_is(t, "aaa", false, false, IDS(S_SP, S_AA, S_A)));
    /* byte fallback for a character outside the vocabulary */
    CHECK(enc_is(t, "\xc3\xa9", false, false, IDS(S_SP, 3 + 0xC3, 3 + 0xA9)));
    /* spaces become U+2581; runs merge by score */
    CHECK(enc_is(t, " a", false, false, IDS(S_SP, S_SPA)));
    CHECK(enc_is(t, "  ", false, false, IDS(S_SPSP, S_SP))); /* leftmost pair first */
    CHECK(enc_is(t, "", true, false, IDS(1)));
    CHECK(enc_is(t, "", false, false, NOIDS));
    /* user-defined tokens split even without parse_special; text after a
     * special token gets the dummy prefix again */
    CHECK(enc_is(t, "a<|sp|>b", false, false, IDS(S_SPA, S_USER, S_SP, S_B)));
    /* control tokens only with parse_special */
    CHECK(enc_is(t, "<ctl>", false, true, IDS(S_CTL)));
    CHECK(enc_is(t, "<ctl>a", false, true, IDS(S_CTL, S_SPA)));
    {
        int32_t ids[64];
        size_t n = 0;
        CHECK_OK(tokenizer_encode(t, "<ctl>", 5, false, false, ids, 64, &n));
        CHECK(n == 6); /* ▁ + 5 byte tokens */
    }
    /* invalid UTF-8 goes through byte tokens unchanged */
    CHECK(enc_is(t, "a\xff", false, false, IDS(S_SPA, 3 + 0xFF)));

    /* decode */
    char *s = decode_str(t, "abc", true, false, 0);
    CHECK_EQ_STR(s, "abc");
    free(s);
    s = decode_str(t, " a\xc3\xa9 b", true, false, 0);
    CHECK_EQ_STR(s, " a\xc3\xa9 b");
    free(s);
    s = decode_str(t, "a\xff", false, false, 0);
    CHECK_EQ_STR(s, "a\xff");
    free(s);
    s = decode_str(t, "abc", true, false, TOKENIZER_DECODE_KEEP_SPACE | TOKENIZER_DECODE_SPECIAL);
    CHECK_EQ_STR(s, "<s> abc");
    free(s);
    s = decode_str(t, "a<|sp|>b", false, false, 0);
    CHECK_EQ_STR(s, "a<|sp|> b");
    free(s);
    /* piece: needed size returned, nothing written past cap */
    char buf[8] = "XXXXXXX";
    CHECK_EQ_INT(tokenizer_piece(t, S_SPA, buf, 1), 2);
    CHECK(buf[0] == ' ' && buf[1] == 'X');
    CHECK_EQ_INT(tokenizer_piece(t, 3 + 'A', buf, 8), 1);
    CHECK(buf[0] == 'A');
    CHECK_EQ_INT(tokenizer_piece(t, 1, buf, 8), 0); /* control: nothing */
    CHECK_EQ_INT(tokenizer_piece_ex(t, 1, TOKENIZER_DECODE_SPECIAL, buf, 8), 3);
    CHECK_EQ_INT(tokenizer_piece(t, -1, buf, 8), 0);
    CHECK_EQ_INT(tokenizer_piece(t, v.n, buf, 8), 0);
    CHECK_EQ_INT(tokenizer_find(t, "<|sp|>", 6), S_USER);
    CHECK_EQ_INT(tokenizer_find(t, "zz", 2), -1);
    /* bad ids are an error, not a crash */
    cairn_buf b;
    cairn_buf_init(&b, 0);
    int32_t bad[] = { 5, 100000 };
    CHECK(tokenizer_decode(t, bad, 2, &b) == CAIRN_ERR_INVALID);
    cairn_buf_free(&b);
    /* buffer contract: cap 0 reports the size */
    size_t need = 0;
    CHECK_OK(tokenizer_encode(t, "abc", 3, true, false, NULL, 0, &need));
    CHECK_EQ_INT(need, 3);
    CHECK(tokenizer_encode(t, NULL, 3, true, false, NULL, 0, &need) == CAIRN_ERR_INVALID);
    tokenizer_free(t);
}

/* lstrip/rstrip (the Phi-3 rules, chosen by general.name) */
static void set_phi3(gguf_writer *w) { CHECK_OK(gguf_writer_set_str(w, "general.name", "Phi3")); }

static void test_spm_rstrip(void)
{
    vocab v;
    spm_vocab(&v);
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("llama", NULL, &v, NULL, 0, set_phi3, &t));
    if (!t)
        return;
    /* "<|sp|>" (user defined) eats the spaces on its right */
    CHECK(enc_is(t, "a<|sp|>   b", false, false, IDS(S_SPA, S_USER, S_SP, S_B)));
    /* "<s>" keeps them (the reference's exception list) */
    CHECK(enc_is(t, "<s> a", false, true, IDS(1, S_SP, S_SPA)));
    tokenizer_free(t);
}

/* ------------------------------------------------------------------ */
/* byte-level BPE                                                      */

/* GPT-2 byte -> code point, written as UTF-8 */
static char bmap[256][4];
static void build_bmap(void)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool pr = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        int cp = pr ? b : 256 + n++;
        char *o = bmap[b];
        if (cp < 0x80) {
            o[0] = (char)cp;
            o[1] = 0;
        } else {
            o[0] = (char)(0xC0 | (cp >> 6));
            o[1] = (char)(0x80 | (cp & 0x3F));
            o[2] = 0;
        }
    }
}

/* ids 0..255: the mapped bytes; then merged tokens */
enum { B_HE = 256, B_LL, B_HELL, B_HELLO, B_BC, B_AB, B_EOT, B_USER, B_GW };
#define G "\xc4\xa0" /* mapped ' ' */

static const char *const bpe_merges[] = {
    "h e", "l l", "he ll", "hell o", "b c", "a b", "x y", G " w",
};

static void bpe_vocab(vocab *v)
{
    build_bmap();
    v->n = 0;
    for (int b = 0; b < 256; b++)
        v_add(v, bmap[b], 0, 1);
    v_add(v, "he", 0, 1);
    v_add(v, "ll", 0, 1);
    v_add(v, "hell", 0, 1);
    v_add(v, "hello", 0, 1);
    v_add(v, "bc", 0, 1);
    v_add(v, "ab", 0, 1);
    v_add(v, "<|endoftext|>", 0, 3);
    v_add(v, "  ", 0, 4); /* user defined: two raw spaces (GPT-NeoX style) */
    v_add(v, G "w", 0, 1);
}

static void test_bpe(void)
{
    vocab v;
    bpe_vocab(&v);
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("gpt2", "gpt-2", &v, bpe_merges, (int)CAIRN_ARRAY_LEN(bpe_merges), NULL, &t));
    if (!t)
        return;
    CHECK(!tokenizer_add_bos(t));
    CHECK(enc_is(t, "hello", false, false, IDS(B_HELLO)));
    /* " hello": no merge "Ġ hello" */
    CHECK(enc_is(t, "hello hello", false, false, IDS(B_HELLO, ' ', B_HELLO)));
    /* rank order: "b c" (rank 4) before "a b" (rank 5) */
    CHECK(enc_is(t, "abc", false, false, IDS('a', B_BC)));
    CHECK(enc_is(t, "ab", false, false, IDS(B_AB)));
    /* "x y" merges to a string that is no token: the single bytes come out */
    CHECK(enc_is(t, "xy", false, false, IDS('x', 'y')));
    CHECK(enc_is(t, " w", false, false, IDS(B_GW)));
    /* control token: text unless parse_special */
    CHECK(enc_is(t, "a<|endoftext|>", false, true, IDS('a', B_EOT)));
    {
        int32_t ids[64];
        size_t n = 0;
        CHECK_OK(tokenizer_encode(t, "<|endoftext|>", 13, false, false, ids, 64, &n));
        CHECK(n > 1);
    }
    /* user-defined "  " splits first even without parse_special */
    CHECK(enc_is(t, "a  b", false, false, IDS('a', B_USER, 'b')));
    CHECK(enc_is(t, "a   b", false, false, IDS('a', B_USER, ' ', 'b')));
    /* invalid UTF-8 -> U+FFFD (EF BF BD) like the reference */
    CHECK(enc_is(t, "\xff", false, false, IDS(0xEF, 0xBF, 0xBD)));
    /* digits and punctuation split per GPT-2's pattern */
    CHECK(enc_is(t, "a1!", false, false, IDS('a', '1', '!')));
    /* decode restores bytes */
    char *s = decode_str(t, "hello hello\n\t\xc3\xa9!", false, false, 0);
    CHECK_EQ_STR(s, "hello hello\n\t\xc3\xa9!");
    free(s);
    s = decode_str(t, "x<|endoftext|>y", false, true, 0);
    CHECK_EQ_STR(s, "xy");
    free(s);
    s = decode_str(t, "x<|endoftext|>y", false, true, TOKENIZER_DECODE_SPECIAL);
    CHECK_EQ_STR(s, "x<|endoftext|>y");
    free(s);
    CHECK(tokenizer_is_eog(t, B_EOT));
    tokenizer_free(t);

    /* Llama 3 style: ignore_merges takes a word that is a token as a whole */
    static const char *const m2[] = { "h e", "l l", "he ll" }; /* "hello" unreachable by merges */
    CHECK_OK(write_and_load("gpt2", "llama-bpe", &v, m2, 3, NULL, &t));
    if (t) {
        CHECK(tokenizer_add_bos(t)); /* llama3 default */
        CHECK(enc_is(t, "hello", false, false, IDS(B_HELLO)));
        CHECK(enc_is(t, "hell", false, false, IDS(B_HELL)));
        tokenizer_free(t);
    }
    CHECK_OK(write_and_load("gpt2", "gpt-2", &v, m2, 3, NULL, &t));
    if (t) {
        CHECK(enc_is(t, "hello", false, false, IDS(B_HELL, 'o')));
        tokenizer_free(t);
    }
}

/* Raw-text BPE (Gemma 4 style): characters, spaces as U+2581, <0xXX> fallback. */
static void test_bpe_raw(void)
{
    vocab v = { .n = 0 };
    v_add(&v, "<pad>", 0, 3);
    v_add(&v, "<eos>", 0, 3);
    v_add(&v, "<bos>", 0, 3);
    v_add_bytes(&v); /* ids 3..258 */
    enum { R_SP = 259, R_A, R_B, R_SPA, R_AB, R_SPAB, R_NL };
    v_add(&v, U, 0, 1);
    v_add(&v, "a", 0, 1);
    v_add(&v, "b", 0, 1);
    v_add(&v, U "a", 0, 1);
    v_add(&v, "ab", 0, 1);
    v_add(&v, U "ab", 0, 1);
    v_add(&v, "\n", 0, 1);
    static const char *const m[] = { U " a", "a b", U "a b" };
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("gpt2", "gemma4", &v, m, 3, NULL, &t));
    if (!t)
        return;
    CHECK(t->bpe_raw && t->raw_split && t->n_raw_joiners == 0);
    CHECK(enc_is(t, "ab ab", false, false, IDS(R_AB, R_SPAB)));
    CHECK(enc_is(t, " a\nb", false, false, IDS(R_SPA, R_NL, R_B)));
    CHECK(enc_is(t, "\xc3\xa9 a", false, false, IDS(3 + 0xC3, 3 + 0xA9, R_SPA)));
    CHECK(enc_is(t, "\xff", false, false, IDS(3 + 0xEF, 3 + 0xBF, 3 + 0xBD))); /* U+FFFD's bytes */
    char *s = decode_str(t, "ab ab\n \xc3\xa9", false, false, 0);
    CHECK_EQ_STR(s, "ab ab\n \xc3\xa9");
    free(s);
    tokenizer_free(t);

    /* a vocabulary with neither the character nor byte tokens: nothing comes
     * out (found by fuzzing: the word cache was handed a NULL base) */
    vocab bv;
    bpe_vocab(&bv);
    CHECK_OK(write_and_load("gpt2", "gemma4", &bv, bpe_merges, 2, NULL, &t));
    if (t) {
        CHECK(enc_is(t, "\xe4\xb8\xad\xe4\xb8\xad", false, false, NOIDS));
        CHECK(enc_is(t, "he", false, false, IDS(B_HE)));
        tokenizer_free(t);
    }
}

/* Pre-tokenizer splits, worked out from the published patterns. */
static cairn_status collect(const cairn_tokenizer *t, const char *w, size_t n, void *ctx)
{
    (void)t;
    cairn_buf *b = ctx;
    CAIRN_TRY(cairn_buf_append(b, w, n));
    return cairn_buf_putc(b, '|');
}

static void check_split(const char *pre, const char *text, const char *want)
{
    vocab v;
    bpe_vocab(&v);
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("gpt2", pre, &v, bpe_merges, 1, NULL, &t));
    if (!t)
        return;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    CHECK_OK(tok_pre_split(t, text, strlen(text), collect, &b));
    CHECKF(b.data && strcmp(b.data, want) == 0, "%s: \"%s\" split as \"%s\"", pre, text, b.data ? b.data : "");
    cairn_buf_free(&b);
    tokenizer_free(t);
}

static void test_pre_split(void)
{
    const char *s = "Hello world 12345 don't\n\n  x";
    check_split("llama-bpe", s, "Hello| world| |123|45| don|'t|\n\n| | x|");
    check_split("qwen2", s, "Hello| world| |1|2|3|4|5| don|'t|\n\n| | x|");
    check_split("gpt-2", s, "Hello| world| 12345| don|'t|\n\n | x|");
    check_split("starcoder", s, "Hello| world| |1|2|3|4|5| don|'t|\n\n | x|");
    check_split("llama-bpe", "I'M ok?!\r\n", "I|'M| ok|?!\r\n|");
    check_split("gpt-2", "I'M ok", "I|'|M| ok|");
    check_split("deepseek-coder", "ab, 12\n", "ab|,| |1|2|\n|");
}

/* ------------------------------------------------------------------ */
/* WordPiece                                                           */

enum { W_PAD, W_UNK, W_CLS, W_SEP, W_MASK, W_HELLO, W_WORLD, W_UN, W_AFF, W_ABLE, W_COMMA, W_BANG, W_CAFE, W_ZH };

static void set_bert_ids(gguf_writer *w)
{
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 1));
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.cls_token_id", 2));
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.seperator_token_id", 3));
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", 0));
}

static void test_wpm(void)
{
    vocab v = { .n = 0 };
    const char *toks[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", U "hello", U "world", U "un", "aff",
                           "able", U ",", U "!", U "cafe", U "\xe5\x8c\x97" };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(toks); i++)
        v_add(&v, toks[i], 0, i < 5 ? 3 : 1);
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("bert", "default", &v, NULL, 0, set_bert_ids, &t));
    if (!t)
        return;
    CHECK_EQ_INT(tokenizer_bos(t), W_CLS);
    CHECK_EQ_INT(tokenizer_eos(t), W_SEP);
    CHECK(enc_is(t, "Hello, WORLD!", true, false, IDS(W_CLS, W_HELLO, W_COMMA, W_WORLD, W_BANG, W_SEP)));
    CHECK(enc_is(t, "unaffable", false, false, IDS(W_UN, W_AFF, W_ABLE)));
    CHECK(enc_is(t, "unaffablex xyz", false, false, IDS(W_UNK, W_UNK)));
    CHECK(enc_is(t, "Caf\xc3\xa9\t\xe5\x8c\x97\xe4\xba\xac", false, false, IDS(W_CAFE, W_ZH, W_UNK)));
    CHECK(enc_is(t, "", true, false, IDS(W_CLS, W_SEP)));
    CHECK(enc_is(t, " \x01\xff ", false, false, NOIDS)); /* control and invalid bytes vanish */
    char *s = decode_str(t, "Hello, unaffable world", true, false, 0);
    CHECK_EQ_STR(s, "hello , unaffable world");
    free(s);
    tokenizer_free(t);
}

/* ------------------------------------------------------------------ */
/* hostile or unsupported metadata                                     */

static void bad_types(gguf_writer *w)
{
    int32_t x[3] = { 1, 2, 3 };
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, x, 3));
}
static void bad_tokens(gguf_writer *w)
{
    int32_t x[3] = { 1, 2, 3 };
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.tokens", GGUF_TYPE_INT32, x, 3));
}
static void bad_bos(gguf_writer *w)
{
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 0xFFFFFFFFu));
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 1000000));
}

static void test_bad_metadata(void)
{
    vocab v;
    spm_vocab(&v);
    cairn_tokenizer *t = NULL;
    CHECK(write_and_load(NULL, NULL, &v, NULL, 0, NULL, &t) == CAIRN_ERR_NOT_FOUND && !t);
    CHECK(write_and_load("t5", NULL, &v, NULL, 0, NULL, &t) == CAIRN_ERR_UNSUPPORTED && !t);
    CHECK(write_and_load("llama", NULL, &v, NULL, 0, bad_types, &t) == CAIRN_ERR_CORRUPT && !t);
    CHECK(write_and_load("llama", NULL, &v, NULL, 0, bad_tokens, &t) == CAIRN_ERR_CORRUPT && !t);
    CHECK(write_and_load("gpt2", "gpt-2", &v, NULL, 0, NULL, &t) == CAIRN_ERR_NOT_FOUND && !t);
    /* an unknown pre-tokenizer falls back to llama.cpp's default patterns */
    vocab bv0;
    bpe_vocab(&bv0);
    CHECK_OK(write_and_load("gpt2", "no-such-pre", &bv0, bpe_merges, 1, NULL, &t));
    if (t) {
        CHECK(t->pre_unknown);
        CHECK_EQ_STR(tokenizer_pre_name(t), "no-such-pre");
        CHECK(enc_is(t, "he 1234", false, false, IDS(B_HE, ' ', '1', '2', '3', '4')));
        tokenizer_free(t);
    }
    /* out-of-range special ids keep the defaults (as the reference) */
    CHECK_OK(write_and_load("llama", NULL, &v, NULL, 0, bad_bos, &t));
    if (t) {
        CHECK_EQ_INT(tokenizer_bos(t), 1);
        CHECK_EQ_INT(tokenizer_eos(t), 2);
        tokenizer_free(t);
    }
    /* malformed merges lines are ignored, not fatal */
    static const char *const junk[] = { "", "x", " ", "h e" };
    vocab bv;
    bpe_vocab(&bv);
    CHECK_OK(write_and_load("gpt2", "gpt-2", &bv, junk, 4, NULL, &t));
    if (t) {
        CHECK(enc_is(t, "he", false, false, IDS(B_HE)));
        tokenizer_free(t);
    }
    CHECK(tokenizer_load(NULL, &t) == CAIRN_ERR_INVALID);
}

/* ------------------------------------------------------------------ */
/* allocation failures                                                 */

static void alloc_loop(const char *model, const char *pre, const vocab *v, const char *const *merges, int nm,
                       const char *text)
{
    /* write the file once, then load + encode with the n-th allocation failing */
    cairn_tokenizer *t0 = NULL;
    CHECK_OK(write_and_load(model, pre, v, merges, nm, NULL, &t0));
    int32_t want[256];
    size_t nwant = 0;
    if (t0)
        CHECK_OK(tokenizer_encode(t0, text, strlen(text), true, true, want, 256, &nwant));
    tokenizer_free(t0);

    static int seq;
    char path[1200];
    snprintf(path, sizeof path, "%s/a%d.gguf", t_tmpdir("tokunit_alloc"), seq++);
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.model", model));
    if (pre)
        CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.pre", pre));
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->strs, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->scores, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->types, (uint64_t)v->n));
    if (merges)
        CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)nm));
    CHECK_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    gguf_file *g = NULL;
    CHECK_OK(gguf_open(path, &g));
    if (!g)
        return;
    int failures_seen = 0;
    bool done = false;
    for (long n = 0; n < 5000 && !done; n++) {
        cairn_tokenizer *t = NULL;
        cairn_alloc_fail_after(n, false);
        cairn_status st = tokenizer_load(g, &t);
        if (st == CAIRN_OK) {
            int32_t ids[256];
            size_t k = 0;
            st = tokenizer_encode(t, text, strlen(text), true, true, ids, 256, &k);
            if (st == CAIRN_OK) {
                CHECK(k == nwant && memcmp(ids, want, k * sizeof *ids) == 0);
                done = cairn_alloc_injected_failures() == 0;
            }
            tokenizer_free(t);
        } else {
            CHECK(t == NULL);
        }
        if (st != CAIRN_OK) {
            CHECKF(st == CAIRN_ERR_NOMEM, "n=%ld: %s (%s)", n, cairn_status_str(st), cairn_last_error());
            failures_seen++;
        }
        cairn_alloc_fail_after(-1, false);
    }
    CHECK(done);
    CHECK(failures_seen > 10);
    gguf_close(g);
}

static void test_alloc_failures(void)
{
    vocab v;
    spm_vocab(&v);
    alloc_loop("llama", NULL, &v, NULL, 0, "abc <|sp|> aaa \xc3\xa9<ctl>");
    bpe_vocab(&v);
    alloc_loop("gpt2", "gpt-2", &v, bpe_merges, (int)CAIRN_ARRAY_LEN(bpe_merges), "hello  world<|endoftext|>ab");
}

/* Byte flips and truncations of a vocabulary file: loading either fails
 * cleanly or gives a tokenizer that encodes and decodes without crashing. */
static void mutate_loop(const char *model, const char *pre, const vocab *v, const char *const *merges, int nm)
{
    cairn_tokenizer *t0 = NULL;
    static int seq;
    char path[1200];
    snprintf(path, sizeof path, "%s/m%d.gguf", t_tmpdir("tokunit_mut"), seq++);
    gguf_writer *w = NULL;
    CHECK_OK(gguf_writer_new(&w));
    CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.model", model));
    if (pre)
        CHECK_OK(gguf_writer_set_str(w, "tokenizer.ggml.pre", pre));
    CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->strs, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, v->scores, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v->types, (uint64_t)v->n));
    CHECK_OK(gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1));
    if (merges)
        CHECK_OK(gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)nm));
    CHECK_OK(gguf_writer_write(w, path));
    gguf_writer_free(w);
    char *img = NULL;
    size_t len = 0;
    CHECK_OK(cairn_file_read_all(path, 1 << 24, &img, &len));
    if (!img)
        return;
    char *buf = malloc(len);
    uint64_t x = 0x2545F4914F6CDD1Dull;
    int loaded = 0, rejected = 0;
    for (int r = 0; r < 400; r++) {
        memcpy(buf, img, len);
        size_t n = len;
        int flips = 1 + r % 4;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            size_t at = (size_t)(x % len);
            buf[at] = (char)(r & 1 ? buf[at] ^ (1 << (x >> 60 & 7)) : (char)(x >> 32));
        }
        if (r % 10 == 9)
            n = (size_t)(x % len);
        gguf_file *g = NULL;
        if (gguf_open_mem(buf, n, "mutated", &g) != CAIRN_OK) {
            rejected++;
            continue;
        }
        if (tokenizer_load(g, &t0) == CAIRN_OK) {
            loaded++;
            static const char *const texts[] = { "hello abc", " a\xc3\xa9<|sp|><ctl>\xff", "" };
            for (size_t i = 0; i < CAIRN_ARRAY_LEN(texts); i++) {
                int32_t ids[512];
                size_t k = 0;
                if (tokenizer_encode(t0, texts[i], strlen(texts[i]), true, i & 1, ids, 512, &k) == CAIRN_OK) {
                    cairn_buf b;
                    cairn_buf_init(&b, 0);
                    (void)tokenizer_decode_ex(t0, ids, CAIRN_MIN(k, (size_t)512), TOKENIZER_DECODE_SPECIAL, &b);
                    cairn_buf_free(&b);
                }
            }
            tokenizer_free(t0);
            t0 = NULL;
        } else {
            rejected++;
        }
        gguf_close(g);
    }
    CHECK(loaded > 10 && rejected > 10);
    free(buf);
    cairn_free(img);
}

static void test_mutated_files(void)
{
    vocab v;
    spm_vocab(&v);
    mutate_loop("llama", NULL, &v, NULL, 0);
    bpe_vocab(&v);
    mutate_loop("gpt2", "gpt-2", &v, bpe_merges, (int)CAIRN_ARRAY_LEN(bpe_merges));
}

/* One tokenizer, several threads (the word cache is shared). */
typedef struct thr_arg {
    const cairn_tokenizer *t;
    const int32_t *want;
    size_t nwant;
    int bad;
} thr_arg;

static const char *thr_text = "hello hello abc ab xy  w hello world the the the abcabc hello";

static void *thr_main(void *p)
{
    thr_arg *a = p;
    for (int r = 0; r < 300; r++) {
        int32_t ids[256];
        size_t n = 0;
        if (tokenizer_encode(a->t, thr_text, strlen(thr_text), false, false, ids, 256, &n) != CAIRN_OK ||
            n != a->nwant || memcmp(ids, a->want, n * sizeof *ids) != 0)
            a->bad++;
    }
    return NULL;
}

static void test_threads(void)
{
    vocab v;
    bpe_vocab(&v);
    cairn_tokenizer *t = NULL;
    CHECK_OK(write_and_load("gpt2", "gpt-2", &v, bpe_merges, (int)CAIRN_ARRAY_LEN(bpe_merges), NULL, &t));
    if (!t)
        return;
    int32_t want[256];
    size_t nwant = 0;
    tok_cache *c = t->cache;
    t->cache = NULL; /* reference without the cache */
    CHECK_OK(tokenizer_encode(t, thr_text, strlen(thr_text), false, false, want, 256, &nwant));
    t->cache = c;
    pthread_t th[4];
    thr_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (thr_arg){ t, want, nwant, 0 };
        CHECK(pthread_create(&th[i], NULL, thr_main, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(args[i].bad, 0);
    }
    tokenizer_free(t);
}

int main(void)
{
    RUN(test_spm);
    RUN(test_spm_rstrip);
    RUN(test_bpe);
    RUN(test_bpe_raw);
    RUN(test_pre_split);
    RUN(test_wpm);
    RUN(test_bad_metadata);
    RUN(test_alloc_failures);
    RUN(test_threads);
    RUN(test_mutated_files);
    return t_done();
}
