/* np_ref.h — tests' access to the float64 numpy reference forward pass
 * (tests/tools/np_ref.py, run with python3 + numpy). Header-only: each test
 * that includes it calls np_ref_setup() first. */
#ifndef CAIRN_TEST_NP_REF_H
#define CAIRN_TEST_NP_REF_H

#include "t.h"
#include <cjson/cJSON.h>
#include <libgen.h>

static char np_ref[1024];
static const char *python = "/usr/bin/python3";

/* Locate the script and python (CAIRN_PYTHON overrides); false when either
 * is missing, so the caller can skip. */
static inline bool np_ref_setup(const char *this_file)
{
    char src[1024];
    snprintf(src, sizeof src, "%s", this_file);
    snprintf(np_ref, sizeof np_ref, "%s/tools/np_ref.py", dirname(src));
    const char *py = getenv("CAIRN_PYTHON");
    if (py && *py)
        python = py;
    char probe[1200];
    snprintf(probe, sizeof probe, "%s -c 'import numpy' 2>/dev/null", python);
    return access(np_ref, R_OK) == 0 && system(probe) == 0;
}

/* Reference logits of the last position (n_vocab doubles, caller frees), or NULL. */
static inline double *reference_logits(const char *path, const int32_t *ids, int n, int n_vocab)
{
    char cmd[4096];
    int o = snprintf(cmd, sizeof cmd, "%s '%s' llama-full '%s' ", python, np_ref, path);
    for (int i = 0; i < n; i++)
        o += snprintf(cmd + o, sizeof cmd - (size_t)o, "%s%d", i ? "," : "", ids[i]);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        cairn_buf_append(&b, chunk, got);
    int rc = pclose(p);
    double *out = NULL;
    cJSON *j = rc == 0 && b.len ? cJSON_Parse(b.data) : NULL;
    const cJSON *arr = j ? cJSON_GetObjectItem(j, "logits") : NULL;
    if (arr && cJSON_GetArraySize(arr) == n_vocab) {
        out = cairn_malloc((size_t)n_vocab * sizeof *out);
        for (int i = 0; out && i < n_vocab; i++)
            out[i] = cJSON_GetArrayItem(arr, i)->valuedouble;
    } else {
        fprintf(stderr, "np_ref failed (rc %d): %.300s\n", rc, b.len ? b.data : "");
    }
    cJSON_Delete(j);
    cairn_buf_free(&b);
    return out;
}

/* The parsed JSON np_ref.py prints for `kind` ("bert", "rank", ...) over
 * ids (caller deletes), or NULL with the reason on stderr. */
static inline cJSON *np_ref_json(const char *kind, const char *path, const int32_t *ids, int n)
{
    size_t cap = 256 + strlen(np_ref) + strlen(path) + (size_t)n * 12;
    char *cmd = cairn_malloc(cap);
    if (!cmd)
        return NULL;
    int o = snprintf(cmd, cap, "%s '%s' %s '%s' ", python, np_ref, kind, path);
    for (int i = 0; i < n; i++)
        o += snprintf(cmd + o, cap - (size_t)o, "%s%d", i ? "," : "", ids[i]);
    FILE *p = popen(cmd, "r");
    cairn_free(cmd);
    if (!p)
        return NULL;
    cairn_buf b;
    cairn_buf_init(&b, 0);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, p)) > 0)
        cairn_buf_append(&b, chunk, got);
    int rc = pclose(p);
    cJSON *j = rc == 0 && b.len ? cJSON_ParseWithLength(b.data, b.len) : NULL;
    if (!j)
        fprintf(stderr, "np_ref %s failed (rc %d): %.300s\n", kind, rc, b.len ? b.data : "");
    cairn_buf_free(&b);
    return j;
}

#endif
