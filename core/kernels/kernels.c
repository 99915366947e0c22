/* kernels.c - fills the kernel table once for the ISA this file was compiled for. The ISA
 * is a build-time choice (compiler flags); the GEMM variant (tile sizes) is picked here at
 * start by name, with a default per ISA. */
#include <string.h>

#include "kernels.h"
#include "ref/ref.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "avx2/avx2.h"
#define Q4_ISA_AVX2 1
#elif defined(__wasm_simd128__)
#include "wasmsimd/wasmsimd.h"
#define Q4_ISA_WASMSIMD 1
#endif

static const q4_gemm_variant scalar_4x8 = {"f32-gemm-4x8-scalar", 4, 8, 256, 64, 1024,
                                           q4_ref_microkernel_4x8, NULL, NULL, NULL, 128};

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
};

const q4_kernels *q4_kernels_reference(void) { return &reference_table; }

#if defined(Q4_ISA_AVX2)
static const q4_gemm_variant *const variants[] = {&q4_avx2_gemm_4x24, &q4_avx2_gemm_6x16, &scalar_4x8, NULL};
#elif defined(Q4_ISA_WASMSIMD)
static const q4_gemm_variant *const variants[] = {&q4_wasmsimd_gemm_4x8, &q4_wasmsimd_gemm_6x8, &scalar_4x8, NULL};
#else
static const q4_gemm_variant *const variants[] = {&scalar_4x8, NULL};
#endif

const q4_gemm_variant *const *q4_gemm_variants(void) { return variants; }

void q4_kernels_init(q4_kernels *table, const char *variant) {
    int index = 0;
    if (variant && *variant)
        for (int i = 0; variants[i]; i++)
            if (strcmp(variants[i]->name, variant) == 0) index = i;
#if defined(Q4_ISA_AVX2)
    *table = q4_avx2_kernels;
#elif defined(Q4_ISA_WASMSIMD)
    *table = q4_wasmsimd_kernels;
#else
    *table = reference_table;
#endif
    table->gemm = variants[index];
}

const char *q4_kernels_name(void) { return variants[0]->name; }
