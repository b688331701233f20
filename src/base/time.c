/* time.c — clocks and duration parsing. */
#include "base.h"
#include <ctype.h>
#include <time.h>

int64_t cairn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cairn_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

cairn_status cairn_parse_duration(const char *s, int64_t *seconds)
{
    int64_t total = 0;
    const char *p = s;
    if (!*p)
        return cairn_fail(CAIRN_ERR_INVALID, "empty duration");
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return cairn_fail(CAIRN_ERR_INVALID, "bad duration '%s': expected a number at offset %d", s, (int)(p - s));
        int64_t v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v > INT64_MAX / 10 - 10)
                return cairn_fail(CAIRN_ERR_INVALID, "duration '%s' is too large", s);
            v = v * 10 + (*p++ - '0');
        }
        int64_t unit;
        switch (*p) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        case 'w': unit = 7 * 86400; break;
        case 'y': unit = 365 * 86400; break;
        default:
            return cairn_fail(CAIRN_ERR_INVALID, "bad duration '%s': unit must be one of s m h d w y at offset %d", s, (int)(p - s));
        }
        p++;
        if (v > INT64_MAX / unit || total > INT64_MAX - v * unit)
            return cairn_fail(CAIRN_ERR_INVALID, "duration '%s' is too large", s);
        total += v * unit;
    }
    *seconds = total;
    return CAIRN_OK;
}
