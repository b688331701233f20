/*
 * tok_spm.c — SentencePiece-style BPE over token scores ("llama" vocabularies).
 *
 * The text (with the dummy-prefix space when asked) has every ' ' replaced by
 * U+2581 and is split into UTF-8 characters; then, repeatedly, the adjacent
 * pair whose concatenation is a token with the highest score is merged
 * (ties: leftmost first). Symbols that are not tokens at the end are emitted
 * as byte tokens <0xXX>. This is the reference's exact procedure, run with a
 * binary heap and a linked list of symbols: O(n log n) in the text length.
 */
#include "tokenizer/tok_internal.h"

#include <string.h>

typedef struct spm_sym {
    int32_t prev, next;
    uint32_t start, n;   /* bytes of the escaped text; n == 0: merged away */
} spm_sym;

/* Order-preserving map of a float to an integer key where a higher score
 * sorts first. */
static inline int64_t score_key(float s)
{
    uint32_t u;
    memcpy(&u, &s, 4);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return -(int64_t)u;
}

static cairn_status try_pair(const cairn_tokenizer *t, const char *txt, const spm_sym *sy, int32_t l, int32_t r,
                             tok_heap *h)
{
    if (l < 0 || r < 0)
        return CAIRN_OK;
    uint32_t n = sy[l].n + sy[r].n;
    int32_t id = tok_lookup(t, txt + sy[l].start, n);
    if (id < 0 || id >= t->n_vocab)
        return CAIRN_OK;
    return tok_heap_push(h, (tok_heap_ent){ .key = score_key(t->score[id]), .left = l, .right = r, .a = n });
}

static cairn_status emit_bytes(const cairn_tokenizer *t, const char *s, size_t n, tok_ids *out)
{
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_tok[(uint8_t)s[i]];
        if (id < 0)
            id = t->unk;
        if (id >= 0)
            CAIRN_TRY(tok_ids_push(out, id));
    }
    return CAIRN_OK;
}

static inline bool is_space(const char *txt, const spm_sym *s)
{
    return s->n == 3 && memcmp(txt + s->start, "\xe2\x96\x81", 3) == 0;
}

/* Run the merges over symbols [a, b) and emit their tokens. */
static cairn_status merge_segment_run(const cairn_tokenizer *t, const char *txt, spm_sym *sy, int32_t a, int32_t b,
                                      tok_heap *h, tok_ids *out)
{
    sy[a].prev = -1;
    sy[b - 1].next = -1;
    h->n = 0;
    for (int32_t i = a + 1; i < b; i++)
        CAIRN_TRY(try_pair(t, txt, sy, i - 1, i, h));
    tok_heap_ent e;
    while (tok_heap_pop(h, &e)) {
        spm_sym *l = &sy[e.left], *r = &sy[e.right];
        /* stale: one side already merged elsewhere */
        if (l->n == 0 || r->n == 0 || l->n + r->n != e.a)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = e.left;
        CAIRN_TRY(try_pair(t, txt, sy, l->prev, e.left, h));
        CAIRN_TRY(try_pair(t, txt, sy, e.left, l->next, h));
    }
    for (int32_t i = a; i >= 0; i = sy[i].next) {
        const char *s = txt + sy[i].start;
        int32_t id = tok_lookup(t, s, sy[i].n);
        if (id >= 0 && id < t->n_vocab)
            CAIRN_TRY(tok_ids_push(out, id));
        else
            CAIRN_TRY(emit_bytes(t, s, sy[i].n, out));
    }
    return CAIRN_OK;
}

/* The ids of a segment depend only on its bytes: look them up first. */
static cairn_status merge_segment(const cairn_tokenizer *t, const char *txt, spm_sym *sy, int32_t a, int32_t b,
                                  tok_heap *h, tok_ids *out)
{
    const char *w = txt + sy[a].start;
    size_t n = sy[b - 1].start + sy[b - 1].n - sy[a].start;
    if (!t->cache || n > TOK_CACHE_WORD || b - a < 2)
        return merge_segment_run(t, txt, sy, a, b, h, out);
    uint64_t hv = cairn_hash64(w, n);
    int32_t ids[TOK_CACHE_IDS];
    size_t k;
    if (tok_cache_get(t->cache, w, n, hv, ids, &k)) {
        for (size_t i = 0; i < k; i++)
            CAIRN_TRY(tok_ids_push(out, ids[i]));
        return CAIRN_OK;
    }
    size_t mark = out->n;
    CAIRN_TRY(merge_segment_run(t, txt, sy, a, b, h, out));
    if (out->n > mark)
        tok_cache_put(t->cache, w, n, hv, out->v + mark, out->n - mark);
    return CAIRN_OK;
}

/* Whether merging may be done per segment that starts at a U+2581 following
 * a non-U+2581 symbol: true when no vocabulary token could ever span such a
 * boundary, i.e. every token is valid UTF-8 and has U+2581 past its start
 * only right after another U+2581 (true for the LLaMA, Phi-3 and Baichuan
 * vocabularies). Merges only ever form vocabulary tokens, so segments never
 * interact and the result equals merging the whole text at once; the heap
 * stays small, which makes long texts several times faster. */
bool tok_spm_splittable(const cairn_tokenizer *t)
{
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t n;
        const char *s = tok_str(t, (uint32_t)id, &n);
        if (!tok_utf8_valid(s, n))
            return false;
        for (size_t p = 1; p + 3 <= n; p++)
            if (memcmp(s + p, "\xe2\x96\x81", 3) == 0 && (p < 3 || memcmp(s + p - 3, "\xe2\x96\x81", 3) != 0))
                return false;
    }
    return true;
}

cairn_status tok_spm_encode(const cairn_tokenizer *t, const char *text, size_t len, bool prefix_space,
                            tok_ids *out)
{
    /* escape: ' ' -> U+2581 (3 bytes) */
    size_t nsp = prefix_space ? 1 : 0;
    for (size_t i = 0; i < len; i++)
        nsp += text[i] == ' ';
    size_t elen = len + (prefix_space ? 1 : 0) + 2 * nsp;
    if (elen > INT32_MAX / 2)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "tokenizer: text too long");
    if (elen == 0)
        return CAIRN_OK;
    char *txt = cairn_malloc(elen);
    spm_sym *sy = cairn_calloc(elen, sizeof *sy);
    tok_heap h = { 0 };
    cairn_status st = CAIRN_OK;
    if (!txt || !sy) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t k = 0;
    if (prefix_space) {
        memcpy(txt, "\xe2\x96\x81", 3);
        k = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(txt + k, "\xe2\x96\x81", 3);
            k += 3;
        } else {
            txt[k++] = text[i];
        }
    }

    /* one symbol per UTF-8 character (by lead byte, as the reference) */
    int32_t ns = 0;
    for (size_t i = 0; i < elen;) {
        size_t n = CAIRN_MIN((size_t)tok_utf8_len((uint8_t)txt[i]), elen - i);
        sy[ns] = (spm_sym){ ns - 1, ns + 1, (uint32_t)i, (uint32_t)n };
        ns++;
        i += n;
    }
    /* Merge segment by segment (see tok_spm_splittable): each one starts at
     * a U+2581 that follows something else. */
    int32_t a = 0;
    for (int32_t i = 1; i <= ns && st == CAIRN_OK; i++) {
        if (i < ns && !(t->spm_split && is_space(txt, &sy[i]) && !is_space(txt, &sy[i - 1])))
            continue;
        st = merge_segment(t, txt, sy, a, i, &h, out);
        a = i;
    }
done:
    cairn_free(txt);
    cairn_free(sy);
    cairn_free(h.e);
    return st;
}
