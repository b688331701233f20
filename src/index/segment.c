/*
 * segment.c — one immutable BM25 segment: in-memory builder, file writer,
 * validating mmap reader, posting-block decoder.
 *
 * File format (little-endian, x86-64 layout; every section 8-byte aligned):
 *
 *   seg_header                      80 bytes, magic "CAIRNBM1", version 1
 *   doclen    u32[n_span]           field-weighted length of local doc i
 *                                   (chunk id base+i); SEG_ABSENT = not here
 *   term_off  u32[n_terms + 1]      offsets of each term in term bytes
 *   term bytes                      sorted (memcmp order), no separators
 *   terms     seg_term[n_terms]     df, first block, block count, max tf
 *   blocks    seg_block[n_blocks]   per 128 postings: last doc, min doclen,
 *                                   max tf, count, offset of the encoded data
 *   postings  bytes                 per block: count LEB128 doc gaps
 *                                   (doc - prev - 1, prev = last doc of the
 *                                   previous block of the term or -1), then
 *                                   count LEB128 (tf - 1)
 *
 * The checksum (XXH3-64) covers everything after the header and is checked
 * at open, so query-time decoding only guards against overruns; block
 * decoding still validates every doc id against the block and the span.
 * A block's (max tf, min doclen) gives a safe score upper bound because
 * BM25's tf part rises with tf and falls with doclen.
 */
#define _GNU_SOURCE
#include "index/segment.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

_Static_assert(sizeof(seg_header) == 80, "segment header layout");
_Static_assert(sizeof(seg_term) == 16, "segment term layout");
_Static_assert(sizeof(seg_block) == 24, "segment block layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "segment files are little-endian");

#define SEG_MAGIC "CAIRNBM1"
#define SEG_VERSION 1
#define SEG_MAX_SPAN (1u << 26)     /* widest id range per segment */

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- reading ---- */

static cairn_status corrupt(const char *path, const char *what)
{
    return cairn_fail(CAIRN_ERR_CORRUPT, "%s: corrupt index segment (%s); delete .cairn/index to rebuild it", path, what);
}

cairn_status seg_open(const char *path, seg **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_fail(errno == ENOENT ? CAIRN_ERR_NOT_FOUND : CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if ((uint64_t)sb.st_size < sizeof(seg_header)) {
        close(fd);
        return corrupt(path, "too short");
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    seg *s = cairn_calloc(1, sizeof *s);
    char *p = cairn_strdup(path);
    if (!s || !p) {
        munmap(map, len);
        cairn_free(s);
        cairn_free(p);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory opening %s", path);
    }
    s->path = p;
    s->map = map;
    s->map_len = len;
    memcpy(&s->h, map, sizeof s->h);
    const seg_header *h = &s->h;
    const char *why = NULL;
    if (memcmp(h->magic, SEG_MAGIC, 8) != 0)
        why = "bad magic";
    else if (h->version != SEG_VERSION)
        why = "unknown version";
    else if (h->file_size != len)
        why = "size mismatch";
    else if (h->n_span > SEG_MAX_SPAN || h->n_docs > h->n_span)
        why = "bad doc counts";
    if (!why) {
        /* Section sizes from counts, overflow-free in 64-bit given the caps. */
        uint64_t off = sizeof(seg_header);
        uint64_t o_doclen = off; off += pad8((uint64_t)h->n_span * 4);
        uint64_t o_toff = off; off += pad8(((uint64_t)h->n_terms + 1) * 4);
        uint64_t o_tbytes = off; off += pad8(h->term_bytes);
        uint64_t o_terms = off; off += (uint64_t)h->n_terms * sizeof(seg_term);
        uint64_t o_blocks = off; off += (uint64_t)h->n_blocks * sizeof(seg_block);
        uint64_t o_post = off; off += h->postings_len;
        if (h->n_terms > (1u << 30) || h->n_blocks > (1u << 30) || off != len)
            why = "section sizes";
        else if (cairn_hash64(s->map + sizeof(seg_header), len - sizeof(seg_header)) != h->checksum)
            why = "checksum mismatch";
        else {
            s->doclen = (const uint32_t *)(s->map + o_doclen);
            s->term_off = (const uint32_t *)(s->map + o_toff);
            s->term_bytes = (const char *)(s->map + o_tbytes);
            s->terms = (const seg_term *)(s->map + o_terms);
            s->blocks = (const seg_block *)(s->map + o_blocks);
            s->postings = s->map + o_post;
        }
    }
    if (!why) {
        if (s->term_off[0] != 0 || s->term_off[h->n_terms] != h->term_bytes)
            why = "term offsets";
        for (uint32_t t = 0; !why && t < h->n_terms; t++) {
            const seg_term *tm = &s->terms[t];
            if (s->term_off[t + 1] <= s->term_off[t] || s->term_off[t + 1] - s->term_off[t] > 256)
                why = "term offsets";
            else if (tm->n_blocks == 0 || (uint64_t)tm->first_block + tm->n_blocks > h->n_blocks ||
                     tm->df > h->n_docs || tm->df == 0)
                why = "term blocks";
        }
        uint64_t prev_off = 0;
        for (uint32_t b = 0; !why && b < h->n_blocks; b++) {
            const seg_block *bl = &s->blocks[b];
            if (bl->count == 0 || bl->count > SEG_BLOCK || bl->off < prev_off || bl->off >= h->postings_len ||
                bl->last_doc >= h->n_span || bl->max_tf == 0)
                why = "block table";
            prev_off = bl->off;
        }
    }
    if (why) {
        cairn_status st = corrupt(path, why);
        seg_close(s);
        return st;
    }
    *out = s;
    return CAIRN_OK;
}

void seg_close(seg *s)
{
    if (!s)
        return;
    if (s->map)
        munmap((void *)s->map, s->map_len);
    cairn_free(s->path);
    cairn_free(s);
}

int64_t seg_find(const seg *s, const char *term, size_t len)
{
    int64_t lo = 0, hi = (int64_t)s->h.n_terms - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) >> 1;
        size_t ml;
        const char *m = seg_term_str(s, (uint32_t)mid, &ml);
        int c = memcmp(m, term, ml < len ? ml : len);
        if (c == 0)
            c = ml < len ? -1 : ml > len ? 1 : 0;
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static inline const uint8_t *get_varint(const uint8_t *p, const uint8_t *end, uint32_t *v)
{
    uint32_t x = 0;
    for (int shift = 0; shift < 35 && p < end; shift += 7) {
        uint8_t c = *p++;
        x |= (uint32_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return p;
        }
    }
    return NULL;
}

uint32_t seg_decode_block(const seg *s, uint32_t b, uint32_t prev_last, uint32_t *docs, uint32_t *tfs)
{
    const seg_block *bl = &s->blocks[b];
    const uint8_t *p = s->postings + bl->off;
    const uint8_t *end = s->postings + (b + 1 < s->h.n_blocks ? s->blocks[b + 1].off : s->h.postings_len);
    uint32_t n = bl->count;
    uint32_t prev = prev_last;   /* UINT32_MAX = -1 */
    for (uint32_t i = 0; i < n; i++) {
        uint32_t d;
        if (CAIRN_LIKELY(p < end && *p < 0x80))
            d = *p++;
        else if (!(p = get_varint(p, end, &d)))
            return 0;
        uint64_t doc = (uint64_t)(uint32_t)(prev + 1) + d;
        if (doc > bl->last_doc)
            return 0;
        docs[i] = prev = (uint32_t)doc;
    }
    if (prev != bl->last_doc)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t;
        if (CAIRN_LIKELY(p < end && *p < 0x80))
            t = *p++;
        else if (!(p = get_varint(p, end, &t)))
            return 0;
        if (t >= bl->max_tf)
            return 0;
        tfs[i] = t + 1;
    }
    return n;
}

/* ---- building ---- */

struct seg_builder {
    /* term dictionary: open addressing over term ids */
    char *strs;
    size_t strs_len, strs_cap;
    uint32_t *toff;         /* [n_terms] offset in strs; length in tlen */
    uint8_t *tlen;
    uint32_t n_terms, cap_terms;
    uint32_t *slots;        /* term id + 1; 0 = empty */
    uint32_t n_slots;
    /* postings as (term, local doc, tf) in insertion order */
    uint32_t *p_term, *p_doc, *p_tf;
    size_t n_post, cap_post;
    /* docs */
    bool has_base;
    uint64_t base, max_chunk, total_len;
    uint32_t *doclen;
    uint32_t n_span, cap_span, n_docs;
    /* current doc (token stream mode) */
    uint32_t *cur_tf;       /* [cap_terms] */
    uint32_t *touched;
    uint32_t n_touched, cap_touched;
    uint32_t cur_doc, cur_len;
    bool in_doc;
};

cairn_status seg_builder_new(seg_builder **out)
{
    seg_builder *b = cairn_calloc(1, sizeof *b);
    if (!b)
        return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
    b->n_slots = 1u << 12;
    b->slots = cairn_calloc(b->n_slots, sizeof *b->slots);
    if (!b->slots) {
        cairn_free(b);
        return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
    }
    *out = b;
    return CAIRN_OK;
}

void seg_builder_free(seg_builder *b)
{
    if (!b)
        return;
    cairn_free(b->strs);
    cairn_free(b->toff);
    cairn_free(b->tlen);
    cairn_free(b->slots);
    cairn_free(b->p_term);
    cairn_free(b->p_doc);
    cairn_free(b->p_tf);
    cairn_free(b->doclen);
    cairn_free(b->cur_tf);
    cairn_free(b->touched);
    cairn_free(b);
}

size_t seg_builder_postings(const seg_builder *b) { return b->n_post; }
uint32_t seg_builder_docs(const seg_builder *b) { return b->n_docs; }
uint64_t seg_builder_first(const seg_builder *b) { return b->base; }

static uint64_t term_hash(const char *s, size_t n)
{
    return cairn_hash64(s, n);
}

static cairn_status grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return CAIRN_OK;
    uint32_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > UINT32_MAX / 2)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "index builder: too many entries");
        nc *= 2;
    }
    void *q = cairn_reallocarray(*p, nc, elem);
    if (!q)
        return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
    *p = q;
    *cap = nc;
    return CAIRN_OK;
}

static cairn_status rehash(seg_builder *b)
{
    uint32_t ns = b->n_slots * 2;
    uint32_t *slots = cairn_calloc(ns, sizeof *slots);
    if (!slots)
        return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
    for (uint32_t t = 0; t < b->n_terms; t++) {
        uint32_t i = (uint32_t)term_hash(b->strs + b->toff[t], b->tlen[t]) & (ns - 1);
        while (slots[i])
            i = (i + 1) & (ns - 1);
        slots[i] = t + 1;
    }
    cairn_free(b->slots);
    b->slots = slots;
    b->n_slots = ns;
    return CAIRN_OK;
}

/* Term id for a string, adding it if new. */
static cairn_status intern(seg_builder *b, const char *term, size_t len, uint32_t *id)
{
    if (len == 0 || len > 255)
        return cairn_fail(CAIRN_ERR_INVALID, "index term of %zu bytes", len);
    uint32_t i = (uint32_t)term_hash(term, len) & (b->n_slots - 1);
    for (; b->slots[i]; i = (i + 1) & (b->n_slots - 1)) {
        uint32_t t = b->slots[i] - 1;
        if (b->tlen[t] == len && !memcmp(b->strs + b->toff[t], term, len)) {
            *id = t;
            return CAIRN_OK;
        }
    }
    uint32_t t = b->n_terms;
    uint32_t cap = b->cap_terms;
    CAIRN_TRY(grow((void **)&b->toff, &cap, t + 1, sizeof *b->toff));
    uint32_t cap2 = b->cap_terms;
    CAIRN_TRY(grow((void **)&b->tlen, &cap2, t + 1, sizeof *b->tlen));
    uint32_t cap3 = b->cap_terms;
    CAIRN_TRY(grow((void **)&b->cur_tf, &cap3, t + 1, sizeof *b->cur_tf));
    if (cap3 > b->cap_terms)
        memset(b->cur_tf + b->cap_terms, 0, (size_t)(cap3 - b->cap_terms) * sizeof *b->cur_tf);
    b->cap_terms = cap;
    if (b->strs_len + len > b->strs_cap) {
        size_t nc = b->strs_cap ? b->strs_cap * 2 : 65536;
        while (nc < b->strs_len + len)
            nc *= 2;
        if (nc > UINT32_MAX)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "index builder: term dictionary too large");
        char *q = cairn_realloc(b->strs, nc);
        if (!q)
            return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
        b->strs = q;
        b->strs_cap = nc;
    }
    memcpy(b->strs + b->strs_len, term, len);
    b->toff[t] = (uint32_t)b->strs_len;
    b->tlen[t] = (uint8_t)len;
    b->strs_len += len;
    b->n_terms++;
    b->slots[i] = t + 1;
    if (b->n_terms * 2 > b->n_slots)
        CAIRN_TRY(rehash(b));
    *id = t;
    return CAIRN_OK;
}

bool seg_builder_fits(const seg_builder *b, uint64_t chunk_id)
{
    return !b->has_base || (chunk_id >= b->base && chunk_id - b->base < SEG_MAX_SPAN);
}

static cairn_status add_doc(seg_builder *b, uint64_t chunk_id, uint32_t *local)
{
    if (!b->has_base) {
        b->has_base = true;
        b->base = chunk_id;
    } else if (chunk_id <= b->max_chunk && b->n_docs > 0) {
        return cairn_fail(CAIRN_ERR_INVALID, "index: chunk %llu added out of order", (unsigned long long)chunk_id);
    }
    if (!seg_builder_fits(b, chunk_id))
        return cairn_fail(CAIRN_ERR_INTERNAL, "index: chunk id range too wide for one segment");
    uint32_t l = (uint32_t)(chunk_id - b->base);
    uint32_t old = b->cap_span;
    CAIRN_TRY(grow((void **)&b->doclen, &b->cap_span, l + 1, sizeof *b->doclen));
    for (uint32_t i = old; i < b->cap_span; i++)
        b->doclen[i] = SEG_ABSENT;
    if (l + 1 > b->n_span)
        b->n_span = l + 1;
    b->max_chunk = chunk_id;
    b->n_docs++;
    *local = l;
    return CAIRN_OK;
}

static cairn_status push_posting(seg_builder *b, uint32_t term, uint32_t doc, uint32_t tf)
{
    if (b->n_post == b->cap_post) {
        size_t nc = b->cap_post ? b->cap_post * 2 : 1u << 16;
        uint32_t *a = cairn_reallocarray(b->p_term, nc, 4);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
        b->p_term = a;
        a = cairn_reallocarray(b->p_doc, nc, 4);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
        b->p_doc = a;
        a = cairn_reallocarray(b->p_tf, nc, 4);
        if (!a)
            return cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
        b->p_tf = a;
        b->cap_post = nc;
    }
    b->p_term[b->n_post] = term;
    b->p_doc[b->n_post] = doc;
    b->p_tf[b->n_post] = tf;
    b->n_post++;
    return CAIRN_OK;
}

cairn_status seg_builder_begin_doc(seg_builder *b, uint64_t chunk_id)
{
    if (b->in_doc)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index builder: nested document");
    CAIRN_TRY(add_doc(b, chunk_id, &b->cur_doc));
    b->in_doc = true;
    b->cur_len = 0;
    b->n_touched = 0;
    return CAIRN_OK;
}

cairn_status seg_builder_term(seg_builder *b, const char *term, size_t len, uint32_t weight)
{
    uint32_t t;
    CAIRN_TRY(intern(b, term, len, &t));
    if (b->cur_tf[t] == 0) {
        CAIRN_TRY(grow((void **)&b->touched, &b->cap_touched, b->n_touched + 1, sizeof *b->touched));
        b->touched[b->n_touched++] = t;
    }
    if (b->cur_tf[t] > UINT32_MAX / 2 - weight || b->cur_len > UINT32_MAX / 2 - weight)
        return CAIRN_OK;    /* saturate absurd counts */
    b->cur_tf[t] += weight;
    b->cur_len += weight;
    return CAIRN_OK;
}

cairn_status seg_builder_end_doc(seg_builder *b)
{
    cairn_status st = CAIRN_OK;
    for (uint32_t i = 0; i < b->n_touched; i++) {
        uint32_t t = b->touched[i];
        if (st == CAIRN_OK)
            st = push_posting(b, t, b->cur_doc, b->cur_tf[t]);
        b->cur_tf[t] = 0;
    }
    b->n_touched = 0;
    b->in_doc = false;
    if (st != CAIRN_OK)
        return st;
    b->doclen[b->cur_doc] = b->cur_len;
    b->total_len += b->cur_len;
    return CAIRN_OK;
}

cairn_status seg_builder_doc_len(seg_builder *b, uint64_t chunk_id, uint32_t dl)
{
    uint32_t l;
    CAIRN_TRY(add_doc(b, chunk_id, &l));
    b->doclen[l] = dl;
    b->total_len += dl;
    return CAIRN_OK;
}

cairn_status seg_builder_posting(seg_builder *b, const char *term, size_t len, uint64_t chunk_id, uint32_t tf)
{
    if (!b->has_base || chunk_id < b->base || chunk_id - b->base >= b->n_span)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index builder: posting for unknown chunk");
    uint32_t t;
    CAIRN_TRY(intern(b, term, len, &t));
    return push_posting(b, t, (uint32_t)(chunk_id - b->base), tf);
}

static int cmp_terms(const void *x, const void *y, void *ctx)
{
    const seg_builder *b = ctx;
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    size_t la = b->tlen[a], lc = b->tlen[c];
    int r = memcmp(b->strs + b->toff[a], b->strs + b->toff[c], la < lc ? la : lc);
    return r ? r : (la < lc ? -1 : la > lc ? 1 : 0);
}

static void put_varint(uint8_t **p, uint32_t v)
{
    while (v >= 0x80) {
        *(*p)++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *(*p)++ = (uint8_t)v;
}

cairn_status seg_builder_write(seg_builder *b, const char *path)
{
    if (b->in_doc)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index builder: write inside a document");
    cairn_status st = CAIRN_OK;
    uint32_t nt = b->n_terms;
    uint32_t *order = cairn_calloc(nt ? nt : 1, sizeof *order);       /* sorted position -> term id */
    uint32_t *start = cairn_calloc((size_t)nt + 1, sizeof *start);     /* term id -> first posting */
    uint32_t *sorted = cairn_calloc(b->n_post ? b->n_post : 1, sizeof *sorted); /* posting indices by term */
    uint8_t *file = NULL;
    if (!order || !start || !sorted) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
        goto done;
    }
    if (b->n_post > UINT32_MAX - 1) {
        st = cairn_fail(CAIRN_ERR_TOO_LARGE, "index builder: too many postings for one segment");
        goto done;
    }
    for (uint32_t t = 0; t < nt; t++)
        order[t] = t;
    qsort_r(order, nt, sizeof *order, cmp_terms, b);
    /* Counting sort of postings by term; stable, so docs stay ascending. */
    for (size_t i = 0; i < b->n_post; i++)
        start[b->p_term[i] + 1]++;
    for (uint32_t t = 0; t < nt; t++)
        start[t + 1] += start[t];
    {
        uint32_t *fill = cairn_calloc(nt ? nt : 1, sizeof *fill);
        if (!fill) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
            goto done;
        }
        for (size_t i = 0; i < b->n_post; i++) {
            uint32_t t = b->p_term[i];
            sorted[start[t] + fill[t]++] = (uint32_t)i;
        }
        cairn_free(fill);
    }
    /* Sizes. */
    size_t n_blocks = 0;
    for (uint32_t t = 0; t < nt; t++)
        n_blocks += (start[t + 1] - start[t] + SEG_BLOCK - 1) / SEG_BLOCK;
    size_t post_cap = b->n_post * 10 + 16;   /* two 5-byte varints at most */
    size_t off = sizeof(seg_header);
    size_t o_doclen = off; off += pad8((size_t)b->n_span * 4);
    size_t o_toff = off; off += pad8(((size_t)nt + 1) * 4);
    size_t o_tbytes = off; off += pad8(b->strs_len);
    size_t o_terms = off; off += (size_t)nt * sizeof(seg_term);
    size_t o_blocks = off; off += n_blocks * sizeof(seg_block);
    size_t o_post = off;
    file = cairn_calloc(1, off + post_cap);
    if (!file) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory (%zu bytes)", off + post_cap);
        goto done;
    }
    if (b->n_span)
        memcpy(file + o_doclen, b->doclen, (size_t)b->n_span * 4);
    uint32_t *toff = (uint32_t *)(file + o_toff);
    char *tbytes = (char *)(file + o_tbytes);
    seg_term *terms = (seg_term *)(file + o_terms);
    seg_block *blocks = (seg_block *)(file + o_blocks);
    uint8_t *post = file + o_post, *p = post;
    uint32_t tb = 0, bi = 0;
    for (uint32_t r = 0; r < nt; r++) {
        uint32_t t = order[r];
        toff[r] = tb;
        memcpy(tbytes + tb, b->strs + b->toff[t], b->tlen[t]);
        tb += b->tlen[t];
        uint32_t s0 = start[t], s1 = start[t + 1];
        seg_term *tm = &terms[r];
        tm->df = s1 - s0;
        tm->first_block = bi;
        tm->max_tf = 0;
        uint32_t prev = UINT32_MAX;
        for (uint32_t s = s0; s < s1; s += SEG_BLOCK) {
            uint32_t e = s + SEG_BLOCK < s1 ? s + SEG_BLOCK : s1;
            seg_block *bl = &blocks[bi++];
            bl->off = (uint64_t)(p - post);
            bl->count = e - s;
            bl->min_dl = UINT32_MAX;
            bl->max_tf = 0;
            for (uint32_t j = s; j < e; j++) {
                uint32_t d = b->p_doc[sorted[j]];
                put_varint(&p, d - prev - 1);
                prev = d;
                uint32_t dl = b->doclen[d];
                if (dl < bl->min_dl)
                    bl->min_dl = dl;
            }
            bl->last_doc = prev;
            for (uint32_t j = s; j < e; j++) {
                uint32_t tf = b->p_tf[sorted[j]];
                put_varint(&p, tf - 1);
                if (tf > bl->max_tf)
                    bl->max_tf = tf;
            }
            if (bl->max_tf > tm->max_tf)
                tm->max_tf = bl->max_tf;
        }
        tm->n_blocks = bi - tm->first_block;
    }
    toff[nt] = tb;
    size_t total = o_post + (size_t)(p - post);
    seg_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SEG_MAGIC, 8);
    h.version = SEG_VERSION;
    h.n_terms = nt;
    h.base = b->base;
    h.max_chunk = b->max_chunk;
    h.total_len = b->total_len;
    h.n_span = b->n_span;
    h.n_docs = b->n_docs;
    h.n_blocks = (uint32_t)n_blocks;
    h.term_bytes = (uint32_t)b->strs_len;
    h.postings_len = (uint64_t)(p - post);
    h.file_size = total;
    h.checksum = cairn_hash64(file + sizeof h, total - sizeof h);
    memcpy(file, &h, sizeof h);
    st = cairn_file_write_atomic(path, file, total);
done:
    cairn_free(order);
    cairn_free(start);
    cairn_free(sorted);
    cairn_free(file);
    return st;
}
