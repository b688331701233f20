/*
 * base.h — allocation, error reporting, logging and small helpers used by
 * every part of cairn.
 *
 * Allocation: all heap memory goes through cairn_malloc & co so tests can make
 * the Nth allocation fail (cairn_alloc_fail_after) and prove every failure
 * path is clean.
 *
 * Errors: library code never prints and never exits. It returns a status and
 * records a detail with cairn_fail(), which the CLI prints. The detail is
 * per thread.
 */
#ifndef CAIRN_BASE_H
#define CAIRN_BASE_H

#include "cairn.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CAIRN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CAIRN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CAIRN_MAX(a, b) ((a) > (b) ? (a) : (b))

#if defined(__GNUC__)
#define CAIRN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define CAIRN_LIKELY(x) __builtin_expect(!!(x), 1)
#define CAIRN_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define CAIRN_PRINTF(f, a)
#define CAIRN_LIKELY(x) (x)
#define CAIRN_UNLIKELY(x) (x)
#endif

/* ---- allocation (alloc.c) ---- */
void *cairn_malloc(size_t n);
void *cairn_calloc(size_t count, size_t size);   /* overflow-checked */
void *cairn_realloc(void *p, size_t n);
void *cairn_reallocarray(void *p, size_t count, size_t size); /* overflow-checked */
char *cairn_strdup(const char *s);
char *cairn_strndup(const char *s, size_t n);
void cairn_free(void *p);
/* Aligned allocation (alignment a power of two >= sizeof(void*)); free with cairn_free_aligned. */
void *cairn_malloc_aligned(size_t n, size_t alignment);
void cairn_free_aligned(void *p);

/* Fault injection for tests: the (n+1)-th allocation from now fails, and
 * every one after it too when `sticky`. n < 0 disables. */
void cairn_alloc_fail_after(long n, bool sticky);
/* Number of allocations that failed by injection since the last reset. */
long cairn_alloc_injected_failures(void);

/* ---- I/O fault injection (iofault.c; the rules are at its top) ----
 * The (n+1)-th write-side I/O call from now fails with `err` (ENOSPC when
 * 0), and every later one too when `sticky`; n < 0 disarms. Also armed by
 * CAIRN_IO_FAIL_AFTER=N[:sticky][:eio] in the environment. */
void cairn_io_fail_after(long n, bool sticky, int err);
long cairn_io_points(void);     /* fault points passed since arming */
long cairn_io_injected(void);   /* failures injected since arming */
bool cairn_io_armed(void);      /* armed or counting (the SQLite shim is installed) */
/* One fault point: true (errno set) when this call must fail. */
bool cairn_io_fault(void);
/* The calls cairn makes on its own files, each a fault point. */
int cairn_io_open(const char *path, int flags, int mode);
long cairn_io_write(int fd, const void *p, size_t n);
long cairn_io_pwrite(int fd, const void *p, size_t n, int64_t off);
int cairn_io_fsync(int fd);
int cairn_io_rename(const char *from, const char *to);
int cairn_io_ftruncate(int fd, int64_t len);
void *cairn_io_mmap(size_t len, int prot, int flags, int fd);   /* MAP_FAILED on failure */

/* Checked size arithmetic: return false on overflow. */
static inline bool cairn_add_ok(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool cairn_mul_ok(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }

/* ---- errors (error.c) ---- */
/* Record a detail message for status `st` and return `st`:
 *     return cairn_fail(CAIRN_ERR_CORRUPT, "%s: tensor %s out of bounds", path, name); */
cairn_status cairn_fail(cairn_status st, const char *fmt, ...) CAIRN_PRINTF(2, 3);
/* Prefix the current detail with more context ("adding foo.pdf: <old detail>"). */
cairn_status cairn_fail_wrap(cairn_status st, const char *fmt, ...) CAIRN_PRINTF(2, 3);
void cairn_clear_error(void);

/* Propagate a failing status: CAIRN_TRY(expr); */
#define CAIRN_TRY(expr) do { cairn_status st_ = (expr); if (st_ != CAIRN_OK) return st_; } while (0)

/* ---- logging (log.c) ---- */
typedef enum { CAIRN_LOG_DEBUG, CAIRN_LOG_INFO, CAIRN_LOG_WARN, CAIRN_LOG_ERROR, CAIRN_LOG_QUIET } cairn_log_level;
void cairn_log_set_level(cairn_log_level lvl);
cairn_log_level cairn_log_get_level(void);
void cairn_log(cairn_log_level lvl, const char *fmt, ...) CAIRN_PRINTF(2, 3);
#define CAIRN_DEBUG(...) cairn_log(CAIRN_LOG_DEBUG, __VA_ARGS__)
#define CAIRN_INFO(...) cairn_log(CAIRN_LOG_INFO, __VA_ARGS__)
#define CAIRN_WARN(...) cairn_log(CAIRN_LOG_WARN, __VA_ARGS__)

/* ---- growable byte buffer with a hard cap (buf.c) ---- */
typedef struct cairn_buf {
    char *data;     /* always NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;     /* allocated bytes */
    size_t limit;   /* hard cap on len; 0 = SIZE_MAX/2 */
} cairn_buf;
void cairn_buf_init(cairn_buf *b, size_t limit);
void cairn_buf_free(cairn_buf *b);
void cairn_buf_reset(cairn_buf *b);
cairn_status cairn_buf_reserve(cairn_buf *b, size_t extra);
cairn_status cairn_buf_append(cairn_buf *b, const void *p, size_t n);
cairn_status cairn_buf_puts(cairn_buf *b, const char *s);
cairn_status cairn_buf_putc(cairn_buf *b, char c);
cairn_status cairn_buf_printf(cairn_buf *b, const char *fmt, ...) CAIRN_PRINTF(2, 3);
/* Hand the data to the caller (who frees it with cairn_free); b becomes empty. */
char *cairn_buf_take(cairn_buf *b);

/* ---- files (file.c) ---- */
/* Read a whole file, capped at `limit` bytes (CAIRN_ERR_TOO_LARGE beyond). NUL-terminated. */
cairn_status cairn_file_read_all(const char *path, size_t limit, char **out, size_t *len);
/* Content hash of a file (as cairn_hash128_hex of its bytes), read in 1 MiB
 * pieces: memory does not grow with the file. Files over `limit` bytes:
 * CAIRN_ERR_TOO_LARGE. *len (optional) = bytes hashed. Messages do not
 * repeat the path (callers name the file). */
cairn_status cairn_file_hash128_hex(const char *path, uint64_t limit, char out[33], uint64_t *len);
/* Open a regular file for reading (*fd, and its size): CAIRN_ERR_IO when it
 * cannot be opened or stat'ed, CAIRN_ERR_UNSUPPORTED when it is not a
 * regular file (the fd is closed on any failure). */
cairn_status cairn_file_open_regular(const char *path, int *fd, uint64_t *size);
/* Write atomically: temp file in the same directory, fsync, rename. */
cairn_status cairn_file_write_atomic(const char *path, const void *data, size_t len);
/* Bytes of a "Key:   N kB" line of a /proc file (/proc/meminfo
 * "MemAvailable", /proc/self/status "VmHWM"); false when absent. */
bool cairn_proc_kb(const char *path, const char *key, uint64_t *bytes);
/* Sum of one /proc/self/smaps field ("Rss", "AnonHugePages",
 * "FilePmdMapped") over the mappings overlapping [p, p + n), in bytes;
 * 0 when unknown. */
uint64_t cairn_smaps_bytes(const void *p, size_t n, const char *field);

/* ---- time (time.c) ---- */
int64_t cairn_now_ns(void);        /* CLOCK_REALTIME */
int64_t cairn_mono_ns(void);       /* CLOCK_MONOTONIC */
/* Parse "7d", "12h", "30m", "45s", "2w", "1h30m" into seconds. */
cairn_status cairn_parse_duration(const char *s, int64_t *seconds);

/* ---- hashing (hash.c; xxHash XXH3) ---- */
uint64_t cairn_hash64(const void *p, size_t n);
/* 128-bit content hash as 32 lowercase hex chars + NUL. */
void cairn_hash128_hex(const void *p, size_t n, char out[33]);

/* ---- tests ---- */
/* Directory with shared test assets: $CAIRN_TEST_SHARED, else
 * $CAIRN_TEST_SHARED_DEFAULT, else "../shared"; NULL if absent. */
const char *cairn_test_shared_dir(void);

#endif
