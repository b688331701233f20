/*
 * rag_context.c — retrieval under a filter, and the numbered context built
 * from the ranked chunks (see rag.h).
 *
 * Budget: hits are taken in rank order while their token counts fit; the
 * merged passages cost no more than their chunks (overlaps are removed), and
 * the rendered text is counted again at the end, dropping the last passages
 * should headers push it over. Cost: one indexed chunks lookup per hit, one
 * files lookup and one stat per document, and a tokenizer pass per passage.
 */
#include "rag/rag.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RAG_DEFAULT_K 8
#define RAG_DEFAULT_BUDGET 1500
#define RAG_MAX_K 1000
#define RAG_HEADER_TOKENS 24        /* allowance per passage for its "[n] path > heading" line */
#define RAG_MIN_OVERLAP 12          /* shorter suffix/prefix matches are coincidence, not overlap */

static const char *const mode_names[] = {[RAG_MODE_BM25] = "bm25", [RAG_MODE_DENSE] = "dense",
                                         [RAG_MODE_HYBRID] = "hybrid"};

cairn_status rag_mode_from_name(const char *name, rag_mode *out)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(mode_names); i++)
        if (name && !strcmp(name, mode_names[i])) {
            *out = (rag_mode)i;
            return CAIRN_OK;
        }
    return cairn_fail(CAIRN_ERR_INVALID, "unknown retrieval mode '%s' (bm25, dense, hybrid)", name ? name : "");
}

const char *rag_mode_name(rag_mode m) { return (size_t)m < CAIRN_ARRAY_LEN(mode_names) ? mode_names[m] : "?"; }

const char *rag_staleness_name(rag_staleness st)
{
    switch (st) {
    case RAG_FRESH: return "fresh";
    case RAG_CHANGED: return "changed";
    case RAG_MISSING: return "missing";
    case RAG_NO_FILE: return "no-file";
    }
    return "?";
}

cairn_status rag_retrieve(store *s, search_engine *e, const rag_query *q, search_results *out)
{
    memset(out, 0, sizeof *out);
    if (!q || !q->text || !*q->text)
        return cairn_fail(CAIRN_ERR_INVALID, "ask: an empty question");
    if (q->k > RAG_MAX_K)
        return cairn_fail(CAIRN_ERR_INVALID, "ask: k = %zu is more than %d", q->k, RAG_MAX_K);
    if (q->mode != RAG_MODE_BM25)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "retrieval mode '%s' needs the vector index, which this build "
                          "does not have (use bm25)", rag_mode_name(q->mode));
    int64_t t0 = cairn_mono_ns();
    int64_t now = q->now_s ? q->now_s : cairn_now_ns() / 1000000000LL;
    filter_node *f = NULL;
    filter_bits bits = {0};
    bool everything = true;
    cairn_status st = CAIRN_OK;
    if (q->where && *q->where)
        st = filter_compile(s, q->where, now, &f);
    if (st == CAIRN_OK)
        st = filter_allowed(s, f, q->fresh_within_s, now, &bits, &everything);
    bm25_allowed allowed = {bits.bits, bits.nbits};
    if (st == CAIRN_OK)
        st = search_run(e, q->text, everything ? NULL : &allowed, q->k ? q->k : RAG_DEFAULT_K, out);
    filter_bits_free(&bits);
    filter_free(f);
    out->took_ms = (double)(cairn_mono_ns() - t0) / 1e6;
    return st;
}

size_t rag_count_tokens(const cairn_tokenizer *tok, const char *text, size_t len)
{
    if (!tok)
        return chunk_count_tokens(text, len);
    size_t n = 0;
    if (tokenizer_encode(tok, text, len, false, false, NULL, 0, &n) != CAIRN_OK) {
        cairn_clear_error();
        return chunk_count_tokens(text, len);
    }
    return n;
}

/* ---- staleness ---- */

cairn_status rag_doc_staleness(store *s, int64_t doc_id, rag_staleness *out)
{
    sqlite3_stmt *q = NULL;
    *out = RAG_NO_FILE;
    if (sqlite3_prepare_v2(store_db(s),
                           "SELECT d.path, f.size, f.mtime_ns, f.state FROM docs d JOIN files f ON f.id = d.file_id "
                           "WHERE d.id = ?1", -1, &q, NULL) != SQLITE_OK)
        return cairn_fail(CAIRN_ERR_IO, "staleness: %s", sqlite3_errmsg(store_db(s)));
    sqlite3_bind_int64(q, 1, doc_id);
    cairn_status st = CAIRN_OK;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        const char *path = (const char *)sqlite3_column_text(q, 0);
        int64_t size = sqlite3_column_int64(q, 1), mtime = sqlite3_column_int64(q, 2);
        int state = sqlite3_column_int(q, 3);
        char *abs = NULL;
        if ((st = store_path_abs(s, path ? path : "", &abs)) == CAIRN_OK) {
            struct stat sb;
            if (stat(abs, &sb) != 0)
                *out = errno == ENOENT || errno == ENOTDIR ? RAG_MISSING : RAG_CHANGED;
            else {
                int64_t m = (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
                /* the rule sync uses (sync.c): size or mtime differ, or a partial ingest */
                *out = state == STORE_FILE_PARTIAL || (int64_t)sb.st_size != size || m != mtime ? RAG_CHANGED
                                                                                                  : RAG_FRESH;
            }
            cairn_free(abs);
        }
    } else if (rc != SQLITE_DONE) {
        st = cairn_fail(CAIRN_ERR_IO, "staleness: %s", sqlite3_errmsg(store_db(s)));
    }
    sqlite3_finalize(q);
    return st;
}

/* ---- passages ---- */

typedef struct hit_ref {
    size_t rank;
    int64_t doc_id;
    int ord;
    const char *text;       /* the hit's text, or a cut copy (cut) */
    size_t len;
    char *cut;
} hit_ref;

static int cmp_doc_ord(const void *a, const void *b)
{
    const hit_ref *x = a, *y = b;
    if (x->doc_id != y->doc_id)
        return x->doc_id < y->doc_id ? -1 : 1;
    return (x->ord > y->ord) - (x->ord < y->ord);
}

static int cmp_passage_rank(const void *a, const void *b)
{
    const rag_passage *x = a, *y = b;
    return (x->best_rank > y->best_rank) - (x->best_rank < y->best_rank);
}

static void passage_free(rag_passage *p)
{
    cairn_free(p->chunk_ids);
    cairn_free(p->path);
    cairn_free(p->rkey);
    cairn_free(p->title);
    cairn_free(p->heading_path);
    cairn_free(p->text);
}

void rag_context_free(rag_context *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n; i++)
        passage_free(&c->p[i]);
    cairn_free(c->p);
    memset(c, 0, sizeof *c);
}

const rag_passage *rag_context_find(const rag_context *c, int marker)
{
    for (size_t i = 0; c && i < c->n; i++)
        if (c->p[i].marker == marker)
            return &c->p[i];
    return NULL;
}

/* Bytes of b[0..) already at the end of a: the overlap the chunker repeats. */
static size_t overlap_len(const char *a, size_t la, const char *b, size_t lb)
{
    size_t maxl = CAIRN_MIN(la, lb);
    if (maxl < RAG_MIN_OVERLAP)
        return 0;
    for (size_t p = la - maxl; p + RAG_MIN_OVERLAP <= la; p++)
        if (a[p] == b[0] && memcmp(a + p, b, la - p) == 0)
            return la - p;
    return 0;
}

/* Cut text to about `tokens` tokens at a sentence end (else a space). */
static size_t cut_point(const cairn_tokenizer *tok, const char *t, size_t len, size_t tokens)
{
    size_t lo = 0, hi = len;
    while (lo < hi) {      /* the longest prefix within the budget (token counts grow with length) */
        size_t mid = lo + (hi - lo + 1) / 2;
        if (rag_count_tokens(tok, t, mid) <= tokens)
            lo = mid;
        else
            hi = mid - 1;
    }
    size_t best = 0;
    for (size_t i = lo; i > 0; i--)
        if ((t[i - 1] == '.' || t[i - 1] == '?' || t[i - 1] == '!' || t[i - 1] == '\n') &&
            (i == len || t[i] == ' ' || t[i] == '\n')) {
            best = i;
            break;
        }
    if (best < lo / 2)
        for (size_t i = lo; i > 0; i--)
            if (t[i - 1] == ' ') {
                best = i - 1;
                break;
            }
    return best ? best : lo;
}

static cairn_status chunk_ord(sqlite3_stmt *q, int64_t chunk_id, int *ord)
{
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, chunk_id);
    int rc = sqlite3_step(q);
    *ord = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? CAIRN_OK : CAIRN_ERR_IO;
}

static char *dup_or_empty(const char *s) { return cairn_strdup(s ? s : ""); }

/* One passage from refs[a..b) (same document, consecutive ords). */
static cairn_status make_passage(const search_results *res, const hit_ref *refs, size_t a, size_t b,
                                 const rag_context_opts *o, rag_passage *p)
{
    const store_hit *h0 = &res->r[refs[a].rank].hit;
    memset(p, 0, sizeof *p);
    p->doc_id = h0->doc_id;
    p->n_chunks = b - a;
    p->first_ord = refs[a].ord;
    p->last_ord = refs[b - 1].ord;
    p->best_rank = (int)refs[a].rank;
    p->best_score = res->r[refs[a].rank].score;
    p->page = h0->page;
    p->ingested_at_ns = h0->ingested_at_ns;
    p->mtime_ns = h0->mtime_ns;
    p->chunk_ids = cairn_calloc(p->n_chunks, sizeof *p->chunk_ids);
    p->path = dup_or_empty(h0->path);
    p->rkey = dup_or_empty(h0->rkey);
    p->title = h0->title ? cairn_strdup(h0->title) : NULL;
    p->heading_path = dup_or_empty(h0->heading_path);
    if (!p->chunk_ids || !p->path || !p->rkey || (h0->title && !p->title) || !p->heading_path)
        return cairn_fail(CAIRN_ERR_NOMEM, "ask: out of memory");
    cairn_buf t;
    cairn_buf_init(&t, 0);
    cairn_status st = CAIRN_OK;
    for (size_t i = a; i < b && st == CAIRN_OK; i++) {
        const search_result *r = &res->r[refs[i].rank];
        p->chunk_ids[i - a] = r->hit.chunk_id;
        if ((int)refs[i].rank < p->best_rank) {
            p->best_rank = (int)refs[i].rank;
            p->best_score = r->score;
        }
        const char *x = refs[i].text;
        size_t lx = refs[i].len, skip = i > a ? overlap_len(t.data, t.len, x, lx) : 0;
        if (i > a && !skip)
            st = cairn_buf_puts(&t, "\n");
        if (st == CAIRN_OK)
            st = cairn_buf_append(&t, x + skip, lx - skip);
    }
    if (st == CAIRN_OK) {
        p->text_len = t.len;
        p->text = t.len ? cairn_buf_take(&t) : cairn_strdup("");
        if (!p->text)
            st = cairn_fail(CAIRN_ERR_NOMEM, "ask: out of memory");
        else
            p->ntokens = rag_count_tokens(o->tok, p->text, p->text_len);
    }
    cairn_buf_free(&t);
    return st;
}

static cairn_status render_size(const rag_context *c, const cairn_tokenizer *tok, size_t *n_tokens)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = rag_context_render(c, &b);
    *n_tokens = st == CAIRN_OK ? rag_count_tokens(tok, b.data ? b.data : "", b.len) : 0;
    cairn_buf_free(&b);
    return st;
}

cairn_status rag_context_build(store *s, const search_results *res, const rag_context_opts *o, rag_context *out)
{
    memset(out, 0, sizeof *out);
    rag_context_opts def = {0};
    if (!o)
        o = &def;
    size_t budget = o->budget_tokens ? o->budget_tokens : RAG_DEFAULT_BUDGET;
    out->n_hits = res->n;
    out->retrieval_ms = res->took_ms;
    if (res->n == 0)
        return CAIRN_OK;
    hit_ref *refs = cairn_calloc(res->n, sizeof *refs);
    sqlite3_stmt *q = NULL;
    cairn_status st = CAIRN_OK;
    if (!refs)
        return cairn_fail(CAIRN_ERR_NOMEM, "ask: out of memory");
    if (sqlite3_prepare_v2(store_db(s), "SELECT ord FROM chunks WHERE id = ?1", -1, &q, NULL) != SQLITE_OK) {
        st = cairn_fail(CAIRN_ERR_IO, "ask: %s", sqlite3_errmsg(store_db(s)));
        goto done;
    }
    /* greedy by rank: a hit is taken while its tokens (and a header) fit */
    size_t used = 0, n = 0;
    for (size_t i = 0; i < res->n; i++) {
        const store_hit *h = &res->r[i].hit;
        size_t len = h->text ? strlen(h->text) : 0;
        size_t cost = (size_t)rag_count_tokens(o->tok, h->text ? h->text : "", len) + RAG_HEADER_TOKENS;
        hit_ref *r = &refs[n];
        r->rank = i;
        r->doc_id = h->doc_id;
        r->text = h->text ? h->text : "";
        r->len = len;
        if (used + cost > budget) {
            if (n > 0 || budget <= RAG_HEADER_TOKENS) {
                out->n_cut++;
                continue;
            }
            /* the best hit alone is too long: keep its beginning */
            size_t cut = cut_point(o->tok, r->text, len, budget - RAG_HEADER_TOKENS);
            if (!(r->cut = cairn_strndup(r->text, cut))) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "ask: out of memory");
                goto done;
            }
            r->text = r->cut;
            r->len = cut;
            cost = budget;
        }
        if ((st = chunk_ord(q, h->chunk_id, &r->ord)) != CAIRN_OK) {
            st = cairn_fail(st, "ask: %s", sqlite3_errmsg(store_db(s)));
            goto done;
        }
        used += cost;
        n++;
    }
    if (n == 0)         /* a budget smaller than one passage header */
        goto done;
    /* runs of consecutive chunks of one document become one passage */
    qsort(refs, n, sizeof *refs, cmp_doc_ord);
    if (!(out->p = cairn_calloc(n, sizeof *out->p))) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "ask: out of memory");
        goto done;
    }
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && refs[b].doc_id == refs[a].doc_id && refs[b].ord >= 0 && refs[b].ord <= refs[b - 1].ord + 1)
            b++;
        st = make_passage(res, refs, a, b, o, &out->p[out->n]);
        out->n++;
        if (st != CAIRN_OK)
            goto done;
        a = b;
    }
    qsort(out->p, out->n, sizeof *out->p, cmp_passage_rank);
    for (size_t i = 0; i < out->n; i++) {
        out->p[i].marker = o->marker_base + (int)i + 1;
        /* one stat per document: passages of one document share it */
        size_t j = 0;
        while (j < i && out->p[j].doc_id != out->p[i].doc_id)
            j++;
        if (j < i)
            out->p[i].stale = out->p[j].stale;
        else if ((st = rag_doc_staleness(s, out->p[i].doc_id, &out->p[i].stale)) != CAIRN_OK)
            goto done;
        if (out->p[i].stale != RAG_FRESH && out->p[i].stale != RAG_NO_FILE)
            out->n_stale++;
    }
    /* the rendered text decides: headers may have cost more than allowed for */
    while ((st = render_size(out, o->tok, &out->n_tokens)) == CAIRN_OK && out->n_tokens > budget && out->n > 1) {
        rag_passage *last = &out->p[--out->n];
        out->n_cut += last->n_chunks;
        if (last->stale != RAG_FRESH && last->stale != RAG_NO_FILE)
            out->n_stale--;
        passage_free(last);
    }
done:
    if (q)
        sqlite3_finalize(q);
    for (size_t i = 0; i < res->n; i++)
        cairn_free(refs[i].cut);
    cairn_free(refs);
    if (st != CAIRN_OK)
        rag_context_free(out);
    return st;
}

cairn_status rag_context_render(const rag_context *c, cairn_buf *out)
{
    for (size_t i = 0; i < c->n; i++) {
        const rag_passage *p = &c->p[i];
        CAIRN_TRY(cairn_buf_printf(out, "%s[%d] %s", i ? "\n\n" : "", p->marker, p->path));
        if (*p->rkey)
            CAIRN_TRY(cairn_buf_printf(out, "#%s", p->rkey));
        if (p->title && *p->title)
            CAIRN_TRY(cairn_buf_printf(out, " \"%s\"", p->title));
        if (*p->heading_path)
            CAIRN_TRY(cairn_buf_printf(out, " > %s", p->heading_path));
        if (p->page > 0)
            CAIRN_TRY(cairn_buf_printf(out, " (p. %d)", p->page));
        CAIRN_TRY(cairn_buf_putc(out, '\n'));
        CAIRN_TRY(cairn_buf_append(out, p->text, p->text_len));
    }
    if (!out->data)
        CAIRN_TRY(cairn_buf_puts(out, ""));
    return CAIRN_OK;
}
