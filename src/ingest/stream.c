#define _GNU_SOURCE /* memrchr */
/* stream.c — the bounded read window for record files (see stream.h), and
 * ingest_probe / ingest_stream_file (ingest.h). */
#include "ingest/stream.h"
#include "ingest/parse_common.h"
#include "ingest/decompress.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_BYTES ((size_t)64 << 10)
#define COMPRESSED_PROBE_BYTES ((size_t)16 << 10)
#define DEFAULT_MAX_RECORD ((size_t)16 << 20)   /* = ingest_options_default's */

static size_t read_size_for_tests;

void rstream_set_read_size_for_tests(size_t n) { read_size_for_tests = n; }

cairn_status rstream_open_file(rstream *s, const char *path, size_t max_record)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->max_record = max_record ? max_record : DEFAULT_MAX_RECORD;
    s->d = "";
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (s->fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    (void)posix_fadvise(s->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    XXH3_128bits_reset(&s->hash_);
    return CAIRN_OK;
}

cairn_status rstream_decompress(rstream *s, uint64_t max_out, const char *cap_name)
{
    unsigned char sig[8];
    ssize_t r = pread(s->fd, sig, sizeof sig, 0);
    const char *codec = r > 0 ? decomp_codec(sig, (size_t)r) : NULL;
    if (!codec)
        return CAIRN_OK;
    return decomp_open_fd(&s->dec_, s->fd, codec, max_out, cap_name, &s->hash_);
}

void rstream_open_mem(rstream *s, const char *path, const char *data, size_t len, size_t max_record)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->fd = -1;
    s->d = data ? data : "";
    s->len = data ? len : 0;
    s->max_record = max_record ? max_record : DEFAULT_MAX_RECORD;
    s->eof = true;
    s->total_ = s->len;
    XXH3_128bits_reset(&s->hash_);
    XXH3_128bits_update(&s->hash_, s->d, s->len);
}

cairn_status rstream_more(rstream *s, size_t keep, bool *more)
{
    *more = false;
    if (keep > s->len)
        keep = s->len;
    if (s->eof) {
        /* memory, or the file is all read: keep the window as it is, so
         * offsets the caller holds stay valid (parsers check the record cap
         * on the records they find) */
        return CAIRN_OK;
    }
    size_t left = s->len - keep;
    if (left >= s->max_record)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "record longer than %zu bytes", s->max_record);
    if (keep) {
        memmove(s->buf_, s->buf_ + keep, left);
        s->base += keep;
        s->len = left;
    }
    /* Read at least RSTREAM_READ, and as much as is already held, so a long
     * record is rescanned O(log n) times, not once per read. */
    size_t want = read_size_for_tests ? read_size_for_tests : RSTREAM_READ;
    if (!read_size_for_tests && want < left)
        want = left;
    if (want > s->max_record + 1 - left)
        want = s->max_record + 1 - left;   /* one past the cap: enough to tell it is over */
    if (s->cap_ < left + want + 1) {
        size_t nc = left + want + 1;
        char *nb = cairn_realloc(s->buf_, nc);
        if (!nb)
            return cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory for a %zu-byte read window", s->path, nc);
        s->buf_ = nb;
        s->cap_ = nc;
    }
    size_t got = 0;
    while (s->dec_ && got < want) {
        size_t g;
        cairn_status st = decomp_read(s->dec_, s->buf_ + left + got, want - got, &g);
        if (st != CAIRN_OK) {
            s->d = s->buf_;
            s->buf_[left] = 0;
            s->len = left;
            return cairn_fail_wrap(st, "%s", s->path);
        }
        if (g == 0) {
            s->eof = true;
            break;
        }
        got += g;
        if (read_size_for_tests)
            break;
    }
    while (!s->dec_ && got < want) {
        ssize_t r = read(s->fd, s->buf_ + left + got, want - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            s->d = s->buf_;
            return cairn_fail(CAIRN_ERR_IO, "%s: read failed at byte %llu: %s", s->path,
                              (unsigned long long)(s->base + left + got), strerror(errno));
        }
        if (r == 0) {
            s->eof = true;
            break;
        }
        got += (size_t)r;
        if (read_size_for_tests)
            break;
    }
    if (!s->dec_)
        XXH3_128bits_update(&s->hash_, s->buf_ + left, got);   /* the decoder hashes the raw bytes */
    s->total_ += got;
    if (s->progress_)
        *s->progress_ = s->dec_ ? decomp_raw_bytes(s->dec_) : s->total_;
    s->len = left + got;
    s->buf_[s->len] = 0;
    s->d = s->buf_;
    *more = got > 0;
    return CAIRN_OK;
}

void rstream_hash_hex(rstream *s, char out[33])
{
    XXH128_hash_t h = XXH3_128bits_digest(&s->hash_);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

void rstream_close(rstream *s)
{
    decomp_close(s->dec_);
    if (s->fd >= 0)
        close(s->fd);
    cairn_free(s->buf_);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* ---- ingest.h: probe and stream ---- */

static bool streamable(const ingest_parser *p, const ingest_options *opt)
{
    return p == &ingest_parser_jsonl || (p == &ingest_parser_csv && (!opt || opt->csv_row_per_doc));
}

/* An inner name that may hold a record file: .jsonl .ndjson .csv .tsv .tab,
 * .json (may be one object per line) or no extension (sniffed). */
static bool could_stream(const char *inner)
{
    static const char *const e[] = {"jsonl", "ndjson", "csv", "tsv", "tab", "json"};
    const char *ext = pc_path_ext(inner);
    if (!*ext)
        return true;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(e); i++)
        if (pc_ext_is(inner, e[i]))
            return true;
    return false;
}

cairn_status ingest_probe(const char *path, const ingest_options *opt, const ingest_parser **parser, bool *streamed,
                          const char **why)
{
    *parser = NULL;
    *streamed = false;
    if (why)
        *why = NULL;
    int fd;
    uint64_t fsize;
    CAIRN_TRY(cairn_file_open_regular(path, &fd, &fsize));
    char *head = cairn_malloc(PROBE_BYTES + 1);
    if (!head) {
        close(fd);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    cairn_status st = CAIRN_OK;
    while (n < PROBE_BYTES) {
        ssize_t r = read(fd, head + n, PROBE_BYTES - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = cairn_fail(CAIRN_ERR_IO, "read failed: %s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    /* A compressed file: detect on its first uncompressed bytes and its
     * inner name (x.jsonl.gz is JSONL, streamed through the decoder). */
    const char *codec = st == CAIRN_OK ? decomp_codec(head, n) : NULL;
    char inner[4096];
    const char *dpath = path;
    if (codec) {
        decomp_inner_name(path, inner, sizeof inner);
        dpath = inner;
        /* Only record files are streamed: when the inner name says the file
         * is something else (x.txt.gz, ssh.1.gz), the whole-file path decides
         * and the probe does not decompress anything (it would be a second
         * decompression of the first 16 KiB of every such file). */
        if (!could_stream(inner)) {
            close(fd);
            cairn_free(head);
            return CAIRN_OK;
        }
        decomp *dec = NULL;
        size_t got = 0;
        bool whole = false;
        if (lseek(fd, 0, SEEK_SET) == 0 &&
            decomp_open_fd(&dec, fd, codec, UINT64_MAX - 2, NULL, NULL) == CAIRN_OK) {
            /* 16 KiB is enough to detect on (detection reads 8 KiB, JSONL
             * sniffing two lines) and keeps the probe from decompressing most
             * of a small file a second time */
            while (got < COMPRESSED_PROBE_BYTES) {
                size_t g;
                if (decomp_read(dec, head + got, COMPRESSED_PROBE_BYTES - got, &g) != CAIRN_OK)
                    break;
                if (g == 0) {
                    whole = true;
                    break;
                }
                got += g;
            }
        }
        decomp_close(dec);
        cairn_clear_error();
        /* a damaged stream: leave it to the whole-file path, which says why */
        n = got;
        fsize = whole ? got : got + 1;
        if (!got && !whole) {
            close(fd);
            cairn_free(head);
            return CAIRN_OK;
        }
    }
    close(fd);
    if (st == CAIRN_OK) {
        /* Cut a partial last line, so content sniffing (jsonl: the last
         * non-space byte closes an object) sees whole records. */
        if ((uint64_t)n < fsize) {
            const char *nl = n ? memrchr(head, '\n', n) : NULL;
            if (nl)
                n = (size_t)(nl - head) + 1;
        }
        head[n] = 0;
        *parser = ingest_detect(dpath, head, n, why);
        *streamed = *parser && streamable(*parser, opt);
    }
    cairn_free(head);
    return st;
}

cairn_status ingest_stream_file(const char *path, const ingest_parser *parser, const char *expect_hash,
                                const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    return ingest_stream_file_progress(path, parser, expect_hash, opt, emit, ctx, NULL);
}

cairn_status ingest_stream_file_progress(const char *path, const ingest_parser *parser, const char *expect_hash,
                                         const ingest_options *opt, ingest_emit_fn emit, void *ctx,
                                         uint64_t *bytes_read)
{
    if (!streamable(parser, opt))
        return cairn_fail(CAIRN_ERR_INVALID, "%s: the %s parser does not stream", path, parser ? parser->name : "?");
    rstream s;
    CAIRN_TRY(rstream_open_file(&s, path, opt->max_record_bytes));
    cairn_status dst = rstream_decompress(&s, opt->max_stream_bytes, "ingest.max_stream_gb");
    if (dst != CAIRN_OK) {
        rstream_close(&s);
        return cairn_fail_wrap(dst, "%s", path);
    }
    s.progress_ = bytes_read;
    pc_emit_wrap w = {emit, ctx, s.dec_ ? decomp_name(s.dec_) : NULL, NULL};
    cairn_status st = parser == &ingest_parser_jsonl ? jsonl_parse_stream(&s, opt, pc_emit_repaired, &w)
                                                     : csv_parse_stream(&s, opt, pc_emit_repaired, &w);
    if (st == CAIRN_OK && expect_hash) {
        /* a parser may stop early (e.g. CSV without rows): read the rest */
        bool more = true;
        while (st == CAIRN_OK && more)
            st = rstream_more(&s, s.len, &more);
        char h[33];
        rstream_hash_hex(&s, h);
        if (st == CAIRN_OK && strcmp(h, expect_hash) != 0)
            st = cairn_fail(CAIRN_ERR_CORRUPT,
                            "%s: the file changed while it was being read (%llu bytes read); it is retried on the next run",
                            path, (unsigned long long)s.total_);
    }
    rstream_close(&s);
    return st;
}
