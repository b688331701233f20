/*
 * html.c — HTML pages: visible text with structure, title and <meta> data.
 *
 * Parsing is gumbo's (a full HTML5 parser, so broken markup is handled the
 * way browsers do). We walk the tree iteratively and emit blocks:
 *   h1..h6 -> BLOCK_HEADING (level 1..6)   li -> BLOCK_LIST_ITEM (level = list nesting)
 *   pre    -> BLOCK_CODE (whitespace kept) blockquote -> BLOCK_QUOTE
 *   tr     -> BLOCK_TABLE_ROW (cells joined " | ")
 *   p, div and other block elements -> BLOCK_PARAGRAPH (or the kind of the
 *   enclosing li/blockquote/heading)
 * Page chrome is dropped: script, style, noscript, template, nav, aside,
 * form (and its controls), svg, iframe; header/footer outside article/main;
 * elements that are hidden (hidden, aria-hidden="true", style display:none)
 * or have role navigation/search (banner/contentinfo outside article/main);
 * elements whose class or id is a chrome name (nav, menu, sidebar,
 * breadcrumb, cookie-banner ...; header/footer/masthead outside
 * article/main).
 * Encoding: UTF-8; a page declaring ISO-8859-1/windows-1252 whose bytes are
 * not valid UTF-8 is converted from windows-1252 first.
 * Metadata: <title> (else og:title, else the first h1) is the title;
 * <meta name=description|author> are strings, keywords a list, a date-ish
 * meta (date, dcterms.date, article:published_time ...) a date; <html lang>.
 *
 * Hostile input: gumbo's tree construction is quadratic in the nesting depth
 * of open elements and in the number of attributes of one tag (measured: 100k
 * nested <div> take 28 s, one tag with 50k attributes more than 60 s). A
 * linear pre-scan estimates both; above HTML_MAX_DEPTH / HTML_MAX_ATTRS the
 * page is read by a plain tag-stripping extractor instead (text and title,
 * paragraphs at block tags, no headings), so the text is never lost and
 * parsing stays linear.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include "ingest/parse_common.h"
#include <gumbo.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HTML_MAX_DEPTH 4096
#define HTML_MAX_ATTRS 1024

/* ---------------------------------------------------------------- */
/* Tag-level scanning shared by the pre-scan and the fallback extractor. */

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Case-insensitive search for `needle` (lowercase ASCII) in s[0..n). */
static const char *find_ci(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (k > n)
        return NULL;
    for (size_t i = 0; i + k <= n;) {
        const char *p = memchr(s + i, '<', n - k + 1 - i);
        if (!p)
            return NULL;
        if (strncasecmp(p, needle, k) == 0)
            return p;
        i = (size_t)(p - s) + 1;
    }
    return NULL;
}

/* Elements whose content is raw text (not markup). */
static bool raw_text_tag(GumboTag t)
{
    return t == GUMBO_TAG_SCRIPT || t == GUMBO_TAG_STYLE || t == GUMBO_TAG_TEXTAREA || t == GUMBO_TAG_TITLE ||
           t == GUMBO_TAG_XMP || t == GUMBO_TAG_NOEMBED || t == GUMBO_TAG_NOFRAMES || t == GUMBO_TAG_IFRAME ||
           t == GUMBO_TAG_NOSCRIPT;
}

/* Elements that never stay open (void) or close themselves (implied end
 * tags), so they do not deepen the tree. */
static bool no_depth_tag(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_AREA: case GUMBO_TAG_BASE: case GUMBO_TAG_BR: case GUMBO_TAG_COL: case GUMBO_TAG_EMBED:
    case GUMBO_TAG_HR: case GUMBO_TAG_IMG: case GUMBO_TAG_INPUT: case GUMBO_TAG_LINK: case GUMBO_TAG_META:
    case GUMBO_TAG_SOURCE: case GUMBO_TAG_TRACK: case GUMBO_TAG_WBR: case GUMBO_TAG_PARAM: case GUMBO_TAG_KEYGEN:
    case GUMBO_TAG_P: case GUMBO_TAG_LI: case GUMBO_TAG_DT: case GUMBO_TAG_DD: case GUMBO_TAG_OPTION:
    case GUMBO_TAG_OPTGROUP: case GUMBO_TAG_TR: case GUMBO_TAG_TD: case GUMBO_TAG_TH: case GUMBO_TAG_TBODY:
    case GUMBO_TAG_THEAD: case GUMBO_TAG_TFOOT: case GUMBO_TAG_RB: case GUMBO_TAG_RT: case GUMBO_TAG_RP:
    case GUMBO_TAG_HTML: case GUMBO_TAG_HEAD: case GUMBO_TAG_BODY:
        return true;
    default:
        return false;
    }
}

typedef struct tag_info {
    GumboTag tag;
    bool end, self_closing;
    size_t attrs;
    size_t next;    /* index just past the tag (or the skipped construct) */
} tag_info;

/* At data[i] == '<': parse one tag (or skip a comment / doctype / PI).
 * Returns false when it is not a tag (a literal '<'). Linear in its length. */
static bool scan_tag(const char *d, size_t n, size_t i, tag_info *t)
{
    memset(t, 0, sizeof *t);
    t->tag = GUMBO_TAG_LAST;
    size_t j = i + 1;
    if (j < n && d[j] == '!') {
        if (j + 2 < n && d[j + 1] == '-' && d[j + 2] == '-') {
            const char *e = j + 3 < n ? memmem(d + j + 3, n - j - 3, "-->", 3) : NULL;
            t->next = e ? (size_t)(e - d) + 3 : n;
        } else {
            const char *e = memchr(d + j, '>', n - j);
            t->next = e ? (size_t)(e - d) + 1 : n;
        }
        return true;
    }
    if (j < n && d[j] == '?') {
        const char *e = memchr(d + j, '>', n - j);
        t->next = e ? (size_t)(e - d) + 1 : n;
        return true;
    }
    if (j < n && d[j] == '/') {
        t->end = true;
        j++;
    }
    if (j >= n || !is_alpha(d[j]))
        return false;
    size_t ns = j;
    while (j < n && !pc_is_space((unsigned char)d[j]) && d[j] != '>' && d[j] != '/')
        j++;
    t->tag = gumbo_tagn_enum(d + ns, (unsigned)CAIRN_MIN(j - ns, 64u));
    /* attributes: count names; skip quoted values */
    bool in_name = false;
    while (j < n && d[j] != '>') {
        char c = d[j];
        if (c == '"' || c == '\'') {
            const char *e = j + 1 < n ? memchr(d + j + 1, c, n - j - 1) : NULL;
            j = e ? (size_t)(e - d) + 1 : n;
            in_name = false;
            continue;
        }
        if (pc_is_space((unsigned char)c) || c == '=' || c == '/') {
            t->self_closing = c == '/';
            in_name = false;
        } else if (!in_name) {
            in_name = true;
            t->self_closing = false;
            t->attrs++;
        }
        j++;
    }
    t->next = j < n ? j + 1 : n;
    return true;
}

/* Skip the raw text of element `t` starting at i; returns the index of its
 * end tag (or n). */
static size_t skip_raw_text(const char *d, size_t n, size_t i, GumboTag t)
{
    char end[32];
    snprintf(end, sizeof end, "</%s", gumbo_normalized_tagname(t));
    const char *e = find_ci(d + i, n - i, end);
    return e ? (size_t)(e - d) : n;
}

/* Linear estimate of the deepest element nesting and the most attributes
 * on one tag. Over-estimates rather than under-estimates. */
static void html_prescan(const char *d, size_t n, size_t *max_depth, size_t *max_attrs)
{
    size_t open[GUMBO_TAG_LAST + 1] = {0};
    size_t depth = 0, md = 0, ma = 0;
    size_t i = 0;
    while (i < n) {
        const char *p = memchr(d + i, '<', n - i);
        if (!p)
            break;
        i = (size_t)(p - d);
        tag_info t;
        if (!scan_tag(d, n, i, &t)) {
            i++;
            continue;
        }
        i = t.next;
        if (t.tag == GUMBO_TAG_LAST)
            continue;
        ma = CAIRN_MAX(ma, t.attrs);
        if (t.end) {
            if (open[t.tag]) {
                open[t.tag]--;
                depth--;
            }
            continue;
        }
        if (raw_text_tag(t.tag)) {
            i = skip_raw_text(d, n, i, t.tag);
            continue;
        }
        if (t.tag == GUMBO_TAG_PLAINTEXT)
            break;
        if (t.self_closing || no_depth_tag(t.tag))
            continue;
        open[t.tag]++;
        depth++;
        md = CAIRN_MAX(md, depth);
    }
    *max_depth = md;
    *max_attrs = ma;
}

/* ---------------------------------------------------------------- */
/* Legacy single-byte pages. gumbo reads UTF-8 only; a page that declares
 * ISO-8859-1 / windows-1252 (the HTML5 default for legacy content) and is
 * not valid UTF-8 is converted first, so "Caf\xe9" becomes "Café" instead
 * of U+FFFD. */

static bool declares_latin1(const char *d, size_t n)
{
    size_t k = CAIRN_MIN(n, (size_t)4096);
    for (size_t i = 0; i + 8 < k; i++) {
        if (strncasecmp(d + i, "charset=", 8) != 0)
            continue;
        size_t j = i + 8;
        while (j < k && (d[j] == '"' || d[j] == '\'' || d[j] == ' '))
            j++;
        static const char *names[] = {"iso-8859-1", "iso8859-1", "latin1", "latin-1", "windows-1252", "cp1252",
                                      "iso-8859-15", "us-ascii"};
        for (size_t m = 0; m < CAIRN_ARRAY_LEN(names); m++)
            if (k - j >= strlen(names[m]) && strncasecmp(d + j, names[m], strlen(names[m])) == 0)
                return true;
        return false;
    }
    return false;
}

/* windows-1252 code points for bytes 0x80..0x9F (0 = unassigned -> U+FFFD) */
static const uint16_t cp1252[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
    0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E,
    0x0178};

static size_t put_utf8(char *o, unsigned long cp);

static cairn_status latin1_to_utf8(const char *d, size_t n, char **out, size_t *out_len)
{
    size_t cap;
    if (!cairn_mul_ok(n, 3, &cap) || !cairn_add_ok(cap, 1, &cap))
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "page too large to convert");
    char *o = cairn_malloc(cap);
    if (!o)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory converting a page to UTF-8");
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c < 0x80)
            o[j++] = (char)c;
        else if (c < 0xA0)
            j += put_utf8(o + j, cp1252[c - 0x80] ? cp1252[c - 0x80] : 0xFFFD);
        else
            j += put_utf8(o + j, c);
    }
    o[j] = 0;
    *out = o;
    *out_len = j;
    return CAIRN_OK;
}

/* ---------------------------------------------------------------- */
/* Shared output state. */

typedef struct hx {
    ingest_doc *doc;
    cairn_buf cur;      /* text of the block being built */
    bool space;         /* cur ends in a collapsed space (or is empty) */
    block_kind kind;
    int level;
    int pre, row, lists, article;
    bool last_br;
    cairn_buf title, h1;
} hx;

static cairn_status flush(hx *h)
{
    const char *s = h->cur.data;
    size_t n = h->cur.len;
    cairn_status st = CAIRN_OK;
    if (n) {
        if (h->kind == BLOCK_CODE) {
            /* keep indentation; drop blank lines at both ends */
            while (n && pc_is_space((unsigned char)s[n - 1]))
                n--;
            size_t k = 0;
            for (size_t i = 0; i < n && pc_is_space((unsigned char)s[i]); i++)
                if (s[i] == '\n')
                    k = i + 1;
            s += k;
            n -= k;
        } else {
            pc_trim(&s, &n);
        }
        if (n) {
            st = ingest_doc_add_block(h->doc, h->kind, h->level, 0, s, n);
            if (st == CAIRN_OK && h->kind == BLOCK_HEADING && h->level == 1 && !h->h1.len)
                st = cairn_buf_append(&h->h1, s, n);
        }
    }
    cairn_buf_reset(&h->cur);
    h->space = true;
    h->last_br = false;
    return st;
}

static cairn_status add_text(hx *h, const char *s, size_t n)
{
    if (h->pre) {
        h->space = n ? pc_is_space((unsigned char)s[n - 1]) : h->space;
        for (size_t i = 0; i < n; i++)
            if (!pc_is_space((unsigned char)s[i])) {
                h->last_br = false;
                break;
            }
        return cairn_buf_append(&h->cur, s, n);
    }
    size_t before = h->cur.len;
    CAIRN_TRY(pc_append_collapsed(&h->cur, s, n, &h->space));
    if (h->cur.len > before + (h->cur.data[before] == ' '))
        h->last_br = false;
    return CAIRN_OK;
}

/* The title: collapsed whitespace, trimmed; NULL-safe. */
static cairn_status set_title(hx *h)
{
    cairn_buf *src = h->title.len ? &h->title : &h->h1;
    const char *s = src->data;
    size_t n = src->len;
    if (!n)
        return CAIRN_OK;
    pc_trim(&s, &n);
    if (!n)
        return CAIRN_OK;
    cairn_buf t;
    cairn_buf_init(&t, 0);
    bool sp = true;
    cairn_status st = pc_append_collapsed(&t, s, n, &sp);
    if (st == CAIRN_OK) {
        while (t.len && t.data[t.len - 1] == ' ')
            t.data[--t.len] = 0;
        h->doc->title = cairn_buf_take(&t);
    }
    cairn_buf_free(&t);
    return st;
}

/* ---------------------------------------------------------------- */
/* Gumbo tree walk. */

enum { F_FLUSH = 1, F_PRE = 2, F_ROW = 4, F_LIST = 8, F_ARTICLE = 16 };

typedef struct frame {
    const GumboNode *node;
    unsigned child;
    block_kind kind;    /* context to restore on exit */
    int level;
    int flags;
} frame;

static const char *attr(const GumboElement *e, const char *name)
{
    const GumboAttribute *a = gumbo_get_attribute(&e->attributes, name);
    return a ? a->value : NULL;
}

/* Whether the space-separated token list `v` holds one of `names`. */
static bool has_token(const char *v, const char *const *names, size_t n)
{
    while (*v) {
        while (*v && pc_is_space((unsigned char)*v))
            v++;
        const char *b = v;
        while (*v && !pc_is_space((unsigned char)*v))
            v++;
        size_t k = (size_t)(v - b);
        for (size_t i = 0; k && i < n; i++)
            if (strlen(names[i]) == k && strncasecmp(b, names[i], k) == 0)
                return true;
    }
    return false;
}

/* Pages without semantic tags mark their chrome with class/id names. Only
 * whole tokens count ("nav" drops class="nav", not class="navy-text"). */
static bool chrome_name(const GumboElement *e, bool in_article)
{
    static const char *const always[] = {"nav", "navbar", "navigation", "menu", "sidebar", "breadcrumb",
                                         "breadcrumbs", "cookie-banner", "cookie-notice", "cookie-consent",
                                         "skip-link", "share-buttons", "social-share"};
    static const char *const outside[] = {"header", "footer", "site-header", "site-footer", "masthead"};
    const char *v[2] = {attr(e, "class"), attr(e, "id")};
    for (int i = 0; i < 2; i++) {
        if (!v[i] || strlen(v[i]) > 1024)
            continue;
        if (has_token(v[i], always, CAIRN_ARRAY_LEN(always)) ||
            (!in_article && has_token(v[i], outside, CAIRN_ARRAY_LEN(outside))))
            return true;
    }
    return false;
}

static bool hidden(const GumboElement *e, bool in_article)
{
    if (attr(e, "hidden"))
        return true;
    if (e->tag != GUMBO_TAG_BODY && e->tag != GUMBO_TAG_HTML && e->tag != GUMBO_TAG_MAIN &&
        e->tag != GUMBO_TAG_ARTICLE && chrome_name(e, in_article))
        return true;
    const char *v = attr(e, "aria-hidden");
    if (v && strcasecmp(v, "true") == 0)
        return true;
    v = attr(e, "role");
    if (v && (strcasecmp(v, "navigation") == 0 || strcasecmp(v, "search") == 0 ||
              (!in_article && (strcasecmp(v, "banner") == 0 || strcasecmp(v, "contentinfo") == 0))))
        return true;
    v = attr(e, "style");
    if (v) {
        /* "display : none" with any spacing */
        for (const char *p = v; (p = strcasestr(p, "display")) != NULL; p += 7) {
            const char *q = p + 7;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q++ != ':')
                continue;
            while (*q == ' ' || *q == '\t')
                q++;
            if (strncasecmp(q, "none", 4) == 0)
                return true;
        }
    }
    return false;
}

static bool chrome_tag(GumboTag t, bool in_article)
{
    switch (t) {
    case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_NOSCRIPT: case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_NAV: case GUMBO_TAG_ASIDE: case GUMBO_TAG_FORM: case GUMBO_TAG_SVG: case GUMBO_TAG_MATH:
    case GUMBO_TAG_IFRAME: case GUMBO_TAG_OBJECT: case GUMBO_TAG_EMBED: case GUMBO_TAG_CANVAS:
    case GUMBO_TAG_BUTTON: case GUMBO_TAG_SELECT: case GUMBO_TAG_TEXTAREA: case GUMBO_TAG_INPUT:
    case GUMBO_TAG_MENU: case GUMBO_TAG_HEAD: case GUMBO_TAG_LINK: case GUMBO_TAG_BASE:
        return true;
    case GUMBO_TAG_HEADER: case GUMBO_TAG_FOOTER:
        return !in_article;
    default:
        return false;
    }
}

static bool block_tag(GumboTag t)
{
    switch (t) {
    case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_MAIN:
    case GUMBO_TAG_ADDRESS: case GUMBO_TAG_FIGURE: case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY: case GUMBO_TAG_DL: case GUMBO_TAG_DT: case GUMBO_TAG_DD: case GUMBO_TAG_UL:
    case GUMBO_TAG_OL: case GUMBO_TAG_TABLE: case GUMBO_TAG_CAPTION: case GUMBO_TAG_HR: case GUMBO_TAG_CENTER:
    case GUMBO_TAG_FIELDSET: case GUMBO_TAG_LEGEND: case GUMBO_TAG_BODY: case GUMBO_TAG_HTML:
    case GUMBO_TAG_HEADER: case GUMBO_TAG_FOOTER: case GUMBO_TAG_HGROUP: case GUMBO_TAG_TBODY:
    case GUMBO_TAG_THEAD: case GUMBO_TAG_TFOOT: case GUMBO_TAG_LI: case GUMBO_TAG_PRE:
    case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_TR: case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3:
    case GUMBO_TAG_H4: case GUMBO_TAG_H5: case GUMBO_TAG_H6:
        return true;
    default:
        return false;
    }
}

static cairn_status meta_tag(hx *h, const GumboElement *e)
{
    const char *name = attr(e, "name");
    if (!name)
        name = attr(e, "property");
    const char *content = attr(e, "content");
    if (!name || !content)
        return CAIRN_OK;
    const char *c = content;
    size_t n = strlen(c);
    pc_trim(&c, &n);
    if (!n || n > 4096)
        return CAIRN_OK;
    char *v = cairn_strndup(c, n);
    if (!v)
        return cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_status st = CAIRN_OK;
    meta_list *m = &h->doc->meta;
    if (strcasecmp(name, "description") == 0 || strcasecmp(name, "og:description") == 0) {
        if (!meta_get(m, "description") || strcasecmp(name, "description") == 0)
            st = meta_set_string(m, "description", v);
    } else if (strcasecmp(name, "author") == 0) {
        st = meta_set_string(m, "author", v);
    } else if (strcasecmp(name, "keywords") == 0) {
        /* comma list -> META_LIST of trimmed, non-empty items */
        const char *items[PC_MAX_LIST_ITEMS];
        size_t k = 0;
        char *save = NULL;
        for (char *tok = strtok_r(v, ",", &save); tok && k < PC_MAX_LIST_ITEMS; tok = strtok_r(NULL, ",", &save)) {
            const char *s = tok;
            size_t len = strlen(s);
            pc_trim(&s, &len);
            if (!len)
                continue;
            ((char *)s)[len] = 0;
            items[k++] = s;
        }
        if (k)
            st = meta_set_list(m, "keywords", items, k);
    } else if (strcasecmp(name, "og:title") == 0) {
        if (!h->title.len)
            st = cairn_buf_puts(&h->title, v);
    } else if (strcasecmp(name, "date") == 0 || strcasecmp(name, "dcterms.date") == 0 ||
               strcasecmp(name, "dc.date") == 0 || strcasecmp(name, "dcterms.created") == 0 ||
               strcasecmp(name, "article:published_time") == 0) {
        st = meta_set_parsed(m, "date", v);
    }
    cairn_free(v);
    return st;
}

/* Text of a node's descendants (for <title>), appended raw. */
static cairn_status node_text(cairn_buf *b, const GumboNode *node)
{
    if (node->type != GUMBO_NODE_ELEMENT)
        return CAIRN_OK;
    const GumboVector *ch = &node->v.element.children;
    for (unsigned i = 0; i < ch->length; i++) {
        const GumboNode *c = ch->data[i];
        if (c->type == GUMBO_NODE_TEXT || c->type == GUMBO_NODE_WHITESPACE || c->type == GUMBO_NODE_CDATA)
            CAIRN_TRY(cairn_buf_puts(b, c->v.text.text));
    }
    return CAIRN_OK;
}

/* Entering an element: returns whether to descend, with exit flags. */
static cairn_status enter(hx *h, const GumboNode *node, frame *f, bool *descend)
{
    const GumboElement *e = &node->v.element;
    GumboTag t = e->tag;
    *descend = false;
    f->kind = h->kind;
    f->level = h->level;
    f->flags = 0;
    if (t == GUMBO_TAG_TITLE) {
        return h->title.len ? CAIRN_OK : node_text(&h->title, node);
    }
    if (t == GUMBO_TAG_META)
        return meta_tag(h, e);
    if (t == GUMBO_TAG_HTML) {
        const char *lang = attr(e, "lang");
        if (lang && *lang && strlen(lang) < 64)
            CAIRN_TRY(meta_set_string(&h->doc->meta, "lang", lang));
    }
    if (chrome_tag(t, h->article > 0) || hidden(e, h->article > 0)) {
        /* the head holds title/meta: walk it for those only */
        if (t == GUMBO_TAG_HEAD) {
            const GumboVector *ch = &e->children;
            for (unsigned i = 0; i < ch->length; i++) {
                const GumboNode *c = ch->data[i];
                if (c->type != GUMBO_NODE_ELEMENT)
                    continue;
                if (c->v.element.tag == GUMBO_TAG_TITLE && !h->title.len)
                    CAIRN_TRY(node_text(&h->title, c));
                else if (c->v.element.tag == GUMBO_TAG_META)
                    CAIRN_TRY(meta_tag(h, &c->v.element));
            }
        }
        return CAIRN_OK;
    }
    if (t == GUMBO_TAG_BR) {
        if (h->pre)
            return cairn_buf_putc(&h->cur, '\n');
        if (h->last_br && !h->row)
            return flush(h);
        CAIRN_TRY(add_text(h, " ", 1));
        h->last_br = true;
        return CAIRN_OK;
    }
    if (t == GUMBO_TAG_TD || t == GUMBO_TAG_TH) {
        if (h->row && h->cur.len) {
            h->space = false;
            CAIRN_TRY(add_text(h, " | ", 3));
        }
        *descend = true;
        return CAIRN_OK;
    }
    *descend = true;
    if (t == GUMBO_TAG_ARTICLE || t == GUMBO_TAG_MAIN) {
        h->article++;
        f->flags |= F_ARTICLE;
    }
    if (!block_tag(t))
        return CAIRN_OK;
    if (h->row) { /* inside a table row: blocks only separate words */
        return add_text(h, " ", 1);
    }
    if (h->pre) /* inside pre: keep going with the code block */
        return CAIRN_OK;
    CAIRN_TRY(flush(h));
    f->flags |= F_FLUSH;
    switch (t) {
    case GUMBO_TAG_H1: case GUMBO_TAG_H2: case GUMBO_TAG_H3: case GUMBO_TAG_H4: case GUMBO_TAG_H5:
    case GUMBO_TAG_H6:
        h->kind = BLOCK_HEADING;
        h->level = 1 + (int)(t - GUMBO_TAG_H1);
        break;
    case GUMBO_TAG_UL: case GUMBO_TAG_OL:
        h->lists++;
        f->flags |= F_LIST;
        break;
    case GUMBO_TAG_LI:
        h->kind = BLOCK_LIST_ITEM;
        h->level = CAIRN_MAX(h->lists, 1);
        break;
    case GUMBO_TAG_PRE:
        h->kind = BLOCK_CODE;
        h->level = 0;
        h->pre++;
        f->flags |= F_PRE;
        break;
    case GUMBO_TAG_BLOCKQUOTE:
        h->kind = BLOCK_QUOTE;
        h->level = 0;
        break;
    case GUMBO_TAG_TR:
        h->kind = BLOCK_TABLE_ROW;
        h->level = 0;
        h->row++;
        f->flags |= F_ROW;
        break;
    case GUMBO_TAG_DT: case GUMBO_TAG_DD: case GUMBO_TAG_CAPTION:
        if (h->kind == BLOCK_HEADING || h->kind == BLOCK_TABLE_ROW) {
            h->kind = BLOCK_PARAGRAPH;
            h->level = 0;
        }
        break;
    default:
        break;
    }
    return CAIRN_OK;
}

static cairn_status leave(hx *h, const frame *f)
{
    if (f->flags & F_FLUSH)
        CAIRN_TRY(flush(h));
    if (f->flags & F_PRE)
        h->pre--;
    if (f->flags & F_ROW)
        h->row--;
    if (f->flags & F_LIST)
        h->lists--;
    if (f->flags & F_ARTICLE)
        h->article--;
    h->kind = f->kind;
    h->level = f->level;
    return CAIRN_OK;
}

static cairn_status walk(hx *h, const GumboNode *root)
{
    frame *stack = NULL;
    size_t n = 0, cap = 0;
    cairn_status st = CAIRN_OK;
    /* push root */
    const GumboNode *next = root;
    while (st == CAIRN_OK) {
        if (next) {
            const GumboNode *node = next;
            next = NULL;
            if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_WHITESPACE ||
                node->type == GUMBO_NODE_CDATA) {
                st = add_text(h, node->v.text.text, strlen(node->v.text.text));
            } else if (node->type == GUMBO_NODE_ELEMENT || node->type == GUMBO_NODE_DOCUMENT) {
                frame f = {.node = node};
                bool descend = true;
                if (node->type == GUMBO_NODE_ELEMENT) {
                    st = enter(h, node, &f, &descend);
                } else {
                    f.kind = h->kind;
                    f.level = h->level;
                }
                if (st == CAIRN_OK && descend) {
                    if (n == cap) {
                        size_t nc = cap ? cap * 2 : 64;
                        frame *s = cairn_reallocarray(stack, nc, sizeof *s);
                        if (!s) {
                            st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
                            break;
                        }
                        stack = s;
                        cap = nc;
                    }
                    stack[n++] = f;
                }
            }
            continue;
        }
        if (!n)
            break;
        frame *top = &stack[n - 1];
        const GumboVector *ch = top->node->type == GUMBO_NODE_DOCUMENT ? &top->node->v.document.children
                                                                         : &top->node->v.element.children;
        if (top->child < ch->length) {
            next = ch->data[top->child++];
            continue;
        }
        st = leave(h, top);
        n--;
    }
    cairn_free(stack);
    return st;
}

/* ---------------------------------------------------------------- */
/* Fallback for pathological markup: strip tags, linear time. */

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD;
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Append text with the common character references decoded. */
static cairn_status add_text_entities(hx *h, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t k = amp ? (size_t)(amp - (s + i)) : n - i;
        CAIRN_TRY(add_text(h, s + i, k));
        i += k;
        if (!amp)
            break;
        static const struct { const char *name; const char *text; } ents[] = {
            {"amp;", "&"}, {"lt;", "<"}, {"gt;", ">"}, {"quot;", "\""}, {"apos;", "'"}, {"nbsp;", " "}};
        const char *p = s + i + 1;
        size_t left = n - i - 1;
        size_t used = 0;
        char out[8];
        size_t olen = 0;
        for (size_t e = 0; e < CAIRN_ARRAY_LEN(ents) && !used; e++) {
            size_t el = strlen(ents[e].name);
            if (left >= el && memcmp(p, ents[e].name, el) == 0) {
                used = el;
                olen = strlen(ents[e].text);
                memcpy(out, ents[e].text, olen);
            }
        }
        if (!used && left >= 3 && p[0] == '#') {
            bool hex = p[1] == 'x' || p[1] == 'X';
            size_t j = hex ? 2 : 1;
            unsigned long cp = 0;
            size_t digits = 0;
            while (j < left && digits < 8) {
                char c = p[j];
                int v = c >= '0' && c <= '9' ? c - '0'
                        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (v < 0)
                    break;
                cp = cp * (hex ? 16 : 10) + (unsigned long)v;
                digits++;
                j++;
            }
            if (digits && j < left && p[j] == ';') {
                used = j + 1;
                olen = put_utf8(out, cp);
            }
        }
        if (used) {
            CAIRN_TRY(add_text(h, out, olen));
            i += 1 + used;
        } else {
            CAIRN_TRY(add_text(h, "&", 1));
            i++;
        }
    }
    return CAIRN_OK;
}

static cairn_status html_strip(hx *h, const char *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *p = memchr(d + i, '<', n - i);
        size_t k = p ? (size_t)(p - (d + i)) : n - i;
        CAIRN_TRY(add_text_entities(h, d + i, k));
        i += k;
        if (!p)
            break;
        tag_info t;
        if (!scan_tag(d, n, i, &t)) {
            CAIRN_TRY(add_text(h, "<", 1));
            i++;
            continue;
        }
        i = t.next;
        if (t.tag == GUMBO_TAG_LAST || t.end) {
            if (t.tag != GUMBO_TAG_LAST && block_tag(t.tag))
                CAIRN_TRY(flush(h));
            continue;
        }
        if (raw_text_tag(t.tag)) {
            size_t e = skip_raw_text(d, n, i, t.tag);
            if (t.tag == GUMBO_TAG_TITLE && !h->title.len)
                CAIRN_TRY(cairn_buf_append(&h->title, d + i, e - i));
            i = e;
            continue;
        }
        if (t.tag == GUMBO_TAG_BR || block_tag(t.tag))
            CAIRN_TRY(flush(h));
        else if (t.tag == GUMBO_TAG_TD || t.tag == GUMBO_TAG_TH)
            CAIRN_TRY(add_text(h, " ", 1));
    }
    return flush(h);
}

/* ---------------------------------------------------------------- */

static cairn_status html_parse(const char *path, const char *data, size_t len, const ingest_options *opt,
                               ingest_emit_fn emit, void *ctx)
{
    (void)opt;
    size_t bom = pc_bom_len(data, len);
    data += bom;
    len -= bom;
    if (len > UINT_MAX / 4)
        return cairn_fail(CAIRN_ERR_TOO_LARGE, "%s: HTML larger than %u bytes", path, UINT_MAX / 4);
    char *converted = NULL;
    if (declares_latin1(data, len)) {
        char *fixed = NULL;
        size_t fl = 0;
        bool rep = false;
        CAIRN_TRY(utf8_repair(data, len, &fixed, &fl, &rep));
        cairn_free(fixed);
        if (rep) {
            size_t cl = 0;
            CAIRN_TRY(latin1_to_utf8(data, len, &converted, &cl));
            data = converted;
            len = cl;
        }
    }
    ingest_doc doc;
    ingest_doc_init(&doc);
    doc.type = "html";
    hx h = {.doc = &doc, .space = true, .kind = BLOCK_PARAGRAPH};
    cairn_buf_init(&h.cur, 0);
    cairn_buf_init(&h.title, 1 << 16);
    cairn_buf_init(&h.h1, 1 << 16);
    cairn_status st = CAIRN_OK;

    size_t depth, attrs;
    html_prescan(data, len, &depth, &attrs);
    if (depth > HTML_MAX_DEPTH || attrs > HTML_MAX_ATTRS) {
        if (depth > HTML_MAX_DEPTH)
            CAIRN_WARN("%s: markup too deeply nested (~%zu levels); reading it as plain text without structure", path,
                       depth);
        else
            CAIRN_WARN("%s: a tag with %zu attributes; reading it as plain text without structure", path, attrs);
        st = html_strip(&h, data, len);
    } else {
        GumboOptions o = kGumboDefaultOptions;
        o.max_errors = 0; /* we do not report parse errors: do not collect them */
        GumboOutput *out = gumbo_parse_with_options(&o, data, len);
        if (!out)
            st = cairn_fail(CAIRN_ERR_NOMEM, "%s: out of memory parsing HTML", path);
        else {
            st = walk(&h, out->document);
            if (st == CAIRN_OK)
                st = flush(&h);
            gumbo_destroy_output(&o, out);
        }
    }
    if (st == CAIRN_OK)
        st = set_title(&h);
    if (st == CAIRN_OK && !(doc.key = cairn_strdup("")))
        st = cairn_fail(CAIRN_ERR_NOMEM, "out of memory");
    cairn_buf_free(&h.cur);
    cairn_buf_free(&h.title);
    cairn_buf_free(&h.h1);
    cairn_free(converted);
    if (st == CAIRN_OK)
        st = emit(ctx, &doc);
    ingest_doc_free(&doc);
    return st;
}

const ingest_parser ingest_parser_html = {"html", html_parse};
