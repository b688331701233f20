/* lock.c — one writer at a time per store.
 *
 * Writers (add, rm, sync, each round of watch, repair) hold an exclusive
 * flock(2) on STORE_DIR/writer.lock for as long as they write; readers
 * (search, status, check) never take it, and SQLite's WAL keeps them
 * reading the last committed state meanwhile. flock is released by the
 * kernel when the holder dies (SIGKILL included), so a crash never leaves
 * the store locked. After acquiring, the holder writes who it is into the
 * file, so a refused writer can say whom it waits for:
 *
 *   pid 1234
 *   what cairn add
 *   since_ns 1765152000000000000
 *
 * The contents are advisory text (at most 256 bytes read); the lock is the
 * flock alone. */
#include "store/store_int.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define LOCK_NAME "writer.lock"

/* "pid N (cairn add, since 2026-12-08T00:20:01Z)" from the holder's note. */
static void describe_holder(int fd, char *out, size_t n)
{
    char buf[257];
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    buf[r > 0 ? r : 0] = 0;
    long pid = 0;
    long long since = 0;
    char what[128] = "";
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (!strncmp(line, "pid ", 4))
            pid = strtol(line + 4, NULL, 10);
        else if (!strncmp(line, "what ", 5))
            snprintf(what, sizeof what, "%s", line + 5);
        else if (!strncmp(line, "since_ns ", 9))
            since = strtoll(line + 9, NULL, 10);
    }
    if (!pid) {
        snprintf(out, n, "another cairn process is writing it");
        return;
    }
    char when[40] = "?";
    if (since > 0) {
        time_t t = (time_t)(since / 1000000000LL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    snprintf(out, n, "pid %ld, %s since %s", pid, what[0] ? what : "a cairn writer", when);
}

cairn_status store_lock_dir(const char *dir, const char *what, bool wait, int *out_fd)
{
    *out_fd = -1;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME) >= (int)sizeof path)
        return cairn_fail(CAIRN_ERR_INVALID, "%s: path too long", dir);
    int fd = cairn_io_open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fd == 0) {   /* 0 means "none" in struct store: move it */
        int f2 = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        if (f2 < 0)
            return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        fd = f2;
    }
    while (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
        if (errno == EINTR && wait)
            continue;
        int e = errno;
        if (e == EWOULDBLOCK) {
            char who[256];
            describe_holder(fd, who, sizeof who);
            close(fd);
            return cairn_fail(CAIRN_ERR_BUSY, "store is busy (%s)", who);
        }
        close(fd);
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot lock: %s", path, strerror(e));
    }
    /* Who holds it, for the message of the next writer (best effort: a
     * full disk must not stop a writer that then fails cleanly anyway). */
    char note[256];
    int len = snprintf(note, sizeof note, "pid %ld\nwhat %.100s\nsince_ns %lld\n", (long)getpid(), what ? what : "",
                       (long long)cairn_now_ns());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, note, (size_t)len, 0) < 0) {
        /* ignored: advisory */
    }
    *out_fd = fd;
    return CAIRN_OK;
}

cairn_status store_lock_writer(store *s, const char *what, bool wait)
{
    if (s->lock_fd > 0)
        return CAIRN_OK;
    int fd;
    CAIRN_TRY(store_lock_dir(s->dir, what, wait, &fd));
    s->lock_fd = fd;
    return CAIRN_OK;
}

void store_adopt_lock(store *s, int fd)
{
    store_unlock_writer(s);
    s->lock_fd = fd > 0 ? fd : 0;
}

void store_unlock_writer(store *s)
{
    if (s->lock_fd <= 0)
        return;
    /* Leave the note: clearing it would race with the next holder's. */
    close(s->lock_fd);   /* releases the flock */
    s->lock_fd = 0;
}

bool store_is_locked(const store *s) { return s->lock_fd > 0; }
