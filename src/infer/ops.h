/*
 * ops.h — element-wise ops with per-ISA versions (internal to src/infer).
 */
#ifndef CAIRN_INFER_OPS_H
#define CAIRN_INFER_OPS_H

#include <stddef.h>

/* g[i] = silu(g[i]) * u[i]; AVX2 + FMA (exp by polynomial, ~2 ulp). */
void swiglu_avx2(float *g, const float *u, size_t n);

#endif
