/* probe.c - does relaxed SIMD pay in this browser? (issue 26). Two pairs of inner loops, each
 * pair doing the same work both ways, built into one standalone WebAssembly module:
 *   integer: a direct 3x3-convolution tile (4 pixels x 16 output channels) by relaxed SIMD's
 *     i32x4.relaxed_dot_i8x16_i7x16_add_s (16 byte products and the add in one instruction),
 *     against q4's SIMD128 integer Winograd GEMM (4 tiles x 8 channels by i32x4.dot_i16x8_s),
 *     compared per multiply-add of the direct convolution (Winograd F(2x2) does 2.25x fewer);
 *   float: q4's 4x8 f32 GEMM tile by f32x4.relaxed_madd against a multiply then an add.
 * Relaxed SIMD wants the dot product's second operand in 7 bits, so the integer tile multiplies
 * (activation - 128) by (level + 8) and takes off (activation - 128) x 8, which one more dot per
 * pixel gives: sum a*w = sum (a-128)(w+8) - sum 8(a-128) + 128 sum w (exact in int32).
 * Debian's Emscripten 3.1.6 cannot emit relaxed opcodes, so each relaxed instruction is written
 * as a call to a placeholder import (q4_relaxed_*) that probe.mjs replaces by the instruction in
 * binaryen's text form after linking. */
#include <stdint.h>
#include <wasm_simd128.h>

v128_t q4_relaxed_dot(v128_t a_i8, v128_t b_i7, v128_t acc);
v128_t q4_relaxed_madd(v128_t a, v128_t b, v128_t c);

#define K 256 /* input channels of the integer tile; the GEMMs' depth */
static uint8_t act[4][K] __attribute__((aligned(16)));          /* 4 pixels' channels, 0..255 */
static int8_t levels[16][K];                                    /* 16 output channels, -7..7 */
static int8_t packed[K / 4][16][4] __attribute__((aligned(16))); /* level + 8, 4 channels a lane */
static int16_t wino_a[4][2 * K] __attribute__((aligned(16)));
static int16_t wino_w[K][8][2] __attribute__((aligned(16)));
static float fa[K][4], fb[K][8];
static int32_t isum[4][16], wsum[16], wino_c[4][8];
static float fc[4][8];

__attribute__((export_name("fill"))) void fill(uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
#define NEXT() (s = s * 1664525u + 1013904223u, s >> 8)
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < K; c++) act[i][c] = (uint8_t)(i == 0 && c < 8 ? 255 : NEXT() & 255); /* the edge: 255 */
    for (int o = 0; o < 16; o++) {
        wsum[o] = 0;
        for (int c = 0; c < K; c++) {
            levels[o][c] = (int8_t)(o == 0 ? -7 : o == 1 ? 7 : (int)(NEXT() % 15) - 7);
            wsum[o] += levels[o][c];
            packed[c / 4][o][c % 4] = (int8_t)(levels[o][c] + 8);
        }
    }
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 2 * K; c++) wino_a[i][c] = (int16_t)((int)(NEXT() % 2041) - 1020);
    for (int c = 0; c < K; c++)
        for (int o = 0; o < 8; o++)
            for (int q = 0; q < 2; q++) wino_w[c][o][q] = (int16_t)((int)(NEXT() % 127) - 63);
    for (int p = 0; p < K; p++) {
        for (int i = 0; i < 4; i++) fa[p][i] = (float)(NEXT() % 1000) / 999.0f - 0.5f;
        for (int j = 0; j < 8; j++) fb[p][j] = (float)(NEXT() % 1000) / 999.0f - 0.5f;
    }
#undef NEXT
}

/* every output to 0: each run adds its sums to the outputs, so no repetition can be left out */
__attribute__((export_name("clear"))) void clear(void) {
    for (int i = 0; i < 4; i++) {
        for (int o = 0; o < 16; o++) isum[i][o] = 0;
        for (int o = 0; o < 8; o++) wino_c[i][o] = 0, fc[i][o] = 0.0f;
    }
}

/* a checksum of every output (read after timing, so that nothing is computed for nothing) */
__attribute__((export_name("checksum"))) int checksum(void) {
    int32_t s = 0;
    for (int i = 0; i < 4; i++) {
        for (int o = 0; o < 16; o++) s += isum[i][o];
        for (int o = 0; o < 8; o++) s += wino_c[i][o] + (int32_t)fc[i][o];
    }
    return s;
}

/* the integer tile by relaxed dot products: isum[i][o] += sum over c of act[i][c] * levels[o][c] */
__attribute__((export_name("int_relaxed"))) void int_relaxed(int reps) {
    const v128_t flip = wasm_i8x16_splat(-128), eight = wasm_i8x16_splat(8);
    for (int r = 0; r < reps; r++) {
        v128_t acc[4][4], off[4];
        for (int i = 0; i < 4; i++) {
            off[i] = wasm_i32x4_splat(0);
            for (int v = 0; v < 4; v++) acc[i][v] = wasm_i32x4_splat(0);
        }
        for (int g = 0; g < K / 4; g++) {
            const int8_t *w = &packed[g][0][0];
            v128_t w0 = wasm_v128_load(w), w1 = wasm_v128_load(w + 16), w2 = wasm_v128_load(w + 32), w3 = wasm_v128_load(w + 48);
            for (int i = 0; i < 4; i++) {
                v128_t x = wasm_v128_xor(wasm_v128_load32_splat(&act[i][4 * g]), flip); /* a - 128 as int8 */
                acc[i][0] = q4_relaxed_dot(x, w0, acc[i][0]);
                acc[i][1] = q4_relaxed_dot(x, w1, acc[i][1]);
                acc[i][2] = q4_relaxed_dot(x, w2, acc[i][2]);
                acc[i][3] = q4_relaxed_dot(x, w3, acc[i][3]);
                off[i] = q4_relaxed_dot(x, eight, off[i]);
            }
        }
        for (int i = 0; i < 4; i++)
            for (int v = 0; v < 4; v++) {
                v128_t shift = wasm_i32x4_shl(wasm_v128_load(&wsum[4 * v]), 7);
                v128_t sum = wasm_i32x4_add(wasm_i32x4_sub(acc[i][v], off[i]), shift);
                wasm_v128_store(&isum[i][4 * v], wasm_i32x4_add(wasm_v128_load(&isum[i][4 * v]), sum));
            }
    }
}

/* 1 if isum is exact after one run from clear() (checked in plain C) */
__attribute__((export_name("int_check"))) int int_check(void) {
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 16; o++) {
            int32_t s = 0;
            for (int c = 0; c < K; c++) s += act[i][c] * levels[o][c];
            if (s != isum[i][o]) return 0;
        }
    return 1;
}

/* q4's SIMD128 integer Winograd GEMM tile (core/kernels/wasmsimd/iconv-wasmsimd.c), depth 2K */
__attribute__((export_name("int_winograd"))) void int_winograd(int reps) {
    for (int r = 0; r < reps; r++) {
        v128_t acc[4][2];
        for (int i = 0; i < 4; i++) acc[i][0] = acc[i][1] = wasm_i32x4_splat(0);
        for (int g = 0; g < K; g++) {
            v128_t w0 = wasm_v128_load(&wino_w[g][0][0]), w1 = wasm_v128_load(&wino_w[g][4][0]);
            for (int i = 0; i < 4; i++) {
                v128_t x = wasm_v128_load32_splat(&wino_a[i][2 * g]);
                acc[i][0] = wasm_i32x4_add(acc[i][0], wasm_i32x4_dot_i16x8(w0, x));
                acc[i][1] = wasm_i32x4_add(acc[i][1], wasm_i32x4_dot_i16x8(w1, x));
            }
        }
        for (int i = 0; i < 4; i++) {
            wasm_v128_store(&wino_c[i][0], wasm_i32x4_add(wasm_v128_load(&wino_c[i][0]), acc[i][0]));
            wasm_v128_store(&wino_c[i][4], wasm_i32x4_add(wasm_v128_load(&wino_c[i][4]), acc[i][1]));
        }
    }
}

#define GEMM_TILE(NAME, MADD)                                                                      \
    __attribute__((export_name(#NAME))) void NAME(int reps) {                                    \
        for (int r = 0; r < reps; r++) {                                                         \
            v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00;     \
            v128_t c21 = c00, c30 = c00, c31 = c00;                                              \
            for (int p = 0; p < K; p++) {                                                        \
                v128_t b0 = wasm_v128_load(&fb[p][0]), b1 = wasm_v128_load(&fb[p][4]);           \
                v128_t a0 = wasm_v128_load32_splat(&fa[p][0]);                                   \
                c00 = MADD(a0, b0, c00), c01 = MADD(a0, b1, c01);                                \
                v128_t a1 = wasm_v128_load32_splat(&fa[p][1]);                                   \
                c10 = MADD(a1, b0, c10), c11 = MADD(a1, b1, c11);                                \
                v128_t a2 = wasm_v128_load32_splat(&fa[p][2]);                                   \
                c20 = MADD(a2, b0, c20), c21 = MADD(a2, b1, c21);                                \
                v128_t a3 = wasm_v128_load32_splat(&fa[p][3]);                                   \
                c30 = MADD(a3, b0, c30), c31 = MADD(a3, b1, c31);                                \
            }                                                                                    \
            v128_t acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};                 \
            for (int i = 0; i < 4; i++) {                                                        \
                wasm_v128_store(&fc[i][0], wasm_f32x4_add(wasm_v128_load(&fc[i][0]), acc[i][0]));  \
                wasm_v128_store(&fc[i][4], wasm_f32x4_add(wasm_v128_load(&fc[i][4]), acc[i][1]));  \
            }                                                                                    \
        }                                                                                        \
    }
#define MUL_ADD(a, b, c) wasm_f32x4_add(c, wasm_f32x4_mul(a, b))
GEMM_TILE(float_relaxed, q4_relaxed_madd)
GEMM_TILE(float_plain, MUL_ADD)

/* the largest |fc - plain sum| after one float_relaxed from clear(), in units of 1e-6 (fused or not, the sums differ
 * by rounding only) */
__attribute__((export_name("float_error"))) int float_error(void) {
    double worst = 0.0;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 8; j++) {
            double s = 0.0;
            for (int p = 0; p < K; p++) s += (double)fa[p][i] * fb[p][j];
            double e = fc[i][j] - s;
            if (e < 0) e = -e;
            if (e > worst) worst = e;
        }
    return (int)(worst * 1e6);
}
