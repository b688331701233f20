/*
 * tok_load.c — loading a tokenizer from GGUF metadata: the vocabulary, its
 * string map, special ids and attributes.
 *
 * GGUF keys read (all under "tokenizer.ggml."):
 *   model            "llama" (SentencePiece), "gpt2" (byte-level BPE), "bert" (WordPiece)
 *   pre              pre-tokenizer name for "gpt2" (tok_pre.c)
 *   tokens           string array, the vocabulary (id = index)
 *   scores           float32 array (SPM merge priority), optional
 *   token_type       int32 array: 1 normal, 2 unknown, 3 control, 4 user defined,
 *                    5 unused, 6 byte; optional (all normal)
 *   merges           string array "left right" in rank order (gpt2 only)
 *   bos_token_id eos_token_id eot_token_id eom_token_id unknown_token_id
 *   seperator_token_id padding_token_id cls_token_id mask_token_id
 *   fim_*_token_id (prefix/suffix/middle_token_id)
 *   add_bos_token add_eos_token add_sep_token add_space_prefix
 * Ids outside the vocabulary are ignored (the model default stays), as
 * llama.cpp does (stories260K stores 0xFFFFFFFF for "none").
 */
#include "tokenizer/tok_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOK_MAX_VOCAB (1 << 24)

/* ------------------------------------------------------------------ */
/* strings and the string -> index map                                 */

static inline uint32_t str_hash(const char *s, size_t n) { return (uint32_t)cairn_hash64(s, n); }

int32_t tok_lookup(const cairn_tokenizer *t, const char *s, size_t n)
{
    uint32_t h = str_hash(s, n) & t->map_mask;
    for (;;) {
        uint32_t v = t->map[h];
        if (!v)
            return -1;
        size_t len;
        const char *p = tok_str(t, v - 1, &len);
        if (len == n && memcmp(p, s, n) == 0)
            return (int32_t)(v - 1);
        h = (h + 1) & t->map_mask;
    }
}

static cairn_status map_grow(cairn_tokenizer *t, uint32_t need)
{
    /* keep the load factor <= 1/2 */
    if ((uint64_t)need * 2 <= (uint64_t)t->map_mask + 1 && t->map)
        return CAIRN_OK;
    uint64_t cap = 1024;
    while (cap < (uint64_t)need * 2)
        cap *= 2;
    if (cap > ((uint64_t)1 << 31))
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "tokenizer: too many strings (%u)", need);
    uint32_t *m = cairn_calloc((size_t)cap, sizeof *m);
    if (!m)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for the vocabulary map");
    uint32_t mask = (uint32_t)(cap - 1);
    if (t->map) {
        for (uint64_t i = 0; i <= t->map_mask; i++) {
            uint32_t v = t->map[i];
            if (!v)
                continue;
            size_t len;
            const char *p = tok_str(t, v - 1, &len);
            uint32_t h = str_hash(p, len) & mask;
            while (m[h])
                h = (h + 1) & mask;
            m[h] = v;
        }
        cairn_free(t->map);
    }
    t->map = m;
    t->map_mask = mask;
    return CAIRN_OK;
}

/* Append a string to the blob (no map update). */
static cairn_status str_add(cairn_tokenizer *t, const char *s, size_t n)
{
    if (t->n_str + 1 >= t->str_cap) {
        uint32_t ncap = t->str_cap ? t->str_cap * 2 : 1024;
        uint32_t *p = cairn_reallocarray(t->off, (size_t)ncap + 1, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for strings");
        t->off = p;
        t->str_cap = ncap;
    }
    if (t->blob_len + n > UINT32_MAX / 2)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "tokenizer: vocabulary text too large");
    if (t->blob_len + n > t->blob_cap) {
        size_t ncap = t->blob_cap ? t->blob_cap : 4096;
        while (ncap < t->blob_len + n)
            ncap *= 2;
        char *p = cairn_realloc(t->blob, ncap);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for strings");
        t->blob = p;
        t->blob_cap = ncap;
    }
    if (t->n_str == 0)
        t->off[0] = 0;
    memcpy(t->blob + t->blob_len, s, n);
    t->blob_len += n;
    t->n_str++;
    t->off[t->n_str] = (uint32_t)t->blob_len;
    return CAIRN_OK;
}

/* Map string index i (already in the blob); replaces an equal string. */
static cairn_status map_put(cairn_tokenizer *t, uint32_t i)
{
    CAIRN_TRY(map_grow(t, t->map_used + 1));
    size_t len;
    const char *s = tok_str(t, i, &len);
    uint32_t h = str_hash(s, len) & t->map_mask;
    for (;;) {
        uint32_t v = t->map[h];
        if (!v) {
            t->map[h] = i + 1;
            t->map_used++;
            return CAIRN_OK;
        }
        size_t l2;
        const char *p = tok_str(t, v - 1, &l2);
        if (l2 == len && memcmp(p, s, len) == 0) {
            t->map[h] = i + 1; /* later duplicate wins */
            return CAIRN_OK;
        }
        h = (h + 1) & t->map_mask;
    }
}

cairn_status tok_intern(cairn_tokenizer *t, const char *s, size_t n, int32_t *idx)
{
    int32_t i = tok_lookup(t, s, n);
    if (i >= 0) {
        *idx = i;
        return CAIRN_OK;
    }
    CAIRN_TRY(str_add(t, s, n));
    CAIRN_TRY(map_put(t, t->n_str - 1));
    *idx = (int32_t)(t->n_str - 1);
    return CAIRN_OK;
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

static bool str_is(gguf_str s, const char *c) { return gguf_str_eq(s, c); }

static const gguf_kv *find_arr(const gguf_file *g, const char *key, gguf_type elem, uint64_t n, bool need,
                               cairn_status *st)
{
    *st = CAIRN_OK;
    const gguf_kv *kv = gguf_kv_find(g, key);
    if (!kv) {
        if (need)
            *st = cairn_fail(CAIRN_ERR_NOT_FOUND, "tokenizer: GGUF has no %s", key);
        return NULL;
    }
    if (kv->type != GGUF_TYPE_ARRAY || kv->v.arr.type != elem) {
        *st = cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: %s is not an array of %s", key, gguf_type_name(elem));
        return NULL;
    }
    if (n != UINT64_MAX && kv->v.arr.count != n) {
        *st = cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: %s has %llu entries, the vocabulary %llu", key,
                         (unsigned long long)kv->v.arr.count, (unsigned long long)n);
        return NULL;
    }
    return kv;
}

static void read_id(const gguf_file *g, const cairn_tokenizer *t, const char *key, int32_t *id)
{
    int64_t v;
    if (gguf_get_i64(g, key, &v) == CAIRN_OK && v >= 0 && v < t->n_vocab)
        *id = (int32_t)v;
    cairn_clear_error();
}

static void read_bool(const gguf_file *g, const char *key, bool *b)
{
    bool v;
    if (gguf_get_bool(g, key, &v) == CAIRN_OK)
        *b = v;
    cairn_clear_error();
}

/* sort key: text length (descending), then id */
static int cmp_special(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void set_attr_by_text(cairn_tokenizer *t, const char *text, uint8_t flag, bool on)
{
    int32_t id = tok_lookup(t, text, strlen(text));
    if (id < 0 || id >= t->n_vocab)
        return;
    if (on)
        t->attr[id] |= flag;
    else
        t->attr[id] &= (uint8_t)~flag;
}

static cairn_status build_specials(cairn_tokenizer *t, const gguf_file *g)
{
    /* Per-model attribute fixes llama.cpp applies (absent from GGUF). */
    char name[64] = "";
    gguf_str gn;
    if (gguf_get_str(g, "general.name", &gn) == CAIRN_OK) {
        size_t n = CAIRN_MIN(gn.len, sizeof name - 1);
        for (size_t i = 0; i < n; i++)
            name[i] = (char)tolower((unsigned char)gn.ptr[i]);
        name[n] = 0;
    }
    cairn_clear_error();
    if (strstr(t->pre_name, "jina-v2-de") || strstr(t->pre_name, "jina-v2-es") ||
        strstr(t->pre_name, "jina-v2-code")) {
        set_attr_by_text(t, "<mask>", TOK_ATTR_LSTRIP, true);
    } else if (strstr(name, "phi-3") || strstr(name, "phi3")) {
        for (int32_t i = 0; i < t->n_vocab; i++)
            if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN))
                t->attr[i] |= TOK_ATTR_RSTRIP;
        set_attr_by_text(t, "</s>", TOK_ATTR_RSTRIP, true);
        set_attr_by_text(t, "<unk>", TOK_ATTR_RSTRIP, false);
        set_attr_by_text(t, "<s>", TOK_ATTR_RSTRIP, false);
        set_attr_by_text(t, "<|endoftext|>", TOK_ATTR_RSTRIP, false);
    }

    uint32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN))
            n++;
    for (int i = 0; i < 256; i++)
        t->sp_single[i] = -1;
    if (n == 0)
        return CAIRN_OK;
    t->special = cairn_calloc(n, sizeof *t->special);
    t->sp_bucket = cairn_calloc(65537, sizeof *t->sp_bucket);
    t->sp_items = cairn_calloc(n, sizeof *t->sp_items);
    if (!t->special || !t->sp_bucket || !t->sp_items)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for special tokens");
    n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->attr[i] & (TOK_ATTR_CONTROL | TOK_ATTR_USER | TOK_ATTR_UNKNOWN))
            t->special[n++] = i;
    t->n_special = n;
    uint64_t *keys = cairn_calloc(n, sizeof *keys);
    if (!keys)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for special tokens");
    for (uint32_t r = 0; r < n; r++) {
        uint32_t id = (uint32_t)t->special[r];
        keys[r] = (uint64_t)(UINT32_MAX - (t->off[id + 1] - t->off[id])) << 32 | id;
    }
    qsort(keys, n, sizeof *keys, cmp_special);
    for (uint32_t r = 0; r < n; r++)
        t->special[r] = (int32_t)(keys[r] & 0xFFFFFFFFu);
    cairn_free(keys);

    /* bucket by the first two bytes (counting sort); 1-byte tokens apart */
    for (uint32_t r = 0; r < n; r++) {
        size_t len;
        const char *s = tok_str(t, (uint32_t)t->special[r], &len);
        if (t->attr[t->special[r]] & TOK_ATTR_USER)
            t->any_user_special = true;
        if (len >= 2)
            t->sp_bucket[((uint8_t)s[0] << 8 | (uint8_t)s[1]) + 1]++;
        else if (len == 1 && t->sp_single[(uint8_t)s[0]] < 0)
            t->sp_single[(uint8_t)s[0]] = (int32_t)r;
    }
    for (uint32_t k = 0; k < 65536; k++)
        t->sp_bucket[k + 1] += t->sp_bucket[k];
    uint32_t *fill = cairn_calloc(65536, sizeof *fill);
    if (!fill)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for special tokens");
    for (uint32_t r = 0; r < n; r++) {
        size_t len;
        const char *s = tok_str(t, (uint32_t)t->special[r], &len);
        if (len >= 2) {
            uint32_t k = (uint8_t)s[0] << 8 | (uint8_t)s[1];
            t->sp_items[t->sp_bucket[k] + fill[k]++] = r;
        }
    }
    cairn_free(fill);
    return CAIRN_OK;
}

#define FW "\xef\xbd\x9c" /* U+FF5C, DeepSeek's fullwidth bar */
#define SP "\xe2\x96\x81"  /* U+2581 */

/* Special tokens found by their text, as llama.cpp does (GGUF files rarely
 * carry them all): end of turn/message and fill-in-the-middle markers. A
 * token found this way that is not typed "control" is made control (the
 * reference does the same, so they are not split out of plain text when
 * parse_special is off). Then the end-of-generation set: EOS, EOT, EOM, the
 * FIM pad/repo/separator tokens and the usual end-of-turn texts. */
static int32_t find_first(cairn_tokenizer *t, const char *const *texts, size_t n, bool force)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = tok_lookup(t, texts[i], strlen(texts[i]));
        if (id >= 0 && id < t->n_vocab) {
            if (force && !(t->attr[id] & TOK_ATTR_CONTROL))
                t->attr[id] = TOK_ATTR_CONTROL;
            return id;
        }
    }
    return -1;
}

static cairn_status detect_special(cairn_tokenizer *t, const gguf_file *g)
{
    static const char *const eot[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                       "<|end_of_text|>", "<EOT>", "_<EOT>", "<" FW "end" SP "of" SP "sentence" FW ">",
                                       "<end_of_utterance>" };
    static const char *const eom[] = { "<|eom_id|>" };
    static const char *const pre[] = { "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<" FW "fim" SP "begin" FW ">",
                                       "<PRE>", SP "<PRE>" };
    static const char *const suf[] = { "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<" FW "fim" SP "hole" FW ">",
                                       "<SUF>", SP "<SUF>" };
    static const char *const mid[] = { "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<" FW "fim" SP "end" FW ">",
                                       "<MID>", SP "<MID>" };
    static const char *const pad[] = { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>" };
    static const char *const rep[] = { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>" };
    static const char *const sep[] = { "<|file_sep|>" };
    static const char *const eog[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                       "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>" };
    int32_t fim[6] = { -1, -1, -1, -1, -1, -1 };
    static const char *const fim_keys[6] = {
        "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id",
        "tokenizer.ggml.fim_pad_token_id", "tokenizer.ggml.fim_rep_token_id", "tokenizer.ggml.fim_sep_token_id",
    };
    static const char *const old_keys[3] = { "tokenizer.ggml.prefix_token_id", "tokenizer.ggml.suffix_token_id",
                                             "tokenizer.ggml.middle_token_id" };
    for (int i = 0; i < 6; i++)
        read_id(g, t, fim_keys[i], &fim[i]);
    for (int i = 0; i < 3; i++)
        read_id(g, t, old_keys[i], &fim[i]);

    if (t->eot < 0)
        t->eot = find_first(t, eot, CAIRN_ARRAY_LEN(eot), true);
    if (t->eom < 0)
        t->eom = find_first(t, eom, CAIRN_ARRAY_LEN(eom), true);
    const char *const *lists[6] = { pre, suf, mid, pad, rep, sep };
    size_t lens[6] = { CAIRN_ARRAY_LEN(pre), CAIRN_ARRAY_LEN(suf), CAIRN_ARRAY_LEN(mid),
                       CAIRN_ARRAY_LEN(pad), CAIRN_ARRAY_LEN(rep), CAIRN_ARRAY_LEN(sep) };
    for (int i = 0; i < 6; i++)
        if (fim[i] < 0)
            fim[i] = find_first(t, lists[i], lens[i], true);

    int32_t cand[6 + CAIRN_ARRAY_LEN(eog)];
    uint32_t n = 0;
    for (int i = 3; i < 6; i++)
        if (fim[i] >= 0)
            cand[n++] = fim[i];
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(eog); i++) {
        int32_t id = find_first(t, &eog[i], 1, true);
        if (id >= 0)
            cand[n++] = id;
    }
    if (t->eos >= 0)
        cand[n++] = t->eos;
    if (t->eot >= 0)
        cand[n++] = t->eot;
    if (t->eom >= 0)
        cand[n++] = t->eom;
    t->eog = cairn_calloc(n ? n : 1, sizeof *t->eog);
    if (!t->eog)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        bool dup = false;
        for (uint32_t j = 0; j < t->n_eog; j++)
            dup |= t->eog[j] == cand[i];
        if (!dup)
            t->eog[t->n_eog++] = cand[i];
    }
    return CAIRN_OK;
}

/* Parse "<0xAB>" -> 0xAB, or -1. */
static cairn_status load_vocab(cairn_tokenizer *t, const gguf_file *g)
{
    cairn_status st;
    const gguf_kv *tokens = find_arr(g, "tokenizer.ggml.tokens", GGUF_TYPE_STRING, UINT64_MAX, true, &st);
    if (!tokens)
        return st;
    uint64_t n = tokens->v.arr.count;
    if (n == 0 || n > TOK_MAX_VOCAB)
        return cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: vocabulary size %llu out of range",
                          (unsigned long long)n);
    t->n_vocab = (int32_t)n;
    const gguf_kv *scores = find_arr(g, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, n, false, &st);
    if (st != CAIRN_OK)
        return st;
    const gguf_kv *types = gguf_kv_find(g, "tokenizer.ggml.token_type");
    if (types && (types->type != GGUF_TYPE_ARRAY ||
                  (types->v.arr.type != GGUF_TYPE_INT32 && types->v.arr.type != GGUF_TYPE_UINT32) ||
                  types->v.arr.count != n))
        return cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: tokenizer.ggml.token_type is not an int32 array of %llu",
                          (unsigned long long)n);

    t->score = cairn_calloc((size_t)n, sizeof *t->score);
    t->attr = cairn_calloc((size_t)n, sizeof *t->attr);
    if (!t->score || !t->attr)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for %llu tokens", (unsigned long long)n);
    CAIRN_TRY(map_grow(t, (uint32_t)n));
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = gguf_arr_str(tokens, i);
        if (s.len == 0) { /* llama.cpp names empty tokens so they stay unique */
            char tmp[32];
            int k = snprintf(tmp, sizeof tmp, "[EMPTY_%llu]", (unsigned long long)i);
            CAIRN_TRY(str_add(t, tmp, (size_t)k));
        } else {
            if (s.len > (1u << 20))
                return cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: token %llu is %llu bytes long",
                                  (unsigned long long)i, (unsigned long long)s.len);
            CAIRN_TRY(str_add(t, s.ptr, s.len));
        }
        CAIRN_TRY(map_put(t, (uint32_t)i));
        int32_t len = (int32_t)(t->off[i + 1] - t->off[i]);
        if (len > t->max_token_len)
            t->max_token_len = len;
        float sc = 0.0f;
        if (scores)
            memcpy(&sc, (const char *)scores->v.arr.data + 4 * i, 4);
        if (sc == 0.0f)
            sc = 0.0f; /* -0 == 0 in the reference's comparisons */
        t->score[i] = sc;
        int32_t ty = 1;
        if (types)
            memcpy(&ty, (const char *)types->v.arr.data + 4 * i, 4);
        switch (ty) {
        case 1: t->attr[i] = TOK_ATTR_NORMAL; break;
        case 2: t->attr[i] = TOK_ATTR_UNKNOWN; break;
        case 3: t->attr[i] = TOK_ATTR_CONTROL; break;
        case 4: t->attr[i] = TOK_ATTR_USER; break;
        case 5: t->attr[i] = TOK_ATTR_UNUSED; break;
        case 6: t->attr[i] = TOK_ATTR_BYTE; break;
        default: t->attr[i] = 0; break;
        }
    }
    return CAIRN_OK;
}

cairn_status tokenizer_load(const gguf_file *g, cairn_tokenizer **out)
{
    if (!g || !out)
        return cairn_fail(CAIRN_ERR_INVALID, "tokenizer_load: NULL argument");
    *out = NULL;
    gguf_str model;
    if (gguf_get_str(g, "tokenizer.ggml.model", &model) != CAIRN_OK)
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "tokenizer: GGUF has no tokenizer.ggml.model");
    tok_kind kind;
    if (str_is(model, "llama"))
        kind = TOK_SPM;
    else if (str_is(model, "gpt2"))
        kind = TOK_BPE;
    else if (str_is(model, "bert"))
        kind = TOK_WPM;
    else
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "tokenizer: model type \"%.*s\" is not supported "
                          "(llama, gpt2 and bert are)", (int)CAIRN_MIN(model.len, 64), model.ptr);

    cairn_tokenizer *t = cairn_calloc(1, sizeof *t);
    if (!t)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    gguf_str pre;
    if (gguf_get_str(g, "tokenizer.ggml.pre", &pre) == CAIRN_OK) {
        size_t n = CAIRN_MIN(pre.len, sizeof t->pre_name - 1);
        memcpy(t->pre_name, pre.ptr, n);
        t->pre_name[n] = 0;
    }
    cairn_clear_error();

    cairn_status st = load_vocab(t, g);
    if (st != CAIRN_OK)
        goto fail;

    /* model defaults (llama.cpp's), then the pre-tokenizer's, then the file's keys */
    t->bos = t->eos = t->unk = t->sep = t->pad = t->cls = t->mask = t->eot = t->eom = -1;
    switch (kind) {
    case TOK_SPM:
        t->bos = 1; t->eos = 2; t->unk = 0;
        t->add_bos = true; t->add_space_prefix = true;
        break;
    case TOK_BPE:
        t->bos = 11; t->eos = 11;
        break;
    case TOK_WPM:
        t->bos = 101; t->unk = 100; t->sep = 102; t->pad = 0; t->mask = 103;
        t->add_bos = true; t->add_sep = true;
        break;
    }
    int32_t *ids[] = { &t->bos, &t->eos, &t->unk, &t->sep, &t->pad, &t->mask };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(ids); i++)
        if (*ids[i] >= t->n_vocab)
            *ids[i] = -1;
    if (kind == TOK_BPE) {
        st = tok_pre_init(t, t->pre_name);
        if (st != CAIRN_OK)
            goto fail;
        st = tok_bpe_init(t, g);
        if (st != CAIRN_OK)
            goto fail;
    }
    read_id(g, t, "tokenizer.ggml.bos_token_id", &t->bos);
    read_id(g, t, "tokenizer.ggml.eos_token_id", &t->eos);
    read_id(g, t, "tokenizer.ggml.eot_token_id", &t->eot);
    read_id(g, t, "tokenizer.ggml.eom_token_id", &t->eom);
    read_id(g, t, "tokenizer.ggml.unknown_token_id", &t->unk);
    read_id(g, t, "tokenizer.ggml.seperator_token_id", &t->sep);
    read_id(g, t, "tokenizer.ggml.padding_token_id", &t->pad);
    read_id(g, t, "tokenizer.ggml.mask_token_id", &t->mask);
    /* BERT's [CLS] plays BOS's part; older files only name one of them */
    t->cls = t->bos;
    read_id(g, t, "tokenizer.ggml.cls_token_id", &t->cls);
    if (kind == TOK_WPM)
        t->bos = t->cls;
    read_bool(g, "tokenizer.ggml.add_bos_token", &t->add_bos);
    read_bool(g, "tokenizer.ggml.add_eos_token", &t->add_eos);
    read_bool(g, "tokenizer.ggml.add_sep_token", &t->add_sep);
    read_bool(g, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix);

    for (int b = 0; b < 256; b++) {
        char tmp[8];
        snprintf(tmp, sizeof tmp, "<0x%02X>", b);
        int32_t id = tok_lookup(t, tmp, 6);
        if (id < 0 || id >= t->n_vocab) {
            /* llama.cpp falls back to the byte itself as a one-character token */
            char c = (char)b;
            id = tok_lookup(t, &c, 1);
        }
        t->byte_tok[b] = id < t->n_vocab ? id : -1;
    }

    if (kind == TOK_SPM)
        t->spm_split = tok_spm_splittable(t);
    if (kind == TOK_BPE || t->spm_split) {
        st = tok_cache_new(&t->cache);
        if (st != CAIRN_OK)
            goto fail;
    }
    st = detect_special(t, g);
    if (st == CAIRN_OK)
        st = build_specials(t, g);
    if (st != CAIRN_OK)
        goto fail;
    *out = t;
    return CAIRN_OK;
fail:
    tokenizer_free(t);
    return st;
}

void tokenizer_free(cairn_tokenizer *t)
{
    if (!t)
        return;
    tok_bpe_free(t);
    tok_cache_free(t->cache);
    cairn_free(t->blob);
    cairn_free(t->off);
    cairn_free(t->score);
    cairn_free(t->attr);
    cairn_free(t->map);
    cairn_free(t->special);
    cairn_free(t->sp_bucket);
    cairn_free(t->sp_items);
    cairn_free(t->eog);
    cairn_free(t);
}

