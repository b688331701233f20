/* eval.c — relevance judgments, trec_eval-style metrics, BEIR JSONL reading. */
#include "search/eval.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QRELS_MAX (256u << 20)
#define JSONL_LINE_MAX (1u << 20)

typedef struct judgment {
    char *qid, *docid;
    int rel;
} judgment;

struct eval_qrels {
    judgment *j;        /* sorted by (qid, docid) */
    size_t n;
    size_t n_queries;
};

static int cmp_j(const void *a, const void *b)
{
    const judgment *x = a, *y = b;
    int c = strcmp(x->qid, y->qid);
    return c ? c : strcmp(x->docid, y->docid);
}

void eval_qrels_free(eval_qrels *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->n; i++) {
        cairn_free(q->j[i].qid);
        cairn_free(q->j[i].docid);
    }
    cairn_free(q->j);
    cairn_free(q);
}

cairn_status eval_qrels_load(const char *path, eval_qrels **out)
{
    *out = NULL;
    char *data;
    size_t len;
    CAIRN_TRY(cairn_file_read_all(path, QRELS_MAX, &data, &len));
    eval_qrels *q = cairn_calloc(1, sizeof *q);
    if (!q) {
        cairn_free(data);
        return cairn_fail(CAIRN_ERR_NOMEM, "qrels: out of memory");
    }
    cairn_status st = CAIRN_OK;
    size_t cap = 0, line_no = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\r\n", &save); line && st == CAIRN_OK; line = strtok_r(NULL, "\r\n", &save)) {
        line_no++;
        char *f[4] = {0};
        int nf = 0;
        for (char *p = line; nf < 4;) {
            f[nf++] = p;
            char *t = strpbrk(p, "\t ");
            if (!t)
                break;
            *t = 0;
            p = t + 1;
            while (*p == ' ' || *p == '\t')
                p++;
        }
        /* BEIR: qid docid score (with a header); TREC: qid 0 docid score */
        char *qid, *docid, *rel;
        if (nf == 3) {
            qid = f[0], docid = f[1], rel = f[2];
        } else if (nf == 4) {
            qid = f[0], docid = f[2], rel = f[3];
        } else {
            st = cairn_fail(CAIRN_ERR_INVALID, "%s:%zu: expected 'query-id corpus-id score'", path, line_no);
            break;
        }
        char *end;
        errno = 0;
        long r = strtol(rel, &end, 10);
        if (end == rel || *end || errno) {
            if (line_no == 1)
                continue;   /* header */
            st = cairn_fail(CAIRN_ERR_INVALID, "%s:%zu: score '%s' is not an integer", path, line_no, rel);
            break;
        }
        if (q->n == cap) {
            cap = cap ? cap * 2 : 1024;
            judgment *j = cairn_reallocarray(q->j, cap, sizeof *j);
            if (!j) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "qrels: out of memory");
                break;
            }
            q->j = j;
        }
        judgment *j = &q->j[q->n];
        j->qid = cairn_strdup(qid);
        j->docid = cairn_strdup(docid);
        j->rel = (int)(r < -1000 ? -1000 : r > 1000 ? 1000 : r);
        q->n++;
        if (!j->qid || !j->docid)
            st = cairn_fail(CAIRN_ERR_NOMEM, "qrels: out of memory");
    }
    cairn_free(data);
    if (st == CAIRN_OK && q->n == 0)
        st = cairn_fail(CAIRN_ERR_INVALID, "%s: no judgments", path);
    if (st != CAIRN_OK) {
        eval_qrels_free(q);
        return st;
    }
    qsort(q->j, q->n, sizeof *q->j, cmp_j);
    for (size_t i = 0; i < q->n; i++)
        if (i == 0 || strcmp(q->j[i].qid, q->j[i - 1].qid))
            q->n_queries++;
    *out = q;
    return CAIRN_OK;
}

/* [lo, hi) of qid's judgments. */
static void range(const eval_qrels *q, const char *qid, size_t *lo, size_t *hi)
{
    size_t a = 0, b = q->n;
    while (a < b) {
        size_t m = (a + b) / 2;
        if (strcmp(q->j[m].qid, qid) < 0)
            a = m + 1;
        else
            b = m;
    }
    *lo = a;
    size_t c = a;
    while (c < q->n && !strcmp(q->j[c].qid, qid))
        c++;
    *hi = c;
}

bool eval_qrels_has_query(const eval_qrels *q, const char *qid)
{
    size_t lo, hi;
    range(q, qid, &lo, &hi);
    return hi > lo;
}

size_t eval_qrels_n_queries(const eval_qrels *q) { return q->n_queries; }

static int rel_of(const eval_qrels *q, size_t lo, size_t hi, const char *docid)
{
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        int c = strcmp(q->j[m].docid, docid);
        if (c == 0)
            return q->j[m].rel;
        if (c < 0)
            lo = m + 1;
        else
            hi = m;
    }
    return 0;
}

static int cmp_int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

void eval_score(const eval_qrels *q, const char *qid, const char *const *ranked, size_t n,
                size_t k_ndcg, size_t k_recall, size_t k_mrr, eval_scores *out)
{
    memset(out, 0, sizeof *out);
    size_t lo, hi;
    range(q, qid, &lo, &hi);
    size_t n_rel = 0;
    int ideal[64];
    size_t n_ideal = 0;
    /* ideal gains: the top k_ndcg judged levels (k_ndcg <= 64) */
    int *levels = cairn_calloc(hi - lo + 1, sizeof *levels);
    size_t nl = 0;
    for (size_t i = lo; i < hi; i++) {
        if (q->j[i].rel >= 1)
            n_rel++;
        if (levels && q->j[i].rel > 0)
            levels[nl++] = q->j[i].rel;
    }
    if (levels) {
        qsort(levels, nl, sizeof *levels, cmp_int_desc);
        for (size_t i = 0; i < nl && n_ideal < k_ndcg && n_ideal < 64; i++)
            ideal[n_ideal++] = levels[i];
        cairn_free(levels);
    }
    double idcg = 0, dcg = 0, ap = 0;
    for (size_t i = 0; i < n_ideal; i++)
        idcg += ideal[i] / log2((double)i + 2);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        int r = rel_of(q, lo, hi, ranked[i]);
        if (i < k_ndcg && r > 0)
            dcg += r / log2((double)i + 2);
        if (r >= 1) {
            found++;
            ap += (double)found / (double)(i + 1);
            if (i < k_recall)
                out->recall += 1;
            if (i < k_mrr && out->mrr == 0)
                out->mrr = 1.0 / (double)(i + 1);
        }
    }
    out->ndcg = idcg > 0 ? dcg / idcg : 0;
    out->recall = n_rel ? out->recall / (double)n_rel : 0;
    out->ap = n_rel ? ap / (double)n_rel : 0;
}

/* ---- JSONL ---- */

static void *json_malloc(size_t n) { return cairn_malloc(n); }
static void json_free(void *p) { cairn_free(p); }

static const char *str_field(const cJSON *o, const char *name, char *num, size_t num_n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsNumber(v)) {
        snprintf(num, num_n, "%.17g", v->valuedouble);
        return num;
    }
    return NULL;
}

cairn_status beir_read_jsonl(const char *path, beir_record_fn fn, void *ctx)
{
    cJSON_Hooks hooks = {json_malloc, json_free};
    cJSON_InitHooks(&hooks);
    FILE *f = fopen(path, "rb");
    if (!f)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cairn_buf line;
    cairn_buf_init(&line, JSONL_LINE_MAX);
    cairn_status st = CAIRN_OK;
    size_t line_no = 0;
    char chunk[65536];
    size_t got;
    bool eof = false;
    size_t pos = 0, have = 0;
    while (st == CAIRN_OK && !eof) {
        /* collect one line */
        cairn_buf_reset(&line);
        bool end_line = false;
        while (!end_line) {
            if (pos == have) {
                got = fread(chunk, 1, sizeof chunk, f);
                if (got == 0) {
                    eof = true;
                    break;
                }
                pos = 0;
                have = got;
            }
            char *nl = memchr(chunk + pos, '\n', have - pos);
            size_t take = nl ? (size_t)(nl - (chunk + pos)) : have - pos;
            st = cairn_buf_append(&line, chunk + pos, take);
            if (st != CAIRN_OK) {
                st = cairn_fail(st, "%s:%zu: line longer than %u bytes", path, line_no + 1, JSONL_LINE_MAX);
                break;
            }
            pos += take;
            if (nl) {
                pos++;
                end_line = true;
            }
        }
        if (st != CAIRN_OK)
            break;
        line_no++;
        size_t s = 0;
        while (s < line.len && (line.data[s] == ' ' || line.data[s] == '\t' || line.data[s] == '\r'))
            s++;
        if (s == line.len)
            continue;
        cJSON *o = cJSON_ParseWithLength(line.data + s, line.len - s);
        if (!o || !cJSON_IsObject(o)) {
            cJSON_Delete(o);
            st = cairn_fail(CAIRN_ERR_INVALID, "%s:%zu: not a JSON object", path, line_no);
            break;
        }
        char num[64];
        beir_record r;
        r.id = str_field(o, "_id", num, sizeof num);
        if (!r.id)
            r.id = str_field(o, "id", num, sizeof num);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "title");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "text");
        r.title = cJSON_IsString(t) ? t->valuestring : "";
        r.text = cJSON_IsString(x) ? x->valuestring : "";
        if (!r.id)
            st = cairn_fail(CAIRN_ERR_INVALID, "%s:%zu: record has no \"_id\"", path, line_no);
        else
            st = fn(ctx, &r);
        cJSON_Delete(o);
    }
    if (st == CAIRN_OK && ferror(f))
        st = cairn_fail(CAIRN_ERR_IO, "%s: read failed", path);
    fclose(f);
    cairn_buf_free(&line);
    return st;
}
