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

/* kernels.h, q4_iwinograd_ukernel_fn: the integer Winograd GEMM, 4 tiles x 8 output channels */
static void iwinograd_4x8(int k, const int16_t *a, long a_stride, const int16_t *w, int32_t *c, long ldc) {
    int32_t acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int g = 0; g < k; g += 2, w += NR * 2)
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++)
                acc[i][j] += (int32_t)a[i * a_stride + g] * w[j * 2] + (int32_t)a[i * a_stride + g + 1] * w[j * 2 + 1];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i * ldc + j] = acc[i][j];
}

/* kernels.h, q4_iwinograd_input_fn (B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]), for channels
 * first..k-1 (SIMD kernels pass the channels past their last whole vector) */
void q4_ref_iwinograd_input_from(int16_t *v, long v_point, const uint8_t *x, long row_in, int k, int count, int first) {
    for (int i = 0; i < count; i++)
        for (int c = first; c < k; c++) {
            const uint8_t *p = x + 2L * i * k + c;
            int d[4][4], t[4][4];
            for (int r = 0; r < 4; r++)
                for (int s = 0; s < 4; s++) d[r][s] = p[r * row_in + (long)s * k];
            for (int r = 0; r < 4; r++) {
                t[r][0] = d[r][0] - d[r][2];
                t[r][1] = d[r][1] + d[r][2];
                t[r][2] = d[r][2] - d[r][1];
                t[r][3] = d[r][1] - d[r][3];
            }
            int16_t *out = v + (long)i * k + c;
            for (int s = 0; s < 4; s++) {
                out[(0 * 4 + s) * v_point] = (int16_t)(t[0][s] - t[2][s]);
                out[(1 * 4 + s) * v_point] = (int16_t)(t[1][s] + t[2][s]);
                out[(2 * 4 + s) * v_point] = (int16_t)(t[2][s] - t[1][s]);
                out[(3 * 4 + s) * v_point] = (int16_t)(t[1][s] - t[3][s]);
            }
        }
}

void q4_ref_iwinograd_input(int16_t *v, long v_point, const uint8_t *x, long row_in, int k, int count) {
    q4_ref_iwinograd_input_from(v, v_point, x, row_in, k, count, 0);
}

/* kernels.h, q4_iwinograd_output_fn (A^T = [1 1 1 0; 0 1 -1 -1]; the sums are multiples of 4) */
void q4_ref_iwinograd_output(float *y, long y_stride, long row, const int32_t *m, long m_point, long m_tile, int count,
                             int channels, float scale, const float *bias) {
    for (int i = 0; i < count; i++)
        for (int o = 0; o < channels; o++) {
            const int32_t *p = m + (long)i * m_tile + o;
            int32_t r0[4], r1[4];
            for (int q = 0; q < 4; q++) {
                int32_t m0 = p[(0 * 4 + q) * m_point], m1 = p[(1 * 4 + q) * m_point];
                int32_t m2 = p[(2 * 4 + q) * m_point], m3 = p[(3 * 4 + q) * m_point];
                r0[q] = m0 + m1 + m2;
                r1[q] = m1 - m2 - m3;
            }
            float *out = y + (long)o * y_stride + 2L * i, b = bias[o];
            out[0] = (float)((r0[0] + r0[1] + r0[2]) / 4) * scale + b;
            out[1] = (float)((r0[1] - r0[2] - r0[3]) / 4) * scale + b;
            out[row] = (float)((r1[0] + r1[1] + r1[2]) / 4) * scale + b;
            out[row + 1] = (float)((r1[1] - r1[2] - r1[3]) / 4) * scale + b;
        }
}

const q4_iwinograd_variant q4_ref_iwinograd_4x8 = {"s16-iwinograd-4x8-scalar", MR, NR, iwinograd_4x8, q4_ref_iwinograd_input,
                                                   q4_ref_iwinograd_output};
