/* parse_common.c — helpers shared by the html/pdf/json/jsonl/csv parsers. */
#include "ingest/parse_common.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *pc_path_ext(const char *path)
{
    if (!path)
        return "";
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    /* ".bashrc" has no extension: a leading dot names a hidden file. */
    return dot && dot != base ? dot + 1 : "";
}

bool pc_ext_is(const char *path, const char *ext) { return strcasecmp(pc_path_ext(path), ext) == 0; }

size_t pc_bom_len(const char *data, size_t len)
{
    return len >= 3 && (unsigned char)data[0] == 0xEF && (unsigned char)data[1] == 0xBB &&
                   (unsigned char)data[2] == 0xBF
               ? 3
               : 0;
}

void pc_trim(const char **s, size_t *n)
{
    const char *p = *s;
    size_t k = *n;
    while (k && pc_is_space((unsigned char)*p)) {
        p++;
        k--;
    }
    while (k && pc_is_space((unsigned char)p[k - 1]))
        k--;
    *s = p;
    *n = k;
}

cairn_status pc_append_collapsed(cairn_buf *b, const char *s, size_t n, bool *space)
{
    /* Reserve once for the worst case (nothing collapses) so the loop below
     * writes without per-byte bounds checks. */
    CAIRN_TRY(cairn_buf_reserve(b, n));
    char *out = b->data + b->len;
    bool sp = *space;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (pc_is_space(c)) {
            if (!sp) {
                *out++ = ' ';
                sp = true;
            }
        } else {
            *out++ = (char)c;
            sp = false;
        }
    }
    b->len = (size_t)(out - b->data);
    b->data[b->len] = 0;
    *space = sp;
    return CAIRN_OK;
}

/* Find the next blank line (a line holding only spaces/tabs/CR) at or after
 * `i`; returns the index where it starts and sets *next to just after it. */
static size_t next_blank_line(const char *s, size_t n, size_t i, size_t *next)
{
    while (i < n) {
        const char *nl = memchr(s + i, '\n', n - i);
        if (!nl)
            break;
        size_t j = (size_t)(nl - s) + 1;
        size_t k = j;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r'))
            k++;
        if (k >= n || s[k] == '\n') {
            *next = k < n ? k + 1 : n;
            return (size_t)(nl - s);
        }
        i = j;
    }
    *next = n;
    return n;
}

cairn_status pc_add_paragraphs(ingest_doc *d, block_kind kind, int page, const char *prefix,
                               const char *s, size_t n)
{
    size_t i = 0;
    cairn_buf tmp;
    cairn_buf_init(&tmp, 0);
    cairn_status st = CAIRN_OK;
    while (i < n && st == CAIRN_OK) {
        size_t next;
        size_t end = next_blank_line(s, n, i, &next);
        const char *p = s + i;
        size_t k = end - i;
        pc_trim(&p, &k);
        if (k) {
            if (prefix) {
                cairn_buf_reset(&tmp);
                st = cairn_buf_printf(&tmp, "%s: ", prefix);
                if (st == CAIRN_OK)
                    st = cairn_buf_append(&tmp, p, k);
                if (st == CAIRN_OK)
                    st = ingest_doc_add_block(d, kind, 0, page, tmp.data, tmp.len);
                prefix = NULL;
            } else {
                st = ingest_doc_add_block(d, kind, 0, page, p, k);
            }
        }
        i = next;
    }
    cairn_buf_free(&tmp);
    return st;
}

cairn_status pc_keyset_add(pc_keyset *k, const char *s, size_t n, bool *dup)
{
    *dup = false;
    if ((k->n + 1) * 2 > k->cap) {
        size_t ncap = k->cap ? k->cap * 2 : 64;
        uint64_t *ns = cairn_calloc(ncap, sizeof *ns);
        if (!ns)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory for a key set of %zu entries", ncap);
        for (size_t i = 0; i < k->cap; i++) {
            if (!k->slots[i])
                continue;
            size_t j = k->slots[i] & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = k->slots[i];
        }
        cairn_free(k->slots);
        k->slots = ns;
        k->cap = ncap;
    }
    /* 0 marks an empty slot; a (2^-64 likely) collision only renames a key. */
    uint64_t h = cairn_hash64(s, n) | 1;
    size_t j = h & (k->cap - 1);
    while (k->slots[j]) {
        if (k->slots[j] == h) {
            *dup = true;
            return CAIRN_OK;
        }
        j = (j + 1) & (k->cap - 1);
    }
    k->slots[j] = h;
    k->n++;
    return CAIRN_OK;
}

void pc_keyset_free(pc_keyset *k)
{
    cairn_free(k->slots);
    k->slots = NULL;
    k->n = k->cap = 0;
}

cairn_status pc_set_unique_key(pc_keyset *ks, ingest_doc *doc, const char *key, const char *alt)
{
    bool dup;
    CAIRN_TRY(pc_keyset_add(ks, key, strlen(key), &dup));
    cairn_buf b;
    cairn_buf_init(&b, 0);
    cairn_status st = dup ? cairn_buf_printf(&b, "%s@%s", key, alt) : cairn_buf_puts(&b, key);
    if (st == CAIRN_OK && dup)
        st = pc_keyset_add(ks, b.data, b.len, &dup);
    if (st != CAIRN_OK) {
        cairn_buf_free(&b);
        return st;
    }
    cairn_free(doc->key);
    doc->key = cairn_buf_take(&b);
    return CAIRN_OK;
}

cairn_status pc_set_record_key(pc_keyset *ks, const ingest_options *opt, ingest_doc *doc, const char *key,
                               const char *alt)
{
    if (!opt || !opt->caller_unique_keys)
        return pc_set_unique_key(ks, doc, key, alt);
    char *k = cairn_strdup(key);
    if (!k)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_free(doc->key);
    doc->key = k;
    snprintf(doc->key_alt, sizeof doc->key_alt, "%s", alt);
    return CAIRN_OK;
}

cairn_status pc_meta_string(meta_list *m, const char *key, const char *s)
{
    /* Only strings shaped like an ISO date go through the typed parser: a
     * JSON string "123" is text, not a number. */
    if (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
        isdigit((unsigned char)s[3]) && s[4] == '-' && isdigit((unsigned char)s[5]) &&
        isdigit((unsigned char)s[6]) && s[7] == '-' && isdigit((unsigned char)s[8]) &&
        isdigit((unsigned char)s[9])) {
        double t;
        if (meta_parse_date(s, &t))
            return meta_set_date(m, key, t);
    }
    return meta_set_string(m, key, s);
}
