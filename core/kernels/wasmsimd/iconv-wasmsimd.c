/* iconv-wasmsimd.c - the integer convolution microkernel for WebAssembly SIMD128: 4 pixels x 8
 * output channels. SIMD128 multiplies 16-bit integers (i32x4.dot_i16x8_s: two products added
 * per int32 lane), so the levels are packed as int16 in pairs of channels, and each pixel's two
 * unsigned channels are widened to a splatted int16 pair. */
#include <wasm_simd128.h>

#include "../ref/ref.h"
#include "wasmsimd.h"

#define MR 4
#define NR 8

static void ukernel_4x8(int taps, const long *tap_offsets, int k, const uint8_t *a, long a_stride, const void *w,
                        int32_t *c, long ldc, const q4_iconv_epilogue *e) {
    const int16_t *wp = w;
    v128_t acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = wasm_i32x4_splat(0);
    for (int t = 0; t < taps; t++) {
        const uint8_t *at = a + tap_offsets[t];
        for (int g = 0; g < k; g += 2, wp += NR * 2) {
            v128_t w0 = wasm_v128_load(wp), w1 = wasm_v128_load(wp + 8);
            for (int i = 0; i < MR; i++) {
                v128_t x = wasm_u16x8_extend_low_u8x16(wasm_v128_load16_splat(at + i * a_stride + g));
                acc[i][0] = wasm_i32x4_add(acc[i][0], wasm_i32x4_dot_i16x8(w0, x));
                acc[i][1] = wasm_i32x4_add(acc[i][1], wasm_i32x4_dot_i16x8(w1, x));
            }
        }
    }
    if (e) { /* to floats per pixel row, then 4 x 4 blocks transposed into channel rows */
        v128_t shift[2] = {wasm_v128_load(e->shift), wasm_v128_load(e->shift + 4)};
        v128_t bias[2] = {wasm_v128_load(e->bias), wasm_v128_load(e->bias + 4)}, f[MR][2];
        for (int i = 0; i < MR; i++) {
            v128_t s = wasm_f32x4_splat(e->scale[i]);
            for (int v = 0; v < 2; v++)
                f[i][v] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_sub(acc[i][v], shift[v])), s), bias[v]);
        }
        for (int q = 0; q < 2; q++) {
            v128_t t0 = wasm_i32x4_shuffle(f[0][q], f[1][q], 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(f[0][q], f[1][q], 2, 6, 3, 7);
            v128_t t2 = wasm_i32x4_shuffle(f[2][q], f[3][q], 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(f[2][q], f[3][q], 2, 6, 3, 7);
            wasm_v128_store(e->y + (long)(q * 4 + 0) * e->y_stride, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
            wasm_v128_store(e->y + (long)(q * 4 + 1) * e->y_stride, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
            wasm_v128_store(e->y + (long)(q * 4 + 2) * e->y_stride, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
            wasm_v128_store(e->y + (long)(q * 4 + 3) * e->y_stride, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
        }
        return;
    }
    for (int i = 0; i < MR; i++) {
        wasm_v128_store(c + i * ldc, acc[i][0]);
        wasm_v128_store(c + i * ldc + 4, acc[i][1]);
    }
}

const q4_iconv_variant q4_wasmsimd_iconv_4x8 = {"u8s16-iconv-4x8-wasmsimd", MR, NR, 2, 2, ukernel_4x8};

/* The integer Winograd GEMM (kernels.h, q4_iwinograd_ukernel_fn): the transformed activations
 * are int16 already, so a pair of channels is one splatted 32-bit load */
static void iwinograd_4x8(int k, const int16_t *a, long a_stride, const int16_t *w, int32_t *c, long ldc) {
    v128_t acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = wasm_i32x4_splat(0);
    for (int g = 0; g < k; g += 2, w += NR * 2) {
        v128_t w0 = wasm_v128_load(w), w1 = wasm_v128_load(w + 8);
        for (int i = 0; i < MR; i++) {
            v128_t x = wasm_v128_load32_splat(a + i * a_stride + g);
            acc[i][0] = wasm_i32x4_add(acc[i][0], wasm_i32x4_dot_i16x8(w0, x));
            acc[i][1] = wasm_i32x4_add(acc[i][1], wasm_i32x4_dot_i16x8(w1, x));
        }
    }
    for (int i = 0; i < MR; i++) {
        wasm_v128_store(c + i * ldc, acc[i][0]);
        wasm_v128_store(c + i * ldc + 4, acc[i][1]);
    }
}

/* V = B^T d B (kernels.h, q4_iwinograd_input_fn), 8 channels at a time in int16 lanes (|V| <= 1020) */
static void iwinograd_input(int16_t *v, long v_point, const uint8_t *x, long row_in, int k, int count) {
    int k8 = k & ~7;
    for (int i = 0; i < count; i++) {
        const uint8_t *p = x + 2L * i * k;
        int16_t *out = v + (long)i * k;
        for (int c = 0; c < k8; c += 8) {
            v128_t t[4][4];
            for (int r = 0; r < 4; r++) {
                const uint8_t *q = p + r * row_in + c;
                v128_t d0 = wasm_u16x8_load8x8(q), d1 = wasm_u16x8_load8x8(q + k);
                v128_t d2 = wasm_u16x8_load8x8(q + 2L * k), d3 = wasm_u16x8_load8x8(q + 3L * k);
                t[r][0] = wasm_i16x8_sub(d0, d2);
                t[r][1] = wasm_i16x8_add(d1, d2);
                t[r][2] = wasm_i16x8_sub(d2, d1);
                t[r][3] = wasm_i16x8_sub(d1, d3);
            }
            for (int s = 0; s < 4; s++) {
                wasm_v128_store(out + (0 * 4 + s) * v_point + c, wasm_i16x8_sub(t[0][s], t[2][s]));
                wasm_v128_store(out + (1 * 4 + s) * v_point + c, wasm_i16x8_add(t[1][s], t[2][s]));
                wasm_v128_store(out + (2 * 4 + s) * v_point + c, wasm_i16x8_sub(t[2][s], t[1][s]));
                wasm_v128_store(out + (3 * 4 + s) * v_point + c, wasm_i16x8_sub(t[1][s], t[3][s]));
            }
        }
    }
    if (k8 < k) /* k = 4 (mod 8): the last 4 channels of every tile by the reference */
        q4_ref_iwinograd_input_from(v, v_point, x, row_in, k, count, k8);
}

/* Y = A^T M A / 4 (kernels.h, q4_iwinograd_output_fn): 4 tiles x 4 channels at a time, each
 * tile's four outputs rescaled in channel lanes, then transposed to tile lanes and interleaved
 * into two rows of 8 consecutive pixels per channel */
static void iwinograd_output(float *y, long y_stride, long row, const int32_t *m, long m_point, long m_tile, int count,
                             int channels, float scale, const float *bias) {
    int c4 = channels & ~3, t4 = count & ~3;
    v128_t vs = wasm_f32x4_splat(scale);
    for (int o = 0; o < c4; o += 4) {
        v128_t vb = wasm_v128_load(bias + o);
        for (int i = 0; i < t4; i += 4) {
            v128_t f[4][4]; /* [tile][output: 00 01 10 11], channel lanes */
            for (int t = 0; t < 4; t++) {
                const int32_t *p = m + (long)(i + t) * m_tile + o;
                v128_t r0[4], r1[4];
                for (int q = 0; q < 4; q++) {
                    v128_t m0 = wasm_v128_load(p + q * m_point), m1 = wasm_v128_load(p + (4 + q) * m_point);
                    v128_t m2 = wasm_v128_load(p + (8 + q) * m_point), m3 = wasm_v128_load(p + (12 + q) * m_point);
                    r0[q] = wasm_i32x4_add(wasm_i32x4_add(m0, m1), m2);
                    r1[q] = wasm_i32x4_sub(wasm_i32x4_sub(m1, m2), m3);
                }
                v128_t y00 = wasm_i32x4_add(wasm_i32x4_add(r0[0], r0[1]), r0[2]);
                v128_t y01 = wasm_i32x4_sub(wasm_i32x4_sub(r0[1], r0[2]), r0[3]);
                v128_t y10 = wasm_i32x4_add(wasm_i32x4_add(r1[0], r1[1]), r1[2]);
                v128_t y11 = wasm_i32x4_sub(wasm_i32x4_sub(r1[1], r1[2]), r1[3]);
                /* exact: every sum is a multiple of 4 */
                f[t][0] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(y00, 2)), vs), vb);
                f[t][1] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(y01, 2)), vs), vb);
                f[t][2] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(y10, 2)), vs), vb);
                f[t][3] = wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_shr(y11, 2)), vs), vb);
            }
            for (int e = 0; e < 4; e += 2) { /* e: the row's pair of outputs (00 01, or 10 11) */
                v128_t g[2][4];            /* [output][channel], tile lanes */
                for (int u = 0; u < 2; u++) {
                    v128_t a0 = wasm_i32x4_shuffle(f[0][e + u], f[1][e + u], 0, 4, 1, 5);
                    v128_t a1 = wasm_i32x4_shuffle(f[0][e + u], f[1][e + u], 2, 6, 3, 7);
                    v128_t b0 = wasm_i32x4_shuffle(f[2][e + u], f[3][e + u], 0, 4, 1, 5);
                    v128_t b1 = wasm_i32x4_shuffle(f[2][e + u], f[3][e + u], 2, 6, 3, 7);
                    g[u][0] = wasm_i32x4_shuffle(a0, b0, 0, 1, 4, 5);
                    g[u][1] = wasm_i32x4_shuffle(a0, b0, 2, 3, 6, 7);
                    g[u][2] = wasm_i32x4_shuffle(a1, b1, 0, 1, 4, 5);
                    g[u][3] = wasm_i32x4_shuffle(a1, b1, 2, 3, 6, 7);
                }
                for (int c = 0; c < 4; c++) {
                    float *out = y + (long)(o + c) * y_stride + (e ? row : 0) + 2L * i;
                    wasm_v128_store(out, wasm_i32x4_shuffle(g[0][c], g[1][c], 0, 4, 1, 5));
                    wasm_v128_store(out + 4, wasm_i32x4_shuffle(g[0][c], g[1][c], 2, 6, 3, 7));
                }
            }
        }
    }
    /* what is left: the tiles past the last four, the channels past the last four */
    if (t4 < count) q4_ref_iwinograd_output(y + 2L * t4, y_stride, row, m + (long)t4 * m_tile, m_point, m_tile, count - t4, c4, scale, bias);
    if (c4 < channels)
        q4_ref_iwinograd_output(y + (long)c4 * y_stride, y_stride, row, m + c4, m_point, m_tile, count, channels - c4, scale, bias + c4);
}

const q4_iwinograd_variant q4_wasmsimd_iwinograd_4x8 = {"s16-iwinograd-4x8-wasmsimd", MR, NR, iwinograd_4x8, iwinograd_input,
                                                        iwinograd_output};

/* 16 channels x 4 pixels at a time: four channels' levels packed in a 32-bit word per pixel,
 * then a 4 x 4 transpose of words gives each pixel's 16 bytes */
void q4_wasmsimd_iquantize_rows(uint8_t *out, long out_stride, const float *x, long x_stride, int channels, int count,
                                float inv, int low, int high, int zero) {
    const v128_t vinv = wasm_f32x4_splat(inv), vlow = wasm_i32x4_splat(low), vhigh = wasm_i32x4_splat(high);
    const v128_t vzero = wasm_i32x4_splat(zero);
    int full = count & ~3;
    for (int c0 = 0; c0 < channels; c0 += 16) {
        for (int p0 = 0; p0 < full; p0 += 4) {
            v128_t word[4];
            for (int g = 0; g < 4; g++) {
                word[g] = wasm_i32x4_splat(0);
                for (int q = 0; q < 4; q++) {
                    const float *from = x + (long)(c0 + 4 * g + q) * x_stride + p0;
                    /* nearest, ties to even, then exact in int32 */
                    v128_t level = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(from), vinv)));
                    level = wasm_i32x4_add(wasm_i32x4_min(wasm_i32x4_max(level, vlow), vhigh), vzero);
                    word[g] = wasm_v128_or(word[g], wasm_i32x4_shl(level, 8 * q));
                }
            }
            v128_t t0 = wasm_i32x4_shuffle(word[0], word[1], 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(word[0], word[1], 2, 6, 3, 7);
            v128_t t2 = wasm_i32x4_shuffle(word[2], word[3], 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(word[2], word[3], 2, 6, 3, 7);
            wasm_v128_store(out + (long)(p0 + 0) * out_stride + c0, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
            wasm_v128_store(out + (long)(p0 + 1) * out_stride + c0, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
            wasm_v128_store(out + (long)(p0 + 2) * out_stride + c0, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
            wasm_v128_store(out + (long)(p0 + 3) * out_stride + c0, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
        }
        if (full < count)
            q4_ref_iquantize_rows(out + (long)full * out_stride + c0, out_stride, x + (long)c0 * x_stride + full, x_stride, 16,
                                  count - full, inv, low, high, zero);
    }
}
