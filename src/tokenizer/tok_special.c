/*
 * tok_special.c — splitting special tokens (control, user-defined, unknown)
 * out of the text before the model's algorithm sees it.
 */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct occ {
    uint32_t rank;       /* index into t->special: lower = longer = first */
    size_t pos;
} occ;

static int cmp_occ(const void *a, const void *b)
{
    const occ *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int cmp_frag(const void *a, const void *b)
{
    const tok_frag *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static inline bool special_active(const cairn_tokenizer *t, uint32_t rank, bool parse_special)
{
    /* Without parse_special only user-defined tokens are split out (as the
     * reference does for e.g. GPT-NeoX's runs of spaces). */
    uint8_t a = t->attr[t->special[rank]];
    return parse_special || !(a & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN));
}

static inline bool bit_get(const uint64_t *bm, size_t i) { return (bm[i >> 6] >> (i & 63)) & 1; }
static inline void bit_set(uint64_t *bm, size_t i) { bm[i >> 6] |= (uint64_t)1 << (i & 63); }
static bool bits_clear(const uint64_t *bm, size_t a, size_t b) /* [a, b) all zero */
{
    while (a < b) {
        if ((a & 63) == 0 && b - a >= 64) {
            if (bm[a >> 6])
                return false;
            a += 64;
        } else {
            if (bit_get(bm, a))
                return false;
            a++;
        }
    }
    return true;
}

static inline bool c_isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Split text into raw fragments and special tokens. Equivalent to trying the
 * special tokens longest first, each at its leftmost non-overlapping
 * occurrences inside the still-raw text, with lstrip/rstrip eating adjacent
 * whitespace — but found in one scan of the text. */
cairn_status tok_split_specials(const cairn_tokenizer *t, const char *text, size_t len, bool parse_special,
                               tok_frag **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    occ *oc = NULL;
    size_t noc = 0, coc = 0;
    uint64_t *bm = NULL;
    tok_frag *fr = NULL;
    cairn_status st = CAIRN_OK;

    if (len && t->n_special && (parse_special || t->any_user_special)) {
        for (size_t i = 0; i < len; i++) {
            uint8_t b0 = (uint8_t)text[i];
            uint32_t r1 = UINT32_MAX;
            if (t->sp_single[b0] >= 0)
                r1 = (uint32_t)t->sp_single[b0];
            uint32_t lo = 0, hi = 0;
            if (i + 1 < len) {
                uint32_t k = (uint32_t)b0 << 8 | (uint8_t)text[i + 1];
                lo = t->sp_bucket[k];
                hi = t->sp_bucket[k + 1];
            }
            for (uint32_t j = lo; j <= hi; j++) {
                uint32_t r;
                if (j < hi) {
                    r = t->sp_items[j];
                    size_t sl;
                    const char *s = tok_str(t, (uint32_t)t->special[r], &sl);
                    if (sl > len - i || memcmp(text + i, s, sl) != 0)
                        continue;
                } else {
                    if (r1 == UINT32_MAX)
                        break;
                    r = r1;
                }
                if (!special_active(t, r, parse_special))
                    continue;
                if (noc == coc) {
                    size_t nc = coc ? coc * 2 : 64;
                    occ *p = cairn_reallocarray(oc, nc, sizeof *p);
                    if (!p) {
                        st = cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
                        goto done;
                    }
                    oc = p;
                    coc = nc;
                }
                oc[noc++] = (occ){ r, i };
            }
        }
    }

    if (noc == 0) {
        if (len) {
            fr = cairn_malloc(sizeof *fr);
            if (!fr) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
                goto done;
            }
            fr[0] = (tok_frag){ -1, 0, len };
            *nout = 1;
        }
        *out = fr;
        fr = NULL;
        goto done;
    }

    qsort(oc, noc, sizeof *oc, cmp_occ);
    bm = cairn_calloc(len / 64 + 1, sizeof *bm);
    /* at most one token per occurrence + raw runs between them */
    fr = cairn_calloc(2 * noc + 1, sizeof *fr);
    if (!bm || !fr) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    size_t nf = 0;
    for (size_t k = 0; k < noc; k++) {
        int32_t id = t->special[oc[k].rank];
        size_t sl = t->off[id + 1] - t->off[id];
        size_t p = oc[k].pos;
        if (!bits_clear(bm, p, p + sl))
            continue;
        for (size_t i = p; i < p + sl; i++)
            bit_set(bm, i);
        fr[nf++] = (tok_frag){ id, p, sl };
        if (t->attr[id] & TOK_ATTR_LSTRIP)
            for (size_t i = p; i > 0 && !bit_get(bm, i - 1) && c_isspace(text[i - 1]); i--)
                bit_set(bm, i - 1);
        if (t->attr[id] & TOK_ATTR_RSTRIP)
            for (size_t i = p + sl; i < len && !bit_get(bm, i) && c_isspace(text[i]); i++)
                bit_set(bm, i);
    }
    /* raw runs = maximal unclaimed spans */
    size_t ntok = nf;
    for (size_t i = 0; i < len;) {
        if (bit_get(bm, i)) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < len && !bit_get(bm, j))
            j++;
        fr[nf++] = (tok_frag){ -1, i, j - i };
        i = j;
    }
    (void)ntok;
    qsort(fr, nf, sizeof *fr, cmp_frag);
    *out = fr;
    *nout = nf;
    fr = NULL;
done:
    cairn_free(oc);
    cairn_free(bm);
    cairn_free(fr);
    return st;
}

