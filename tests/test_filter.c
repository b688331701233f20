/* test_filter.c — the filter language: parsing, errors with positions, type
 * checking, and the reference evaluator. */
#include "t.h"
#include "filter/filter.h"

#define NOW 1767225600 /* 2026-01-01T00:00:00Z */

static unsigned schema(void *ctx, const char *field)
{
    (void)ctx;
    if (!strcmp(field, "tags")) return FT_LIST;
    if (!strcmp(field, "lang")) return FT_STRING;
    if (!strcmp(field, "year")) return FT_NUMBER;
    if (!strcmp(field, "draft")) return FT_BOOL;
    if (!strcmp(field, "due")) return FT_DATE;
    if (!strcmp(field, "version")) return FT_STRING | FT_NUMBER;
    return 0;
}

static filter_node *parse_ok(const char *src)
{
    filter_node *f = NULL;
    cairn_status st = filter_parse(src, NOW, &f);
    if (st == CAIRN_OK)
        st = filter_check(f, src, schema, NULL);
    CHECKF(st == CAIRN_OK, "%s -> %s", src, cairn_last_error());
    if (st != CAIRN_OK) {
        filter_free(f);
        return NULL;
    }
    return f;
}

/* Expect an error whose caret is at 1-based column `col`. */
static void parse_err(const char *src, int col, const char *needle)
{
    filter_node *f = NULL;
    cairn_status st = filter_parse(src, NOW, &f);
    if (st == CAIRN_OK)
        st = filter_check(f, src, schema, NULL);
    filter_free(f);
    CHECKF(st == CAIRN_ERR_INVALID, "'%s' should fail", src);
    char want[64];
    snprintf(want, sizeof want, "at column %d:", col);
    CHECKF(strstr(cairn_last_error(), want) != NULL, "'%s': want %s, got: %s", src, want, cairn_last_error());
    if (needle)
        CHECKF(strstr(cairn_last_error(), needle) != NULL, "'%s': want '%s' in: %s", src, needle, cairn_last_error());
}

static void test_parse_shapes(void)
{
    filter_node *f = parse_ok("lang = \"en\" AND (year >= 2020 OR NOT draft = true)");
    CHECK(f && f->kind == FN_AND && f->b->kind == FN_OR && f->b->b->kind == FN_NOT);
    filter_free(f);
    f = parse_ok("tags CONTAINS 'rust' or path ^= \"docs/\"");
    CHECK(f && f->kind == FN_OR && f->a->kind == FN_CONTAINS && f->b->kind == FN_PREFIX);
    filter_free(f);
    f = parse_ok("lang IN (en, 'de', \"fr\")");
    CHECK(f && f->kind == FN_IN && f->n_vals == 3 && !strcmp(f->vals[2].s, "fr") && f->vals[0].bare);
    filter_free(f);
    f = parse_ok("modified >= 2025-01-01");
    CHECK(f && f->vals[0].type == META_DATE && f->vals[0].n == 1735689600.0);
    filter_free(f);
    f = parse_ok("ingested > now - 7d");
    CHECK(f && f->vals[0].type == META_DATE && f->vals[0].n == NOW - 7 * 86400.0);
    filter_free(f);
    f = parse_ok("due < 2026-03-01T12:30:00+01:00");
    CHECK(f && f->vals[0].n == 1772368200.0 - 3600);
    filter_free(f);
    f = parse_ok("HAS due and path GLOB \"*.md\"");
    CHECK(f && f->a->kind == FN_HAS && f->b->kind == FN_GLOB);
    filter_free(f);
    f = parse_ok("title = \"say \\\"hi\\\"\\n\"");
    CHECK(f && !strcmp(f->vals[0].s, "say \"hi\"\n"));
    filter_free(f);
    /* AND binds tighter than OR */
    f = parse_ok("lang = a OR lang = b AND year = 1");
    CHECK(f && f->kind == FN_OR && f->b->kind == FN_AND);
    filter_free(f);
    f = parse_ok("size > -1.5e3");
    CHECK(f && f->vals[0].type == META_NUMBER && f->vals[0].n == -1500);
    filter_free(f);
}

static void test_errors_point_at_position(void)
{
    filter_node *e = NULL;
    CHECK(filter_parse("  ", NOW, &e) == CAIRN_ERR_INVALID && strstr(cairn_last_error(), "empty"));
    parse_err("lang = ", 8, "expected a value");
    parse_err("lang == \"en\" AND", 17, "expected a field name");
    parse_err("(lang = en", 11, "expected ')'");
    parse_err("lang = en)", 10, "unexpected ')'");
    parse_err("lang ~ en", 6, "expected an operator");
    parse_err("colour = red", 1, "unknown field 'colour'");
    parse_err("year > 2020 AND modified >= yesterday", 29, "type mismatch");
    parse_err("modified >= 2025-13-01", 13, "invalid date");
    parse_err("lang = \"abc", 8, "unterminated string");
    parse_err("lang = \"a\\qb\"", 10, "unknown escape");
    parse_err("tags = x", 1, "use CONTAINS");
    parse_err("lang CONTAINS x", 1, "CONTAINS needs a list");
    parse_err("year ^= \"19\"", 1, "needs a string field");
    parse_err("draft < true", 9, "booleans");
    parse_err("ingested > now - 7q", 18, "bad duration");
    parse_err("lang IN (a b)", 12, "',' or ')'");
    parse_err("NOT", 4, "expected a field name");
    parse_err("lang = @", 8, "expected a value");
}

static void test_depth_and_size_caps(void)
{
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "lang = a");
    filter_node *f = NULL;
    CHECK(filter_parse(deep, NOW, &f) == CAIRN_ERR_INVALID);
    CHECK(strstr(cairn_last_error(), "nested deeper") != NULL);
    CHECK(f == NULL);
}

static void test_alloc_failures_are_clean(void)
{
    const char *src = "lang IN (a, 'b', c) AND (NOT tags CONTAINS \"x\" OR due > now - 1d)";
    for (long n = 0; n < 40; n++) {
        filter_node *f = NULL;
        cairn_alloc_fail_after(n, false);
        cairn_status st = filter_parse(src, NOW, &f);
        cairn_alloc_fail_after(-1, false);
        CHECK(st == CAIRN_OK || st == CAIRN_ERR_NOMEM);
        CHECK((st == CAIRN_OK) == (f != NULL));
        filter_free(f);
    }
}

static void make_doc(meta_list *m, const char *lang, double year, bool draft, const char *tag1, const char *tag2)
{
    memset(m, 0, sizeof *m);
    if (lang) CHECK_OK(meta_set_string(m, "lang", lang));
    if (year > 0) CHECK_OK(meta_set_number(m, "year", year));
    CHECK_OK(meta_set_bool(m, "draft", draft));
    const char *tags[2] = {tag1, tag2};
    if (tag1) CHECK_OK(meta_set_list(m, "tags", tags, tag2 ? 2 : 1));
    CHECK_OK(meta_set_string(m, "path", "docs/guide/intro.md"));
    CHECK_OK(meta_set_date(m, "modified", 1735689600.0 + 86400));
}

static bool eval(const char *src, const meta_list *doc)
{
    filter_node *f = parse_ok(src);
    bool r = f && filter_match(f, doc);
    filter_free(f);
    return r;
}

static void test_evaluate(void)
{
    meta_list d1, d2;
    make_doc(&d1, "en", 2021, false, "rust", "c");
    make_doc(&d2, NULL, 0, true, NULL, NULL);
    CHECK(eval("lang = en", &d1));
    CHECK(!eval("lang = en", &d2));
    CHECK(!eval("lang != en", &d2));      /* missing field: predicate false */
    CHECK(eval("NOT lang = en", &d2));    /* ... and NOT makes it true */
    CHECK(eval("year >= 2021 AND year < 2022", &d1));
    CHECK(!eval("year > 2021", &d1));
    CHECK(eval("tags CONTAINS c", &d1));
    CHECK(!eval("tags CONTAINS go", &d1));
    CHECK(eval("tags IN (go, rust)", &d1));
    CHECK(eval("lang IN (de, en)", &d1));
    CHECK(eval("path ^= \"docs/\"", &d1));
    CHECK(!eval("path ^= \"src/\"", &d1));
    CHECK(eval("path GLOB \"*.md\"", &d1));
    CHECK(!eval("path GLOB \"*.txt\"", &d1));
    CHECK(eval("modified >= 2025-01-01 AND modified < 2025-01-03", &d1));
    CHECK(eval("draft = true", &d2));
    CHECK(eval("HAS lang", &d1) && !eval("HAS lang", &d2));
    CHECK(eval("(lang = xx OR draft = true) AND NOT HAS year", &d2));
    meta_list_free(&d1);
    meta_list_free(&d2);
}

int main(void)
{
    RUN(test_parse_shapes);
    RUN(test_errors_point_at_position);
    RUN(test_depth_and_size_caps);
    RUN(test_alloc_failures_are_clean);
    RUN(test_evaluate);
    return t_done();
}
