/*
 * gw_redact.c — privacy helpers: which chunks are private, and the redaction
 * of text that goes upstream.
 *
 * Redaction replaces every match of a rule with "[REDACTED:NAME]", rules in
 * config order (a later rule sees the earlier replacements). Cost: one
 * pcre2 pass per rule over the text (JIT-compiled when the platform allows).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "gateway/gw_int.h"
#include <fnmatch.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

bool gw_chunk_private(const gw_config *c, const gw_chunk_ref *ch)
{
    if (ch->private_tag == 1)
        return true;
    if (ch->private_tag == 0)
        return false;
    if (ch->path)
        for (size_t i = 0; i < c->n_globs; i++) {
            const char *g = c->private_globs[i];
            /* a glob matches the whole path, or any tail after a '/' (so
             * "secret/x*" also matches "/home/me/secret/x1.md") */
            if (fnmatch(g, ch->path, 0) == 0)
                return true;
            for (const char *p = strchr(ch->path, '/'); p; p = strchr(p + 1, '/'))
                if (fnmatch(g, p + 1, 0) == 0)
                    return true;
        }
    return c->default_private;
}

/* One rule over s[0..n): a new string in *out. */
static cairn_status redact_one(const gw_redact_rule *r, const char *s, size_t n, char **out, size_t *out_len, int *count)
{
    pcre2_code *code = r->code;
    char repl[160];
    snprintf(repl, sizeof repl, "[REDACTED:%s]", r->name);
    size_t cap = n + n / 4 + 64;
    for (int attempt = 0; attempt < 3; attempt++) {
        char *buf = cairn_malloc(cap + 1);
        if (!buf)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory redacting");
        PCRE2_SIZE olen = cap;
        int rc = pcre2_substitute(code, (PCRE2_SPTR)s, n, 0,
                                  PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | PCRE2_SUBSTITUTE_LITERAL,
                                  NULL, NULL, (PCRE2_SPTR)repl, PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)buf, &olen);
        if (rc >= 0) {
            buf[olen] = 0;
            *out = buf;
            *out_len = olen;
            *count += rc;
            return CAIRN_OK;
        }
        cairn_free(buf);
        if (rc != PCRE2_ERROR_NOMEMORY) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return cairn_fail(CAIRN_ERR_INVALID, "redaction rule %s: %s", r->name, (char *)msg);
        }
        cap = olen;     /* the length it needs */
    }
    return cairn_fail(CAIRN_ERR_INTERNAL, "redaction rule %s: output keeps growing", r->name);
}

cairn_status gw_redact_each(const gw_config *c, const char *s, size_t n, char **out, size_t *out_len, int *per_rule)
{
    char *cur = cairn_strndup(s, n);
    if (!cur)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory redacting");
    size_t len = n;
    for (size_t i = 0; i < c->n_redact; i++) {
        char *next;
        size_t nlen;
        int k = 0;
        cairn_status st = redact_one(&c->redact[i], cur, len, &next, &nlen, &k);
        cairn_free(cur);
        if (st != CAIRN_OK)
            return st;
        cur = next;
        len = nlen;
        per_rule[i] += k;
    }
    *out = cur;
    *out_len = len;
    return CAIRN_OK;
}

cairn_status gw_redact(const gw_config *c, const char *s, size_t n, char **out, size_t *out_len, int *count)
{
    int per[GW_MAX_REDACT] = {0};
    CAIRN_TRY(gw_redact_each(c, s, n, out, out_len, per));
    for (size_t i = 0; i < c->n_redact; i++)
        *count += per[i];
    return CAIRN_OK;
}
