/* fuzz_formats.c — libFuzzer harness for the formats added after
 * fuzz_parsers.c: compressed single files (decompress.c, through
 * ingest_buffer so the inner detection runs too), manual pages (man.c)
 * and the container formats (docx/pptx/xlsx/odt/odp/ods/epub, rtf) as they
 * are added. The first input byte picks the path (and so the parser); the
 * rest is the file. Every emitted document is walked so ASan sees any bad
 * block or metadata. */
#include "ingest/ingest.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cairn_status touch(void *ctx, ingest_doc *d)
{
    volatile size_t *sum = ctx;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const ingest_block *b = &d->blocks[i];
        *sum += b->len + (size_t)b->kind + (size_t)b->page;
        if (strlen(b->text) != b->len)
            __builtin_trap();
    }
    *sum += d->key ? strlen(d->key) : 0;
    *sum += d->title ? strlen(d->title) : 0;
    for (size_t i = 0; i < d->meta.n; i++) {
        const meta_value *v = &d->meta.e[i].v;
        *sum += strlen(d->meta.e[i].key) + (v->s ? strlen(v->s) : 0);
        for (size_t k = 0; k < v->n_items; k++)
            *sum += strlen(v->items[k]);
    }
    return CAIRN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const paths[] = {
        "f.1", "f.txt.gz", "f.md.bz2", "f.jsonl.xz", "f.1.zst", "f.docx", "f.pptx", "f.xlsx",
        "f.odt", "f.odp", "f.ods", "f.epub", "f.rtf", "f.txt",
    };
    if (size < 1)
        return 0;
    const char *path = paths[data[0] % (sizeof paths / sizeof *paths)];
    data++;
    size--;
    char *buf = cairn_malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    ingest_options o;
    ingest_options_default(&o);
    o.max_file_bytes = 8u << 20;   /* keep bombs cheap for the fuzzer */
    cairn_log_set_level(CAIRN_LOG_QUIET);
    volatile size_t sum = 0;
    (void)ingest_buffer(path, buf, size, &o, touch, (void *)&sum);
    cairn_free(buf);
    return 0;
}
