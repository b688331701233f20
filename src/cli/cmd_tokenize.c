/* cmd_tokenize.c — `cairn tokenize`: a model's tokenizer on the command line.
 *
 *   cairn tokenize -m MODEL [-p TEXT | -f FILE] [--no-special] [--parse-special] [--show | --json]
 *   cairn tokenize -m MODEL --decode "ID ID ..." [--special]
 *
 * Without -p/-f the text is read from standard input. Default output: the ids
 * on one line; --show: one "id<TAB>piece" line per token; --json: {"ids": [...]}.
 */
#include "base/base.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENIZE_MAX_INPUT ((size_t)1 << 30)

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn tokenize -m MODEL [-p TEXT | -f FILE] [--no-special] [--parse-special]\n"
               "                      [--show | --json]\n"
               "       cairn tokenize -m MODEL --decode \"ID ID ...\" [--special]\n"
               "  -m MODEL          GGUF file (only its tokenizer metadata is read)\n"
               "  -p TEXT           text to tokenize (default: standard input)\n"
               "  -f FILE           read the text from FILE\n"
               "  --no-special      do not add BOS/EOS (CLS/SEP)\n"
               "  --parse-special   turn special-token text such as <|im_start|> into its id\n"
               "  --show            one line per token: id and its text\n"
               "  --json            {\"ids\": [...]}\n"
               "  --decode IDS      print the text of a list of ids\n"
               "  --special         with --decode: render control tokens too\n");
}

static void put_escaped(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static int do_decode(const cairn_tokenizer *t, const char *list, bool special)
{
    size_t cap = 64, n = 0;
    int32_t *ids = cairn_malloc(cap * sizeof *ids);
    if (!ids)
        return 1;
    for (const char *p = list; *p;) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) {
            if (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']') {
                p++;
                continue;
            }
            fprintf(stderr, "cairn tokenize: not a token id: \"%.20s\"\n", p);
            cairn_free(ids);
            return 2;
        }
        if (n == cap) {
            int32_t *q = cairn_reallocarray(ids, cap * 2, sizeof *ids);
            if (!q) {
                cairn_free(ids);
                return 1;
            }
            ids = q;
            cap *= 2;
        }
        ids[n++] = (int32_t)v;
        p = e;
    }
    cairn_buf out;
    cairn_buf_init(&out, 0);
    cairn_status st = tokenizer_decode_ex(t, ids, n, special ? TOKENIZER_DECODE_SPECIAL : 0, &out);
    cairn_free(ids);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn tokenize: %s\n", cairn_last_error());
        cairn_buf_free(&out);
        return 1;
    }
    fwrite(out.data, 1, out.len, stdout);
    putchar('\n');
    cairn_buf_free(&out);
    return 0;
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL, *file = NULL, *decode = NULL;
    bool add_special = true, parse_special = false, show = false, json = false, special = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(a, "-p") && i + 1 < argc) {
            text = argv[++i];
        } else if (!strcmp(a, "-f") && i + 1 < argc) {
            file = argv[++i];
        } else if (!strcmp(a, "--decode") && i + 1 < argc) {
            decode = argv[++i];
        } else if (!strcmp(a, "--no-special")) {
            add_special = false;
        } else if (!strcmp(a, "--parse-special")) {
            parse_special = true;
        } else if (!strcmp(a, "--special")) {
            special = true;
        } else if (!strcmp(a, "--show")) {
            show = true;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else {
            fprintf(stderr, "cairn tokenize: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || (text && file)) {
        usage(stderr);
        return 2;
    }
    gguf_file *g = NULL;
    cairn_tokenizer *t = NULL;
    cairn_status st = gguf_open(model, &g);
    if (st == CAIRN_OK)
        st = tokenizer_load(g, &t);
    gguf_close(g);
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn tokenize: %s: %s\n", model, cairn_last_error());
        return 1;
    }
    if (decode) {
        int rc = do_decode(t, decode, special);
        tokenizer_free(t);
        return rc;
    }

    char *buf = NULL;
    size_t len = 0;
    if (file) {
        st = cairn_file_read_all(file, TOKENIZE_MAX_INPUT, &buf, &len);
    } else if (!text) {
        cairn_buf in;
        cairn_buf_init(&in, TOKENIZE_MAX_INPUT);
        char chunk[65536];
        size_t k;
        st = CAIRN_OK;
        while (st == CAIRN_OK && (k = fread(chunk, 1, sizeof chunk, stdin)) > 0)
            st = cairn_buf_append(&in, chunk, k);
        len = in.len;
        buf = cairn_buf_take(&in);
    }
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn tokenize: %s\n", cairn_last_error());
        cairn_free(buf);
        tokenizer_free(t);
        return 1;
    }
    const char *s = text ? text : buf ? buf : "";
    if (text)
        len = strlen(text);

    size_t n = 0;
    int32_t *ids = NULL;
    st = tokenizer_encode(t, s, len, add_special, parse_special, NULL, 0, &n);
    if (st == CAIRN_OK) {
        ids = cairn_calloc(n ? n : 1, sizeof *ids);
        st = ids ? tokenizer_encode(t, s, len, add_special, parse_special, ids, n, &n)
                 : cairn_fail(CAIRN_ERR_NOMEM, "out of memory for %zu ids", n);
    }
    if (st != CAIRN_OK) {
        fprintf(stderr, "cairn tokenize: %s\n", cairn_last_error());
    } else if (json) {
        printf("{\"ids\": [");
        for (size_t i = 0; i < n; i++)
            printf(i ? ", %d" : "%d", ids[i]);
        printf("], \"n_tokens\": %zu}\n", n);
    } else if (show) {
        for (size_t i = 0; i < n; i++) {
            size_t tl;
            const char *tt = tokenizer_token_text(t, ids[i], &tl);
            printf("%d\t", ids[i]);
            put_escaped(tt, tl);
            putchar('\n');
        }
    } else {
        for (size_t i = 0; i < n; i++)
            printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    cairn_free(ids);
    cairn_free(buf);
    tokenizer_free(t);
    return st == CAIRN_OK ? 0 : 1;
}
