/*
 * gw_config.c — the gateway's rules, read from the INI file (.cairn/config or
 * a file named by --gateway). Sections (all optional; docs/gateway.md):
 *
 *   [gateway]        policy = local-only|local-first|cloud-first|model-map
 *                    upstream = NAME        default upstream (else the first)
 *                    local_timeout = 30s    deadline for the local model to start
 *                    allow_override = true  requests may choose their policy
 *                    audit_content = false  request text in the audit log
 *   [upstream NAME]  url, models (comma list), key_env, timeout, idle_timeout,
 *                    price_in, price_out (per 1k tokens), budget_tokens,
 *                    budget_money (per UTC day), max_tokens, retries, backoff,
 *                    breaker_failures, breaker_cooldown
 *   [model-map]      MODEL = POLICY [UPSTREAM]   (MODEL may hold '*' globs)
 *   [redact]         NAME = PCRE2 pattern
 *   [privacy]        default = public|private, paths = GLOB, GLOB...,
 *                    on_private = local|refuse
 *
 * Durations: "250ms", "2s", "1.5s", "2m", or a bare number of milliseconds.
 * Money and prices: decimal numbers with at most 6 decimals, kept exactly as
 * integers (1e-6 units per 1k tokens == 1e-9 units per token).
 * Unknown keys in these sections are errors (a typo must not silently turn a
 * rule off).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "gateway/gateway.h"
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *policy_names[] = {"local-only", "local-first", "cloud-first", "cloud-only", "model-map"};

const char *gw_policy_name(gw_policy p)
{
    return (unsigned)p < CAIRN_ARRAY_LEN(policy_names) ? policy_names[p] : "?";
}

bool gw_policy_parse(const char *s, gw_policy *out)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(policy_names); i++)
        if (!strcmp(s, policy_names[i])) {
            *out = (gw_policy)i;
            return true;
        }
    if (!strcmp(s, "upstream") || !strcmp(s, "cloud")) {
        *out = GW_POLICY_CLOUD_ONLY;
        return true;
    }
    if (!strcmp(s, "local")) {
        *out = GW_POLICY_LOCAL_ONLY;
        return true;
    }
    return false;
}

void gw_config_init(gw_config *c)
{
    memset(c, 0, sizeof *c);
    c->policy = GW_POLICY_LOCAL_ONLY;
    c->default_upstream = -1;
    c->allow_override = true;
    c->local_timeout_ms = 30000;
}

void gw_config_free(gw_config *c)
{
    for (size_t i = 0; i < c->n_up; i++) {
        gw_upstream_cfg *u = &c->up[i];
        cairn_free(u->name);
        cairn_free(u->base_url);
        cairn_free(u->key_env);
        for (size_t j = 0; j < u->n_models; j++)
            cairn_free(u->models[j]);
    }
    for (size_t i = 0; i < c->n_map; i++)
        cairn_free(c->map[i].model);
    for (size_t i = 0; i < c->n_redact; i++) {
        cairn_free(c->redact[i].name);
        cairn_free(c->redact[i].pattern);
        pcre2_code_free(c->redact[i].code);
    }
    for (size_t i = 0; i < c->n_globs; i++)
        cairn_free(c->private_globs[i]);
    gw_config_init(c);
}

cairn_status gw_parse_price(const char *s, int64_t *nano)
{
    const char *p = s;
    int64_t whole = 0, frac = 0;
    int nfrac = 0;
    if (!*p)
        goto bad;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > 1000000000)
            goto bad;
        whole = whole * 10 + (*p - '0');
    }
    if (*p == '.') {
        p++;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (++nfrac > 6)
                goto bad;
            frac = frac * 10 + (*p - '0');
        }
    }
    if (*p || p == s)
        goto bad;
    for (int i = nfrac; i < 6; i++)
        frac *= 10;
    *nano = whole * 1000000 + frac;
    return CAIRN_OK;
bad:
    return cairn_fail(CAIRN_ERR_INVALID, "'%s' is not an amount (digits, at most 6 decimals)", s);
}

static cairn_status parse_ms(const char *what, const char *v, int64_t *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    double mult = 1;
    if (!strcmp(end, "ms") || !*end)
        mult = 1;
    else if (!strcmp(end, "s"))
        mult = 1000;
    else if (!strcmp(end, "m"))
        mult = 60000;
    else
        end = NULL;
    if (errno || !end || end == v || !(x >= 0) || x * mult > 864e5 * 365)
        return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not a duration (e.g. 250ms, 2s, 1m)", what, v);
    *out = (int64_t)(x * mult + 0.5);
    return CAIRN_OK;
}

static cairn_status parse_int(const char *what, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not a whole number in %lld..%lld", what, v,
                          (long long)lo, (long long)hi);
    *out = x;
    return CAIRN_OK;
}

static cairn_status parse_bool(const char *what, const char *v, bool *out)
{
    if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on"))
        *out = true;
    else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off"))
        *out = false;
    else
        return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not true or false", what, v);
    return CAIRN_OK;
}

/* Split "a, b ,c" into trimmed copies; at most cap items. */
static cairn_status split_list(const char *what, const char *v, char **items, size_t *n, size_t cap)
{
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        if (*n == cap)
            return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: more than %zu items", what, cap);
        if (!(items[*n] = cairn_strndup(p, len)))
            return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
        (*n)++;
        p += len;
    }
    return CAIRN_OK;
}

static int find_upstream(const gw_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_up; i++)
        if (!strcmp(c->up[i].name, name))
            return (int)i;
    return -1;
}

static cairn_status upstream_key(gw_upstream_cfg *u, const char *what, const char *k, const char *v)
{
    if (!strcmp(k, "url") || !strcmp(k, "base_url")) {
        if (strncmp(v, "http://", 7) && strncmp(v, "https://", 8))
            return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not an http:// or https:// URL", what, v);
        cairn_free(u->base_url);
        size_t n = strlen(v);
        while (n && v[n - 1] == '/')
            n--;
        return (u->base_url = cairn_strndup(v, n)) ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(k, "models") || !strcmp(k, "model")) {
        for (size_t j = 0; j < u->n_models; j++)
            cairn_free(u->models[j]);
        u->n_models = 0;
        return split_list(what, v, u->models, &u->n_models, GW_MAX_MODELS);
    }
    if (!strcmp(k, "key_env")) {
        for (const char *p = v; *p; p++)
            if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
                return cairn_fail(CAIRN_ERR_INVALID,
                                  "%s: '%s' is not an environment variable name (the key itself never goes in the config)",
                                  what, v);
        cairn_free(u->key_env);
        return (u->key_env = cairn_strdup(v)) ? CAIRN_OK : cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    if (!strcmp(k, "timeout"))
        return parse_ms(what, v, &u->timeout_ms);
    if (!strcmp(k, "idle_timeout"))
        return parse_ms(what, v, &u->idle_ms);
    if (!strcmp(k, "price_in"))
        return gw_parse_price(v, &u->price_in_nano) == CAIRN_OK ? CAIRN_OK : cairn_fail_wrap(CAIRN_ERR_INVALID, "%s", what);
    if (!strcmp(k, "price_out"))
        return gw_parse_price(v, &u->price_out_nano) == CAIRN_OK ? CAIRN_OK : cairn_fail_wrap(CAIRN_ERR_INVALID, "%s", what);
    if (!strcmp(k, "budget_money")) {
        int64_t micro;
        CAIRN_TRY(gw_parse_price(v, &micro) == CAIRN_OK ? CAIRN_OK : cairn_fail_wrap(CAIRN_ERR_INVALID, "%s", what));
        if (micro > INT64_MAX / 1000)
            return cairn_fail(CAIRN_ERR_INVALID, "%s: too large", what);
        u->budget_nano = micro * 1000;
        return CAIRN_OK;
    }
    int64_t x;
    if (!strcmp(k, "budget_tokens"))
        return parse_int(what, v, 0, INT64_MAX / 2, &u->budget_tokens);
    if (!strcmp(k, "max_tokens"))
        return parse_int(what, v, 1, 1 << 24, &u->max_tokens);
    if (!strcmp(k, "retries")) {
        CAIRN_TRY(parse_int(what, v, 0, 10, &x));
        u->retries = (int)x;
        return CAIRN_OK;
    }
    if (!strcmp(k, "backoff"))
        return parse_ms(what, v, &u->backoff_ms);
    if (!strcmp(k, "breaker_failures")) {
        CAIRN_TRY(parse_int(what, v, 1, 1000, &x));
        u->breaker_failures = (int)x;
        return CAIRN_OK;
    }
    if (!strcmp(k, "breaker_cooldown"))
        return parse_ms(what, v, &u->breaker_cooldown_ms);
    return cairn_fail(CAIRN_ERR_INVALID, "%s: unknown key", what);
}

static cairn_status add_upstream(gw_config *c, const char *name, gw_upstream_cfg **out)
{
    int i = find_upstream(c, name);
    if (i >= 0) {
        *out = &c->up[i];
        return CAIRN_OK;
    }
    if (c->n_up == GW_MAX_UPSTREAMS)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "more than %d upstreams", GW_MAX_UPSTREAMS);
    gw_upstream_cfg *u = &c->up[c->n_up];
    memset(u, 0, sizeof *u);
    if (!(u->name = cairn_strdup(name)))
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    u->timeout_ms = 10000;
    u->idle_ms = 0;            /* = timeout */
    u->max_tokens = 256;
    u->retries = 1;
    u->backoff_ms = 50;
    u->breaker_failures = 3;
    u->breaker_cooldown_ms = 30000;
    c->n_up++;
    *out = u;
    return CAIRN_OK;
}

static cairn_status add_redact(gw_config *c, const char *what, const char *name, const char *pattern)
{
    if (c->n_redact == GW_MAX_REDACT)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "more than %d redaction rules", GW_MAX_REDACT);
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return cairn_fail(CAIRN_ERR_INVALID, "%s: bad regular expression at offset %zu: %s", what, (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);   /* optional speed-up; the interpreter works without */
    gw_redact_rule *r = &c->redact[c->n_redact];
    r->name = cairn_strdup(name);
    r->pattern = cairn_strdup(pattern);
    r->code = code;
    if (!r->name || !r->pattern) {
        cairn_free(r->name);
        cairn_free(r->pattern);
        pcre2_code_free(code);
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    c->n_redact++;
    return CAIRN_OK;
}

cairn_status gw_config_from_ini(gw_config *c, const store_config *ini)
{
    /* two passes: upstreams first, so [gateway] upstream and the model map
     * may name an upstream defined further down */
    char what[320];
    for (size_t i = 0; i < ini->n; i++) {
        const config_entry *e = &ini->e[i];
        if (strncmp(e->section, "upstream ", 9))
            continue;
        const char *name = e->section + 9;
        while (*name == ' ')
            name++;
        snprintf(what, sizeof what, "config line %d: [upstream %s] %s", e->line, name, e->key);
        if (!*name)
            return cairn_fail(CAIRN_ERR_INVALID, "config line %d: [upstream] needs a name", e->line);
        gw_upstream_cfg *u = NULL;
        CAIRN_TRY(add_upstream(c, name, &u));
        CAIRN_TRY(upstream_key(u, what, e->key, e->value));
    }
    for (size_t i = 0; i < c->n_up; i++)
        if (!c->up[i].base_url)
            return cairn_fail(CAIRN_ERR_INVALID, "[upstream %s] has no url", c->up[i].name);
    if (c->n_up)
        c->default_upstream = 0;
    for (size_t i = 0; i < ini->n; i++) {
        const config_entry *e = &ini->e[i];
        const char *s = e->section, *k = e->key, *v = e->value;
        snprintf(what, sizeof what, "config line %d: [%s] %s", e->line, s, k);
        if (!strcmp(s, "gateway")) {
            if (!strcmp(k, "policy")) {
                if (!gw_policy_parse(v, &c->policy))
                    return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not local-only, local-first, cloud-first or model-map", what, v);
                if (c->policy == GW_POLICY_CLOUD_ONLY)
                    return cairn_fail(CAIRN_ERR_INVALID, "%s: a store-wide cloud-only policy is not offered; use cloud-first or the model map", what);
            } else if (!strcmp(k, "upstream")) {
                if ((c->default_upstream = find_upstream(c, v)) < 0)
                    return cairn_fail(CAIRN_ERR_INVALID, "%s: no [upstream %s] section", what, v);
            } else if (!strcmp(k, "local_timeout")) {
                CAIRN_TRY(parse_ms(what, v, &c->local_timeout_ms));
            } else if (!strcmp(k, "allow_override")) {
                CAIRN_TRY(parse_bool(what, v, &c->allow_override));
            } else if (!strcmp(k, "audit_content")) {
                CAIRN_TRY(parse_bool(what, v, &c->audit_content));
            } else {
                return cairn_fail(CAIRN_ERR_INVALID, "%s: unknown key", what);
            }
        } else if (!strcmp(s, "model-map")) {
            if (c->n_map == GW_MAX_MAP)
                return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: more than %d model-map entries", what, GW_MAX_MAP);
            char pol[32] = "", up[128] = "";
            if (sscanf(v, "%31s %127s", pol, up) < 1)
                return cairn_fail(CAIRN_ERR_INVALID, "%s: expected 'POLICY [UPSTREAM]'", what);
            gw_map_entry *m = &c->map[c->n_map];
            if (!gw_policy_parse(pol, &m->policy) || m->policy == GW_POLICY_MODEL_MAP)
                return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not local-only, local-first, cloud-first or cloud-only", what, pol);
            m->upstream = -1;
            if (up[0] && (m->upstream = find_upstream(c, up)) < 0)
                return cairn_fail(CAIRN_ERR_INVALID, "%s: no [upstream %s] section", what, up);
            if (!(m->model = cairn_strdup(k)))
                return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
            c->n_map++;
        } else if (!strcmp(s, "redact")) {
            CAIRN_TRY(add_redact(c, what, k, v));
        } else if (!strcmp(s, "privacy")) {
            if (!strcmp(k, "default")) {
                if (!strcmp(v, "private"))
                    c->default_private = true;
                else if (!strcmp(v, "public"))
                    c->default_private = false;
                else
                    return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not private or public", what, v);
            } else if (!strcmp(k, "paths")) {
                CAIRN_TRY(split_list(what, v, c->private_globs, &c->n_globs, GW_MAX_GLOBS));
            } else if (!strcmp(k, "on_private")) {
                if (!strcmp(v, "local"))
                    c->on_private = GW_PRIVATE_LOCAL;
                else if (!strcmp(v, "refuse"))
                    c->on_private = GW_PRIVATE_REFUSE;
                else
                    return cairn_fail(CAIRN_ERR_INVALID, "%s: '%s' is not local or refuse", what, v);
            } else {
                return cairn_fail(CAIRN_ERR_INVALID, "%s: unknown key", what);
            }
        }
    }
    if (c->policy != GW_POLICY_LOCAL_ONLY && c->policy != GW_POLICY_MODEL_MAP && c->default_upstream < 0)
        return cairn_fail(CAIRN_ERR_INVALID, "[gateway] policy %s needs an [upstream NAME] section", gw_policy_name(c->policy));
    for (size_t i = 0; i < c->n_map; i++)
        if (c->map[i].policy != GW_POLICY_LOCAL_ONLY && c->map[i].upstream < 0 && c->default_upstream < 0)
            return cairn_fail(CAIRN_ERR_INVALID, "[model-map] %s: %s needs an [upstream NAME] section",
                              c->map[i].model, gw_policy_name(c->map[i].policy));
    return CAIRN_OK;
}

cairn_status gw_config_load_file(gw_config *c, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    CAIRN_TRY(cairn_file_read_all(path, CONFIG_MAX_BYTES, &text, &len));
    store_config ini;
    store_config_default(&ini);
    cairn_status st = store_config_parse(&ini, path, text, len);
    cairn_free(text);
    if (st == CAIRN_OK)
        st = gw_config_from_ini(c, &ini);
    store_config_free(&ini);
    if (st != CAIRN_OK)
        return cairn_fail_wrap(st, "%s", path);
    return CAIRN_OK;
}
