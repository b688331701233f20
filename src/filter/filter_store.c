/* filter_store.c — evaluate a filter against the store's typed metadata.
 *
 * Every leaf predicate becomes one SQL query over doc_meta that uses the
 * (key, s, doc_id) / (key, n, doc_id) indexes and yields a sorted set of
 * document ids; AND/OR/NOT are merges of sorted sets in C (NOT is taken
 * relative to all documents). The result is exact: pre-filtering, so a
 * search over the allowed set can return a full top-k however selective the
 * filter is. Cost: one index range scan per leaf plus linear merges. */
#include "filter/filter.h"
#include "store/store.h"
#include <fnmatch.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void filter_idset_free(filter_idset *s)
{
    cairn_free(s->ids);
    memset(s, 0, sizeof *s);
}

static cairn_status idset_push(filter_idset *s, int64_t id)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 256;
        int64_t *p = cairn_reallocarray(s->ids, nc, sizeof *p);
        if (!p)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory evaluating a filter");
        s->ids = p;
        s->cap = nc;
    }
    s->ids[s->n++] = id;
    return CAIRN_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void idset_normalize(filter_idset *s)
{
    if (s->n < 2)
        return;
    qsort(s->ids, s->n, sizeof *s->ids, cmp_i64);
    size_t w = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->ids[i] != s->ids[w - 1])
            s->ids[w++] = s->ids[i];
    s->n = w;
}

bool filter_idset_has(const filter_idset *s, int64_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->ids[lo] == id;
}

static cairn_status sql_fail(store *s, const char *what)
{
    return cairn_fail(CAIRN_ERR_IO, "filter: %s: %s", what, sqlite3_errmsg(store_db(s)));
}

/* ---- type checking against the store ---- */

static unsigned store_field_types(void *ctx, const char *field)
{
    store *s = ctx;
    unsigned mask = 0;
    sqlite3_stmt *st = NULL;
    /* One probe per type; each stops at the first row found. */
    if (sqlite3_prepare_v2(store_db(s), "SELECT 1 FROM doc_meta WHERE key = ?1 AND type = ?2 LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK)
        return 0;
    for (int t = META_STRING; t <= META_LIST; t++) {
        sqlite3_bind_text(st, 1, field, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, t);
        if (sqlite3_step(st) == SQLITE_ROW)
            mask |= 1u << (t - 1);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return mask;
}

cairn_status filter_compile(store *s, const char *src, int64_t now, filter_node **out)
{
    filter_node *f = NULL;
    CAIRN_TRY(filter_parse(src, now, &f));
    cairn_status st = filter_check(f, src, store_field_types, s);
    if (st != CAIRN_OK) {
        filter_free(f);
        return st;
    }
    *out = f;
    return CAIRN_OK;
}

/* ---- leaves ---- */

static const char *op_sql(filter_op op)
{
    switch (op) {
    case FOP_EQ: return "=";
    case FOP_NE: return "!=";
    case FOP_LT: return "<";
    case FOP_LE: return "<=";
    case FOP_GT: return ">";
    case FOP_GE: return ">=";
    }
    return "=";
}

/* Run `sql` with ?1 = field and the value bindings, collecting column 0. When
 * `glob` is set, column 1 must match it (fnmatch) too. */
static cairn_status run_leaf(store *s, const char *sql, const filter_node *f, const filter_value *v, const char *hi,
                             const char *glob, filter_idset *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s), sql, -1, &st, NULL) != SQLITE_OK)
        return sql_fail(s, "prepare");
    sqlite3_bind_text(st, 1, f->field, -1, SQLITE_STATIC);
    if (v) {
        if (v->type == META_STRING)
            sqlite3_bind_text(st, 2, v->s, -1, SQLITE_STATIC);
        else
            sqlite3_bind_double(st, 2, v->n);
        sqlite3_bind_int(st, 3, v->type);
    }
    if (hi)
        sqlite3_bind_text(st, 4, hi, -1, SQLITE_STATIC);
    cairn_status rc = CAIRN_OK;
    int r;
    while (rc == CAIRN_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        if (glob) {
            const char *val = (const char *)sqlite3_column_text(st, 1);
            if (!val || fnmatch(glob, val, 0) != 0)
                continue;
        }
        rc = idset_push(out, sqlite3_column_int64(st, 0));
    }
    if (rc == CAIRN_OK && r != SQLITE_DONE)
        rc = sql_fail(s, "query");
    sqlite3_finalize(st);
    return rc;
}

/* Smallest string greater than every string with prefix p, or NULL when none
 * (p empty or all 0xFF). Caller frees. */
static char *prefix_upper(const char *p)
{
    size_t n = strlen(p);
    char *u = cairn_strndup(p, n);
    if (!u)
        return NULL;
    while (n > 0 && (unsigned char)u[n - 1] == 0xFF)
        n--;
    if (n == 0) {
        cairn_free(u);
        return NULL;
    }
    u[n - 1] = (char)((unsigned char)u[n - 1] + 1);
    u[n] = 0;
    return u;
}

static cairn_status eval_leaf(store *s, const filter_node *f, filter_idset *out)
{
    char sql[256];
    cairn_status st = CAIRN_OK;
    switch (f->kind) {
    case FN_HAS:
        st = run_leaf(s, "SELECT doc_id FROM doc_meta WHERE key = ?1", f, NULL, NULL, NULL, out);
        break;
    case FN_CMP: {
        const filter_value *v = &f->vals[0];
        snprintf(sql, sizeof sql, "SELECT doc_id FROM doc_meta WHERE key = ?1 AND %s %s ?2 AND type = ?3",
                 v->type == META_STRING ? "s" : "n", op_sql(f->op));
        st = run_leaf(s, sql, f, v, NULL, NULL, out);
        break;
    }
    case FN_IN:
        for (size_t i = 0; i < f->n_vals && st == CAIRN_OK; i++) {
            const filter_value *v = &f->vals[i];
            if (v->type == META_STRING)
                st = run_leaf(s, "SELECT doc_id FROM doc_meta WHERE key = ?1 AND s = ?2 AND type IN (?3, 5)", f, v, NULL,
                              NULL, out);
            else
                st = run_leaf(s, "SELECT doc_id FROM doc_meta WHERE key = ?1 AND n = ?2 AND type = ?3", f, v, NULL, NULL,
                              out);
        }
        break;
    case FN_CONTAINS:
        st = run_leaf(s, "SELECT doc_id FROM doc_meta WHERE key = ?1 AND s = ?2 AND type = 5", f, &f->vals[0], NULL, NULL,
                      out);
        break;
    case FN_PREFIX:
    case FN_GLOB: {
        /* Both use an index range on the literal prefix; GLOB then matches
         * each candidate with fnmatch (the same matcher as filter_match). */
        const char *pat = f->vals[0].s;
        size_t lit = f->kind == FN_PREFIX ? strlen(pat) : strcspn(pat, "*?[\\");
        char *lo = cairn_strndup(pat, lit);
        if (!lo)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory evaluating a filter");
        char *hi = prefix_upper(lo);
        filter_value v = {.type = META_STRING, .s = lo};
        snprintf(sql, sizeof sql, "SELECT doc_id, s FROM doc_meta WHERE key = ?1 AND s >= ?2 %s AND type IN (?3, 5)",
                 hi ? "AND s < ?4" : "");
        st = run_leaf(s, sql, f, &v, hi, f->kind == FN_GLOB ? pat : NULL, out);
        cairn_free(lo);
        cairn_free(hi);
        break;
    }
    default:
        return cairn_fail(CAIRN_ERR_INTERNAL, "filter: not a leaf");
    }
    if (st == CAIRN_OK)
        idset_normalize(out);
    return st;
}

static cairn_status all_docs(store *s, filter_idset *out)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store_db(s), "SELECT id FROM docs ORDER BY id", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(s, "prepare");
    cairn_status rc = CAIRN_OK;
    int r;
    while (rc == CAIRN_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
        rc = idset_push(out, sqlite3_column_int64(st, 0));
    if (rc == CAIRN_OK && r != SQLITE_DONE)
        rc = sql_fail(s, "query");
    sqlite3_finalize(st);
    return rc;
}

/* out = a op b over sorted sets; op: '&' intersection, '|' union, '-' difference. */
static cairn_status merge(const filter_idset *a, const filter_idset *b, char op, filter_idset *out)
{
    size_t i = 0, j = 0;
    cairn_status st = CAIRN_OK;
    while (st == CAIRN_OK && (i < a->n || j < b->n)) {
        if (j >= b->n || (i < a->n && a->ids[i] < b->ids[j])) {
            if (op != '&')
                st = idset_push(out, a->ids[i]);
            i++;
        } else if (i >= a->n || b->ids[j] < a->ids[i]) {
            if (op == '|')
                st = idset_push(out, b->ids[j]);
            j++;
        } else {
            if (op != '-')
                st = idset_push(out, a->ids[i]);
            i++;
            j++;
        }
    }
    return st;
}

cairn_status filter_docs(store *s, const filter_node *f, filter_idset *out)
{
    memset(out, 0, sizeof *out);
    if (f->kind != FN_AND && f->kind != FN_OR && f->kind != FN_NOT)
        return eval_leaf(s, f, out);
    filter_idset a = {0}, b = {0};
    cairn_status st = f->kind == FN_NOT ? all_docs(s, &a) : filter_docs(s, f->a, &a);
    if (st == CAIRN_OK)
        st = filter_docs(s, f->kind == FN_NOT ? f->a : f->b, &b);
    if (st == CAIRN_OK)
        st = merge(&a, &b, f->kind == FN_AND ? '&' : f->kind == FN_OR ? '|' : '-', out);
    filter_idset_free(&a);
    filter_idset_free(&b);
    if (st != CAIRN_OK)
        filter_idset_free(out);
    return st;
}

/* Chunks of a sorted set of documents. Few documents: one indexed lookup
 * each; many: one scan of the chunks table. */
static cairn_status docs_to_chunks(store *s, const filter_idset *docs, filter_idset *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    cairn_status rc = CAIRN_OK;
    int64_t ndocs = 0;
    if (sqlite3_prepare_v2(store_db(s), "SELECT count(*) FROM docs", -1, &st, NULL) != SQLITE_OK)
        return sql_fail(s, "prepare");
    if (sqlite3_step(st) == SQLITE_ROW)
        ndocs = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    bool scan = docs->n > 64 && (int64_t)docs->n * 8 > ndocs;
    if (sqlite3_prepare_v2(store_db(s), scan ? "SELECT id, doc_id FROM chunks" : "SELECT id FROM chunks WHERE doc_id = ?1",
                           -1, &st, NULL) != SQLITE_OK)
        return sql_fail(s, "prepare");
    int r = SQLITE_DONE;
    if (scan) {
        while (rc == CAIRN_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
            if (filter_idset_has(docs, sqlite3_column_int64(st, 1)))
                rc = idset_push(out, sqlite3_column_int64(st, 0));
        if (rc == CAIRN_OK && r != SQLITE_DONE)
            rc = sql_fail(s, "query");
    } else {
        for (size_t i = 0; rc == CAIRN_OK && i < docs->n; i++) {
            sqlite3_bind_int64(st, 1, docs->ids[i]);
            while (rc == CAIRN_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
                rc = idset_push(out, sqlite3_column_int64(st, 0));
            if (rc == CAIRN_OK && r != SQLITE_DONE)
                rc = sql_fail(s, "query");
            sqlite3_reset(st);
        }
    }
    sqlite3_finalize(st);
    if (rc == CAIRN_OK)
        idset_normalize(out);
    else
        filter_idset_free(out);
    return rc;
}

cairn_status filter_chunks(store *s, const filter_node *f, filter_idset *out)
{
    filter_idset docs;
    CAIRN_TRY(filter_docs(s, f, &docs));
    cairn_status st = docs_to_chunks(s, &docs, out);
    filter_idset_free(&docs);
    return st;
}

/* Documents matching a builtin condition written in the filter language. */
static cairn_status docs_where(store *s, const char *expr, int64_t now, filter_idset *out)
{
    filter_node *f = NULL;
    CAIRN_TRY(filter_parse(expr, now, &f));
    cairn_status st = filter_check(f, expr, NULL, NULL);
    if (st == CAIRN_OK)
        st = filter_docs(s, f, out);
    filter_free(f);
    return st;
}

static cairn_status max_chunk_id(store *s, int64_t *out)
{
    int64_t dels;
    return store_marks(s, out, &dels);
}

static cairn_status bits_from(store *s, const filter_idset *chunks, bool all_but, filter_bits *out)
{
    int64_t maxid = 0;
    CAIRN_TRY(max_chunk_id(s, &maxid));
    uint64_t nbits = (uint64_t)maxid + 1;
    uint64_t *bits = cairn_calloc((size_t)((nbits + 63) / 64), sizeof *bits);
    if (!bits)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory building a filter bitset");
    if (all_but)
        memset(bits, 0xff, (size_t)((nbits + 63) / 64) * sizeof *bits);
    for (size_t i = 0; i < chunks->n; i++) {
        uint64_t id = (uint64_t)chunks->ids[i];
        if (id >= nbits)
            continue;
        if (all_but)
            bits[id / 64] &= ~(1ull << (id % 64));
        else
            bits[id / 64] |= 1ull << (id % 64);
    }
    out->bits = bits;
    out->nbits = nbits;
    return CAIRN_OK;
}

void filter_bits_free(filter_bits *b)
{
    cairn_free(b->bits);
    memset(b, 0, sizeof *b);
}

cairn_status filter_allowed(store *s, const filter_node *where, int64_t fresh_within_s, int64_t now, filter_bits *out,
                            bool *everything)
{
    memset(out, 0, sizeof *out);
    *everything = false;
    filter_idset docs = {0}, tmp = {0}, expired = {0}, chunks = {0};
    bool have_docs = false;
    cairn_status st = CAIRN_OK;
    if (where) {
        st = filter_docs(s, where, &docs);
        have_docs = true;
    }
    if (st == CAIRN_OK && fresh_within_s > 0) {
        char expr[64];
        snprintf(expr, sizeof expr, "ingested >= now - %llds", (long long)fresh_within_s);
        st = docs_where(s, expr, now, &tmp);
        if (st == CAIRN_OK && have_docs) {
            filter_idset both = {0};
            st = merge(&docs, &tmp, '&', &both);
            filter_idset_free(&docs);
            docs = both;
        } else if (st == CAIRN_OK) {
            docs = tmp;
            memset(&tmp, 0, sizeof tmp);
            have_docs = true;
        }
    }
    /* Expired documents never appear, whether or not sync removed them yet. */
    if (st == CAIRN_OK)
        st = docs_where(s, "expires <= now", now, &expired);
    if (st == CAIRN_OK) {
        if (!have_docs && expired.n == 0) {
            *everything = true;
        } else if (!have_docs) {
            st = docs_to_chunks(s, &expired, &chunks);
            if (st == CAIRN_OK)
                st = bits_from(s, &chunks, true, out);
        } else {
            filter_idset live = {0};
            st = merge(&docs, &expired, '-', &live);
            if (st == CAIRN_OK)
                st = docs_to_chunks(s, &live, &chunks);
            if (st == CAIRN_OK)
                st = bits_from(s, &chunks, false, out);
            filter_idset_free(&live);
        }
    }
    filter_idset_free(&docs);
    filter_idset_free(&tmp);
    filter_idset_free(&expired);
    filter_idset_free(&chunks);
    return st;
}
