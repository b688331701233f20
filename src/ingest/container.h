/*
 * container.h — what the Office Open XML, OpenDocument and EPUB parsers
 * share: reading members of a zip held in memory (libarchive) and walking
 * XML safely (libxml2's reader). Internal to src/ingest/. The structure
 * (paragraphs, headings, slides, sheets, chapters) is ours, in office.c.
 *
 * Zip caps (zip bombs): at most ZIP_MAX_ENTRIES entries are looked at; a
 * member kept in memory holds at most the file cap (ingest.max_file_mb),
 * and all kept members together at most that as well; past 16 MiB out, more
 * than 200 bytes out per compressed byte is refused (decompress.h's rule).
 * Over a cap: CAIRN_ERR_UNSUPPORTED with the reason ("zip bomb refused:
 * ..."), so the file is skipped and says why.
 *
 * XML (XXE-safe): parsed from memory with no network (XML_PARSE_NONET), no
 * DTD loading, no entity substitution; a document with a DOCTYPE is refused
 * outright (no OOXML/ODF/OPF part has one; an internal subset is where
 * entity bombs live), and the external entity loader refuses everything.
 * libxml2's own limits stay on (no XML_PARSE_HUGE: depth 256, 10 MB text
 * nodes). Errors are collected, never printed.
 */
#ifndef CAIRN_INGEST_CONTAINER_H
#define CAIRN_INGEST_CONTAINER_H

#include "ingest/ingest.h"

#define ZIP_MAX_ENTRIES 20000

typedef struct zip_member {
    char *name;
    char *data;     /* NUL-terminated */
    size_t len;
} zip_member;

typedef struct zip_members {
    zip_member *m;
    size_t n, cap;
    size_t entries;     /* entries in the zip (up to ZIP_MAX_ENTRIES) */
} zip_members;

/* Which members to keep: return true for the names wanted. */
typedef bool (*zip_want_fn)(void *ctx, const char *name);

/* Read the zip in data[0..len) and keep the members `want` says (all when
 * want is NULL), within the caps above (max_bytes = the file cap). Not a
 * zip: CAIRN_ERR_CORRUPT. */
cairn_status zip_read(const char *data, size_t len, uint64_t max_bytes, zip_want_fn want, void *ctx,
                      zip_members *out);
const zip_member *zip_find(const zip_members *z, const char *name);
void zip_members_free(zip_members *z);

/* ---- XML ---- */
typedef struct xr xr;

typedef enum { XR_END = 0, XR_START, XR_CLOSE, XR_TEXT } xr_kind;

/* Open an XML document in memory (not copied). `what` names it in errors
 * ("word/document.xml"). */
cairn_status xr_open(xr **out, const char *data, size_t len, const char *what);
/* Next node: XR_START (an element; xr_empty tells whether it closes at
 * once), XR_CLOSE, XR_TEXT (text, CDATA, significant whitespace), XR_END
 * at the end. CAIRN_ERR_CORRUPT for malformed XML or a DOCTYPE. */
cairn_status xr_next(xr *r, xr_kind *kind);
const char *xr_name(xr *r);         /* the element's local name (no prefix) */
const char *xr_ns(xr *r);           /* its namespace URI, or "" */
const char *xr_text(xr *r);         /* XR_TEXT: the text */
bool xr_empty(xr *r);               /* XR_START: <x/> */
int xr_depth(xr *r);
/* The value of the attribute with this local name (any namespace), or
 * NULL. Valid until the next xr_next. */
const char *xr_attr(xr *r, const char *local);
/* The same, only in a namespace whose URI contains ns_part ("" = no namespace). */
const char *xr_attr_ns(xr *r, const char *local, const char *ns_part);
void xr_close(xr *r);

/* Resolve a relative reference against the directory of `base` ("OEBPS/
 * content.opf" + "../Text/ch1.xhtml" -> "Text/ch1.xhtml"); %XX decoded,
 * fragment dropped. */
void container_resolve(const char *base, const char *ref, char *out, size_t cap);

#endif
