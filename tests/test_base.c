/* test_base.c — allocation fault injection, buffers, durations, files. */
#include "t.h"
#include <sys/mman.h>

static void test_alloc_injection(void)
{
    cairn_alloc_fail_after(2, false);
    void *a = cairn_malloc(8), *b = cairn_malloc(8), *c = cairn_malloc(8), *d = cairn_malloc(8);
    CHECK(a && b && !c && d);
    CHECK_EQ_INT(cairn_alloc_injected_failures(), 1);
    cairn_free(a); cairn_free(b); cairn_free(d);
    cairn_alloc_fail_after(-1, false);
    CHECK(cairn_calloc(SIZE_MAX / 2, 4) == NULL); /* overflow */
}

static void test_buf_cap(void)
{
    cairn_buf b;
    cairn_buf_init(&b, 10);
    CHECK_OK(cairn_buf_puts(&b, "hello"));
    CHECK_OK(cairn_buf_printf(&b, "%d", 1234));
    CHECK_EQ_STR(b.data, "hello1234");
    CHECK(cairn_buf_puts(&b, "xy") == CAIRN_ERR_TOO_LARGE);
    CHECK_EQ_STR(b.data, "hello1234");
    cairn_buf_free(&b);
    /* every allocation failure leaves the buffer unchanged */
    for (long n = 0; n < 4; n++) {
        cairn_buf_init(&b, 0);
        cairn_alloc_fail_after(n, true);
        cairn_status st = CAIRN_OK;
        for (int i = 0; i < 100 && st == CAIRN_OK; i++)
            st = cairn_buf_puts(&b, "0123456789");
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_ERR_NOMEM);
        CHECK(b.len % 10 == 0);
        cairn_buf_free(&b);
    }
}

static void test_duration(void)
{
    int64_t s;
    CHECK_OK(cairn_parse_duration("7d", &s)); CHECK_EQ_INT(s, 7 * 86400);
    CHECK_OK(cairn_parse_duration("1h30m", &s)); CHECK_EQ_INT(s, 5400);
    CHECK(cairn_parse_duration("", &s) == CAIRN_ERR_INVALID);
    CHECK(cairn_parse_duration("5x", &s) == CAIRN_ERR_INVALID);
    CHECK(cairn_parse_duration("d", &s) == CAIRN_ERR_INVALID);
    CHECK(cairn_parse_duration("99999999999999999999s", &s) == CAIRN_ERR_INVALID);
}

static void test_files(void)
{
    const char *dir = t_tmpdir("base_files");
    char path[1100];
    snprintf(path, sizeof path, "%s/f.txt", dir);
    CHECK_OK(cairn_file_write_atomic(path, "abcdef", 6));
    char *data; size_t len;
    CHECK_OK(cairn_file_read_all(path, 100, &data, &len));
    CHECK_EQ_INT(len, 6);
    CHECK_EQ_STR(data, "abcdef");
    cairn_free(data);
    CHECK(cairn_file_read_all(path, 5, &data, &len) == CAIRN_ERR_TOO_LARGE);
    CHECK(strstr(cairn_last_error(), "size cap") != NULL);
    CHECK(cairn_file_read_all(dir, 100, &data, &len) == CAIRN_ERR_IO);
    snprintf(path, sizeof path, "%s/missing", dir);
    CHECK(cairn_file_read_all(path, 100, &data, &len) == CAIRN_ERR_IO);
}

static void test_hash(void)
{
    char a[33], b[33];
    cairn_hash128_hex("abc", 3, a);
    cairn_hash128_hex("abd", 3, b);
    CHECK_EQ_INT(strlen(a), 32);
    CHECK(strcmp(a, b) != 0);
    CHECK(cairn_hash64("abc", 3) == cairn_hash64("abc", 3));
}

/* /proc readers: a known key, a missing one, and smaps over a mapping we
 * fill ourselves. */
static void test_proc(void)
{
    uint64_t b = 0;
    CHECK(cairn_proc_kb("/proc/self/status", "VmRSS", &b) && b > 0);
    CHECK(!cairn_proc_kb("/proc/self/status", "NoSuchKey", &b));
    CHECK(!cairn_proc_kb("/nonexistent/status", "VmRSS", &b));
    size_t n = (size_t)8 << 20;
    uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    if (p == MAP_FAILED)
        return;
    CHECK(cairn_smaps_bytes(p, n, "Rss") < n);
    memset(p, 1, n);
    CHECK(cairn_smaps_bytes(p, n, "Rss") >= n);
    CHECK(cairn_smaps_bytes(p, n, "NoSuchField") == 0);
    munmap(p, n);
}

int main(void)
{
    RUN(test_alloc_injection);
    RUN(test_buf_cap);
    RUN(test_duration);
    RUN(test_files);
    RUN(test_hash);
    RUN(test_proc);
    return t_done();
}
