/* gemm-avx512.c - f32 GEMM register tiles for AVX-512F: mr rows x 32 columns (two zmm
 * vectors a row), 12 rows (24 accumulators, the default) or 8. Like every tile, the
 * accumulators start at zero and sum p = 0..kc-1 in order, then are added to (or stored
 * in) C. `fused` picks one fused multiply-add or a multiply then an add (exact mode). */
#include <immintrin.h>

#include "../avx2/avx2.h"
#include "avx512.h"

static inline __attribute__((always_inline)) void tile_x32(int mr, int fused, int kc, const float *a, const float *b,
                                                           float *c, long ldc, int accumulate) {
    __m512 acc[12][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
        for (int i = 0; i < mr; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            if (fused) {
                acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
            } else {
                acc[i][0] = _mm512_add_ps(_mm512_mul_ps(ai, b0), acc[i][0]);
                acc[i][1] = _mm512_add_ps(_mm512_mul_ps(ai, b1), acc[i][1]);
            }
        }
        a += mr;
        b += 32;
    }
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm512_add_ps(_mm512_loadu_ps(row), acc[i][0]);
            acc[i][1] = _mm512_add_ps(_mm512_loadu_ps(row + 16), acc[i][1]);
        }
        _mm512_storeu_ps(row, acc[i][0]);
        _mm512_storeu_ps(row + 16, acc[i][1]);
    }
}

static void f32_gemm_12x32_avx512(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    tile_x32(12, 1, kc, a, b, c, ldc, accumulate);
}

static void f32_gemm_8x32_avx512(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    tile_x32(8, 1, kc, a, b, c, ldc, accumulate);
}

static void f32_gemm_12x32_avx512_nofma(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    tile_x32(12, 0, kc, a, b, c, ldc, accumulate);
}

const q4_gemm_variant q4_avx512_gemm_12x32 = {"f32-gemm-12x32-avx512", 12, 32, 256, 96, 512, f32_gemm_12x32_avx512,
                                              q4_avx2_pack_rows, q4_avx2_pack_patch_t, q4_avx2_pack_patch, 64, 64};
const q4_gemm_variant q4_avx512_gemm_8x32 = {"f32-gemm-8x32-avx512", 8, 32, 256, 96, 512, f32_gemm_8x32_avx512,
                                             q4_avx2_pack_rows, q4_avx2_pack_patch_t, q4_avx2_pack_patch, 64, 64};
/* exact mode: kc 256 and the Winograd thresholds every build's exact variant has */
const q4_gemm_variant q4_avx512_gemm_12x32_nofma = {"f32-gemm-12x32-avx512-nofma", 12, 32, 256, 96, 512,
                                                    f32_gemm_12x32_avx512_nofma, q4_avx2_pack_rows, q4_avx2_pack_patch_t,
                                                    q4_avx2_pack_patch, 64, 64};
