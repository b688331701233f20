/*
 * filter.h — the metadata filter language shared by `--where` on the CLI and
 * the `filter` field of the HTTP API.
 *
 *   expr     := or
 *   or       := and ("OR" and)*
 *   and      := unary ("AND" unary)*
 *   unary    := "NOT" unary | "(" expr ")" | "HAS" field | predicate
 *   predicate:= field cmp value | field "IN" "(" value ("," value)* ")"
 *             | field "CONTAINS" value | field "^=" string | field "GLOB" string
 *   cmp      := "=" | "!=" | "<" | "<=" | ">" | ">="
 *   value    := "string" | 'string' | number | date | "true" | "false"
 *             | "now" [("+"|"-") duration] | word
 *   date     := YYYY-MM-DD[THH:MM[:SS][Z|±HH:MM]]      (UTC when no zone)
 *   duration := 7d, 12h, 30m, 1w2d ...                    (see cairn_parse_duration)
 *
 * Keywords are case-insensitive; field names are case-sensitive. A bare word
 * is a string, so `type = markdown` works, but it never stands for a date or
 * number: comparing a date field with a word is a type error.
 *
 * Semantics are strict and total: a predicate on a field is false for a
 * document without that field (so `lang != "en"` excludes documents with no
 * `lang`; `NOT lang = "en"` includes them). Unknown fields, type mismatches
 * and syntax errors are CAIRN_ERR_INVALID with a message that points at the
 * position of the problem — never a silent empty result.
 */
#ifndef CAIRN_FILTER_H
#define CAIRN_FILTER_H

#include "ingest/ingest.h"

/* Type bits; bit (1 << (meta_type - 1)) for each meta_type. */
enum {
    FT_STRING = 1 << (META_STRING - 1),
    FT_NUMBER = 1 << (META_NUMBER - 1),
    FT_DATE = 1 << (META_DATE - 1),
    FT_BOOL = 1 << (META_BOOL - 1),
    FT_LIST = 1 << (META_LIST - 1),
};

typedef enum { FN_AND, FN_OR, FN_NOT, FN_CMP, FN_IN, FN_CONTAINS, FN_PREFIX, FN_GLOB, FN_HAS } filter_kind;
typedef enum { FOP_EQ, FOP_NE, FOP_LT, FOP_LE, FOP_GT, FOP_GE } filter_op;

typedef struct filter_value {
    meta_type type;     /* META_STRING (also bare words), META_NUMBER, META_DATE, META_BOOL */
    bool bare;          /* an unquoted word */
    char *s;
    double n;           /* number; date as epoch seconds; bool 0/1 */
    int pos;            /* byte offset in the source */
} filter_value;

typedef struct filter_node {
    filter_kind kind;
    int pos;                        /* byte offset of the node in the source */
    struct filter_node *a, *b;      /* AND/OR: a, b; NOT: a */
    char *field;                    /* predicates */
    int field_pos;
    filter_op op;                   /* FN_CMP */
    filter_value *vals;             /* FN_CMP/CONTAINS/PREFIX/GLOB: 1; FN_IN: n_vals */
    size_t n_vals;
    unsigned field_types;           /* filled by filter_check: types the field is compared as */
} filter_node;

/* Parse `src`. `now` (epoch seconds) resolves "now ± duration". */
cairn_status filter_parse(const char *src, int64_t now, filter_node **out);
void filter_free(filter_node *f);

/* Field lookup for type checking: the set of FT_* types the field has in the
 * store (0 = unknown field). */
typedef unsigned (*filter_field_types_fn)(void *ctx, const char *field);

/* Check every predicate against the schema: unknown fields and type
 * mismatches are errors pointing at their position in `src`. */
cairn_status filter_check(filter_node *f, const char *src, filter_field_types_fn types, void *ctx);

/* Reference evaluation against one document's fields (builtin fields such as
 * path/type/modified are expected in `doc` as typed entries too). */
bool filter_match(const filter_node *f, const meta_list *doc);

/* Builtin document fields and their types (path, type, title, size, modified,
 * ingested, expires ...). Returns 0 for a name that is not builtin. */
unsigned filter_builtin_type(const char *field);

/* Render an error pointing at byte `pos` of `src` (used by parse/check). */
cairn_status filter_error_at(const char *src, int pos, const char *fmt, ...) CAIRN_PRINTF(3, 4);


/* ---- evaluation against a store (filter_store.c) ---- */
typedef struct store store;

/* A sorted set of ids (document or chunk ids). */
typedef struct filter_idset { int64_t *ids; size_t n, cap; } filter_idset;
void filter_idset_free(filter_idset *s);
bool filter_idset_has(const filter_idset *s, int64_t id);

/* Parse and type-check `src` against the fields present in the store. */
cairn_status filter_compile(store *s, const char *src, int64_t now, filter_node **out);
/* Documents matching the filter (pre-filtering: exact, before any ranking). */
cairn_status filter_docs(store *s, const filter_node *f, filter_idset *out);
/* Chunks of the matching documents. */
cairn_status filter_chunks(store *s, const filter_node *f, filter_idset *out);

/* A bitset over chunk ids (bit i = chunk i allowed), the form the search
 * indexes take (see bm25_allowed). */
typedef struct filter_bits { uint64_t *bits; uint64_t nbits; } filter_bits;
void filter_bits_free(filter_bits *b);

/* The chunks a search may return: those of documents matching `where`
 * (NULL = all) that were ingested within `fresh_within_s` seconds of `now`
 * (0 = any age), minus expired documents. *everything is set (and `out`
 * left empty) when no restriction applies. */
cairn_status filter_allowed(store *s, const filter_node *where, int64_t fresh_within_s, int64_t now, filter_bits *out,
                            bool *everything);
#endif
