/* bench_parsers.c — parse speed of the structured-format parsers (JSONL,
 * CSV, JSON, HTML, PDF) through ingest_buffer (detect + parse + UTF-8 check),
 * without chunking or the store.
 *
 *   bench_parsers [MB] [RUNS]      defaults: 50 MB per format (PDF: 1/10), 5 runs
 *
 * Inputs are generated in memory: BEIR-style JSONL records, a CSV with a
 * quoted text column, a JSON array of records, HTML pages with chrome,
 * lists and tables, and a multi-page PDF with standard-font text. Prints the
 * median CPU-time throughput (on a shared machine wall time includes
 * waiting for others) and the documents and blocks produced. If ../shared
 * is present, also the BEIR corpora of data/ir. */
#include "ingest/ingest.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static char words[4096][12];

static void sentence(cairn_buf *b, int nw)
{
    for (int w = 0; w < nw; w++) {
        const char *word = words[(next_rand() % 4096) * (next_rand() % 4096) / 4096];
        cairn_buf_puts(b, word);
        cairn_buf_putc(b, w + 1 < nw ? ' ' : '.');
    }
}

static void make_jsonl(cairn_buf *b, size_t bytes)
{
    for (size_t i = 0; b->len < bytes; i++) {
        cairn_buf_printf(b, "{\"_id\": \"d%zu\", \"title\": \"", i);
        sentence(b, 6);
        cairn_buf_puts(b, "\", \"text\": \"");
        for (int s = 0; s < 8; s++) {
            sentence(b, 12);
            cairn_buf_putc(b, ' ');
        }
        cairn_buf_printf(b, "\", \"metadata\": {\"year\": %d, \"url\": \"http://example.org/%zu\"}}\n",
                         1950 + (int)(next_rand() % 70), i);
    }
}

static void make_json(cairn_buf *b, size_t bytes)
{
    cairn_buf_putc(b, '[');
    for (size_t i = 0; b->len < bytes; i++) {
        cairn_buf_printf(b, "%s{\"id\": %zu, \"title\": \"", i ? ",\n" : "", i);
        sentence(b, 6);
        cairn_buf_puts(b, "\", \"text\": \"");
        for (int s = 0; s < 8; s++)
            sentence(b, 12);
        cairn_buf_printf(b, "\", \"tags\": [\"a\", \"b\"], \"score\": %.3f}", (double)(next_rand() % 1000) / 7);
    }
    cairn_buf_puts(b, "]\n");
}

static void make_csv(cairn_buf *b, size_t bytes)
{
    cairn_buf_puts(b, "id,title,body,year,published,flag\n");
    for (size_t i = 0; b->len < bytes; i++) {
        cairn_buf_printf(b, "r%zu,", i);
        sentence(b, 5);
        cairn_buf_puts(b, ",\"");
        for (int s = 0; s < 6; s++) {
            sentence(b, 12);
            cairn_buf_puts(b, s == 2 ? ", \"\"quoted\"\", " : " ");
        }
        cairn_buf_printf(b, "\",%d,2001-02-%02d,%s\n", 1950 + (int)(next_rand() % 70), 1 + (int)(next_rand() % 28),
                         next_rand() % 2 ? "true" : "false");
    }
}

static void make_html(cairn_buf *b, size_t bytes)
{
    cairn_buf_puts(b, "<!DOCTYPE html><html lang=en><head><title>Bench page</title>"
                      "<meta name=description content=\"a page\"><style>p{margin:0}</style>"
                      "<script>var x = 1;</script></head><body><nav><ul><li><a href=/>Home</a></li></ul></nav><main>");
    while (b->len < bytes) {
        cairn_buf_puts(b, "<h2>");
        sentence(b, 4);
        cairn_buf_puts(b, "</h2>");
        for (int p = 0; p < 4; p++) {
            cairn_buf_puts(b, "<p>");
            for (int s = 0; s < 4; s++) {
                sentence(b, 10);
                cairn_buf_puts(b, s == 1 ? " <a href=\"#x\">link &amp; text</a> " : " <b>bold</b> ");
            }
            cairn_buf_puts(b, "</p>\n");
        }
        cairn_buf_puts(b, "<ul>");
        for (int l = 0; l < 3; l++) {
            cairn_buf_puts(b, "<li>");
            sentence(b, 6);
            cairn_buf_puts(b, "</li>");
        }
        cairn_buf_puts(b, "</ul><table><tr><th>k</th><th>v</th></tr><tr><td>1</td><td>");
        sentence(b, 3);
        cairn_buf_puts(b, "</td></tr></table>\n");
    }
    cairn_buf_puts(b, "</main><footer>footer</footer></body></html>\n");
}

static void make_pdf(cairn_buf *b, int pages)
{
    size_t *off = calloc((size_t)(4 + 2 * pages), sizeof *off);
    int nobj = 4 + 2 * pages;
    cairn_buf_puts(b, "%PDF-1.4\n");
    off[1] = b->len;
    cairn_buf_puts(b, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = b->len;
    cairn_buf_puts(b, "2 0 obj\n<< /Type /Pages /Kids [");
    for (int i = 0; i < pages; i++)
        cairn_buf_printf(b, "%d 0 R ", 4 + 2 * i);
    cairn_buf_printf(b, "] /Count %d >>\nendobj\n", pages);
    off[3] = b->len;
    cairn_buf_puts(b, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
    cairn_buf content;
    cairn_buf_init(&content, 0);
    for (int i = 0; i < pages; i++) {
        cairn_buf_reset(&content);
        cairn_buf_puts(&content, "BT /F1 10 Tf 12 TL 72 740 Td\n");
        for (int l = 0; l < 50; l++) {
            cairn_buf_putc(&content, '(');
            sentence(&content, 11);
            cairn_buf_puts(&content, l % 8 == 7 ? ") Tj 0 -24 Td\n" : ") Tj T*\n");
        }
        cairn_buf_puts(&content, "ET");
        off[4 + 2 * i] = b->len;
        cairn_buf_printf(b, "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                            "/Resources << /Font << /F1 3 0 R >> >> >>\nendobj\n", 4 + 2 * i, 5 + 2 * i);
        off[5 + 2 * i] = b->len;
        cairn_buf_printf(b, "%d 0 obj\n<< /Length %zu >>\nstream\n", 5 + 2 * i, content.len);
        cairn_buf_append(b, content.data, content.len);
        cairn_buf_puts(b, "\nendstream\nendobj\n");
    }
    size_t xref = b->len;
    cairn_buf_printf(b, "xref\n0 %d\n0000000000 65535 f \n", nobj);
    for (int i = 1; i < nobj; i++)
        cairn_buf_printf(b, "%010zu 00000 n \n", off[i]);
    cairn_buf_printf(b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%zu\n%%%%EOF\n", nobj, xref);
    cairn_buf_free(&content);
    free(off);
}

typedef struct counts { size_t docs, blocks, text; } counts;

static cairn_status count(void *ctx, ingest_doc *d)
{
    counts *c = ctx;
    c->docs++;
    c->blocks += d->n_blocks;
    for (size_t i = 0; i < d->n_blocks; i++)
        c->text += d->blocks[i].len;
    return CAIRN_OK;
}

static void bench(const char *label, const char *path, const char *data, size_t len, int runs)
{
    ingest_options o;
    ingest_options_default(&o);
    double *t = calloc((size_t)runs, sizeof *t);
    counts c = {0};
    for (int r = 0; r < runs; r++) {
        memset(&c, 0, sizeof c);
        double t0 = cpu_seconds();
        cairn_status st = ingest_buffer(path, data, len, &o, count, &c);
        t[r] = cpu_seconds() - t0;
        if (st != CAIRN_OK) {
            printf("%-22s failed: %s\n", label, cairn_last_error());
            free(t);
            return;
        }
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    double med = t[runs / 2];
    printf("%-22s %8.1f MB  %8.1f MB/s  (median of %d, cpu)  %zu docs, %zu blocks, %.1f MB text\n", label,
           len / 1e6, med > 0 ? len / 1e6 / med : 0.0, runs, c.docs, c.blocks, c.text / 1e6);
    free(t);
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 50;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (mb == 0 || runs <= 0) {
        fprintf(stderr, "usage: bench_parsers [MB] [RUNS]\n");
        return 2;
    }
    for (int i = 0; i < 4096; i++) {
        int len = 2 + (int)(next_rand() % 9);
        for (int k = 0; k < len; k++)
            words[i][k] = (char)('a' + next_rand() % 26);
        words[i][len] = 0;
    }
    size_t bytes = mb * 1000000;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    make_jsonl(&b, bytes);
    bench("jsonl (BEIR-style)", "corpus.jsonl", b.data, b.len, runs);
    cairn_buf_reset(&b);
    make_csv(&b, bytes);
    bench("csv (row per doc)", "rows.csv", b.data, b.len, runs);
    cairn_buf_reset(&b);
    make_json(&b, bytes);
    bench("json (array)", "records.json", b.data, b.len, runs);
    cairn_buf_reset(&b);
    make_html(&b, bytes / 10);
    bench("html (one page)", "page.html", b.data, b.len, runs);
    cairn_buf_reset(&b);
    make_pdf(&b, (int)(mb * 10));
    bench("pdf (generated)", "doc.pdf", b.data, b.len, runs);
    cairn_buf_free(&b);

    const char *shared = cairn_test_shared_dir();
    const char *sets[] = {"cranfield", "npl", "time"};
    for (size_t i = 0; shared && i < CAIRN_ARRAY_LEN(sets); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/data/ir/%s/corpus.jsonl", shared, sets[i]);
        char *data;
        size_t len;
        if (cairn_file_read_all(path, (size_t)1 << 30, &data, &len) != CAIRN_OK)
            continue;
        char label[64];
        snprintf(label, sizeof label, "jsonl %s", sets[i]);
        bench(label, path, data, len, runs);
        cairn_free(data);
    }
    return 0;
}
