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
