/*
 * index.c — the index directory: MANIFEST, segment set, tombstones, writer,
 * merges.
 *
 * MANIFEST (text, written atomically; the last line checksums the rest):
 *
 *   cairn-bm25 1
 *   analyzer stemmer=english stop=lucene accents=keep
 *   hwm 1234            highest chunk id indexed
 *   del_hwm 56          store deletion-log position applied
 *   next 9              next segment file number
 *   segment seg-000003.bm25        (ascending, disjoint chunk id ranges)
 *   tombstones 2        then the ids, up to 16 per line
 *   17 42
 *   end 0123456789abcdef           XXH3-64 of all bytes before this line
 *
 * Crash safety: segment files are complete and fsync'd before the MANIFEST
 * that names them is renamed into place (and the directory fsync'd), so a
 * crash at any point leaves either the old or the new state; files no
 * MANIFEST names are deleted by the next writer.
 */
#include "index/bm25.h"
#include "index/segment.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANIFEST_MAX (64u << 20)
#define MAX_SEGMENTS 8
#define MAX_NEW_MERGE 64    /* a commit merges up to this many of its own flushed segments into one */

struct bm25_index {
    char *dir;
    text_config cfg;
    uint64_t hwm, del_hwm, next;
    seg **segs;
    size_t n_segs;
    uint64_t *dead;         /* tombstone bitset over chunk ids [0, dead_nbits) */
    uint64_t dead_nbits;
    uint64_t n_dead;
    uint64_t n_docs, total_len;         /* live */
    uint64_t n_docs_all, total_len_all; /* including tombstoned (scoring stats) */
};

/* A writer flushes its in-memory segment when it holds this much (memory
 * stays bounded however much is indexed in one go); tests also cap the
 * postings per segment. */
#define FLUSH_BYTES_DEFAULT ((size_t)64 << 20)
static size_t flush_bytes = FLUSH_BYTES_DEFAULT;
static size_t flush_postings = SIZE_MAX;
void bm25_set_flush_postings(size_t n) { flush_postings = n ? n : SIZE_MAX; }
void bm25_set_flush_bytes(size_t n) { flush_bytes = n ? n : FLUSH_BYTES_DEFAULT; }

void bm25_params_default(bm25_params *p)
{
    p->k1 = 1.5f;   /* chosen by cairn eval over ../shared/data/ir (docs/eval.md) */
    p->b = 0.6f;
}

uint64_t bm25_hwm(const bm25_index *ix) { return ix->hwm; }
uint64_t bm25_del_hwm(const bm25_index *ix) { return ix->del_hwm; }
const text_config *bm25_config(const bm25_index *ix) { return &ix->cfg; }
uint64_t bm25_n_docs(const bm25_index *ix) { return ix->n_docs; }
uint64_t bm25_total_len(const bm25_index *ix) { return ix->total_len; }
size_t bm25_n_segments(const bm25_index *ix) { return ix->n_segs; }

/* Internal accessors for query.c. */
seg *const *bm25__segs(const bm25_index *ix, size_t *n);
const uint64_t *bm25__dead(const bm25_index *ix, uint64_t *nbits);
void bm25__stats(const bm25_index *ix, uint64_t *n_docs, uint64_t *total_len);
void bm25__stats(const bm25_index *ix, uint64_t *n_docs, uint64_t *total_len)
{
    *n_docs = ix->n_docs_all;
    *total_len = ix->total_len_all;
}
seg *const *bm25__segs(const bm25_index *ix, size_t *n)
{
    *n = ix->n_segs;
    return ix->segs;
}
const uint64_t *bm25__dead(const bm25_index *ix, uint64_t *nbits)
{
    *nbits = ix->dead_nbits;
    return ix->n_dead ? ix->dead : NULL;
}

uint64_t bm25_bytes(const bm25_index *ix)
{
    uint64_t n = 0;
    for (size_t i = 0; i < ix->n_segs; i++)
        n += ix->segs[i]->map_len;
    return n;
}

static bool is_dead(const bm25_index *ix, uint64_t id)
{
    return id < ix->dead_nbits && (ix->dead[id >> 6] >> (id & 63)) & 1;
}

static const seg *seg_of(seg *const *segs, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (segs[mid]->h.max_chunk < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && id >= segs[lo]->h.base && id - segs[lo]->h.base < segs[lo]->h.n_span &&
        segs[lo]->doclen[id - segs[lo]->h.base] != SEG_ABSENT)
        return segs[lo];
    return NULL;
}

uint32_t bm25_doclen(const bm25_index *ix, uint64_t id)
{
    const seg *s = seg_of(ix->segs, ix->n_segs, id);
    return s && !is_dead(ix, id) ? s->doclen[id - s->h.base] : 0;
}

bool bm25_is_live(const bm25_index *ix, uint64_t id)
{
    return seg_of(ix->segs, ix->n_segs, id) && !is_dead(ix, id);
}

uint64_t bm25_df(const bm25_index *ix, const char *term, size_t len)
{
    uint64_t df = 0;
    for (size_t i = 0; i < ix->n_segs; i++) {
        int64_t t = seg_find(ix->segs[i], term, len);
        if (t >= 0)
            df += ix->segs[i]->terms[t].df;
    }
    return df;
}

/* ---- state (shared by open and commit) ---- */

typedef struct state {
    text_config cfg;
    uint64_t hwm, del_hwm, next;
    char **names;
    size_t n_names;
    uint64_t *dead_ids;
    size_t n_dead;
} state;

static void state_free(state *s)
{
    for (size_t i = 0; i < s->n_names; i++)
        cairn_free(s->names[i]);
    cairn_free(s->names);
    cairn_free(s->dead_ids);
    memset(s, 0, sizeof *s);
}

static cairn_status push_name(state *s, const char *name)
{
    char **n = cairn_reallocarray(s->names, s->n_names + 1, sizeof *n);
    if (!n)
        return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    s->names = n;
    if (!(n[s->n_names] = cairn_strdup(name)))
        return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    s->n_names++;
    return CAIRN_OK;
}

static bool valid_seg_name(const char *n)
{
    size_t l = strlen(n);
    if (l < 10 || l > 64 || strncmp(n, "seg-", 4) || strcmp(n + l - 5, ".bm25"))
        return false;
    for (size_t i = 4; i < l - 5; i++)
        if (n[i] < '0' || n[i] > '9')
            return false;
    return true;
}

static cairn_status read_manifest(const char *dir, state *s, bool *exists)
{
    memset(s, 0, sizeof *s);
    *exists = false;
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    char *data;
    size_t len;
    cairn_status st = cairn_file_read_all(path, MANIFEST_MAX, &data, &len);
    if (st != CAIRN_OK) {
        if (access(path, F_OK) != 0 && errno == ENOENT) {
            cairn_clear_error();
            return CAIRN_OK;
        }
        return st;
    }
    *exists = true;
    /* Checksum line. */
    char *end = NULL;
    for (size_t i = len; i > 0; i--)
        if ((i == 1 || data[i - 2] == '\n') && !strncmp(data + i - 1, "end ", 4)) {
            end = data + i - 1;
            break;
        }
    unsigned long long want;
    if (!end || sscanf(end, "end %llx", &want) != 1 || cairn_hash64(data, (size_t)(end - data)) != want) {
        cairn_free(data);
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: corrupt index manifest; delete %s to rebuild the index", path, dir);
    }
    *end = 0;
    st = CAIRN_OK;
    int version = 0;
    size_t want_dead = 0;
    bool in_dead = false;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line && st == CAIRN_OK; line = strtok_r(NULL, "\n", &save)) {
        unsigned long long v;
        char name[80];
        if (in_dead) {
            char *p = line;
            while (*p && st == CAIRN_OK) {
                char *q;
                errno = 0;
                v = strtoull(p, &q, 10);
                if (q == p || errno || s->n_dead >= want_dead) {
                    st = CAIRN_ERR_CORRUPT;
                    break;
                }
                s->dead_ids[s->n_dead++] = v;
                p = q;
                while (*p == ' ')
                    p++;
            }
            if (s->n_dead == want_dead)
                in_dead = false;
        } else if (sscanf(line, "cairn-bm25 %d", &version) == 1) {
            if (version != 1)
                st = cairn_fail(CAIRN_ERR_VERSION, "%s: index version %d is newer than this cairn; delete %s to rebuild", path, version, dir);
        } else if (!strncmp(line, "analyzer ", 9)) {
            st = text_config_parse(&s->cfg, line + 9);
        } else if (sscanf(line, "hwm %llu", &v) == 1) {
            s->hwm = v;
        } else if (sscanf(line, "del_hwm %llu", &v) == 1) {
            s->del_hwm = v;
        } else if (sscanf(line, "next %llu", &v) == 1) {
            s->next = v;
        } else if (sscanf(line, "segment %79s", name) == 1 && valid_seg_name(name)) {
            st = push_name(s, name);
        } else if (sscanf(line, "tombstones %llu", &v) == 1 && v < (1ull << 32)) {
            want_dead = (size_t)v;
            s->dead_ids = cairn_calloc(want_dead ? want_dead : 1, sizeof *s->dead_ids);
            if (!s->dead_ids)
                st = cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
            in_dead = want_dead > 0;
        } else {
            st = CAIRN_ERR_CORRUPT;
        }
    }
    if (st == CAIRN_OK && (version != 1 || in_dead || s->n_dead != want_dead))
        st = CAIRN_ERR_CORRUPT;
    if (st == CAIRN_ERR_CORRUPT)
        cairn_fail(st, "%s: malformed index manifest; delete %s to rebuild the index", path, dir);
    cairn_free(data);
    if (st != CAIRN_OK)
        state_free(s);
    return st;
}

static cairn_status fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", dir, strerror(errno));
    int r = cairn_io_fsync(fd);
    close(fd);
    if (r != 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: fsync failed: %s", dir, strerror(errno));
    return CAIRN_OK;
}

/* *renamed tells whether the new MANIFEST is in place (then the commit
 * happened, even when the directory fsync after it failed: the caller must
 * keep the files it names). */
static cairn_status write_manifest(const char *dir, const state *s, bool *renamed)
{
    *renamed = false;
    cairn_buf b;
    cairn_buf_init(&b, MANIFEST_MAX);
    char cfg[256];
    text_config_str(&s->cfg, cfg, sizeof cfg);
    cairn_status st = cairn_buf_printf(&b, "cairn-bm25 1\nanalyzer %s\nhwm %llu\ndel_hwm %llu\nnext %llu\n", cfg,
                                       (unsigned long long)s->hwm, (unsigned long long)s->del_hwm,
                                       (unsigned long long)s->next);
    for (size_t i = 0; st == CAIRN_OK && i < s->n_names; i++)
        st = cairn_buf_printf(&b, "segment %s\n", s->names[i]);
    if (st == CAIRN_OK)
        st = cairn_buf_printf(&b, "tombstones %zu\n", s->n_dead);
    for (size_t i = 0; st == CAIRN_OK && i < s->n_dead; i++)
        st = cairn_buf_printf(&b, "%llu%c", (unsigned long long)s->dead_ids[i],
                              (i % 16 == 15 || i + 1 == s->n_dead) ? '\n' : ' ');
    if (st == CAIRN_OK)
        st = cairn_buf_printf(&b, "end %016llx\n", (unsigned long long)cairn_hash64(b.data, b.len));
    if (st == CAIRN_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/MANIFEST", dir);
        st = cairn_file_write_atomic(path, b.data, b.len);
        *renamed = st == CAIRN_OK;
    }
    if (st == CAIRN_OK)
        st = fsync_dir(dir);
    cairn_buf_free(&b);
    return st;
}

/* ---- open ---- */

static void ix_clear(bm25_index *ix)
{
    for (size_t i = 0; i < ix->n_segs; i++)
        seg_close(ix->segs[i]);
    cairn_free(ix->segs);
    cairn_free(ix->dead);
    ix->segs = NULL;
    ix->n_segs = 0;
    ix->dead = NULL;
    ix->dead_nbits = ix->n_dead = 0;
    ix->n_docs = ix->total_len = 0;
    ix->n_docs_all = ix->total_len_all = 0;
}

/* Load segments and tombstones named by `s` into ix (replacing its state). */
static cairn_status ix_load(bm25_index *ix, const state *s)
{
    seg **segs = cairn_calloc(s->n_names ? s->n_names : 1, sizeof *segs);
    if (!segs)
        return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    cairn_status st = CAIRN_OK;
    size_t n = 0;
    char path[4096];
    for (; n < s->n_names && st == CAIRN_OK; n++) {
        snprintf(path, sizeof path, "%s/%s", ix->dir, s->names[n]);
        st = seg_open(path, &segs[n]);
        if (st == CAIRN_OK && n > 0 && segs[n]->h.base <= segs[n - 1]->h.max_chunk)
            st = cairn_fail(CAIRN_ERR_CORRUPT, "%s: segment ranges overlap; delete %s to rebuild", path, ix->dir);
        if (st != CAIRN_OK && segs[n]) {
            seg_close(segs[n]);
            segs[n] = NULL;
        }
    }
    uint64_t nbits = s->hwm + 1;
    uint64_t *dead = NULL;
    if (st == CAIRN_OK) {
        dead = cairn_calloc((size_t)((nbits + 63) / 64), 8);
        if (!dead)
            st = cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    }
    if (st != CAIRN_OK) {
        for (size_t i = 0; i < n; i++)
            seg_close(segs[i]);
        cairn_free(segs);
        return st;
    }
    ix_clear(ix);
    ix->cfg = s->cfg;
    ix->hwm = s->hwm;
    ix->del_hwm = s->del_hwm;
    ix->next = s->next;
    ix->segs = segs;
    ix->n_segs = s->n_names;
    ix->dead = dead;
    ix->dead_nbits = nbits;
    for (size_t i = 0; i < ix->n_segs; i++) {
        ix->n_docs += ix->segs[i]->h.n_docs;
        ix->total_len += ix->segs[i]->h.total_len;
    }
    ix->n_docs_all = ix->n_docs;
    ix->total_len_all = ix->total_len;
    for (size_t i = 0; i < s->n_dead; i++) {
        uint64_t id = s->dead_ids[i];
        const seg *sg = seg_of(ix->segs, ix->n_segs, id);
        if (!sg || id >= nbits || is_dead(ix, id))
            continue;
        ix->dead[id >> 6] |= 1ull << (id & 63);
        ix->n_dead++;
        ix->n_docs--;
        ix->total_len -= sg->doclen[id - sg->h.base];
    }
    return CAIRN_OK;
}

cairn_status bm25_open(const char *dir, const text_config *cfg, bm25_index **out, bool *mismatch)
{
    *out = NULL;
    if (mismatch)
        *mismatch = false;
    bm25_index *ix = cairn_calloc(1, sizeof *ix);
    if (!ix || !(ix->dir = cairn_strdup(dir))) {
        cairn_free(ix);
        return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    }
    cairn_status st = CAIRN_OK;
    /* A concurrent writer may delete segments between our MANIFEST read and
     * their open: retry with the newer MANIFEST. */
    for (int attempt = 0; attempt < 5; attempt++) {
        state s;
        bool exists;
        st = read_manifest(dir, &s, &exists);
        if (st != CAIRN_OK)
            break;
        if (!exists) {
            s.cfg = *cfg;
            s.next = 1;
        }
        st = ix_load(ix, &s);
        state_free(&s);
        if (st != CAIRN_ERR_NOT_FOUND)
            break;
    }
    if (st != CAIRN_OK) {
        bm25_close(ix);
        return st;
    }
    if (mismatch) {
        char a[256], b[256];
        text_config_str(cfg, a, sizeof a);
        text_config_str(&ix->cfg, b, sizeof b);
        *mismatch = strcmp(a, b) != 0;
    }
    *out = ix;
    return CAIRN_OK;
}

void bm25_close(bm25_index *ix)
{
    if (!ix)
        return;
    ix_clear(ix);
    cairn_free(ix->dir);
    cairn_free(ix);
}

/* ---- writer ---- */

struct bm25_writer {
    bm25_index *ix;
    int lock_fd;
    text_analyzer *an;
    seg_builder *b;
    char **new_names;       /* written this session, not yet in a MANIFEST */
    size_t n_new;
    uint64_t *del;          /* ids to tombstone */
    size_t n_del, cap_del;
    uint64_t last_added;
    uint64_t next;
    bool reset;
    text_config cfg;
};

cairn_status bm25_writer_open(bm25_index *ix, bm25_writer **out)
{
    *out = NULL;
    if (mkdir(ix->dir, 0755) != 0 && errno != EEXIST)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", ix->dir, strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", ix->dir);
    int fd = cairn_io_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return cairn_fail(CAIRN_ERR_BUSY, "%s: the index is being written by another process", ix->dir);
    }
    /* Reload: another writer may have committed since ix was opened. */
    state s;
    bool exists;
    cairn_status st = read_manifest(ix->dir, &s, &exists);
    if (st == CAIRN_OK && exists)
        st = ix_load(ix, &s);
    state_free(&s);
    bm25_writer *w = NULL;
    if (st == CAIRN_OK && !(w = cairn_calloc(1, sizeof *w)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    if (st == CAIRN_OK) {
        w->ix = ix;
        w->lock_fd = fd;
        w->cfg = ix->cfg;
        w->next = ix->next ? ix->next : 1;
        w->last_added = ix->hwm;
        st = text_analyzer_new(&ix->cfg, &w->an);
    }
    if (st != CAIRN_OK) {
        if (w) {
            w->lock_fd = -1;
            bm25_writer_free(w);
        }
        close(fd);
        return st;
    }
    *out = w;
    return CAIRN_OK;
}

static void remove_new(bm25_writer *w)
{
    char path[4096];
    for (size_t i = 0; i < w->n_new; i++) {
        snprintf(path, sizeof path, "%s/%s", w->ix->dir, w->new_names[i]);
        unlink(path);
        cairn_free(w->new_names[i]);
    }
    cairn_free(w->new_names);
    w->new_names = NULL;
    w->n_new = 0;
}

void bm25_writer_free(bm25_writer *w)
{
    if (!w)
        return;
    remove_new(w);
    seg_builder_free(w->b);
    text_analyzer_free(w->an);
    cairn_free(w->del);
    if (w->lock_fd >= 0)
        close(w->lock_fd);
    cairn_free(w);
}

static cairn_status new_name(bm25_writer *w, char *name, size_t n)
{
    snprintf(name, n, "seg-%06llu.bm25", (unsigned long long)w->next++);
    char **nn = cairn_reallocarray(w->new_names, w->n_new + 1, sizeof *nn);
    if (!nn)
        return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    w->new_names = nn;
    if (!(nn[w->n_new] = cairn_strdup(name)))
        return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
    w->n_new++;
    return CAIRN_OK;
}

static cairn_status write_builder(bm25_writer *w, seg_builder *b, char *name, size_t n)
{
    CAIRN_TRY(new_name(w, name, n));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", w->ix->dir, name);
    return seg_builder_write(b, path);
}

static cairn_status flush(bm25_writer *w)
{
    if (!w->b)
        return CAIRN_OK;
    char name[64];
    cairn_status st = CAIRN_OK;
    if (seg_builder_docs(w->b) > 0)
        st = write_builder(w, w->b, name, sizeof name);
    seg_builder_free(w->b);
    w->b = NULL;
    return st;
}

typedef struct add_ctx { seg_builder *b; uint32_t weight; } add_ctx;

static cairn_status on_term(void *ctx, const char *t, size_t len, uint32_t pos, size_t s, size_t e)
{
    add_ctx *c = ctx;
    return seg_builder_term(c->b, t, len, c->weight);
}

cairn_status bm25_writer_add(bm25_writer *w, uint64_t id, const bm25_field *fields, size_t n_fields)
{
    if (id <= w->last_added)
        return cairn_fail(CAIRN_ERR_INVALID, "index: chunk %llu is not above %llu", (unsigned long long)id,
                          (unsigned long long)w->last_added);
    if (w->b && (seg_builder_postings(w->b) >= flush_postings || seg_builder_bytes(w->b) >= flush_bytes ||
                 !seg_builder_fits(w->b, id)))
        CAIRN_TRY(flush(w));
    if (!w->b)
        CAIRN_TRY(seg_builder_new(&w->b));
    CAIRN_TRY(seg_builder_begin_doc(w->b, id));
    w->last_added = id;
    add_ctx c = {w->b, 1};
    cairn_status st = CAIRN_OK;
    for (size_t i = 0; i < n_fields && st == CAIRN_OK; i++) {
        c.weight = fields[i].weight ? fields[i].weight : 1;
        if (fields[i].text)
            st = text_analyze(w->an, fields[i].text, fields[i].len, on_term, &c);
    }
    cairn_status st2 = seg_builder_end_doc(w->b);
    if (st == CAIRN_OK && st2 != CAIRN_OK)
        st = st2;
    if (st != CAIRN_OK) {   /* the builder may hold half a doc: drop it all */
        seg_builder_free(w->b);
        w->b = NULL;
        return cairn_fail_wrap(st, "indexing chunk %llu", (unsigned long long)id);
    }
    return CAIRN_OK;
}

cairn_status bm25_writer_delete(bm25_writer *w, uint64_t id)
{
    if (w->n_del == w->cap_del) {
        size_t nc = w->cap_del ? w->cap_del * 2 : 256;
        uint64_t *d = cairn_reallocarray(w->del, nc, sizeof *d);
        if (!d)
            return cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
        w->del = d;
        w->cap_del = nc;
    }
    w->del[w->n_del++] = id;
    return CAIRN_OK;
}

cairn_status bm25_writer_reset(bm25_writer *w, const text_config *cfg)
{
    seg_builder_free(w->b);
    w->b = NULL;
    remove_new(w);
    w->n_del = 0;
    w->reset = true;
    w->cfg = *cfg;
    w->last_added = 0;
    text_analyzer_free(w->an);
    w->an = NULL;
    return text_analyzer_new(cfg, &w->an);
}

/* Rewrite segs[i..j) as one segment without dead docs (streaming). */
static cairn_status merge_range(bm25_writer *w, seg **segs, size_t i, size_t j, const uint64_t *dead,
                                uint64_t nbits, char *name, size_t name_n)
{
    CAIRN_TRY(new_name(w, name, name_n));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", w->ix->dir, name);
    bool wrote;
    CAIRN_TRY(seg_merge(segs + i, j - i, dead, nbits, path, &wrote));
    if (!wrote)
        name[0] = 0;    /* an all-dead range writes no file */
    return CAIRN_OK;
}

static uint64_t seg_dead(const seg *s, const uint64_t *dead, uint64_t nbits)
{
    uint64_t n = 0;
    for (uint64_t id = s->h.base; id <= s->h.max_chunk && id < nbits; id++)
        if ((dead[id >> 6] >> (id & 63)) & 1)
            n++;
    return n;
}

static cairn_status commit(bm25_writer *w, uint64_t hwm, uint64_t del_hwm, bool optimize)
{
    bm25_index *ix = w->ix;
    CAIRN_TRY(flush(w));
    state s;
    memset(&s, 0, sizeof s);
    s.cfg = w->cfg;
    s.hwm = w->last_added > hwm ? w->last_added : hwm;
    if (!w->reset && ix->hwm > s.hwm)
        s.hwm = ix->hwm;
    s.del_hwm = del_hwm;
    cairn_status st = CAIRN_OK;
    size_t old_n = w->reset ? 0 : ix->n_segs;
    /* Working list of open segments: old (kept open by ix) + new. */
    size_t cap = old_n + w->n_new + 1;
    seg **segs = cairn_calloc(cap, sizeof *segs);
    bool *owned = cairn_calloc(cap, sizeof *owned);
    char **names = cairn_calloc(cap, sizeof *names);
    uint64_t nbits = s.hwm + 1;
    uint64_t *dead = cairn_calloc((size_t)((nbits + 63) / 64), 8);
    if (!segs || !owned || !names || !dead) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
        goto done;
    }
    size_t n = 0;
    char path[4096];
    for (size_t i = 0; i < old_n; i++) {
        segs[n] = ix->segs[i];
        names[n++] = strrchr(ix->segs[i]->path, '/') + 1;
    }
    for (size_t i = 0; i < w->n_new && st == CAIRN_OK; i++) {
        snprintf(path, sizeof path, "%s/%s", ix->dir, w->new_names[i]);
        st = seg_open(path, &segs[n]);
        if (st == CAIRN_OK) {
            owned[n] = true;
            names[n++] = w->new_names[i];
        }
    }
    if (st != CAIRN_OK)
        goto done;
    /* Tombstones: old ones still present + new deletions of present ids. */
    if (!w->reset)
        for (uint64_t id = 0; id < ix->dead_nbits && id < nbits; id++)
            if (is_dead(ix, id))
                dead[id >> 6] |= 1ull << (id & 63);
    for (size_t i = 0; i < w->n_del; i++) {
        uint64_t id = w->del[i];
        if (id < nbits && seg_of(segs, n, id))
            dead[id >> 6] |= 1ull << (id & 63);
    }
    /* Merges: the segments this writer flushed (its memory budget split one
     * batch) become one, when they are few; segments mostly dead are
     * rewritten; then adjacent pairs with the fewest docs are merged until
     * at most MAX_SEGMENTS remain. All merges stream (seg_merge). */
    size_t first_new = old_n;
    bool merge_new = n - first_new >= 2 && n - first_new <= MAX_NEW_MERGE &&
                     segs[n - 1]->h.max_chunk - segs[first_new]->h.base < SEG_MAX_SPAN;
    for (;;) {
        size_t lo = n, hi = n;
        if (optimize && n > 0 && (n > 1 || seg_dead(segs[0], dead, nbits) > 0) &&
            segs[n - 1]->h.max_chunk - segs[0]->h.base < SEG_MAX_SPAN) {
            lo = 0, hi = n;
            optimize = false;
        } else if (merge_new) {
            lo = first_new, hi = n;
            merge_new = false;
        } else {
            for (size_t i = 0; i < n && lo == n; i++)
                if (seg_dead(segs[i], dead, nbits) * 10 > (uint64_t)segs[i]->h.n_docs * 3)
                    lo = i, hi = i + 1;
            if (lo == n && n > MAX_SEGMENTS) {
                uint64_t best = UINT64_MAX;
                for (size_t i = 0; i + 1 < n; i++) {
                    uint64_t c = (uint64_t)segs[i]->h.n_docs + segs[i + 1]->h.n_docs;
                    if (segs[i + 1]->h.max_chunk - segs[i]->h.base >= SEG_MAX_SPAN)
                        continue;   /* the pair's id range is too wide for one segment */
                    if (c < best)
                        best = c, lo = i, hi = i + 2;
                }
            }
        }
        if (lo == n)
            break;
        char name[64];
        st = merge_range(w, segs, lo, hi, dead, nbits, name, sizeof name);
        if (st != CAIRN_OK)
            goto done;
        seg *merged = NULL;
        bool any_docs = name[0] != 0;
        if (any_docs) {
            snprintf(path, sizeof path, "%s/%s", ix->dir, name);
            st = seg_open(path, &merged);
            if (st != CAIRN_OK)
                goto done;
        }
        for (size_t i = lo; i < hi; i++) {
            for (uint64_t id = segs[i]->h.base; id <= segs[i]->h.max_chunk && id < nbits; id++)
                dead[id >> 6] &= ~(1ull << (id & 63));
            if (owned[i])
                seg_close(segs[i]);
        }
        size_t k = lo;
        if (any_docs) {
            segs[k] = merged;
            owned[k] = true;
            names[k++] = w->new_names[w->n_new - 1];
        }
        memmove(segs + k, segs + hi, (n - hi) * sizeof *segs);
        memmove(owned + k, owned + hi, (n - hi) * sizeof *owned);
        memmove(names + k, names + hi, (n - hi) * sizeof *names);
        for (size_t i = k + (n - hi); i < n; i++) {
            segs[i] = NULL;
            owned[i] = false;
        }
        n -= hi - k;
    }
    /* The MANIFEST. */
    s.next = w->next;
    s.names = names;
    s.n_names = n;
    size_t nd = 0;
    for (uint64_t i = 0; i < (nbits + 63) / 64; i++)
        nd += (size_t)__builtin_popcountll(dead[i]);
    s.dead_ids = cairn_calloc(nd ? nd : 1, sizeof *s.dead_ids);
    if (!s.dead_ids) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "index: out of memory");
        goto done;
    }
    for (uint64_t id = 0; id < nbits; id++)
        if ((dead[id >> 6] >> (id & 63)) & 1)
            s.dead_ids[s.n_dead++] = id;
    st = fsync_dir(ix->dir);
    bool renamed = false;
    if (st == CAIRN_OK)
        st = write_manifest(ix->dir, &s, &renamed);
    if (st != CAIRN_OK && renamed) {
        /* The MANIFEST naming the new segments is live (only the directory
         * fsync after it failed): they must not be deleted as uncommitted. */
        for (size_t i = 0; i < w->n_new; i++)
            cairn_free(w->new_names[i]);
        cairn_free(w->new_names);
        w->new_names = NULL;
        w->n_new = 0;
    }
    if (st == CAIRN_OK) {
        /* Committed: the new files are now owned by the MANIFEST. */
        for (size_t i = 0; i < w->n_new; i++)
            cairn_free(w->new_names[i]);
        cairn_free(w->new_names);
        w->new_names = NULL;
        w->n_new = 0;
        w->n_del = 0;
        w->reset = false;
        /* Reload from what we wrote, then delete files it does not name. */
        state r;
        bool exists;
        st = read_manifest(ix->dir, &r, &exists);
        if (st == CAIRN_OK)
            st = ix_load(ix, &r);
        if (st == CAIRN_OK) {
            DIR *d = opendir(ix->dir);
            struct dirent *de;
            while (d && (de = readdir(d))) {
                bool keep = !valid_seg_name(de->d_name) && !strstr(de->d_name, ".tmp.");
                for (size_t i = 0; !keep && i < r.n_names; i++)
                    keep = !strcmp(r.names[i], de->d_name);
                if (!keep) {
                    snprintf(path, sizeof path, "%s/%s", ix->dir, de->d_name);
                    unlink(path);
                }
            }
            if (d)
                closedir(d);
        }
        state_free(&r);
    }
done:
    s.names = NULL;     /* borrowed */
    s.n_names = 0;
    for (size_t i = 0; segs && i < cap; i++)
        if (owned && owned[i] && segs[i])
            seg_close(segs[i]);
    cairn_free(segs);
    cairn_free(owned);
    cairn_free(names);
    cairn_free(dead);
    state_free(&s);
    return st;
}

cairn_status bm25_destroy(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = cairn_io_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return cairn_fail(CAIRN_ERR_BUSY, "%s: the index is being written by another process", dir);
    }
    cairn_status st = CAIRN_OK;
    snprintf(path, sizeof path, "%s/MANIFEST", dir);
    if (unlink(path) != 0 && errno != ENOENT)
        st = cairn_fail(CAIRN_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    DIR *d = st == CAIRN_OK ? opendir(dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (valid_seg_name(de->d_name) || strstr(de->d_name, ".tmp.")) {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    if (st == CAIRN_OK)
        st = fsync_dir(dir);
    close(fd);
    return st;
}

cairn_status bm25_writer_commit(bm25_writer *w, uint64_t hwm, uint64_t del_hwm)
{
    return commit(w, hwm, del_hwm, false);
}

cairn_status bm25_writer_optimize(bm25_writer *w)
{
    return commit(w, w->ix->hwm, w->ix->del_hwm, true);
}
