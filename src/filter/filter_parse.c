/* filter_parse.c — lexer and recursive-descent parser for the filter language
 * (grammar in filter.h). Every node remembers its byte offset so errors can
 * point at it. Nesting depth is capped so hostile input cannot exhaust the
 * stack. */
#include "filter/filter.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>

#define FILTER_MAX_DEPTH 64
#define FILTER_MAX_LEN (64 * 1024)

typedef enum {
    TK_END, TK_LPAREN, TK_RPAREN, TK_COMMA, TK_OP, TK_PREFIX, TK_STRING, TK_NUMBER,
    TK_DATE, TK_WORD, TK_PLUS, TK_MINUS, TK_BAD
} tok_kind;

typedef struct token {
    tok_kind kind;
    int pos, len;
    filter_op op;       /* TK_OP */
    double num;         /* TK_NUMBER, TK_DATE (epoch seconds) */
    char *str;          /* TK_STRING: unescaped, owned */
} token;

typedef struct parser {
    const char *src;
    int pos;            /* lexer position */
    token tok;          /* current token */
    int64_t now;
    int depth;
    cairn_status st;    /* first error */
} parser;

cairn_status filter_error_at(const char *src, int pos, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Show the expression (or a window of it) and a caret under the problem. */
    int len = (int)strlen(src);
    int start = pos > 50 ? pos - 50 : 0;
    int end = start + 100 < len ? start + 100 : len;
    char line[128];
    int n = 0;
    for (int i = start; i < end && n < (int)sizeof line - 1; i++)
        line[n++] = (src[i] == '\n' || src[i] == '\t') ? ' ' : src[i];
    line[n] = 0;
    return cairn_fail(CAIRN_ERR_INVALID, "filter error at column %d: %s\n  %s\n  %*s^", pos + 1, msg, line,
                      pos - start, "");
}

static bool is_word_char(int c) { return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || (c & 0x80); }

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* Try to lex an ISO date at s; returns its length (0 if not a date). */
static int lex_date(const char *s, double *epoch, bool *bad)
{
    *bad = false;
    if (!(digits(s, 4) && s[4] == '-' && digits(s + 5, 2) && s[7] == '-' && digits(s + 8, 2)))
        return 0;
    int y = atoi(s), mo = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int n = 10, hh = 0, mm = 0, ss = 0, off = 0;
    if ((s[10] == 'T' || s[10] == ' ') && digits(s + 11, 2) && s[13] == ':' && digits(s + 14, 2)) {
        hh = (s[11] - '0') * 10 + (s[12] - '0');
        mm = (s[14] - '0') * 10 + (s[15] - '0');
        n = 16;
        if (s[16] == ':' && digits(s + 17, 2)) {
            ss = (s[17] - '0') * 10 + (s[18] - '0');
            n = 19;
        }
        if (s[n] == 'Z') {
            n++;
        } else if ((s[n] == '+' || s[n] == '-') && digits(s + n + 1, 2)) {
            int sign = s[n] == '-' ? -1 : 1;
            int oh = (s[n + 1] - '0') * 10 + (s[n + 2] - '0'), om = 0;
            int k = n + 3;
            if (s[k] == ':')
                k++;
            if (digits(s + k, 2)) {
                om = (s[k] - '0') * 10 + (s[k + 1] - '0');
                k += 2;
            }
            off = sign * (oh * 3600 + om * 60);
            n = k;
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) ||
        hh > 23 || mm > 59 || ss > 60)
        *bad = true;
    *epoch = (double)(days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + hh * 3600 + mm * 60 + ss - off);
    return n;
}

static void next(parser *p)
{
    if (p->tok.kind == TK_STRING)
        cairn_free(p->tok.str);
    memset(&p->tok, 0, sizeof p->tok);
    const char *s = p->src;
    while (isspace((unsigned char)s[p->pos]))
        p->pos++;
    token *t = &p->tok;
    t->pos = p->pos;
    char c = s[p->pos];
    if (!c) {
        t->kind = TK_END;
        return;
    }
    const char *q = s + p->pos;
    switch (c) {
    case '(': t->kind = TK_LPAREN; t->len = 1; break;
    case ')': t->kind = TK_RPAREN; t->len = 1; break;
    case ',': t->kind = TK_COMMA; t->len = 1; break;
    case '+': t->kind = TK_PLUS; t->len = 1; break;
    case '=': t->kind = TK_OP; t->op = FOP_EQ; t->len = q[1] == '=' ? 2 : 1; break;
    case '!':
        if (q[1] == '=') { t->kind = TK_OP; t->op = FOP_NE; t->len = 2; }
        else { t->kind = TK_BAD; t->len = 1; }
        break;
    case '<':
        t->kind = TK_OP;
        if (q[1] == '=') { t->op = FOP_LE; t->len = 2; }
        else if (q[1] == '>') { t->op = FOP_NE; t->len = 2; }
        else { t->op = FOP_LT; t->len = 1; }
        break;
    case '>':
        t->kind = TK_OP;
        if (q[1] == '=') { t->op = FOP_GE; t->len = 2; }
        else { t->op = FOP_GT; t->len = 1; }
        break;
    case '^':
        if (q[1] == '=') { t->kind = TK_PREFIX; t->len = 2; }
        else { t->kind = TK_BAD; t->len = 1; }
        break;
    case '"':
    case '\'': {
        cairn_buf b;
        cairn_buf_init(&b, FILTER_MAX_LEN);
        int i = 1;
        for (;; i++) {
            char ch = q[i];
            if (!ch) {
                cairn_buf_free(&b);
                p->st = filter_error_at(s, t->pos, "unterminated string (missing closing %c)", c);
                t->kind = TK_BAD;
                return;
            }
            if (ch == c)
                break;
            if (ch == '\\') {
                char e = q[++i];
                switch (e) {
                case 'n': ch = '\n'; break;
                case 't': ch = '\t'; break;
                case '\\': case '"': case '\'': ch = e; break;
                default:
                    cairn_buf_free(&b);
                    p->st = filter_error_at(s, t->pos + i - 1, "unknown escape '\\%c' in string (use \\\\, \\\", \\', \\n or \\t)",
                                            e ? e : ' ');
                    t->kind = TK_BAD;
                    return;
                }
            }
            if (cairn_buf_putc(&b, ch) != CAIRN_OK) {
                cairn_buf_free(&b);
                p->st = CAIRN_ERR_NOMEM;
                t->kind = TK_BAD;
                return;
            }
        }
        t->kind = TK_STRING;
        t->str = cairn_buf_take(&b);
        if (!t->str) {
            p->st = CAIRN_ERR_NOMEM;
            t->kind = TK_BAD;
            return;
        }
        t->len = i + 1;
        break;
    }
    default: {
        bool bad;
        int n = lex_date(q, &t->num, &bad);
        if (n && !is_word_char((unsigned char)q[n])) {
            if (bad) {
                p->st = filter_error_at(s, t->pos, "invalid date '%.*s'", n, q);
                t->kind = TK_BAD;
                return;
            }
            t->kind = TK_DATE;
            t->len = n;
            break;
        }
        if (c == '-' && !(isdigit((unsigned char)q[1]) || q[1] == '.')) {
            t->kind = TK_MINUS;
            t->len = 1;
            break;
        }
        if (isdigit((unsigned char)c) || c == '-' || c == '.') {
            char *end;
            double v = strtod(q, &end);
            /* a number immediately followed by word characters is a word (e.g. "7d", "v2") */
            if (end > q && !is_word_char((unsigned char)*end)) {
                t->kind = TK_NUMBER;
                t->num = v;
                t->len = (int)(end - q);
                break;
            }
        }
        if (is_word_char((unsigned char)c)) {
            int n2 = 0;
            while (is_word_char((unsigned char)q[n2]) && !(q[n2] == '-' && n2 > 0 && !is_word_char((unsigned char)q[n2 + 1])))
                n2++;
            t->kind = TK_WORD;
            t->len = n2;
            break;
        }
        t->kind = TK_BAD;
        t->len = 1;
    }
    }
    p->pos += t->len;
}

static bool word_is(const token *t, const char *src, const char *kw)
{
    size_t n = strlen(kw);
    return t->kind == TK_WORD && (size_t)t->len == n && strncasecmp(src + t->pos, kw, n) == 0;
}

static bool is_keyword(const token *t, const char *src)
{
    static const char *kws[] = {"AND", "OR", "NOT", "IN", "HAS", "CONTAINS", "GLOB"};
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(kws); i++)
        if (word_is(t, src, kws[i]))
            return true;
    return false;
}

static filter_node *node_new(parser *p, filter_kind kind, int pos)
{
    filter_node *n = cairn_calloc(1, sizeof *n);
    if (!n) {
        p->st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory parsing a filter");
        return NULL;
    }
    n->kind = kind;
    n->pos = pos;
    return n;
}

static const char *tok_desc(const parser *p, char *buf, size_t cap)
{
    if (p->tok.kind == TK_END)
        return "the end of the filter";
    snprintf(buf, cap, "'%.*s'", p->tok.len > 40 ? 40 : p->tok.len, p->src + p->tok.pos);
    return buf;
}

static bool expect_fail(parser *p, const char *what)
{
    char b[64];
    if (p->st == CAIRN_OK)
        p->st = filter_error_at(p->src, p->tok.pos, "expected %s but found %s", what, tok_desc(p, b, sizeof b));
    return false;
}

/* value := string | number | date | true | false | now [±duration] | word */
static bool parse_value(parser *p, filter_value *v)
{
    const token *t = &p->tok;
    memset(v, 0, sizeof *v);
    v->pos = t->pos;
    switch (t->kind) {
    case TK_STRING:
        v->type = META_STRING;
        v->s = t->str;
        p->tok.str = NULL;
        p->tok.kind = TK_END; /* ownership moved; do not free in next() */
        next(p);
        return true;
    case TK_NUMBER:
        v->type = META_NUMBER;
        v->n = t->num;
        next(p);
        return true;
    case TK_DATE:
        v->type = META_DATE;
        v->n = t->num;
        next(p);
        return true;
    case TK_WORD:
        if (is_keyword(t, p->src))
            return expect_fail(p, "a value");
        if (word_is(t, p->src, "true") || word_is(t, p->src, "false")) {
            v->type = META_BOOL;
            v->n = word_is(t, p->src, "true");
            next(p);
            return true;
        }
        if (word_is(t, p->src, "now")) {
            v->type = META_DATE;
            v->n = (double)p->now;
            next(p);
            if (p->tok.kind == TK_PLUS || p->tok.kind == TK_MINUS) {
                double sign = p->tok.kind == TK_PLUS ? 1 : -1;
                next(p);
                int64_t secs;
                char dur[64];
                int dpos = p->tok.pos;
                if ((p->tok.kind != TK_WORD && p->tok.kind != TK_NUMBER) || p->tok.len >= (int)sizeof dur)
                    return expect_fail(p, "a duration such as 7d or 12h after 'now +/-'");
                memcpy(dur, p->src + p->tok.pos, (size_t)p->tok.len);
                dur[p->tok.len] = 0;
                if (cairn_parse_duration(dur, &secs) != CAIRN_OK) {
                    p->st = filter_error_at(p->src, dpos, "bad duration '%s' (use e.g. 30m, 12h, 7d, 2w)", dur);
                    return false;
                }
                v->n += sign * (double)secs;
                next(p);
            }
            return true;
        }
        v->type = META_STRING;
        v->bare = true;
        v->s = cairn_strndup(p->src + t->pos, (size_t)t->len);
        if (!v->s) {
            p->st = CAIRN_ERR_NOMEM;
            return false;
        }
        next(p);
        return true;
    default:
        return expect_fail(p, "a value (a \"string\", number, date, true/false or now)");
    }
}

static bool add_value(parser *p, filter_node *n)
{
    filter_value *nv = cairn_reallocarray(n->vals, n->n_vals + 1, sizeof *nv);
    if (!nv) {
        p->st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory parsing a filter");
        return false;
    }
    n->vals = nv;
    if (!parse_value(p, &n->vals[n->n_vals]))
        return false;
    n->n_vals++;
    return true;
}

static filter_node *parse_or(parser *p);

static filter_node *parse_predicate(parser *p)
{
    if (p->tok.kind != TK_WORD || is_keyword(&p->tok, p->src)) {
        expect_fail(p, "a field name, NOT, HAS or '('");
        return NULL;
    }
    int fpos = p->tok.pos;
    char *field = cairn_strndup(p->src + p->tok.pos, (size_t)p->tok.len);
    if (!field) {
        p->st = CAIRN_ERR_NOMEM;
        return NULL;
    }
    next(p);
    filter_node *n = NULL;
    int opos = p->tok.pos;
    if (p->tok.kind == TK_OP) {
        n = node_new(p, FN_CMP, fpos);
        if (n)
            n->op = p->tok.op;
        next(p);
    } else if (p->tok.kind == TK_PREFIX) {
        n = node_new(p, FN_PREFIX, fpos);
        next(p);
    } else if (word_is(&p->tok, p->src, "CONTAINS")) {
        n = node_new(p, FN_CONTAINS, fpos);
        next(p);
    } else if (word_is(&p->tok, p->src, "GLOB")) {
        n = node_new(p, FN_GLOB, fpos);
        next(p);
    } else if (word_is(&p->tok, p->src, "IN")) {
        n = node_new(p, FN_IN, fpos);
        next(p);
    } else {
        cairn_free(field);
        expect_fail(p, "an operator (=, !=, <, <=, >, >=, IN, CONTAINS, ^=, GLOB) after the field name");
        return NULL;
    }
    if (!n) {
        cairn_free(field);
        return NULL;
    }
    (void)opos;
    n->field = field;
    n->field_pos = fpos;
    if (n->kind == FN_IN) {
        if (p->tok.kind != TK_LPAREN) {
            expect_fail(p, "'(' after IN");
            filter_free(n);
            return NULL;
        }
        next(p);
        for (;;) {
            if (!add_value(p, n)) {
                filter_free(n);
                return NULL;
            }
            if (p->tok.kind == TK_COMMA) {
                next(p);
                continue;
            }
            if (p->tok.kind == TK_RPAREN) {
                next(p);
                break;
            }
            expect_fail(p, "',' or ')' in the IN list");
            filter_free(n);
            return NULL;
        }
        return n;
    }
    if (!add_value(p, n)) {
        filter_free(n);
        return NULL;
    }
    return n;
}

static filter_node *parse_unary(parser *p)
{
    if (++p->depth > FILTER_MAX_DEPTH) {
        p->st = filter_error_at(p->src, p->tok.pos, "filter nested deeper than %d levels", FILTER_MAX_DEPTH);
        return NULL;
    }
    filter_node *r = NULL;
    int pos = p->tok.pos;
    if (word_is(&p->tok, p->src, "NOT")) {
        next(p);
        filter_node *a = parse_unary(p);
        if (a) {
            r = node_new(p, FN_NOT, pos);
            if (r)
                r->a = a;
            else
                filter_free(a);
        }
    } else if (p->tok.kind == TK_LPAREN) {
        next(p);
        r = parse_or(p);
        if (r && p->tok.kind != TK_RPAREN) {
            expect_fail(p, "')'");
            filter_free(r);
            r = NULL;
        } else if (r) {
            next(p);
        }
    } else if (word_is(&p->tok, p->src, "HAS")) {
        next(p);
        if (p->tok.kind != TK_WORD || is_keyword(&p->tok, p->src)) {
            expect_fail(p, "a field name after HAS");
        } else {
            r = node_new(p, FN_HAS, pos);
            if (r) {
                r->field_pos = p->tok.pos;
                r->field = cairn_strndup(p->src + p->tok.pos, (size_t)p->tok.len);
                if (!r->field) {
                    p->st = CAIRN_ERR_NOMEM;
                    filter_free(r);
                    r = NULL;
                } else {
                    next(p);
                }
            }
        }
    } else {
        r = parse_predicate(p);
    }
    p->depth--;
    return r;
}

static filter_node *parse_binary(parser *p, bool is_or)
{
    filter_node *l = is_or ? parse_binary(p, false) : parse_unary(p);
    while (l && word_is(&p->tok, p->src, is_or ? "OR" : "AND")) {
        int pos = p->tok.pos;
        next(p);
        filter_node *r = is_or ? parse_binary(p, false) : parse_unary(p);
        if (!r) {
            filter_free(l);
            return NULL;
        }
        filter_node *n = node_new(p, is_or ? FN_OR : FN_AND, pos);
        if (!n) {
            filter_free(l);
            filter_free(r);
            return NULL;
        }
        n->a = l;
        n->b = r;
        l = n;
    }
    return l;
}

static filter_node *parse_or(parser *p) { return parse_binary(p, true); }

cairn_status filter_parse(const char *src, int64_t now, filter_node **out)
{
    *out = NULL;
    size_t len = strlen(src);
    if (len > FILTER_MAX_LEN)
        return cairn_fail(CAIRN_ERR_INVALID, "filter is %zu bytes; the limit is %d", len, FILTER_MAX_LEN);
    parser p = {.src = src, .now = now};
    next(&p);
    if (p.tok.kind == TK_END && p.st == CAIRN_OK) {
        return cairn_fail(CAIRN_ERR_INVALID, "empty filter");
    }
    filter_node *f = p.st == CAIRN_OK ? parse_or(&p) : NULL;
    if (f && p.st == CAIRN_OK && p.tok.kind != TK_END) {
        char b[64];
        p.st = filter_error_at(src, p.tok.pos, "unexpected %s (expected AND, OR or the end)", tok_desc(&p, b, sizeof b));
    }
    if (p.tok.kind == TK_STRING)
        cairn_free(p.tok.str);
    if (p.st != CAIRN_OK) {
        filter_free(f);
        return p.st;
    }
    if (!f)
        return cairn_fail(CAIRN_ERR_INTERNAL, "filter parser returned nothing");
    *out = f;
    return CAIRN_OK;
}

void filter_free(filter_node *f)
{
    if (!f)
        return;
    filter_free(f->a);
    filter_free(f->b);
    cairn_free(f->field);
    for (size_t i = 0; i < f->n_vals; i++)
        cairn_free(f->vals[i].s);
    cairn_free(f->vals);
    cairn_free(f);
}
