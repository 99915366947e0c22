/* kernels.c - fills the kernel table for the ISA this file was compiled for. The ISA is a
 * build-time choice (compiler flags); the GEMM variant (tile sizes) is chosen by name through
 * q4_kernels_select (front ends only), with a default per ISA. */
#include <stdio.h>
#include <string.h>

#include "../util/util.h"
#include "kernels.h"
#include "ref/ref.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "avx2/avx2.h"
#define Q4_ISA_AVX2 1
#elif defined(__wasm_simd128__)
#include "wasmsimd/wasmsimd.h"
#define Q4_ISA_WASMSIMD 1
#endif

/* Winograd from 64 channels: the threshold every build's exact variant uses (the portable
 * build is the reference, not the fast path) */
static const q4_gemm_variant scalar_4x8 = {"f32-gemm-4x8-scalar", 4, 8, 256, 64, 1024,
                                           q4_ref_microkernel_4x8, NULL, NULL, NULL, 64};

static const q4_kernels reference_table = {
    "scalar",
    &scalar_4x8,
    q4_ref_sum,
    q4_ref_centered_sum_squares,
    q4_ref_sum_squares,
    q4_ref_add_scalar,
    q4_ref_scale,
    q4_ref_affine_relu,
    q4_ref_affine_relu_backward_sums,
    q4_ref_affine_relu_backward_apply,
    q4_ref_maxpool2_forward,
    q4_ref_maxpool2_backward,
    q4_ref_max_abs,
    q4_ref_quantize,
    q4_ref_adamw,
    q4_ref_tanh_clip,
    q4_ref_sgd,
    q4_ref_ema,
};

const q4_kernels *q4_kernels_reference(void) { return &reference_table; }

/* The first variant is the build's default; `exact` names the one exact mode uses: no fused
 * multiply-add, kc 256, Winograd from 64 channels, in every build. */
#if defined(Q4_ISA_AVX2)
static const q4_gemm_variant *const variants[] = {&q4_avx2_gemm_4x24, &q4_avx2_gemm_6x16, &q4_avx2_gemm_4x24_nofma,
                                                  &scalar_4x8, NULL};
static const q4_gemm_variant *const exact = &q4_avx2_gemm_4x24_nofma;
#elif defined(Q4_ISA_WASMSIMD)
static const q4_gemm_variant *const variants[] = {&q4_wasmsimd_gemm_4x8, &q4_wasmsimd_gemm_6x8, &scalar_4x8, NULL};
static const q4_gemm_variant *const exact = &q4_wasmsimd_gemm_4x8;
#else
static const q4_gemm_variant *const variants[] = {&scalar_4x8, NULL};
static const q4_gemm_variant *const exact = &scalar_4x8;
#endif

const q4_gemm_variant *const *q4_gemm_variants(void) { return variants; }

/* the variant sessions use; set only by q4_kernels_select, before sessions are created */
static const q4_gemm_variant *selected;

q4_status q4_kernels_select(const char *variant, q4_error *err) {
    if (!variant || !*variant) {
        selected = variants[0];
        return Q4_OK;
    }
    for (int i = 0; variants[i]; i++)
        if (strcmp(variants[i]->name, variant) == 0) {
            selected = variants[i];
            return Q4_OK;
        }
    char known[256] = "";
    for (int i = 0; variants[i]; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", variants[i]->name);
    return q4_fail(err, Q4_ERR_ARGUMENT, "unknown kernels '%s' (this build has %s)", variant, known);
}

void q4_kernels_init_with(q4_kernels *table, const q4_gemm_variant *variant) {
#if defined(Q4_ISA_AVX2)
    *table = q4_avx2_kernels;
#elif defined(Q4_ISA_WASMSIMD)
    *table = q4_wasmsimd_kernels;
#else
    *table = reference_table;
#endif
    table->gemm = variant;
}

void q4_kernels_init(q4_kernels *table, int exact_mode) {
    if (!exact_mode) {
        q4_kernels_init_with(table, selected ? selected : variants[0]);
        return;
    }
    q4_kernels_init_with(table, exact);
    /* reductions in the scalar order (double sums, one element after the other) */
    table->sum = q4_ref_sum;
    table->centered_sum_squares = q4_ref_centered_sum_squares;
    table->sum_squares = q4_ref_sum_squares;
    table->affine_relu_backward_sums = q4_ref_affine_relu_backward_sums;
    table->tanh_clip = q4_exact_tanh_clip;
}

const char *q4_kernels_name(void) { return (selected ? selected : variants[0])->name; }
