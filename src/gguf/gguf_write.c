/*
 * gguf_write.c — the GGUF v3 writer (layout: see the top of gguf.c).
 *
 * KV values are serialized when set (so a writer holds no pointers into its
 * sources for metadata); tensor data is copied, borrowed or taken over, as the
 * caller chooses. gguf_writer_write lays out: header, KVs, tensor infos, zero
 * padding to the alignment, then each tensor's data padded to the alignment,
 * with offsets assigned in insertion order — the same layout ggml produces, so
 * an unchanged file written back is byte-identical.
 */
#include "gguf/gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    gguf_type type;
    uint8_t *val;      /* serialized value (everything after the u32 type) */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    const void *data;
    void *owned;       /* freed by the writer (copied or taken) */
    size_t nbytes;
    gguf_tensor_fill_fn fill;   /* lazy: data produced at write time */
    void *fill_ctx;
} wtensor;

struct gguf_writer {
    wkv *kvs;
    size_t n_kv, cap_kv;
    wtensor *ts;
    size_t n_t, cap_t;
};

cairn_status gguf_writer_new(gguf_writer **out)
{
    *out = cairn_calloc(1, sizeof **out);
    return *out ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        cairn_free(w->kvs[i].key);
        cairn_free(w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        cairn_free(w->ts[i].name);
        cairn_free(w->ts[i].owned);
    }
    cairn_free(w->kvs);
    cairn_free(w->ts);
    cairn_free(w);
}

uint64_t gguf_writer_tensor_count(const gguf_writer *w) { return w->n_t; }

/* ---- KVs ---- */

static wkv *kv_lookup(gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kvs[i].key, key))
            return &w->kvs[i];
    return NULL;
}

void gguf_writer_remove(gguf_writer *w, const char *key)
{
    wkv *kv = kv_lookup(w, key);
    if (!kv)
        return;
    size_t i = (size_t)(kv - w->kvs);
    cairn_free(kv->key);
    cairn_free(kv->val);
    memmove(&w->kvs[i], &w->kvs[i + 1], (w->n_kv - i - 1) * sizeof *w->kvs);
    w->n_kv--;
}

/* Store key = (type, serialized value); takes ownership of val (freed on failure). */
static cairn_status kv_put(gguf_writer *w, const char *key, gguf_type type, uint8_t *val, size_t len)
{
    if (!key || !*key || strlen(key) > 65535) {
        cairn_free(val);
        return cairn_fail(CAIRN_ERR_INVALID, "gguf writer: invalid key");
    }
    wkv *kv = kv_lookup(w, key);
    if (kv) {
        cairn_free(kv->val);
        kv->type = type;
        kv->val = val;
        kv->val_len = len;
        return CAIRN_OK;
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *n = cairn_reallocarray(w->kvs, cap, sizeof *n);
        if (!n) {
            cairn_free(val);
            return cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
        }
        w->kvs = n;
        w->cap_kv = cap;
    }
    char *k = cairn_strdup(key);
    if (!k) {
        cairn_free(val);
        return cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
    }
    w->kvs[w->n_kv++] = (wkv){k, type, val, len};
    return CAIRN_OK;
}

static cairn_status kv_put_copy(gguf_writer *w, const char *key, gguf_type type, const void *bytes, size_t len)
{
    uint8_t *v = cairn_malloc(len ? len : 1);
    if (!v)
        return cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
    memcpy(v, bytes, len);
    return kv_put(w, key, type, v, len);
}

cairn_status gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v)
{
    return kv_put_copy(w, key, GGUF_TYPE_UINT32, &v, 4);
}

cairn_status gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v)
{
    return kv_put_copy(w, key, GGUF_TYPE_INT32, &v, 4);
}

cairn_status gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v)
{
    return kv_put_copy(w, key, GGUF_TYPE_UINT64, &v, 8);
}

cairn_status gguf_writer_set_f32(gguf_writer *w, const char *key, float v)
{
    return kv_put_copy(w, key, GGUF_TYPE_FLOAT32, &v, 4);
}

cairn_status gguf_writer_set_bool(gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return kv_put_copy(w, key, GGUF_TYPE_BOOL, &b, 1);
}

/* Append a length-prefixed string to b. */
static cairn_status put_str(cairn_buf *b, const char *s, uint64_t len)
{
    CAIRN_TRY(cairn_buf_append(b, &len, 8));
    return len ? cairn_buf_append(b, s, (size_t)len) : CAIRN_OK;
}

static cairn_status kv_put_buf(gguf_writer *w, const char *key, gguf_type type, cairn_buf *b, cairn_status st)
{
    if (st != CAIRN_OK) {
        cairn_buf_free(b);
        return cairn_fail(st, "gguf writer: out of memory setting '%s'", key ? key : "");
    }
    size_t len = b->len;
    uint8_t *v = (uint8_t *)cairn_buf_take(b);
    if (!v)
        v = cairn_malloc(1);
    if (!v)
        return cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
    return kv_put(w, key, type, v, len);
}

cairn_status gguf_writer_set_str(gguf_writer *w, const char *key, const char *v)
{
    if (!v)
        return cairn_fail(CAIRN_ERR_INVALID, "gguf writer: NULL string for '%s'", key ? key : "");
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = put_str(&b, v, strlen(v));
    return kv_put_buf(w, key, GGUF_TYPE_STRING, &b, st);
}

cairn_status gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem, const void *data, uint64_t count)
{
    size_t es = gguf_type_size(elem);
    size_t n;
    if (es == 0)
        return cairn_fail(CAIRN_ERR_INVALID, "gguf writer: '%s': arrays of %s need another call", key ? key : "",
                          gguf_type_name(elem));
    if (!cairn_mul_ok((size_t)count, es, &n) || (count && !data))
        return cairn_fail(CAIRN_ERR_INVALID, "gguf writer: '%s': bad array", key ? key : "");
    cairn_buf b;
    cairn_buf_init(&b, 0);
    uint32_t et = elem;
    cairn_status st = cairn_buf_append(&b, &et, 4);
    if (st == CAIRN_OK)
        st = cairn_buf_append(&b, &count, 8);
    if (st == CAIRN_OK && n)
        st = cairn_buf_append(&b, data, n);
    return kv_put_buf(w, key, GGUF_TYPE_ARRAY, &b, st);
}

cairn_status gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, uint64_t count)
{
    cairn_buf b;
    cairn_buf_init(&b, 0);
    uint32_t et = GGUF_TYPE_STRING;
    cairn_status st = cairn_buf_append(&b, &et, 4);
    if (st == CAIRN_OK)
        st = cairn_buf_append(&b, &count, 8);
    for (uint64_t i = 0; st == CAIRN_OK && i < count; i++)
        st = put_str(&b, strs[i] ? strs[i] : "", strs[i] ? strlen(strs[i]) : 0);
    return kv_put_buf(w, key, GGUF_TYPE_ARRAY, &b, st);
}

/* Serialize a scalar from the reader's widened union back to its on-disk width. */
static void scalar_encode(gguf_type t, const gguf_kv *kv, uint8_t out[8])
{
    uint16_t u16; uint32_t u32; uint64_t u64; float f;
    switch (t) {
    case GGUF_TYPE_UINT8: out[0] = (uint8_t)kv->v.u64; break;
    case GGUF_TYPE_INT8: out[0] = (uint8_t)(int8_t)kv->v.i64; break;
    case GGUF_TYPE_BOOL: out[0] = kv->v.b ? 1 : 0; break;
    case GGUF_TYPE_UINT16: u16 = (uint16_t)kv->v.u64; memcpy(out, &u16, 2); break;
    case GGUF_TYPE_INT16: u16 = (uint16_t)(int16_t)kv->v.i64; memcpy(out, &u16, 2); break;
    case GGUF_TYPE_UINT32: u32 = (uint32_t)kv->v.u64; memcpy(out, &u32, 4); break;
    case GGUF_TYPE_INT32: u32 = (uint32_t)(int32_t)kv->v.i64; memcpy(out, &u32, 4); break;
    case GGUF_TYPE_FLOAT32: f = (float)kv->v.f64; memcpy(out, &f, 4); break;
    case GGUF_TYPE_UINT64: memcpy(out, &kv->v.u64, 8); break;
    case GGUF_TYPE_INT64: u64 = (uint64_t)kv->v.i64; memcpy(out, &u64, 8); break;
    case GGUF_TYPE_FLOAT64: memcpy(out, &kv->v.f64, 8); break;
    default: break;
    }
}

cairn_status gguf_writer_set_kv(gguf_writer *w, const gguf_kv *kv)
{
    char *key = cairn_strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key)
        return cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
    cairn_status st;
    if (kv->type == GGUF_TYPE_STRING) {
        cairn_buf b;
        cairn_buf_init(&b, 0);
        st = kv_put_buf(w, key, kv->type, &b, put_str(&b, kv->v.str.ptr, kv->v.str.len));
    } else if (kv->type == GGUF_TYPE_ARRAY && kv->v.arr.type == GGUF_TYPE_STRING) {
        cairn_buf b;
        cairn_buf_init(&b, 0);
        uint32_t et = GGUF_TYPE_STRING;
        uint64_t count = kv->v.arr.count;
        st = cairn_buf_append(&b, &et, 4);
        if (st == CAIRN_OK)
            st = cairn_buf_append(&b, &count, 8);
        for (uint64_t i = 0; st == CAIRN_OK && i < count; i++) {
            gguf_str s = gguf_arr_str(kv, i);
            st = put_str(&b, s.ptr, s.len);
        }
        st = kv_put_buf(w, key, kv->type, &b, st);
    } else if (kv->type == GGUF_TYPE_ARRAY) {
        st = gguf_writer_set_arr(w, key, kv->v.arr.type, kv->v.arr.data, kv->v.arr.count);
    } else if ((unsigned)kv->type < GGUF_TYPE_COUNT) {
        uint8_t buf[8];
        scalar_encode(kv->type, kv, buf);
        st = kv_put_copy(w, key, kv->type, buf, gguf_type_size(kv->type));
    } else {
        st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: '%s': unknown type %d", key, (int)kv->type);
    }
    cairn_free(key);
    return st;
}

cairn_status gguf_writer_copy_kvs(gguf_writer *w, const gguf_file *src)
{
    for (uint64_t i = 0; i < gguf_kv_count(src); i++)
        CAIRN_TRY(gguf_writer_set_kv(w, gguf_kv_at(src, i)));
    return CAIRN_OK;
}

/* ---- tensors ---- */

static cairn_status tensor_add(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                               const void *data, size_t nbytes, int mode /* 0 copy, 1 borrow, 2 take, 3 lazy */)
{
    cairn_status st = CAIRN_OK;
    void *owned = mode == 2 ? (void *)data : NULL;
    const gguf_ttype_info *ti = gguf_ttype(type);
    size_t nlen = name ? strlen(name) : 0;
    int64_t nel = 1;
    if (nlen == 0 || nlen > GGUF_MAX_NAME) {
        st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor name '%s' is empty or longer than %d bytes",
                        name ? name : "", GGUF_MAX_NAME);
        goto fail;
    }
    if (!ti) {
        st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor '%s': unknown type %u", name, type);
        goto fail;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne) {
        st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor '%s': %u dims", name, n_dims);
        goto fail;
    }
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] <= 0 || __builtin_mul_overflow(nel, ne[d], &nel)) {
            st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor '%s': bad shape", name);
            goto fail;
        }
    if (ne[0] % ti->block_size) {
        st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor '%s': row length %lld is not a multiple of the "
                        "%s block size %u", name, (long long)ne[0], ti->name, ti->block_size);
        goto fail;
    }
    if (gguf_ttype_nbytes(type, nel) != nbytes || (nbytes && !data && mode != 3)) {
        st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor '%s': %zu bytes given, %s of %lld values needs "
                        "%llu", name, nbytes, ti->name, (long long)nel,
                        (unsigned long long)gguf_ttype_nbytes(type, nel));
        goto fail;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->ts[i].name, name)) {
            st = cairn_fail(CAIRN_ERR_INVALID, "gguf writer: duplicate tensor '%s'", name);
            goto fail;
        }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *n = cairn_reallocarray(w->ts, cap, sizeof *n);
        if (!n) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
            goto fail;
        }
        w->ts = n;
        w->cap_t = cap;
    }
    wtensor t = {0};
    t.name = cairn_strdup(name);
    if (!t.name) {
        st = cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory");
        goto fail;
    }
    if (mode == 0) {
        owned = cairn_malloc(nbytes ? nbytes : 1);
        if (!owned) {
            cairn_free(t.name);
            st = cairn_fail(CAIRN_ERR_NOMEM, "gguf writer: out of memory for tensor '%s' (%zu bytes)", name, nbytes);
            goto fail;
        }
        memcpy(owned, data, nbytes);
        data = owned;
    }
    t.type = type;
    t.n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t.ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t.data = data;
    t.owned = owned;
    t.nbytes = nbytes;
    w->ts[w->n_t++] = t;
    return CAIRN_OK;
fail:
    if (mode == 2)
        cairn_free(owned);
    return st;
}

cairn_status gguf_writer_add_tensor_lazy(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                         const int64_t *ne, size_t nbytes, gguf_tensor_fill_fn fill, void *ctx)
{
    if (!fill)
        return cairn_fail(CAIRN_ERR_INVALID, "gguf writer: tensor '%s': no fill function", name ? name : "");
    CAIRN_TRY(tensor_add(w, name, type, n_dims, ne, NULL, nbytes, 3));
    w->ts[w->n_t - 1].fill = fill;
    w->ts[w->n_t - 1].fill_ctx = ctx;
    return CAIRN_OK;
}

cairn_status gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                    const int64_t *ne, const void *data, size_t nbytes)
{
    return tensor_add(w, name, type, n_dims, ne, data, nbytes, 0);
}

cairn_status gguf_writer_add_tensor_borrow(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                           const int64_t *ne, const void *data, size_t nbytes)
{
    return tensor_add(w, name, type, n_dims, ne, data, nbytes, 1);
}

cairn_status gguf_writer_add_tensor_take(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                                         const int64_t *ne, void *data, size_t nbytes)
{
    return tensor_add(w, name, type, n_dims, ne, data, nbytes, 2);
}

/* ---- output ---- */

static cairn_status writer_alignment(gguf_writer *w, uint64_t *align)
{
    *align = GGUF_DEFAULT_ALIGNMENT;
    wkv *kv = kv_lookup(w, "general.alignment");
    if (!kv)
        return CAIRN_OK;
    uint64_t a = 0;
    if (kv->type == GGUF_TYPE_UINT32) {
        uint32_t v;
        memcpy(&v, kv->val, 4);
        a = v;
    }
    if (a == 0 || (a & (a - 1)) || a > (1u << 24))
        return cairn_fail(CAIRN_ERR_INVALID, "gguf writer: general.alignment must be a u32 power of two");
    *align = a;
    return CAIRN_OK;
}

static cairn_status write_all(int fd, const void *p, size_t n, const char *path)
{
    const char *c = p;
    while (n) {
        ssize_t r = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return cairn_fail(CAIRN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        }
        c += r;
        n -= (size_t)r;
    }
    return CAIRN_OK;
}

static const uint8_t zeros[4096];

static cairn_status write_pad(int fd, uint64_t n, const char *path)
{
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        CAIRN_TRY(write_all(fd, zeros, k, path));
        n -= k;
    }
    return CAIRN_OK;
}

static cairn_status build_header(gguf_writer *w, uint64_t align, cairn_buf *h)
{
    uint32_t version = 3;
    uint64_t nt = w->n_t, nkv = w->n_kv;
    CAIRN_TRY(cairn_buf_append(h, "GGUF", 4));
    CAIRN_TRY(cairn_buf_append(h, &version, 4));
    CAIRN_TRY(cairn_buf_append(h, &nt, 8));
    CAIRN_TRY(cairn_buf_append(h, &nkv, 8));
    for (size_t i = 0; i < w->n_kv; i++) {
        uint32_t t = w->kvs[i].type;
        CAIRN_TRY(put_str(h, w->kvs[i].key, strlen(w->kvs[i].key)));
        CAIRN_TRY(cairn_buf_append(h, &t, 4));
        CAIRN_TRY(cairn_buf_append(h, w->kvs[i].val, w->kvs[i].val_len));
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        CAIRN_TRY(put_str(h, t->name, strlen(t->name)));
        CAIRN_TRY(cairn_buf_append(h, &t->n_dims, 4));
        for (uint32_t d = 0; d < t->n_dims; d++)
            CAIRN_TRY(cairn_buf_append(h, &t->ne[d], 8));
        CAIRN_TRY(cairn_buf_append(h, &t->type, 4));
        CAIRN_TRY(cairn_buf_append(h, &off, 8));
        off += (t->nbytes + align - 1) / align * align;
    }
    size_t pad = (size_t)((align - h->len % align) % align);
    for (size_t i = 0; i < pad; i++)
        CAIRN_TRY(cairn_buf_putc(h, 0));
    return CAIRN_OK;
}

/* Make the rename durable (best effort: some filesystems refuse fsync on directories). */
static void fsync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)CAIRN_MIN((size_t)(slash - path), sizeof dir - 1), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

cairn_status gguf_writer_write(gguf_writer *w, const char *path)
{
    uint64_t align;
    CAIRN_TRY(writer_alignment(w, &align));
    cairn_buf h;
    cairn_buf_init(&h, 0);
    cairn_status st = build_header(w, align, &h);
    if (st != CAIRN_OK) {
        cairn_buf_free(&h);
        return cairn_fail(st, "%s: out of memory building the GGUF header", path);
    }
    size_t plen = strlen(path);
    char *tmp = cairn_malloc(plen + 32);
    if (!tmp) {
        cairn_buf_free(&h);
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, plen + 32, "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        cairn_buf_free(&h);
        cairn_free(tmp);
        return st;
    }
    st = write_all(fd, h.data, h.len, path);
    for (size_t i = 0; st == CAIRN_OK && i < w->n_t; i++) {
        const wtensor *t = &w->ts[i];
        if (t->fill) {
            void *buf = cairn_malloc(t->nbytes ? t->nbytes : 1);
            if (!buf) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory for tensor '%s' (%zu bytes)", path, t->name,
                                t->nbytes);
                break;
            }
            st = t->fill(t->fill_ctx, buf, t->nbytes);
            if (st == CAIRN_OK)
                st = write_all(fd, buf, t->nbytes, path);
            cairn_free(buf);
        } else {
            st = write_all(fd, t->data, t->nbytes, path);
        }
        if (st == CAIRN_OK)
            st = write_pad(fd, (align - w->ts[i].nbytes % align) % align, path);
    }
    if (st == CAIRN_OK && fsync(fd) != 0)
        st = cairn_fail(CAIRN_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == CAIRN_OK)
        st = cairn_fail(CAIRN_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == CAIRN_OK && rename(tmp, path) != 0)
        st = cairn_fail(CAIRN_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st == CAIRN_OK)
        fsync_parent(path);
    if (st != CAIRN_OK)
        unlink(tmp);
    cairn_buf_free(&h);
    cairn_free(tmp);
    return st;
}
