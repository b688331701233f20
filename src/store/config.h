/*
 * config.h — the store's INI configuration file (.cairn/config).
 *
 *   # comment (also ';')
 *   [section]
 *   key = value          ; whitespace around keys and values is trimmed
 *
 * Known keys (others are kept and readable with store_config_get, so other
 * parts — the analyzer, the index — keep their settings in the same file):
 *   [chunk]  size = 256        target tokens per chunk
 *            overlap = 32      tokens repeated from the previous chunk
 *   [ingest] max_file_mb = 256 files read whole (text, Markdown, HTML, PDF,
 *                              JSON) larger than this are skipped
 *            max_stream_gb = 64 streamed record files (JSONL, CSV with a
 *                              row per document) larger than this are skipped
 *            max_record_mb = 16 one JSONL line / CSV row at most this long
 * Environment overrides: CAIRN_CHUNK_SIZE, CAIRN_CHUNK_OVERLAP,
 * CAIRN_MAX_FILE_MB, CAIRN_MAX_STREAM_GB, CAIRN_MAX_RECORD_MB.
 */
#ifndef CAIRN_STORE_CONFIG_H
#define CAIRN_STORE_CONFIG_H

#include "base/base.h"

#define CONFIG_MAX_BYTES (1u << 20)

typedef struct config_entry { char *section, *key, *value; int line; } config_entry;

typedef struct store_config {
    size_t chunk_tokens;
    size_t chunk_overlap;
    size_t max_file_bytes;
    size_t max_stream_bytes;
    size_t max_record_bytes;
    config_entry *e;
    size_t n, cap;
} store_config;

void store_config_default(store_config *c);
void store_config_free(store_config *c);
/* Parse INI text into c (on top of defaults). Errors name `name` and the line. */
cairn_status store_config_parse(store_config *c, const char *name, const char *text, size_t len);
/* Load a file (absent file = defaults), then apply environment overrides. */
cairn_status store_config_load(store_config *c, const char *path);
/* Raw value of section.key, or NULL. */
const char *store_config_get(const store_config *c, const char *section, const char *key);

/* The default config file written by `cairn init`. */
extern const char store_config_template[];

#endif
