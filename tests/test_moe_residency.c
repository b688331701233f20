/* test_moe_residency.c — MoE decode reads only the chosen experts: on a cold
 * run (the file evicted from the page cache, read-ahead off), the pages of
 * the experts the router did not choose are never paged in. Counted with
 * mincore() over each expert's slice of the stacked expert tensors. */
#include "t.h"
#include "gguf/testmodel.h"
#include "infer/session.h"
#include <fcntl.h>
#include <sys/mman.h>

static long page;

/* Resident pages lying wholly inside [p, p + n). */
static size_t resident_inside(const void *p, size_t n, size_t *total)
{
    uintptr_t a = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)page - 1);
    *total = b > a ? (size_t)((b - a) / (uintptr_t)page) : 0;
    if (!*total)
        return 0;
    unsigned char *v = malloc(*total);
    size_t r = 0;
    if (v && mincore((void *)a, b - a, v) == 0)
        for (size_t i = 0; i < *total; i++)
            r += v[i] & 1;
    free(v);
    return r;
}

static void test_cold_decode_touches_chosen_experts_only(void)
{
    page = sysconf(_SC_PAGESIZE);
    const char *dir = t_tmpdir("moe_residency");
    char path[1200];
    snprintf(path, sizeof path, "%s/moe.gguf", dir);
    gguf_testmodel_params p;
    gguf_testmodel_defaults(&p);
    p.n_embd = 256;
    p.n_ff = 512;           /* one expert's matrix: 512 KiB in F32 */
    p.n_layer = 2;
    p.n_head = 4;
    p.n_expert = 8;
    p.n_expert_used = 2;
    CHECK_OK(gguf_testmodel_write(path, &p));
    /* evict the file from the page cache */
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(fsync(fd) == 0);
    for (int i = 0; i < 5; i++) {   /* writeback may still hold some pages */
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        usleep(20000);
    }
    close(fd);
    cairn_model *m = NULL;
    CHECK_OK(model_load_ex(path, MODEL_WEIGHTS_MAPPED, &m));   /* what is measured: paging of the mapping */
    if (!m)
        return;
    /* Opening read the header through the mapping, and read-ahead may have
     * pulled in the first tensors: drop the page cache again so the run is
     * cold. (The engine itself turns read-ahead off over expert stacks.) */
    fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    for (int i = 0; i < 10; i++) {  /* read-ahead started by the open completes asynchronously */
        usleep(50000);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    }
    close(fd);
    const model_layer *L0 = &m->layers[0];
    size_t tot;
    size_t before = 0;
    for (int il = 0; il < p.n_layer; il++)
        for (int e = 0; e < p.n_expert; e++) {
            const model_layer *L = &m->layers[il];
            qmat g = model_expert(&L->gate_exps, L->gate_stride, e);
            qmat d = model_expert(&L->down_exps, L->down_stride, e);
            qmat u = model_expert(&L->up_exps, L->up_stride, e);
            before += resident_inside(g.data, L->gate_stride, &tot) + resident_inside(d.data, L->down_stride, &tot) +
                      resident_inside(u.data, L->up_stride, &tot);
        }
    (void)L0;
    if (before > 0) {
        model_free(m);
        SKIP_ALL("the page cache kept the file (fadvise DONTNEED had no effect here): %zu pages resident", before);
    }
    cairn_session *s = NULL;
    session_opts so = session_opts_default();
    so.n_ctx = 16;
    CHECK_OK(session_new(m, &so, &s));
    int32_t tok = 5;
    float *logits;
    CHECK_OK(session_eval(s, &tok, 1, &logits));
    const uint64_t *counts = session_expert_counts(s);
    int chosen_total = 0, idle_total = 0;
    for (int il = 0; il < p.n_layer; il++) {
        const model_layer *L = &m->layers[il];
        for (int e = 0; e < p.n_expert; e++) {
            bool chosen = counts[(size_t)il * p.n_expert + e] > 0;
            const qmat *stacks[3] = {&L->gate_exps, &L->up_exps, &L->down_exps};
            const size_t strides[3] = {L->gate_stride, L->up_stride, L->down_stride};
            for (int k = 0; k < 3; k++) {
                qmat x = model_expert(stacks[k], strides[k], e);
                size_t res = resident_inside(x.data, strides[k], &tot);
                if (chosen) {
                    CHECKF(res == tot, "layer %d expert %d (chosen): %zu of %zu pages resident", il, e, res, tot);
                    chosen_total++;
                } else {
                    CHECKF(res == 0, "layer %d expert %d (idle): %zu of %zu pages resident", il, e, res, tot);
                    idle_total++;
                }
            }
        }
    }
    CHECK_EQ_INT(chosen_total, 3 * p.n_layer * p.n_expert_used);
    CHECK_EQ_INT(idle_total, 3 * p.n_layer * (p.n_expert - p.n_expert_used));
    fprintf(stderr, "  %d chosen expert matrices fully resident, %d idle ones never paged in\n", chosen_total, idle_total);
    session_free(s);
    model_free(m);
}

int main(void)
{
    RUN(test_cold_decode_touches_chosen_experts_only);
    return t_done();
}
