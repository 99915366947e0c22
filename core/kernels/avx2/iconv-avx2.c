/* iconv-avx2.c - the integer convolution microkernel for AVX2: 4 pixels x 16 output channels.
 * vpmaddubsw multiplies the pixel's 4 unsigned channels (broadcast) by 4 signed levels per
 * output channel and adds pairs into int16 (no saturation: |level| <= 63, kernels.h), vpmaddwd
 * adds the pairs into int32. */
#include <immintrin.h>
#include <string.h>

#include "../ref/ref.h"
#include "avx2.h"

#define MR 4
#define NR 16

static void ukernel_4x16(int taps, const long *tap_offsets, int k, const uint8_t *a, long a_stride, const void *w,
                         int32_t *c, long ldc, const q4_iconv_epilogue *e) {
    const int8_t *wp = w;
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
    for (int t = 0; t < taps; t++) {
        const uint8_t *at = a + tap_offsets[t];
        for (int g = 0; g < k; g += 4, wp += NR * 4) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)wp), w1 = _mm256_loadu_si256((const __m256i *)(wp + 32));
            for (int i = 0; i < MR; i++) {
                int32_t four;
                memcpy(&four, at + i * a_stride + g, 4);
                __m256i x = _mm256_set1_epi32(four);
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));
            }
        }
    }
    if (e) { /* to floats per pixel row, then 4 x 4 blocks transposed into channel rows */
        __m256i shift[2] = {_mm256_loadu_si256((const __m256i *)e->shift), _mm256_loadu_si256((const __m256i *)(e->shift + 8))};
        __m256 bias[2] = {_mm256_loadu_ps(e->bias), _mm256_loadu_ps(e->bias + 8)}, f[MR][2];
        for (int i = 0; i < MR; i++) {
            __m256 s = _mm256_set1_ps(e->scale[i]);
            for (int v = 0; v < 2; v++)
                f[i][v] = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[i][v], shift[v])), s), bias[v]);
        }
        for (int q = 0; q < 4; q++) {
            __m128 r0 = q % 2 ? _mm256_extractf128_ps(f[0][q / 2], 1) : _mm256_castps256_ps128(f[0][q / 2]);
            __m128 r1 = q % 2 ? _mm256_extractf128_ps(f[1][q / 2], 1) : _mm256_castps256_ps128(f[1][q / 2]);
            __m128 r2 = q % 2 ? _mm256_extractf128_ps(f[2][q / 2], 1) : _mm256_castps256_ps128(f[2][q / 2]);
            __m128 r3 = q % 2 ? _mm256_extractf128_ps(f[3][q / 2], 1) : _mm256_castps256_ps128(f[3][q / 2]);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(e->y + (long)(q * 4 + 0) * e->y_stride, r0);
            _mm_storeu_ps(e->y + (long)(q * 4 + 1) * e->y_stride, r1);
            _mm_storeu_ps(e->y + (long)(q * 4 + 2) * e->y_stride, r2);
            _mm_storeu_ps(e->y + (long)(q * 4 + 3) * e->y_stride, r3);
        }
        return;
    }
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_si256((__m256i *)(c + i * ldc), acc[i][0]);
        _mm256_storeu_si256((__m256i *)(c + i * ldc + 8), acc[i][1]);
    }
}

const q4_iconv_variant q4_avx2_iconv_4x16 = {"u8s8-iconv-4x16-avx2", MR, NR, 4, 1, ukernel_4x16};

/* 16 channels x 8 pixels at a time: four channels' levels packed in a 32-bit word per pixel, then
 * a 4 x 4 transpose of words in each 128-bit half gives each pixel's 16 bytes */
void q4_avx2_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count,
                            float inv, int low, int high, int zero) {
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i vlow = _mm256_set1_epi32(low), vhigh = _mm256_set1_epi32(high), vzero = _mm256_set1_epi32(zero);
    int full = count & ~7;
    for (int c0 = 0; c0 < channels; c0 += 16) {
        for (int p0 = 0; p0 < full; p0 += 8) {
            __m256i word[4];
            for (int g = 0; g < 4; g++) {
                word[g] = _mm256_setzero_si256();
                for (int q = 0; q < 4; q++) {
                    const float *from = x + (long)(c0 + 4 * g + q) * x_stride + p0;
                    __m256i level = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(from), vinv)); /* nearest, ties to even */
                    level = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(level, vlow), vhigh), vzero);
                    word[g] = _mm256_or_si256(word[g], _mm256_slli_epi32(level, 8 * q));
                }
            }
            __m256i t0 = _mm256_unpacklo_epi32(word[0], word[1]), t1 = _mm256_unpackhi_epi32(word[0], word[1]);
            __m256i t2 = _mm256_unpacklo_epi32(word[2], word[3]), t3 = _mm256_unpackhi_epi32(word[2], word[3]);
            __m256i u[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2), _mm256_unpacklo_epi64(t1, t3),
                            _mm256_unpackhi_epi64(t1, t3)}; /* half h of u[j]: pixel 4h + j */
            for (int h = 0; h < 2; h++)
                for (int j = 0; j < 4; j++)
                    _mm_storeu_si128((__m128i *)(out + (long)(p0 + 4 * h + j) * out_stride + c0),
                                     h ? _mm256_extracti128_si256(u[j], 1) : _mm256_castsi256_si128(u[j]));
        }
        if (full < count)
            q4_ref_iquantize_rows(out + (long)full * out_stride + c0, out_stride, x + (long)c0 * x_stride + full, x_stride, 16,
                                  count - full, inv, low, high, zero);
    }
}
