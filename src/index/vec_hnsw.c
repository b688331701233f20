/*
 * vec_hnsw.c — the vector index in memory: nodes, the HNSW graph over int8
 * codes, filtered search with float rescoring, the exact scan, tombstones
 * and compaction. Persistence is vec_file.c; the layout it maps is the
 * arrays below, one after another.
 *
 * Node arrays (n nodes, room for cap):
 *   ids[n]        u64 external id (chunk id)
 *   levels[n]     u8 top level of the node
 *   rows[n*rs]    per node its quantization scale (f32, then 4 zero bytes)
 *                 and its int8 codes (v ~= scale * code; dpad = dim rounded
 *                 up to 8, zero padded): rs = 8 + dpad bytes, so one
 *                 distance touches one contiguous row
 *   vecs[n*dim]   f32 the vector as given (rescoring, exact search)
 *   links0[n*(M0+1)]  level-0 adjacency: count, then up to M0 = 2M node ids
 *   upper_off[n]  u32 start in upper[] of the node's levels 1..level, each
 *                 (M+1) u32: count, then up to M ids
 *   dead          bitset over nodes (tombstones)
 *
 * Construction follows the HNSW paper (Malkov & Yashunin) with the
 * diversity heuristic for neighbour selection; all distances during
 * construction and traversal are on int8 codes (4x less memory traffic
 * than floats); the search's ef best candidates are rescored with floats.
 *
 * Filters: a node is *eligible* when it is live and its id is in the allowed
 * set. Traversal walks every node (ineligible ones route, as tombstones do)
 * but only eligible ones enter the result set, and the search does not stop
 * while it has fewer than ef results. That can walk far with a selective
 * filter, so (1) a filter allowing at most exact_below vectors goes straight
 * to the exact scan, and (2) a traversal that has computed more distances
 * than the exact scan would cost stops and the exact scan answers; a graph
 * search that ends with fewer than k results also falls back, so a filtered
 * search never returns fewer than k because of the filter.
 */
#include "index/vec.h"
#include "index/vec_int.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NONE UINT32_MAX
#define MAX_LEVEL 24
#define MAX_DIM 4096
#define MAX_NODES (UINT32_MAX / 2)

void vec_params_default(vec_params *p)
{
    p->M = 16;
    p->ef_construction = 200;
    p->ef_search = 64;
    p->exact_below = 0;
    p->seed = 0x9e3779b97f4a7c15ull;
}

uint32_t vec_index_dim(const vec_index *ix) { return ix->dim; }
uint64_t vec_index_count(const vec_index *ix) { return ix->n - ix->n_dead; }
uint64_t vec_index_nodes(const vec_index *ix) { return ix->n; }
const vec_params *vec_index_params(const vec_index *ix) { return &ix->p; }
uint64_t vec_index_file_bytes(const vec_index *ix) { return ix->file_bytes; }
double vec_index_dead_ratio(const vec_index *ix) { return ix->n ? (double)ix->n_dead / ix->n : 0; }

void vec_index_memory(const vec_index *ix, uint64_t *vector_bytes, uint64_t *graph_bytes, uint64_t *float_bytes)
{
    uint64_t n = ix->n;
    *vector_bytes = n * (uint64_t)ix->rs;
    *graph_bytes = n * (8 + 1 + 4 + 4ull * (ix->M0 + 1)) + 4ull * ix->upper_len + (n + 63) / 64 * 8;
    *float_bytes = n * ix->dim * 4ull;
}

static inline bool is_dead(const vec_index *ix, uint32_t u) { return (ix->dead[u >> 6] >> (u & 63)) & 1; }

static inline uint32_t *links_at(const vec_index *ix, uint32_t u, int l)
{
    if (l == 0)
        return ix->links0 + (size_t)u * (ix->M0 + 1);
    return ix->upper + ix->upper_off[u] + (size_t)(l - 1) * (ix->p.M + 1);
}

static inline const unsigned char *row(const vec_index *ix, uint32_t u) { return ix->rows + (size_t)u * ix->rs; }
static inline float row_scale(const unsigned char *r)
{
    float s;
    memcpy(&s, r, 4);
    return s;
}
static inline const int8_t *row_code(const unsigned char *r) { return (const int8_t *)(r + 8); }

static inline float dist_nodes(const vec_index *ix, uint32_t a, uint32_t b)
{
    const unsigned char *ra = row(ix, a), *rb = row(ix, b);
    return -(row_scale(ra) * row_scale(rb)) * (float)ix->dot8(row_code(ra), row_code(rb), ix->dpad);
}

static inline float dist_code(const vec_index *ix, const int8_t *q, float qs, uint32_t b)
{
    const unsigned char *rb = row(ix, b);
    return -(qs * row_scale(rb)) * (float)ix->dot8(q, row_code(rb), ix->dpad);
}

/* ---- id map (open addressing, key = id + 1, 0 = empty) ---- */

static inline size_t hslot(uint64_t key, size_t mask) { return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & mask; }

static cairn_status map_grow(vec_index *ix, size_t want)
{
    size_t cap = ix->hcap ? ix->hcap : 64;
    while (cap < want * 2)
        cap *= 2;
    if (cap == ix->hcap)
        return CAIRN_OK;
    uint64_t *k = cairn_calloc(cap, sizeof *k);
    uint32_t *v = cairn_malloc(cap * sizeof *v);
    if (!k || !v) {
        cairn_free(k);
        cairn_free(v);
        return cairn_fail(CAIRN_ERR_NOMEM, "vector index: id map of %zu slots", cap);
    }
    for (size_t i = 0; i < ix->hcap; i++) {
        if (!ix->hkeys[i])
            continue;
        size_t j = hslot(ix->hkeys[i], cap - 1);
        while (k[j])
            j = (j + 1) & (cap - 1);
        k[j] = ix->hkeys[i];
        v[j] = ix->hvals[i];
    }
    cairn_free(ix->hkeys);
    cairn_free(ix->hvals);
    ix->hkeys = k;
    ix->hvals = v;
    ix->hcap = cap;
    return CAIRN_OK;
}

uint32_t vec__find(const vec_index *ix, uint64_t id)
{
    if (!ix->hcap)
        return NONE;
    uint64_t key = id + 1;
    size_t mask = ix->hcap - 1;
    for (size_t j = hslot(key, mask);; j = (j + 1) & mask) {
        if (!ix->hkeys[j])
            return NONE;
        if (ix->hkeys[j] == key)
            return ix->hvals[j];
    }
}

/* Insert or repoint (a re-added id of a tombstoned node). Room guaranteed by map_grow. */
static void map_put(vec_index *ix, uint64_t id, uint32_t u)
{
    uint64_t key = id + 1;
    size_t mask = ix->hcap - 1;
    size_t j = hslot(key, mask);
    while (ix->hkeys[j] && ix->hkeys[j] != key)
        j = (j + 1) & mask;
    if (!ix->hkeys[j])
        ix->hused++;
    ix->hkeys[j] = key;
    ix->hvals[j] = u;
}

cairn_status vec__map_rebuild(vec_index *ix)
{
    cairn_free(ix->hkeys);
    cairn_free(ix->hvals);
    ix->hkeys = NULL;
    ix->hvals = NULL;
    ix->hcap = ix->hused = 0;
    CAIRN_TRY(map_grow(ix, ix->n + 16));
    for (uint32_t u = 0; u < ix->n; u++)
        if (ix->ids[u] == UINT64_MAX)
            return cairn_fail(CAIRN_ERR_CORRUPT, "vector index: node %u has an invalid id", u);
        else if (!is_dead(ix, u) || vec__find(ix, ix->ids[u]) == NONE)
            map_put(ix, ix->ids[u], u);
    return CAIRN_OK;
}

bool vec_index_contains(const vec_index *ix, uint64_t id)
{
    uint32_t u = vec__find(ix, id);
    return u != NONE && !is_dead(ix, u);
}

/* ---- lifetime ---- */

cairn_status vec__alloc(uint32_t dim, const vec_params *p, vec_index **out)
{
    *out = NULL;
    if (dim < 1 || dim > MAX_DIM)
        return cairn_fail(CAIRN_ERR_INVALID, "vector index: dimension %u out of range 1..%u", dim, MAX_DIM);
    vec_params d;
    vec_params_default(&d);
    if (!p)
        p = &d;
    if (p->M < 2 || p->M > 128 || p->ef_construction < 1 || p->ef_construction > 4096 || p->ef_search > 65536)
        return cairn_fail(CAIRN_ERR_INVALID, "vector index: M %u (2..128), ef_construction %u (1..4096) or "
                                             "ef_search %u out of range", p->M, p->ef_construction, p->ef_search);
    vec_index *ix = cairn_calloc(1, sizeof *ix);
    if (!ix)
        return cairn_fail(CAIRN_ERR_NOMEM, "vector index");
    ix->dim = dim;
    ix->dpad = (dim + 7) / 8 * 8;
    ix->rs = ix->dpad + 8;
    ix->p = *p;
    if (!ix->p.ef_search)
        ix->p.ef_search = d.ef_search;
    ix->M0 = 2 * p->M;
    ix->mult = 1.0 / log((double)p->M);
    ix->rng = p->seed ? p->seed : d.seed;
    ix->entry = NONE;
    ix->max_level = -1;
    ix->dot8 = vec_dot_i8_best();
    ix->dotf = vec_dot_f32_best();
    *out = ix;
    return CAIRN_OK;
}

cairn_status vec_index_new(uint32_t dim, const vec_params *p, vec_index **out)
{
    CAIRN_TRY(vec__alloc(dim, p, out));
    (*out)->owned = true;
    return CAIRN_OK;
}

static void free_arrays(vec_index *ix)
{
    if (ix->owned) {
        cairn_free(ix->ids);
        cairn_free(ix->levels);
        cairn_free_aligned(ix->rows);
        cairn_free(ix->vecs);
        cairn_free(ix->links0);
        cairn_free(ix->upper_off);
        cairn_free(ix->upper);
    }
    ix->ids = NULL;
    ix->levels = NULL;
    ix->rows = NULL;
    ix->vecs = NULL;
    ix->links0 = ix->upper_off = ix->upper = NULL;
}

void vec_index_free(vec_index *ix)
{
    if (!ix)
        return;
    free_arrays(ix);
    if (ix->map)
        munmap(ix->map, ix->map_len);
    cairn_free(ix->dead);
    cairn_free(ix->hkeys);
    cairn_free(ix->hvals);
    cairn_free(ix->vis);
    cairn_free(ix->cand);
    cairn_free(ix->res);
    cairn_free_aligned(ix->qcode);
    cairn_free(ix->sel);
    cairn_free(ix);
}

/* Grow every node array to hold `want` nodes (copying a mapped index to the
 * heap first: the mapping is read-only). */
static cairn_status ensure_cap(vec_index *ix, uint64_t want, uint64_t upper_want)
{
    if (want > MAX_NODES)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "vector index: more than %u vectors", MAX_NODES);
    if (ix->owned && want <= ix->cap && upper_want <= ix->upper_cap)
        return CAIRN_OK;
    uint64_t cap = ix->cap > want && ix->owned ? ix->cap : CAIRN_MAX(want, CAIRN_MAX(ix->cap * 3 / 2, 64));
    uint64_t ucap = ix->upper_cap >= upper_want && ix->owned ? ix->upper_cap
                                                              : CAIRN_MAX(upper_want, CAIRN_MAX(ix->upper_cap * 3 / 2, 256));
    size_t n = ix->n, dw = (cap + 63) / 64;
    uint64_t *ids = cairn_malloc(cap * sizeof *ids);
    uint8_t *lv = cairn_malloc(cap);
    unsigned char *rows = cairn_malloc_aligned(cap * ix->rs, 64);
    float *vecs = cairn_malloc(cap * ix->dim * sizeof *vecs);
    uint32_t *l0 = cairn_malloc(cap * (ix->M0 + 1) * sizeof *l0);
    uint32_t *uo = cairn_malloc(cap * sizeof *uo);
    uint32_t *up = cairn_malloc(ucap * sizeof *up);
    uint64_t *dead = cairn_calloc(dw, sizeof *dead);
    if (!ids || !lv || !rows || !vecs || !l0 || !uo || !up || !dead) {
        cairn_free(ids);
        cairn_free(lv);
        cairn_free_aligned(rows);
        cairn_free(vecs);
        cairn_free(l0);
        cairn_free(uo);
        cairn_free(up);
        cairn_free(dead);
        return cairn_fail(CAIRN_ERR_NOMEM, "vector index: room for %llu vectors", (unsigned long long)cap);
    }
    if (n) {
        memcpy(ids, ix->ids, n * sizeof *ids);
        memcpy(lv, ix->levels, n);
        memcpy(rows, ix->rows, n * ix->rs);
        memcpy(vecs, ix->vecs, n * ix->dim * sizeof *vecs);
        memcpy(l0, ix->links0, n * (ix->M0 + 1) * sizeof *l0);
        memcpy(uo, ix->upper_off, n * sizeof *uo);
        memcpy(dead, ix->dead, (n + 63) / 64 * sizeof *dead);
    }
    if (ix->upper_len)
        memcpy(up, ix->upper, ix->upper_len * sizeof *up);
    free_arrays(ix);
    if (ix->map) {
        munmap(ix->map, ix->map_len);
        ix->map = NULL;
        ix->map_len = 0;
    }
    cairn_free(ix->dead);
    ix->ids = ids;
    ix->levels = lv;
    ix->rows = rows;
    ix->vecs = vecs;
    ix->links0 = l0;
    ix->upper_off = uo;
    ix->upper = up;
    ix->dead = dead;
    ix->cap = cap;
    ix->upper_cap = ucap;
    ix->owned = true;
    return CAIRN_OK;
}

/* ---- scratch ---- */

static cairn_status scratch(vec_index *ix, size_t nheap)
{
    if (!ix->qcode) {
        ix->qcode = cairn_malloc_aligned(ix->dpad, 64);
        if (!ix->qcode)
            return cairn_fail(CAIRN_ERR_NOMEM, "vector search scratch");
    }
    if (ix->vis_cap < (size_t)ix->n + 1) {
        size_t c = CAIRN_MAX((size_t)ix->n + 1, (size_t)ix->cap);
        uint16_t *v = cairn_calloc(c, sizeof *v);
        if (!v)
            return cairn_fail(CAIRN_ERR_NOMEM, "vector search scratch");
        cairn_free(ix->vis);
        ix->vis = v;
        ix->vis_cap = c;
        ix->vis_gen = 0;
    }
    if (nheap > ix->heap_cap) {
        size_t c = CAIRN_MAX(nheap, ix->heap_cap * 2);
        vec_cand *a = cairn_reallocarray(ix->cand, c, sizeof *a);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "vector search scratch");
        ix->cand = a;
        vec_cand *b = cairn_reallocarray(ix->res, c, sizeof *b);
        if (!b)
            return cairn_fail(CAIRN_ERR_NOMEM, "vector search scratch");
        ix->res = b;
        ix->heap_cap = c;
    }
    return CAIRN_OK;
}

static inline void visit_reset(vec_index *ix)
{
    if (++ix->vis_gen == 0) {
        memset(ix->vis, 0, ix->vis_cap * sizeof *ix->vis);
        ix->vis_gen = 1;
    }
}

/* Binary heaps of (d, id): cand is a min-heap, res a max-heap. */
static inline void heap_push(vec_cand *h, size_t *n, vec_cand x, bool max)
{
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (max ? h[p].d >= x.d : h[p].d <= x.d)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static inline vec_cand heap_pop(vec_cand *h, size_t *n, bool max)
{
    vec_cand top = h[0], x = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && (max ? h[c + 1].d > h[c].d : h[c + 1].d < h[c].d))
            c++;
        if (max ? x.d >= h[c].d : x.d <= h[c].d)
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = x;
    return top;
}

/* The heap arrays can need one slot per visited node. */
static cairn_status heap_room(vec_index *ix, size_t n)
{
    return n < ix->heap_cap ? CAIRN_OK : scratch(ix, n + 1);
}

typedef struct layer_q {
    const int8_t *code;
    float scale;
    uint32_t self;              /* node being inserted (distances from codes of a node), or NONE */
    const bm25_allowed *allowed;
    bool filter;                /* results only eligible nodes (live and allowed) */
    uint64_t budget;            /* stop after this many distances (0 = none) */
} layer_q;

static inline bool eligible(const vec_index *ix, const layer_q *q, uint32_t u)
{
    if (is_dead(ix, u))
        return false;
    if (!q->allowed)
        return true;
    uint64_t id = ix->ids[u];
    return id < q->allowed->nbits && (q->allowed->bits[id >> 6] >> (id & 63)) & 1;
}

static inline float qdist(const vec_index *ix, const layer_q *q, uint32_t u)
{
    return dist_code(ix, q->code, q->scale, u);
}

/* Greedy descent at level l from *ep. */
static void greedy(vec_index *ix, const layer_q *q, uint32_t *ep, float *dep, int l, uint64_t *ndist)
{
    bool changed = true;
    while (changed) {
        changed = false;
        const uint32_t *ln = links_at(ix, *ep, l);
        uint32_t c = ln[0];
        for (uint32_t i = 1; i <= c; i++) {
            float d = qdist(ix, q, ln[i]);
            (*ndist)++;
            if (d < *dep) {
                *dep = d;
                *ep = ln[i];
                changed = true;
            }
        }
    }
}

/* Beam search at level l: leaves up to ef results in ix->res (max-heap,
 * ix->n_res). *over_budget when q->budget stopped it. */
static cairn_status search_layer(vec_index *ix, const layer_q *q, uint32_t ep, float dep, size_t ef, int l,
                                 uint64_t *ndist, bool *over_budget)
{
    CAIRN_TRY(heap_room(ix, ef + 64));
    visit_reset(ix);
    uint16_t gen = ix->vis_gen;
    size_t nc = 0, nr = 0;
    vec_cand *cand = ix->cand, *res = ix->res;
    ix->vis[ep] = gen;
    heap_push(cand, &nc, (vec_cand){dep, ep}, false);
    bool filt = q->filter;
    float lower = INFINITY;
    if (!filt || eligible(ix, q, ep)) {
        heap_push(res, &nr, (vec_cand){dep, ep}, true);
        lower = dep;
    }
    uint64_t nd = 0;
    while (nc) {
        vec_cand c = heap_pop(cand, &nc, false);
        if (c.d > lower && nr >= ef)
            break;
        if (nc)     /* the likely next expansion: its links load while this one works */
            __builtin_prefetch(links_at(ix, cand[0].id, l));
        /* unvisited neighbours first, their rows prefetched, then the
         * distances: the loads overlap instead of missing one by one */
        const uint32_t *ln = links_at(ix, c.id, l);
        uint32_t cnt = ln[0], todo[257], nt = 0;
        for (uint32_t i = 1; i <= cnt; i++) {
            uint32_t v = ln[i];
            if (ix->vis[v] == gen)
                continue;
            ix->vis[v] = gen;
            const unsigned char *r = row(ix, v);
            __builtin_prefetch(r);
            __builtin_prefetch(r + 64);
            todo[nt++] = v;
        }
        for (uint32_t i = 0; i < nt; i++) {
            uint32_t v = todo[i];
            float d = qdist(ix, q, v);
            nd++;
            if (nr < ef || d < lower) {
                if (nc + 1 >= ix->heap_cap) {
                    cairn_status st = heap_room(ix, nc + 1);
                    if (st != CAIRN_OK) {
                        *ndist += nd;
                        return st;
                    }
                    cand = ix->cand;
                    res = ix->res;
                }
                heap_push(cand, &nc, (vec_cand){d, v}, false);
                if (!filt || eligible(ix, q, v)) {
                    heap_push(res, &nr, (vec_cand){d, v}, true);
                    if (nr > ef)
                        heap_pop(res, &nr, true);
                    lower = res[0].d;
                }
            }
        }
        if (q->budget && nd > q->budget) {
            *over_budget = true;
            break;
        }
    }
    *ndist += nd;
    ix->n_res = nr;
    return CAIRN_OK;
}

static int cand_cmp(const void *a, const void *b)
{
    const vec_cand *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* The diversity heuristic: keep a candidate (ascending distance to the
 * base) only when it is closer to the base than to every one kept. Writes
 * up to m ids to ix->sel; returns the count. c is sorted ascending. */
static size_t select_heuristic(vec_index *ix, const vec_cand *c, size_t nc, size_t m)
{
    size_t ns = 0;
    for (size_t i = 0; i < nc && ns < m; i++) {
        bool good = true;
        for (size_t j = 0; j < ns; j++) {
            if (dist_nodes(ix, c[i].id, ix->sel[j].id) < c[i].d) {
                good = false;
                break;
            }
        }
        if (good)
            ix->sel[ns++] = c[i];
    }
    return ns;
}

static uint64_t rng_next(vec_index *ix)
{
    uint64_t x = ix->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ix->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int random_level(vec_index *ix)
{
    double u = ((rng_next(ix) >> 11) + 1) * (1.0 / 9007199254740993.0);  /* (0, 1] */
    int l = (int)(-log(u) * ix->mult);
    return l > MAX_LEVEL ? MAX_LEVEL : l;
}

/* Add u to the links of s at level l, shrinking by the heuristic when full. */
static cairn_status link_back(vec_index *ix, uint32_t s, uint32_t u, int l)
{
    uint32_t *ln = links_at(ix, s, l);
    uint32_t cap = l ? ix->p.M : ix->M0;
    if (ln[0] < cap) {
        ln[++ln[0]] = u;
        return CAIRN_OK;
    }
    vec_cand tmp[2 * 128 + 1];
    size_t n = 0;
    for (uint32_t i = 1; i <= ln[0]; i++)
        tmp[n++] = (vec_cand){dist_nodes(ix, s, ln[i]), ln[i]};
    tmp[n++] = (vec_cand){dist_nodes(ix, s, u), u};
    qsort(tmp, n, sizeof *tmp, cand_cmp);
    size_t k = select_heuristic(ix, tmp, n, cap);
    ln[0] = (uint32_t)k;
    for (size_t i = 0; i < k; i++)
        ln[1 + i] = ix->sel[i].id;
    return CAIRN_OK;
}

static cairn_status insert_node(vec_index *ix, uint32_t u)
{
    int level = ix->levels[u];
    if (ix->entry == NONE) {
        ix->entry = u;
        ix->max_level = level;
        return CAIRN_OK;
    }
    layer_q q = {.code = row_code(row(ix, u)), .scale = row_scale(row(ix, u)), .self = u};
    uint32_t ep = ix->entry;
    float dep = qdist(ix, &q, ep);
    uint64_t nd = 0;
    for (int l = ix->max_level; l > level; l--)
        greedy(ix, &q, &ep, &dep, l, &nd);
    for (int l = CAIRN_MIN(level, ix->max_level); l >= 0; l--) {
        bool ob = false;
        CAIRN_TRY(search_layer(ix, &q, ep, dep, ix->p.ef_construction, l, &nd, &ob));
        size_t nr = ix->n_res;
        qsort(ix->res, nr, sizeof *ix->res, cand_cmp);
        /* the node itself is not in the graph yet, so it is not among the results */
        size_t k = select_heuristic(ix, ix->res, nr, ix->p.M);
        uint32_t *ln = links_at(ix, u, l);
        ln[0] = (uint32_t)k;
        for (size_t i = 0; i < k; i++)
            ln[1 + i] = ix->sel[i].id;
        vec_cand sel[128];
        memcpy(sel, ix->sel, k * sizeof *sel);
        for (size_t i = 0; i < k; i++)
            CAIRN_TRY(link_back(ix, sel[i].id, u, l));
        ep = ix->res[0].id;
        dep = ix->res[0].d;
    }
    if (level > ix->max_level) {
        ix->entry = u;
        ix->max_level = level;
    }
    return CAIRN_OK;
}

cairn_status vec_index_add(vec_index *ix, uint64_t id, const float *v)
{
    if (id == UINT64_MAX)
        return cairn_fail(CAIRN_ERR_INVALID, "vector index: invalid id");
    for (uint32_t i = 0; i < ix->dim; i++)
        if (!isfinite(v[i]))
            return cairn_fail(CAIRN_ERR_INVALID, "vector index: vector %llu has a non-finite component %u",
                              (unsigned long long)id, i);
    uint32_t old = vec__find(ix, id);
    if (old != NONE && !is_dead(ix, old))
        return cairn_fail(CAIRN_ERR_INVALID, "vector index: id %llu is already indexed", (unsigned long long)id);
    int level = random_level(ix);
    CAIRN_TRY(ensure_cap(ix, (uint64_t)ix->n + 1, ix->upper_len + (uint64_t)level * (ix->p.M + 1)));
    CAIRN_TRY(map_grow(ix, ix->hused + 1));
    if (!ix->sel) {
        ix->sel = cairn_malloc((2 * 128 + 1) * sizeof *ix->sel);
        if (!ix->sel)
            return cairn_fail(CAIRN_ERR_NOMEM, "vector index scratch");
    }
    CAIRN_TRY(scratch(ix, ix->p.ef_construction + 64));
    uint32_t u = ix->n;
    ix->ids[u] = id;
    ix->levels[u] = (uint8_t)level;
    memcpy(ix->vecs + (size_t)u * ix->dim, v, ix->dim * sizeof *v);
    unsigned char *r = ix->rows + (size_t)u * ix->rs;
    float sc = vec_quantize_i8(v, ix->dim, (int8_t *)(r + 8), ix->dpad);
    memcpy(r, &sc, 4);
    memset(r + 4, 0, 4);
    ix->links0[(size_t)u * (ix->M0 + 1)] = 0;
    ix->upper_off[u] = (uint32_t)ix->upper_len;
    for (int l = 1; l <= level; l++)
        ix->upper[ix->upper_len + (size_t)(l - 1) * (ix->p.M + 1)] = 0;
    ix->upper_len += (size_t)level * (ix->p.M + 1);
    ix->dead[u >> 6] &= ~(1ull << (u & 63));
    ix->n++;
    map_put(ix, id, u);
    cairn_status st = insert_node(ix, u);
    if (st != CAIRN_OK) {
        /* scratch growth failed mid-insert: the node stays as a tombstone so
         * the graph (which may already link to it) remains consistent */
        ix->dead[u >> 6] |= 1ull << (u & 63);
        ix->n_dead++;
        return st;
    }
    return CAIRN_OK;
}

cairn_status vec_index_delete(vec_index *ix, uint64_t id, bool *found)
{
    uint32_t u = vec__find(ix, id);
    bool live = u != NONE && !is_dead(ix, u);
    if (found)
        *found = live;
    if (!live)
        return CAIRN_OK;
    ix->dead[u >> 6] |= 1ull << (u & 63);  /* dead is always heap memory */
    ix->n_dead++;
    return CAIRN_OK;
}

static void swap_index(vec_index *a, vec_index *b)
{
    vec_index t = *a;
    *a = *b;
    *b = t;
}

cairn_status vec_index_compact(vec_index *ix)
{
    if (!ix->n_dead)
        return CAIRN_OK;
    vec_index *nx;
    CAIRN_TRY(vec_index_new(ix->dim, &ix->p, &nx));
    nx->rng = ix->rng;
    cairn_status st = ensure_cap(nx, ix->n - ix->n_dead + 1, 64);
    for (uint32_t u = 0; st == CAIRN_OK && u < ix->n; u++)
        if (!is_dead(ix, u))
            st = vec_index_add(nx, ix->ids[u], ix->vecs + (size_t)u * ix->dim);
    if (st != CAIRN_OK) {
        vec_index_free(nx);
        return st;
    }
    nx->file_bytes = ix->file_bytes;
    swap_index(ix, nx);
    vec_index_free(nx);
    return CAIRN_OK;
}

/* ---- search ---- */

/* Min-heap of the k best by (score, -id): the root is the worst kept. */
static inline bool hit_worse(vec_hit a, vec_hit b) { return a.score < b.score || (a.score == b.score && a.id > b.id); }

static void topk_push(vec_hit *h, size_t *n, size_t k, vec_hit x)
{
    if (*n == k) {
        if (!hit_worse(h[0], x))
            return;
        /* replace root, sift down */
        size_t i = 0;
        for (;;) {
            size_t c = 2 * i + 1;
            if (c >= k)
                break;
            if (c + 1 < k && hit_worse(h[c + 1], h[c]))
                c++;
            if (!hit_worse(h[c], x))
                break;
            h[i] = h[c];
            i = c;
        }
        h[i] = x;
        return;
    }
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!hit_worse(x, h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static int hit_cmp(const void *a, const void *b)
{
    const vec_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static uint64_t popcount_bits(const bm25_allowed *a)
{
    uint64_t c = 0, w = (a->nbits + 63) / 64;
    for (uint64_t i = 0; i < w; i++)
        c += (uint64_t)__builtin_popcountll(a->bits[i]);
    return c;
}

static void exact_scan(vec_index *ix, const float *q, size_t k, const bm25_allowed *allowed, uint64_t n_allowed,
                       vec_hit *out, size_t *n_out, vec_search_stats *st)
{
    size_t n = 0;
    uint64_t nd = 0;
    if (allowed && n_allowed < ix->n) {
        /* walk the allowed ids and look them up */
        uint64_t w = (allowed->nbits + 63) / 64;
        for (uint64_t i = 0; i < w; i++) {
            for (uint64_t b = allowed->bits[i]; b; b &= b - 1) {
                uint64_t id = i * 64 + (uint64_t)__builtin_ctzll(b);
                if (id >= allowed->nbits)
                    break;
                uint32_t u = vec__find(ix, id);
                if (u == NONE || is_dead(ix, u))
                    continue;
                float s = ix->dotf(q, ix->vecs + (size_t)u * ix->dim, ix->dim);
                nd++;
                topk_push(out, &n, k, (vec_hit){id, s});
            }
        }
    } else {
        layer_q lq = {.allowed = allowed};
        for (uint32_t u = 0; u < ix->n; u++) {
            if (!eligible(ix, &lq, u))
                continue;
            float s = ix->dotf(q, ix->vecs + (size_t)u * ix->dim, ix->dim);
            nd++;
            topk_push(out, &n, k, (vec_hit){ix->ids[u], s});
        }
    }
    qsort(out, n, sizeof *out, hit_cmp);
    *n_out = n;
    st->dist_f32 += nd;
    st->exact = true;
}

cairn_status vec_index_search(vec_index *ix, const float *q, size_t k, const vec_search_opts *o, vec_hit *out,
                              size_t *n_out, vec_search_stats *stp)
{
    vec_search_stats lst;
    vec_search_stats *st = stp ? stp : &lst;
    memset(st, 0, sizeof *st);
    *n_out = 0;
    vec_search_opts dflt = {0};
    if (!o)
        o = &dflt;
    if (k == 0 || ix->n == ix->n_dead)
        return CAIRN_OK;
    for (uint32_t i = 0; i < ix->dim; i++)
        if (!isfinite(q[i]))
            return cairn_fail(CAIRN_ERR_INVALID, "vector search: query has a non-finite component %u", i);
    const bm25_allowed *allowed = o->allowed;
    uint64_t live = ix->n - ix->n_dead;
    uint64_t n_allowed = allowed ? popcount_bits(allowed) : live;
    if (n_allowed > live)
        n_allowed = live;   /* an estimate: ids outside the index are counted too */
    size_t ef = o->ef ? o->ef : ix->p.ef_search;
    if (ef < k)
        ef = k;
    uint64_t exact_below = ix->p.exact_below;
    if (!exact_below)
        exact_below = (uint64_t)sqrt((double)ef * ix->M0 * (double)ix->n);
    bool exact = o->mode == VEC_SEARCH_EXACT ||
                 (o->mode == VEC_SEARCH_AUTO && allowed && n_allowed <= exact_below) || n_allowed <= k;
    if (exact) {
        exact_scan(ix, q, k, allowed, n_allowed, out, n_out, st);
        return CAIRN_OK;
    }
    CAIRN_TRY(scratch(ix, ef + 64));
    float qs = vec_quantize_i8(q, ix->dim, ix->qcode, ix->dpad);
    layer_q lq = {.code = ix->qcode, .scale = qs, .self = NONE, .allowed = allowed,
                  .filter = allowed != NULL || ix->n_dead > 0};
    /* Past this many distances the exact scan over the allowed set would
     * have been cheaper (a float dot costs about 2-3 int8 ones). */
    if (allowed && o->mode == VEC_SEARCH_AUTO)
        lq.budget = CAIRN_MAX(3 * n_allowed, (uint64_t)ef * ix->M0 * 4);
    uint32_t ep = ix->entry;
    float dep = qdist(ix, &lq, ep);
    uint64_t nd = 1;
    for (int l = ix->max_level; l > 0; l--)
        greedy(ix, &lq, &ep, &dep, l, &nd);
    bool over = false;
    CAIRN_TRY(search_layer(ix, &lq, ep, dep, ef, 0, &nd, &over));
    st->dist_i8 = nd;
    size_t nr = ix->n_res;
    if ((over && o->mode == VEC_SEARCH_AUTO) || nr < k) {
        st->fallback = true;
        exact_scan(ix, q, k, allowed, n_allowed, out, n_out, st);
        return CAIRN_OK;
    }
    /* rescore every result with floats, keep the k best */
    size_t n = 0;
    for (size_t i = 0; i < nr; i++) {
        uint32_t u = ix->res[i].id;
        float s = ix->dotf(q, ix->vecs + (size_t)u * ix->dim, ix->dim);
        topk_push(out, &n, k, (vec_hit){ix->ids[u], s});
    }
    st->dist_f32 += nr;
    qsort(out, n, sizeof *out, hit_cmp);
    *n_out = n;
    return CAIRN_OK;
}
