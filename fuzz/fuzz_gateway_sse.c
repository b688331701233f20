/* fuzz_gateway_sse.c — libFuzzer harness for the gateway's text/event-stream
 * parser (src/gateway/gw_sse.c), the part that reads an upstream's stream.
 * The first byte picks how the input is cut into pieces; invariants: the
 * events (count and bytes) do not depend on the cuts, no event is longer
 * than the cap, and a cap hit is an error, never an overread. gw_sse.c is
 * compiled in (the gateway part needs libcurl and the rag part, which the
 * fuzz library does not build). */
#include "../src/gateway/gw_sse.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct acc {
    uint64_t hash;
    size_t events, bytes, max;
} acc;

static cairn_status on_event(void *ctx, const char *d, size_t n)
{
    acc *a = ctx;
    if (n > a->max)
        abort();    /* the cap was not kept */
    a->events++;
    a->bytes += n;
    a->hash = a->hash * 1000003u ^ cairn_hash64(d, n);
    return CAIRN_OK;
}

static cairn_status run(const uint8_t *d, size_t n, size_t cut, acc *a)
{
    gw_sse p;
    gw_sse_init(&p, 256, on_event, a);
    cairn_status st = CAIRN_OK;
    for (size_t i = 0; i < n && st == CAIRN_OK;) {
        size_t k = cut ? CAIRN_MIN(cut, n - i) : n - i;
        char *piece = cairn_malloc(k ? k : 1);   /* exactly sized: ASan sees overreads */
        if (!piece)
            break;
        memcpy(piece, d + i, k);
        st = gw_sse_feed(&p, piece, k);
        cairn_free(piece);
        i += k;
    }
    gw_sse_free(&p);
    return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t cut = 1 + data[0] % 17;
    acc a = {0, 0, 0, 256}, b = {0, 0, 0, 256};
    cairn_status s1 = run(data + 1, size - 1, 0, &a);
    cairn_status s2 = run(data + 1, size - 1, cut, &b);
    /* the same events up to the first error; both fail or neither */
    if ((s1 == CAIRN_OK) != (s2 == CAIRN_OK))
        abort();
    if (s1 == CAIRN_OK && (a.events != b.events || a.bytes != b.bytes || a.hash != b.hash))
        abort();
    return 0;
}
