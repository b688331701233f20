/* test_formats.c — compressed single files, manual pages and the other
 * formats of docs/formats.md that are not in test_parsers.c, with hostile
 * inputs (bombs, truncation, flipped bytes) built by the test itself. */
#include "ingest/ingest.h"
#include "ingest/stream.h"
#include "ingest/parse_common.h"
#include "t.h"
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

/* ---- collecting emitted documents ---- */
typedef struct docs { ingest_doc d[64]; size_t n; size_t total; } docs;

static cairn_status collect(void *ctx, ingest_doc *doc)
{
    docs *c = ctx;
    c->total++;
    if (c->n < CAIRN_ARRAY_LEN(c->d)) {
        c->d[c->n++] = *doc;
        ingest_doc_init(doc);
    }
    return CAIRN_OK;
}

static void docs_free(docs *c)
{
    for (size_t i = 0; i < c->n; i++)
        ingest_doc_free(&c->d[i]);
    c->n = c->total = 0;
}

static cairn_status buffer(const char *path, const void *data, size_t len, const ingest_options *opt, docs *out)
{
    memset(out, 0, sizeof *out);
    ingest_options o;
    if (!opt) {
        ingest_options_default(&o);
        opt = &o;
    }
    char *copy = malloc(len + 1);
    memcpy(copy, data, len);
    copy[len] = 0;
    cairn_status st = ingest_buffer(path, copy, len, opt, collect, out);
    free(copy);
    return st;
}

static const ingest_block *find_block(const ingest_doc *d, const char *needle)
{
    for (size_t i = 0; i < d->n_blocks; i++)
        if (strstr(d->blocks[i].text, needle))
            return &d->blocks[i];
    return NULL;
}

static const char *meta_str(const ingest_doc *d, const char *key)
{
    const meta_value *v = meta_get(&d->meta, key);
    return v && v->type == META_STRING ? v->s : NULL;
}

/* Compress with libarchive's writer (raw format + one filter): the test
 * makes its own inputs, no binary fixtures. */
static char *compress(const char *codec, const void *data, size_t len, size_t *out_len)
{
    struct archive *a = archive_write_new();
    if (!strcmp(codec, "gzip"))
        archive_write_add_filter_gzip(a);
    else if (!strcmp(codec, "bzip2"))
        archive_write_add_filter_bzip2(a);
    else if (!strcmp(codec, "xz"))
        archive_write_add_filter_xz(a);
    else
        archive_write_add_filter_zstd(a);
    archive_write_set_format_raw(a);
    archive_write_set_bytes_per_block(a, 0);
    size_t cap = len + len / 2 + 65536;
    char *buf = malloc(cap);
    size_t used = 0;
    if (archive_write_open_memory(a, buf, cap, &used) != ARCHIVE_OK) {
        fprintf(stderr, "archive_write_open_memory: %s\n", archive_error_string(a));
        exit(1);
    }
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_pathname(e, "x");
    archive_write_header(a, e);
    archive_entry_free(e);
    size_t off = 0;
    while (off < len) {
        size_t k = CAIRN_MIN(len - off, (size_t)1 << 20);
        la_ssize_t w = archive_write_data(a, (const char *)data + off, k);
        if (w <= 0) {
            fprintf(stderr, "archive_write_data: %s\n", archive_error_string(a));
            exit(1);
        }
        off += (size_t)w;
    }
    archive_write_close(a);
    archive_write_free(a);
    *out_len = used;
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static const char *codecs[] = {"gzip", "bzip2", "xz", "zstd"};
static const char *suffix[] = {".gz", ".bz2", ".xz", ".zst"};

/* ---- compressed files ---- */
static void test_compressed_inner_format(void)
{
    const char *md = "---\nauthor: Ann\n---\n# Crème title\n\nSome *text* here.\n\n## Part two\n\nMore.\n";
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(codecs); c++) {
        size_t n;
        char *z = compress(codecs[c], md, strlen(md), &n);
        char path[64];
        snprintf(path, sizeof path, "notes.md%s", suffix[c]);
        docs out;
        CHECK_OK(buffer(path, z, n, NULL, &out));
        CHECK_EQ_INT(out.n, 1);
        if (out.n) {
            CHECK_EQ_STR(out.d[0].type, "markdown");
            CHECK_EQ_STR(out.d[0].title, "Crème title");
            CHECK_EQ_STR(meta_str(&out.d[0], "compression"), codecs[c]);
            CHECK_EQ_STR(meta_str(&out.d[0], "author"), "Ann");
            const ingest_block *h = find_block(&out.d[0], "Part two");
            CHECK(h && h->kind == BLOCK_HEADING && h->level == 2);
        }
        docs_free(&out);
        /* without the suffix the content still decides (a .txt inside is text) */
        CHECK_OK(buffer("blob", z, n, NULL, &out));
        CHECK(out.n == 1 && !strcmp(out.d[0].type, "text"));
        docs_free(&out);
        free(z);
    }
    /* a compressed file inside a compressed file is not opened again */
    size_t n1, n2;
    char *z1 = compress("gzip", "hello", 5, &n1);
    char *z2 = compress("gzip", z1, n1, &n2);
    docs out;
    cairn_status st = buffer("x.gz.gz", z2, n2, NULL, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "gzip-compressed: gzip-compressed file"), "%s", cairn_last_error());
    docs_free(&out);
    free(z1);
    free(z2);
    /* a tar inside gzip is named as such */
    char tar[1024] = {0};
    memcpy(tar, "file.txt", 8);
    memcpy(tar + 257, "ustar", 5);
    char *zt = compress("gzip", tar, sizeof tar, &n1);
    st = buffer("x.tgz", zt, n1, NULL, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "tar archive"), "%s", cairn_last_error());
    docs_free(&out);
    free(zt);
}

static void test_compressed_bombs_and_caps(void)
{
    /* 64 MiB of one byte: gzip packs it ~1000:1, bzip2/xz/zstd far more */
    size_t big = (size_t)64 << 20;
    char *zeros = calloc(1, big);
    memset(zeros, 'a', big);
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(codecs); c++) {
        size_t n;
        char *z = compress(codecs[c], zeros, big, &n);
        docs out;
        cairn_status st = buffer("bomb.txt.gz", z, n, NULL, &out);
        CHECKF(st == CAIRN_ERR_UNSUPPORTED, "%s: %s", codecs[c], cairn_status_str(st));
        CHECKF(strstr(cairn_last_error(), "decompression bomb refused") && strstr(cairn_last_error(), codecs[c]),
               "%s", cairn_last_error());
        CHECK_EQ_INT(out.total, 0);
        docs_free(&out);
        free(z);
    }
    free(zeros);
    /* the absolute cap is on the uncompressed size (max_file_mb), even at a
     * modest ratio: 3 MB of varied text under a 1 MiB cap */
    size_t tn = 3u << 20;
    char *text = malloc(tn);
    unsigned x = 12345;
    for (size_t i = 0; i < tn; i++) {
        x = x * 1103515245u + 12345u;
        text[i] = (i % 61 == 60) ? '\n' : (char)('a' + (x >> 16) % 26);
    }
    size_t n;
    char *z = compress("gzip", text, tn, &n);
    CHECK(n < (1u << 20) * 3);
    ingest_options o;
    ingest_options_default(&o);
    o.max_file_bytes = 1u << 20;
    docs out;
    cairn_status st = buffer("big.txt.gz", z, n, &o, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "size cap of 1048576 bytes (ingest.max_file_mb)"), "%s", cairn_last_error());
    docs_free(&out);
    o.max_file_bytes = 4u << 20;
    CHECK_OK(buffer("big.txt.gz", z, n, &o, &out));
    CHECK_EQ_INT(out.n, 1);
    docs_free(&out);
    free(z);
    free(text);
}

static void test_compressed_damaged(void)
{
    const char *t = "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.\n";
    char text[8192];
    size_t tl = 0;
    while (tl + strlen(t) < sizeof text) {
        memcpy(text + tl, t, strlen(t));
        tl += strlen(t);
    }
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_QUIET);
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(codecs); c++) {
        size_t n;
        char *z = compress(codecs[c], text, tl, &n);
        /* truncated at many points: a clear error or a shorter text, never a crash */
        for (size_t cut = 1; cut < n; cut += 1 + n / 23) {
            docs out;
            cairn_status st = buffer("t.txt.gz", z, cut, NULL, &out);
            CHECKF(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED, "%s cut %zu: %s",
                   codecs[c], cut, cairn_status_str(st));
            if (st == CAIRN_ERR_CORRUPT)
                CHECKF(strstr(cairn_last_error(), codecs[c]), "%s", cairn_last_error());
            docs_free(&out);
        }
        /* byte flips */
        unsigned x = 7;
        for (int k = 0; k < 100; k++) {
            char *m = malloc(n);
            memcpy(m, z, n);
            x = x * 1103515245u + 12345u;
            size_t at = 4 + (x >> 8) % (n - 4);
            m[at] ^= (char)(1 + (x & 0x7f));
            docs out;
            cairn_status st = buffer("t.txt.gz", m, n, NULL, &out);
            CHECK(st == CAIRN_OK || st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED);
            docs_free(&out);
            free(m);
        }
        free(z);
    }
    cairn_log_set_level(lvl);
    /* a gzip signature and nothing valid after it */
    docs out;
    cairn_status st = buffer("x.gz", "\x1f\x8b\x08garbage-garbage-garbage", 26, NULL, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_CORRUPT);
    CHECKF(strstr(cairn_last_error(), "damaged gzip data"), "%s", cairn_last_error());
    docs_free(&out);
}

/* JSONL under gzip: probed as JSONL, streamed through the decoder, hashed
 * on the raw bytes (as the pipeline hashes the file). */
static void test_compressed_stream(void)
{
    const char *dir = t_tmpdir("formats_stream");
    cairn_buf b;
    cairn_buf_init(&b, 0);
    for (int i = 0; i < 3000; i++)
        cairn_buf_printf(&b, "{\"_id\":\"d%d\",\"title\":\"T%d\",\"text\":\"record number %d of the corpus\"}\n", i, i, i);
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(codecs); c++) {
        size_t n;
        char *z = compress(codecs[c], b.data, b.len, &n);
        char path[1200];
        snprintf(path, sizeof path, "%s/corpus.jsonl%s", dir, suffix[c]);
        write_file(path, z, n);
        ingest_options o;
        ingest_options_default(&o);
        o.max_record_bytes = 4096;
        const ingest_parser *p;
        bool streamed;
        CHECK_OK(ingest_probe(path, &o, &p, &streamed, NULL));
        CHECK(p == &ingest_parser_jsonl && streamed);
        char h[33];
        CHECK_OK(cairn_file_hash128_hex(path, UINT64_MAX, h, NULL));
        rstream_set_read_size_for_tests(c == 1 ? 777 : 0);
        docs out;
        memset(&out, 0, sizeof out);
        CHECK_OK(ingest_stream_file(path, p, h, &o, collect, &out));
        rstream_set_read_size_for_tests(0);
        CHECK_EQ_INT(out.total, 3000);
        if (out.n) {
            CHECK_EQ_STR(out.d[0].key, "d0");
            CHECK_EQ_STR(meta_str(&out.d[0], "compression"), codecs[c]);
        }
        docs_free(&out);
        /* a wrong expected hash is reported as a changed file */
        memset(&out, 0, sizeof out);
        cairn_status st = ingest_stream_file(path, p, "00000000000000000000000000000000", &o, collect, &out);
        CHECK_EQ_INT(st, CAIRN_ERR_CORRUPT);
        docs_free(&out);
        /* the stream cap is on the uncompressed bytes */
        o.max_stream_bytes = 10000;
        memset(&out, 0, sizeof out);
        st = ingest_stream_file(path, p, NULL, &o, collect, &out);
        CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
        CHECKF(strstr(cairn_last_error(), "ingest.max_stream_gb"), "%s", cairn_last_error());
        docs_free(&out);
        /* ingest_file takes the same way */
        ingest_options_default(&o);
        memset(&out, 0, sizeof out);
        CHECK_OK(ingest_file(path, &o, collect, &out));
        CHECK_EQ_INT(out.total, 3000);
        docs_free(&out);
        free(z);
    }
    cairn_buf_free(&b);
}

/* ---- manual pages ---- */
static const char *man_page =
    ".\\\" a comment\n"
    ".TH CAIRN 1 \"2024-05-01\" \"cairn 1.0\" \"User Commands\"\n"
    ".de XX\n.B never shown\n..\n"
    ".if n .ds Q \\(aq\n"
    ".ie \\n(.g \\{\\\n.ds hidden text\n.\\}\n"
    ".SH NAME\n"
    "cairn \\- local retrieval\n"
    ".SH SYNOPSIS\n"
    ".B cairn\n"
    ".RI [ options ] \" file ...\"\n"
    ".SH DESCRIPTION\n"
    "\\fBcairn\\fR indexes \\fIfiles\\fP and answers\n"
    "questions about them \\(em quickly.\n"
    ".PP\n"
    "Second paragraph with caf\\[u00E9] and \\(lqquotes\\(rq. \\\" trailing comment\n"
    ".SS Options\n"
    ".TP\n"
    ".BR \\-v \", \" \\-\\-verbose\n"
    "Say more.\n"
    ".IP \\(bu 2\n"
    "A bullet item.\n"
    ".SH EXAMPLES\n"
    ".nf\n"
    "cairn add ~/notes\n"
    "    cairn search \"host keys\"\n"
    ".fi\n"
    ".TS\n"
    "tab(\t);\n"
    "l l.\n"
    "Key\tMeaning\n"
    "q\tquit\n"
    ".TE\n"
    ".SH\n"
    "SEE ALSO\n"
    ".BR ssh (1)\n";

static void test_man(void)
{
    docs out;
    CHECK_OK(buffer("cairn.1", man_page, strlen(man_page), NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (!out.n)
        return;
    ingest_doc *d = &out.d[0];
    CHECK_EQ_STR(d->type, "man");
    CHECK_EQ_STR(d->title, "CAIRN(1)");
    CHECK_EQ_STR(meta_str(d, "section"), "1");
    CHECK_EQ_STR(meta_str(d, "date"), "2024-05-01");
    const ingest_block *b = find_block(d, "NAME");
    CHECK(b && b->kind == BLOCK_HEADING && b->level == 1);
    b = find_block(d, "Options");
    CHECK(b && b->kind == BLOCK_HEADING && b->level == 2);
    b = find_block(d, "SEE ALSO");
    CHECK(b && b->kind == BLOCK_HEADING && b->level == 1);
    b = find_block(d, "cairn - local retrieval");
    CHECK(b && b->kind == BLOCK_PARAGRAPH);
    b = find_block(d, "cairn indexes files and answers questions about them \xe2\x80\x94 quickly.");
    CHECKF(b != NULL, "fill mode joins lines, fonts dropped, \\(em decoded");
    b = find_block(d, "café and \xe2\x80\x9cquotes\xe2\x80\x9d.");
    CHECK(b != NULL);
    CHECK(!find_block(d, "trailing comment") && !find_block(d, "a comment"));
    CHECK(!find_block(d, "never shown") && !find_block(d, "hidden text"));
    b = find_block(d, "-v, --verbose");
    CHECK(b && b->kind == BLOCK_LIST_ITEM && strstr(b->text, "Say more."));
    b = find_block(d, "A bullet item.");
    CHECK(b && b->kind == BLOCK_LIST_ITEM);
    b = find_block(d, "cairn add ~/notes");
    CHECK(b && b->kind == BLOCK_CODE && strstr(b->text, "\n    cairn search \"host keys\""));
    b = find_block(d, "Key | Meaning");
    CHECK(b && b->kind == BLOCK_TABLE_ROW);
    CHECK(!find_block(d, "l l."));
    CHECK(find_block(d, "ssh(1)"));
    CHECK(find_block(d, "[options] file ..."));
    docs_free(&out);

    /* mdoc (BSD-style, e.g. OpenSSH) */
    const char *mdoc = ".\\\" mdoc\n.Dd $Mdocdate: November 28 2022 $\n.Dt SSH 1\n.Os\n.Sh NAME\n.Nm ssh\n"
                       ".Nd remote login client\n.Sh SYNOPSIS\n.Nm\n.Op Fl 46v\n.Op Fl b Ar bind_address\n"
                       ".Sh DESCRIPTION\n.Nm\nconnects and logs into the specified\n.Ar destination .\n"
                       ".Bl -tag -width Ds\n.It Fl A\nEnables forwarding.\n.El\n.Ss Host keys\nSee\n.Xr sshd 8 .\n"
                       ".Bd -literal -offset indent\n$ ssh-keygen -l\n.Ed\n";
    CHECK_OK(buffer("ssh.1", mdoc, strlen(mdoc), NULL, &out));
    if (out.n) {
        d = &out.d[0];
        CHECK_EQ_STR(d->title, "SSH(1)");
        CHECK_EQ_STR(meta_str(d, "date"), "November 28 2022");
        b = find_block(d, "Host keys");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 2);
        CHECK(find_block(d, "ssh \xe2\x80\x94 remote login client"));
        CHECK(find_block(d, "[-46v]"));
        CHECK(find_block(d, "[-b bind_address]"));
        CHECK(find_block(d, "ssh connects and logs into the specified destination."));
        b = find_block(d, "-A");
        CHECK(b && b->kind == BLOCK_LIST_ITEM && strstr(b->text, "Enables forwarding."));
        CHECK(find_block(d, "See sshd(8)."));
        b = find_block(d, "ssh-keygen -l");
        CHECK(b && b->kind == BLOCK_CODE);
    }
    docs_free(&out);

    /* a page that only points at another */
    CHECK_OK(buffer("x.3", ".so man3/y.3\n", 13, NULL, &out));
    CHECK(out.n == 1 && find_block(&out.d[0], "See man3/y.3."));
    docs_free(&out);

    /* detection: a roff name and a control line first; else not a man page */
    const char *why;
    CHECK(ingest_detect("ls.1", ".TH LS 1\n", 9, &why) == &ingest_parser_man);
    CHECK(ingest_detect("x.3pm", "'\\\" t\n.TH X 3pm\n", 16, &why) == &ingest_parser_man);
    CHECK(ingest_detect("page.man", "\n.\\\" c\n.SH A\n", 13, &why) == &ingest_parser_man);
    CHECK(ingest_detect("notes.1", "plain text\n", 11, &why) == &ingest_parser_text);
    CHECK(ingest_detect("v1.10", ".TH\n", 4, &why) != &ingest_parser_man);
    CHECK(ingest_detect("data.1234567890", ".x\n", 3, &why) != &ingest_parser_man);
}

static void test_man_hostile(void)
{
    /* every escape and macro cut short, unbalanced blocks, deep nonsense */
    const char *bad[] = {
        ".TH", ".SH", ".TP", "\\", "\\f", "\\f(", "\\f[", "\\(", "\\[", "\\[u", "\\[uZZZZ]", "\\[u110000]",
        "\\*", "\\*(", "\\s", "\\s+", "\\s(", "\\h'", "\\h", ".de X\nno end", ".ig\n.B x", ".if \\{\\{\\{",
        ".TS\nno format end", ".TS\nl.\na\tb", ".nf\nunclosed", ".Op Op Op Op Op", ".Xr", ".Fl", ".Nm",
        ".BR", ".IP", "\"\"\"", ".B \"unterminated", ".\\\"", "'", ".", "..", ".Bd -literal", ".Dd $",
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++) {
        docs out;
        cairn_status st = buffer("h.1", bad[i], strlen(bad[i]), NULL, &out);
        CHECKF(st == CAIRN_OK, "%s: %s", bad[i], cairn_last_error());
        for (size_t k = 0; k < out.n; k++)
            for (size_t j = 0; j < out.d[k].n_blocks; j++)
                CHECK(strlen(out.d[k].blocks[j].text) == out.d[k].blocks[j].len);
        docs_free(&out);
    }
    /* 200 000 macro arguments and 100 000 enclosures on one line */
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_buf_puts(&b, ".TH A 1\n.Op");
    for (int i = 0; i < 100000; i++)
        cairn_buf_puts(&b, " Op Dq x");
    cairn_buf_puts(&b, "\n.B");
    for (int i = 0; i < 200000; i++)
        cairn_buf_puts(&b, " w");
    cairn_buf_puts(&b, "\n");
    docs out;
    CHECK_OK(buffer("h.1", b.data, b.len, NULL, &out));
    docs_free(&out);
    cairn_buf_free(&b);
}

/* ---- charsets ---- */
static bool latin1_name(const char *e) { return e && (!strcmp(e, "WINDOWS-1252") || !strcmp(e, "ISO-8859-1") || !strcmp(e, "ISO-8859-15")); }

static void test_charsets(void)
{
    docs out;
    /* Latin-1: converted, said, no U+FFFD */
    const char *l1 = "Cr\xe8me br\xfbl\xe9" "e and caf\xe9" " au lait.\n\nNa\xefve fa\xe7" "ade, r\xe9sum\xe9" ".\n";
    CHECK_OK(buffer("menu.txt", l1, strlen(l1), NULL, &out));
    if (out.n) {
        CHECK(find_block(&out.d[0], "Crème brûlée and café au lait."));
        CHECK(find_block(&out.d[0], "Naïve façade, résumé."));
        CHECKF(latin1_name(out.d[0].encoding), "%s", out.d[0].encoding);
        CHECK(latin1_name(meta_str(&out.d[0], "encoding")));
        CHECK(!out.d[0].utf8_repaired);
        CHECK(!find_block(&out.d[0], "\xef\xbf\xbd"));
    }
    docs_free(&out);
    /* Markdown in windows-1251 under gzip: both at once */
    const char *ru = "# \xcf\xf0\xe8\xe2\xe5\xf2\n\n\xdd\xf2\xee \xf2\xe5\xea\xf1\xf2 \xed\xe0 \xf0\xf3\xf1\xf1\xea\xee\xec "
                     "\xff\xe7\xfb\xea\xe5, \xea\xee\xf2\xee\xf0\xfb\xe9 \xed\xe5 \xe2 UTF-8.\n";
    size_t zn;
    char *z = compress("gzip", ru, strlen(ru), &zn);
    CHECK_OK(buffer("ru.md.gz", z, zn, NULL, &out));
    if (out.n) {
        CHECK_EQ_STR(out.d[0].title, "Привет");
        CHECK(find_block(&out.d[0], "Это текст на русском языке"));
        CHECK_EQ_STR(meta_str(&out.d[0], "encoding"), "WINDOWS-1251");
        CHECK_EQ_STR(meta_str(&out.d[0], "compression"), "gzip");
    }
    docs_free(&out);
    free(z);
    /* UTF-16 with a byte order mark (LE and BE) */
    const char u16le[] = "\xff\xfeh\0\xe9\0l\0l\0o\0\n\0";
    CHECK_OK(buffer("u16.txt", u16le, sizeof u16le - 1, NULL, &out));
    CHECK(out.n == 1 && find_block(&out.d[0], "héllo") && !strcmp(out.d[0].encoding, "UTF-16LE"));
    docs_free(&out);
    const char u16be[] = "\xfe\xff\0h\0i\0\n";
    CHECK_OK(buffer("u16.md", u16be, sizeof u16be - 1, NULL, &out));
    CHECK(out.n == 1 && find_block(&out.d[0], "hi") && !strcmp(out.d[0].type, "markdown"));
    docs_free(&out);
    /* an XML declaration's charset beats the guess */
    const char *x2 = "<?xml version=\"1.0\" encoding=\"iso-8859-2\"?>\n<a>Zlatkovi\xe6's site</a>\n";
    CHECK_OK(buffer("p.xml", x2, strlen(x2), NULL, &out));
    CHECK(out.n == 1 && find_block(&out.d[0], "Zlatković's site") && !strcmp(out.d[0].encoding, "iso-8859-2"));
    docs_free(&out);
    /* valid UTF-8: untouched, no encoding said */
    CHECK_OK(buffer("u.txt", "Crème", 6, NULL, &out));
    CHECK(out.n == 1 && !out.d[0].encoding[0] && !meta_get(&out.d[0].meta, "encoding"));
    docs_free(&out);
    /* mostly UTF-8 with one broken byte: repaired, not reinterpreted */
    const char *bad = "Crème brûlée, café, naïve, façade, résumé, déjà vu, \xff fin.\n";
    CHECK_OK(buffer("b.txt", bad, strlen(bad), NULL, &out));
    if (out.n) {
        CHECK(find_block(&out.d[0], "Crème brûlée, café"));
        CHECKF(out.d[0].utf8_repaired || out.d[0].encoding[0], "either repaired or converted");
        CHECK(!find_block(&out.d[0], "CrÃ"));
    }
    docs_free(&out);
    /* HTML keeps its own charset handling; JSON stays UTF-8 (repaired) */
    CHECK_OK(buffer("x.json", "{\"text\":\"caf\xe9\"}", 15, NULL, &out));
    CHECK(out.n == 1 && out.d[0].utf8_repaired && !out.d[0].encoding[0]);
    docs_free(&out);
    /* invalid bytes in the detected charset become U+FFFD; conversion never fails */
    char *o;
    size_t on;
    CHECK_OK(charset_convert("a\x81\x82" "b", 4, "SHIFT_JIS", &o, &on));
    CHECK(o && strstr(o, "a") && strstr(o, "b"));
    cairn_free(o);
    CHECK_EQ_INT(charset_convert("x", 1, "NO-SUCH-CHARSET", &o, &on), CAIRN_ERR_UNSUPPORTED);
}

/* ---- zip containers, built here with libarchive's zip writer ---- */
typedef struct zpart { const char *name; const char *data; size_t len; } zpart;

static char *make_zip(const zpart *parts, size_t n, bool store, size_t *out_len)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    if (store)
        archive_write_set_format_option(a, "zip", "compression", "store");
    archive_write_set_bytes_per_block(a, 0);
    size_t total = 65536;
    for (size_t i = 0; i < n; i++)
        total += (parts[i].len ? parts[i].len : strlen(parts[i].data)) + 512;
    char *buf = malloc(total);
    size_t used = 0;
    if (archive_write_open_memory(a, buf, total, &used) != ARCHIVE_OK) {
        fprintf(stderr, "zip: %s\n", archive_error_string(a));
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = parts[i].len ? parts[i].len : strlen(parts[i].data);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, parts[i].name);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_size(e, (la_int64_t)len);
        archive_write_header(a, e);
        archive_entry_free(e);
        size_t off = 0;
        while (off < len) {
            la_ssize_t w = archive_write_data(a, parts[i].data + off, CAIRN_MIN(len - off, (size_t)1 << 20));
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    archive_write_close(a);
    archive_write_free(a);
    *out_len = used;
    return buf;
}

#define W_NS "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\""
#define R_NS "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\""
#define A_NS "xmlns:a=\"http://schemas.openxmlformats.org/drawingml/2006/main\""
#define P_NS "xmlns:p=\"http://schemas.openxmlformats.org/presentationml/2006/main\""

static const char *core_xml =
    "<?xml version=\"1.0\"?><cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" "
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\">"
    "<dc:title>Pump Manual</dc:title><dc:creator>Ann Smith</dc:creator><cp:keywords>pumps, maintenance</cp:keywords>"
    "<dc:subject>Bilge pumps</dc:subject><dcterms:created>2024-03-05T10:00:00Z</dcterms:created></cp:coreProperties>";

static const char *docx_body =
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><w:document " W_NS "><w:body>"
    "<w:p><w:pPr><w:pStyle w:val=\"Heading1\"/></w:pPr><w:r><w:t>Install</w:t></w:r><w:r><w:t>ation</w:t></w:r></w:p>"
    "<w:p><w:r><w:t xml:space=\"preserve\">Open the </w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>cover</w:t></w:r>"
    "<w:r><w:tab/><w:t>now.</w:t></w:r><w:r><w:delText>deleted words</w:delText></w:r></w:p>"
    "<w:p><w:pPr><w:pStyle w:val=\"Sub\"/></w:pPr><w:r><w:t>Cleaning</w:t></w:r></w:p>"
    "<w:p><w:pPr><w:numPr><w:ilvl w:val=\"1\"/><w:numId w:val=\"3\"/></w:numPr></w:pPr><w:r><w:t>Rinse the impeller</w:t></w:r></w:p>"
    "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Part</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Interval</w:t></w:r></w:p></w:tc></w:tr>"
    "<w:tr><w:tc><w:p><w:r><w:t>Seal</w:t></w:r></w:p><w:p><w:r><w:t>(rubber)</w:t></w:r></w:p></w:tc>"
    "<w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>6 months</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>"
    "<w:p><w:r><w:instrText>HYPERLINK x</w:instrText></w:r><w:r><w:t>Done.</w:t></w:r></w:p>"
    "</w:body></w:document>";

static const char *docx_styles =
    "<?xml version=\"1.0\"?><w:styles " W_NS "><w:style w:type=\"paragraph\" w:styleId=\"Sub\"><w:name w:val=\"heading 2\"/></w:style>"
    "<w:style w:type=\"paragraph\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/></w:style></w:styles>";

static void test_docx(void)
{
    zpart parts[] = {
        {"[Content_Types].xml", "<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\"/>", 0},
        {"word/document.xml", docx_body, 0},
        {"word/styles.xml", docx_styles, 0},
        {"docProps/core.xml", core_xml, 0},
        {"word/media/image1.png", "\x89PNG not read", 0},
    };
    for (int store = 0; store < 2; store++) {
        size_t n;
        char *z = make_zip(parts, CAIRN_ARRAY_LEN(parts), store, &n);
        docs out;
        CHECK_OK(buffer("manual.docx", z, n, NULL, &out));
        CHECK_EQ_INT(out.n, 1);
        if (out.n) {
            ingest_doc *d = &out.d[0];
            CHECK_EQ_STR(d->type, "docx");
            CHECK_EQ_STR(d->title, "Pump Manual");
            CHECK_EQ_STR(meta_str(d, "author"), "Ann Smith");
            CHECK_EQ_STR(meta_str(d, "subject"), "Bilge pumps");
            const meta_value *kw = meta_get(&d->meta, "keywords");
            CHECK(kw && kw->type == META_LIST && kw->n_items == 2 && !strcmp(kw->items[1], "maintenance"));
            const meta_value *cr = meta_get(&d->meta, "created");
            CHECK(cr && cr->type == META_DATE);
            const ingest_block *b = find_block(d, "Installation");
            CHECK(b && b->kind == BLOCK_HEADING && b->level == 1);
            b = find_block(d, "Cleaning");
            CHECK(b && b->kind == BLOCK_HEADING && b->level == 2);
            b = find_block(d, "Open the cover now.");
            CHECK(b && b->kind == BLOCK_PARAGRAPH);
            CHECK(!find_block(d, "deleted words") && !find_block(d, "HYPERLINK"));
            b = find_block(d, "Rinse the impeller");
            CHECK(b && b->kind == BLOCK_LIST_ITEM && b->level == 2);
            b = find_block(d, "Part | Interval");
            CHECK(b && b->kind == BLOCK_TABLE_ROW);
            b = find_block(d, "Seal (rubber) | 6 months");
            CHECKF(b && b->kind == BLOCK_TABLE_ROW, "nested table is cell text");
            CHECK(find_block(d, "Done."));
        }
        docs_free(&out);
        free(z);
    }
    /* without core.xml or styles.xml: title from the first heading, built-in style ids */
    zpart bare[] = {{"word/document.xml", docx_body, 0}};
    size_t n;
    char *z = make_zip(bare, 1, false, &n);
    docs out;
    CHECK_OK(buffer("bare.docx", z, n, NULL, &out));
    CHECK(out.n == 1 && !strcmp(out.d[0].title, "Installation"));
    if (out.n) {
        const ingest_block *b = find_block(&out.d[0], "Cleaning");
        CHECK(b && b->kind == BLOCK_PARAGRAPH); /* "Sub" is unknown without styles.xml */
    }
    docs_free(&out);
    /* misnamed: a docx called .odt is still read as docx (the members decide) */
    CHECK_OK(buffer("misnamed.odt", z, n, NULL, &out));
    CHECK(out.n == 1 && !strcmp(out.d[0].type, "docx"));
    docs_free(&out);
    free(z);
}

static const char *slide(const char *title, const char *body)
{
    static char buf[4][2048];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 2048,
             "<?xml version=\"1.0\"?><p:sld " P_NS " " A_NS "><p:cSld><p:spTree>"
             "<p:sp><p:nvSpPr><p:nvPr><p:ph type=\"title\"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>%s</a:t></a:r></a:p></p:txBody></p:sp>"
             "<p:sp><p:nvSpPr><p:nvPr><p:ph idx=\"1\"/></p:nvPr></p:nvSpPr><p:txBody><a:p><a:r><a:t>%s</a:t></a:r><a:br/><a:r><a:t>second line</a:t></a:r></a:p></p:txBody></p:sp>"
             "</p:spTree></p:cSld></p:sld>", title, body);
    return b;
}

static void test_pptx(void)
{
    const char *pres = "<?xml version=\"1.0\"?><p:presentation " P_NS " " R_NS "><p:sldIdLst>"
                       "<p:sldId id=\"256\" r:id=\"rId7\"/><p:sldId id=\"257\" r:id=\"rId2\"/></p:sldIdLst></p:presentation>";
    const char *rels = "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
                       "<Relationship Id=\"rId2\" Type=\"x/slide\" Target=\"slides/slide1.xml\"/>"
                       "<Relationship Id=\"rId7\" Type=\"x/slide\" Target=\"slides/slide2.xml\"/>"
                       "<Relationship Id=\"rId9\" Type=\"x/hyperlink\" Target=\"http://example.com\" TargetMode=\"External\"/></Relationships>";
    const char *tbl = "<?xml version=\"1.0\"?><p:sld " P_NS " " A_NS "><p:cSld><p:spTree><p:graphicFrame><a:graphic><a:graphicData>"
                      "<a:tbl><a:tr><a:tc><a:txBody><a:p><a:r><a:t>k</a:t></a:r></a:p></a:txBody></a:tc><a:tc><a:txBody><a:p><a:r><a:t>v</a:t></a:r></a:p></a:txBody></a:tc></a:tr></a:tbl>"
                      "</a:graphicData></a:graphic></p:graphicFrame></p:spTree></p:cSld></p:sld>";
    char s1[2048], s2[2048];
    snprintf(s1, sizeof s1, "%s", slide("Results", "Revenue grew"));
    snprintf(s2, sizeof s2, "%s", slide("Agenda", "Welcome everyone"));
    zpart parts[] = {
        {"ppt/presentation.xml", pres, 0}, {"ppt/_rels/presentation.xml.rels", rels, 0},
        {"ppt/slides/slide1.xml", s1, 0}, {"ppt/slides/slide2.xml", s2, 0}, {"ppt/slides/slide3.xml", tbl, 0},
    };
    size_t n;
    char *z = make_zip(parts, CAIRN_ARRAY_LEN(parts), false, &n);
    docs out;
    CHECK_OK(buffer("deck.pptx", z, n, NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "pptx");
        CHECK_EQ_STR(d->title, "Agenda"); /* slide order from sldIdLst: slide2 first */
        const ingest_block *b = find_block(d, "Agenda");
        CHECK(b && b->kind == BLOCK_HEADING && b->page == 1);
        b = find_block(d, "Welcome everyone second line");
        CHECK(b && b->kind == BLOCK_PARAGRAPH && b->page == 1);
        b = find_block(d, "Results");
        CHECK(b && b->kind == BLOCK_HEADING && b->page == 2);
        CHECK(!find_block(d, "k | v")); /* slide3 is not in the presentation */
        const meta_value *sl = meta_get(&d->meta, "slides");
        CHECK(sl && sl->type == META_NUMBER && sl->n == 2);
    }
    docs_free(&out);
    free(z);
    /* without presentation order: slideN.xml numbering; a table slide */
    zpart bare[] = {{"ppt/presentation.xml", "<p:presentation " P_NS "/>", 0}, {"ppt/slides/slide10.xml", s1, 0},
                    {"ppt/slides/slide2.xml", tbl, 0}};
    z = make_zip(bare, 3, false, &n);
    CHECK_OK(buffer("d.pptx", z, n, NULL, &out));
    if (out.n) {
        const ingest_block *b = find_block(&out.d[0], "k | v");
        CHECK(b && b->kind == BLOCK_TABLE_ROW && b->page == 1);
        b = find_block(&out.d[0], "Results");
        CHECK(b && b->page == 2);
    }
    docs_free(&out);
    free(z);
}

static void test_xlsx(void)
{
    const char *wb = "<?xml version=\"1.0\"?><workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" " R_NS ">"
                     "<sheets><sheet name=\"Parts\" sheetId=\"1\" r:id=\"rId1\"/><sheet name=\"Empty\" sheetId=\"2\" r:id=\"rId2\"/>"
                     "<sheet name=\"Log\" sheetId=\"3\" r:id=\"rId3\"/></sheets></workbook>";
    const char *rels = "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
                       "<Relationship Id=\"rId1\" Target=\"worksheets/sheet1.xml\"/><Relationship Id=\"rId2\" Target=\"worksheets/sheet2.xml\"/>"
                       "<Relationship Id=\"rId3\" Target=\"/xl/worksheets/sheet3.xml\"/></Relationships>";
    const char *sst = "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><si><t>name</t></si><si><t>price</t></si>"
                      "<si><r><t>Im</t></r><r><t>peller</t></r><rPh><t>phonetic</t></rPh></si><si><t>date</t></si></sst>";
    const char *styles = "<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><numFmts>"
                         "<numFmt numFmtId=\"164\" formatCode=\"yyyy\\-mm\\-dd\"/></numFmts><cellXfs><xf numFmtId=\"0\"/><xf numFmtId=\"164\"/><xf numFmtId=\"14\"/></cellXfs></styleSheet>";
    const char *sh1 = "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>"
                      "<row r=\"1\"><c r=\"A1\" t=\"s\"><v>0</v></c><c r=\"B1\" t=\"s\"><v>1</v></c><c r=\"D1\" t=\"s\"><v>3</v></c></row>"
                      "<row r=\"2\"><c r=\"A2\" t=\"s\"><v>2</v></c><c r=\"B2\"><v>12.5</v></c><c r=\"C2\" t=\"b\"><v>1</v></c><c r=\"D2\" s=\"1\"><v>45356</v></c></row>"
                      "<row r=\"4\"><c r=\"A4\" t=\"inlineStr\"><is><t>Seal</t></is></c><c r=\"B4\" t=\"s\"><v>99</v></c></row>"
                      "</sheetData></worksheet>";
    const char *sh2 = "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData/></worksheet>";
    const char *sh3 = "<worksheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\"><sheetData>"
                      "<row><c t=\"str\"><v>event</v></c></row><row><c t=\"str\"><v>started</v></c></row></sheetData></worksheet>";
    zpart parts[] = {{"xl/workbook.xml", wb, 0}, {"xl/_rels/workbook.xml.rels", rels, 0}, {"xl/sharedStrings.xml", sst, 0},
                     {"xl/styles.xml", styles, 0}, {"xl/worksheets/sheet1.xml", sh1, 0}, {"xl/worksheets/sheet2.xml", sh2, 0},
                     {"xl/worksheets/sheet3.xml", sh3, 0}, {"docProps/core.xml", core_xml, 0}};
    size_t n;
    char *z = make_zip(parts, CAIRN_ARRAY_LEN(parts), false, &n);
    docs out;
    CHECK_OK(buffer("book.xlsx", z, n, NULL, &out));
    CHECK_EQ_INT(out.n, 2); /* the empty sheet gives no document */
    if (out.n == 2) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "xlsx");
        CHECK_EQ_STR(d->key, "Parts");
        CHECK_EQ_STR(d->title, "Parts");
        CHECK_EQ_STR(meta_str(d, "sheet"), "Parts");
        CHECK_EQ_STR(meta_str(d, "author"), "Ann Smith");
        const meta_value *cols = meta_get(&d->meta, "columns");
        CHECK(cols && cols->n_items == 4 && !strcmp(cols->items[2], "column_3") && !strcmp(cols->items[3], "date"));
        const meta_value *rows = meta_get(&d->meta, "rows");
        CHECK(rows && rows->n == 2);
        const ingest_block *b = find_block(d, "name: Impeller | price: 12.5 | column_3: TRUE | date: 2024-03-05");
        CHECKF(b && b->kind == BLOCK_TABLE_ROW, "%s", d->n_blocks ? d->blocks[0].text : "");
        CHECK(find_block(d, "name: Seal") && !find_block(d, "phonetic"));
        CHECK_EQ_STR(out.d[1].key, "Log");
        CHECK(find_block(&out.d[1], "event: started"));
    }
    docs_free(&out);
    free(z);
}

#define ODF_NS "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\" " \
               "xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:draw=\"urn:oasis:names:tc:opendocument:xmlns:drawing:1.0\" " \
               "xmlns:presentation=\"urn:oasis:names:tc:opendocument:xmlns:presentation:1.0\""

static void test_odf(void)
{
    const char *meta = "<office:document-meta xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" "
                       "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:meta=\"urn:oasis:names:tc:opendocument:xmlns:meta:1.0\">"
                       "<office:meta><dc:title>Field Notes</dc:title><meta:initial-creator>Bo</meta:initial-creator>"
                       "<meta:keyword>birds</meta:keyword><meta:keyword>spring</meta:keyword><dc:date>2024-04-01T08:30:00.123</dc:date></office:meta></office:document-meta>";
    const char *odt = "<office:document-content " ODF_NS "><office:body><office:text><text:sequence-decls><text:sequence-decl text:name=\"Fig\"/></text:sequence-decls>"
                      "<text:h text:outline-level=\"2\">Sightings</text:h><text:p>A <text:span>heron</text:span><text:s text:c=\"3\"/>at dawn.<office:annotation><text:p>hidden note</text:p></office:annotation></text:p>"
                      "<text:list><text:list-item><text:p>outer</text:p><text:list><text:list-item><text:p>inner</text:p></text:list-item></text:list></text:list-item></text:list>"
                      "<table:table table:name=\"T\"><table:table-row><table:table-cell><text:p>bird</text:p></table:table-cell><table:table-cell><text:p>count</text:p></table:table-cell></table:table-row></table:table>"
                      "</office:text></office:body></office:document-content>";
    zpart parts[] = {{"mimetype", "application/vnd.oasis.opendocument.text", 0}, {"content.xml", odt, 0}, {"meta.xml", meta, 0}};
    size_t n;
    char *z = make_zip(parts, 3, true, &n);
    docs out;
    CHECK_OK(buffer("notes.odt", z, n, NULL, &out));
    if (out.n) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "odt");
        CHECK_EQ_STR(d->title, "Field Notes");
        CHECK_EQ_STR(meta_str(d, "author"), "Bo");
        const meta_value *kw = meta_get(&d->meta, "keywords");
        CHECK(kw && kw->type == META_LIST && kw->n_items == 2);
        CHECK(meta_get(&d->meta, "modified") && meta_get(&d->meta, "modified")->type == META_DATE);
        const ingest_block *b = find_block(d, "Sightings");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 2);
        CHECK(find_block(d, "A heron at dawn.") && !find_block(d, "hidden note"));
        b = find_block(d, "inner");
        CHECK(b && b->kind == BLOCK_LIST_ITEM && b->level == 2);
        b = find_block(d, "outer");
        CHECK(b && b->kind == BLOCK_LIST_ITEM && b->level == 1);
        b = find_block(d, "bird | count");
        CHECK(b && b->kind == BLOCK_TABLE_ROW);
    }
    docs_free(&out);
    free(z);

    const char *odp = "<office:document-content " ODF_NS "><office:body><office:presentation>"
                      "<draw:page draw:name=\"p1\"><draw:frame presentation:class=\"title\"><draw:text-box><text:p>Opening</text:p></draw:text-box></draw:frame>"
                      "<draw:frame presentation:class=\"outline\"><draw:text-box><text:list><text:list-item><text:p>point one</text:p></text:list-item></text:list></draw:text-box></draw:frame>"
                      "<presentation:notes><draw:frame><draw:text-box><text:p>speaker notes</text:p></draw:text-box></draw:frame></presentation:notes></draw:page>"
                      "<draw:page draw:name=\"p2\"><draw:frame presentation:class=\"title\"><draw:text-box><text:p>Closing</text:p></draw:text-box></draw:frame></draw:page>"
                      "</office:presentation></office:body></office:document-content>";
    zpart pp[] = {{"mimetype", "application/vnd.oasis.opendocument.presentation", 0}, {"content.xml", odp, 0}};
    z = make_zip(pp, 2, true, &n);
    CHECK_OK(buffer("talk.odp", z, n, NULL, &out));
    if (out.n) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "odp");
        CHECK_EQ_STR(d->title, "Opening");
        const ingest_block *b = find_block(d, "Closing");
        CHECK(b && b->kind == BLOCK_HEADING && b->page == 2);
        b = find_block(d, "point one");
        CHECK(b && b->page == 1 && b->kind == BLOCK_LIST_ITEM);
        CHECK(!find_block(d, "speaker notes"));
        CHECK(meta_get(&d->meta, "slides") && meta_get(&d->meta, "slides")->n == 2);
    }
    docs_free(&out);
    free(z);

    /* ods: repeated cells and rows, a huge repeat count capped, empty repeats skipped */
    const char *ods = "<office:document-content " ODF_NS "><office:body><office:spreadsheet>"
                      "<table:table table:name=\"Stock\"><table:table-row><table:table-cell><text:p>item</text:p></table:table-cell>"
                      "<table:table-cell table:number-columns-repeated=\"2\"><text:p>qty</text:p></table:table-cell></table:table-row>"
                      "<table:table-row table:number-rows-repeated=\"3\"><table:table-cell><text:p>bolt</text:p></table:table-cell>"
                      "<table:table-cell office:value-type=\"date\" office:date-value=\"2024-01-02\"/><table:table-cell table:number-columns-repeated=\"16000\"/></table:table-row>"
                      "<table:table-row table:number-rows-repeated=\"1048000\"><table:table-cell table:number-columns-repeated=\"1024\"/></table:table-row>"
                      "<table:table-row table:number-rows-repeated=\"2000000000\"><table:table-cell><text:p>x</text:p></table:table-cell></table:table-row>"
                      "</table:table><table:table table:name=\"Blank\"/></office:spreadsheet></office:body></office:document-content>";
    zpart ps[] = {{"mimetype", "application/vnd.oasis.opendocument.spreadsheet", 0}, {"content.xml", ods, 0}};
    z = make_zip(ps, 2, true, &n);
    CHECK_OK(buffer("stock.ods", z, n, NULL, &out));
    CHECK_EQ_INT(out.total, 1);
    if (out.n) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "ods");
        CHECK_EQ_STR(d->key, "Stock");
        const meta_value *cols = meta_get(&d->meta, "columns");
        CHECK(cols && cols->n_items == 3);
        const ingest_block *b = find_block(d, "item: bolt | qty: 2024-01-02");
        CHECK(b && b->kind == BLOCK_TABLE_ROW);
        const meta_value *rows = meta_get(&d->meta, "rows");
        CHECKF(rows && rows->n == 3 + 1000, "rows %g", rows ? rows->n : -1);
    }
    docs_free(&out);
    free(z);
}

static void test_epub(void)
{
    const char *container = "<?xml version=\"1.0\"?><container version=\"1.0\" xmlns=\"urn:oasis:names:tc:opendocument:xmlns:container\">"
                            "<rootfiles><rootfile full-path=\"OEBPS/content.opf\" media-type=\"application/oebps-package+xml\"/></rootfiles></container>";
    const char *opf = "<?xml version=\"1.0\"?><package xmlns=\"http://www.idpf.org/2007/opf\" version=\"3.0\">"
                      "<metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>The Sea</dc:title><dc:creator>A. Writer</dc:creator>"
                      "<dc:creator>B. Editor</dc:creator><dc:language>en</dc:language><dc:date>2020-06-01</dc:date></metadata>"
                      "<manifest><item id=\"c1\" href=\"Text/ch%201.xhtml\" media-type=\"application/xhtml+xml\"/>"
                      "<item id=\"c2\" href=\"../OEBPS/Text/ch2.xhtml\" media-type=\"application/xhtml+xml\"/>"
                      "<item id=\"css\" href=\"s.css\" media-type=\"text/css\"/></manifest>"
                      "<spine><itemref idref=\"c2\"/><itemref idref=\"c1\"/><itemref idref=\"missing\"/></spine></package>";
    const char *ch1 = "<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>One</title></head><body><h1>Chapter One</h1><p>Waves rolled in.</p></body></html>";
    const char *ch2 = "<html><body><h1>Prologue</h1><p>Before the storm.</p></body></html>";
    zpart parts[] = {{"mimetype", "application/epub+zip", 0}, {"META-INF/container.xml", container, 0},
                     {"OEBPS/content.opf", opf, 0}, {"OEBPS/Text/ch 1.xhtml", ch1, 0}, {"OEBPS/Text/ch2.xhtml", ch2, 0}};
    size_t n;
    char *z = make_zip(parts, CAIRN_ARRAY_LEN(parts), false, &n);
    docs out;
    CHECK_OK(buffer("sea.epub", z, n, NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "epub");
        CHECK_EQ_STR(d->title, "The Sea");
        const meta_value *au = meta_get(&d->meta, "author");
        CHECK(au && au->type == META_LIST && au->n_items == 2 && !strcmp(au->items[0], "A. Writer"));
        CHECK_EQ_STR(meta_str(d, "language"), "en");
        const ingest_block *pro = find_block(d, "Prologue"), *one = find_block(d, "Chapter One");
        CHECK(pro && one && pro < one && pro->kind == BLOCK_HEADING); /* spine order */
        CHECK(find_block(d, "Waves rolled in."));
        CHECK(meta_get(&d->meta, "chapters") && meta_get(&d->meta, "chapters")->n == 2);
    }
    docs_free(&out);
    free(z);
}

static void test_rtf(void)
{
    const char *rtf =
        "{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times;}}{\\colortbl;\\red0\\green0\\blue0;}"
        "{\\stylesheet{\\s0 Normal;}{\\s1\\b heading 1;}{\\s2 heading 2;}}"
        "{\\info{\\title Boat Log}{\\author Cap\\'e9tain}{\\keywords sea, boat}{\\creatim\\yr2024}}"
        "{\\*\\generator Writer;}{\\header page header}"
        "\\pard\\s1 Voyage\\par\\pard Cr\\'e8me br\\'fbl\\'e9e on deck, \\u8364?5 and \\u-10179?\\u-8704? ok.\\par"
        "\\pard\\outlinelevel1 Weather\\par\\pard\\plain {\\b Wind} from the {\\i north}\\line today\\par"
        "\\trowd\\cellx100\\cellx200\\intbl Knots\\cell Hour\\cell\\row\\intbl 12\\cell 6\\cell\\row\\pard"
        "{\\field{\\*\\fldinst HYPERLINK \"x\"}{\\fldrslt link text}}\\par"
        "{\\pict\\pngblip 89504e47}\\bin3 {}}tail\\emdash end\\par}";
    docs out;
    CHECK_OK(buffer("log.rtf", rtf, strlen(rtf), NULL, &out));
    CHECK_EQ_INT(out.n, 1);
    if (out.n) {
        ingest_doc *d = &out.d[0];
        CHECK_EQ_STR(d->type, "rtf");
        CHECK_EQ_STR(d->title, "Boat Log");
        CHECK_EQ_STR(meta_str(d, "author"), "Capétain");
        const meta_value *kw = meta_get(&d->meta, "keywords");
        CHECK(kw && kw->n_items == 2);
        const ingest_block *b = find_block(d, "Voyage");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 1);
        b = find_block(d, "Weather");
        CHECK(b && b->kind == BLOCK_HEADING && b->level == 2);
        CHECK(find_block(d, "Crème brûlée on deck, €5 and \xf0\x9f\x98\x80 ok."));
        CHECK(find_block(d, "Wind from the north today"));
        b = find_block(d, "Knots | Hour");
        CHECK(b && b->kind == BLOCK_TABLE_ROW);
        CHECK(find_block(d, "12 | 6"));
        CHECK(find_block(d, "link text") && !find_block(d, "HYPERLINK"));
        CHECK(!find_block(d, "Times") && !find_block(d, "Writer") && !find_block(d, "page header"));
        CHECK(!find_block(d, "89504e47"));
        CHECK(find_block(d, "tail\xe2\x80\x94" " end") || find_block(d, "tail\xe2\x80\x94" "end"));
    }
    docs_free(&out);
    /* hostile: unbalanced, deep, cut short, huge numbers */
    const char *bad[] = {"{\\rtf", "{\\rtf1 {{{{", "{\\rtf1 }}}}} x", "{\\rtf1 \\", "{\\rtf1 \\'", "{\\rtf1 \\'4",
                         "{\\rtf1 \\u", "{\\rtf1 \\u99999999999999999999 x", "{\\rtf1 \\bin999999999 x",
                         "{\\rtf1 \\ansicpg99999 \\'e9}", "{\\rtf1 \\uc9999\\u233 abc}", "{\\rtf1\\cell\\row\\row}",
                         "{\\rtf1 \\aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1 x}", "{\\rtf1{\\info{\\title"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(bad); i++) {
        cairn_status st = buffer("b.rtf", bad[i], strlen(bad[i]), NULL, &out);
        CHECKF(st == CAIRN_OK, "%s: %s", bad[i], cairn_last_error());
        docs_free(&out);
    }
    cairn_buf deep;
    cairn_buf_init(&deep, 0);
    cairn_buf_puts(&deep, "{\\rtf1 ");
    for (int i = 0; i < 300000; i++)
        cairn_buf_puts(&deep, "{x");
    CHECK_OK(buffer("deep.rtf", deep.data, deep.len, NULL, &out));
    docs_free(&out);
    cairn_buf_free(&deep);
    CHECK_EQ_INT(buffer("not.rtf", "plain text", 10, NULL, &out), CAIRN_ERR_CORRUPT);
    docs_free(&out);
}

static void test_office_hostile(void)
{
    docs out;
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_QUIET);
    /* XXE: an external entity, a billion-laughs internal subset: refused, nothing read */
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                      "<w:document " W_NS "><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>";
    const char *lol = "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">"
                      "<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]>"
                      "<w:document " W_NS "><w:body><w:p><w:r><w:t>&d;&d;&d;&d;&d;&d;&d;</w:t></w:r></w:p></w:body></w:document>";
    const char *bodies[] = {xxe, lol};
    for (size_t i = 0; i < 2; i++) {
        zpart parts[] = {{"word/document.xml", bodies[i], 0}};
        size_t n;
        char *z = make_zip(parts, 1, false, &n);
        cairn_status st = buffer("x.docx", z, n, NULL, &out);
        CHECK_EQ_INT(st, CAIRN_ERR_CORRUPT);
        CHECKF(strstr(cairn_last_error(), "DOCTYPE refused"), "%s", cairn_last_error());
        CHECK_EQ_INT(out.total, 0);
        docs_free(&out);
        free(z);
    }
    /* malformed XML names the part */
    zpart mal[] = {{"word/document.xml", "<w:document " W_NS "><w:body><w:p><w:t>x</w:p>", 0}};
    size_t n;
    char *z = make_zip(mal, 1, false, &n);
    CHECK_EQ_INT(buffer("m.docx", z, n, NULL, &out), CAIRN_ERR_CORRUPT);
    CHECKF(strstr(cairn_last_error(), "word/document.xml: malformed XML"), "%s", cairn_last_error());
    docs_free(&out);
    /* truncated and byte-flipped containers: an error or a document, never a crash */
    for (size_t cut = 1; cut < n; cut += 1 + n / 40) {
        cairn_status st = buffer("t.docx", z, cut, NULL, &out);
        CHECK(st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED || st == CAIRN_OK);
        docs_free(&out);
    }
    free(z);
    zpart good[] = {{"word/document.xml", docx_body, 0}, {"word/styles.xml", docx_styles, 0}, {"docProps/core.xml", core_xml, 0}};
    z = make_zip(good, 3, false, &n);
    unsigned x = 99;
    for (int k = 0; k < 300; k++) {
        char *m = malloc(n);
        memcpy(m, z, n);
        for (int f = 0; f < 3; f++) {
            x = x * 1103515245u + 12345u;
            m[(x >> 8) % n] ^= (char)(1 + (x & 0x7f));
        }
        cairn_status st = buffer("f.docx", m, n, NULL, &out);
        CHECK(st == CAIRN_ERR_CORRUPT || st == CAIRN_ERR_UNSUPPORTED || st == CAIRN_OK);
        docs_free(&out);
        free(m);
    }
    free(z);
    /* a zip bomb: one member of 64 MiB of zeros (compresses ~1000:1) */
    size_t big = (size_t)64 << 20;
    char *zeros = malloc(big);
    memset(zeros, '<', big);
    zpart bomb[] = {{"word/document.xml", zeros, big}};
    z = make_zip(bomb, 1, false, &n);
    cairn_status st = buffer("bomb.docx", z, n, NULL, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "zip bomb refused"), "%s", cairn_last_error());
    docs_free(&out);
    free(z);
    free(zeros);
    /* the member cap is the file cap, measured uncompressed */
    ingest_options o;
    ingest_options_default(&o);
    o.max_file_bytes = 2048;
    zpart mid[] = {{"word/document.xml", docx_body, 0}, {"word/styles.xml", docx_styles, 0}, {"docProps/core.xml", core_xml, 0},
                   {"customXml/item1.xml", core_xml, 0}, {"customXml/item2.xml", core_xml, 0}};
    z = make_zip(mid, 5, false, &n);
    st = buffer("cap.docx", z, n, &o, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "size cap of 2048 bytes (ingest.max_file_mb)"), "%s", cairn_last_error());
    docs_free(&out);
    free(z);
    /* too many entries */
    size_t ne = 20001;
    zpart *many = calloc(ne, sizeof *many);
    char (*names)[32] = calloc(ne, 32);
    for (size_t i = 0; i < ne; i++) {
        snprintf(names[i], 32, "f%zu.bin", i);
        many[i] = (zpart){names[i], "x", 1};
    }
    z = make_zip(many, ne, true, &n);
    st = buffer("many.docx", z, n, NULL, &out);
    CHECK_EQ_INT(st, CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "more than 20000 entries"), "%s", cairn_last_error());
    docs_free(&out);
    free(z);
    free(many);
    free(names);
    /* a plain zip named .docx, and a zip named .zip */
    zpart plain[] = {{"readme.txt", "hello", 0}};
    z = make_zip(plain, 1, false, &n);
    CHECK_EQ_INT(buffer("p.docx", z, n, NULL, &out), CAIRN_ERR_UNSUPPORTED);
    CHECKF(strstr(cairn_last_error(), "zip archive: not supported"), "%s", cairn_last_error());
    docs_free(&out);
    CHECK_EQ_INT(buffer("p.zip", z, n, NULL, &out), CAIRN_ERR_UNSUPPORTED);
    docs_free(&out);
    free(z);
    /* EPUB without a package, a spine pointing nowhere */
    zpart e1[] = {{"mimetype", "application/epub+zip", 0}};
    z = make_zip(e1, 1, true, &n);
    CHECK_EQ_INT(buffer("e.epub", z, n, NULL, &out), CAIRN_ERR_CORRUPT);
    CHECKF(strstr(cairn_last_error(), "META-INF/container.xml"), "%s", cairn_last_error());
    docs_free(&out);
    free(z);
    cairn_log_set_level(lvl);
}

/* ---- allocation failures ---- */
static void test_alloc_failures(void)
{
    size_t zn;
    const char *md = "# T\n\npara\n\n- item\n";
    char *z = compress("gzip", md, strlen(md), &zn);
    zpart dx[] = {{"word/document.xml", docx_body, 0}, {"word/styles.xml", docx_styles, 0}, {"docProps/core.xml", core_xml, 0}};
    size_t dn;
    char *dz = make_zip(dx, 3, false, &dn);
    const char *sh = "<worksheet><sheetData><row><c t=\"inlineStr\"><is><t>h</t></is></c></row><row><c><v>1</v></c></row></sheetData></worksheet>";
    zpart xx[] = {{"xl/workbook.xml", "<workbook xmlns:r=\"x/relationships\"><sheets><sheet name=\"S\" r:id=\"r1\"/></sheets></workbook>", 0},
                  {"xl/_rels/workbook.xml.rels", "<Relationships><Relationship Id=\"r1\" Target=\"s.xml\"/></Relationships>", 0},
                  {"xl/s.xml", sh, 0}, {"xl/sharedStrings.xml", "<sst><si><t>a</t></si></sst>", 0}};
    size_t xn;
    char *xz = make_zip(xx, 4, false, &xn);
    char sl[2048];
    snprintf(sl, sizeof sl, "%s", slide("T", "body"));
    zpart pp[] = {{"ppt/presentation.xml", "<p:presentation " P_NS "/>", 0}, {"ppt/slides/slide1.xml", sl, 0},
                  {"docProps/core.xml", core_xml, 0}};
    size_t pn;
    char *pz = make_zip(pp, 3, false, &pn);
    const char *odt = "<office:document-content " ODF_NS "><office:body><office:text><text:h text:outline-level=\"1\">H</text:h>"
                      "<text:list><text:list-item><text:p>i</text:p></text:list-item></text:list><table:table><table:table-row>"
                      "<table:table-cell><text:p>c</text:p></table:table-cell></table:table-row></table:table></office:text></office:body></office:document-content>";
    zpart op[] = {{"mimetype", "application/vnd.oasis.opendocument.text", 0}, {"content.xml", odt, 0},
                  {"meta.xml", "<office:document-meta xmlns:office=\"o\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:meta=\"m\"><office:meta><dc:title>T</dc:title><meta:keyword>a</meta:keyword><meta:keyword>b</meta:keyword></office:meta></office:document-meta>", 0}};
    size_t on;
    char *oz = make_zip(op, 3, true, &on);
    const char *ods = "<office:document-content " ODF_NS "><office:body><office:spreadsheet><table:table table:name=\"S\"><table:table-row>"
                      "<table:table-cell table:number-columns-repeated=\"2\"><text:p>h</text:p></table:table-cell></table:table-row>"
                      "<table:table-row table:number-rows-repeated=\"2\"><table:table-cell office:date-value=\"2024-01-01\"/></table:table-row>"
                      "</table:table></office:spreadsheet></office:body></office:document-content>";
    zpart sp[] = {{"mimetype", "application/vnd.oasis.opendocument.spreadsheet", 0}, {"content.xml", ods, 0}};
    size_t sn;
    char *sz = make_zip(sp, 2, true, &sn);
    zpart ep[] = {{"mimetype", "application/epub+zip", 0},
                  {"META-INF/container.xml", "<container><rootfiles><rootfile full-path=\"b.opf\"/></rootfiles></container>", 0},
                  {"b.opf", "<package><metadata xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:title>T</dc:title><dc:creator>A</dc:creator>"
                            "<dc:creator>B</dc:creator><dc:date>2020-01-01</dc:date></metadata><manifest><item id=\"c\" href=\"c.xhtml\"/></manifest>"
                            "<spine><itemref idref=\"c\"/></spine></package>", 0},
                  {"c.xhtml", "<html><body><h1>H</h1><p>p</p></body></html>", 0}};
    size_t en;
    char *ez = make_zip(ep, 4, false, &en);
    const char *rtf = "{\\rtf1\\ansi{\\stylesheet{\\s1 heading 1;}}{\\info{\\title T}{\\keywords a b}}\\s1 H\\par x\\'e9\\u8364?\\par\\intbl a\\cell b\\cell\\row}";
    struct { const char *path; const char *data; size_t len; } cases[] = {
        {"a.md.gz", z, zn},
        {"a.docx", dz, dn},
        {"a.xlsx", xz, xn},
        {"a.rtf", rtf, 0},
        {"a.pptx", pz, pn},
        {"a.odt", oz, on},
        {"a.ods", sz, sn},
        {"a.epub", ez, en},
        {"cairn.1", man_page, 0},
        {"l1.txt", "Cr\xe8me br\xfbl\xe9" "e et caf\xe9" ".\n", 0},
        {"u16.txt", "\xff\xfeh\0i\0", 6},
    };
    cairn_log_level lvl = cairn_log_get_level();
    cairn_log_set_level(CAIRN_LOG_QUIET);
    for (size_t c = 0; c < CAIRN_ARRAY_LEN(cases); c++) {
        size_t len = cases[c].len ? cases[c].len : strlen(cases[c].data);
        ingest_options o;
        ingest_options_default(&o);
        bool finished = false;
        for (long n = 0; n < 20000 && !finished; n++) {
            docs out;
            memset(&out, 0, sizeof out);
            cairn_alloc_fail_after(n, false);
            cairn_status st = ingest_buffer(cases[c].path, cases[c].data, len, &o, collect, &out);
            long injected = cairn_alloc_injected_failures();
            cairn_alloc_fail_after(-1, false);
            if (injected == 0) {
                CHECKF(st == CAIRN_OK, "case %zu: %s", c, cairn_last_error());
                finished = true;
            } else {
                CHECKF(st == CAIRN_ERR_NOMEM, "case %zu, failing allocation %ld: %s (%s)", c, n,
                       cairn_status_str(st), cairn_last_error());
            }
            docs_free(&out);
        }
        CHECKF(finished, "case %zu never finished", c);
    }
    cairn_log_set_level(lvl);
    free(z);
    free(dz);
    free(xz);
    free(pz);
    free(oz);
    free(sz);
    free(ez);
}

int main(void)
{
    RUN(test_compressed_inner_format);
    RUN(test_compressed_bombs_and_caps);
    RUN(test_compressed_damaged);
    RUN(test_compressed_stream);
    RUN(test_man);
    RUN(test_man_hostile);
    RUN(test_charsets);
    RUN(test_docx);
    RUN(test_pptx);
    RUN(test_xlsx);
    RUN(test_odf);
    RUN(test_epub);
    RUN(test_rtf);
    RUN(test_office_hostile);
    RUN(test_alloc_failures);
    return t_done();
}
