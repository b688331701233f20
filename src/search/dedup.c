/*
 * dedup.c — collapsing duplicate texts in a result list (search.h,
 * search_collapse): many copies of one text (the GPL in every package's
 * copyright file, a README vendored twice) would otherwise fill the list.
 *
 * Two chunks are the same text when, after normalisation (ASCII letters and
 * digits lower-cased, every other ASCII byte a word break, other bytes kept
 * as word characters), their word sequences are identical (XXH3 of the
 * normalised text), or nearly so: the sets of their word 3-shingles have a
 * Jaccard similarity of at least 0.8 (both at least 12 words). A copy with
 * a different header line (its chunk cut elsewhere) or one changed word in
 * 40 stays above it; a 64-bit simhash was tried first and missed both (on
 * texts this short one changed word moves it by more than 3 bits).
 * The first (best-ranked) of a set stays; it counts the others and keeps
 * their paths (distinct, at most SEARCH_MAX_DUP_PATHS).
 * Cost: one pass over each result's text and a sort of its shingle hashes
 * (at most MAX_SHINGLES), then O(n x kept) comparisons, each a merge of two
 * sorted arrays after a length check; n is at most k + 300.
 */
#include "search/search.h"
#include <stdlib.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define MIN_WORDS_NEAR 12
#define MAX_SHINGLES 4096
#define MIN_JACCARD 0.8

typedef struct fp {
    uint64_t exact;
    size_t words;
    uint64_t *sh;       /* sorted distinct shingle hashes */
    size_t n_sh;
} fp;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool word_byte(unsigned char c) { return c >= 0x80 || (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z'); }

static cairn_status fingerprint(const char *text, fp *out)
{
    size_t n = strlen(text);
    char *norm = cairn_malloc(n + 1);
    if (!norm)
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    /* normalised text and the word starts */
    size_t o = 0, words = 0;
    uint64_t w3[3] = {0};
    out->sh = cairn_malloc(MAX_SHINGLES * sizeof *out->sh);
    out->n_sh = 0;
    if (!out->sh) {
        cairn_free(norm);
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    }
    size_t i = 0;
    while (i < n) {
        while (i < n && !word_byte((unsigned char)text[i]))
            i++;
        if (i >= n)
            break;
        size_t s = o;
        if (o)
            norm[o++] = ' ';
        s = o;
        while (i < n && word_byte((unsigned char)text[i])) {
            unsigned char c = (unsigned char)text[i++];
            norm[o++] = (char)(c < 0x80 ? (c | ((c >= 'A' && c <= 'Z') ? 32 : 0)) : c);
        }
        w3[0] = w3[1];
        w3[1] = w3[2];
        w3[2] = XXH3_64bits(norm + s, o - s);
        words++;
        if (words >= 3 && out->n_sh < MAX_SHINGLES)
            out->sh[out->n_sh++] = XXH3_64bits(w3, sizeof w3);
    }
    out->exact = XXH3_64bits(norm, o);
    out->words = words;
    qsort(out->sh, out->n_sh, sizeof *out->sh, cmp_u64);
    size_t u = 0;
    for (size_t k = 0; k < out->n_sh; k++)
        if (!u || out->sh[u - 1] != out->sh[k])
            out->sh[u++] = out->sh[k];
    out->n_sh = u;
    cairn_free(norm);
    return CAIRN_OK;
}

static bool same_text(const fp *a, const fp *b)
{
    if (a->exact == b->exact && a->words == b->words)
        return true;
    if (a->words < MIN_WORDS_NEAR || b->words < MIN_WORDS_NEAR)
        return false;
    size_t lo = a->n_sh < b->n_sh ? a->n_sh : b->n_sh, hi = a->n_sh ^ b->n_sh ^ lo;
    if (!hi || (double)lo < MIN_JACCARD * (double)hi)
        return false;   /* J <= lo / hi */
    size_t i = 0, j = 0, common = 0;
    while (i < a->n_sh && j < b->n_sh) {
        if (a->sh[i] == b->sh[j]) {
            common++;
            i++;
            j++;
        } else if (a->sh[i] < b->sh[j]) {
            i++;
        } else {
            j++;
        }
    }
    return (double)common >= MIN_JACCARD * (double)(a->n_sh + b->n_sh - common);
}

static cairn_status add_path(search_result *keep, const char *path)
{
    for (size_t i = 0; i < keep->n_dup_paths; i++)
        if (!strcmp(keep->dup_paths[i], path))
            return CAIRN_OK;
    if (!strcmp(keep->hit.path, path) || keep->n_dup_paths >= SEARCH_MAX_DUP_PATHS)
        return CAIRN_OK;
    char **np = cairn_reallocarray(keep->dup_paths, keep->n_dup_paths + 1, sizeof *np);
    if (!np)
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    keep->dup_paths = np;
    if (!(np[keep->n_dup_paths] = cairn_strdup(path)))
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    keep->n_dup_paths++;
    return CAIRN_OK;
}

static void result_free(search_result *r)
{
    store_hit_free(&r->hit);
    cairn_free(r->snippet);
    cairn_free(r->hl);
    for (size_t i = 0; i < r->n_dup_paths; i++)
        cairn_free(r->dup_paths[i]);
    cairn_free(r->dup_paths);
    memset(r, 0, sizeof *r);
}

cairn_status search_collapse(search_results *res, size_t k)
{
    if (res->n == 0)
        return CAIRN_OK;
    fp *f = cairn_calloc(res->n, sizeof *f);
    if (!f)
        return cairn_fail(CAIRN_ERR_NOMEM, "search: out of memory");
    cairn_status st = CAIRN_OK;
    for (size_t i = 0; i < res->n && st == CAIRN_OK; i++)
        st = fingerprint(res->r[i].hit.text ? res->r[i].hit.text : "", &f[i]);
    size_t kept = 0;
    for (size_t i = 0; i < res->n && st == CAIRN_OK; i++) {
        size_t j = 0;
        while (j < kept && !same_text(&f[j], &f[i]))
            j++;
        if (j < kept) {
            res->r[j].n_dups++;
            st = add_path(&res->r[j], res->r[i].hit.path);
            result_free(&res->r[i]);
            continue;
        }
        if (kept != i) {
            res->r[kept] = res->r[i];
            fp t = f[kept];   /* swap: every shingle array stays owned once */
            f[kept] = f[i];
            f[i] = t;
            memset(&res->r[i], 0, sizeof res->r[i]);
        }
        kept++;
    }
    for (size_t i = 0; i < res->n; i++)
        cairn_free(f[i].sh);
    if (st != CAIRN_OK) {
        cairn_free(f);
        return st;
    }
    /* the list was fetched longer than k so that k remain after collapsing */
    for (size_t i = k; i < kept; i++)
        result_free(&res->r[i]);
    res->n = kept < k ? kept : k;
    cairn_free(f);
    return CAIRN_OK;
}
