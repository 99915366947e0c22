/* iconv-ref.c - the scalar integer convolution microkernel (the specification the SIMD ones
 * match exactly: integer sums have no rounding, so every ISA gives the same int32s) and the
 * plain-loop reference of a whole integer 3x3 convolution that tests compare the driver with. */
#include <math.h>
#include <string.h>

#include "ref.h"

#define MR 4
#define NR 8

/* kernels.h, q4_iconv_ukernel_fn */
static void ukernel_4x8(int taps, const long *tap_offsets, int k, const uint8_t *a, long a_stride, const void *w,
                        int32_t *c, long ldc, const q4_iconv_epilogue *e) {
    const int8_t *wp = w;
    int32_t acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int t = 0; t < taps; t++) {
        const uint8_t *at = a + tap_offsets[t];
        for (int g = 0; g < k; g += 4, wp += NR * 4)
            for (int i = 0; i < MR; i++) {
                const uint8_t *x = at + i * a_stride + g;
                for (int j = 0; j < NR; j++)
                    for (int q = 0; q < 4; q++) acc[i][j] += (int32_t)x[q] * (int32_t)wp[j * 4 + q];
            }
    }
    if (e) {
        for (int j = 0; j < NR; j++)
            for (int i = 0; i < MR; i++) e->y[j * e->y_stride + i] = (float)(acc[i][j] - e->shift[j]) * e->scale[i] + e->bias[j];
        return;
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = acc[i][j];
}

const q4_iconv_variant q4_ref_iconv_4x8 = {"u8s8-iconv-4x8-scalar", MR, NR, 4, 1, ukernel_4x8};

void q4_ref_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count, float inv,
                           int low, int high, int zero) {
    for (int c = 0; c < channels; c++)
        for (int p = 0; p < count; p++) {
            float r = rintf(x[c * x_stride + p] * inv);
            int level = r > (float)high ? high : r < (float)low ? low : (int)r;
            out[p * out_stride + c] = (uint8_t)(level + zero);
        }
}

void q4_ref_iconv3x3(int32_t *y, const uint8_t *x, int zero_point, const int8_t *levels, int n, int ci, int co, int h,
                     int wd) {
    for (int b = 0; b < n; b++)
        for (int yy = 0; yy < h; yy++)
            for (int xx = 0; xx < wd; xx++)
                for (int o = 0; o < co; o++) {
                    int32_t sum = 0;
                    for (int c = 0; c < ci; c++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int sy = yy + ky - 1, sx = xx + kx - 1;
                                int v = sy < 0 || sy >= h || sx < 0 || sx >= wd
                                            ? zero_point
                                            : x[(((long)c * n + b) * h + sy) * wd + sx];
                                sum += (v - zero_point) * levels[((long)o * ci + c) * 9 + ky * 3 + kx];
                            }
                    y[(((long)b * h + yy) * wd + xx) * co + o] = sum;
                }
}
