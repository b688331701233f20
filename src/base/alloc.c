/* alloc.c — the one allocator, with fault injection for tests. */
#include "base.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* -1: no injection. Otherwise the number of allocations that still succeed. */
static _Atomic long fail_countdown = -1;
static _Atomic bool fail_sticky = false;
static _Atomic long injected = 0;

void cairn_alloc_fail_after(long n, bool sticky)
{
    atomic_store(&fail_sticky, sticky);
    atomic_store(&injected, 0);
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

long cairn_alloc_injected_failures(void) { return atomic_load(&injected); }

static bool should_fail(void)
{
    long c = atomic_load(&fail_countdown);
    if (CAIRN_LIKELY(c < 0))
        return false;
    for (;;) {
        if (c == 0) {
            if (!atomic_load(&fail_sticky))
                atomic_store(&fail_countdown, -1);
            atomic_fetch_add(&injected, 1);
            return true;
        }
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return false;
        if (c < 0)
            return false;
    }
}

void *cairn_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cairn_calloc(size_t count, size_t size)
{
    size_t total;
    if (!cairn_mul_ok(count, size, &total) || should_fail())
        return NULL;
    return calloc(total ? count : 1, total ? size : 1);
}

void *cairn_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *cairn_reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (!cairn_mul_ok(count, size, &total))
        return NULL;
    return cairn_realloc(p, total);
}

char *cairn_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = cairn_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *cairn_strdup(const char *s) { return cairn_strndup(s, SIZE_MAX); }

void cairn_free(void *p) { free(p); }

void *cairn_malloc_aligned(size_t n, size_t alignment)
{
    void *p = NULL;
    if (should_fail())
        return NULL;
    if (posix_memalign(&p, alignment, n ? n : alignment) != 0)
        return NULL;
    return p;
}

void cairn_free_aligned(void *p) { free(p); }
