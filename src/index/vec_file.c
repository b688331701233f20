/*
 * vec_file.c — the vector index file.
 *
 * One file, little-endian, written whole: temp file in the same directory,
 * fsync, rename over the old one, fsync of the directory; a crash leaves the
 * old or the new file. Loaded with mmap (read-only); the node arrays point
 * into the mapping until the first insert copies them to the heap.
 *
 *   offset  size  field
 *   0       8     magic "CAIRNVEC"
 *   8       4     version (1)
 *   12      4     dim (1..4096)
 *   16      4     dpad = dim rounded up to 8
 *   20      4     M (2..128); level 0 holds M0 = 2M links
 *   24      4     ef_construction
 *   28      4     ef_search
 *   32      4     n: nodes, tombstoned included
 *   36      4     n_dead: set bits of the dead bitset
 *   40      4     entry node (0xffffffff when n = 0)
 *   44      4     max_level (signed, -1 when n = 0; <= 24)
 *   48      8     upper_len: u32 words of upper-level links
 *   56      8     hwm: highest chunk id covered (the store catch-up mark)
 *   64      8     del_hwm: store deletion-log position applied
 *   72      8     rng state of the level generator
 *   80      128   embedder id the vectors came from (NUL padded)
 *   208     48    zero
 *   256     sections, each starting at a multiple of 64 (zero padding):
 *           ids u64[n], levels u8[n], dead u64[ceil(n/64)],
 *           upper_off u32[n], links0 u32[n*(M0+1)], upper u32[upper_len],
 *           rows[n] of (f32 scale, 4 zero bytes, i8 codes[dpad]),
 *           vecs f32[n*dim]
 *   end-16  8     XXH3-64 of every byte before it
 *   end-8   8     magic "CAIRNEND"
 *
 * Loading checks sizes, the checksum, and every link (count within its cap,
 * target < n) and level offset, so a damaged file is CAIRN_ERR_CORRUPT with
 * a detail, never a crash; the store catch-up (search/) then rebuilds.
 */
#include "index/vec_int.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define VEC_MAGIC "CAIRNVEC"
#define VEC_END "CAIRNEND"
#define VEC_VERSION 1u
#define HDR 256u

_Static_assert(sizeof(float) == 4, "float must be 32 bits");

typedef struct layout {
    uint64_t ids, levels, dead, upper_off, links0, upper, rows, vecs, end;
} layout;

static uint64_t al64(uint64_t x) { return (x + 63) & ~(uint64_t)63; }

static bool make_layout(uint64_t n, uint64_t dim, uint64_t dpad, uint64_t M0, uint64_t upper_len, layout *L)
{
    /* n < 2^31, dim <= 4096, upper_len checked by the caller: no overflow */
    uint64_t o = HDR;
    L->ids = o;        o = al64(o + 8 * n);
    L->levels = o;     o = al64(o + n);
    L->dead = o;       o = al64(o + 8 * ((n + 63) / 64));
    L->upper_off = o;  o = al64(o + 4 * n);
    L->links0 = o;     o = al64(o + 4 * n * (M0 + 1));
    L->upper = o;      o = al64(o + 4 * upper_len);
    L->rows = o;       o = al64(o + n * (dpad + 8));
    L->vecs = o;       o = al64(o + 4 * n * dim);
    L->end = o + 16;
    return true;
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v; memcpy(&v, p, 8); return v; }

typedef struct wout {
    int fd;
    XXH3_state_t *h;
    uint64_t off;
    unsigned char buf[1 << 16];
    size_t nb;
    cairn_status st;
    const char *path;
} wout;

static void w_flush(wout *w)
{
    size_t done = 0;
    while (w->st == CAIRN_OK && done < w->nb) {
        ssize_t r = write(w->fd, w->buf + done, w->nb - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            w->st = cairn_fail(CAIRN_ERR_IO, "%s: write failed: %s", w->path, r < 0 ? strerror(errno) : "short write");
        else
            done += (size_t)r;
    }
    w->nb = 0;
}

static void w_put(wout *w, const void *p, size_t n)
{
    const unsigned char *s = p;
    XXH3_64bits_update(w->h, s, n);
    w->off += n;
    while (n && w->st == CAIRN_OK) {
        size_t c = CAIRN_MIN(n, sizeof w->buf - w->nb);
        memcpy(w->buf + w->nb, s, c);
        w->nb += c;
        s += c;
        n -= c;
        if (w->nb == sizeof w->buf)
            w_flush(w);
    }
}

static void w_pad_to(wout *w, uint64_t off)
{
    static const unsigned char z[64];
    while (w->off < off)
        w_put(w, z, (size_t)CAIRN_MIN(off - w->off, sizeof z));
}

static cairn_status fsync_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *sl = strrchr(dir, '/');
    if (sl)
        *sl = 0;
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open directory: %s", dir, strerror(errno));
    int r = fsync(fd);
    close(fd);
    return r == 0 ? CAIRN_OK : cairn_fail(CAIRN_ERR_IO, "%s: fsync failed: %s", dir, strerror(errno));
}

cairn_status vec_index_save(vec_index *ix, const char *path, const vec_file_info *info)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", path);
    layout L;
    uint64_t n = ix->n;
    make_layout(n, ix->dim, ix->dpad, ix->M0, ix->upper_len, &L);
    wout *w = cairn_calloc(1, sizeof *w);
    if (!w)
        return cairn_fail(CAIRN_ERR_NOMEM, "writing %s", path);
    w->path = tmp;
    w->h = XXH3_createState();
    if (!w->h) {
        cairn_free(w);
        return cairn_fail(CAIRN_ERR_NOMEM, "writing %s", path);
    }
    XXH3_64bits_reset(w->h);
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        cairn_status st = cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        XXH3_freeState(w->h);
        cairn_free(w);
        return st;
    }
    unsigned char h[HDR];
    memset(h, 0, sizeof h);
    memcpy(h, VEC_MAGIC, 8);
    put32(h + 8, VEC_VERSION);
    put32(h + 12, ix->dim);
    put32(h + 16, ix->dpad);
    put32(h + 20, ix->p.M);
    put32(h + 24, ix->p.ef_construction);
    put32(h + 28, ix->p.ef_search);
    put32(h + 32, ix->n);
    put32(h + 36, ix->n_dead);
    put32(h + 40, ix->entry);
    put32(h + 44, (uint32_t)ix->max_level);
    put64(h + 48, ix->upper_len);
    put64(h + 56, info ? info->hwm : 0);
    put64(h + 64, info ? info->del_hwm : 0);
    put64(h + 72, ix->rng);
    if (info)
        memcpy(h + 80, info->model, strnlen(info->model, 127));
    w_put(w, h, sizeof h);
    w_pad_to(w, L.ids);       w_put(w, ix->ids, 8 * n);
    w_pad_to(w, L.levels);    w_put(w, ix->levels, n);
    w_pad_to(w, L.dead);      w_put(w, ix->dead, 8 * ((n + 63) / 64));
    w_pad_to(w, L.upper_off); w_put(w, ix->upper_off, 4 * n);
    w_pad_to(w, L.links0);    w_put(w, ix->links0, 4 * n * (ix->M0 + 1));
    w_pad_to(w, L.upper);     w_put(w, ix->upper, 4 * ix->upper_len);
    w_pad_to(w, L.rows);      w_put(w, ix->rows, (size_t)n * ix->rs);
    w_pad_to(w, L.vecs);      w_put(w, ix->vecs, 4 * n * ix->dim);
    w_pad_to(w, L.end - 16);
    unsigned char t[16];
    put64(t, XXH3_64bits_digest(w->h));
    memcpy(t + 8, VEC_END, 8);
    w_put(w, t, 16);
    w_flush(w);
    cairn_status st = w->st;
    if (st == CAIRN_OK && fsync(w->fd) != 0)
        st = cairn_fail(CAIRN_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(w->fd) != 0 && st == CAIRN_OK)
        st = cairn_fail(CAIRN_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    XXH3_freeState(w->h);
    cairn_free(w);
    if (st == CAIRN_OK && rename(tmp, path) != 0)
        st = cairn_fail(CAIRN_ERR_IO, "%s: rename failed: %s", path, strerror(errno));
    if (st != CAIRN_OK) {
        unlink(tmp);
        return st;
    }
    CAIRN_TRY(fsync_parent(path));
    ix->file_bytes = L.end;
    return CAIRN_OK;
}

static cairn_status bad(const char *path, const char *what)
{
    return cairn_fail(CAIRN_ERR_CORRUPT, "%s: vector index file is damaged (%s)", path, what);
}

/* Structural checks of a mapped index: every offset and link in bounds. */
static cairn_status check_graph(const vec_index *ix, const char *path)
{
    uint64_t dead = 0;
    for (uint32_t u = 0; u < ix->n; u++) {
        if (ix->levels[u] > ix->max_level)
            return bad(path, "node level above the top level");
        uint64_t need = (uint64_t)ix->upper_off[u] + (uint64_t)ix->levels[u] * (ix->p.M + 1);
        if (ix->levels[u] && need > ix->upper_len)
            return bad(path, "upper-level links out of bounds");
        for (int l = 0; l <= ix->levels[u]; l++) {
            const uint32_t *ln = l == 0 ? ix->links0 + (size_t)u * (ix->M0 + 1)
                                        : ix->upper + ix->upper_off[u] + (size_t)(l - 1) * (ix->p.M + 1);
            if (ln[0] > (l ? ix->p.M : ix->M0))
                return bad(path, "link count above its cap");
            for (uint32_t i = 1; i <= ln[0]; i++)
                if (ln[i] >= ix->n || ix->levels[ln[i]] < l)
                    return bad(path, "link to a node that does not exist at that level");
        }
        float sc;
        memcpy(&sc, ix->rows + (size_t)u * ix->rs, 4);
        if (!isfinite(sc) || sc < 0)
            return bad(path, "invalid quantization scale");
        dead += (ix->dead[u >> 6] >> (u & 63)) & 1;
    }
    if (dead != ix->n_dead)
        return bad(path, "tombstone count does not match");
    if (ix->n && (ix->entry >= ix->n || ix->levels[ix->entry] != ix->max_level))
        return bad(path, "invalid entry node");
    return CAIRN_OK;
}

cairn_status vec_index_load(const char *path, vec_index **out, vec_file_info *info)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return cairn_fail(CAIRN_ERR_NOT_FOUND, "%s: no vector index", path);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < HDR + 16) {
        close(fd);
        return bad(path, "truncated: shorter than its header");
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    const unsigned char *m = map;
    cairn_status st = CAIRN_OK;
    vec_index *ix = NULL;
    uint32_t dim = get32(m + 12), dpad = get32(m + 16), M = get32(m + 20), n = get32(m + 32);
    uint64_t upper_len = get64(m + 48);
    layout L;
    if (memcmp(m, VEC_MAGIC, 8) != 0)
        st = bad(path, "not a cairn vector index");
    else if (get32(m + 8) != VEC_VERSION)
        st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: vector index format version %u (this cairn reads %u)", path,
                        get32(m + 8), VEC_VERSION);
    else if (dim < 1 || dim > 4096 || dpad != (dim + 7) / 8 * 8 || M < 2 || M > 128 || n > UINT32_MAX / 2 ||
             upper_len > (uint64_t)n * 24 * (M + 1) || get32(m + 36) > n || (int32_t)get32(m + 44) > 24 ||
             (int32_t)get32(m + 44) < -1)
        st = bad(path, "header values out of range");
    else if (make_layout(n, dim, dpad, 2ull * M, upper_len, &L), L.end != size)
        st = bad(path, L.end > size ? "truncated" : "size does not match its header");
    else if (memcmp(m + size - 8, VEC_END, 8) != 0)
        st = bad(path, "truncated: no end marker");
    else if (XXH3_64bits(m, size - 16) != get64(m + size - 16))
        st = bad(path, "checksum mismatch");
    if (st == CAIRN_OK) {
        vec_params p;
        vec_params_default(&p);
        p.M = M;
        p.ef_construction = get32(m + 24);
        p.ef_search = get32(m + 28);
        st = vec__alloc(dim, &p, &ix);
    }
    if (st == CAIRN_OK) {
        ix->map = map;
        ix->map_len = size;
        map = NULL;
        ix->n = n;
        ix->cap = n;
        ix->n_dead = get32(m + 36);
        ix->entry = get32(m + 40);
        ix->max_level = (int32_t)get32(m + 44);
        ix->upper_len = ix->upper_cap = upper_len;
        ix->rng = get64(m + 72);
        ix->ids = (uint64_t *)(m + L.ids);
        ix->levels = (uint8_t *)(m + L.levels);
        ix->upper_off = (uint32_t *)(m + L.upper_off);
        ix->links0 = (uint32_t *)(m + L.links0);
        ix->upper = (uint32_t *)(m + L.upper);
        ix->rows = (unsigned char *)(m + L.rows);
        ix->vecs = (float *)(m + L.vecs);
        ix->file_bytes = size;
        size_t dw = ((size_t)n + 63) / 64;
        ix->dead = cairn_calloc(dw ? dw : 1, sizeof *ix->dead);
        if (!ix->dead)
            st = cairn_fail(CAIRN_ERR_NOMEM, "loading %s", path);
        else
            memcpy(ix->dead, m + L.dead, dw * 8);
    }
    if (st == CAIRN_OK)
        st = check_graph(ix, path);
    if (st == CAIRN_OK)
        st = vec__map_rebuild(ix);
    if (st != CAIRN_OK) {
        if (map)
            munmap(map, size);
        vec_index_free(ix);
        return st;
    }
    if (info) {
        info->hwm = get64(m + 56);
        info->del_hwm = get64(m + 64);
        memcpy(info->model, m + 80, 127);
        info->model[127] = 0;
    }
    *out = ix;
    return CAIRN_OK;
}
