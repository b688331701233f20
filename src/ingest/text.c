/* text.c — plain text and source code parsers.
 *
 * Plain text: paragraphs are separated by blank lines; a form feed (\f)
 * starts a new page (pdftotext-style output keeps its page numbers).
 * Source code: blocks are runs of non-blank lines (functions, classes and
 * their comments usually stay together); indentation is kept. The title is
 * the file name; code gets a `language` metadata field from its extension.
 */
#include "ingest/ingest.h"
#include <string.h>
#include <strings.h>

static const char *base_name(const char *path)
{
    const char *b = strrchr(path, '/');
    return b ? b + 1 : path;
}

static bool blank_line(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\v')
            return false;
    return true;
}

/* Split `data` into blocks of non-blank lines; `kind` for every block. */
static cairn_status split_blocks(ingest_doc *d, const char *data, size_t len, block_kind kind, bool pages)
{
    size_t i = 0, start = SIZE_MAX, end = 0;
    int page = pages ? 1 : 0;
    while (i <= len) {
        const char *nl = i < len ? memchr(data + i, '\n', len - i) : NULL;
        size_t le = nl ? (size_t)(nl - data) : len;
        /* A form feed anywhere in the line ends the current block and page. */
        const char *ff = pages && le > i ? memchr(data + i, '\f', le - i) : NULL;
        if (ff) {
            size_t fe = (size_t)(ff - data);
            if (!blank_line(data + i, fe - i)) {
                if (start == SIZE_MAX)
                    start = i;
                end = fe;
            }
            if (start != SIZE_MAX)
                CAIRN_TRY(ingest_doc_add_block(d, kind, 0, page, data + start, end - start));
            start = SIZE_MAX;
            page++;
            i = fe + 1;
            continue;
        }
        if (blank_line(data + i, le - i)) {
            if (start != SIZE_MAX)
                CAIRN_TRY(ingest_doc_add_block(d, kind, 0, page, data + start, end - start));
            start = SIZE_MAX;
        } else {
            if (start == SIZE_MAX)
                start = i;
            end = le;
            while (end > start && (data[end - 1] == '\r' || data[end - 1] == ' ' || data[end - 1] == '\t'))
                end--;
        }
        if (!nl)
            break;
        i = le + 1;
    }
    if (start != SIZE_MAX)
        CAIRN_TRY(ingest_doc_add_block(d, kind, 0, page, data + start, end - start));
    return CAIRN_OK;
}

static cairn_status emit_doc(ingest_doc *d, const char *path, ingest_emit_fn emit, void *ctx)
{
    cairn_status st = CAIRN_OK;
    d->key = cairn_strdup("");
    d->title = cairn_strdup(base_name(path));
    if (!d->key || !d->title)
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    if (st == CAIRN_OK)
        st = emit(ctx, d);
    return st;
}

static cairn_status parse_text(const char *path, const char *data, size_t len,
                               const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    ingest_doc d;
    ingest_doc_init(&d);
    d.type = "text";
    bool pages = memchr(data, '\f', len) != NULL;
    cairn_status st = split_blocks(&d, data, len, BLOCK_PARAGRAPH, pages);
    if (st == CAIRN_OK)
        st = emit_doc(&d, path, emit, ctx);
    ingest_doc_free(&d);
    return st;
}

static const struct { const char *ext, *lang; } languages[] = {
    {"c", "c"}, {"h", "c"}, {"cc", "cpp"}, {"cpp", "cpp"}, {"cxx", "cpp"}, {"hpp", "cpp"}, {"hh", "cpp"},
    {"py", "python"}, {"pyi", "python"}, {"js", "javascript"}, {"mjs", "javascript"}, {"cjs", "javascript"},
    {"jsx", "javascript"}, {"ts", "typescript"}, {"tsx", "typescript"}, {"go", "go"}, {"rs", "rust"},
    {"java", "java"}, {"kt", "kotlin"}, {"scala", "scala"}, {"rb", "ruby"}, {"php", "php"},
    {"cs", "csharp"}, {"swift", "swift"}, {"m", "objc"}, {"mm", "objc"}, {"sh", "shell"},
    {"bash", "shell"}, {"zsh", "shell"}, {"fish", "shell"}, {"pl", "perl"}, {"pm", "perl"},
    {"lua", "lua"}, {"r", "r"}, {"jl", "julia"}, {"hs", "haskell"}, {"ml", "ocaml"}, {"mli", "ocaml"},
    {"ex", "elixir"}, {"exs", "elixir"}, {"erl", "erlang"}, {"clj", "clojure"}, {"el", "elisp"},
    {"lisp", "lisp"}, {"scm", "scheme"}, {"sql", "sql"}, {"cmake", "cmake"}, {"mk", "make"},
    {"zig", "zig"}, {"nim", "nim"}, {"dart", "dart"}, {"vue", "vue"}, {"svelte", "svelte"},
    {"css", "css"}, {"scss", "scss"}, {"less", "less"}, {"toml", "toml"}, {"yaml", "yaml"},
    {"yml", "yaml"}, {"ini", "ini"}, {"cfg", "ini"}, {"proto", "protobuf"}, {"tf", "terraform"},
    {"f90", "fortran"}, {"f", "fortran"}, {"asm", "asm"}, {"s", "asm"}, {"v", "verilog"},
    {"vhd", "vhdl"}, {"ps1", "powershell"}, {"bat", "batch"}, {"groovy", "groovy"}, {"gradle", "groovy"},
};

const char *ingest_code_language(const char *path)
{
    const char *b = base_name(path);
    if (!strcmp(b, "Makefile") || !strcmp(b, "makefile") || !strcmp(b, "GNUmakefile"))
        return "make";
    if (!strcmp(b, "CMakeLists.txt"))
        return "cmake";
    if (!strcmp(b, "Dockerfile"))
        return "dockerfile";
    const char *dot = strrchr(b, '.');
    if (!dot || dot == b)
        return NULL;
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(languages); i++)
        if (!strcasecmp(dot + 1, languages[i].ext))
            return languages[i].lang;
    return NULL;
}

static cairn_status parse_code(const char *path, const char *data, size_t len,
                               const ingest_options *opt, ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    ingest_doc d;
    ingest_doc_init(&d);
    d.type = "code";
    cairn_status st = split_blocks(&d, data, len, BLOCK_CODE, false);
    const char *lang = ingest_code_language(path);
    if (st == CAIRN_OK && lang)
        st = meta_set_string(&d.meta, "language", lang);
    if (st == CAIRN_OK)
        st = emit_doc(&d, path, emit, ctx);
    ingest_doc_free(&d);
    return st;
}

const ingest_parser ingest_parser_text = {"text", parse_text};
const ingest_parser ingest_parser_code = {"code", parse_code};
