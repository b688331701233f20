#define _GNU_SOURCE /* memmem */
/* container.c — zip members (libarchive) and safe XML walking (libxml2's
 * xmlTextReader) for office.c; see container.h. */
#include "ingest/container.h"
#include "ingest/decompress.h"
#include "ingest/parse_common.h"
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* ---- zip ---- */
static cairn_status add_member(zip_members *z, const char *name, char *data, size_t len)
{
    if (z->n == z->cap) {
        size_t nc = z->cap ? z->cap * 2 : 16;
        zip_member *nm = cairn_reallocarray(z->m, nc, sizeof *nm);
        if (!nm)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        z->m = nm;
        z->cap = nc;
    }
    char *nmc = cairn_strdup(name);
    if (!nmc)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    z->m[z->n++] = (zip_member){nmc, data, len};
    return CAIRN_OK;
}

cairn_status zip_read(const char *data, size_t len, uint64_t max_bytes, zip_want_fn want, void *ctx,
                      zip_members *out)
{
    memset(out, 0, sizeof *out);
    struct archive *a = archive_read_new();
    if (!a)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory (libarchive)");
    cairn_status st = CAIRN_OK;
    if (archive_read_support_format_zip(a) != ARCHIVE_OK ||
        archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
        st = cairn_fail(CAIRN_ERR_CORRUPT, "not a readable zip container (%s)",
                        archive_error_string(a) ? archive_error_string(a) : "unknown");
        archive_read_free(a);
        return st;
    }
    uint64_t total = 0;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            st = cairn_fail(CAIRN_ERR_CORRUPT, "damaged zip container (%s)",
                            archive_error_string(a) ? archive_error_string(a) : "unreadable");
            break;
        }
        if (++out->entries > ZIP_MAX_ENTRIES) {
            st = cairn_fail(CAIRN_ERR_UNSUPPORTED, "zip bomb refused: more than %d entries", ZIP_MAX_ENTRIES);
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (!name || archive_entry_filetype(e) != AE_IFREG || (want && !want(ctx, name)))
            continue;
        /* read the member through the caps, whatever its header claims */
        size_t cap = 4096, n = 0;
        char *b = cairn_malloc(cap);
        if (!b) {
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            break;
        }
        for (;;) {
            if (cap - n < 65536 + 1) {
                size_t nc = cap * 2;
                while (nc - n < 65536 + 1)
                    nc *= 2;
                char *nb = cairn_realloc(b, nc);
                if (!nb) {
                    st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory reading %s", name);
                    break;
                }
                b = nb;
                cap = nc;
            }
            la_ssize_t got = archive_read_data(a, b + n, 65536);
            if (got < 0) {
                st = cairn_fail(CAIRN_ERR_CORRUPT, "damaged zip member %s (%s)", name,
                                archive_error_string(a) ? archive_error_string(a) : "unreadable");
                break;
            }
            if (got == 0)
                break;
            n += (size_t)got;
            total += (uint64_t)got;
            if (total > max_bytes) {
                st = cairn_fail(CAIRN_ERR_UNSUPPORTED,
                                "zip bomb refused: the members read uncompress to more than the size cap of %llu bytes (ingest.max_file_mb)",
                                (unsigned long long)max_bytes);
                break;
            }
            if (total > DECOMP_RATIO_AFTER && total > (uint64_t)DECOMP_MAX_RATIO * len) {
                st = cairn_fail(CAIRN_ERR_UNSUPPORTED,
                                "zip bomb refused: %zu bytes of zip gave more than %llu bytes (over %d:1)", len,
                                (unsigned long long)total, DECOMP_MAX_RATIO);
                break;
            }
        }
        if (st != CAIRN_OK) {
            cairn_free(b);
            break;
        }
        b[n] = 0;
        if ((st = add_member(out, name, b, n)) != CAIRN_OK) {
            cairn_free(b);
            break;
        }
    }
    archive_read_free(a);
    if (st != CAIRN_OK)
        zip_members_free(out);
    return st;
}

const zip_member *zip_find(const zip_members *z, const char *name)
{
    for (size_t i = 0; i < z->n; i++)
        if (!strcmp(z->m[i].name, name))
            return &z->m[i];
    return NULL;
}

void zip_members_free(zip_members *z)
{
    for (size_t i = 0; i < z->n; i++) {
        cairn_free(z->m[i].name);
        cairn_free(z->m[i].data);
    }
    cairn_free(z->m);
    memset(z, 0, sizeof *z);
}

/* ---- XML ---- */
struct xr {
    xmlTextReaderPtr r;
    const char *what;
    char err[200];
    cairn_buf attr[4];
    int attr_i;
    bool oom;           /* an attribute copy failed: the next xr_next says so */
};

/* The prolog (before the root element) holds a DOCTYPE? Checked before
 * libxml2 sees the bytes, so not even an internal subset is parsed. */
static bool has_doctype(const char *s, size_t n)
{
    size_t i = pc_bom_len(s, n);
    while (i < n) {
        while (i < n && pc_is_space((unsigned char)s[i]))
            i++;
        if (i + 1 >= n || s[i] != '<')
            return false;
        if (s[i + 1] == '?') {
            const char *e = memmem(s + i, n - i, "?>", 2);
            if (!e)
                return false;
            i = (size_t)(e - s) + 2;
        } else if (n - i >= 4 && !memcmp(s + i, "<!--", 4)) {
            const char *e = memmem(s + i, n - i, "-->", 3);
            if (!e)
                return false;
            i = (size_t)(e - s) + 3;
        } else {
            return n - i >= 9 && !strncasecmp(s + i, "<!DOCTYPE", 9);
        }
    }
    return false;
}

static xmlParserInputPtr no_entities(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url;
    (void)id;
    (void)ctxt;
    return NULL;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void)
{
    xmlInitParser();
    xmlSetExternalEntityLoader(no_entities);
}

static void on_error(void *ctx, xmlErrorPtr e)
{
    xr *r = ctx;
    if (!r->err[0] && e)
        snprintf(r->err, sizeof r->err, "line %d: %s", e->line, e->message ? e->message : "error");
    size_t n = strlen(r->err);
    while (n && (r->err[n - 1] == '\n' || r->err[n - 1] == ' '))
        r->err[--n] = 0;
}

cairn_status xr_open(xr **out, const char *data, size_t len, const char *what)
{
    *out = NULL;
    pthread_once(&xml_once, xml_init);
    if (len > (size_t)INT32_MAX)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: XML part too large", what);
    if (has_doctype(data, len))
        return cairn_fail(CAIRN_ERR_CORRUPT, "%s: XML with a DOCTYPE refused (no office part has one)", what);
    xr *r = cairn_calloc(1, sizeof *r);
    if (!r)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    r->what = what;
    for (int i = 0; i < 4; i++)
        cairn_buf_init(&r->attr[i], 0);
    r->r = xmlReaderForMemory(data, (int)len, NULL, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!r->r) {
        cairn_free(r);
        return cairn_fail(CAIRN_ERR_NOMEM, "%s: cannot start the XML reader", what);
    }
    xmlTextReaderSetStructuredErrorHandler(r->r, on_error, r);
    *out = r;
    return CAIRN_OK;
}

cairn_status xr_next(xr *r, xr_kind *kind)
{
    *kind = XR_END;
    r->attr_i = 0;
    if (r->oom)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    for (;;) {
        int ret = xmlTextReaderRead(r->r);
        if (ret == 0)
            return CAIRN_OK;
        if (ret < 0)
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: malformed XML (%s)", r->what, r->err[0] ? r->err : "parse error");
        switch (xmlTextReaderNodeType(r->r)) {
        case XML_READER_TYPE_ELEMENT: *kind = XR_START; return CAIRN_OK;
        case XML_READER_TYPE_END_ELEMENT: *kind = XR_CLOSE; return CAIRN_OK;
        case XML_READER_TYPE_TEXT:
        case XML_READER_TYPE_CDATA:
        case XML_READER_TYPE_SIGNIFICANT_WHITESPACE: *kind = XR_TEXT; return CAIRN_OK;
        case XML_READER_TYPE_DOCUMENT_TYPE:
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: XML with a DOCTYPE refused (no office part has one)", r->what);
        case XML_READER_TYPE_ENTITY_REFERENCE:
        case XML_READER_TYPE_ENTITY:
            return cairn_fail(CAIRN_ERR_CORRUPT, "%s: XML entity reference refused", r->what);
        default: continue;
        }
    }
}

const char *xr_name(xr *r)
{
    const xmlChar *n = xmlTextReaderConstLocalName(r->r);
    return n ? (const char *)n : "";
}

const char *xr_ns(xr *r)
{
    const xmlChar *n = xmlTextReaderConstNamespaceUri(r->r);
    return n ? (const char *)n : "";
}

const char *xr_text(xr *r)
{
    const xmlChar *v = xmlTextReaderConstValue(r->r);
    return v ? (const char *)v : "";
}

bool xr_empty(xr *r) { return xmlTextReaderIsEmptyElement(r->r) == 1; }
int xr_depth(xr *r) { return xmlTextReaderDepth(r->r); }

const char *xr_attr(xr *r, const char *local) { return xr_attr_ns(r, local, NULL); }

const char *xr_attr_ns(xr *r, const char *local, const char *ns_part)
{
    const char *found = NULL;
    if (xmlTextReaderMoveToFirstAttribute(r->r) != 1)
        return NULL;
    do {
        const xmlChar *ln = xmlTextReaderConstLocalName(r->r);
        const xmlChar *ns = ns_part ? xmlTextReaderConstNamespaceUri(r->r) : NULL;
        bool ns_ok = !ns_part || (*ns_part ? ns && strstr((const char *)ns, ns_part) : !ns);
        if (ln && !strcmp((const char *)ln, local) && ns_ok) {
            const xmlChar *v = xmlTextReaderConstValue(r->r);
            cairn_buf *b = &r->attr[r->attr_i++ & 3];
            cairn_buf_reset(b);
            if (cairn_buf_puts(b, v ? (const char *)v : "") == CAIRN_OK && cairn_buf_putc(b, 0) == CAIRN_OK)
                found = b->data;
            else
                r->oom = true;
            break;
        }
    } while (xmlTextReaderMoveToNextAttribute(r->r) == 1);
    xmlTextReaderMoveToElement(r->r);
    return found;
}

void xr_close(xr *r)
{
    if (!r)
        return;
    xmlFreeTextReader(r->r);
    for (int i = 0; i < 4; i++)
        cairn_buf_free(&r->attr[i]);
    cairn_free(r);
}

void container_resolve(const char *base, const char *ref, char *out, size_t cap)
{
    char tmp[2048];
    size_t n = 0;
    const char *slash = strrchr(base, '/');
    if (ref[0] == '/') {
        ref++;
    } else if (slash) {
        size_t k = (size_t)(slash - base) + 1;
        if (k >= sizeof tmp)
            k = sizeof tmp - 1;
        memcpy(tmp, base, k);
        n = k;
    }
    for (const char *p = ref; *p && *p != '#' && n + 1 < sizeof tmp; p++) {
        if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char h[3] = {p[1], p[2], 0};
            tmp[n++] = (char)strtol(h, NULL, 16);
            p += 2;
        } else {
            tmp[n++] = *p;
        }
    }
    tmp[n] = 0;
    /* normalise "." and ".." segments */
    char *segs[256];
    size_t ns = 0;
    char *save = NULL;
    for (char *s = strtok_r(tmp, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
        if (!strcmp(s, "."))
            continue;
        if (!strcmp(s, "..")) {
            if (ns)
                ns--;
            continue;
        }
        if (ns < CAIRN_ARRAY_LEN(segs))
            segs[ns++] = s;
    }
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < ns; i++) {
        int w = snprintf(out + o, cap - o, "%s%s", i ? "/" : "", segs[i]);
        if (w < 0 || (size_t)w >= cap - o)
            break;
        o += (size_t)w;
    }
}
