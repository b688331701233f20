/* filter_eval.c — type checking of a parsed filter against the store's
 * fields, and the reference evaluator over one document's typed fields. */
#include "filter/filter.h"
#include <fnmatch.h>
#include <string.h>

static const struct { const char *name; unsigned types; } builtins[] = {
    {"path", FT_STRING},  {"type", FT_STRING},     {"title", FT_STRING}, {"content_hash", FT_STRING},
    {"size", FT_NUMBER},  {"modified", FT_DATE},   {"ingested", FT_DATE}, {"expires", FT_DATE},
};

unsigned filter_builtin_type(const char *field)
{
    for (size_t i = 0; i < CAIRN_ARRAY_LEN(builtins); i++)
        if (!strcmp(builtins[i].name, field))
            return builtins[i].types;
    return 0;
}

static const char *type_names(unsigned mask, char *buf, size_t cap)
{
    static const char *names[] = {"string", "number", "date", "bool", "list"};
    buf[0] = 0;
    for (int i = 0; i < 5; i++)
        if (mask & (1u << i)) {
            if (buf[0])
                strncat(buf, "/", cap - strlen(buf) - 1);
            strncat(buf, names[i], cap - strlen(buf) - 1);
        }
    return buf;
}

static const char *value_desc(const filter_value *v)
{
    switch (v->type) {
    case META_STRING: return v->bare ? "a word" : "a string";
    case META_NUMBER: return "a number";
    case META_DATE: return "a date";
    case META_BOOL: return "a boolean";
    default: return "a value";
    }
}

/* Field types a value of type vt can be compared with. Strings compare with
 * string fields and list items; numbers with numbers; dates with dates. */
static unsigned compatible(const filter_value *v) { return 1u << (v->type - 1); }

static cairn_status check(filter_node *f, const char *src, filter_field_types_fn types, void *ctx)
{
    char b1[64];
    switch (f->kind) {
    case FN_AND:
    case FN_OR:
        CAIRN_TRY(check(f->a, src, types, ctx));
        return check(f->b, src, types, ctx);
    case FN_NOT:
        return check(f->a, src, types, ctx);
    default:
        break;
    }
    unsigned ft = filter_builtin_type(f->field);
    if (types)
        ft |= types(ctx, f->field);
    if (!ft)
        return filter_error_at(src, f->field_pos, "unknown field '%s' (no document has it; builtin fields are path, type, "
                               "title, content_hash, size, modified, ingested, expires)", f->field);
    switch (f->kind) {
    case FN_HAS:
        f->field_types = ft;
        return CAIRN_OK;
    case FN_PREFIX:
    case FN_GLOB:
        if (!(ft & (FT_STRING | FT_LIST)))
            return filter_error_at(src, f->field_pos, "'%s' is a %s field; %s needs a string field", f->field,
                                   type_names(ft, b1, sizeof b1), f->kind == FN_PREFIX ? "^=" : "GLOB");
        if (f->vals[0].type != META_STRING)
            return filter_error_at(src, f->vals[0].pos, "%s needs a string pattern, not %s",
                                   f->kind == FN_PREFIX ? "^=" : "GLOB", value_desc(&f->vals[0]));
        f->field_types = ft & (FT_STRING | FT_LIST);
        return CAIRN_OK;
    case FN_CONTAINS:
        if (!(ft & FT_LIST))
            return filter_error_at(src, f->field_pos, "'%s' is a %s field; CONTAINS needs a list field (use = for single values)",
                                   f->field, type_names(ft, b1, sizeof b1));
        if (f->vals[0].type != META_STRING)
            return filter_error_at(src, f->vals[0].pos, "list items are strings; CONTAINS needs a string, not %s",
                                   value_desc(&f->vals[0]));
        f->field_types = FT_LIST;
        return CAIRN_OK;
    case FN_CMP:
    case FN_IN: {
        unsigned usable = ft;
        if (f->kind == FN_CMP && (ft & FT_LIST) && !(ft & ~FT_LIST))
            return filter_error_at(src, f->field_pos, "'%s' is a list field; use CONTAINS or IN", f->field);
        if (f->kind == FN_CMP)
            usable &= ~FT_LIST;
        unsigned got = 0;
        for (size_t i = 0; i < f->n_vals; i++) {
            const filter_value *v = &f->vals[i];
            unsigned c = compatible(v) | (v->type == META_STRING && f->kind == FN_IN ? FT_LIST : 0);
            if (!(c & usable))
                return filter_error_at(src, v->pos, "type mismatch: '%s' is a %s field, compared with %s", f->field,
                                       type_names(ft, b1, sizeof b1), value_desc(v));
            if (f->kind == FN_CMP && f->op != FOP_EQ && f->op != FOP_NE && v->type == META_BOOL)
                return filter_error_at(src, v->pos, "booleans can only be compared with = or !=");
            got |= c & usable;
        }
        f->field_types = got;
        return CAIRN_OK;
    }
    default:
        return cairn_fail(CAIRN_ERR_INTERNAL, "filter: bad node kind");
    }
}

cairn_status filter_check(filter_node *f, const char *src, filter_field_types_fn types, void *ctx)
{
    return check(f, src, types, ctx);
}

static bool cmp_num(filter_op op, double a, double b)
{
    switch (op) {
    case FOP_EQ: return a == b;
    case FOP_NE: return a != b;
    case FOP_LT: return a < b;
    case FOP_LE: return a <= b;
    case FOP_GT: return a > b;
    case FOP_GE: return a >= b;
    }
    return false;
}

static bool value_cmp(const meta_value *mv, filter_op op, const filter_value *v)
{
    switch (mv->type) {
    case META_STRING:
        if (v->type != META_STRING)
            return false;
        {
            int c = strcmp(mv->s, v->s);
            return cmp_num(op, c, 0);
        }
    case META_NUMBER:
    case META_DATE:
    case META_BOOL:
        if (v->type != mv->type)
            return false;
        return cmp_num(op, mv->n, v->n);
    default:
        return false;
    }
}

bool filter_match(const filter_node *f, const meta_list *doc)
{
    switch (f->kind) {
    case FN_AND: return filter_match(f->a, doc) && filter_match(f->b, doc);
    case FN_OR: return filter_match(f->a, doc) || filter_match(f->b, doc);
    case FN_NOT: return !filter_match(f->a, doc);
    default: break;
    }
    const meta_value *mv = meta_get(doc, f->field);
    if (!mv)
        return false;
    switch (f->kind) {
    case FN_HAS:
        return true;
    case FN_CMP:
        return mv->type != META_LIST && value_cmp(mv, f->op, &f->vals[0]);
    case FN_IN:
        for (size_t i = 0; i < f->n_vals; i++) {
            if (mv->type == META_LIST) {
                if (f->vals[i].type != META_STRING)
                    continue;
                for (size_t j = 0; j < mv->n_items; j++)
                    if (!strcmp(mv->items[j], f->vals[i].s))
                        return true;
            } else if (value_cmp(mv, FOP_EQ, &f->vals[i])) {
                return true;
            }
        }
        return false;
    case FN_CONTAINS:
        if (mv->type != META_LIST)
            return false;
        for (size_t j = 0; j < mv->n_items; j++)
            if (!strcmp(mv->items[j], f->vals[0].s))
                return true;
        return false;
    case FN_PREFIX:
    case FN_GLOB: {
        const char *pat = f->vals[0].s;
        size_t plen = strlen(pat);
        if (mv->type == META_STRING)
            return f->kind == FN_PREFIX ? strncmp(mv->s, pat, plen) == 0 : fnmatch(pat, mv->s, 0) == 0;
        if (mv->type == META_LIST)
            for (size_t j = 0; j < mv->n_items; j++)
                if (f->kind == FN_PREFIX ? strncmp(mv->items[j], pat, plen) == 0 : fnmatch(pat, mv->items[j], 0) == 0)
                    return true;
        return false;
    }
    default:
        return false;
    }
}
