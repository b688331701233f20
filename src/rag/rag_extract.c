/*
 * rag_extract.c — extractive answers: the best sentences of the context,
 * each followed by the marker of its passage (see rag.h).
 *
 * A sentence's score, for the query's distinct analyzed terms T with
 * idf(t) from the index (the BM25 formula's):
 *   coverage  = sum of idf over the terms of T in the sentence / sum over T
 *   proximity = (m - 1) / (w - 1) for the smallest window of w words that
 *               holds all m matched terms (m >= 2; 0 otherwise)
 *   score     = (coverage + proximity_weight * proximity * coverage)
 *               * 1 / (1 + rank_decay * passage rank)
 *               * a short-sentence discount (fewer than 6 words)
 * Sentences are split at . ? ! followed by space and a capital, digit or
 * quote (not after one-letter initials and common abbreviations), and at
 * line breaks. Cost: one analyzer pass over the context, O(words x terms).
 */
#include "rag/rag.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_QTERMS 64
#define DEFAULT_RANK_DECAY 0.15
#define DEFAULT_PROXIMITY 0.0     /* measured: 0, 0.1, 0.25, 0.6 give no gain on SQuAD (docs/answers.md) */
#define SHORT_SENTENCE_WORDS 6

typedef struct qterm { char t[TEXT_MAX_TERM + 1]; size_t len; double idf; } qterm;

typedef struct qterms { qterm q[MAX_QTERMS]; size_t n; double idf_sum; } qterms;

static cairn_status add_qterm(void *ctx, const char *term, size_t len, uint32_t pos, size_t start, size_t end)
{
    qterms *qt = ctx;
    if (len > TEXT_MAX_TERM || qt->n == MAX_QTERMS)
        return CAIRN_OK;
    for (size_t i = 0; i < qt->n; i++)
        if (qt->q[i].len == len && !memcmp(qt->q[i].t, term, len))
            return CAIRN_OK;
    memcpy(qt->q[qt->n].t, term, len);
    qt->q[qt->n].t[len] = '\0';
    qt->q[qt->n].len = len;
    qt->n++;
    return CAIRN_OK;
}

/* One sentence being scored: the matched query terms with word positions. */
typedef struct occ { uint32_t pos; uint8_t term; } occ;
typedef struct sent_scan {
    const qterms *qt;
    occ *o;
    size_t n, cap;
    uint32_t words, first_pos;
    bool any;
} sent_scan;

static cairn_status scan_term(void *ctx, const char *term, size_t len, uint32_t pos, size_t start, size_t end)
{
    sent_scan *s = ctx;
    if (!s->any) {
        s->first_pos = pos;
        s->any = true;
    }
    s->words = pos - s->first_pos + 1;
    for (size_t i = 0; i < s->qt->n; i++)
        if (s->qt->q[i].len == len && !memcmp(s->qt->q[i].t, term, len)) {
            if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 32;
                occ *p = cairn_reallocarray(s->o, cap, sizeof *p);
                if (!p)
                    return cairn_fail(CAIRN_ERR_NOMEM, "extract: out of memory");
                s->o = p;
                s->cap = cap;
            }
            s->o[s->n++] = (occ){pos, (uint8_t)i};
            break;
        }
    return CAIRN_OK;
}

static double sentence_score(const sent_scan *s, double idf_sum, double prox_w)
{
    if (s->n == 0 || idf_sum <= 0)
        return 0;
    bool seen[MAX_QTERMS] = {0};
    double cov = 0;
    size_t m = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!seen[s->o[i].term]) {
            seen[s->o[i].term] = true;
            cov += s->qt->q[s->o[i].term].idf;
            m++;
        }
    cov /= idf_sum;
    double prox = 0;
    if (m >= 2) {
        /* smallest window holding all m distinct matched terms (occurrences are in position order) */
        uint32_t best = UINT32_MAX;
        unsigned cnt[MAX_QTERMS] = {0};
        size_t have = 0, lo = 0;
        for (size_t hi = 0; hi < s->n; hi++) {
            if (cnt[s->o[hi].term]++ == 0)
                have++;
            while (have == m) {
                uint32_t w = s->o[hi].pos - s->o[lo].pos + 1;
                if (w < best)
                    best = w;
                if (--cnt[s->o[lo].term] == 0)
                    have--;
                lo++;
            }
        }
        prox = best > 1 ? (double)(m - 1) / (double)(best - 1) : 1;
    }
    double sc = cov * (1 + prox_w * prox);
    if (s->words < SHORT_SENTENCE_WORDS)
        sc *= 0.5 + 0.5 * (double)s->words / SHORT_SENTENCE_WORDS;
    return sc;
}

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* Does a sentence end at t[i] (one of . ? !)? */
static bool sentence_end(const char *t, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && (t[j] == '"' || t[j] == '\'' || t[j] == ')'))
        j++;
    if (j < n && !is_space(t[j]))
        return false;
    while (j < n && is_space(t[j]))
        j++;
    if (j >= n)
        return true;
    unsigned char c = (unsigned char)t[j];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '"' || c == '(' ||
          c == '[' || c >= 0x80))
        return false;
    if (t[i] != '.')
        return true;
    /* the word before the period: initials ("J.", "U.S.") and abbreviations do not end sentences */
    size_t w = i;
    while (w > 0 && !is_space(t[w - 1]))
        w--;
    size_t wl = i - w;
    if (wl == 1 || (wl >= 2 && t[i - 2] == '.'))
        return false;
    static const char *const abbr[] = {"Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Jr", "Sr", "vs", "etc", "e.g", "i.e",
                                       "Fig", "No", "Vol", "approx", "Inc", "Ltd", "Co", "Gen", "Col", "Lt", "Mt"};
    for (size_t k = 0; k < CAIRN_ARRAY_LEN(abbr); k++)
        if (strlen(abbr[k]) == wl && !strncmp(t + w, abbr[k], wl))
            return false;
    return true;
}

/* Does the line break at t[i] end a sentence? Blank lines, list items,
 * headings, quotes and table rows do; a wrapped line of a paragraph does not. */
static bool break_ends(const char *t, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && (t[j] == ' ' || t[j] == '\t'))
        j++;
    if (j >= n || t[j] == '\n' || t[j] == '-' || t[j] == '*' || t[j] == '|' || t[j] == '#' || t[j] == '>' ||
        t[j] == '+')
        return true;
    if (t[j] >= '0' && t[j] <= '9') {
        while (j < n && t[j] >= '0' && t[j] <= '9')
            j++;
        if (j < n && (t[j] == '.' || t[j] == ')'))
            return true;
    }
    size_t b = i, bars = 0;     /* a table row, or a line ending like code, ends here too */
    while (b > 0 && t[b - 1] != '\n')
        bars += t[--b] == '|';
    while (b < i && (t[b] == ' ' || t[b] == '\t'))
        b++;
    return b < i && (bars >= 2 || t[i - 1] == ':' || t[i - 1] == '{' || t[i - 1] == ';');
}

typedef struct cand { size_t passage, off, len; double score; int rank; } cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

/* The sentence on one line (wrapped lines joined, whitespace runs as one space), then its marker. */
static cairn_status append_sentence(cairn_buf *b, bool nl, const char *x, size_t n, int marker)
{
    if (nl)
        CAIRN_TRY(cairn_buf_putc(b, '\n'));
    bool sp = false;
    for (size_t i = 0; i < n; i++) {
        if (is_space(x[i])) {
            sp = true;
            continue;
        }
        if (sp)
            CAIRN_TRY(cairn_buf_putc(b, ' '));
        sp = false;
        CAIRN_TRY(cairn_buf_putc(b, x[i]));
    }
    return cairn_buf_printf(b, " [%d]", marker);
}

cairn_status rag_extract(search_engine *e, const rag_context *ctx, const char *q, const rag_extract_opts *o,
                         rag_sentence **sent, size_t *n_sent, char **text)
{
    *sent = NULL;
    *n_sent = 0;
    *text = NULL;
    size_t max_s = o && o->max_sentences ? o->max_sentences : 3;
    double decay = o && o->rank_decay >= 0 ? o->rank_decay : DEFAULT_RANK_DECAY;
    double prox_w = o && o->proximity >= 0 ? o->proximity : DEFAULT_PROXIMITY;
    text_analyzer *a = NULL;
    qterms *qt = cairn_calloc(1, sizeof *qt);
    cand *cs = NULL;
    size_t nc = 0, capc = 0;
    sent_scan sc = {0};
    cairn_buf out;
    cairn_buf_init(&out, 0);
    cairn_status st = qt ? text_analyzer_new(&search_get_settings(e)->analyzer, &a) : CAIRN_ERR_NOMEM;
    if (st == CAIRN_OK)
        st = text_analyze(a, q, strlen(q), add_qterm, qt);
    if (st != CAIRN_OK)
        goto done;
    const bm25_index *ix = search_index(e);
    double N = (double)bm25_n_docs(ix);
    for (size_t i = 0; i < qt->n; i++) {
        double df = (double)bm25_df(ix, qt->q[i].t, qt->q[i].len);
        qt->q[i].idf = log(1 + (N - df + 0.5) / (df + 0.5));
        qt->idf_sum += qt->q[i].idf;
    }
    sc.qt = qt;
    for (size_t p = 0; p < ctx->n; p++) {
        const char *t = ctx->p[p].text;
        size_t n = ctx->p[p].text_len;
        for (size_t s0 = 0; s0 < n;) {
            while (s0 < n && is_space(t[s0]))
                s0++;
            size_t s1 = s0;
            while (s1 < n && !(t[s1] == '\n' ? break_ends(t, n, s1)
                                              : (t[s1] == '.' || t[s1] == '?' || t[s1] == '!') && sentence_end(t, n, s1)))
                s1++;
            size_t end = s1 < n && t[s1] != '\n' ? s1 + 1 : s1;
            while (end < n && (t[end] == '"' || t[end] == '\'' || t[end] == ')'))
                end++;
            if (end > s0) {
                sc.n = 0;
                sc.words = 0;
                sc.any = false;
                if ((st = text_analyze(a, t + s0, end - s0, scan_term, &sc)) != CAIRN_OK)
                    goto done;
                double score = sentence_score(&sc, qt->idf_sum, prox_w) / (1 + decay * ctx->p[p].best_rank);
                size_t bars = 0;
                for (size_t k = s0; k < end; k++)
                    bars += t[k] == '|';
                if (bars >= 2)      /* a table row: words without the sentence around them */
                    score *= 0.3;
                if (end > s0 && t[end - 1] == ':')      /* a label introducing a list, not a statement */
                    score *= 0.5;
                if (score > 0) {
                    if (nc == capc) {
                        size_t cap = capc ? 2 * capc : 64;
                        cand *x = cairn_reallocarray(cs, cap, sizeof *x);
                        if (!x) {
                            st = cairn_fail(CAIRN_ERR_NOMEM, "extract: out of memory");
                            goto done;
                        }
                        cs = x;
                        capc = cap;
                    }
                    cs[nc++] = (cand){p, s0, end - s0, score, ctx->p[p].best_rank};
                }
            }
            s0 = end > s0 ? end : s0 + 1;
        }
    }
    if (nc)
        qsort(cs, nc, sizeof *cs, cmp_cand);
    size_t nsel = 0;
    rag_sentence *r = cairn_calloc(max_s ? max_s : 1, sizeof *r);
    if (!r) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "extract: out of memory");
        goto done;
    }
    for (size_t i = 0; i < nc && nsel < max_s; i++) {
        const char *x = ctx->p[cs[i].passage].text + cs[i].off;
        bool dup = false;       /* the same sentence from another passage (repeated text) */
        for (size_t j = 0; j < nsel && !dup; j++)
            dup = r[j].len == cs[i].len && !memcmp(ctx->p[r[j].passage].text + r[j].off, x, cs[i].len);
        if (dup)
            continue;
        r[nsel++] = (rag_sentence){ctx->p[cs[i].passage].marker, cs[i].passage, cs[i].off, cs[i].len, cs[i].score};
        if ((st = append_sentence(&out, nsel > 1, x, cs[i].len, ctx->p[cs[i].passage].marker)) != CAIRN_OK) {
            cairn_free(r);
            goto done;
        }
    }
    *text = out.len ? cairn_buf_take(&out) : cairn_strdup("");
    if (!*text) {
        cairn_free(r);
        st = cairn_fail(CAIRN_ERR_NOMEM, "extract: out of memory");
        goto done;
    }
    *sent = r;
    *n_sent = nsel;
done:
    cairn_buf_free(&out);
    cairn_free(sc.o);
    cairn_free(cs);
    cairn_free(qt);
    text_analyzer_free(a);
    return st;
}
