/* meta.c — typed metadata lists (string, number, date, bool, list). */
#include "ingest/ingest.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define META_MAX_ENTRIES 4096

static void value_free(meta_value *v)
{
    cairn_free(v->s);
    for (size_t i = 0; i < v->n_items; i++)
        cairn_free(v->items[i]);
    cairn_free(v->items);
    memset(v, 0, sizeof *v);
}

void meta_list_free(meta_list *m)
{
    for (size_t i = 0; i < m->n; i++) {
        cairn_free(m->e[i].key);
        value_free(&m->e[i].v);
    }
    cairn_free(m->e);
    m->e = NULL;
    m->n = m->cap = 0;
}

const meta_value *meta_get(const meta_list *m, const char *key)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->e[i].key, key))
            return &m->e[i].v;
    return NULL;
}

/* Install `v` (ownership taken, freed on failure) under `key`. */
static cairn_status meta_put(meta_list *m, const char *key, meta_value *v)
{
    if (!key || !*key) {
        value_free(v);
        return cairn_fail(CAIRN_ERR_INVALID, "metadata key is empty");
    }
    for (size_t i = 0; i < m->n; i++) {
        if (!strcmp(m->e[i].key, key)) {
            value_free(&m->e[i].v);
            m->e[i].v = *v;
            return CAIRN_OK;
        }
    }
    if (m->n >= META_MAX_ENTRIES) {
        value_free(v);
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "more than %d metadata fields", META_MAX_ENTRIES);
    }
    if (m->n == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        meta_entry *e = cairn_reallocarray(m->e, nc, sizeof *e);
        if (!e) {
            value_free(v);
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding metadata");
        }
        m->e = e;
        m->cap = nc;
    }
    char *k = cairn_strdup(key);
    if (!k) {
        value_free(v);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding metadata");
    }
    m->e[m->n].key = k;
    m->e[m->n].v = *v;
    m->n++;
    return CAIRN_OK;
}

cairn_status meta_set_string(meta_list *m, const char *key, const char *s)
{
    meta_value v = {.type = META_STRING};
    v.s = cairn_strdup(s ? s : "");
    if (!v.s)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding metadata");
    return meta_put(m, key, &v);
}

cairn_status meta_set_number(meta_list *m, const char *key, double n)
{
    if (!isfinite(n))
        return cairn_fail(CAIRN_ERR_INVALID, "metadata %s: number is not finite", key);
    meta_value v = {.type = META_NUMBER, .n = n};
    return meta_put(m, key, &v);
}

cairn_status meta_set_date(meta_list *m, const char *key, double epoch_seconds)
{
    if (!isfinite(epoch_seconds))
        return cairn_fail(CAIRN_ERR_INVALID, "metadata %s: date is not finite", key);
    meta_value v = {.type = META_DATE, .n = epoch_seconds};
    return meta_put(m, key, &v);
}

cairn_status meta_set_bool(meta_list *m, const char *key, bool b)
{
    meta_value v = {.type = META_BOOL, .n = b ? 1 : 0};
    return meta_put(m, key, &v);
}

cairn_status meta_set_list(meta_list *m, const char *key, const char *const *items, size_t n)
{
    meta_value v = {.type = META_LIST};
    if (n) {
        v.items = cairn_calloc(n, sizeof *v.items);
        if (!v.items)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding metadata");
        for (size_t i = 0; i < n; i++) {
            v.items[i] = cairn_strdup(items[i] ? items[i] : "");
            v.n_items = i + 1;
            if (!v.items[i]) {
                value_free(&v);
                return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding metadata");
            }
        }
    }
    return meta_put(m, key, &v);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM]; whole string must match. */
static bool parse_iso_date(const char *s, double *out)
{
    size_t len = strlen(s);
    if (len < 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d > mdays[mo - 1])
        return false;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return false;
    int hh = 0, mm = 0, ss = 0;
    double frac = 0;
    const char *p = s + 10;
    if (*p == 'T' || *p == 't' || (*p == ' ' && p[1])) {
        p++;
        if (strlen(p) < 5 || p[2] != ':')
            return false;
        hh = digits(p, 2);
        mm = digits(p + 3, 2);
        if (hh < 0 || hh > 23 || mm < 0 || mm > 59)
            return false;
        p += 5;
        if (*p == ':') {
            ss = digits(p + 1, 2);
            if (ss < 0 || ss > 60)
                return false;
            p += 3;
            if (*p == '.') {
                p++;
                double scale = 0.1;
                if (!isdigit((unsigned char)*p))
                    return false;
                while (isdigit((unsigned char)*p)) {
                    frac += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        int off = 0;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            p++;
            int oh = digits(p, 2), om;
            if (oh < 0 || oh > 23)
                return false;
            p += 2;
            if (*p == ':')
                p++;
            om = digits(p, 2);
            if (om < 0 || om > 59)
                return false;
            p += 2;
            off = sign * (oh * 3600 + om * 60);
        }
        if (*p)
            return false;
        *out = (double)(days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - off) + frac;
        return true;
    }
    if (*p)
        return false;
    *out = (double)(days_from_civil(y, mo, d) * 86400);
    return true;
}

static bool parse_number(const char *s, double *out)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return false;
    /* Leading zeros like "007" or ZIP-like codes stay strings. */
    if (p[0] == '0' && isdigit((unsigned char)p[1]))
        return false;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q) && *q != '.' && *q != 'e' && *q != 'E' && *q != '+' && *q != '-')
            return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

bool meta_parse_date(const char *s, double *out) { return parse_iso_date(s, out); }

cairn_status meta_set_parsed(meta_list *m, const char *key, const char *value)
{
    double d;
    if (!value)
        value = "";
    if (!strcmp(value, "true") || !strcmp(value, "True") || !strcmp(value, "TRUE"))
        return meta_set_bool(m, key, true);
    if (!strcmp(value, "false") || !strcmp(value, "False") || !strcmp(value, "FALSE"))
        return meta_set_bool(m, key, false);
    if (parse_number(value, &d))
        return meta_set_number(m, key, d);
    if (parse_iso_date(value, &d))
        return meta_set_date(m, key, d);
    return meta_set_string(m, key, value);
}

void meta_format_date(double epoch_seconds, char out[32])
{
    time_t t = (time_t)floor(epoch_seconds);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 32, "%.0f", epoch_seconds);
        return;
    }
    if (tm.tm_hour == 0 && tm.tm_min == 0 && tm.tm_sec == 0 && t == epoch_seconds)
        strftime(out, 32, "%Y-%m-%d", &tm);
    else
        strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

cairn_status meta_add_tag(meta_list *m, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return cairn_fail(CAIRN_ERR_INVALID, "tag '%s': expected KEY=VALUE", kv);
    char key[256];
    if ((size_t)(eq - kv) >= sizeof key)
        return cairn_fail(CAIRN_ERR_INVALID, "tag '%.40s...': key longer than 255 bytes", kv);
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = 0;
    const meta_value *old = meta_get(m, key);
    if (!old)
        return meta_set_parsed(m, key, eq + 1);
    /* A repeated key: the old value(s) as text, then the new one. */
    size_t n = old->type == META_LIST ? old->n_items : 1;
    const char **items = cairn_calloc(n + 1, sizeof *items);
    if (!items)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory adding metadata");
    char buf[64];
    if (old->type == META_LIST) {
        for (size_t i = 0; i < n; i++)
            items[i] = old->items[i];
    } else if (old->type == META_STRING) {
        items[0] = old->s;
    } else if (old->type == META_BOOL) {
        items[0] = old->n ? "true" : "false";
    } else if (old->type == META_DATE) {
        meta_format_date(old->n, buf);
        items[0] = buf;
    } else {
        snprintf(buf, sizeof buf, "%.17g", old->n);
        items[0] = buf;
    }
    items[n] = eq + 1;
    /* meta_set_list copies the items before it replaces the old value */
    cairn_status st = meta_set_list(m, key, items, n + 1);
    cairn_free(items);
    return st;
}
