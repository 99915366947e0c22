/* elementwise-avx2.c - the elementwise and reduction kernels of ../elementwise.h on 8 floats
 * (AVX2 registers); the kernel table of the AVX2+FMA set. */
#include <immintrin.h>

#define EW_VECTOR_BYTES 32
#define EW_MAX(a, b) ((ew_f)_mm256_max_ps((__m256)(a), (__m256)(b)))
#define EW_ROUND(a) ((ew_f)_mm256_round_ps((__m256)(a), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
#define EW_SQRT(a) ((ew_f)_mm256_sqrt_ps((__m256)(a)))
#define EW_MULADD(a, b, c) ((ew_f)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#include "../elementwise.h"
#include "avx2.h"

const q4_kernels q4_avx2_kernels = {
    "avx2",
    &q4_avx2_gemm_6x16,
    &q4_avx2_iconv_4x16,
    EW_TABLE_ENTRIES,
    q4_avx2_winograd_input,
    q4_avx2_winograd_output,
    q4_avx2_winograd_gradient,
    q4_avx2_winograd_spread,
    q4_avx2_winograd_merge,
    q4_avx2_iquantize_rows,
    NULL, /* integer Winograd: AVX2 multiplies int16 at half its int8 rate, which takes back most of the
             2.25x fewer multiplies (README, "Integer arithmetic") */
};
