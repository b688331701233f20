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
        sy[ns] = (spm_sym){ ns - 1, -1, (uint32_t)i, (uint32_t)n };
        if (ns > 0)
            sy[ns - 1].next = ns;
        ns++;
        i += n;
    }
    for (int32_t i = 1; i < ns; i++)
        if ((st = try_pair(t, txt, sy, i - 1, i, &h)) != CAIRN_OK)
            goto done;

    tok_heap_ent e;
    while (tok_heap_pop(&h, &e)) {
        spm_sym *l = &sy[e.left], *r = &sy[e.right];
        /* stale: one side already merged elsewhere */
        if (l->n == 0 || r->n == 0 || l->n + r->n != e.a)
            continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = e.left;
        if ((st = try_pair(t, txt, sy, l->prev, e.left, &h)) != CAIRN_OK ||
            (st = try_pair(t, txt, sy, e.left, l->next, &h)) != CAIRN_OK)
            goto done;
    }

    for (int32_t i = 0; i >= 0 && i < ns; i = sy[i].next) {
        const char *s = txt + sy[i].start;
        int32_t id = tok_lookup(t, s, sy[i].n);
        if (id >= 0 && id < t->n_vocab)
            st = tok_ids_push(out, id);
        else
            st = emit_bytes(t, s, sy[i].n, out);
        if (st != CAIRN_OK)
            goto done;
    }
done:
    cairn_free(txt);
    cairn_free(sy);
    cairn_free(h.e);
    return st;
}
