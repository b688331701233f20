/* error.c — status names and the per-thread detail message. */
#include "base.h"
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *cairn_status_str(cairn_status st)
{
    switch (st) {
    case CAIRN_OK: return "ok";
    case CAIRN_ERR_NOMEM: return "out of memory";
    case CAIRN_ERR_IO: return "I/O error";
    case CAIRN_ERR_CORRUPT: return "corrupt input";
    case CAIRN_ERR_INVALID: return "invalid input";
    case CAIRN_ERR_UNSUPPORTED: return "unsupported";
    case CAIRN_ERR_NOT_FOUND: return "not found";
    case CAIRN_ERR_TOO_LARGE: return "too large";
    case CAIRN_ERR_VERSION: return "newer version";
    case CAIRN_ERR_BUSY: return "busy";
    case CAIRN_ERR_INTERRUPTED: return "interrupted";
    case CAIRN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *cairn_last_error(void) { return last_error; }

void cairn_clear_error(void) { last_error[0] = 0; }

cairn_status cairn_fail(cairn_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

cairn_status cairn_fail_wrap(cairn_status st, const char *fmt, ...)
{
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    /* Truncation is acceptable for a diagnostic; build it piecewise so the
     * compiler can see the bounds. */
    const char *tail = old[0] ? old : cairn_status_str(st);
    size_t n = strlen(prefix);
    memcpy(last_error, prefix, n);
    size_t room = sizeof last_error - n - 1;
    size_t m = strlen(tail) + 2 < room ? strlen(tail) + 2 : room;
    memcpy(last_error + n, ": ", m < 2 ? m : 2);
    if (m > 2)
        memcpy(last_error + n + 2, tail, m - 2);
    last_error[n + m] = 0;
    return st;
}
