/*
 * man.c — manual pages (roff with the man(7) or mdoc(7) macros) into text
 * with their section structure. Usually read from man1/ssh.1.gz (the
 * compressed-file path, decompress.h, hands over the inner "ssh.1").
 *
 * Detected (man_looks_like) by a name ending in .man or .<section> (a digit
 * 1-9 and up to 6 letters: ls.1, printf.3, Foo.3pm, x509.1ssl) and
 * content whose first line that is not blank or a comment is a control line
 * ('.' or '\'').
 *
 * What is kept:
 *   - .TH NAME SECTION / .Dt NAME SECTION -> title "NAME(SECTION)",
 *     metadata `section` (and `date` from .TH's third argument / .Dd, as a
 *     string);
 *   - .SH / .Sh -> heading level 1, .SS / .Ss -> level 2 (the text is the
 *     arguments, or the next text line when there are none);
 *   - .PP .LP .P .Pp .sp .br, blank lines -> paragraph breaks;
 *   - .TP (the next line is the tag) / .IP TAG / .It -> a list item;
 *   - .nf/.fi, .EX/.EE, .Bd -literal/.Ed -> a code block, lines kept;
 *   - .TS/.TE tables: the format lines are dropped, each data row is a
 *     table row with its tab-separated cells joined by " | ";
 *   - font and inline macros (.B .I .BR .IR ..., mdoc's .Fl .Ar .Op .Xr
 *     .Dq ...) -> their text (".Fl v" -> "-v", ".Xr ssh 1" -> "ssh(1)",
 *     ".Op Fl v" -> "[-v]", .Nd -> "— text");
 *   - escapes: fonts (\fB, \f(CW, \f[...]) and sizes dropped; \- \e \& \(em
 *     \[u00E9] and the common named characters decoded; \" comments and
 *     .\" lines dropped.
 * What is dropped: macro and string definitions (.de ... ..), .ig blocks,
 * conditionals (.if/.ie/.el, with their \{ ... \} blocks), .so includes
 * (a page that is only ".so man1/x.1" becomes the text "See man1/x.1."),
 * and every other request.
 * Cost: one pass, O(n). Never fails on malformed input (unknown macros and
 * escapes are dropped); caps: the document's blocks (ingest_doc_add_block).
 */
#include "ingest/parse_common.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAN_MAX_ARGS 64

bool man_looks_like(const char *path, const char *data, size_t len)
{
    const char *ext = pc_path_ext(path);
    bool name_ok = !strcasecmp(ext, "man");
    if (!name_ok && ext[0] >= '1' && ext[0] <= '9') {
        size_t k = strlen(ext);
        name_ok = k <= 7;
        for (size_t i = 1; name_ok && i < k; i++)
            name_ok = isalpha((unsigned char)ext[i]) != 0;
    }
    if (!name_ok)
        return false;
    size_t i = pc_bom_len(data, len);
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        const char *l = data + i;
        size_t n = e - i;
        while (n && (l[n - 1] == '\r' || l[n - 1] == ' ' || l[n - 1] == '\t'))
            n--;
        bool comment = n >= 2 && (l[0] == '.' || l[0] == '\'') && l[1] == '\\' && n >= 3 && (l[2] == '"' || l[2] == '#');
        if (n == 1 && l[0] == '.')
            comment = true;
        if (n && !comment)
            return l[0] == '.' || l[0] == '\'';
        if (!nl)
            break;
        i = e + 1;
    }
    return false;
}

/* ---- state ---- */
typedef struct man {
    ingest_doc *d;
    cairn_buf para;         /* the block being filled */
    block_kind kind;        /* of para */
    int level;
    bool nofill;            /* .nf / .EX / .Bd -literal: keep lines */
    bool table;             /* inside .TS/.TE */
    bool table_fmt;         /* .TS: still in the format lines */
    int heading_next;       /* .SH without arguments: the next text line is a heading of this level */
    bool tag_next;          /* .TP: the next text line is the tag */
    bool space;             /* para ends in a space (or is empty) */
    char name[128];         /* .Nm's remembered name */
    char *title;
} man;

static cairn_status flush(man *m)
{
    cairn_status st = CAIRN_OK;
    const char *s = m->para.data ? m->para.data : "";
    size_t n = m->para.len;
    if (m->kind != BLOCK_CODE)
        pc_trim(&s, &n);
    else
        while (n && s[n - 1] == '\n')
            n--;
    if (n)
        st = ingest_doc_add_block(m->d, m->kind, m->level, 0, s, n);
    cairn_buf_reset(&m->para);
    m->kind = m->nofill ? BLOCK_CODE : BLOCK_PARAGRAPH;
    m->level = 0;
    m->space = true;
    return st;
}

static cairn_status start(man *m, block_kind kind, int level)
{
    CAIRN_TRY(flush(m));
    m->kind = kind;
    m->level = level;
    return CAIRN_OK;
}

/* Named characters: \(xx and \[name]. */
static const char *special_char(const char *nm, size_t n)
{
    static const struct { const char *nm, *s; } t[] = {
        {"em", "\xe2\x80\x94"}, {"en", "\xe2\x80\x93"}, {"hy", "-"}, {"mi", "-"}, {"bu", "\xe2\x80\xa2"},
        {"lq", "\xe2\x80\x9c"}, {"rq", "\xe2\x80\x9d"}, {"oq", "\xe2\x80\x98"}, {"cq", "\xe2\x80\x99"},
        {"aq", "'"}, {"dq", "\""}, {"co", "\xc2\xa9"}, {"rg", "\xc2\xae"}, {"tm", "\xe2\x84\xa2"},
        {"pl", "+"}, {"mu", "\xc3\x97"}, {"de", "\xc2\xb0"}, {"ga", "`"}, {"ti", "~"}, {"ha", "^"},
        {"ba", "|"}, {"rs", "\\"}, {"sl", "/"}, {">=", "\xe2\x89\xa5"}, {"<=", "\xe2\x89\xa4"},
        {"!=", "\xe2\x89\xa0"}, {"->", "\xe2\x86\x92"}, {"<-", "\xe2\x86\x90"}, {"Fo", "\xc2\xab"},
        {"Fc", "\xc2\xbb"}, {"lh", "\xe2\x98\x9c"}, {"rh", "\xe2\x98\x9e"}, {"ua", "\xe2\x86\x91"},
        {"da", "\xe2\x86\x93"}, {"sc", "\xc2\xa7"}, {"ps", "\xc2\xb6"}, {"dg", "\xe2\x80\xa0"},
        {"Tm", "\xe2\x84\xa2"}, {"R", "\xc2\xae"}, {"eq", "="}, {"sq", "\xe2\x96\xa1"}, {"at", "@"},
        {"sh", "#"}, {"Do", "$"}, {"ct", "\xc2\xa2"}, {"Po", "\xc2\xa3"}, {"Ye", "\xc2\xa5"},
        {"Eu", "\xe2\x82\xac"}, {"eu", "\xe2\x82\xac"}, {"'e", "\xc3\xa9"}, {"`e", "\xc3\xa8"},
        {"'a", "\xc3\xa1"}, {":u", "\xc3\xbc"}, {":o", "\xc3\xb6"}, {":a", "\xc3\xa4"}, {"ss", "\xc3\x9f"},
    };
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(t); i++)
        if (strlen(t[i].nm) == n && !memcmp(t[i].nm, nm, n))
            return t[i].s;
    return NULL;
}

static cairn_status put_codepoint(cairn_buf *b, unsigned long cp)
{
    char u[4];
    size_t k;
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return CAIRN_OK;
    if (cp < 0x80) {
        u[0] = (char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        k = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        k = 4;
    }
    return cairn_buf_append(b, u, k);
}

/* The name after an escape letter: "x", "(xx" or "[name]"; *i moves past it. */
static void esc_name(const char *s, size_t n, size_t *i, const char **nm, size_t *nl)
{
    *nm = s + *i;
    *nl = 0;
    if (*i >= n)
        return;
    if (s[*i] == '(') {
        *nm = s + *i + 1;
        *nl = CAIRN_MIN((size_t)2, n - *i - 1);
        *i += 1 + *nl;
    } else if (s[*i] == '[') {
        const char *e = memchr(s + *i, ']', n - *i);
        size_t end = e ? (size_t)(e - s) : n;
        *nm = s + *i + 1;
        *nl = end - *i - 1;
        *i = e ? end + 1 : n;
    } else {
        *nl = 1;
        *i += 1;
    }
}

/* Skip a delimited argument: \h'...' and the like. */
static void esc_skip_delimited(const char *s, size_t n, size_t *i)
{
    if (*i >= n)
        return;
    char q = s[(*i)++];
    const char *e = memchr(s + *i, q, n - *i);
    *i = e ? (size_t)(e - s) + 1 : n;
}

/* Decode roff text (escapes) into b. Stops at a \" comment. */
static cairn_status decode(cairn_buf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *bs = memchr(s + i, '\\', n - i);
        size_t run = bs ? (size_t)(bs - s) - i : n - i;
        if (run)
            CAIRN_TRY(cairn_buf_append(b, s + i, run));
        i += run;
        if (i >= n)
            break;
        i++; /* the backslash */
        if (i >= n)
            break;
        char c = s[i++];
        const char *nm;
        size_t nl;
        switch (c) {
        case '"':
        case '#':
            return CAIRN_OK; /* comment to the end of the line */
        case 'f':
        case 'F':
        case 'n':
        case 'g':
        case 'k':
        case 'm':
        case 'M':
        case 'Y':
        case 'V':
        case '$':
            esc_name(s, n, &i, &nm, &nl);
            break;
        case 's':
            if (i < n && (s[i] == '+' || s[i] == '-'))
                i++;
            if (i < n && (s[i] == '(' || s[i] == '['))
                esc_name(s, n, &i, &nm, &nl);
            else
                while (i < n && isdigit((unsigned char)s[i]))
                    i++;
            break;
        case '*': {
            esc_name(s, n, &i, &nm, &nl);
            const char *t = nl == 1 && nm[0] == 'R' ? "\xc2\xae" : special_char(nm, nl);
            if (t)
                CAIRN_TRY(cairn_buf_puts(b, t));
            break;
        }
        case '(':
        case '[': {
            i--;
            esc_name(s, n, &i, &nm, &nl);
            const char *t = special_char(nm, nl);
            if (t)
                CAIRN_TRY(cairn_buf_puts(b, t));
            else if (nl >= 5 && nl <= 7 && nm[0] == 'u') {
                unsigned long cp = 0;
                bool ok = true;
                for (size_t k = 1; k < nl && ok; k++) {
                    int h = nm[k];
                    ok = isxdigit(h) != 0;
                    cp = cp * 16 + (unsigned long)(isdigit(h) ? h - '0' : (tolower(h) - 'a' + 10));
                }
                if (ok)
                    CAIRN_TRY(put_codepoint(b, cp));
            }
            break;
        }
        case 'h':
        case 'v':
        case 'w':
        case 'l':
        case 'L':
        case 'o':
        case 'X':
        case 'D':
        case 'b':
        case 'x':
        case 'A':
        case 'B':
        case 'C':
        case 'N':
        case 'R':
        case 'Z':
            esc_skip_delimited(s, n, &i);
            break;
        case '-': CAIRN_TRY(cairn_buf_putc(b, '-')); break;
        case 'e':
        case '\\': CAIRN_TRY(cairn_buf_putc(b, '\\')); break;
        case ' ':
        case '~':
        case '0': CAIRN_TRY(cairn_buf_putc(b, ' ')); break;
        case 't': CAIRN_TRY(cairn_buf_putc(b, '\t')); break;
        case '.': CAIRN_TRY(cairn_buf_putc(b, '.')); break;
        case '\'': CAIRN_TRY(cairn_buf_putc(b, '\'')); break;
        case '`': CAIRN_TRY(cairn_buf_putc(b, '`')); break;
        case '{':
        case '}':
        case '&':
        case '|':
        case '^':
        case ',':
        case '/':
        case '%':
        case ':':
        case 'c':
        case 'a':
        case 'p':
        case 'r':
        case 'd':
        case 'u':
        case 'z':
        case 'E':
            break;
        default:
            CAIRN_TRY(cairn_buf_putc(b, c));
            break;
        }
    }
    return CAIRN_OK;
}

/* Text (already a line of content) into the current block. */
static cairn_status add_text(man *m, const char *s, size_t n)
{
    if (m->nofill) {
        CAIRN_TRY(decode(&m->para, s, n));
        return cairn_buf_putc(&m->para, '\n');
    }
    cairn_buf t;
    cairn_buf_init(&t, 0);
    cairn_status st = decode(&t, s, n);
    if (st == CAIRN_OK && t.len)
        st = pc_append_collapsed(&m->para, t.data, t.len, &m->space);
    if (st == CAIRN_OK && t.len && !m->space) {
        st = cairn_buf_putc(&m->para, ' ');
        m->space = true;
    }
    cairn_buf_free(&t);
    return st;
}

/* Split a macro line's arguments (after the name): whitespace separated,
 * "quoted" ("" inside is one quote). Pointers into a copy in *store. */
static size_t split_args(const char *s, size_t n, char *store, const char **argv, size_t *argl)
{
    size_t argc = 0, i = 0, o = 0;
    while (i < n && argc < MAN_MAX_ARGS) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n)
            break;
        if (s[i] == '\\' && i + 1 < n && s[i + 1] == '"')
            break; /* comment */
        argv[argc] = store + o;
        if (s[i] == '"') {
            i++;
            while (i < n) {
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        store[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                store[o++] = s[i++];
            }
        } else {
            while (i < n && s[i] != ' ' && s[i] != '\t') {
                if (s[i] == '\\' && i + 1 < n) {
                    store[o++] = s[i++];
                }
                store[o++] = s[i++];
            }
        }
        argl[argc] = (size_t)(store + o - argv[argc]);
        store[o++] = 0;
        argc++;
    }
    return argc;
}

static bool is(const char *a, size_t n, const char *name) { return strlen(name) == n && !memcmp(a, name, n); }

/* mdoc macros that may appear inside a line (callable). */
static bool mdoc_callable(const char *a, size_t n)
{
    static const char *const names[] = {
        "Ad", "An", "Ar", "Cd", "Cm", "Dv", "Er", "Ev", "Fa", "Fl", "Fn", "Ft", "Ic", "Li", "Nm", "Pa", "Va", "Vt",
        "Xr", "Em", "Sy", "Op", "Oo", "Oc", "Dq", "Do", "Dc", "Qq", "Qo", "Qc", "Sq", "So", "Sc", "Pq", "Po", "Pc",
        "Bq", "Bo", "Bc", "Brq", "Bro", "Brc", "Aq", "Ao", "Ac", "Ns", "No", "Ql", "Ta", "Ux", "Bx", "At", "Fx",
        "Nx", "Ox", "Lk", "Mt", "Ms", "Tn", "Sm", "Eo", "Ec", "Es", "Ek", "Fo", "Fc", "Dl", "St", "Lb", "In", "Ot",
        "Pf", "Sx", "Ux"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(names); i++)
        if (is(a, n, names[i]))
            return true;
    return false;
}

static bool punct(const char *a, size_t n)
{
    return n == 1 && strchr(".,;:?!)]", a[0]);
}

/* An mdoc line's arguments into text: words with single spaces, callable
 * macros turned into their text, enclosures closed at the end of line. */
static cairn_status mdoc_inline(man *m, cairn_buf *o, const char **av, const size_t *al, size_t ac)
{
    const char *closers[MAN_MAX_ARGS];
    size_t nclose = 0;
    bool nospace = false, flag = false;
    for (size_t i = 0; i < ac; i++) {
        const char *a = av[i];
        size_t n = al[i];
        if (mdoc_callable(a, n)) {
            const char *open = NULL, *close = NULL;
            flag = false;
            if (is(a, n, "Ns") || is(a, n, "Pf")) {
                nospace = true;
                continue;
            } else if (is(a, n, "Fl")) {
                flag = true;
                if (i + 1 >= ac || mdoc_callable(av[i + 1], al[i + 1]) || punct(av[i + 1], al[i + 1])) {
                    if (o->len && !nospace)
                        CAIRN_TRY(cairn_buf_putc(o, ' '));
                    CAIRN_TRY(cairn_buf_putc(o, '-'));
                    nospace = false;
                    flag = false;
                }
                continue;
            } else if (is(a, n, "Op") || is(a, n, "Bq")) {
                open = "[";
                close = "]";
            } else if (is(a, n, "Oo") || is(a, n, "Bo")) {
                open = "[";
            } else if (is(a, n, "Oc") || is(a, n, "Bc")) {
                CAIRN_TRY(cairn_buf_putc(o, ']'));
                continue;
            } else if (is(a, n, "Dq")) {
                open = "\xe2\x80\x9c";
                close = "\xe2\x80\x9d";
            } else if (is(a, n, "Do")) {
                open = "\xe2\x80\x9c";
            } else if (is(a, n, "Dc")) {
                CAIRN_TRY(cairn_buf_puts(o, "\xe2\x80\x9d"));
                continue;
            } else if (is(a, n, "Qq")) {
                open = close = "\"";
            } else if (is(a, n, "Sq") || is(a, n, "Ql")) {
                open = "\xe2\x80\x98";
                close = "\xe2\x80\x99";
            } else if (is(a, n, "Pq")) {
                open = "(";
                close = ")";
            } else if (is(a, n, "Po")) {
                open = "(";
            } else if (is(a, n, "Pc")) {
                CAIRN_TRY(cairn_buf_putc(o, ')'));
                continue;
            } else if (is(a, n, "Aq")) {
                open = "<";
                close = ">";
            } else if (is(a, n, "Brq")) {
                open = "{";
                close = "}";
            } else if (is(a, n, "Ta")) {
                CAIRN_TRY(cairn_buf_puts(o, " |"));
                continue;
            } else if (is(a, n, "Xr")) {
                if (i + 2 < ac && !mdoc_callable(av[i + 1], al[i + 1])) {
                    if (o->len && !nospace)
                        CAIRN_TRY(cairn_buf_putc(o, ' '));
                    CAIRN_TRY(decode(o, av[i + 1], al[i + 1]));
                    CAIRN_TRY(cairn_buf_putc(o, '('));
                    CAIRN_TRY(decode(o, av[i + 2], al[i + 2]));
                    CAIRN_TRY(cairn_buf_putc(o, ')'));
                    i += 2;
                    nospace = false;
                }
                continue;
            } else if (is(a, n, "Nm")) {
                if ((i + 1 >= ac || mdoc_callable(av[i + 1], al[i + 1]) || punct(av[i + 1], al[i + 1])) && m->name[0]) {
                    if (o->len && !nospace)
                        CAIRN_TRY(cairn_buf_putc(o, ' '));
                    CAIRN_TRY(cairn_buf_puts(o, m->name));
                    nospace = false;
                } else if (i + 1 < ac && !m->name[0]) {
                    snprintf(m->name, sizeof m->name, "%.*s", (int)al[i + 1], av[i + 1]);
                }
                continue;
            } else if (is(a, n, "Ar")) {
                if (i + 1 >= ac || mdoc_callable(av[i + 1], al[i + 1]) || punct(av[i + 1], al[i + 1])) {
                    if (o->len && !nospace)
                        CAIRN_TRY(cairn_buf_putc(o, ' '));
                    CAIRN_TRY(cairn_buf_puts(o, "file ..."));
                    nospace = false;
                }
                continue;
            } else {
                continue; /* font-like macros: their arguments are the text */
            }
            if (open) {
                if (o->len && !nospace)
                    CAIRN_TRY(cairn_buf_putc(o, ' '));
                CAIRN_TRY(cairn_buf_puts(o, open));
                nospace = true;
            }
            if (close)
                closers[nclose++] = close;
            continue;
        }
        if (o->len && !nospace && !punct(a, n))
            CAIRN_TRY(cairn_buf_putc(o, ' '));
        if (flag)
            CAIRN_TRY(cairn_buf_putc(o, '-'));
        CAIRN_TRY(decode(o, a, n));
        nospace = false;
    }
    while (nclose)
        CAIRN_TRY(cairn_buf_puts(o, closers[--nclose]));
    return CAIRN_OK;
}

/* man(7) font macros: .B/.I join with spaces; .BR/.IR/... alternate fonts
 * and join without. */
static cairn_status font_macro(cairn_buf *o, const char **av, const size_t *al, size_t ac, bool alternate)
{
    for (size_t i = 0; i < ac; i++) {
        if (i && !alternate)
            CAIRN_TRY(cairn_buf_putc(o, ' '));
        CAIRN_TRY(decode(o, av[i], al[i]));
    }
    return CAIRN_OK;
}

static cairn_status set_title(man *m, const char **av, const size_t *al, size_t ac)
{
    if (ac < 1 || m->title)
        return CAIRN_OK;
    cairn_buf t;
    cairn_buf_init(&t, 0);
    cairn_status st = decode(&t, av[0], al[0]);
    if (st == CAIRN_OK && ac >= 2) {
        st = cairn_buf_putc(&t, '(');
        if (st == CAIRN_OK)
            st = decode(&t, av[1], al[1]);
        if (st == CAIRN_OK)
            st = cairn_buf_putc(&t, ')');
    }
    if (st == CAIRN_OK && ac >= 2) {
        char sec[32];
        snprintf(sec, sizeof sec, "%.*s", (int)CAIRN_MIN(al[1], (size_t)31), av[1]);
        st = meta_set_string(&m->d->meta, "section", sec);
    }
    if (st == CAIRN_OK && t.len && !(m->title = cairn_strndup(t.data, t.len)))
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_buf_free(&t);
    return st;
}

/* Handle one control line: name + arguments. *skip_until_dots: a .de/.ig
 * block follows. */
static cairn_status control(man *m, const char *name, size_t nn, const char *rest, size_t rn, bool *skip_until_dots)
{
    char *store = cairn_malloc(rn + MAN_MAX_ARGS + 1);
    if (!store)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    const char *av[MAN_MAX_ARGS];
    size_t al[MAN_MAX_ARGS];
    size_t ac = split_args(rest, rn, store, av, al);
    cairn_status st = CAIRN_OK;
    cairn_buf o;
    cairn_buf_init(&o, 0);
    bool text = false;     /* o holds inline text for the current block */
    if (is(name, nn, "TH") || is(name, nn, "Dt")) {
        st = set_title(m, av, al, ac);
        if (st == CAIRN_OK && ac >= 3 && is(name, nn, "TH")) {
            char date[64];
            snprintf(date, sizeof date, "%.*s", (int)CAIRN_MIN(al[2], (size_t)63), av[2]);
            st = meta_set_string(&m->d->meta, "date", date);
        }
    } else if (is(name, nn, "SH") || is(name, nn, "Sh") || is(name, nn, "SS") || is(name, nn, "Ss")) {
        int lvl = (name[1] == 'H' || name[1] == 'h') ? 1 : 2;
        m->nofill = false;
        st = start(m, BLOCK_HEADING, lvl);
        if (st == CAIRN_OK && ac) {
            st = name[0] == 'S' && name[1] >= 'a' ? mdoc_inline(m, &o, av, al, ac) : font_macro(&o, av, al, ac, false);
            if (st == CAIRN_OK)
                st = pc_append_collapsed(&m->para, o.data ? o.data : "", o.len, &m->space);
            if (st == CAIRN_OK)
                st = flush(m);
        } else {
            m->heading_next = lvl;
        }
    } else if (is(name, nn, "PP") || is(name, nn, "LP") || is(name, nn, "P") || is(name, nn, "Pp") ||
               is(name, nn, "Lp") || is(name, nn, "sp") || is(name, nn, "br") || is(name, nn, "HP") ||
               is(name, nn, "RS") || is(name, nn, "RE") || is(name, nn, "Bl") || is(name, nn, "El") ||
               is(name, nn, "bp") || is(name, nn, "SY") || is(name, nn, "YS") || is(name, nn, "Rs") ||
               is(name, nn, "Re")) {
        if (!m->nofill)
            st = start(m, BLOCK_PARAGRAPH, 0);
        else if (is(name, nn, "sp"))
            st = cairn_buf_putc(&m->para, '\n');
    } else if (is(name, nn, "TP") || is(name, nn, "TQ")) {
        st = start(m, BLOCK_LIST_ITEM, 1);
        m->tag_next = true;
    } else if (is(name, nn, "IP") || is(name, nn, "It")) {
        st = start(m, BLOCK_LIST_ITEM, 1);
        if (st == CAIRN_OK && ac) {
            st = name[1] == 't' ? mdoc_inline(m, &o, av, al, ac) : font_macro(&o, av, al, 1, false);
            text = true;
        }
    } else if (is(name, nn, "nf") || is(name, nn, "EX") || (is(name, nn, "Bd") && ac && (is(av[0], al[0], "-literal") || is(av[0], al[0], "-unfilled")))) {
        st = start(m, BLOCK_CODE, 0);
        m->nofill = true;
        m->kind = BLOCK_CODE;
    } else if (is(name, nn, "fi") || is(name, nn, "EE") || is(name, nn, "Ed")) {
        m->nofill = false;
        st = start(m, BLOCK_PARAGRAPH, 0);
    } else if (is(name, nn, "Bd")) {
        st = start(m, BLOCK_PARAGRAPH, 0);
    } else if (is(name, nn, "TS")) {
        st = start(m, BLOCK_PARAGRAPH, 0);
        m->table = m->table_fmt = true;
    } else if (is(name, nn, "TE")) {
        st = start(m, BLOCK_PARAGRAPH, 0);
        m->table = m->table_fmt = false;
    } else if (is(name, nn, "de") || is(name, nn, "de1") || is(name, nn, "ig") || is(name, nn, "am")) {
        *skip_until_dots = true;
    } else if (is(name, nn, "so")) {
        if (ac) {
            st = start(m, BLOCK_PARAGRAPH, 0);
            if (st == CAIRN_OK)
                st = cairn_buf_printf(&o, "See %.*s.", (int)CAIRN_MIN(al[0], (size_t)1000), av[0]);
            text = true;
        }
    } else if (is(name, nn, "B") || is(name, nn, "I") || is(name, nn, "SM") || is(name, nn, "SB") ||
               is(name, nn, "UR") || is(name, nn, "MT") || is(name, nn, "OP")) {
        st = font_macro(&o, av, al, ac, false);
        text = true;
    } else if (nn == 2 && strchr("BIR", name[0]) && strchr("BIR", name[1]) && name[0] != name[1]) {
        st = font_macro(&o, av, al, ac, true);
        text = true;
    } else if (is(name, nn, "Nd")) {
        st = cairn_buf_puts(&o, "\xe2\x80\x94 ");
        if (st == CAIRN_OK)
            st = mdoc_inline(m, &o, av, al, ac);
        text = true;
    } else if (is(name, nn, "Dd")) {
        /* ".Dd $Mdocdate: November 28 2022 $" */
        cairn_buf dd;
        cairn_buf_init(&dd, 0);
        for (size_t i = 0; st == CAIRN_OK && i < ac; i++) {
            if (al[i] && av[i][0] == '$')
                continue;
            if (dd.len)
                st = cairn_buf_putc(&dd, ' ');
            if (st == CAIRN_OK)
                st = cairn_buf_append(&dd, av[i], al[i]);
        }
        if (st == CAIRN_OK && dd.len && dd.len < 64)
            st = meta_set_string(&m->d->meta, "date", dd.data);
        cairn_buf_free(&dd);
    } else if (is(name, nn, "D1") || is(name, nn, "Dl")) {
        st = start(m, BLOCK_CODE, 0);
        if (st == CAIRN_OK)
            st = mdoc_inline(m, &o, av, al, ac);
        if (st == CAIRN_OK)
            st = cairn_buf_append(&m->para, o.data ? o.data : "", o.len);
        if (st == CAIRN_OK)
            st = start(m, BLOCK_PARAGRAPH, 0);
    } else if (mdoc_callable(name, nn)) {
        /* an inline macro at the start of a line: name and arguments together */
        const char *av2[MAN_MAX_ARGS];
        size_t al2[MAN_MAX_ARGS];
        av2[0] = name;
        al2[0] = nn;
        size_t ac2 = CAIRN_MIN(ac, (size_t)MAN_MAX_ARGS - 1);
        for (size_t i = 0; i < ac2; i++) {
            av2[i + 1] = av[i];
            al2[i + 1] = al[i];
        }
        if (is(name, nn, "Nm") && ac && !m->name[0])
            snprintf(m->name, sizeof m->name, "%.*s", (int)CAIRN_MIN(al[0], (size_t)127), av[0]);
        st = mdoc_inline(m, &o, av2, al2, ac2 + 1);
        text = true;
    }
    /* everything else (fonts, spacing, registers, conditionals) is dropped */
    if (st == CAIRN_OK && text && o.len) {
        if (m->heading_next) {
            st = start(m, BLOCK_HEADING, m->heading_next);
            m->heading_next = 0;
            if (st == CAIRN_OK)
                st = pc_append_collapsed(&m->para, o.data, o.len, &m->space);
            if (st == CAIRN_OK)
                st = flush(m);
        } else if (m->nofill) {
            st = cairn_buf_append(&m->para, o.data, o.len);
            if (st == CAIRN_OK)
                st = cairn_buf_putc(&m->para, '\n');
        } else {
            st = pc_append_collapsed(&m->para, o.data, o.len, &m->space);
            if (st == CAIRN_OK && !m->space) {
                st = cairn_buf_putc(&m->para, ' ');
                m->space = true;
            }
            if (st == CAIRN_OK && m->tag_next) {
                m->tag_next = false;
                st = cairn_buf_puts(&m->para, "\xe2\x80\x94 ");
            }
        }
    }
    cairn_buf_free(&o);
    cairn_free(store);
    return st;
}

/* A table data row: cells separated by tabs (or the .TS tab(x) char; tab
 * is the common case) joined by " | ". */
static cairn_status table_row(man *m, const char *s, size_t n)
{
    cairn_buf o;
    cairn_buf_init(&o, 0);
    cairn_status st = CAIRN_OK;
    size_t i = 0;
    while (st == CAIRN_OK && i <= n) {
        const char *t = i < n ? memchr(s + i, '\t', n - i) : NULL;
        size_t e = t ? (size_t)(t - s) : n;
        if (o.len)
            st = cairn_buf_puts(&o, " | ");
        if (st == CAIRN_OK)
            st = decode(&o, s + i, e - i);
        if (!t)
            break;
        i = e + 1;
    }
    const char *d = o.data ? o.data : "";
    size_t dn = o.len;
    pc_trim(&d, &dn);
    if (st == CAIRN_OK && dn && strspn(d, "_=| ") != dn)
        st = ingest_doc_add_block(m->d, BLOCK_TABLE_ROW, 0, 0, d, dn);
    cairn_buf_free(&o);
    return st;
}

static cairn_status man_lines(man *m, const char *data, size_t len)
{
    size_t i = pc_bom_len(data, len);
    bool skip_dots = false;
    int skip_braces = 0;
    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t e = nl ? (size_t)(nl - data) : len;
        const char *l = data + i;
        size_t n = e - i;
        i = nl ? e + 1 : len;
        if (n && l[n - 1] == '\r')
            n--;
        if (skip_dots) {
            if (n >= 2 && l[0] == '.' && l[1] == '.')
                skip_dots = false;
            continue;
        }
        if (skip_braces) {
            for (size_t k = 0; k + 1 < n; k++) {
                if (l[k] == '\\' && l[k + 1] == '{')
                    skip_braces++;
                else if (l[k] == '\\' && l[k + 1] == '}')
                    skip_braces--;
            }
            if (skip_braces < 0)
                skip_braces = 0;
            continue;
        }
        if (n && (l[0] == '.' || l[0] == '\'')) {
            size_t k = 1;
            while (k < n && (l[k] == ' ' || l[k] == '\t'))
                k++;
            if (k + 1 < n + 1 && k < n && l[k] == '\\' && k + 1 < n && (l[k + 1] == '"' || l[k + 1] == '#'))
                continue; /* comment line */
            size_t ns = k;
            while (k < n && l[k] != ' ' && l[k] != '\t')
                k++;
            size_t nn = k - ns;
            if (!nn)
                continue;
            const char *name = l + ns;
            if (is(name, nn, "if") || is(name, nn, "ie") || is(name, nn, "el") || is(name, nn, "while")) {
                for (size_t q = 0; q + 1 < n; q++) {
                    if (l[q] == '\\' && l[q + 1] == '{')
                        skip_braces++;
                    else if (l[q] == '\\' && l[q + 1] == '}')
                        skip_braces--;
                }
                if (skip_braces < 0)
                    skip_braces = 0;
                continue;
            }
            if (m->table && !is(name, nn, "TE"))
                continue;
            CAIRN_TRY(control(m, name, nn, l + k, n - k, &skip_dots));
            continue;
        }
        if (m->table) {
            if (m->table_fmt) {
                /* format lines end with the one that ends in '.' */
                size_t q = n;
                while (q && (l[q - 1] == ' ' || l[q - 1] == '\t'))
                    q--;
                if (q && l[q - 1] == '.')
                    m->table_fmt = false;
                continue;
            }
            CAIRN_TRY(table_row(m, l, n));
            continue;
        }
        size_t q = 0;
        while (q < n && (l[q] == ' ' || l[q] == '\t'))
            q++;
        if (q == n) {
            if (m->nofill)
                CAIRN_TRY(cairn_buf_putc(&m->para, '\n'));
            else
                CAIRN_TRY(start(m, BLOCK_PARAGRAPH, 0));
            continue;
        }
        if (m->heading_next) {
            CAIRN_TRY(start(m, BLOCK_HEADING, m->heading_next));
            m->heading_next = 0;
            CAIRN_TRY(add_text(m, l, n));
            CAIRN_TRY(flush(m));
            continue;
        }
        CAIRN_TRY(add_text(m, l, n));
        if (m->tag_next && !m->nofill) {
            m->tag_next = false;
            CAIRN_TRY(cairn_buf_puts(&m->para, "\xe2\x80\x94 "));
        }
    }
    return flush(m);
}

static cairn_status parse_man(const char *path, const char *data, size_t len, const ingest_options *opt,
                              ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    ingest_doc d;
    ingest_doc_init(&d);
    d.type = "man";
    man m;
    memset(&m, 0, sizeof m);
    m.d = &d;
    m.kind = BLOCK_PARAGRAPH;
    m.space = true;
    cairn_buf_init(&m.para, 0);
    cairn_status st = man_lines(&m, data, len);
    cairn_buf_free(&m.para);
    if (st == CAIRN_OK) {
        const char *b = strrchr(path, '/');
        d.title = m.title ? m.title : cairn_strdup(b ? b + 1 : path);
        m.title = NULL;
        d.key = cairn_strdup("");
        if (!d.title || !d.key)
            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    }
    cairn_free(m.title);
    if (st == CAIRN_OK)
        st = emit(ctx, &d);
    ingest_doc_free(&d);
    return st;
}

const ingest_parser ingest_parser_man = {"man", parse_man};
