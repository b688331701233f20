/*
 * tok_bpe.c — byte-level BPE ("gpt2" vocabularies: GPT-2, Llama 3, Qwen2,
 * DeepSeek, Falcon, StarCoder, ...).
 *
 * Vocabulary strings are written in GPT-2's byte-to-unicode alphabet: every
 * byte maps to one printable code point (printable Latin-1 bytes to
 * themselves, the other 68 to U+0100..U+0143). Each pre-tokenized word thus
 * starts as one symbol per byte. Merges ("left right", rank = line number)
 * are applied lowest rank first (ties: leftmost), with a heap and a linked
 * list of symbols: O(n log n) per word.
 *
 * Symbols are identified by string index (tok_internal.h), so a merge is a
 * hash lookup of the pair (left, right) -> (rank, merged), never a string
 * concatenation. A final symbol that is no vocabulary token is emitted as
 * the tokens of its single mapped bytes, where those exist (the reference's
 * rule).
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

void tok_bpe_free_regex(cairn_tokenizer *t);

static void build_byte_map(cairn_tokenizer *t)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        t->byte_cp[b] = printable ? (uint16_t)b : (uint16_t)(256 + n++);
    }
    for (int c = 0; c < 324; c++)
        t->cp_byte[c] = -1;
    for (int b = 0; b < 256; b++)
        t->cp_byte[t->byte_cp[b]] = (int16_t)b;
}

static inline uint32_t pair_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (uint32_t)k;
}

static bool merge_find(const cairn_tokenizer *t, uint32_t l, uint32_t r, uint32_t *rank, uint32_t *res)
{
    uint64_t key = ((uint64_t)l << 32 | r) + 1;
    uint32_t h = pair_hash(key) & t->mmask;
    for (;;) {
        const struct tok_merge *m = &t->merge[h];
        if (m->key == 0)
            return false;
        if (m->key == key) {
            *rank = m->rank;
            *res = m->res;
            return true;
        }
        h = (h + 1) & t->mmask;
    }
}

static void raw_find_joiners(cairn_tokenizer *t);

cairn_status tok_bpe_init(cairn_tokenizer *t, const gguf_file *g)
{
    build_byte_map(t);
    const gguf_kv *kv = gguf_kv_find(g, "tokenizer.ggml.merges");
    if (!kv)
        return cairn_fail(CAIRN_ERR_NOT_FOUND, "tokenizer: gpt2 vocabulary without tokenizer.ggml.merges");
    if (kv->type != GGUF_TYPE_ARRAY || kv->v.arr.type != GGUF_TYPE_STRING)
        return cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: tokenizer.ggml.merges is not a string array");
    uint64_t nm = kv->v.arr.count;
    if (nm > (1u << 24))
        return cairn_fail(CAIRN_ERR_CORRUPT, "tokenizer: %llu merges is too many", (unsigned long long)nm);
    uint64_t cap = 1024;
    while (cap < nm * 2)
        cap *= 2;
    t->merge = cairn_calloc((size_t)cap, sizeof *t->merge);
    if (!t->merge)
        return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory for %llu merges", (unsigned long long)nm);
    t->mmask = (uint32_t)(cap - 1);

    char *tmp = NULL;
    size_t tmp_cap = 0;
    cairn_status st = CAIRN_OK;
    for (uint64_t i = 0; i < nm; i++) {
        gguf_str m = gguf_arr_str(kv, i);
        /* split at the first space after the first byte (as the reference) */
        const char *sp = m.len > 1 ? memchr(m.ptr + 1, ' ', m.len - 1) : NULL;
        if (!sp)
            continue; /* the reference files such a line under ("", ""): it can never apply */
        size_t ll = (size_t)(sp - m.ptr), rl = m.len - ll - 1;
        int32_t li, ri, mi;
        if ((st = tok_intern(t, m.ptr, ll, &li)) != CAIRN_OK || (st = tok_intern(t, sp + 1, rl, &ri)) != CAIRN_OK)
            break;
        if (ll + rl > tmp_cap) {
            tmp_cap = (ll + rl) * 2;
            char *p = cairn_realloc(tmp, tmp_cap);
            if (!p) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
                break;
            }
            tmp = p;
        }
        memcpy(tmp, m.ptr, ll);
        memcpy(tmp + ll, sp + 1, rl);
        if ((st = tok_intern(t, tmp, ll + rl, &mi)) != CAIRN_OK)
            break;
        uint64_t key = ((uint64_t)(uint32_t)li << 32 | (uint32_t)ri) + 1;
        uint32_t h = pair_hash(key) & t->mmask;
        while (t->merge[h].key && t->merge[h].key != key)
            h = (h + 1) & t->mmask;
        if (t->merge[h].key == key)
            continue; /* first occurrence keeps its rank */
        t->merge[h] = (struct tok_merge){ key, (uint32_t)i, (uint32_t)mi };
    }
    cairn_free(tmp);
    if (st != CAIRN_OK)
        return st;

    if (t->bpe_raw)
        raw_find_joiners(t);
    for (int b = 0; b < 256; b++) {
        char u[4];
        int k = tok_utf8_put(t->byte_cp[b], u);
        t->byte_sym[b] = tok_lookup(t, u, (size_t)k);
        for (int j = 0; j < 2; j++) {
            int32_t id = j < k ? tok_lookup(t, u + j, 1) : -1;
            t->byte_fb[b][j] = id < t->n_vocab ? id : -1;
        }
    }
    return CAIRN_OK;
}

/* Raw-text BPE (Gemma 4) pre-splits only at newlines, so a "word" is a whole
 * line and merging it is slow. A merge can only ever join the character
 * before a U+2581 with that U+2581 if some merge operand or result contains
 * that pair; call such characters joiners. Cutting each word before every
 * U+2581 that follows a character other than U+2581 or a joiner therefore
 * changes nothing (the pieces never interact) and makes the pieces word-sized
 * (and cacheable). The Gemma 3/4 vocabulary has one joiner ('>', in ">▁</"). */
static void raw_find_joiners(cairn_tokenizer *t)
{
    t->raw_split = true;
    t->n_raw_joiners = 0;
    for (uint32_t i = 0; i < t->n_str && t->raw_split; i++) {
        size_t n;
        const char *s = tok_str(t, i, &n);
        for (size_t p = 1; p + 3 <= n; p++) {
            if (memcmp(s + p, "\xe2\x96\x81", 3) != 0)
                continue;
            size_t q = p - 1;
            while (q > 0 && ((uint8_t)s[q] & 0xC0) == 0x80)
                q--;
            size_t k = q;
            uint32_t cp = tok_utf8_next(s, p, &k);
            if (cp == 0x2581)
                continue;
            bool known = false;
            for (uint32_t j = 0; j < t->n_raw_joiners; j++)
                known |= t->raw_joiners[j] == cp;
            if (known)
                continue;
            if (t->n_raw_joiners == CAIRN_ARRAY_LEN(t->raw_joiners))
                t->raw_split = false; /* too many: merge whole words */
            else
                t->raw_joiners[t->n_raw_joiners++] = cp;
        }
    }
}

void tok_bpe_free(cairn_tokenizer *t)
{
    tok_bpe_free_regex(t);
    cairn_free(t->merge);
    t->merge = NULL;
}

typedef struct bpe_sym {
    int32_t prev, next;
    int32_t id;          /* string index, -1 if the text is no string we know */
    uint32_t start, n;   /* bytes of the word; n == 0: merged away */
} bpe_sym;

typedef struct bpe_ctx {
    tok_ids *out;
    bpe_sym *sy;
    size_t sy_cap;
    tok_heap h;
    cairn_buf mapped;
} bpe_ctx;

static cairn_status emit_symbol(const cairn_tokenizer *t, const char *w, const bpe_sym *s, tok_ids *out)
{
    if (s->id >= 0 && s->id < t->n_vocab)
        return tok_ids_push(out, s->id);
    if (t->bpe_raw) { /* raw-text BPE: byte tokens <0xXX> for the bytes */
        for (uint32_t i = 0; i < s->n; i++) {
            int32_t id = t->byte_tok[(uint8_t)w[s->start + i]];
            if (id < 0)
                id = t->unk;
            if (id >= 0)
                CAIRN_TRY(tok_ids_push(out, id));
        }
        return CAIRN_OK;
    }
    for (uint32_t i = 0; i < s->n; i++) {
        uint8_t b = (uint8_t)w[s->start + i];
        for (int j = 0; j < 2; j++)
            if (t->byte_fb[b][j] >= 0)
                CAIRN_TRY(tok_ids_push(out, t->byte_fb[b][j]));
    }
    return CAIRN_OK;
}

static cairn_status add_pair(const cairn_tokenizer *t, const bpe_sym *sy, int32_t l, int32_t r, tok_heap *h)
{
    if (l < 0 || r < 0 || sy[l].id < 0 || sy[r].id < 0)
        return CAIRN_OK;
    uint32_t rank, res;
    if (!merge_find(t, (uint32_t)sy[l].id, (uint32_t)sy[r].id, &rank, &res))
        return CAIRN_OK;
    return tok_heap_push(h, (tok_heap_ent){ .key = rank, .left = l, .right = r,
                                            .a = (uint32_t)sy[l].id, .b = (uint32_t)sy[r].id });
}

static cairn_status bpe_word_merge(const cairn_tokenizer *t, const char *w, size_t n, bpe_ctx *c)
{
    if (t->ignore_merges) {
        /* a word that is a token as a whole is taken as is */
        c->mapped.len = 0;
        for (size_t i = 0; i < n; i++) {
            char u[4];
            int k = tok_utf8_put(t->byte_cp[(uint8_t)w[i]], u);
            CAIRN_TRY(cairn_buf_append(&c->mapped, u, (size_t)k));
        }
        int32_t id = tok_lookup(t, c->mapped.data, c->mapped.len);
        if (id >= 0 && id < t->n_vocab)
            return tok_ids_push(c->out, id);
    }
    if (n > c->sy_cap) {
        size_t ncap = CAIRN_MAX(n, 2 * c->sy_cap);
        bpe_sym *p = cairn_reallocarray(c->sy, ncap, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
        c->sy = p;
        c->sy_cap = ncap;
    }
    bpe_sym *sy = c->sy;
    int32_t ns = 0;
    if (t->bpe_raw) {
        /* one symbol per UTF-8 character of the (escaped) text */
        for (size_t i = 0; i < n;) {
            size_t k = CAIRN_MIN((size_t)tok_utf8_len((uint8_t)w[i]), n - i);
            sy[ns] = (bpe_sym){ ns - 1, -1, tok_lookup(t, w + i, k), (uint32_t)i, (uint32_t)k };
            if (ns > 0)
                sy[ns - 1].next = ns;
            ns++;
            i += k;
        }
    } else {
        ns = (int32_t)n;
        for (int32_t i = 0; i < ns; i++)
            sy[i] = (bpe_sym){ i - 1, i + 1 < ns ? i + 1 : -1, t->byte_sym[(uint8_t)w[i]], (uint32_t)i, 1 };
    }
    c->h.n = 0;
    for (int32_t i = 1; i < ns; i++)
        CAIRN_TRY(add_pair(t, sy, i - 1, i, &c->h));
    tok_heap_ent e;
    while (tok_heap_pop(&c->h, &e)) {
        bpe_sym *l = &sy[e.left], *r = &sy[e.right];
        if (l->n == 0 || r->n == 0 || l->next != e.right || (uint32_t)l->id != e.a || (uint32_t)r->id != e.b)
            continue; /* stale */
        uint32_t rank, res;
        merge_find(t, e.a, e.b, &rank, &res);
        l->id = (int32_t)res;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = e.left;
        CAIRN_TRY(add_pair(t, sy, l->prev, e.left, &c->h));
        CAIRN_TRY(add_pair(t, sy, e.left, l->next, &c->h));
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next)
        CAIRN_TRY(emit_symbol(t, w, &sy[i], c->out));
    return CAIRN_OK;
}

static cairn_status bpe_piece(const cairn_tokenizer *t, const char *w, size_t n, bpe_ctx *c)
{
    if (n == 0)
        return CAIRN_OK;
    if (n == 1) {
        bpe_sym s = { -1, -1, t->bpe_raw ? tok_lookup(t, w, 1) : t->byte_sym[(uint8_t)w[0]], 0, 1 };
        return emit_symbol(t, w, &s, c->out);
    }
    if (!t->cache || n > TOK_CACHE_WORD)
        return bpe_word_merge(t, w, n, c);
    uint64_t h = cairn_hash64(w, n);
    int32_t ids[TOK_CACHE_IDS];
    size_t k;
    if (tok_cache_get(t->cache, w, n, h, ids, &k)) {
        for (size_t i = 0; i < k; i++)
            CAIRN_TRY(tok_ids_push(c->out, ids[i]));
        return CAIRN_OK;
    }
    size_t mark = c->out->n;
    CAIRN_TRY(bpe_word_merge(t, w, n, c));
    if (c->out->n > mark) /* (nothing to point at otherwise: v may be NULL) */
        tok_cache_put(t->cache, w, n, h, c->out->v + mark, c->out->n - mark);
    return CAIRN_OK;
}

static bool raw_cut_before(const cairn_tokenizer *t, const char *w, size_t i)
{
    if (i == 0 || memcmp(w + i, "\xe2\x96\x81", 3) != 0)
        return false;
    size_t q = i - 1;
    while (q > 0 && ((uint8_t)w[q] & 0xC0) == 0x80)
        q--;
    size_t k = q;
    uint32_t cp = tok_utf8_next(w, i, &k);
    if (cp == 0x2581)
        return false;
    for (uint32_t j = 0; j < t->n_raw_joiners; j++)
        if (t->raw_joiners[j] == cp)
            return false;
    return true;
}

static cairn_status bpe_word(const cairn_tokenizer *t, const char *w, size_t n, void *vctx)
{
    bpe_ctx *c = vctx;
    if (!t->bpe_raw || !t->raw_split)
        return bpe_piece(t, w, n, c);
    size_t a = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (raw_cut_before(t, w, i)) {
            CAIRN_TRY(bpe_piece(t, w + a, i - a, c));
            a = i;
        }
    }
    return bpe_piece(t, w + a, n - a, c);
}

cairn_status tok_bpe_encode(const cairn_tokenizer *t, const char *text, size_t len, tok_ids *out)
{
    bpe_ctx c = { .out = out };
    cairn_buf_init(&c.mapped, 0);
    cairn_buf clean, esc;
    cairn_buf_init(&clean, 0);
    cairn_buf_init(&esc, 0);
    cairn_status st = CAIRN_OK;
    if (!tok_utf8_valid(text, len)) {
        /* invalid bytes become U+FFFD, as the reference decodes them */
        st = tok_utf8_sanitize(text, len, &clean);
        text = clean.data;
        len = clean.len;
    }
    if (st == CAIRN_OK && t->bpe_raw && memchr(text, ' ', len)) {
        /* raw-text BPE (Gemma 4 style): spaces are written U+2581 */
        st = cairn_buf_reserve(&esc, len + 2 * len / 1);
        for (size_t i = 0; i < len && st == CAIRN_OK; i++)
            st = text[i] == ' ' ? cairn_buf_append(&esc, "\xe2\x96\x81", 3) : cairn_buf_putc(&esc, text[i]);
        text = esc.data;
        len = esc.len;
    }
    if (st == CAIRN_OK)
        st = tok_pre_split(t, text, len, bpe_word, &c);
    cairn_buf_free(&clean);
    cairn_buf_free(&esc);
    cairn_buf_free(&c.mapped);
    cairn_free(c.sy);
    cairn_free(c.h.e);
    return st;
}
