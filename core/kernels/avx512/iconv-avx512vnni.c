/* iconv-avx512vnni.c - the integer convolution microkernel for AVX-512 VNNI: 8 pixels x 32
 * output channels in 16 zmm accumulators. vpdpbusd multiplies a pixel's 4 unsigned channels
 * (broadcast) by 4 signed levels per output channel and adds the 4 products into int32. */
#include <immintrin.h>
#include <string.h>

#include "avx512.h"

#define MR 8
#define NR 32

static void ukernel_8x32(int taps, const long *tap_offsets, int k, const uint8_t *a, long a_stride, const void *w,
                         int32_t *c, long ldc) {
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
    for (int i = 0; i < MR; i++) {
        _mm512_storeu_si512(c + i * ldc, acc[i][0]);
        _mm512_storeu_si512(c + i * ldc + 16, acc[i][1]);
    }
}

const q4_iconv_variant q4_avx512_iconv_8x32 = {"u8s8-iconv-8x32-avx512vnni", MR, NR, 4, 1, ukernel_8x32};
