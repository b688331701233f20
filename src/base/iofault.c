/* iofault.c — I/O fault injection, the I/O twin of the allocator's
 * cairn_alloc_fail_after (alloc.c).
 *
 * Every write-side I/O call cairn makes on its own files goes through the
 * cairn_io_* wrappers below (opens for writing, write/pwrite, fsync, rename,
 * ftruncate, mmap of index segments), and SQLite's through a VFS shim
 * (store/vfs_fault.c) that asks cairn_io_fault() before each xOpen, xWrite,
 * xSync and xTruncate. Each such call is one "fault point". Armed, the
 * (n+1)-th point from then on fails with `err` (ENOSPC: a full disk; EIO),
 * and with `sticky` every later one too (a disk that stays full).
 *
 * Tests arm it in-process with cairn_io_fail_after(), or for a whole
 * `cairn` run with the environment (read at the first fault point):
 *   CAIRN_IO_FAIL_AFTER=N[:sticky][:eio]   fail the (N+1)-th point
 *   CAIRN_IO_COUNT_FILE=PATH               at exit, write the number of
 *                                          points passed (to size a loop)
 * Disarmed, a fault point costs one relaxed atomic load. */
#include "base.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic long countdown = -1;    /* -1: disarmed */
static _Atomic bool sticky_mode = false;
static _Atomic int fail_errno = ENOSPC;
static _Atomic long points = 0, injected = 0;
static _Atomic bool counting = false;  /* count points even when disarmed */
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static char count_file[1024];

static void write_count(void)
{
    FILE *f = fopen(count_file, "w");
    if (f) {
        fprintf(f, "%ld\n", atomic_load(&points));
        fclose(f);
    }
}

static void read_env(void)
{
    const char *cf = getenv("CAIRN_IO_COUNT_FILE");
    if (cf && *cf && strlen(cf) < sizeof count_file) {
        snprintf(count_file, sizeof count_file, "%s", cf);
        atomic_store(&counting, true);
        atexit(write_count);
    }
    const char *v = getenv("CAIRN_IO_FAIL_AFTER");
    if (!v || !*v)
        return;
    char *end;
    long n = strtol(v, &end, 10);
    if (end == v || n < 0)
        return;
    atomic_store(&sticky_mode, strstr(end, "sticky") != NULL);
    atomic_store(&fail_errno, strstr(end, "eio") ? EIO : ENOSPC);
    atomic_store(&countdown, n);
}

void cairn_io_fail_after(long n, bool sticky, int err)
{
    pthread_once(&env_once, read_env);
    atomic_store(&sticky_mode, sticky);
    atomic_store(&fail_errno, err ? err : ENOSPC);
    atomic_store(&injected, 0);
    atomic_store(&points, 0);
    atomic_store(&countdown, n < 0 ? -1 : n);
}

long cairn_io_points(void) { return atomic_load(&points); }
long cairn_io_injected(void) { return atomic_load(&injected); }

bool cairn_io_armed(void)
{
    pthread_once(&env_once, read_env);
    return atomic_load(&countdown) >= 0 || atomic_load(&counting);
}

bool cairn_io_fault(void)
{
    pthread_once(&env_once, read_env);
    long c = atomic_load_explicit(&countdown, memory_order_relaxed);
    if (CAIRN_LIKELY(c < 0)) {
        if (atomic_load_explicit(&counting, memory_order_relaxed))
            atomic_fetch_add(&points, 1);
        return false;
    }
    atomic_fetch_add(&points, 1);
    for (;;) {
        if (c == 0) {
            if (!atomic_load(&sticky_mode))
                atomic_store(&countdown, -1);
            atomic_fetch_add(&injected, 1);
            errno = atomic_load(&fail_errno);
            return true;
        }
        if (atomic_compare_exchange_weak(&countdown, &c, c - 1))
            return false;
        if (c < 0)
            return false;
    }
}

int cairn_io_open(const char *path, int flags, int mode)
{
    /* only opens that may create or write are fault points */
    if ((flags & (O_WRONLY | O_RDWR | O_CREAT)) && cairn_io_fault())
        return -1;
    return open(path, flags, mode);
}

long cairn_io_write(int fd, const void *p, size_t n)
{
    if (cairn_io_fault())
        return -1;
    return write(fd, p, n);
}

long cairn_io_pwrite(int fd, const void *p, size_t n, int64_t off)
{
    if (cairn_io_fault())
        return -1;
    return pwrite(fd, p, n, (off_t)off);
}

int cairn_io_fsync(int fd)
{
    if (cairn_io_fault())
        return -1;
    return fsync(fd);
}

int cairn_io_rename(const char *from, const char *to)
{
    if (cairn_io_fault())
        return -1;
    return rename(from, to);
}

int cairn_io_ftruncate(int fd, int64_t len)
{
    if (cairn_io_fault())
        return -1;
    return ftruncate(fd, (off_t)len);
}

void *cairn_io_mmap(size_t len, int prot, int flags, int fd)
{
    if (cairn_io_fault())
        return MAP_FAILED;
    return mmap(NULL, len, prot, flags, fd, 0);
}
