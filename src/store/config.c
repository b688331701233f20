/* config.c — the tiny INI reader for .cairn/config (format in config.h). */
#include "store/config.h"
#include "chunk/chunk.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char store_config_template[] =
    "# cairn store configuration (INI). Flags and CAIRN_* environment\n"
    "# variables override these values.\n"
    "\n"
    "[chunk]\n"
    "# target tokens per chunk, and tokens repeated from the previous chunk\n"
    "size = 256\n"
    "overlap = 32\n"
    "\n"
    "[ingest]\n"
    "# files read whole (text, Markdown, HTML, PDF, JSON) larger than this\n"
    "# are skipped with a reason\n"
    "max_file_mb = 256\n"
    "# JSONL and CSV (a row per document) are streamed record by record in\n"
    "# bounded memory: their own size cap, and a cap on one line/row\n"
    "max_stream_gb = 64\n"
    "max_record_mb = 16\n";

void store_config_default(store_config *c)
{
    memset(c, 0, sizeof *c);
    c->chunk_tokens = CHUNK_DEFAULT_TOKENS;
    c->chunk_overlap = CHUNK_DEFAULT_OVERLAP;
    c->max_file_bytes = (size_t)256 << 20;
    c->max_stream_bytes = (size_t)64 << 30;
    c->max_record_bytes = (size_t)16 << 20;
}

void store_config_free(store_config *c)
{
    for (size_t i = 0; i < c->n; i++) {
        cairn_free(c->e[i].section);
        cairn_free(c->e[i].key);
        cairn_free(c->e[i].value);
    }
    cairn_free(c->e);
    c->e = NULL;
    c->n = c->cap = 0;
}

const char *store_config_get(const store_config *c, const char *section, const char *key)
{
    /* last one wins */
    for (size_t i = c->n; i-- > 0;)
        if (!strcmp(c->e[i].section, section) && !strcmp(c->e[i].key, key))
            return c->e[i].value;
    return NULL;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static cairn_status parse_size(const char *name, int line, const char *what, const char *v, size_t lo, size_t hi, size_t *out)
{
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || end == v || *end || v[0] == '-' || x < lo || x > hi)
        return cairn_fail(CAIRN_ERR_INVALID, "%s:%d: %s must be a whole number in %zu..%zu, not '%s'",
                          name, line, what, lo, hi, v);
    *out = (size_t)x;
    return CAIRN_OK;
}

static cairn_status apply_known(store_config *c, const char *name, int line, const char *sec, const char *key, const char *val)
{
    if (!strcmp(sec, "chunk") && !strcmp(key, "size"))
        return parse_size(name, line, "chunk.size", val, CHUNK_MIN_TOKENS, CHUNK_MAX_TOKENS, &c->chunk_tokens);
    if (!strcmp(sec, "chunk") && !strcmp(key, "overlap"))
        return parse_size(name, line, "chunk.overlap", val, 0, CHUNK_MAX_TOKENS / 2, &c->chunk_overlap);
    if (!strcmp(sec, "ingest") && !strcmp(key, "max_file_mb")) {
        size_t mb;
        CAIRN_TRY(parse_size(name, line, "ingest.max_file_mb", val, 1, 1u << 20, &mb));
        c->max_file_bytes = mb << 20;
    }
    if (!strcmp(sec, "ingest") && !strcmp(key, "max_stream_gb")) {
        size_t gb;
        CAIRN_TRY(parse_size(name, line, "ingest.max_stream_gb", val, 1, 1u << 20, &gb));
        c->max_stream_bytes = gb << 30;
    }
    if (!strcmp(sec, "ingest") && !strcmp(key, "max_record_mb")) {
        size_t mb;
        CAIRN_TRY(parse_size(name, line, "ingest.max_record_mb", val, 1, 4096, &mb));
        c->max_record_bytes = mb << 20;
    }
    return CAIRN_OK;
}

static cairn_status add_entry(store_config *c, const char *sec, const char *key, const char *val, int line)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        config_entry *e = cairn_reallocarray(c->e, nc, sizeof *e);
        if (!e)
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory reading config");
        c->e = e;
        c->cap = nc;
    }
    config_entry *e = &c->e[c->n];
    e->section = cairn_strdup(sec);
    e->key = cairn_strdup(key);
    e->value = cairn_strdup(val);
    e->line = line;
    if (!e->section || !e->key || !e->value) {
        cairn_free(e->section);
        cairn_free(e->key);
        cairn_free(e->value);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory reading config");
    }
    c->n++;
    return CAIRN_OK;
}

cairn_status store_config_parse(store_config *c, const char *name, const char *text, size_t len)
{
    if (len > CONFIG_MAX_BYTES)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: larger than %u bytes", name, CONFIG_MAX_BYTES);
    char *copy = cairn_strndup(text, len);
    if (!copy)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory reading config");
    char section[128] = "";
    cairn_status st = CAIRN_OK;
    int lineno = 0;
    char *save = NULL;
    char *p = copy;
    while (st == CAIRN_OK && p) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        char *l = trim(p);
        p = nl ? nl + 1 : NULL;
        if (!*l || *l == '#' || *l == ';')
            continue;
        if (*l == '[') {
            char *e = strchr(l, ']');
            if (!e || trim(e + 1)[0] || e - l - 1 <= 0 || (size_t)(e - l - 1) >= sizeof section) {
                st = cairn_fail(CAIRN_ERR_INVALID, "%s:%d: malformed section header '%s'", name, lineno, l);
                break;
            }
            *e = 0;
            snprintf(section, sizeof section, "%s", trim(l + 1));
            continue;
        }
        char *eq = strchr(l, '=');
        if (!eq) {
            st = cairn_fail(CAIRN_ERR_INVALID, "%s:%d: expected 'key = value', got '%s'", name, lineno, l);
            break;
        }
        *eq = 0;
        char *key = trim(l), *val = trim(eq + 1);
        if (!*key) {
            st = cairn_fail(CAIRN_ERR_INVALID, "%s:%d: empty key", name, lineno);
            break;
        }
        /* strip an inline comment introduced by " #" or " ;" */
        for (char *q = val; *q; q++)
            if ((*q == '#' || *q == ';') && q > val && (q[-1] == ' ' || q[-1] == '\t')) {
                *q = 0;
                val = trim(val);
                break;
            }
        st = add_entry(c, section, key, val, lineno);
        if (st == CAIRN_OK)
            st = apply_known(c, name, lineno, section, key, val);
    }
    (void)save;
    cairn_free(copy);
    if (st == CAIRN_OK && c->chunk_overlap * 2 > c->chunk_tokens)
        st = cairn_fail(CAIRN_ERR_INVALID, "%s: chunk.overlap (%zu) must be at most half of chunk.size (%zu)",
                        name, c->chunk_overlap, c->chunk_tokens);
    return st;
}

cairn_status store_config_load(store_config *c, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        fclose(f);
        CAIRN_TRY(cairn_file_read_all(path, CONFIG_MAX_BYTES, &text, &len));
        cairn_status st = store_config_parse(c, path, text, len);
        cairn_free(text);
        CAIRN_TRY(st);
    } else if (errno != ENOENT) {
        return cairn_fail(CAIRN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    const char *v;
    if ((v = getenv("CAIRN_CHUNK_SIZE")) && *v)
        CAIRN_TRY(apply_known(c, "CAIRN_CHUNK_SIZE", 0, "chunk", "size", v));
    if ((v = getenv("CAIRN_CHUNK_OVERLAP")) && *v)
        CAIRN_TRY(apply_known(c, "CAIRN_CHUNK_OVERLAP", 0, "chunk", "overlap", v));
    if ((v = getenv("CAIRN_MAX_FILE_MB")) && *v)
        CAIRN_TRY(apply_known(c, "CAIRN_MAX_FILE_MB", 0, "ingest", "max_file_mb", v));
    if ((v = getenv("CAIRN_MAX_STREAM_GB")) && *v)
        CAIRN_TRY(apply_known(c, "CAIRN_MAX_STREAM_GB", 0, "ingest", "max_stream_gb", v));
    if ((v = getenv("CAIRN_MAX_RECORD_MB")) && *v)
        CAIRN_TRY(apply_known(c, "CAIRN_MAX_RECORD_MB", 0, "ingest", "max_record_mb", v));
    if (c->chunk_overlap * 2 > c->chunk_tokens)
        return cairn_fail(CAIRN_ERR_INVALID, "chunk overlap (%zu) must be at most half of chunk size (%zu)",
                          c->chunk_overlap, c->chunk_tokens);
    return CAIRN_OK;
}
