/* iconv-avx512vnni.c - the integer convolution microkernel for AVX-512 VNNI: 8 pixels x 32
 * output channels in 16 zmm accumulators. vpdpbusd multiplies a pixel's 4 unsigned channels
 * (broadcast) by 4 signed levels per output channel and adds the 4 products into int32. */
#include <immintrin.h>
#include <string.h>

#include "../ref/ref.h"
#include "avx512.h"

#define MR 8
#define NR 32

/* 8 rows of 8 floats -> 8 columns (the usual unpack, shuffle, permute) */
static void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; h++) {
        s[4 * h + 0] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        s[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        s[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

static __m256 half(__m512 z, int high) {
    return _mm256_castpd_ps(high ? _mm512_extractf64x4_pd(_mm512_castps_pd(z), 1) : _mm512_castpd512_pd256(_mm512_castps_pd(z)));
}

static void ukernel_8x32(int taps, const long *tap_offsets, int k, const uint8_t *a, long a_stride, const void *w,
                         int32_t *c, long ldc, const q4_iconv_epilogue *e) {
    const int8_t *wp = w;
    __m512i acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_si512();
    for (int t = 0; t < taps; t++) {
        const uint8_t *at = a + tap_offsets[t];
        for (int g = 0; g < k; g += 4, wp += NR * 4) {
            __m512i w0 = _mm512_loadu_si512(wp), w1 = _mm512_loadu_si512(wp + 64);
            for (int i = 0; i < MR; i++) {
                int32_t four;
                memcpy(&four, at + i * a_stride + g, 4);
                __m512i x = _mm512_set1_epi32(four);
                acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], x, w0);
                acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], x, w1);
            }
        }
    }
    if (e) { /* to floats per pixel row, then 8 x 8 blocks transposed into channel rows */
        __m512i shift[2] = {_mm512_loadu_si512(e->shift), _mm512_loadu_si512(e->shift + 16)};
        __m512 bias[2] = {_mm512_loadu_ps(e->bias), _mm512_loadu_ps(e->bias + 16)}, f[MR][2];
        for (int i = 0; i < MR; i++) {
            __m512 s = _mm512_set1_ps(e->scale[i]);
            for (int v = 0; v < 2; v++)
                f[i][v] = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[i][v], shift[v])), s), bias[v]);
        }
        for (int q = 0; q < 4; q++) {
            __m256 r[8];
            for (int i = 0; i < MR; i++) r[i] = half(f[i][q / 2], q % 2);
            transpose8(r);
            for (int j = 0; j < 8; j++) _mm256_storeu_ps(e->y + (long)(q * 8 + j) * e->y_stride, r[j]);
        }
        return;
    }
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_si512(c + i * ldc, acc[i][0]);
        _mm512_storeu_si512(c + i * ldc + 16, acc[i][1]);
    }
}

const q4_iconv_variant q4_avx512_iconv_8x32 = {"u8s8-iconv-8x32-avx512vnni", MR, NR, 4, 1, ukernel_8x32};

/* 16 channels x 16 pixels at a time: four channels' levels packed in a 32-bit word per pixel,
 * then a 4 x 4 transpose of words in each 128-bit lane gives each pixel's 16 bytes */
void q4_avx512_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count,
                              float inv, int low, int high, int zero) {
    const __m512 vinv = _mm512_set1_ps(inv);
    const __m512i vlow = _mm512_set1_epi32(low), vhigh = _mm512_set1_epi32(high), vzero = _mm512_set1_epi32(zero);
    int full = count & ~15;
    for (int c0 = 0; c0 < channels; c0 += 16) {
        for (int p0 = 0; p0 < full; p0 += 16) {
            __m512i word[4];
            for (int g = 0; g < 4; g++) {
                word[g] = _mm512_setzero_si512();
                for (int q = 0; q < 4; q++) {
                    const float *from = x + (long)(c0 + 4 * g + q) * x_stride + p0;
                    __m512i level = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(from), vinv)); /* nearest, ties to even */
                    level = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(level, vlow), vhigh), vzero);
                    word[g] = _mm512_or_si512(word[g], _mm512_slli_epi32(level, 8 * q));
                }
            }
            __m512i t0 = _mm512_unpacklo_epi32(word[0], word[1]), t1 = _mm512_unpackhi_epi32(word[0], word[1]);
            __m512i t2 = _mm512_unpacklo_epi32(word[2], word[3]), t3 = _mm512_unpackhi_epi32(word[2], word[3]);
            __m512i u[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2), _mm512_unpacklo_epi64(t1, t3),
                            _mm512_unpackhi_epi64(t1, t3)}; /* lane l of u[j]: pixel 4l + j */
            for (int j = 0; j < 4; j++) {
                uint8_t *at = out + (long)(p0 + j) * out_stride + c0;
                _mm_storeu_si128((__m128i *)at, _mm512_castsi512_si128(u[j]));
                _mm_storeu_si128((__m128i *)(at + 4 * out_stride), _mm512_extracti32x4_epi32(u[j], 1));
                _mm_storeu_si128((__m128i *)(at + 8 * out_stride), _mm512_extracti32x4_epi32(u[j], 2));
                _mm_storeu_si128((__m128i *)(at + 12 * out_stride), _mm512_extracti32x4_epi32(u[j], 3));
            }
        }
        if (full < count)
            q4_ref_iquantize_rows(out + (long)full * out_stride + c0, out_stride, x + (long)c0 * x_stride + full, x_stride, 16,
                                  count - full, inv, low, high, zero);
    }
}
