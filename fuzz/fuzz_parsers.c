/* fuzz_parsers.c — libFuzzer harness for format detection and the HTML,
 * JSON, JSONL, CSV and PDF parsers (see docs/formats.md). The first input
 * byte picks the parser and options; the rest is the file. Every emitted
 * document is walked so ASan sees any bad block or metadata. */
#include "ingest/ingest.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static cairn_status touch(void *ctx, ingest_doc *d)
{
    volatile size_t *sum = ctx;
    for (size_t i = 0; i < d->n_blocks; i++) {
        const ingest_block *b = &d->blocks[i];
        *sum += b->len + (size_t)b->kind + (size_t)b->page;
        if (b->len)
            *sum += (uint8_t)b->text[b->len - 1];
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
    if (size < 1)
        return 0;
    unsigned sel = data[0];
    data++;
    size--;
    char *buf = cairn_malloc(size + 1); /* exactly sized, NUL-terminated as the contract says */
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    ingest_options o;
    ingest_options_default(&o);
    cairn_log_set_level(CAIRN_LOG_QUIET);
    volatile size_t sum = 0;
    const ingest_parser *p = NULL;
    const char *path = "fuzz";
    switch (sel % 8) {
    case 0: p = &ingest_parser_html; path = "f.html"; break;
    case 1: p = &ingest_parser_json; path = "f.json"; break;
    case 2: p = &ingest_parser_jsonl; path = "f.jsonl"; o.json_id_field = "k"; break;
    case 3: p = &ingest_parser_jsonl; path = "f.jsonl"; break;
    case 4: p = &ingest_parser_csv; path = "f.csv"; break;
    case 5: p = &ingest_parser_csv; path = "f.tsv"; o.csv_row_per_doc = false; o.csv_text_columns = "a,b"; break;
    case 6: p = &ingest_parser_pdf; path = "f.pdf"; break;
    default: break; /* detection, then whatever it picks */
    }
    if (p) {
        (void)p->parse(path, buf, size, &o, touch, (void *)&sum);
    } else {
        const char *why = NULL;
        (void)ingest_detect("fuzz", buf, size, &why);
        (void)ingest_buffer("fuzz", buf, size, &o, touch, (void *)&sum);
    }
    cairn_free(buf);
    return 0;
}
