/* pipeline.c — walking sources and writing their documents to the store
 * (see pipeline.h). */
#include "ingest/pipeline.h"
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#define GROUP_NS (500 * 1000000LL)      /* commit a group after this long */
#define GROUP_BYTES ((uint64_t)64 << 20) /* ... or after this many bytes */
#define SIDECAR_MAX_BYTES (1u << 20)
#define MAX_DEPTH 256

typedef struct dir_id { dev_t dev; ino_t ino; } dir_id;

struct pipeline {
    store *s;
    pipe_options o;
    pipe_stats st;
    bool in_group;
    int64_t group_start_ns;
    uint64_t group_bytes;
    dir_id *stack;          /* directories on the current walk path (loop detection) */
    size_t depth, cap;
    char store_dir_real[4096];
    bool counting;          /* pipeline_count / pipeline_list: walk only */
    bool event_again;       /* the next event is pipe_event.again */
    pipe_stats st_before_group; /* counts when the open group began (group_lost) */
    pipe_list_fn list_fn;   /* pipeline_list: called for each file */
    void *list_ctx;
    uint64_t count_files, count_bytes;
    int64_t count_deadline_ns;  /* pipeline_count gives up after this (0 = none) */
};

/* Per-file state while its documents are emitted. */
typedef struct file_ctx {
    pipeline *p;
    const char *fs_path;
    const char *key_path;       /* stored path */
    const struct stat *sb;
    const char *content_hash;
    const meta_list *sidecar;
    int64_t file_id;
    int64_t now_ns;
    size_t docs, chunks;
    bool repaired;
    char encoding[32];      /* not UTF-8: the charset it was read as */
    const char *type;
    uint64_t stream_read;  /* streamed files: bytes read so far */
    uint64_t *seen;         /* bitset by doc id: documents stored from this file in this run */
    size_t seen_words;
    int64_t last_progress_ns;
} file_ctx;

static void event(pipeline *p, pipe_outcome oc, const char *path, const char *reason, uint64_t bytes, size_t docs,
                  size_t chunks)
{
    if (p->counting)
        return;
    switch (oc) {
    case PIPE_ADDED: p->st.files_added++; break;
    case PIPE_UPDATED: p->st.files_updated++; break;
    case PIPE_UNCHANGED: p->st.files_unchanged++; break;
    case PIPE_SKIPPED: p->st.files_skipped++; break;
    case PIPE_FAILED: p->st.files_failed++; break;
    case PIPE_WARNING: p->st.warnings++; break;
    }
    /* Parsers name the file in their messages; the event names it too:
     * drop a leading "PATH: " (repeated) so it is not printed twice. */
    size_t pl = strlen(path);
    while (reason && pl && !strncmp(reason, path, pl) && reason[pl] == ':' && reason[pl + 1] == ' ')
        reason += pl + 2;
    if (p->o.on_event) {
        pipe_event ev = {oc, path, reason, bytes, docs, chunks, p->event_again};
        p->o.on_event(p->o.event_ctx, &ev);
    }
}

bool pipeline_glob_match(const char *pattern, const char *s) { return fnmatch(pattern, s, 0) == 0; }

static bool excluded(const pipeline *p, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (size_t i = 0; i < p->o.n_excludes; i++) {
        const char *g = p->o.excludes[i];
        if (fnmatch(g, base, 0) == 0 || fnmatch(g, path, 0) == 0)
            return true;
        /* a pattern with a slash also matches any path suffix */
        if (strchr(g, '/')) {
            for (const char *q = path; (q = strchr(q, '/')); q++)
                if (fnmatch(g, q + 1, 0) == 0)
                    return true;
        }
    }
    return false;
}

/* ---- groups of documents per transaction ---- */
static cairn_status group_begin(pipeline *p)
{
    if (p->in_group)
        return CAIRN_OK;
    CAIRN_TRY(store_begin(p->s));
    p->in_group = true;
    p->st_before_group = p->st;
    p->group_start_ns = cairn_mono_ns();
    p->group_bytes = 0;
    return CAIRN_OK;
}

/* The group's work is gone (its commit failed, or it was rolled back):
 * the counts report only what was kept. Files it had added or updated are
 * counted as lost (they stay absent or partial and are redone next run). */
static void group_lost(pipeline *p)
{
    const pipe_stats *b = &p->st_before_group;
    size_t lost = (p->st.files_added - b->files_added) + (p->st.files_updated - b->files_updated);
    uint64_t read = p->st.bytes_read, seen = p->st.bytes_seen;
    size_t failed = p->st.files_failed, warnings = p->st.warnings, lost_before = p->st.files_lost;
    p->st = *b;
    p->st.bytes_read = read;
    p->st.bytes_seen = seen;
    p->st.files_failed = failed;
    p->st.warnings = warnings;
    p->st.files_lost = lost_before + lost;
}

static cairn_status group_commit(pipeline *p)
{
    if (!p->in_group)
        return CAIRN_OK;
    p->in_group = false;
    cairn_status st = store_commit(p->s);   /* rolls back on failure */
    if (st != CAIRN_OK)
        group_lost(p);
    return st;
}

static cairn_status group_maybe_commit(pipeline *p)
{
    if (p->in_group && (cairn_mono_ns() - p->group_start_ns > GROUP_NS || p->group_bytes > GROUP_BYTES))
        return group_commit(p);
    return CAIRN_OK;
}

/* ---- sidecar FILE.meta.json ---- */
static cairn_status sidecar_value(meta_list *m, const char *key, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        double d;
        if (meta_parse_date(v->valuestring, &d))
            return meta_set_date(m, key, d);
        return meta_set_string(m, key, v->valuestring);
    }
    if (cJSON_IsBool(v))
        return meta_set_bool(m, key, cJSON_IsTrue(v));
    if (cJSON_IsNumber(v))
        return meta_set_number(m, key, v->valuedouble);
    if (cJSON_IsArray(v)) {
        size_t n = (size_t)cJSON_GetArraySize(v), k = 0;
        char **items = cairn_calloc(n ? n : 1, sizeof *items);
        if (!items)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        cairn_status st = CAIRN_OK;
        const cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            char buf[64];
            const char *sv = NULL;
            if (cJSON_IsString(it))
                sv = it->valuestring;
            else if (cJSON_IsNumber(it)) {
                snprintf(buf, sizeof buf, "%.17g", it->valuedouble);
                sv = buf;
            } else if (cJSON_IsBool(it))
                sv = cJSON_IsTrue(it) ? "true" : "false";
            if (!sv)
                continue;
            if (!(items[k] = cairn_strdup(sv))) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            k++;
        }
        if (st == CAIRN_OK)
            st = meta_set_list(m, key, (const char *const *)items, k);
        for (size_t i = 0; i < k; i++)
            cairn_free(items[i]);
        cairn_free(items);
        return st;
    }
    return CAIRN_OK;   /* null and nested objects are ignored */
}

/* Read FILE.meta.json if present. A broken sidecar is a warning (the
 * file itself is still ingested), reported through *warn. */
static cairn_status load_sidecar(const char *fs_path, meta_list *m, cairn_buf *raw, char *warn, size_t warn_len)
{
    char sp[4096];
    warn[0] = 0;
    if (snprintf(sp, sizeof sp, "%s.meta.json", fs_path) >= (int)sizeof sp)
        return CAIRN_OK;
    if (access(sp, F_OK) != 0)
        return CAIRN_OK;
    char *data;
    size_t len;
    cairn_status st = cairn_file_read_all(sp, SIDECAR_MAX_BYTES, &data, &len);
    if (st == CAIRN_ERR_NOMEM)
        return st;
    if (st != CAIRN_OK) {
        snprintf(warn, warn_len, "sidecar ignored: %s", cairn_last_error());
        return CAIRN_OK;
    }
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!j || !cJSON_IsObject(j)) {
        const char *b = strrchr(sp, '/');
        snprintf(warn, warn_len, "sidecar %.200s ignored: not a JSON object", b ? b + 1 : sp);
        cJSON_Delete(j);
        cairn_free(data);
        return CAIRN_OK;
    }
    st = cairn_buf_append(raw, data, len);
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (st != CAIRN_OK)
            break;
        if (it->string && *it->string)
            st = sidecar_value(m, it->string, it);
    }
    cJSON_Delete(j);
    cairn_free(data);
    return st;
}

/* ---- hashing ---- */
static void hash_str(XXH3_state_t *h, const char *s)
{
    size_t n = s ? strlen(s) + 1 : 0;
    XXH3_128bits_update(h, &n, sizeof n);
    if (n)
        XXH3_128bits_update(h, s, n);
}

static void hash_meta(XXH3_state_t *h, const meta_list *m)
{
    for (size_t i = 0; m && i < m->n; i++) {
        const meta_value *v = &m->e[i].v;
        hash_str(h, m->e[i].key);
        XXH3_128bits_update(h, &v->type, sizeof v->type);
        hash_str(h, v->s);
        XXH3_128bits_update(h, &v->n, sizeof v->n);
        for (size_t k = 0; k < v->n_items; k++)
            hash_str(h, v->items[k]);
    }
}

static void hash_hex(XXH3_state_t *h, char out[33])
{
    XXH128_hash_t d = XXH3_128bits_digest(h);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)d.high64, (unsigned long long)d.low64);
}

/* Everything besides the file's bytes that changes what is stored. */
static void options_hash(const pipeline *p, const cairn_buf *sidecar_raw, char out[33])
{
    XXH3_state_t h;
    XXH3_128bits_reset(&h);
    XXH3_128bits_update(&h, &p->o.chunk.max_tokens, sizeof p->o.chunk.max_tokens);
    XXH3_128bits_update(&h, &p->o.chunk.overlap_tokens, sizeof p->o.chunk.overlap_tokens);
    XXH3_128bits_update(&h, &p->o.ttl_s, sizeof p->o.ttl_s);
    hash_meta(&h, p->o.tags);
    if (sidecar_raw->len)
        XXH3_128bits_update(&h, sidecar_raw->data, sidecar_raw->len);
    hash_hex(&h, out);
}

/* ---- one document ---- */
static cairn_status doc_hash(const ingest_doc *d, const file_ctx *fc, char out[33])
{
    XXH3_state_t h;
    XXH3_128bits_reset(&h);
    const pipeline *p = fc->p;
    XXH3_128bits_update(&h, &p->o.chunk.max_tokens, sizeof p->o.chunk.max_tokens);
    XXH3_128bits_update(&h, &p->o.chunk.overlap_tokens, sizeof p->o.chunk.overlap_tokens);
    XXH3_128bits_update(&h, &p->o.ttl_s, sizeof p->o.ttl_s);
    hash_str(&h, d->type);
    hash_str(&h, d->key);
    hash_str(&h, d->title);
    for (size_t i = 0; i < d->n_blocks; i++) {
        const ingest_block *b = &d->blocks[i];
        int hdr[3] = {(int)b->kind, b->level, b->page};
        XXH3_128bits_update(&h, hdr, sizeof hdr);
        XXH3_128bits_update(&h, &b->len, sizeof b->len);
        XXH3_128bits_update(&h, b->text, b->len);
    }
    hash_meta(&h, &d->meta);
    hash_str(&h, fc->key_path);
    hash_hex(&h, out);
    return CAIRN_OK;
}

static cairn_status merge_meta(meta_list *dst, const meta_list *src)
{
    for (size_t i = 0; src && i < src->n; i++) {
        const meta_value *v = &src->e[i].v;
        const char *k = src->e[i].key;
        switch (v->type) {
        case META_STRING: CAIRN_TRY(meta_set_string(dst, k, v->s)); break;
        case META_NUMBER: CAIRN_TRY(meta_set_number(dst, k, v->n)); break;
        case META_DATE: CAIRN_TRY(meta_set_date(dst, k, v->n)); break;
        case META_BOOL: CAIRN_TRY(meta_set_bool(dst, k, v->n != 0)); break;
        case META_LIST: CAIRN_TRY(meta_set_list(dst, k, (const char *const *)v->items, v->n_items)); break;
        }
    }
    return CAIRN_OK;
}

/* The documents a file stored in this run, by id, to recognise a record id
 * repeated later in the file: one bit per document id of the store (1 MB
 * per 8M ids), instead of a set of every record key. */
static bool seen_has(const file_ctx *fc, int64_t id)
{
    uint64_t w = (uint64_t)id >> 6;
    return id > 0 && w < fc->seen_words && (fc->seen[w] >> (id & 63) & 1);
}

static cairn_status seen_add(file_ctx *fc, int64_t id)
{
    if (id <= 0)
        return CAIRN_OK;
    size_t w = (size_t)((uint64_t)id >> 6);
    if (w >= fc->seen_words) {
        size_t n = fc->seen_words ? fc->seen_words : 1024;
        while (n <= w)
            n *= 2;
        uint64_t *ns = cairn_reallocarray(fc->seen, n, sizeof *ns);
        if (!ns)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        memset(ns + fc->seen_words, 0, (n - fc->seen_words) * sizeof *ns);
        fc->seen = ns;
        fc->seen_words = n;
    }
    fc->seen[w] |= (uint64_t)1 << (id & 63);
    return CAIRN_OK;
}

static cairn_status emit_doc(void *ctx, ingest_doc *d)
{
    file_ctx *fc = ctx;
    pipeline *p = fc->p;
    if (p->o.stop && *p->o.stop)
        return cairn_fail(CAIRN_ERR_INTERRUPTED, "interrupted");
    if (d->utf8_repaired)
        fc->repaired = true;
    if (d->encoding[0])
        snprintf(fc->encoding, sizeof fc->encoding, "%s", d->encoding);
    fc->type = d->type;
    /* metadata precedence: parser < sidecar < --tag */
    CAIRN_TRY(merge_meta(&d->meta, fc->sidecar));
    CAIRN_TRY(merge_meta(&d->meta, p->o.tags));
    const meta_value *t = meta_get(&d->meta, "title");
    if (t && t->type == META_STRING && t->s && *t->s && (!d->title || strcmp(d->title, t->s))) {
        char *nt = cairn_strdup(t->s);
        if (!nt)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        cairn_free(d->title);
        d->title = nt;
    }
    int64_t expires = 0;
    const meta_value *ex = meta_get(&d->meta, "expires");
    if (ex && ex->type == META_DATE)
        expires = (int64_t)floor(ex->n);
    if (p->o.ttl_s > 0) {
        int64_t e2 = fc->now_ns / 1000000000LL + p->o.ttl_s;
        if (!expires || e2 < expires)
            expires = e2;
    }
    char dh[33], old[33];
    /* a group commit may have happened after the previous document */
    CAIRN_TRY(group_begin(p));
    int64_t old_id = 0;
    cairn_status fst = store_doc_find(p->s, fc->key_path, d->key ? d->key : "", &old_id, old);
    if (fst != CAIRN_OK && fst != CAIRN_ERR_NOT_FOUND)
        return fst;
    if (fst == CAIRN_OK && d->key_alt[0] && seen_has(fc, old_id)) {
        /* The id of a record already stored from this file in this run:
         * key it "id@line:N" so both are kept (what the parser's key set
         * does for a buffer, without memory per record). */
        cairn_buf nk;
        cairn_buf_init(&nk, 0);
        CAIRN_TRY(cairn_buf_printf(&nk, "%s@%s", d->key ? d->key : "", d->key_alt));
        char where[48];
        snprintf(where, sizeof where, "%s", d->key_alt);
        char *colon = strchr(where, ':');
        if (colon)
            *colon = ' ';
        CAIRN_WARN("%s: %s: id \"%s\" repeats an earlier record; keyed \"%s\"", fc->fs_path, where,
                   d->key ? d->key : "", nk.data);
        cairn_free(d->key);
        d->key = cairn_buf_take(&nk);
        fst = store_doc_find(p->s, fc->key_path, d->key, &old_id, old);
        if (fst != CAIRN_OK && fst != CAIRN_ERR_NOT_FOUND)
            return fst;
    }
    CAIRN_TRY(doc_hash(d, fc, dh));
    store_doc_in in = {
        .file_id = fc->file_id, .source_id = p->o.source_id, .path = fc->key_path, .rkey = d->key ? d->key : "",
        .type = d->type ? d->type : "text", .title = d->title, .size = (int64_t)fc->sb->st_size,
        .mtime_ns = (int64_t)fc->sb->st_mtim.tv_sec * 1000000000LL + fc->sb->st_mtim.tv_nsec,
        .content_hash = fc->content_hash, .doc_hash = dh, .ingested_at_ns = fc->now_ns,
        .sync_gen = p->o.sync_gen, .expires_at = expires, .meta = &d->meta, .chunks = NULL,
    };
    store_put_result res;
    chunk_list cl = {0};
    cairn_status st = CAIRN_OK;
    if (fst == CAIRN_OK && !strcmp(old, dh)) {
        st = store_doc_put(p->s, &in, &res);   /* touches stat data only */
        p->st.docs_unchanged++;
        fc->docs++;
        if (st == CAIRN_OK)
            st = seen_add(fc, old_id);
    } else {
        st = chunk_doc(d, &p->o.chunk, &cl);
        in.chunks = &cl;
        if (st == CAIRN_OK)
            st = store_doc_put(p->s, &in, &res);
        if (st == CAIRN_OK) {
            p->st.docs_written++;
            p->st.chunks_added += res.chunks_added;
            p->st.chunks_kept += res.chunks_kept;
            p->st.chunks_removed += res.chunks_removed;
            fc->docs++;
            fc->chunks += cl.n;
            st = seen_add(fc, res.doc_id);
            for (size_t i = 0; i < cl.n; i++)
                p->group_bytes += cl.c[i].len;
        }
        chunk_list_free(&cl);
    }
    CAIRN_TRY(st);
    if (p->o.on_progress && fc->stream_read) {
        int64_t now = cairn_mono_ns();
        if (now - fc->last_progress_ns > 200000000LL) {
            fc->last_progress_ns = now;
            p->o.on_progress(p->o.event_ctx, fc->fs_path, fc->stream_read, (uint64_t)fc->sb->st_size);
        }
    }
    /* Group commits may fall between the documents of one file; the file
     * stays marked partial until its last document is in. */
    return group_maybe_commit(p);
}

static int64_t mtime_ns_of(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
}

/* Record a file as skipped or failed (and drop documents it had before). */
static cairn_status mark_state(pipeline *p, store_file *f, bool existed, const struct stat *sb, const char *hash,
                               const char *mhash, const char *reason, store_file_state state)
{
    CAIRN_TRY(group_begin(p));
    if (existed && f->state != STORE_FILE_SKIPPED) {
        size_t removed = 0;
        CAIRN_TRY(store_file_prune_docs(p->s, f->id, INT64_MIN, &removed));
        p->st.docs_removed += removed;
    }
    f->size = (int64_t)sb->st_size;
    f->mtime_ns = mtime_ns_of(sb);
    snprintf(f->content_hash, sizeof f->content_hash, "%s", hash ? hash : "");
    snprintf(f->meta_hash, sizeof f->meta_hash, "%s", mhash ? mhash : "");
    f->state = state;
    f->ndocs = 0;
    f->sync_gen = p->o.sync_gen;
    f->source_id = p->o.source_id;
    return store_file_put(p->s, f, NULL, reason);
}

static cairn_status mark_skipped(pipeline *p, store_file *f, bool existed, const struct stat *sb, const char *hash,
                                 const char *mhash, const char *reason)
{
    return mark_state(p, f, existed, sb, hash, mhash, reason, STORE_FILE_SKIPPED);
}

static cairn_status add_file(pipeline *p, const char *fs_path, const struct stat *sb)
{
    uint64_t size = (uint64_t)sb->st_size;
    p->st.bytes_seen += size;
    char *key = NULL;
    CAIRN_TRY(store_path_key(p->s, fs_path, &key));
    store_file f;
    cairn_status st = store_file_get(p->s, key, &f);
    bool existed = st == CAIRN_OK;
    if (st != CAIRN_OK && st != CAIRN_ERR_NOT_FOUND) {
        cairn_free(key);
        return st;
    }
    if (!existed) {
        memset(&f, 0, sizeof f);
        f.path = key;
        key = NULL;
    } else {
        cairn_free(key);
        key = NULL;
    }
    meta_list sidecar = {0};
    cairn_buf raw;
    cairn_buf_init(&raw, 0);
    char warn[600], mh[33], ch[33];
    ingest_data data = {0};
    st = load_sidecar(fs_path, &sidecar, &raw, warn, sizeof warn);
    if (st != CAIRN_OK)
        goto out;
    options_hash(p, &raw, mh);
    int64_t mt = mtime_ns_of(sb);
    /* A file recorded complete whose documents are not all there (a store
     * written by two processes at once before the writer lock, a hand
     * edit) is redone, never reported unchanged. */
    bool docs_true = f.state != STORE_FILE_OK || f.ndocs_stored < 0 || f.ndocs_stored == f.ndocs;
    bool same_stat = existed && docs_true && f.size == (int64_t)size && f.mtime_ns == mt && !strcmp(f.meta_hash, mh);
    if (same_stat && (f.state == STORE_FILE_OK || f.state == STORE_FILE_SKIPPED || f.state == STORE_FILE_FAILED)) {
        if (f.sync_gen != p->o.sync_gen) {
            if ((st = group_begin(p)) == CAIRN_OK)
                st = store_file_touch(p->s, f.id, mt, p->o.sync_gen);
        }
        /* A file that failed to parse is not read again until it changes:
         * reported as skipped (with its recorded reason), not as a new
         * failure, so a cron job does not alert forever. */
        p->event_again = true;
        if (st == CAIRN_OK)
            event(p, f.state == STORE_FILE_OK ? PIPE_UNCHANGED : PIPE_SKIPPED, fs_path,
                  f.state == STORE_FILE_OK        ? NULL
                  : f.state == STORE_FILE_FAILED ? "failed to parse before (unchanged since)"
                                                  : "skipped before (unchanged since)",
                  size, 0, 0);
        p->event_again = false;
        goto out;
    }
    /* Record files (JSONL, CSV with a row per document) are streamed:
     * hashed in one bounded pass, then parsed in another, never held
     * whole; everything else is read into memory (capped). */
    const ingest_parser *sparser = NULL;
    bool streamed = false;
    uint64_t nbytes = 0;
    st = ingest_probe(fs_path, &p->o.ingest, &sparser, &streamed, NULL);
    if (st == CAIRN_ERR_NOMEM)
        goto out;
    cairn_clear_error();
    if (st == CAIRN_OK && streamed) {
        size_t cap = p->o.ingest.max_stream_bytes ? p->o.ingest.max_stream_bytes : (size_t)64 << 30;
        st = cairn_file_hash128_hex(fs_path, cap, ch, &nbytes);
        if (st == CAIRN_ERR_TOO_LARGE)
            cairn_fail(st, "%llu bytes exceeds the size cap of %zu bytes for record files (ingest.max_stream_gb)",
                       (unsigned long long)size, cap);
    } else {
        streamed = false;
        st = ingest_data_load(fs_path, p->o.ingest.max_file_bytes, &data);
        if (st == CAIRN_ERR_TOO_LARGE)
            cairn_fail(st, "%llu bytes exceeds the size cap of %zu bytes (ingest.max_file_mb)",
                       (unsigned long long)size, p->o.ingest.max_file_bytes);
        if (st == CAIRN_OK) {
            nbytes = data.len;
            cairn_hash128_hex(data.data, data.len, ch);
        }
    }
    if (st != CAIRN_OK) {
        if (st == CAIRN_ERR_NOMEM)
            goto out;
        char why[600];
        snprintf(why, sizeof why, "%s", cairn_last_error());
        if (st == CAIRN_ERR_TOO_LARGE) {
            st = mark_skipped(p, &f, existed, sb, NULL, mh, why);
            if (st == CAIRN_OK)
                event(p, PIPE_SKIPPED, fs_path, why, size, 0, 0);
        } else {
            event(p, PIPE_FAILED, fs_path, why, size, 0, 0);
            st = CAIRN_OK;
        }
        goto out;
    }
    p->st.bytes_read += nbytes;
    if (existed && docs_true && f.state == STORE_FILE_OK && !strcmp(f.content_hash, ch) && !strcmp(f.meta_hash, mh)) {
        /* touched but not changed */
        if ((st = group_begin(p)) == CAIRN_OK)
            st = store_file_touch(p->s, f.id, mt, p->o.sync_gen);
        if (st == CAIRN_OK)
            event(p, PIPE_UNCHANGED, fs_path, NULL, size, 0, 0);
        goto out;
    }
    if (warn[0])
        event(p, PIPE_WARNING, fs_path, warn, size, 0, 0);
    /* Mark the file partial first: if we die mid-file, the next run sees
     * state partial (or no row) and redoes it. */
    if ((st = group_begin(p)) != CAIRN_OK)
        goto out;
    store_file nf = f;
    nf.size = (int64_t)size;
    nf.mtime_ns = mt;
    snprintf(nf.content_hash, sizeof nf.content_hash, "%s", ch);
    snprintf(nf.meta_hash, sizeof nf.meta_hash, "%s", mh);
    nf.state = STORE_FILE_PARTIAL;
    nf.sync_gen = p->o.sync_gen;
    nf.source_id = p->o.source_id;
    if ((st = store_file_put(p->s, &nf, NULL, NULL)) != CAIRN_OK)
        goto out;
    f.id = nf.id;
    file_ctx fc = {.p = p, .fs_path = fs_path, .key_path = f.path, .sb = sb, .content_hash = ch, .sidecar = &sidecar,
                   .file_id = f.id, .now_ns = cairn_now_ns()};
    if (streamed) {
        st = ingest_stream_file_progress(fs_path, sparser, ch, &p->o.ingest, emit_doc, &fc, &fc.stream_read);
    } else {
        p->group_bytes += data.len;
        st = ingest_buffer(fs_path, data.data, data.len, &p->o.ingest, emit_doc, &fc);
    }
    cairn_free(fc.seen);
    if (st == CAIRN_ERR_UNSUPPORTED) {
        char why[600];
        snprintf(why, sizeof why, "%s", cairn_last_error());
        st = mark_skipped(p, &nf, existed, sb, ch, mh, why);
        if (st == CAIRN_OK)
            event(p, PIPE_SKIPPED, fs_path, why, size, 0, 0);
        goto out;
    }
    if (st == CAIRN_ERR_NOMEM || st == CAIRN_ERR_INTERRUPTED || st == CAIRN_ERR_BUSY || st == CAIRN_ERR_IO) {
        /* store or process trouble: stop the run (the file stays partial) */
        if (st != CAIRN_ERR_INTERRUPTED)
            cairn_fail_wrap(st, "%s", fs_path);
        goto out;
    }
    if (st != CAIRN_OK && st != CAIRN_ERR_CORRUPT && st != CAIRN_ERR_INVALID) {
        /* Not the content's fault (a parser library missing, ...): the
         * file stays partial and is retried next run. */
        char why[600];
        snprintf(why, sizeof why, "%s", cairn_last_error());
        event(p, PIPE_FAILED, fs_path, why, size, 0, 0);
        st = CAIRN_OK;
        goto out;
    }
    if (st != CAIRN_OK) {
        /* The parser rejected the content: record that with the reason
         * (state failed), so it is not re-read until it changes. */
        char why[600];
        snprintf(why, sizeof why, "%s", cairn_last_error());
        if (!p->in_group && (st = group_begin(p)) != CAIRN_OK)
            goto out;
        st = mark_state(p, &nf, true, sb, ch, mh, why, STORE_FILE_FAILED);
        if (st == CAIRN_OK)
            event(p, PIPE_FAILED, fs_path, why, size, 0, 0);
        goto out;
    }
    if (!p->in_group && (st = group_begin(p)) != CAIRN_OK)
        goto out;
    size_t removed = 0;
    if ((st = store_file_prune_docs(p->s, f.id, p->o.sync_gen, &removed)) != CAIRN_OK)
        goto out;
    p->st.docs_removed += removed;
    nf.state = STORE_FILE_OK;
    /* count what is stored: records with a repeated key replaced each other */
    if ((st = store_file_count_docs(p->s, f.id, &nf.ndocs)) != CAIRN_OK)
        goto out;
    if ((st = store_file_put(p->s, &nf, fc.type, NULL)) != CAIRN_OK)
        goto out;
    if (fc.repaired)
        event(p, PIPE_WARNING, fs_path, "invalid UTF-8 was replaced with U+FFFD", size, 0, 0);
    if (fc.encoding[0]) {
        char why[96];
        snprintf(why, sizeof why, "not UTF-8: read as %s (detected)", fc.encoding);
        event(p, PIPE_WARNING, fs_path, why, size, 0, 0);
    }
    event(p, existed ? PIPE_UPDATED : PIPE_ADDED, fs_path, NULL, size, fc.docs, fc.chunks);
    st = group_maybe_commit(p);
out:
    ingest_data_release(&data);
    meta_list_free(&sidecar);
    cairn_buf_free(&raw);
    store_file_free(&f);
    return st;
}

static const char *errno_reason(int e)
{
    switch (e) {
    case EACCES:
    case EPERM: return "permission denied";
    case ENOENT: return "no such file or directory";
    case ELOOP: return "too many levels of symbolic links (symlink loop)";
    case ENAMETOOLONG: return "path too long";
    default: return strerror(e);
    }
}

static bool is_sidecar(const char *name)
{
    size_t n = strlen(name);
    return n > 10 && !strcmp(name + n - 10, ".meta.json");
}

static cairn_status walk(pipeline *p, const char *path, bool explicit_arg);

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static cairn_status walk_dir(pipeline *p, const char *path, const struct stat *sb)
{
    for (size_t i = 0; i < p->depth; i++) {
        if (p->stack[i].dev == sb->st_dev && p->stack[i].ino == sb->st_ino) {
            event(p, PIPE_SKIPPED, path, "symlink loop (directory already being walked)", 0, 0, 0);
            return CAIRN_OK;
        }
    }
    if (p->depth >= MAX_DEPTH) {
        event(p, PIPE_SKIPPED, path, "directory nesting deeper than 256 levels", 0, 0, 0);
        return CAIRN_OK;
    }
    DIR *d = opendir(path);
    if (!d) {
        event(p, PIPE_FAILED, path, errno_reason(errno), 0, 0, 0);
        return CAIRN_OK;
    }
    if (p->depth == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 16;
        dir_id *ns = cairn_reallocarray(p->stack, nc, sizeof *ns);
        if (!ns) {
            closedir(d);
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        }
        p->stack = ns;
        p->cap = nc;
    }
    p->stack[p->depth++] = (dir_id){sb->st_dev, sb->st_ino};
    /* Read all names first, sorted, so the order is deterministic and no
     * directory handle stays open during recursion. */
    char **names = NULL;
    size_t n = 0, cap = 0;
    cairn_status st = CAIRN_OK;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (nm[0] == '.')
            continue;   /* ".", "..", hidden entries, .git, .cairn */
        if (is_sidecar(nm))
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            char **nn = cairn_reallocarray(names, nc, sizeof *nn);
            if (!nn) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                break;
            }
            names = nn;
            cap = nc;
        }
        if (!(names[n] = cairn_strdup(nm))) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (st == CAIRN_OK && n == 0 && p->depth == 1)
        event(p, PIPE_WARNING, path, "empty directory: nothing to add", 0, 0, 0);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    cairn_buf child;
    cairn_buf_init(&child, 0);
    for (size_t i = 0; st == CAIRN_OK && i < n; i++) {
        if (p->o.stop && *p->o.stop) {
            st = cairn_fail(CAIRN_ERR_INTERRUPTED, "interrupted");
            break;
        }
        cairn_buf_reset(&child);
        st = cairn_buf_printf(&child, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", names[i]);
        if (st == CAIRN_OK)
            st = walk(p, child.data, false);
    }
    cairn_buf_free(&child);
    for (size_t i = 0; i < n; i++)
        cairn_free(names[i]);
    cairn_free(names);
    p->depth--;
    return st;
}

static cairn_status walk(pipeline *p, const char *path, bool explicit_arg)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        int e = errno;
        struct stat lsb;
        if (lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode))
            event(p, PIPE_FAILED, path, e == ELOOP ? "symlink loop" : "dangling symbolic link", 0, 0, 0);
        else
            event(p, PIPE_FAILED, path, errno_reason(e), 0, 0, 0);
        return CAIRN_OK;
    }
    if (!explicit_arg && excluded(p, path))
        return CAIRN_OK;
    if (S_ISDIR(sb.st_mode)) {
        char real[4096];
        if (realpath(path, real) && !strcmp(real, p->store_dir_real)) {
            /* never ingest the store itself */
            if (explicit_arg)
                event(p, PIPE_SKIPPED, path, "this is the cairn store itself", 0, 0, 0);
            return CAIRN_OK;
        }
        return walk_dir(p, path, &sb);
    }
    if (!S_ISREG(sb.st_mode)) {
        /* reported (never opened: a FIFO would block), inside a walk too */
        p->event_again = !explicit_arg;
        event(p, PIPE_SKIPPED, path,
              S_ISFIFO(sb.st_mode)   ? "not a regular file (a named pipe)"
              : S_ISSOCK(sb.st_mode) ? "not a regular file (a socket)"
                                     : "not a regular file (a device)",
              0, 0, 0);
        p->event_again = false;
        return CAIRN_OK;
    }
    if (explicit_arg && is_sidecar(path)) {
        event(p, PIPE_SKIPPED, path, "metadata sidecar (applies to the file it names)", 0, 0, 0);
        return CAIRN_OK;
    }
    if (p->counting) {
        if (p->list_fn)
            return p->list_fn(p->list_ctx, path, &sb);
        p->count_files++;
        p->count_bytes += (uint64_t)sb.st_size;
        if (p->count_deadline_ns && (p->count_files & 255) == 0 && cairn_mono_ns() > p->count_deadline_ns)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "too many files to count quickly");
        return CAIRN_OK;
    }
    return add_file(p, path, &sb);
}

void pipeline_options_from_config(store *s, pipe_options *po)
{
    const store_config *cfg = store_get_config(s);
    memset(po, 0, sizeof *po);
    ingest_options_default(&po->ingest);
    po->ingest.max_file_bytes = cfg->max_file_bytes;
    po->ingest.max_stream_bytes = cfg->max_stream_bytes;
    po->ingest.max_record_bytes = cfg->max_record_bytes;
    chunk_options_default(&po->chunk);
    po->chunk.max_tokens = cfg->chunk_tokens;
    po->chunk.overlap_tokens = cfg->chunk_overlap;
}

cairn_status pipeline_new(store *s, const pipe_options *opt, pipeline **out)
{
    *out = NULL;
    CAIRN_TRY(chunk_options_check(&opt->chunk));
    pipeline *p = cairn_calloc(1, sizeof *p);
    if (!p)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    p->s = s;
    p->o = *opt;
    /* record keys are made unique in emit_doc (seen_has), not by a key set */
    p->o.ingest.caller_unique_keys = true;
    if (!realpath(store_dir(s), p->store_dir_real))
        snprintf(p->store_dir_real, sizeof p->store_dir_real, "%s", store_dir(s));
    *out = p;
    return CAIRN_OK;
}

cairn_status pipeline_add_path(pipeline *p, const char *fs_path)
{
    p->depth = 0;
    cairn_status st = walk(p, fs_path, true);
    if (st != CAIRN_OK && p->in_group) {
        /* Keep the whole documents already written in this group: they are
         * complete. Commit them; partial files are redone next run. */
        cairn_status c = group_commit(p);
        (void)c;
    }
    return st;
}

cairn_status pipeline_count(pipeline *p, const char *fs_path, uint64_t *files, uint64_t *bytes)
{
    p->depth = 0;
    p->counting = true;
    p->count_files = p->count_bytes = 0;
    /* A progress estimate must not delay the work much: give up after 2 s. */
    p->count_deadline_ns = cairn_mono_ns() + 2000000000LL;
    cairn_status st = walk(p, fs_path, true);
    p->counting = false;
    p->count_deadline_ns = 0;
    *files = p->count_files;
    *bytes = p->count_bytes;
    return st;
}

cairn_status pipeline_list(pipeline *p, const char *fs_path, pipe_list_fn fn, void *ctx)
{
    p->depth = 0;
    p->counting = true;
    p->list_fn = fn;
    p->list_ctx = ctx;
    cairn_status st = walk(p, fs_path, true);
    p->counting = false;
    p->list_fn = NULL;
    return st;
}

cairn_status pipeline_finish(pipeline *p) { return group_commit(p); }

void pipeline_set_source(pipeline *p, int64_t source_id, int64_t ttl_s)
{
    p->o.source_id = source_id;
    p->o.ttl_s = ttl_s;
}

const pipe_stats *pipeline_stats(const pipeline *p) { return &p->st; }

void pipeline_free(pipeline *p)
{
    if (!p)
        return;
    if (p->in_group) {
        store_rollback(p->s);
        group_lost(p);
    }
    cairn_free(p->stack);
    cairn_free(p);
}
