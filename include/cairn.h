/*
 * cairn.h — the one public C API of cairn.
 *
 * Opaque handles with create/free pairs; every fallible call returns a
 * cairn_status. A human-readable detail for the last failure on the calling
 * thread is available from cairn_last_error().
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CAIRN_VERSION "0.1.0"

typedef enum cairn_status {
    CAIRN_OK = 0,
    CAIRN_ERR_NOMEM,        /* allocation failed */
    CAIRN_ERR_IO,           /* a read/write/open/fsync failed */
    CAIRN_ERR_CORRUPT,      /* data read from a file/socket is malformed */
    CAIRN_ERR_INVALID,      /* bad argument or user input (filter, flag, request) */
    CAIRN_ERR_UNSUPPORTED,  /* valid but not supported (type, architecture, format) */
    CAIRN_ERR_NOT_FOUND,    /* a named thing does not exist */
    CAIRN_ERR_TOO_LARGE,    /* a hard cap was hit */
    CAIRN_ERR_VERSION,      /* written by a newer version of cairn */
    CAIRN_ERR_BUSY,         /* locked by another process */
    CAIRN_ERR_INTERRUPTED,  /* stopped by a signal or callback */
    CAIRN_ERR_INTERNAL      /* a bug: an internal invariant failed */
} cairn_status;

/* Static string naming a status ("out of memory", "corrupt input", ...). */
const char *cairn_status_str(cairn_status st);

/* Detail message for the last failure on this thread ("" if none). */
const char *cairn_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
