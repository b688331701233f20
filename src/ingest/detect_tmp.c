/* detect_tmp.c — TEMPORARY minimal format detection (text, code, Markdown)
 * until the parsers part lands src/ingest/detect.c with the full
 * ingest_detect. Delete this file when detect.c lands. */
#include "ingest/ingest.h"
#include <string.h>
#include <strings.h>

const ingest_parser *ingest_detect(const char *path, const char *data, size_t len, const char **why)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    const char *ext = dot && dot != b ? dot + 1 : "";
    size_t probe = len < 8192 ? len : 8192;
    if (memchr(data, 0, probe)) {
        *why = "binary file (contains NUL bytes)";
        return NULL;
    }
    if (len >= 4 && !memcmp(data, "%PDF", 4)) {
        *why = "PDF (no PDF parser yet)";
        return NULL;
    }
    if (!strcasecmp(ext, "md") || !strcasecmp(ext, "markdown") || !strcasecmp(ext, "mdx") || !strcasecmp(ext, "mkd"))
        return &ingest_parser_markdown;
    if (ingest_code_language(path))
        return &ingest_parser_code;
    static const char *unsupported[] = {"html", "htm", "xhtml", "json", "jsonl", "ndjson", "csv", "tsv", "pdf"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(unsupported); i++) {
        if (!strcasecmp(ext, unsupported[i])) {
            *why = "no parser for this format yet";
            return NULL;
        }
    }
    /* Control characters other than whitespace mean binary. */
    size_t ctl = 0;
    for (size_t i = 0; i < probe; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' && c != 0x1b)
            ctl++;
    }
    if (ctl * 100 > probe) {
        *why = "binary file (control bytes)";
        return NULL;
    }
    return &ingest_parser_text;
}
