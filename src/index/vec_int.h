/* vec_int.h — the vector index's internals shared by vec_hnsw.c and vec_file.c. */
#ifndef CAIRN_INDEX_VEC_INT_H
#define CAIRN_INDEX_VEC_INT_H

#include "index/vec.h"

typedef struct vec_cand {
    float d;        /* distance: minus the (approximate) inner product */
    uint32_t id;    /* node */
} vec_cand;

struct vec_index {
    uint32_t dim, dpad, rs, M0;
    vec_params p;
    double mult;            /* level multiplier 1/ln(M) */
    uint64_t rng;
    uint32_t n, n_dead, entry;
    int max_level;
    uint64_t cap, upper_len, upper_cap;
    /* node arrays (vec_hnsw.c); heap memory when owned, else in the mapping */
    uint64_t *ids;
    uint8_t *levels;
    unsigned char *rows;    /* n * rs: scale, 4 zero bytes, dpad codes */
    float *vecs;
    uint32_t *links0, *upper_off, *upper;
    uint64_t *dead;         /* always heap: tombstones change without a copy */
    bool owned;
    void *map;
    size_t map_len;
    uint64_t file_bytes;
    /* id -> node */
    uint64_t *hkeys;
    uint32_t *hvals;
    size_t hcap, hused;
    /* search scratch */
    uint16_t *vis, vis_gen;
    size_t vis_cap;
    vec_cand *cand, *res, *sel;
    size_t heap_cap, n_res;
    int8_t *qcode;
    vec_dot_i8_fn dot8;
    vec_dot_f32_fn dotf;
};

cairn_status vec__alloc(uint32_t dim, const vec_params *p, vec_index **out);
cairn_status vec__map_rebuild(vec_index *ix);
uint32_t vec__find(const vec_index *ix, uint64_t id);

#endif
