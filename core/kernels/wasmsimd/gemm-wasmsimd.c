/* gemm-wasmsimd.c - f32 GEMM register tiles for WebAssembly SIMD128 (no FMA there: a
 * multiply then an add, as the scalar reference). 4x8 (the default): 8 accumulators, what
 * V8 keeps in registers on x86-64 (measured in Chromium 156: 49 GFLOP/s a core in L1,
 * against 27 for 6x8, whose 12 accumulators spill). */
#include <wasm_simd128.h>

#include "wasmsimd.h"

static void f32_gemm_6x8_wasmsimd(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    v128_t c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int p = 0; p < kc; p++) {
        v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t a0 = wasm_v128_load32_splat(a + 0);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, b0));
        c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, b1));
        v128_t a1 = wasm_v128_load32_splat(a + 1);
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, b0));
        c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, b1));
        v128_t a2 = wasm_v128_load32_splat(a + 2);
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, b0));
        c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, b1));
        v128_t a3 = wasm_v128_load32_splat(a + 3);
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, b0));
        c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, b1));
        v128_t a4 = wasm_v128_load32_splat(a + 4);
        c40 = wasm_f32x4_add(c40, wasm_f32x4_mul(a4, b0));
        c41 = wasm_f32x4_add(c41, wasm_f32x4_mul(a4, b1));
        v128_t a5 = wasm_v128_load32_splat(a + 5);
        c50 = wasm_f32x4_add(c50, wasm_f32x4_mul(a5, b0));
        c51 = wasm_f32x4_add(c51, wasm_f32x4_mul(a5, b1));
        a += 6;
        b += 8;
    }
    v128_t acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    for (int i = 0; i < 6; i++) {
        float *row = c + i * ldc;
        if (accumulate) {
            acc[i][0] = wasm_f32x4_add(wasm_v128_load(row), acc[i][0]);
            acc[i][1] = wasm_f32x4_add(wasm_v128_load(row + 4), acc[i][1]);
        }
        wasm_v128_store(row, acc[i][0]);
        wasm_v128_store(row + 4, acc[i][1]);
    }
}

static void f32_gemm_4x8_wasmsimd(int kc, const float *a, const float *b, float *c, long ldc, int accumulate) {
    v128_t c00 = wasm_f32x4_splat(0.0f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    for (int p = 0; p < kc; p++) {
        v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4);
        v128_t a0 = wasm_v128_load32_splat(a + 0);
        c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(a0, b0));
        c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(a0, b1));
        v128_t a1 = wasm_v128_load32_splat(a + 1);
        c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(a1, b0));
        c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(a1, b1));
        v128_t a2 = wasm_v128_load32_splat(a + 2);
        c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(a2, b0));
        c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(a2, b1));
        v128_t a3 = wasm_v128_load32_splat(a + 3);
        c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(a3, b0));
        c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(a3, b1));
        a += 4;
        b += 8;
    }
    v128_t acc[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int i = 0; i < 4; i++) {
        float *row = c + i * ldc;
        if (accumulate) {
            acc[i][0] = wasm_f32x4_add(wasm_v128_load(row), acc[i][0]);
            acc[i][1] = wasm_f32x4_add(wasm_v128_load(row + 4), acc[i][1]);
        }
        wasm_v128_store(row, acc[i][0]);
        wasm_v128_store(row + 4, acc[i][1]);
    }
}

const q4_gemm_variant q4_wasmsimd_gemm_6x8 = {"f32-gemm-6x8-wasmsimd", 6, 8, 256, 96, 512, f32_gemm_6x8_wasmsimd,
                                                q4_wasmsimd_pack_rows, q4_wasmsimd_pack_patch_t, q4_wasmsimd_pack_patch, 64, 64};
const q4_gemm_variant q4_wasmsimd_gemm_4x8 = {"f32-gemm-4x8-wasmsimd", 4, 8, 256, 96, 512, f32_gemm_4x8_wasmsimd,
                                                q4_wasmsimd_pack_rows, q4_wasmsimd_pack_patch_t, q4_wasmsimd_pack_patch, 64, 64};
