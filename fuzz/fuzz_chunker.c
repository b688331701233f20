/* fuzz_chunker.c — libFuzzer harness for the chunker (docs/chunking.md):
 * the input, parsed as markdown or plain text (first byte), is chunked with
 * small token budgets; every chunk must lie within the document's text, be
 * NUL-terminated at its length and keep its stable key. */
#include "chunk/chunk.h"
#include "ingest/ingest.h"
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz { chunk_options o; } fz;

static cairn_status on_doc(void *ctx, ingest_doc *d)
{
    fz *z = ctx;
    chunk_list cl = {0};
    if (chunk_doc(d, &z->o, &cl) == CAIRN_OK) {
        volatile size_t sum = 0;
        for (size_t i = 0; i < cl.n; i++) {
            const chunk *c = &cl.c[i];
            if (strlen(c->text) != c->len || c->ord != (int)i)
                __builtin_trap();
            sum += c->len + (size_t)c->ntokens + (size_t)(c->key & 0xff);
        }
        (void)sum;
    }
    chunk_list_free(&cl);
    return CAIRN_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 18))
        return 0;
    fz z;
    chunk_options_default(&z.o);
    z.o.max_tokens = CHUNK_MIN_TOKENS + data[0] % 64;
    z.o.overlap_tokens = data[0] % 4 ? z.o.max_tokens / (2 + data[0] % 4) : 0;
    ingest_options io;
    ingest_options_default(&io);
    char *buf = cairn_malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    ingest_buffer((data[0] & 0x80) ? "fuzz.md" : "fuzz.txt", buf, size - 1, &io, on_doc, &z);
    cairn_free(buf);
    return 0;
}
