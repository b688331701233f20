/* file.c — whole-file reads with a cap, atomic writes, /proc fields. */
#include "base.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

cairn_status cairn_file_read_all(const char *path, size_t limit, char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(sb.st_mode)) {
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: is a directory", path);
    }
    if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > limit) {
        close(fd);
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: %lld bytes exceeds the size cap of %zu bytes",
                          path, (long long)sb.st_size, limit);
    }
    cairn_buf b;
    cairn_buf_init(&b, limit);
    cairn_status st = cairn_buf_reserve(&b, S_ISREG(sb.st_mode) ? (size_t)sb.st_size : 4096);
    while (st == CAIRN_OK) {
        if (b.cap - b.len < 2)
            st = cairn_buf_reserve(&b, 65536 < limit - b.len ? 65536 : limit - b.len + 1);
        if (st != CAIRN_OK)
            break;
        ssize_t r = read(fd, b.data + b.len, b.cap - b.len - 1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = cairn_fail(CAIRN_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
        if (b.len > limit)
            st = cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: exceeds the size cap of %zu bytes", path, limit);
    }
    close(fd);
    if (st != CAIRN_OK) {
        if (st == CAIRN_ERR_TOO_LARGE)
            cairn_fail(st, "%s: exceeds the size cap of %zu bytes", path, limit);
        cairn_buf_free(&b);
        return st;
    }
    if (!b.data && cairn_buf_reserve(&b, 0) != CAIRN_OK)
        return CAIRN_ERR_NOMEM;
    b.data[b.len] = 0;
    if (len)
        *len = b.len;
    *out = b.data;
    return CAIRN_OK;
}

cairn_status cairn_file_write_atomic(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", path);
    int fd = cairn_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = cairn_io_write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            unlink(tmp);
            return cairn_fail(CAIRN_ERR_IO, "%s: write failed: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    int synced = cairn_io_fsync(fd), se = errno;
    int closed = close(fd), ce = errno;
    if (synced != 0 || closed != 0) {
        int e = synced != 0 ? se : ce;
        unlink(tmp);
        return cairn_fail(CAIRN_ERR_IO, "%s: fsync failed: %s", tmp, strerror(e));
    }
    if (cairn_io_rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cairn_fail(CAIRN_ERR_IO, "%s: rename failed: %s", path, strerror(e));
    }
    return CAIRN_OK;
}

cairn_status cairn_file_open_regular(const char *path, int *fd, uint64_t *size)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (*fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(*fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        int e = errno;
        bool reg = S_ISREG(sb.st_mode);
        close(*fd);
        *fd = -1;
        return reg ? cairn_fail(CAIRN_ERR_IO, "cannot stat: %s", strerror(e))
                   : cairn_fail(CAIRN_ERR_UNSUPPORTED, "not a regular file");
    }
    *size = (uint64_t)sb.st_size;
    return CAIRN_OK;
}

cairn_status cairn_file_hash128_hex(const char *path, uint64_t limit, char out[33], uint64_t *len)
{
    out[0] = 0;
    if (len)
        *len = 0;
    int fd;
    uint64_t size;
    cairn_status ost = cairn_file_open_regular(path, &fd, &size);
    if (ost != CAIRN_OK)
        return ost == CAIRN_ERR_UNSUPPORTED ? cairn_fail(CAIRN_ERR_IO, "not a regular file") : ost;
    if (size > limit) {
        close(fd);
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%llu bytes exceeds the size cap of %llu bytes",
                          (unsigned long long)size, (unsigned long long)limit);
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    enum { PIECE = 1 << 20 };
    char *buf = cairn_malloc(PIECE);
    if (!buf) {
        close(fd);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    XXH3_state_t h;
    XXH3_128bits_reset(&h);
    uint64_t total = 0;
    cairn_status st = CAIRN_OK;
    for (;;) {
        ssize_t r = read(fd, buf, PIECE);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            st = cairn_fail(CAIRN_ERR_IO, "read failed: %s", strerror(errno));
            break;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        if (total > limit) {
            st = cairn_fail(CAIRN_ERR_TOO_LARGE, "exceeds the size cap of %llu bytes", (unsigned long long)limit);
            break;
        }
        XXH3_128bits_update(&h, buf, (size_t)r);
    }
    cairn_free(buf);
    close(fd);
    if (st != CAIRN_OK)
        return st;
    XXH128_hash_t d = XXH3_128bits_digest(&h);
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)d.high64, (unsigned long long)d.low64);
    if (len)
        *len = total;
    return CAIRN_OK;
}

bool cairn_proc_kb(const char *path, const char *key, uint64_t *bytes)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[256];
    size_t klen = strlen(key);
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            *bytes = (uint64_t)strtoull(line + klen + 1, NULL, 10) << 10;
            found = true;
        }
    fclose(f);
    return found;
}

uint64_t cairn_smaps_bytes(const void *p, size_t n, const char *field)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return 0;
    char line[256];
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    size_t flen = strlen(field);
    uint64_t total = 0;
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char *dash = strchr(line, '-'), *sp = strchr(line, ' ');
        if (dash && sp && dash < sp && sscanf(line, "%lx-%lx ", &a, &b) == 2)
            in = a < hi && b > lo;   /* a mapping's header line */
        else if (in && !strncmp(line, field, flen) && line[flen] == ':')
            total += (uint64_t)strtoull(line + flen + 1, NULL, 10) << 10;
    }
    fclose(f);
    return total;
}
