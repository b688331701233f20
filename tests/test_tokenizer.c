/*
 * test_tokenizer.c — tokenizers against reference token ids.
 *
 * Shared vectors (skipped when ../shared is absent):
 *  - llamacpp-vocab/<name>.gguf.inp|.out: every input string (separated by
 *    "\n__ggml_vocab_test__\n") must give exactly the ids of its .out line
 *    (add_special=false, parse_special=false); per-vocab pass counts printed.
 *  - stories260K and llama-2-tiny-random ref-llamacpp-tokenize.json
 *    (add_special=true: BOS).
 *  - glove-bert ref-llamacpp-embeddings.*.json token ids (WordPiece, CLS/SEP).
 *  - decode(encode(s)) == s for SentencePiece and byte-level BPE.
 * Synthetic vocabularies written with our GGUF writer cover the rest and
 * always run: merges by score/rank, byte fallback, special-token splitting,
 * lstrip/rstrip, invalid UTF-8, the buffer contract and allocation failures.
 */
#define _GNU_SOURCE 1
#include "t.h"
#include "tokenizer/tok_internal.h"

#include <cjson/cJSON.h>
#include <dirent.h>

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static cairn_tokenizer *load_tok(const char *path)
{
    gguf_file *g = NULL;
    cairn_tokenizer *t = NULL;
    cairn_status st = gguf_open(path, &g);
    if (st == CAIRN_OK) {
        st = tokenizer_load(g, &t);
        gguf_close(g); /* the tokenizer must not need the file any more */
    }
    CHECKF(st == CAIRN_OK, "%s: %s (%s)", path, cairn_status_str(st), cairn_last_error());
    return t;
}

/* Encode into a malloc'd array (exercises the "call again" contract). */
static int32_t *enc(const cairn_tokenizer *t, const char *s, size_t len, bool add_special, bool parse_special,
                    size_t *n)
{
    int32_t small[4];
    size_t need = 0;
    cairn_status st = tokenizer_encode(t, s, len, add_special, parse_special, small, 4, &need);
    CHECKF(st == CAIRN_OK, "encode: %s", cairn_last_error());
    int32_t *ids = calloc(need + 1, sizeof *ids);
    size_t n2 = 0;
    st = tokenizer_encode(t, s, len, add_special, parse_special, ids, need, &n2);
    CHECK(st == CAIRN_OK && n2 == need);
    for (size_t i = 0; i < CAIRN_MIN(need, (size_t)4); i++)
        CHECK(ids[i] == small[i]);
    *n = need;
    return ids;
}

static char *dec(const cairn_tokenizer *t, const int32_t *ids, size_t n, unsigned flags)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    CHECK_OK(tokenizer_decode_ex(t, ids, n, flags, &b));
    char *s = strdup(b.data ? b.data : "");
    cairn_buf_free(&b);
    return s;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    size_t k = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && k + 16 < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, " %d", ids[i]);
}

static bool ids_eq_json(const int32_t *ids, size_t n, const cJSON *arr)
{
    if ((size_t)cJSON_GetArraySize(arr) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cJSON_GetArrayItem(arr, (int)i)->valueint != ids[i])
            return false;
    return true;
}

static cJSON *read_json(const char *path)
{
    char *s = NULL;
    size_t len;
    if (cairn_file_read_all(path, 1 << 26, &s, &len) != CAIRN_OK)
        return NULL;
    cJSON *j = cJSON_ParseWithLength(s, len);
    cairn_free(s);
    return j;
}

static bool valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n)
            return false;
        for (size_t j = 1; j < k; j++)
            if (((unsigned char)s[i + j] & 0xC0) != 0x80)
                return false;
        i += k;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* llama.cpp vocab test vectors                                        */

static int vocab_files_run;

static void run_vocab(const char *dir, const char *name)
{
    char gpath[2048], ipath[2100], opath[2100];
    snprintf(gpath, sizeof gpath, "%s/%s", dir, name);
    snprintf(ipath, sizeof ipath, "%s.inp", gpath);
    snprintf(opath, sizeof opath, "%s.out", gpath);
    /* Vocabularies ../shared lacks (llama-bpe, qwen2, ...) may be supplied in
     * $CAIRN_TEST_VOCAB_DIR, e.g. made by scripts/hf_tokenizer_to_gguf.py. */
    const char *extra = getenv("CAIRN_TEST_VOCAB_DIR");
    if (access(gpath, R_OK) != 0 && extra && *extra)
        snprintf(gpath, sizeof gpath, "%s/%s", extra, name);
    if (access(gpath, R_OK) != 0) {
        fprintf(stderr, "  %-32s skipped (vocabulary file absent)\n", name);
        return;
    }
    char *inp = NULL, *outp = NULL;
    size_t inl, outl;
    CHECK_OK(cairn_file_read_all(ipath, 1 << 24, &inp, &inl));
    CHECK_OK(cairn_file_read_all(opath, 1 << 24, &outp, &outl));
    cairn_tokenizer *t = load_tok(gpath);
    if (!t || !inp || !outp) {
        cairn_free(inp);
        cairn_free(outp);
        tokenizer_free(t);
        return;
    }
    vocab_files_run++;
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t seplen = strlen(sep);
    int total = 0, pass = 0, rt_total = 0, rt_pass = 0;
    char *p = inp, *end = inp + inl;
    char *o = outp;
    while (p < end) {
        char *q = memmem(p, (size_t)(end - p), sep, seplen);
        size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
        char *ol = o;
        char *nl = strchr(o, '\n');
        if (nl) {
            *nl = 0;
            o = nl + 1;
        } else {
            o = ol + strlen(ol);
        }
        /* expected ids */
        int32_t want[4096];
        size_t nw = 0;
        for (char *s = ol; *s;) {
            char *e;
            long v = strtol(s, &e, 10);
            if (e == s)
                break;
            if (nw < CAIRN_ARRAY_LEN(want))
                want[nw++] = (int32_t)v;
            s = e;
        }
        size_t n;
        int32_t *got = enc(t, p, len, false, false, &n);
        total++;
        bool ok = n == nw && memcmp(got, want, n * sizeof *got) == 0;
        if (ok) {
            pass++;
        } else {
            char a[2048], b[2048];
            fmt_ids(a, sizeof a, got, n);
            fmt_ids(b, sizeof b, want, nw);
            fprintf(stderr, "    %s: input %d \"%.*s\"\n      got :%s\n      want:%s\n", name, total,
                    (int)CAIRN_MIN(len, (size_t)60), p, a, b);
        }
        CHECK(ok);
        /* round trip: SentencePiece and byte-level BPE restore valid UTF-8 text */
        const char *tname = tokenizer_type_name(t);
        if (strncmp(tname, "bert", 4) != 0 && valid_utf8(p, len) && !memmem(p, len, "\xe2\x96\x81", 3)) {
            char *back = dec(t, got, n, 0);
            rt_total++;
            bool rt = strlen(back) == len && memcmp(back, p, len) == 0;
            rt_pass += rt;
            CHECKF(rt, "%s: round trip of input %d: \"%s\"", name, total, back);
            free(back);
        }
        free(got);
        if (!q)
            break;
        p = q + seplen;
        if (p >= end)
            break;
    }
    fprintf(stderr, "  %-32s %d/%d exact, round trip %d/%d  [%s]\n", name, pass, total, rt_pass, rt_total,
            tokenizer_type_name(t));
    CHECK(total > 0);
    tokenizer_free(t);
    cairn_free(inp);
    cairn_free(outp);
}

static void test_llamacpp_vocabs(void)
{
    const char *sh = cairn_test_shared_dir();
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/llamacpp-vocab", sh);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return;
    static char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 9 && strcmp(e->d_name + l - 9, ".gguf.inp") == 0) {
            snprintf(names[n], sizeof names[n], "%.*s", (int)CAIRN_MIN(l - 4, (size_t)200), e->d_name);
            n++;
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
    for (int i = 0; i < n; i++)
        run_vocab(dir, names[i]);
    CHECK(vocab_files_run >= 10); /* the ten vocabularies shipped in ../shared */
}

/* ------------------------------------------------------------------ */
/* model references (add_special)                                      */

static void check_tokenize_json(const char *model, const char *json)
{
    cairn_tokenizer *t = load_tok(model);
    cJSON *j = read_json(json);
    CHECKF(j != NULL, "%s", json);
    if (!t || !j) {
        tokenizer_free(t);
        cJSON_Delete(j);
        return;
    }
    int n_cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        size_t n;
        int32_t *ids = enc(t, text, strlen(text), true, false, &n);
        char a[2048];
        fmt_ids(a, sizeof a, ids, n);
        CHECKF(ids_eq_json(ids, n, want), "%s: \"%s\" -> %s", model, text, a);
        /* skip BOS, decode: the original text */
        char *back = dec(t, ids, n, 0);
        CHECKF(strcmp(back, text) == 0, "%s: decode \"%s\" != \"%s\"", model, back, text);
        free(back);
        free(ids);
        n_cases++;
    }
    CHECK(n_cases >= 5);
    cJSON_Delete(j);
    tokenizer_free(t);
}

static void test_stories260k(void)
{
    char m[1024], j[1024];
    const char *sh = cairn_test_shared_dir();
    snprintf(m, sizeof m, "%s/models/stories260K/stories260K.gguf", sh);
    snprintf(j, sizeof j, "%s/models/stories260K/ref-llamacpp-tokenize.json", sh);
    check_tokenize_json(m, j);
    /* the greedy references' prompt ids too (every model that has them) */
    static const char *const refs[][2] = {
        { "stories260K/stories260K.gguf", "stories260K/ref-llamacpp-greedy.stories260K.json" },
        { "stories260K/stories260K-Q8_0.gguf", "stories260K/ref-llamacpp-greedy.stories260K-Q8_0.json" },
        { "stories260K/stories260K-Q4_0.gguf", "stories260K/ref-llamacpp-greedy.stories260K-Q4_0.json" },
        { "stories260K-moe/stories260K-moe4x-top2-identity.gguf",
          "stories260K-moe/ref-llamacpp-greedy.moe-identity.json" },
        { "stories260K-moe/stories260K-moe4x-top2-distinct-Q8_0.gguf",
          "stories260K-moe/ref-llamacpp-greedy.moe-distinct-Q8_0.json" },
        { "llama-2-tiny-random/llama-2-tiny-random.gguf", "llama-2-tiny-random/ref-llamacpp-greedy.json" },
    };
    for (size_t ri = 0; ri < CAIRN_ARRAY_LEN(refs); ri++) {
        snprintf(m, sizeof m, "%s/models/%s", sh, refs[ri][0]);
        snprintf(j, sizeof j, "%s/models/%s", sh, refs[ri][1]);
        cJSON *r = read_json(j);
        cairn_tokenizer *t = load_tok(m);
        CHECK(r && t);
        if (r && t) {
            int n = 0;
            const cJSON *c;
            cJSON_ArrayForEach(c, r)
            {
                const cJSON *pt = cJSON_GetObjectItem(c, "prompt");
                const cJSON *pi = cJSON_GetObjectItem(c, "prompt_ids");
                if (!cJSON_IsString(pt) || !cJSON_IsArray(pi))
                    continue;
                size_t k;
                int32_t *ids = enc(t, pt->valuestring, strlen(pt->valuestring), true, false, &k);
                CHECKF(ids_eq_json(ids, k, pi), "%s: prompt \"%s\"", refs[ri][1], pt->valuestring);
                free(ids);
                n++;
            }
            CHECKF(n >= 2, "no prompts found in %s", j);
        }
        cJSON_Delete(r);
        tokenizer_free(t);
    }
}

static void test_llama2_tiny(void)
{
    char m[1024], j[1024];
    const char *sh = cairn_test_shared_dir();
    snprintf(m, sizeof m, "%s/models/llama-2-tiny-random/llama-2-tiny-random.gguf", sh);
    snprintf(j, sizeof j, "%s/models/llama-2-tiny-random/ref-llamacpp-tokenize.json", sh);
    check_tokenize_json(m, j);
}

static void test_glove_bert(void)
{
    static const char *const models[] = {
        "glove6B-100d-bert-15k-f16",
        "glove6B-100d-bert-22k-d128-Q8_0",
        "glove6B-100d-bert-22k-d128-Q4_K_M",
    };
    const char *sh = cairn_test_shared_dir();
    for (size_t mi = 0; mi < CAIRN_ARRAY_LEN(models); mi++) {
        char m[1024], j[1024];
        snprintf(m, sizeof m, "%s/models/glove-bert/%s.gguf", sh, models[mi]);
        snprintf(j, sizeof j, "%s/models/glove-bert/ref-llamacpp-embeddings.%s.json", sh, models[mi]);
        cairn_tokenizer *t = load_tok(m);
        cJSON *r = read_json(j);
        CHECK(t && r);
        if (!t || !r) {
            tokenizer_free(t);
            cJSON_Delete(r);
            continue;
        }
        int n = 0;
        const char *lists[] = { "docs_then_queries", "tokenize" };
        for (int li = 0; li < 2; li++) {
            const cJSON *c;
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(r, lists[li]))
            {
                const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
                size_t k;
                int32_t *ids = enc(t, text, strlen(text), true, false, &k);
                char a[2048];
                fmt_ids(a, sizeof a, ids, k);
                CHECKF(ids_eq_json(ids, k, cJSON_GetObjectItem(c, "ids")), "%s: \"%s\" -> %s", models[mi], text, a);
                free(ids);
                n++;
            }
        }
        CHECK(n >= 20);
        fprintf(stderr, "  %-40s %d texts checked\n", models[mi], n);
        cJSON_Delete(r);
        tokenizer_free(t);
    }
}

/* BPE vocab with special tokens parsed (parse_special=true), round trip
 * with DECODE_SPECIAL. */
static void test_bpe_parse_special(void)
{
    char m[1024];
    snprintf(m, sizeof m, "%s/models/llamacpp-vocab/ggml-vocab-gpt-2.gguf", cairn_test_shared_dir());
    cairn_tokenizer *t = load_tok(m);
    if (!t)
        return;
    const char *s = "Hello<|endoftext|> world";
    size_t n;
    int32_t *ids = enc(t, s, strlen(s), false, true, &n);
    /* "Hello" "<|endoftext|>" " world" */
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_INT(ids[0], 15496);
        CHECK_EQ_INT(ids[1], 50256);
        CHECK_EQ_INT(ids[2], 995);
    }
    char *back = dec(t, ids, n, TOKENIZER_DECODE_SPECIAL);
    CHECK_EQ_STR(back, s);
    free(back);
    back = dec(t, ids, n, 0);
    CHECK_EQ_STR(back, "Hello world");
    free(back);
    free(ids);
    /* without parse_special the control token is plain text */
    ids = enc(t, s, strlen(s), false, false, &n);
    CHECK(n > 3);
    free(ids);
    CHECK(tokenizer_is_eog(t, 50256));
    CHECK(!tokenizer_is_eog(t, 15496));
    tokenizer_free(t);
}

/* The speed-ups must not change results: SentencePiece's per-segment merge
 * and the word cache must equal merging the whole text at once without a
 * cache. Compared on prose and on random byte soup (twice: the second pass
 * runs from a warm cache). */
static void check_fast_equals_slow(const char *vocab_name, const char *text, size_t len, const char *soup,
                                   size_t soup_len)
{
    char m[1024];
    snprintf(m, sizeof m, "%s/models/llamacpp-vocab/%s", cairn_test_shared_dir(), vocab_name);
    const char *extra = getenv("CAIRN_TEST_VOCAB_DIR");
    if (access(m, R_OK) != 0 && extra && *extra)
        snprintf(m, sizeof m, "%s/%s", extra, vocab_name);
    if (access(m, R_OK) != 0) {
        fprintf(stderr, "  %s: skipped (vocabulary file absent)\n", vocab_name);
        return;
    }
    cairn_tokenizer *t = load_tok(m);
    if (!t)
        return;
    CHECK(t->cache != NULL);
    const char *texts[] = { text, soup, text };
    size_t lens[] = { len, soup_len, len };
    for (int i = 0; i < 3; i++) {
        size_t n1, n2;
        int32_t *a = enc(t, texts[i], lens[i], true, false, &n1);
        tok_cache *c = t->cache;
        bool split = t->spm_split, raw_split = t->raw_split;
        t->cache = NULL;
        t->spm_split = false;
        t->raw_split = false;
        int32_t *b = enc(t, texts[i], lens[i], true, false, &n2);
        t->cache = c;
        t->spm_split = split;
        t->raw_split = raw_split;
        CHECKF(n1 == n2 && memcmp(a, b, n1 * sizeof *a) == 0, "%s text %d: %zu vs %zu ids", vocab_name, i, n1, n2);
        CHECK(n1 > 1000);
        free(a);
        free(b);
    }
    tokenizer_free(t);
}

static void test_fast_paths_exact(void)
{
    char c[1024];
    snprintf(c, sizeof c, "%s/data/qa/squad-v1.1-dev/corpus.jsonl", cairn_test_shared_dir());
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(cairn_file_read_all(c, 1 << 26, &text, &len));
    if (!text)
        return;
    len = CAIRN_MIN(len, (size_t)200000);
    /* random soup: spaces, U+2581, ASCII, multi-byte and invalid bytes */
    static char soup[20000];
    uint64_t x = 88172645463325252ull;
    static const char *const parts[] = { " ", "  ", "\xe2\x96\x81", "a", "the", "\xc3\xa9", "\xff", "\xe2\x96",
                                         "\n", "\xf0\x9f\x98\x80", "1", "<|endoftext|>", "'s", ">", "</" };
    size_t k = 0;
    while (k + 16 < sizeof soup) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        const char *p = parts[x % CAIRN_ARRAY_LEN(parts)];
        size_t pl = strlen(p);
        memcpy(soup + k, p, pl);
        k += pl;
    }
    check_fast_equals_slow("ggml-vocab-llama-spm.gguf", text, len, soup, k);
    check_fast_equals_slow("ggml-vocab-gpt-2.gguf", text, len, soup, k);
    check_fast_equals_slow("ggml-vocab-mpt.gguf", text, len, soup, k);
    check_fast_equals_slow("ggml-vocab-gemma-4.gguf", text, len, soup, k); /* only with CAIRN_TEST_VOCAB_DIR */
    cairn_free(text);
}

/* decode(encode(s)) == s on random soup of valid UTF-8 (also with
 * parse_special and DECODE_SPECIAL for BPE: control tokens render as their
 * text). SentencePiece also restores invalid bytes, as long as the reference's
 * lead-byte character split does not swallow a following (escaped) space. */
static void check_roundtrip_soup(const char *vocab_name, bool any_bytes, bool specials)
{
    char m[1024];
    snprintf(m, sizeof m, "%s/models/llamacpp-vocab/%s", cairn_test_shared_dir(), vocab_name);
    cairn_tokenizer *t = load_tok(m);
    if (!t)
        return;
    static const char *const parts[] = { " ", "  ", "a", "The", "\xc3\xa9", "\xff", "\xe2\x96", "\n", "\t",
                                         "\xf0\x9f\x98\x80", "1", "<|endoftext|>", "'s", "\x00", "\xe4\xb8\xad",
                                         "\xcc\x81", "!?", "\r\n" };
    uint64_t x = 0x9E3779B97F4A7C15ull;
    int ok = 0, total = 0;
    for (int r = 0; r < 200; r++) {
        char buf[512];
        size_t k = 0;
        while (k + 16 < sizeof buf) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *p = parts[x % CAIRN_ARRAY_LEN(parts)];
            if (!any_bytes && !valid_utf8(p, strlen(p)))
                continue;
            if (!specials && p[0] == '<')
                continue;
            memcpy(buf + k, p, strlen(p));
            k += strlen(p);
            if ((x >> 40) % 23 == 0)
                break;
        }
        size_t n;
        int32_t *ids = enc(t, buf, k, true, specials, &n);
        char *back = dec(t, ids, n, specials ? TOKENIZER_DECODE_SPECIAL : 0);
        /* the decoded text may contain NULs: compare by length from the ids */
        cairn_buf b;
        cairn_buf_init(&b, 0);
        CHECK_OK(tokenizer_decode_ex(t, ids, n, specials ? TOKENIZER_DECODE_SPECIAL : 0, &b));
        bool same = b.len == k && memcmp(b.data, buf, k) == 0;
        ok += same;
        total++;
        cairn_buf_free(&b);
        free(back);
        free(ids);
    }
    CHECKF(ok == total, "%s: %d/%d round trips", vocab_name, ok, total);
    tokenizer_free(t);
}

static void test_roundtrip_soup(void)
{
    check_roundtrip_soup("ggml-vocab-llama-spm.gguf", false, false);
    check_roundtrip_soup("ggml-vocab-phi-3.gguf", false, false);
    check_roundtrip_soup("ggml-vocab-gpt-2.gguf", false, false);
    check_roundtrip_soup("ggml-vocab-gpt-2.gguf", false, true);
    check_roundtrip_soup("ggml-vocab-mpt.gguf", false, true);
    check_roundtrip_soup("ggml-vocab-deepseek-llm.gguf", false, false);
    check_roundtrip_soup("ggml-vocab-starcoder.gguf", false, true);
}

int main(void)
{
    if (!cairn_test_shared_dir())
        SKIP_ALL("shared test assets absent");
    RUN(test_llamacpp_vocabs);
    RUN(test_stories260k);
    RUN(test_llama2_tiny);
    RUN(test_glove_bert);
    RUN(test_bpe_parse_special);
    RUN(test_fast_paths_exact);
    RUN(test_roundtrip_soup);
    return t_done();
}
