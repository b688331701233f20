/* log.c — leveled logging to stderr (the CLI sets the level). */
#include "base.h"
#include <stdio.h>

static cairn_log_level log_level = CAIRN_LOG_WARN;

void cairn_log_set_level(cairn_log_level lvl) { log_level = lvl; }
cairn_log_level cairn_log_get_level(void) { return log_level; }

void cairn_log(cairn_log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error", ""};
    if (lvl < log_level || lvl >= CAIRN_LOG_QUIET)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cairn: %s: ", names[lvl]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
