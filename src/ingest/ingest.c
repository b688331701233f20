/* ingest.c — documents, options, UTF-8 repair, reading files, and the
 * detect → parse → emit path shared by every parser. */
#include "ingest/ingest.h"
#include "ingest/parse_common.h"
#include "ingest/decompress.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define INGEST_MAX_BLOCKS (1u << 24)

void ingest_doc_init(ingest_doc *d) { memset(d, 0, sizeof *d); }

void ingest_doc_free(ingest_doc *d)
{
    for (size_t i = 0; i < d->n_blocks; i++)
        cairn_free(d->blocks[i].text);
    cairn_free(d->blocks);
    cairn_free(d->key);
    cairn_free(d->title);
    meta_list_free(&d->meta);
    memset(d, 0, sizeof *d);
}

cairn_status ingest_doc_add_block(ingest_doc *d, block_kind kind, int level, int page, const char *text, size_t len)
{
    if (d->n_blocks >= INGEST_MAX_BLOCKS)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "document has more than %u blocks", INGEST_MAX_BLOCKS);
    if (d->n_blocks == d->cap_blocks) {
        size_t nc = d->cap_blocks ? d->cap_blocks * 2 : 16;
        ingest_block *b = cairn_reallocarray(d->blocks, nc, sizeof *b);
        if (!b)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding a block");
        d->blocks = b;
        d->cap_blocks = nc;
    }
    char *t = cairn_strndup(text ? text : "", text ? len : 0);
    if (!t)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding a block");
    ingest_block *b = &d->blocks[d->n_blocks++];
    b->kind = kind;
    b->level = level;
    b->page = page;
    b->text = t;
    b->len = strlen(t) == len ? len : strlen(t);
    return CAIRN_OK;
}

void ingest_options_default(ingest_options *o)
{
    memset(o, 0, sizeof *o);
    o->max_file_bytes = (size_t)256 << 20;
    o->max_stream_bytes = (size_t)64 << 30;
    o->max_record_bytes = (size_t)16 << 20;
    o->json_id_field = NULL;
    o->json_title_field = "title";
    o->json_text_field = "text";
    o->csv_row_per_doc = true;
    o->csv_text_columns = NULL;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. NUL is
 * treated as invalid: it cannot live inside C strings. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return left >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0;   /* overlong */
        if (c == 0xED && s[1] >= 0xA0)
            return 0;   /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

/* Offset of the first invalid byte, or len when all valid. */
static size_t utf8_valid_prefix(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time (no NUL, no high bit). */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if ((w & 0x8080808080808080ull) || ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        size_t n = utf8_seq(s + i, len - i);
        if (!n)
            return i;
        i += n;
    }
    return len;
}

bool utf8_valid(const char *s, size_t len) { return utf8_valid_prefix(s, len) == len; }

cairn_status utf8_repair(const char *s, size_t len, char **out, size_t *out_len, bool *repaired)
{
    *out = NULL;
    if (out_len)
        *out_len = len;
    if (repaired)
        *repaired = false;
    size_t first = utf8_valid_prefix(s, len);
    if (first == len)
        return CAIRN_OK;
    /* Each bad byte becomes U+FFFD (3 bytes). */
    size_t cap;
    if (!cairn_mul_ok(len, 3, &cap) || !cairn_add_ok(cap, 1, &cap))
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "text too large to repair");
    char *o = cairn_malloc(cap);
    if (!o)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory repairing UTF-8");
    memcpy(o, s, first);
    size_t j = first, i = first;
    const unsigned char *u = (const unsigned char *)s;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (n) {
            memcpy(o + j, s + i, n);
            j += n;
            i += n;
        } else {
            memcpy(o + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
            /* Skip continuation bytes of the same broken sequence. */
            while (i < len && (u[i] & 0xC0) == 0x80 && !utf8_seq(u + i, len - i)) {
                i++;
            }
        }
    }
    o[j] = 0;
    *out = o;
    if (out_len)
        *out_len = j;
    if (repaired)
        *repaired = true;
    return CAIRN_OK;
}

static cairn_status repair_field(char **text, size_t *len, bool *repaired)
{
    size_t l = len ? *len : strlen(*text);
    char *fixed;
    size_t fl;
    bool r;
    CAIRN_TRY(utf8_repair(*text, l, &fixed, &fl, &r));
    if (fixed) {
        cairn_free(*text);
        *text = fixed;
        if (len)
            *len = fl;
        *repaired = true;
    }
    return CAIRN_OK;
}

/* Make every string of the document valid UTF-8. */
cairn_status ingest_doc_repair(ingest_doc *d)
{
    bool rep = false;
    for (size_t i = 0; i < d->n_blocks; i++)
        CAIRN_TRY(repair_field(&d->blocks[i].text, &d->blocks[i].len, &rep));
    if (d->title)
        CAIRN_TRY(repair_field(&d->title, NULL, &rep));
    for (size_t i = 0; i < d->meta.n; i++) {
        meta_value *v = &d->meta.e[i].v;
        if (v->s)
            CAIRN_TRY(repair_field(&v->s, NULL, &rep));
        for (size_t k = 0; k < v->n_items; k++)
            CAIRN_TRY(repair_field(&v->items[k], NULL, &rep));
    }
    if (rep)
        d->utf8_repaired = true;
    return CAIRN_OK;
}

cairn_status pc_emit_repaired(void *ctx, ingest_doc *doc)
{
    pc_emit_wrap *w = ctx;
    if (w->compression)
        CAIRN_TRY(meta_set_string(&doc->meta, "compression", w->compression));
    if (w->encoding) {
        CAIRN_TRY(meta_set_string(&doc->meta, "encoding", w->encoding));
        snprintf(doc->encoding, sizeof doc->encoding, "%s", w->encoding);
    }
    CAIRN_TRY(ingest_doc_repair(doc));
    return w->emit(w->ctx, doc);
}

/* Counts the documents a parse emitted (the JSON -> text fallback may only
 * start over when none was). */
typedef struct count_wrap { pc_emit_wrap w; size_t n; } count_wrap;

static cairn_status count_emit(void *ctx, ingest_doc *doc)
{
    count_wrap *c = ctx;
    c->n++;
    return pc_emit_repaired(&c->w, doc);
}

static bool named_json(const char *path)
{
    static const char *const sfx[] = {".json", ".geojson", ".jsonl", ".ndjson"};
    size_t n = strlen(path);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(sfx); i++) {
        size_t k = strlen(sfx[i]);
        if (n >= k && !strcasecmp(path + n - k, sfx[i]))
            return true;
    }
    return false;
}

/* Parsers of plain text, whose bytes get charset detection when they are
 * not UTF-8 (HTML has its own charset handling; JSON is UTF-8 by its spec;
 * CSV and JSONL are streamed and stay UTF-8 only). */
static bool plain_text(const ingest_parser *p)
{
    return p == &ingest_parser_text || p == &ingest_parser_markdown || p == &ingest_parser_code ||
           p == &ingest_parser_man;
}

/* Detect and parse (data already decompressed / converted from UTF-16). */
static cairn_status parse_detected(const char *path, const char *data, size_t len, const char *codec,
                                   const char *enc_in, const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    const char *why = NULL;
    const ingest_parser *p = ingest_detect(path, data, len, &why);
    if (!p) {
        if (codec)
            return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s-compressed: %s", codec, why ? why : "unknown file type");
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "%s", why ? why : "unknown file type");
    }
    char enc[32] = "";
    char *conv = NULL;
    size_t conv_len = 0;
    if (enc_in)
        snprintf(enc, sizeof enc, "%s", enc_in);
    else if (plain_text(p))
        CAIRN_TRY(charset_to_utf8(data, len, &conv, &conv_len, enc));
    count_wrap c = {{emit, ctx, codec, enc[0] ? enc : NULL}, 0};
    const char *d = conv ? conv : data;
    size_t dn = conv ? conv_len : len;
    cairn_status st = p->parse(path, d, dn, opt, count_emit, &c);
    /* Content sniffed as JSON ("{ header }" at the top of a config file, a
     * Pascal comment) that does not parse, in a file not named as JSON, is
     * text that happens to start with a brace: read it as text. */
    if (st == CAIRN_ERR_CORRUPT && c.n == 0 && (p == &ingest_parser_json || p == &ingest_parser_jsonl) &&
        !named_json(path)) {
        cairn_clear_error();
        st = ingest_parser_text.parse(path, d, dn, opt, count_emit, &c);
    }
    cairn_free(conv);
    return st;
}

/* After decompression: UTF-16/32 text with a byte order mark is converted
 * first (it would look binary), then detected as usual. */
static cairn_status parse_bytes(const char *path, const char *data, size_t len, const char *codec,
                                const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    size_t bl;
    const char *bom = charset_bom(data, len, &bl);
    if (!bom)
        return parse_detected(path, data, len, codec, NULL, opt, emit, ctx);
    char *u;
    size_t un;
    CAIRN_TRY(charset_convert(data + bl, len - bl, bom, &u, &un));
    cairn_status st = parse_detected(path, u, un, codec, bom, opt, emit, ctx);
    cairn_free(u);
    return st;
}

/* A compressed file: decompressed whole (capped on the uncompressed size,
 * decompress.h), then detected on its inner name and parsed as usual. A
 * compressed file inside is not opened again (skipped as compressed). */
static cairn_status ingest_compressed(const char *path, const char *data, size_t len, const char *codec,
                                      const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    char *out;
    size_t n;
    CAIRN_TRY(decomp_buffer(data, len, codec, opt->max_file_bytes, "ingest.max_file_mb", &out, &n));
    char inner[4096];
    decomp_inner_name(path, inner, sizeof inner);
    cairn_status st = parse_bytes(inner, out, n, codec, opt, emit, ctx);
    cairn_free(out);
    return st;
}

cairn_status ingest_buffer(const char *path, const char *data, size_t len,
                           const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    const char *codec = decomp_codec(data, len);
    if (codec)
        return ingest_compressed(path, data, len, codec, opt, emit, ctx);
    return parse_bytes(path, data, len, NULL, opt, emit, ctx);
}

cairn_status ingest_data_load(const char *path, size_t limit, ingest_data *d)
{
    memset(d, 0, sizeof *d);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "cannot stat: %s", strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return cairn_fail(CAIRN_ERR_UNSUPPORTED, "not a regular file");
    }
    if ((uint64_t)sb.st_size > limit) {
        close(fd);
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%lld bytes exceeds the size cap of %zu bytes",
                          (long long)sb.st_size, limit);
    }
    /* Read, not mmap: a file truncated by another process while mapped
     * would kill us with SIGBUS. The buffer lives for one file only. */
    close(fd);
    char *buf;
    size_t n;
    cairn_status st = cairn_file_read_all(path, limit, &buf, &n);
    if (st != CAIRN_OK)
        return st;
    d->heap_ = buf;
    d->data = buf;
    d->len = n;
    return CAIRN_OK;
}

void ingest_data_release(ingest_data *d)
{
    if (d->map_)
        munmap(d->map_, d->map_len_);
    cairn_free(d->heap_);
    memset(d, 0, sizeof *d);
}

cairn_status ingest_file(const char *path, const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    const ingest_parser *sp;
    bool streamed;
    cairn_status pst = ingest_probe(path, opt, &sp, &streamed, NULL);
    if (pst == CAIRN_ERR_NOMEM)
        return pst;
    if (pst == CAIRN_OK && streamed) {
        struct stat sb;
        if (stat(path, &sb) == 0 && (uint64_t)sb.st_size > opt->max_stream_bytes)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: %lld bytes exceeds the size cap of %zu bytes for record files",
                              path, (long long)sb.st_size, opt->max_stream_bytes);
        return ingest_stream_file(path, sp, NULL, opt, emit, ctx);
    }
    cairn_clear_error();
    ingest_data d;
    cairn_status st = ingest_data_load(path, opt->max_file_bytes, &d);
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "%s", path);
    st = ingest_buffer(path, d.data, d.len, opt, emit, ctx);
    ingest_data_release(&d);
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "%s", path);
    return CAIRN_OK;
}
