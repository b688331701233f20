/*
 * t.h — the tiny test harness. A test file defines TESTS with T(name) cases:
 *
 *   static void test_foo(void) { CHECK(1 + 1 == 2); CHECK_EQ_INT(f(), 3); }
 *   int main(void) { RUN(test_foo); return t_done(); }
 *
 * SKIP_ALL("reason") exits 77 (ctest reports it as skipped).
 */
#ifndef CAIRN_T_H
#define CAIRN_T_H

#include "base/base.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int t_failures, t_checks, t_cases;
static const char *t_current = "";

#define CHECK(cond) do { t_checks++; if (!(cond)) { t_failures++; \
    fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__, t_current, #cond); } } while (0)
#define CHECKF(cond, ...) do { t_checks++; if (!(cond)) { t_failures++; \
    fprintf(stderr, "%s:%d: [%s] CHECK failed: %s: ", __FILE__, __LINE__, t_current, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); t_checks++; if (a_ != b_) { t_failures++; \
    fprintf(stderr, "%s:%d: [%s] %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, t_current, #a, #b, a_, b_); } } while (0)
#define CHECK_EQ_STR(a, b) do { const char *a_ = (a), *b_ = (b); t_checks++; if (!a_ || !b_ || strcmp(a_, b_) != 0) { t_failures++; \
    fprintf(stderr, "%s:%d: [%s] %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, t_current, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); } } while (0)
#define CHECK_NEAR(a, b, tol) do { double a_ = (a), b_ = (b); t_checks++; if (!(fabs(a_ - b_) <= (tol))) { t_failures++; \
    fprintf(stderr, "%s:%d: [%s] |%s - %s| <= %g failed: %g vs %g\n", __FILE__, __LINE__, t_current, #a, #b, (double)(tol), a_, b_); } } while (0)
#define CHECK_OK(expr) do { cairn_status s_ = (expr); t_checks++; if (s_ != CAIRN_OK) { t_failures++; \
    fprintf(stderr, "%s:%d: [%s] %s failed: %s (%s)\n", __FILE__, __LINE__, t_current, #expr, cairn_status_str(s_), cairn_last_error()); } } while (0)

#define RUN(fn) do { t_current = #fn; t_cases++; int f0_ = t_failures; fn(); \
    fprintf(stderr, "%s %s\n", t_failures == f0_ ? "ok  " : "FAIL", #fn); } while (0)
#define SKIP_ALL(...) do { fprintf(stderr, "SKIP: "); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); exit(77); } while (0)

static inline int t_done(void)
{
    fprintf(stderr, "%d cases, %d checks, %d failures\n", t_cases, t_checks, t_failures);
    return t_failures ? 1 : 0;
}

/* A fresh empty directory under $CAIRN_TEST_TMP (or /tmp) for this test. */
static inline const char *t_tmpdir(const char *name)
{
    static char path[1024];
    const char *base = getenv("CAIRN_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    char cmd[2200];
    snprintf(path, sizeof path, "%s/%s.%d", base, name, (int)getpid());
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) { fprintf(stderr, "cannot make %s\n", path); exit(1); }
    return path;
}
#endif
