/*
 * detect.c — choosing a parser for a file: content first, then extension.
 *
 * Order of the checks (first match wins):
 *   1. "%PDF-" in the first 1 KiB -> pdf (whatever the extension).
 *   2. A known binary signature (images, audio/video, archives, office
 *      zip containers, executables, databases, fonts, GGUF ...) -> skipped,
 *      with the format named in the reason.
 *   3. A UTF-16/UTF-32 byte order mark -> skipped (only UTF-8 is read).
 *   4. NUL bytes or many control characters in the first 8 KiB -> skipped
 *      as binary.
 *   5. The extension (case-insensitive): html, pdf, json, jsonl, csv, md,
 *      source code, plain text; known binary/unsupported extensions ->
 *      skipped.
 *   6. No or unknown extension: sniffed: "<!doctype html" / "<html" ->
 *      html; a first line that closes an object and a second that opens one
 *      -> jsonl; '{...}' / '[...]' (first and last non-space characters)
 *      -> json; "#!" -> code; otherwise text (checks 3-4 passed: it looks
 *      like text, whatever its extension).
 * Cost: reads at most the first 8 KiB plus the last few bytes.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "ingest/parse_common.h"
#include <string.h>
#include <strings.h>

#define SNIFF_BYTES 8192

typedef struct magic {
    size_t off;
    const char *bytes;
    size_t len;
    const char *why;
} magic;

static const magic magics[] = {
    {0, "\x89PNG\r\n\x1a\n", 8, "binary file: PNG image"},
    {0, "\xff\xd8\xff", 3, "binary file: JPEG image"},
    {0, "GIF87a", 6, "binary file: GIF image"},
    {0, "GIF89a", 6, "binary file: GIF image"},
    {0, "II*\0", 4, "binary file: TIFF image"},
    {0, "MM\0*", 4, "binary file: TIFF image"},
    {0, "\0\0\1\0", 4, "binary file: icon image"},
    {0, "8BPS", 4, "binary file: Photoshop image"},
    {0, "PK\x03\x04", 4, "zip archive (also docx/xlsx/pptx/odt/epub/jar): not supported"},
    {0, "PK\x05\x06", 4, "zip archive: not supported"},
    {0, "\x1f\x8b", 2, "gzip-compressed file: not supported"},
    {0, "BZh", 3, "bzip2-compressed file: not supported"},
    {0, "\xfd" "7zXZ\0", 6, "xz-compressed file: not supported"},
    {0, "\x28\xb5\x2f\xfd", 4, "zstd-compressed file: not supported"},
    {0, "7z\xbc\xaf\x27\x1c", 6, "7-zip archive: not supported"},
    {0, "Rar!\x1a\x07", 6, "RAR archive: not supported"},
    {257, "ustar", 5, "tar archive: not supported"},
    {0, "\x7f" "ELF", 4, "binary file: ELF executable or library"},
    {0, "\xcf\xfa\xed\xfe", 4, "binary file: Mach-O executable"},
    {0, "\xca\xfe\xba\xbe", 4, "binary file: Java class or Mach-O universal binary"},
    {0, "MZ", 2, "binary file: Windows executable"},
    {0, "\0asm", 4, "binary file: WebAssembly module"},
    {0, "SQLite format 3\0", 16, "binary file: SQLite database"},
    {0, "GGUF", 4, "binary file: GGUF model"},
    {0, "PAR1", 4, "binary file: Parquet data"},
    {0, "\x89HDF\r\n\x1a\n", 8, "binary file: HDF5 data"},
    {0, "\x93NUMPY", 6, "binary file: NumPy array"},
    {0, "RIFF", 4, "binary file: RIFF media (WAV/AVI/WebP)"},
    {0, "OggS", 4, "binary file: Ogg media"},
    {0, "fLaC", 4, "binary file: FLAC audio"},
    {0, "ID3", 3, "binary file: MP3 audio"},
    {4, "ftyp", 4, "binary file: MP4/QuickTime/HEIF media"},
    {0, "\x1a\x45\xdf\xa3", 4, "binary file: Matroska/WebM video"},
    {0, "wOFF", 4, "binary file: WOFF font"},
    {0, "wOF2", 4, "binary file: WOFF2 font"},
    {0, "OTTO", 4, "binary file: OpenType font"},
    {0, "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, "OLE compound file (old .doc/.xls/.ppt/.msg): not supported"},
    {0, "%!PS", 4, "PostScript document: not supported"},
};

typedef struct ext_map {
    const char *ext;
    const ingest_parser *parser; /* NULL: skipped with `why` */
    const char *why;
} ext_map;

static const ext_map exts[] = {
    {"html", &ingest_parser_html, NULL}, {"htm", &ingest_parser_html, NULL},
    {"xhtml", &ingest_parser_html, NULL}, {"shtml", &ingest_parser_html, NULL},
    {"pdf", &ingest_parser_pdf, NULL},
    {"json", &ingest_parser_json, NULL}, {"geojson", &ingest_parser_json, NULL},
    {"jsonl", &ingest_parser_jsonl, NULL}, {"ndjson", &ingest_parser_jsonl, NULL},
    {"csv", &ingest_parser_csv, NULL}, {"tsv", &ingest_parser_csv, NULL}, {"tab", &ingest_parser_csv, NULL},
    {"md", &ingest_parser_markdown, NULL}, {"markdown", &ingest_parser_markdown, NULL},
    {"mdown", &ingest_parser_markdown, NULL}, {"mkd", &ingest_parser_markdown, NULL},
    {"mdx", &ingest_parser_markdown, NULL},
    {"txt", &ingest_parser_text, NULL}, {"text", &ingest_parser_text, NULL}, {"rst", &ingest_parser_text, NULL},
    {"adoc", &ingest_parser_text, NULL}, {"org", &ingest_parser_text, NULL}, {"tex", &ingest_parser_text, NULL},
    {"log", &ingest_parser_text, NULL}, {"xml", &ingest_parser_text, NULL}, {"srt", &ingest_parser_text, NULL},
    /* source code: ingest_code_language() (text.c) decides, after this table */
    {"docx", NULL, "Word document (docx): not supported"}, {"doc", NULL, "Word document (doc): not supported"},
    {"xlsx", NULL, "spreadsheet (xlsx): not supported"}, {"xls", NULL, "spreadsheet (xls): not supported"},
    {"pptx", NULL, "presentation (pptx): not supported"}, {"ppt", NULL, "presentation (ppt): not supported"},
    {"odt", NULL, "OpenDocument file: not supported"}, {"ods", NULL, "OpenDocument file: not supported"},
    {"odp", NULL, "OpenDocument file: not supported"}, {"epub", NULL, "EPUB book: not supported"},
    {"rtf", &ingest_parser_rtf, NULL},
    {"o", NULL, "binary file: object code"}, {"a", NULL, "binary file: static library"},
    {"so", NULL, "binary file: shared library"}, {"dll", NULL, "binary file: Windows library"},
    {"exe", NULL, "binary file: Windows executable"}, {"class", NULL, "binary file: Java class"},
    {"pyc", NULL, "binary file: Python bytecode"}, {"bin", NULL, "binary file"},
    {"gguf", NULL, "binary file: GGUF model"}, {"safetensors", NULL, "binary file: model weights"},
    {"zip", NULL, "zip archive: not supported"}, {"gz", NULL, "gzip-compressed file: not supported"},
    {"tgz", NULL, "compressed archive: not supported"}, {"bz2", NULL, "bzip2-compressed file: not supported"},
    {"xz", NULL, "xz-compressed file: not supported"}, {"zst", NULL, "zstd-compressed file: not supported"},
    {"7z", NULL, "7-zip archive: not supported"}, {"rar", NULL, "RAR archive: not supported"},
    {"tar", NULL, "tar archive: not supported"}, {"iso", NULL, "disk image: not supported"},
    {"png", NULL, "binary file: image"}, {"jpg", NULL, "binary file: image"}, {"jpeg", NULL, "binary file: image"},
    {"gif", NULL, "binary file: image"}, {"webp", NULL, "binary file: image"}, {"bmp", NULL, "binary file: image"},
    {"ico", NULL, "binary file: image"}, {"tif", NULL, "binary file: image"}, {"tiff", NULL, "binary file: image"},
    {"svg", NULL, "SVG image: not supported"}, {"heic", NULL, "binary file: image"},
    {"mp3", NULL, "binary file: audio"}, {"wav", NULL, "binary file: audio"}, {"flac", NULL, "binary file: audio"},
    {"ogg", NULL, "binary file: audio"}, {"m4a", NULL, "binary file: audio"}, {"mp4", NULL, "binary file: video"},
    {"mkv", NULL, "binary file: video"}, {"mov", NULL, "binary file: video"}, {"avi", NULL, "binary file: video"},
    {"webm", NULL, "binary file: video"}, {"ttf", NULL, "binary file: font"}, {"otf", NULL, "binary file: font"},
    {"woff", NULL, "binary file: font"}, {"woff2", NULL, "binary file: font"},
    {"sqlite", NULL, "binary file: database"}, {"db", NULL, "binary file: database"},
    {"parquet", NULL, "binary file: Parquet data"}, {"npy", NULL, "binary file: NumPy array"},
    {"pkl", NULL, "binary file: Python pickle"}, {"ps", NULL, "PostScript document: not supported"},
};

/* Files known by their whole name. */
static const struct { const char *name; const ingest_parser *parser; } names[] = {
    {"makefile", &ingest_parser_code}, {"gnumakefile", &ingest_parser_code}, {"dockerfile", &ingest_parser_code},
    {"containerfile", &ingest_parser_code}, {"rakefile", &ingest_parser_code}, {"gemfile", &ingest_parser_code},
    {"jenkinsfile", &ingest_parser_code},
};

/* Names whose zip content office.c reads. */
static bool office_name(const char *path)
{
    static const char *const e[] = {"docx", "docm", "dotx", "dotm", "pptx", "pptm", "potx", "ppsx", "xlsx", "xlsm",
                                    "xltx", "odt", "ott", "odp", "otp", "ods", "ots", "epub"};
    const char *ext = pc_path_ext(path);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(e); i++)
        if (!strcasecmp(ext, e[i]))
            return true;
    return false;
}

static const char *basename_of(const char *path)
{
    const char *b = path ? strrchr(path, '/') : NULL;
    return b ? b + 1 : path ? path : "";
}

static bool has_prefix_ci(const char *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && strncasecmp(s, prefix, k) == 0;
}

static bool looks_like_html(const char *s, size_t n)
{
    size_t i = pc_bom_len(s, n);
    while (i < n && pc_is_space((unsigned char)s[i]))
        i++;
    s += i;
    n -= i;
    if (has_prefix_ci(s, n, "<!doctype html") || has_prefix_ci(s, n, "<html"))
        return true;
    /* a comment or XML prolog first, then html within the sniffed bytes */
    if (has_prefix_ci(s, n, "<!--") || has_prefix_ci(s, n, "<?xml")) {
        size_t k = CAIRN_MIN(n, (size_t)SNIFF_BYTES);
        for (size_t j = 0; j + 5 <= k; j++)
            if (s[j] == '<' && (has_prefix_ci(s + j, k - j, "<html") || has_prefix_ci(s + j, k - j, "<!doctype html")))
                return true;
    }
    return false;
}

/* '{'/'[' first and a matching last non-space character; JSONL when the
 * first line closes an object and the next line opens one. */
static const ingest_parser *sniff_json(const char *s, size_t n)
{
    size_t i = pc_bom_len(s, n);
    while (i < n && pc_is_space((unsigned char)s[i]))
        i++;
    size_t e = n;
    while (e > i && pc_is_space((unsigned char)s[e - 1]))
        e--;
    if (i >= e || (s[i] != '{' && s[i] != '['))
        return NULL;
    if (s[i] == '{') {
        const char *nl = memchr(s + i, '\n', e - i);
        if (nl) {
            const char *a = nl;
            while (a > s + i && pc_is_space((unsigned char)a[-1]))
                a--;
            const char *b = nl + 1;
            while (b < s + e && pc_is_space((unsigned char)*b))
                b++;
            if (a > s + i && a[-1] == '}' && b < s + e && *b == '{' && s[e - 1] == '}')
                return &ingest_parser_jsonl;
        }
    }
    if ((s[i] == '{' && s[e - 1] == '}') || (s[i] == '[' && s[e - 1] == ']'))
        return &ingest_parser_json;
    return NULL;
}

/* Binary checks on the first SNIFF_BYTES: NULs, UTF-16/32 marks, control bytes. */
static const char *binary_reason(const char *data, size_t len)
{
    const unsigned char *u = (const unsigned char *)data;
    if (len >= 4 && ((u[0] == 0xFF && u[1] == 0xFE && u[2] == 0 && u[3] == 0) ||
                     (u[0] == 0 && u[1] == 0 && u[2] == 0xFE && u[3] == 0xFF)))
        return "UTF-32 text: not supported (convert to UTF-8)";
    if (len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF)))
        return "UTF-16 text: not supported (convert to UTF-8)";
    size_t n = CAIRN_MIN(len, (size_t)SNIFF_BYTES);
    if (memchr(data, 0, n))
        return "binary file: contains NUL bytes";
    size_t ctl = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = u[i];
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\v' && c != 0x1b)
            ctl++;
    }
    /* text has almost no control characters; allow a few stray ones */
    if (ctl > 8 && ctl * 100 > n)
        return "binary file: many control characters";
    return NULL;
}

const ingest_parser *ingest_detect(const char *path, const char *data, size_t len, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!data)
        len = 0;
    size_t head = CAIRN_MIN(len, (size_t)1024);
    if (head >= 5 && memmem(data, head, "%PDF-", 5))
        return &ingest_parser_pdf;
    if (len >= 5 && memcmp(data, "{\\rtf", 5) == 0)
        return &ingest_parser_rtf;
    /* a zip named as an office document or e-book: office.c looks inside
     * (the members decide the format; a plain zip is skipped there) */
    if (len >= 4 && memcmp(data, "PK\x03\x04", 4) == 0 && office_name(path))
        return &ingest_parser_office;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(magics); i++) {
        const magic *m = &magics[i];
        if (len >= m->off + m->len && memcmp(data + m->off, m->bytes, m->len) == 0) {
            /* "MZ" and "ID3" and "RIFF" are short: require a binary-looking file too */
            if (m->len <= 3 && !binary_reason(data, len))
                continue;
            *why = m->why;
            return NULL;
        }
    }
    const char *bin = binary_reason(data, len);
    if (bin) {
        *why = bin;
        return NULL;
    }
    const char *ext = pc_path_ext(path);
    if (*ext) {
        for (size_t i = 0; i < CAIRN_ARRAY_LEN(exts); i++) {
            if (strcasecmp(exts[i].ext, ext) == 0) {
                if (!exts[i].parser)
                    *why = exts[i].why;
                return exts[i].parser;
            }
        }
    }
    if (man_looks_like(path, data, len))
        return &ingest_parser_man;
    if (ingest_code_language(path))
        return &ingest_parser_code;
    const char *base = basename_of(path);
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(names); i++)
        if (strcasecmp(names[i].name, base) == 0)
            return names[i].parser;
    if (looks_like_html(data, len))
        return &ingest_parser_html;
    const ingest_parser *j = sniff_json(data, len);
    if (j)
        return j;
    if (len >= 2 && data[0] == '#' && data[1] == '!')
        return &ingest_parser_code;
    if (!*ext)
        return &ingest_parser_text; /* README, LICENSE, NOTES ...: text (checked above) */
    /* An unknown extension on a text-looking file: read it as text. The
     * size and binary checks above already passed. */
    return &ingest_parser_text;
}
