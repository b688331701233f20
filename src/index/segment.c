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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

_Static_assert(sizeof(seg_header) == 80, "segment header layout");
_Static_assert(sizeof(seg_term) == 16, "segment term layout");
_Static_assert(sizeof(seg_block) == 24, "segment block layout");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "segment files are little-endian");

#define SEG_MAGIC "CAIRNBM1"
#define SEG_VERSION 1

static size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* ---- reading ---- */

static cairn_status corrupt(const char *path, const char *what)
{
    return cairn_fail(CAIRN_ERR_CORRUPT, "%s: corrupt index segment (%s); delete .cairn/index to rebuild it", path, what);
}

/* Checksum of [header, len) in windows; a large file's pages are dropped
 * from this process after hashing (they stay in the page cache and fault
 * back in when a query touches them), so opening big segments does not pin
 * them in the resident set. */
#define HASH_WINDOW ((size_t)4 << 20)
#define RELEASE_ABOVE ((size_t)1 << 20)

static uint64_t hash_releasing(const uint8_t *map, size_t len)
{
    size_t off = sizeof(seg_header);
    if (len <= RELEASE_ABOVE)
        return cairn_hash64(map + off, len - off);
    XXH3_state_t *st = XXH3_createState();
    if (!st)
        return cairn_hash64(map + off, len - off);
    XXH3_64bits_reset(st);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    while (off < len) {
        size_t n = CAIRN_MIN(HASH_WINDOW, len - off);
        XXH3_64bits_update(st, map + off, n);
        size_t a = off / page * page, b = (off + n) / page * page;
        if (b > a)
            madvise((void *)(map + a), b - a, MADV_DONTNEED);
        off += n;
    }
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return h;
}

void seg_release(const seg *s, uint64_t from, uint64_t to)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (to > s->map_len)
        to = s->map_len;
    uint64_t a = (from + page - 1) / page * page, b = to / page * page;
    if (b > a)
        madvise((void *)(s->map + a), b - a, MADV_DONTNEED);
}

/* Is term a < term b in the dictionary's order (memcmp, a prefix first)?
 * Offsets already checked. */
static bool term_less(const seg *s, uint32_t a, uint32_t b)
{
    size_t la = s->term_off[a + 1] - s->term_off[a], lb = s->term_off[b + 1] - s->term_off[b];
    int c = memcmp(s->term_bytes + s->term_off[a], s->term_bytes + s->term_off[b], la < lb ? la : lb);
    return c < 0 || (c == 0 && la < lb);
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
    void *map = cairn_io_mmap(len, PROT_READ, MAP_SHARED, fd);
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
        else if (hash_releasing(s->map, len) != h->checksum)
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
            else if (t > 0 && !term_less(s, t - 1, t))
                why = "terms out of order";   /* seg_find's binary search needs them ascending */
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

void seg_postings_init(seg_postings *it, const seg *s, int64_t term)
{
    const seg_term *tm = &s->terms[term];
    *it = (seg_postings){.s = s, .b = tm->first_block, .end = tm->first_block + tm->n_blocks, .prev = UINT32_MAX};
}

cairn_status seg_postings_next(seg_postings *it, uint32_t *docs, uint32_t *tfs, uint32_t *n)
{
    *n = 0;
    if (it->b >= it->end)
        return CAIRN_OK;
    *n = seg_decode_block(it->s, it->b, it->prev, docs, tfs);
    if (*n == 0)
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: corrupt postings; delete the index directory to rebuild it",
                          it->s->path);
    it->prev = it->s->blocks[it->b++].last_doc;
    return CAIRN_OK;
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
        size_t nc = b->cap_post ? (b->cap_post < (1u << 20) ? b->cap_post * 2 : b->cap_post + b->cap_post / 2) : 1u << 16;
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

/* ---- streaming writer ----
 * Postings are encoded block by block into an unlinked temporary file next
 * to the segment; the dictionary, term and block tables (small: ~20 bytes
 * per term and per 128 postings) stay in memory. finish() writes the final
 * file section by section (hashing as it goes), copies the postings in, puts
 * the header in place, fsyncs and renames. Memory is independent of the
 * segment's size apart from doclen (4 bytes per chunk id). */

#define WBUF (1u << 20)

struct seg_writer {
    char *path;
    int post_fd;
    uint8_t *buf;           /* postings write buffer */
    size_t buf_len;
    uint64_t post_len;      /* postings bytes so far (file + buffer) */
    uint64_t base;
    uint32_t n_span, n_docs;
    uint64_t max_chunk, total_len;
    uint32_t *doclen;       /* [n_span] */
    /* dictionary */
    char *tbytes;
    size_t tb_len, tb_cap;
    uint32_t *toff;         /* [n_terms + 1] */
    uint32_t cap_toff;
    seg_term *terms;
    uint32_t n_terms, cap_terms;
    seg_block *blocks;
    uint32_t n_blocks, cap_blocks;
    /* the current term */
    char cur[256];
    size_t cur_len;
    bool cur_open;          /* current term has postings (is in the tables) */
    bool have_term;
    uint32_t prev_doc;      /* last doc of the term's previous block, UINT32_MAX = none */
    uint32_t last_doc;      /* last doc added to the term */
    uint32_t bdocs[SEG_BLOCK], btfs[SEG_BLOCK], bn;
};

void seg_writer_free(seg_writer *w)
{
    if (!w)
        return;
    if (w->post_fd >= 0)
        close(w->post_fd);
    cairn_free(w->path);
    cairn_free(w->buf);
    cairn_free(w->doclen);
    cairn_free(w->tbytes);
    cairn_free(w->toff);
    cairn_free(w->terms);
    cairn_free(w->blocks);
    cairn_free(w);
}

static cairn_status write_all(int fd, const void *p, size_t n, const char *path)
{
    const uint8_t *q = p;
    while (n) {
        ssize_t r = cairn_io_write(fd, q, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cairn_fail(CAIRN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        q += r;
        n -= (size_t)r;
    }
    return CAIRN_OK;
}

cairn_status seg_writer_new(const char *path, uint64_t base, uint32_t n_span, seg_writer **out)
{
    *out = NULL;
    if (n_span > SEG_MAX_SPAN)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index: chunk id range too wide for one segment");
    seg_writer *w = cairn_calloc(1, sizeof *w);
    if (!w)
        return cairn_fail(CAIRN_ERR_NOMEM, "index writer: out of memory");
    w->post_fd = -1;
    w->base = base;
    w->n_span = n_span;
    w->prev_doc = UINT32_MAX;
    w->path = cairn_strdup(path);
    w->buf = cairn_malloc(WBUF);
    w->doclen = cairn_malloc((size_t)(n_span ? n_span : 1) * sizeof *w->doclen);
    w->toff = cairn_calloc(1, sizeof *w->toff);
    w->cap_toff = 1;
    if (!w->path || !w->buf || !w->doclen || !w->toff) {
        seg_writer_free(w);
        return cairn_fail(CAIRN_ERR_NOMEM, "index writer: out of memory");
    }
    for (uint32_t i = 0; i < n_span; i++)
        w->doclen[i] = SEG_ABSENT;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.post.%ld", path, (long)getpid());
    w->post_fd = cairn_io_open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w->post_fd < 0) {
        cairn_status st = cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        seg_writer_free(w);
        return st;
    }
    unlink(tmp);    /* anonymous from here on: nothing to clean up after a crash */
    *out = w;
    return CAIRN_OK;
}

cairn_status seg_writer_doc(seg_writer *w, uint32_t local, uint32_t dl)
{
    if (local >= w->n_span || dl == SEG_ABSENT)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index writer: doc %u outside the segment", local);
    if (w->doclen[local] == SEG_ABSENT)
        w->n_docs++;
    else
        w->total_len -= w->doclen[local];
    w->doclen[local] = dl;
    w->total_len += dl;
    if (w->base + local > w->max_chunk)
        w->max_chunk = w->base + local;
    return CAIRN_OK;
}

static cairn_status post_write(seg_writer *w, const uint8_t *p, size_t n)
{
    if (w->buf_len + n > WBUF) {
        CAIRN_TRY(write_all(w->post_fd, w->buf, w->buf_len, w->path));
        w->buf_len = 0;
    }
    memcpy(w->buf + w->buf_len, p, n);
    w->buf_len += n;
    w->post_len += n;
    return CAIRN_OK;
}

static void put_varint(uint8_t **p, uint32_t v)
{
    while (v >= 0x80) {
        *(*p)++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *(*p)++ = (uint8_t)v;
}

static cairn_status flush_block(seg_writer *w)
{
    if (w->bn == 0)
        return CAIRN_OK;
    CAIRN_TRY(grow((void **)&w->blocks, &w->cap_blocks, w->n_blocks + 1, sizeof *w->blocks));
    seg_block *bl = &w->blocks[w->n_blocks++];
    bl->off = w->post_len;
    bl->count = w->bn;
    bl->min_dl = UINT32_MAX;
    bl->max_tf = 0;
    uint8_t enc[SEG_BLOCK * 10];
    uint8_t *p = enc;
    uint32_t prev = w->prev_doc;
    for (uint32_t j = 0; j < w->bn; j++) {
        put_varint(&p, w->bdocs[j] - prev - 1);
        prev = w->bdocs[j];
        uint32_t dl = w->doclen[w->bdocs[j]];
        if (dl < bl->min_dl)
            bl->min_dl = dl;
    }
    bl->last_doc = prev;
    for (uint32_t j = 0; j < w->bn; j++) {
        put_varint(&p, w->btfs[j] - 1);
        if (w->btfs[j] > bl->max_tf)
            bl->max_tf = w->btfs[j];
    }
    seg_term *tm = &w->terms[w->n_terms - 1];
    if (bl->max_tf > tm->max_tf)
        tm->max_tf = bl->max_tf;
    tm->n_blocks++;
    w->prev_doc = prev;
    w->bn = 0;
    return post_write(w, enc, (size_t)(p - enc));
}

static cairn_status end_term(seg_writer *w)
{
    if (!w->cur_open)
        return CAIRN_OK;
    CAIRN_TRY(flush_block(w));
    w->cur_open = false;
    return CAIRN_OK;
}

cairn_status seg_writer_term(seg_writer *w, const char *term, size_t len)
{
    if (len == 0 || len > 255)
        return cairn_fail(CAIRN_ERR_INVALID, "index term of %zu bytes", len);
    if (w->have_term) {
        int c = memcmp(w->cur, term, CAIRN_MIN(w->cur_len, len));
        if (c > 0 || (c == 0 && w->cur_len >= len))
            return cairn_fail(CAIRN_ERR_INTERNAL, "index writer: terms out of order");
    }
    CAIRN_TRY(end_term(w));
    memcpy(w->cur, term, len);
    w->cur_len = len;
    w->have_term = true;
    return CAIRN_OK;
}

cairn_status seg_writer_posting(seg_writer *w, uint32_t local, uint32_t tf)
{
    if (!w->have_term || local >= w->n_span || w->doclen[local] == SEG_ABSENT || tf == 0)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index writer: posting for unknown doc %u", local);
    if (!w->cur_open) {
        /* the term enters the tables with its first posting */
        CAIRN_TRY(grow((void **)&w->terms, &w->cap_terms, w->n_terms + 1, sizeof *w->terms));
        CAIRN_TRY(grow((void **)&w->toff, &w->cap_toff, w->n_terms + 2, sizeof *w->toff));
        if (w->tb_len + w->cur_len > w->tb_cap) {
            size_t nc = w->tb_cap ? w->tb_cap * 2 : 65536;
            if (nc > UINT32_MAX)
                return cairn_fail(CAIRN_ERR_TOO_LARGE, "index writer: term dictionary too large");
            char *q = cairn_realloc(w->tbytes, nc);
            if (!q)
                return cairn_fail(CAIRN_ERR_NOMEM, "index writer: out of memory");
            w->tbytes = q;
            w->tb_cap = nc;
        }
        memcpy(w->tbytes + w->tb_len, w->cur, w->cur_len);
        w->toff[w->n_terms] = (uint32_t)w->tb_len;
        w->tb_len += w->cur_len;
        w->toff[w->n_terms + 1] = (uint32_t)w->tb_len;
        w->terms[w->n_terms] = (seg_term){0, w->n_blocks, 0, 0};
        w->n_terms++;
        w->cur_open = true;
        w->prev_doc = UINT32_MAX;
        w->bn = 0;
    } else if (local <= w->last_doc) {
        return cairn_fail(CAIRN_ERR_INTERNAL, "index writer: postings out of order");
    }
    w->last_doc = local;
    w->terms[w->n_terms - 1].df++;
    w->bdocs[w->bn] = local;
    w->btfs[w->bn++] = tf;
    if (w->bn == SEG_BLOCK)
        CAIRN_TRY(flush_block(w));
    return CAIRN_OK;
}

uint32_t seg_writer_docs(const seg_writer *w) { return w->n_docs; }

typedef struct hashed_out {
    int fd;
    const char *path;
    XXH3_state_t *h;
    uint8_t *buf;
    size_t len;
} hashed_out;

static cairn_status ho_put(hashed_out *o, const void *p, size_t n)
{
    XXH3_64bits_update(o->h, p, n);
    const uint8_t *q = p;
    while (n) {
        size_t m = CAIRN_MIN(n, (size_t)WBUF - o->len);
        memcpy(o->buf + o->len, q, m);
        o->len += m;
        q += m;
        n -= m;
        if (o->len == WBUF) {
            CAIRN_TRY(write_all(o->fd, o->buf, o->len, o->path));
            o->len = 0;
        }
    }
    return CAIRN_OK;
}

static cairn_status ho_pad(hashed_out *o, size_t n)
{
    static const uint8_t zeros[8] = {0};
    return ho_put(o, zeros, pad8(n) - n);
}

cairn_status seg_writer_finish(seg_writer *w)
{
    CAIRN_TRY(end_term(w));
    if (w->buf_len) {
        CAIRN_TRY(write_all(w->post_fd, w->buf, w->buf_len, w->path));
        w->buf_len = 0;
    }
    if (w->n_blocks > (1u << 30) || w->n_terms > (1u << 30))
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "index writer: segment too large");
    seg_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, SEG_MAGIC, 8);
    h.version = SEG_VERSION;
    h.n_terms = w->n_terms;
    h.base = w->base;
    h.max_chunk = w->max_chunk;
    h.total_len = w->total_len;
    h.n_span = w->n_span;
    h.n_docs = w->n_docs;
    h.n_blocks = w->n_blocks;
    h.term_bytes = (uint32_t)w->tb_len;
    h.postings_len = w->post_len;
    h.file_size = sizeof h + pad8((size_t)w->n_span * 4) + pad8(((size_t)w->n_terms + 1) * 4) + pad8(w->tb_len) +
                  (size_t)w->n_terms * sizeof(seg_term) + (size_t)w->n_blocks * sizeof(seg_block) + w->post_len;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", w->path, (long)getpid());
    hashed_out o = {.path = tmp};
    o.fd = cairn_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    o.h = XXH3_createState();
    o.buf = cairn_malloc(WBUF);
    cairn_status st = CAIRN_OK;
    if (!o.h || !o.buf)
        st = cairn_fail(CAIRN_ERR_NOMEM, "index writer: out of memory");
    if (st == CAIRN_OK) {
        XXH3_64bits_reset(o.h);
        st = write_all(o.fd, &h, sizeof h, tmp);   /* placeholder; rewritten with the checksum */
    }
    if (st == CAIRN_OK)
        st = ho_put(&o, w->doclen, (size_t)w->n_span * 4);
    if (st == CAIRN_OK)
        st = ho_pad(&o, (size_t)w->n_span * 4);
    if (st == CAIRN_OK)
        st = ho_put(&o, w->toff, ((size_t)w->n_terms + 1) * 4);
    if (st == CAIRN_OK)
        st = ho_pad(&o, ((size_t)w->n_terms + 1) * 4);
    if (st == CAIRN_OK && w->tb_len)
        st = ho_put(&o, w->tbytes, w->tb_len);
    if (st == CAIRN_OK)
        st = ho_pad(&o, w->tb_len);
    if (st == CAIRN_OK && w->n_terms)
        st = ho_put(&o, w->terms, (size_t)w->n_terms * sizeof(seg_term));
    if (st == CAIRN_OK && w->n_blocks)
        st = ho_put(&o, w->blocks, (size_t)w->n_blocks * sizeof(seg_block));
    /* postings: copy the temporary file in */
    for (uint64_t off = 0; st == CAIRN_OK && off < w->post_len;) {
        uint8_t chunk[65536];
        ssize_t r = pread(w->post_fd, chunk, (size_t)CAIRN_MIN((uint64_t)sizeof chunk, w->post_len - off), (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            st = cairn_fail(CAIRN_ERR_IO, "%s: reading postings back failed: %s", w->path,
                            r < 0 ? strerror(errno) : "short read");
            break;
        }
        st = ho_put(&o, chunk, (size_t)r);
        off += (uint64_t)r;
    }
    if (st == CAIRN_OK && o.len)
        st = write_all(o.fd, o.buf, o.len, tmp);
    if (st == CAIRN_OK) {
        h.checksum = XXH3_64bits_digest(o.h);
        if (cairn_io_pwrite(o.fd, &h, sizeof h, 0) != (ssize_t)sizeof h)
            st = cairn_fail(CAIRN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (st == CAIRN_OK && cairn_io_fsync(o.fd) != 0)
        st = cairn_fail(CAIRN_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(o.fd) != 0 && st == CAIRN_OK)
        st = cairn_fail(CAIRN_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (st == CAIRN_OK && cairn_io_rename(tmp, w->path) != 0)
        st = cairn_fail(CAIRN_ERR_IO, "%s: rename failed: %s", w->path, strerror(errno));
    if (st != CAIRN_OK)
        unlink(tmp);
    if (o.h)
        XXH3_freeState(o.h);
    cairn_free(o.buf);
    return st;
}

cairn_status seg_builder_write(seg_builder *b, const char *path)
{
    if (b->in_doc)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index builder: write inside a document");
    if (b->n_post > UINT32_MAX - 1)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "index builder: too many postings for one segment");
    cairn_status st = CAIRN_OK;
    uint32_t nt = b->n_terms;
    uint32_t *order = cairn_calloc(nt ? nt : 1, sizeof *order);       /* sorted position -> term id */
    uint32_t *start = cairn_calloc((size_t)nt + 1, sizeof *start);     /* term id -> first posting */
    uint32_t *sorted = cairn_calloc(b->n_post ? b->n_post : 1, sizeof *sorted); /* posting indices by term */
    seg_writer *w = NULL;
    if (!order || !start || !sorted) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "index builder: out of memory");
        goto done;
    }
    for (uint32_t t = 0; t < nt; t++)
        order[t] = t;
    qsort_r(order, nt, sizeof *order, cmp_terms, b);
    /* Counting sort of postings by term; stable, so docs stay ascending. The
     * start array doubles as the fill cursor. */
    for (size_t i = 0; i < b->n_post; i++)
        start[b->p_term[i] + 1]++;
    for (uint32_t t = 0; t < nt; t++)
        start[t + 1] += start[t];
    for (size_t i = 0; i < b->n_post; i++)
        sorted[start[b->p_term[i]]++] = (uint32_t)i;
    /* start[t] is now the end of term t = the start of term t + 1 */
    st = seg_writer_new(path, b->base, b->n_span, &w);
    for (uint32_t d = 0; st == CAIRN_OK && d < b->n_span; d++)
        if (b->doclen[d] != SEG_ABSENT)
            st = seg_writer_doc(w, d, b->doclen[d]);
    for (uint32_t r = 0; st == CAIRN_OK && r < nt; r++) {
        uint32_t t = order[r];
        uint32_t s0 = t ? start[t - 1] : 0, s1 = start[t];
        st = seg_writer_term(w, b->strs + b->toff[t], b->tlen[t]);
        for (uint32_t j = s0; st == CAIRN_OK && j < s1; j++)
            st = seg_writer_posting(w, b->p_doc[sorted[j]], b->p_tf[sorted[j]]);
    }
    if (st == CAIRN_OK)
        st = seg_writer_finish(w);
done:
    seg_writer_free(w);
    cairn_free(order);
    cairn_free(start);
    cairn_free(sorted);
    return st;
}

size_t seg_builder_bytes(const seg_builder *b)
{
    /* postings (3 arrays) + the sort permutation seg_builder_write adds,
     * dictionary, hash slots, doc lengths */
    return b->cap_post * 12 + b->n_post * 4 + b->strs_cap + (size_t)b->cap_terms * 13 + (size_t)b->n_slots * 4 +
           (size_t)b->cap_span * 4 + (size_t)b->cap_touched * 4;
}

/* ---- streaming merge ---- */

#define RELEASE_STEP ((uint64_t)8 << 20)

cairn_status seg_merge(seg *const *segs, size_t n, const uint64_t *dead, uint64_t nbits, const char *path,
                       bool *wrote)
{
    *wrote = false;
#define DEAD(id) ((id) < nbits && (dead[(id) >> 6] >> ((id) & 63)) & 1)
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t k = 0; k < n; k++)
        for (uint32_t l = 0; l < segs[k]->h.n_span; l++) {
            uint64_t id = segs[k]->h.base + l;
            if (segs[k]->doclen[l] != SEG_ABSENT && !DEAD(id)) {
                if (id < lo)
                    lo = id;
                if (id > hi)
                    hi = id;
            }
        }
    if (lo == UINT64_MAX)
        return CAIRN_OK;    /* everything deleted: no segment */
    if (hi - lo >= SEG_MAX_SPAN)
        return cairn_fail(CAIRN_ERR_INTERNAL, "index: merged chunk id range too wide for one segment");
    seg_writer *w;
    CAIRN_TRY(seg_writer_new(path, lo, (uint32_t)(hi - lo + 1), &w));
    cairn_status st = CAIRN_OK;
    for (size_t k = 0; k < n && st == CAIRN_OK; k++)
        for (uint32_t l = 0; l < segs[k]->h.n_span && st == CAIRN_OK; l++) {
            uint64_t id = segs[k]->h.base + l;
            if (segs[k]->doclen[l] != SEG_ABSENT && !DEAD(id))
                st = seg_writer_doc(w, (uint32_t)(id - lo), segs[k]->doclen[l]);
        }
    uint32_t *pos = cairn_calloc(n, sizeof *pos);
    uint64_t *rel = cairn_calloc(n, sizeof *rel), *done = cairn_calloc(n, sizeof *done), held = 0;
    uint32_t *docs = cairn_malloc(SEG_BLOCK * 4), *tfs = cairn_malloc(SEG_BLOCK * 4);
    if (st == CAIRN_OK && (!pos || !rel || !done || !docs || !tfs))
        st = cairn_fail(CAIRN_ERR_NOMEM, "index merge: out of memory");
    while (st == CAIRN_OK) {
        /* the smallest next term over the segments (they are few) */
        const char *best = NULL;
        size_t best_len = 0;
        for (size_t k = 0; k < n; k++) {
            if (pos[k] >= segs[k]->h.n_terms)
                continue;
            size_t len;
            const char *t = seg_term_str(segs[k], pos[k], &len);
            int c = best ? memcmp(t, best, CAIRN_MIN(len, best_len)) : -1;
            if (!best || c < 0 || (c == 0 && len < best_len))
                best = t, best_len = len;
        }
        if (!best)
            break;
        char term[256];
        memcpy(term, best, best_len);
        st = seg_writer_term(w, term, best_len);
        for (size_t k = 0; k < n && st == CAIRN_OK; k++) {
            const seg *s = segs[k];
            if (pos[k] >= s->h.n_terms)
                continue;
            size_t len;
            const char *t = seg_term_str(s, pos[k], &len);
            if (len != best_len || memcmp(t, term, len))
                continue;
            seg_postings it;
            seg_postings_init(&it, s, (int64_t)pos[k]);
            uint32_t m;
            while (st == CAIRN_OK && (st = seg_postings_next(&it, docs, tfs, &m)) == CAIRN_OK && m) {
                for (uint32_t p = 0; p < m && st == CAIRN_OK; p++) {
                    uint64_t id = s->h.base + docs[p];
                    if (!DEAD(id))
                        st = seg_writer_posting(w, (uint32_t)(id - lo), tfs[p]);
                }
            }
            pos[k]++;
            uint64_t end = pos[k] < s->h.n_terms ? s->blocks[s->terms[pos[k]].first_block].off : s->h.postings_len;
            held += end - done[k];
            done[k] = end;
        }
        /* Postings are laid out in term order: drop what has been read once
         * the inputs hold RELEASE_STEP bytes (whatever their number). */
        if (held >= RELEASE_STEP) {
            for (size_t k = 0; k < n; k++) {
                uint64_t o = (uint64_t)(segs[k]->postings - segs[k]->map);
                seg_release(segs[k], o + rel[k], o + done[k]);
                rel[k] = done[k];
            }
            held = 0;
        }
    }
#undef DEAD
    if (st == CAIRN_OK)
        st = seg_writer_finish(w);
    if (st == CAIRN_OK)
        *wrote = true;
    for (size_t k = 0; k < n; k++)
        seg_release(segs[k], 0, segs[k]->map_len);
    seg_writer_free(w);
    cairn_free(pos);
    cairn_free(rel);
    cairn_free(done);
    cairn_free(docs);
    cairn_free(tfs);
    return st;
}
