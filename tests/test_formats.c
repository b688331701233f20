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

/* ---- allocation failures ---- */
static void test_alloc_failures(void)
{
    size_t zn;
    const char *md = "# T\n\npara\n\n- item\n";
    char *z = compress("gzip", md, strlen(md), &zn);
    struct { const char *path; const char *data; size_t len; } cases[] = {
        {"a.md.gz", z, zn},
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
    RUN(test_alloc_failures);
    return t_done();
}
