/* decompress.c — single compressed files through libarchive (see
 * decompress.h). Cost: the codec's own speed (zlib inflate ~300 MB/s per
 * core here) plus one copy out of libarchive's buffer. */
#include "ingest/decompress.h"
#include <archive.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#define RAW_BLOCK ((size_t)64 << 10)

struct decomp {
    struct archive *a;
    int fd;                 /* -1: memory */
    const char *mem;
    size_t mem_len;
    bool mem_given;
    char *block;            /* fd mode: the raw read buffer */
    XXH3_state_t *raw_hash;
    uint64_t raw, out, max_out;
    const char *codec;
    const char *cap_name;
    bool started, done;
    int read_errno;
};

const char *decomp_codec(const void *data, size_t len)
{
    const unsigned char *u = data;
    if (len >= 3 && u[0] == 0x1f && u[1] == 0x8b && u[2] == 8)
        return "gzip";
    if (len >= 4 && u[0] == 'B' && u[1] == 'Z' && u[2] == 'h' && u[3] >= '1' && u[3] <= '9')
        return "bzip2";
    if (len >= 6 && memcmp(u, "\xfd" "7zXZ\0", 6) == 0)
        return "xz";
    if (len >= 4 && memcmp(u, "\x28\xb5\x2f\xfd", 4) == 0)
        return "zstd";
    return NULL;
}

void decomp_inner_name(const char *path, char *out, size_t cap)
{
    static const struct { const char *suf, *repl; } sufs[] = {
        {".gz", ""}, {".gzip", ""}, {".bz2", ""}, {".xz", ""}, {".zst", ""}, {".zstd", ""},
        {".tgz", ".tar"}, {".tbz2", ".tar"}, {".tbz", ".tar"}, {".txz", ".tar"},
    };
    size_t n = strlen(path);
    const char *base = strrchr(path, '/');
    size_t base_off = base ? (size_t)(base - path) + 1 : 0;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(sufs); i++) {
        size_t k = strlen(sufs[i].suf);
        if (n > base_off + k && strcasecmp(path + n - k, sufs[i].suf) == 0) {
            snprintf(out, cap, "%.*s%s", (int)(n - k), path, sufs[i].repl);
            return;
        }
    }
    snprintf(out, cap, "%s", path);
}

static la_ssize_t read_cb(struct archive *a, void *ctx, const void **buf)
{
    (void)a;
    decomp *d = ctx;
    if (d->fd < 0) {
        if (d->mem_given) {
            *buf = NULL;
            return 0;
        }
        d->mem_given = true;
        *buf = d->mem;
        d->raw += d->mem_len;
        return (la_ssize_t)d->mem_len;
    }
    for (;;) {
        ssize_t r = read(d->fd, d->block, RAW_BLOCK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            d->read_errno = errno;
            archive_set_error(a, errno, "read failed: %s", strerror(errno));
            return -1;
        }
        if (r > 0 && d->raw_hash)
            XXH3_128bits_update(d->raw_hash, d->block, (size_t)r);
        d->raw += (uint64_t)r;
        *buf = d->block;
        return r;
    }
}

/* libarchive returns ARCHIVE_WARN when it would run an external program
 * (gzip -d, zstd -d ...) for a codec it was built without: refuse that. */
static cairn_status enable_codec(decomp *d)
{
    int r;
    if (!strcmp(d->codec, "gzip"))
        r = archive_read_support_filter_gzip(d->a);
    else if (!strcmp(d->codec, "bzip2"))
        r = archive_read_support_filter_bzip2(d->a);
    else if (!strcmp(d->codec, "xz"))
        r = archive_read_support_filter_xz(d->a);
    else if (!strcmp(d->codec, "zstd"))
        r = archive_read_support_filter_zstd(d->a);
    else
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "unknown compression");
    if (r != ARCHIVE_OK)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s-compressed file: this build of libarchive has no %s decoder",
                          d->codec, d->codec);
    if (archive_read_support_format_raw(d->a) != ARCHIVE_OK)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "libarchive without raw format support");
    return CAIRN_OK;
}

static cairn_status open_common(decomp *d)
{
    d->a = archive_read_new();
    if (!d->a)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory (libarchive)");
    CAIRN_TRY(enable_codec(d));
    if (archive_read_open(d->a, d, NULL, read_cb, NULL) != ARCHIVE_OK)
        return cairn_fail(d->read_errno ? CAIRN_ERR_IO : CAIRN_ERR_CORRUPT, "damaged %s data (%s)", d->codec,
                          archive_error_string(d->a) ? archive_error_string(d->a) : "unreadable");
    struct archive_entry *e;
    int r = archive_read_next_header(d->a, &e);
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
        return cairn_fail(d->read_errno ? CAIRN_ERR_IO : CAIRN_ERR_CORRUPT, "damaged %s data (%s)", d->codec,
                          archive_error_string(d->a) ? archive_error_string(d->a) : "unreadable");
    if (archive_filter_code(d->a, 0) == ARCHIVE_FILTER_NONE)
        return cairn_fail(CAIRN_ERR_CORRUPT, "damaged %s data (not recognised by the decoder)", d->codec);
    d->started = true;
    return CAIRN_OK;
}

static cairn_status open_finish(decomp *d, decomp **out)
{
    cairn_status st = open_common(d);
    if (st != CAIRN_OK) {
        decomp_close(d);
        return st;
    }
    *out = d;
    return CAIRN_OK;
}

cairn_status decomp_open_fd(decomp **out, int fd, const char *codec, uint64_t max_out, const char *cap_name,
                            XXH3_state_t *raw_hash)
{
    *out = NULL;
    decomp *d = cairn_calloc(1, sizeof *d);
    if (!d || !(d->block = cairn_malloc(RAW_BLOCK))) {
        cairn_free(d);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    d->fd = fd;
    d->codec = codec;
    d->max_out = max_out;
    d->cap_name = cap_name;
    d->raw_hash = raw_hash;
    return open_finish(d, out);
}

cairn_status decomp_open_mem(decomp **out, const void *data, size_t len, const char *codec, uint64_t max_out,
                             const char *cap_name)
{
    *out = NULL;
    decomp *d = cairn_calloc(1, sizeof *d);
    if (!d)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    d->fd = -1;
    d->mem = data;
    d->mem_len = len;
    d->codec = codec;
    d->max_out = max_out;
    d->cap_name = cap_name;
    return open_finish(d, out);
}

cairn_status decomp_read(decomp *d, void *buf, size_t n, size_t *got)
{
    *got = 0;
    if (d->done || n == 0)
        return CAIRN_OK;
    /* Never produce more than one byte past the cap: enough to tell. */
    if (d->out + n > d->max_out + 1)
        n = (size_t)(d->max_out + 1 - d->out);
    la_ssize_t r = archive_read_data(d->a, buf, n);
    if (r < 0) {
        const char *why = archive_error_string(d->a);
        return cairn_fail(d->read_errno ? CAIRN_ERR_IO : CAIRN_ERR_CORRUPT, "damaged %s data at uncompressed byte %llu (%s)",
                          d->codec, (unsigned long long)d->out, why ? why : "unreadable");
    }
    if (r == 0) {
        d->done = true;
        /* Hash what the decoder left unread (trailing bytes), so the raw
         * hash is the whole file's, as the pipeline computed it. */
        while (d->fd >= 0 && d->raw_hash) {
            ssize_t k = read(d->fd, d->block, RAW_BLOCK);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                break;
            XXH3_128bits_update(d->raw_hash, d->block, (size_t)k);
            d->raw += (uint64_t)k;
        }
        return CAIRN_OK;
    }
    d->out += (uint64_t)r;
    if (d->out > d->max_out)
        return cairn_fail(CAIRN_ERR_UNSUPPORTED,
                          "decompression bomb refused: %s data uncompresses to more than the size cap of %llu bytes (%s)",
                          d->codec, (unsigned long long)d->max_out, d->cap_name ? d->cap_name : "cap");
    if (d->out > DECOMP_RATIO_AFTER && d->out > (uint64_t)DECOMP_MAX_RATIO * (d->raw ? d->raw : 1))
        return cairn_fail(CAIRN_ERR_UNSUPPORTED,
                          "decompression bomb refused: %llu bytes of %s data gave more than %llu bytes (over %d:1)",
                          (unsigned long long)d->raw, d->codec, (unsigned long long)d->out, DECOMP_MAX_RATIO);
    *got = (size_t)r;
    return CAIRN_OK;
}

uint64_t decomp_raw_bytes(const decomp *d) { return d->raw; }
uint64_t decomp_out_bytes(const decomp *d) { return d->out; }
const char *decomp_name(const decomp *d) { return d->codec; }

void decomp_close(decomp *d)
{
    if (!d)
        return;
    if (d->a)
        archive_read_free(d->a);
    cairn_free(d->block);
    cairn_free(d);
}

/* gzip held in memory: zlib inflates straight into the output buffer (no
 * copy out of libarchive's buffer: measured ~8% of a .gz ingest). Members
 * of a multi-member file are read one after another, as gzip -d does. */
static cairn_status gunzip_buffer(const char *data, size_t len, uint64_t max_out, const char *cap_name, char **out,
                                  size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory (zlib)");
    size_t cap = len < ((size_t)1 << 28) ? len * 4 + 4096 : len;
    if (cap > max_out + 2)
        cap = (size_t)max_out + 2;
    char *b = cairn_malloc(cap);
    cairn_status st = b ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory decompressing");
    z.next_in = (Bytef *)data;
    size_t n = 0, in_left = len;
    while (st == CAIRN_OK) {
        if (cap - n < 2) {
            if (n > max_out) {
                st = cairn_fail(CAIRN_ERR_UNSUPPORTED,
                                "decompression bomb refused: gzip data uncompresses to more than the size cap of %llu bytes (%s)",
                                (unsigned long long)max_out, cap_name ? cap_name : "cap");
                break;
            }
            size_t nc = cap * 2;
            if (nc > max_out + 2)
                nc = (size_t)max_out + 2;
            char *nb = nc > cap ? cairn_realloc(b, nc) : NULL;
            if (!nb) {
                st = nc > cap ? cairn_fail(CAIRN_ERR_NOMEM, "out of memory decompressing (%zu bytes)", nc)
                              : cairn_fail(CAIRN_ERR_UNSUPPORTED,
                                           "decompression bomb refused: gzip data uncompresses to more than the size cap of %llu bytes (%s)",
                                           (unsigned long long)max_out, cap_name ? cap_name : "cap");
                break;
            }
            b = nb;
            cap = nc;
        }
        uInt in_now = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
        size_t room = cap - n - 1;
        uInt out_now = room > (1u << 30) ? (1u << 30) : (uInt)room;
        z.avail_in = in_now;
        z.next_out = (Bytef *)b + n;
        z.avail_out = out_now;
        int r = inflate(&z, Z_NO_FLUSH);
        size_t used_in = in_now - z.avail_in;
        in_left -= used_in;
        n += out_now - z.avail_out;
        if (n > max_out) {
            st = cairn_fail(CAIRN_ERR_UNSUPPORTED,
                            "decompression bomb refused: gzip data uncompresses to more than the size cap of %llu bytes (%s)",
                            (unsigned long long)max_out, cap_name ? cap_name : "cap");
            break;
        }
        uint64_t consumed = len - in_left;
        if (n > DECOMP_RATIO_AFTER && n > (uint64_t)DECOMP_MAX_RATIO * (consumed ? consumed : 1)) {
            st = cairn_fail(CAIRN_ERR_UNSUPPORTED,
                            "decompression bomb refused: %llu bytes of gzip data gave more than %zu bytes (over %d:1)",
                            (unsigned long long)consumed, n, DECOMP_MAX_RATIO);
            break;
        }
        if (r == Z_STREAM_END) {
            /* another member follows (gzip magic), else trailing bytes are ignored */
            if (in_left >= 3 && (unsigned char)z.next_in[0] == 0x1f && (unsigned char)z.next_in[1] == 0x8b) {
                inflateReset(&z);
                continue;
            }
            break;
        }
        if (r == Z_BUF_ERROR && z.avail_out != 0 && in_left == 0) {
            st = cairn_fail(CAIRN_ERR_CORRUPT, "damaged gzip data at uncompressed byte %zu (truncated input)", n);
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            st = r == Z_MEM_ERROR ? cairn_fail(CAIRN_ERR_NOMEM, "out of memory (zlib)")
                                  : cairn_fail(CAIRN_ERR_CORRUPT, "damaged gzip data at uncompressed byte %zu (%s)", n,
                                               z.msg ? z.msg : "gzip decompression failed");
            break;
        }
        if (in_left == 0 && z.avail_out != 0) {
            st = cairn_fail(CAIRN_ERR_CORRUPT, "damaged gzip data at uncompressed byte %zu (truncated input)", n);
            break;
        }
    }
    inflateEnd(&z);
    if (st != CAIRN_OK) {
        cairn_free(b);
        return st;
    }
    b[n] = 0;
    *out = b;
    *out_len = n;
    return CAIRN_OK;
}

cairn_status decomp_buffer(const char *data, size_t len, const char *codec, uint64_t max_out, const char *cap_name,
                           char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!strcmp(codec, "gzip"))
        return gunzip_buffer(data, len, max_out, cap_name, out, out_len);
    decomp *d;
    CAIRN_TRY(decomp_open_mem(&d, data, len, codec, max_out, cap_name));
    /* First guess 4x the input (typical for text), then doubling. */
    size_t cap = len < ((size_t)1 << 28) ? len * 4 + 4096 : len;
    if (cap > max_out + 2)
        cap = (size_t)max_out + 2;
    char *b = cairn_malloc(cap);
    cairn_status st = b ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory decompressing");
    size_t n = 0;
    while (st == CAIRN_OK) {
        if (cap - n < 2) {
            size_t nc = cap * 2;
            if (nc > max_out + 2)
                nc = (size_t)max_out + 2;
            if (nc <= cap) /* cannot happen: decomp_read stops one past max_out */
                nc = cap + 4096;
            char *nb = cairn_realloc(b, nc);
            if (!nb) {
                st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory decompressing (%zu bytes)", nc);
                break;
            }
            b = nb;
            cap = nc;
        }
        size_t got;
        st = decomp_read(d, b + n, cap - n - 1, &got);
        if (st != CAIRN_OK || got == 0)
            break;
        n += got;
    }
    decomp_close(d);
    if (st != CAIRN_OK) {
        cairn_free(b);
        return st;
    }
    b[n] = 0;
    *out = b;
    *out_len = n;
    return CAIRN_OK;
}
