/* gemm-avx2.c - f32 GEMM register tiles for AVX2+FMA: 6x16 (12 accumulators, the
 * default) and 4x24. Accumulators start at zero and sum p = 0..kc-1 in order, then are
 * added to (or stored in) C, as the scalar reference tile does. */
#include <immintrin.h>

#include "avx2.h"

static void f32_gemm_6x16_avx2(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(a0, b0, c00);
        c01 = _mm256_fmadd_ps(a0, b1, c01);
        __m256 a1 = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(a1, b0, c10);
        c11 = _mm256_fmadd_ps(a1, b1, c11);
        __m256 a2 = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(a2, b0, c20);
        c21 = _mm256_fmadd_ps(a2, b1, c21);
        __m256 a3 = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(a3, b0, c30);
        c31 = _mm256_fmadd_ps(a3, b1, c31);
        __m256 a4 = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(a4, b0, c40);
        c41 = _mm256_fmadd_ps(a4, b1, c41);
        __m256 a5 = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(a5, b0, c50);
        c51 = _mm256_fmadd_ps(a5, b1, c51);
        a += 6;
        b += 16;
    }
    __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < 6; i++) {
        float *row = c + i * ldc;
        if (accumulate) {
            acc[i][0] = _mm256_add_ps(_mm256_loadu_ps(row), acc[i][0]);
            acc[i][1] = _mm256_add_ps(_mm256_loadu_ps(row + 8), acc[i][1]);
        }
        _mm256_storeu_ps(row, acc[i][0]);
        _mm256_storeu_ps(row + 8, acc[i][1]);
    }
}

static void f32_gemm_4x24_avx2(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16);
        __m256 a0 = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(a0, b0, c00);
        c01 = _mm256_fmadd_ps(a0, b1, c01);
        c02 = _mm256_fmadd_ps(a0, b2, c02);
        __m256 a1 = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(a1, b0, c10);
        c11 = _mm256_fmadd_ps(a1, b1, c11);
        c12 = _mm256_fmadd_ps(a1, b2, c12);
        __m256 a2 = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(a2, b0, c20);
        c21 = _mm256_fmadd_ps(a2, b1, c21);
        c22 = _mm256_fmadd_ps(a2, b2, c22);
        __m256 a3 = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(a3, b0, c30);
        c31 = _mm256_fmadd_ps(a3, b1, c31);
        c32 = _mm256_fmadd_ps(a3, b2, c32);
        a += 4;
        b += 24;
    }
    __m256 acc[4][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int i = 0; i < 4; i++) {
        float *row = c + i * ldc;
        for (int j = 0; j < 3; j++) {
            __m256 v = acc[i][j];
            if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(row + 8 * j), v);
            _mm256_storeu_ps(row + 8 * j, v);
        }
    }
}

/* The same tile with a multiply and an add for each fused multiply-add: the rounding every
 * other build does (exact mode). On AMD cores the separate pipes keep most of the speed. */
static void f32_gemm_4x24_avx2_nofma(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c02 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps(), c12 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c22 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c32 = _mm256_setzero_ps();
    for (int p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), b2 = _mm256_loadu_ps(b + 16);
        __m256 a0 = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_add_ps(_mm256_mul_ps(a0, b0), c00);
        c01 = _mm256_add_ps(_mm256_mul_ps(a0, b1), c01);
        c02 = _mm256_add_ps(_mm256_mul_ps(a0, b2), c02);
        __m256 a1 = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_add_ps(_mm256_mul_ps(a1, b0), c10);
        c11 = _mm256_add_ps(_mm256_mul_ps(a1, b1), c11);
        c12 = _mm256_add_ps(_mm256_mul_ps(a1, b2), c12);
        __m256 a2 = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_add_ps(_mm256_mul_ps(a2, b0), c20);
        c21 = _mm256_add_ps(_mm256_mul_ps(a2, b1), c21);
        c22 = _mm256_add_ps(_mm256_mul_ps(a2, b2), c22);
        __m256 a3 = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_add_ps(_mm256_mul_ps(a3, b0), c30);
        c31 = _mm256_add_ps(_mm256_mul_ps(a3, b1), c31);
        c32 = _mm256_add_ps(_mm256_mul_ps(a3, b2), c32);
        a += 4;
        b += 24;
    }
    __m256 acc[4][3] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int i = 0; i < 4; i++) {
        float *row = c + i * ldc;
        for (int j = 0; j < 3; j++) {
            __m256 v = acc[i][j];
            if (accumulate) v = _mm256_add_ps(_mm256_loadu_ps(row + 8 * j), v);
            _mm256_storeu_ps(row + 8 * j, v);
        }
    }
}

const q4_gemm_variant q4_avx2_gemm_6x16 = {"f32-gemm-6x16-avx2", 6, 16, 288, 96, 512, f32_gemm_6x16_avx2,
                                           q4_avx2_pack_rows, q4_avx2_pack_patch_t, q4_avx2_pack_patch, 64, 64};
const q4_gemm_variant q4_avx2_gemm_4x24 = {"f32-gemm-4x24-avx2", 4, 24, 256, 96, 528, f32_gemm_4x24_avx2,
                                           q4_avx2_pack_rows, q4_avx2_pack_patch_t, q4_avx2_pack_patch, 64, 64};
/* exact mode: kc 256 and the Winograd thresholds every build's exact variant has */
const q4_gemm_variant q4_avx2_gemm_4x24_nofma = {"f32-gemm-4x24-avx2-nofma", 4, 24, 256, 96, 528,
                                                 f32_gemm_4x24_avx2_nofma, q4_avx2_pack_rows, q4_avx2_pack_patch_t,
                                                 q4_avx2_pack_patch, 64, 64};
