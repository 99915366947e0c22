/* pack-wasmsimd.c - GEMM packing for WebAssembly SIMD128: the patch matrix (forward and
 * backward-to-input convolutions), its transpose (weight gradients) and transposed dense
 * rows, with 4x4 in-register transposes. Values are only moved, so results equal the
 * generic packing's exactly. Runs that touch the image border are copied element by
 * element (WebAssembly has no masked loads). */
#include <wasm_simd128.h>

#include "wasmsimd.h"

static inline void transpose4(v128_t *r0, v128_t *r1, v128_t *r2, v128_t *r3) {
    v128_t t0 = wasm_i32x4_shuffle(*r0, *r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(*r0, *r1, 2, 6, 3, 7);
    v128_t t2 = wasm_i32x4_shuffle(*r2, *r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(*r2, *r3, 2, 6, 3, 7);
    *r0 = wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5);
    *r1 = wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7);
    *r2 = wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5);
    *r3 = wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7);
}

int q4_wasmsimd_pack_rows(float *out, const float *a, long lda, int rows, int kc, int mr) {
    if (mr % 4 || mr > 16) return 0;
    int p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int g = 0; g < mr; g += 4) {
            v128_t r[4];
            for (int i = 0; i < 4; i++) r[i] = g + i < rows ? wasm_v128_load(a + (long)(g + i) * lda + p) : wasm_f32x4_splat(0.0f);
            transpose4(&r[0], &r[1], &r[2], &r[3]);
            for (int q = 0; q < 4; q++) wasm_v128_store(out + (long)(p + q) * mr + g, r[q]);
        }
    for (; p < kc; p++)
        for (int r = 0; r < mr; r++) out[(long)p * mr + r] = r < rows ? a[(long)r * lda + p] : 0.0f;
    return 1;
}

/* 4 pixels of one tap row: source src (already shifted), inside the row when !edge */
static inline v128_t load_run4(const float *src, int x0, int dx, int w, int edge) {
    if (!edge) return wasm_v128_load(src);
    float v[4];
    for (int i = 0; i < 4; i++) {
        int x = x0 + i + dx;
        v[i] = (x < 0 || x >= w) ? 0.0f : src[i];
    }
    return wasm_v128_load(v);
}

int q4_wasmsimd_pack_patch(float *out, const q4_operand *x, int p0, int kc, long j0, int nc, long n, int nr) {
    int h = x->height, w = x->width;
    long hw = (long)h * w;
    if (w % 4 || j0 % 4 || nr % 4 || nr > 16 || n % 4 || kc > 1024) return 0;
    long end = j0 + nc < n ? j0 + nc : n;
    long offset[1024];
    signed char dy[1024], dx[1024];
    for (int p = 0; p < kc; p++) {
        int k = p0 + p;
        dy[p] = (signed char)((k % 9) / 3 - 1);
        dx[p] = (signed char)(k % 3 - 1);
        offset[p] = (long)(k / 9) * x->images * hw + dy[p] * w + dx[p];
    }
    long image = j0 / hw;
    int y = (int)(j0 % hw) / w, x0 = (int)(j0 % hw) % w;
    for (long s = j0; s < j0 + nc; s += nr) {
        int runs = nr / 4;
        long base[4];
        int ry[4], rx[4], live[4];
        for (int r = 0; r < runs; r++) {
            live[r] = s + 4 * r < end;
            base[r] = image * hw + (long)y * w + x0;
            ry[r] = y;
            rx[r] = x0;
            if (live[r] && (x0 += 4) == w) {
                x0 = 0;
                if (++y == h) {
                    y = 0;
                    image++;
                }
            }
        }
        float *panel = out + (s - j0) * kc;
        for (int p = 0; p < kc; p++) {
            float *dst = panel + (long)p * nr;
            for (int r = 0; r < runs; r++) {
                v128_t v = wasm_f32x4_splat(0.0f);
                if (live[r] && (unsigned)(ry[r] + dy[p]) < (unsigned)h) {
                    int edge = (dx[p] < 0 && rx[r] == 0) || (dx[p] > 0 && rx[r] + 4 == w);
                    v = load_run4(x->data + base[r] + offset[p], rx[r], dx[p], w, edge);
                }
                wasm_v128_store(dst + 4 * r, v);
            }
        }
    }
    return 1;
}

int q4_wasmsimd_pack_patch_t(float *out, const q4_operand *x, int tap0, int taps, long pixel0, int kc, int nr) {
    int h = x->height, w = x->width;
    long hw = (long)h * w;
    if (w % 4 || pixel0 % 4 || kc % 4 || nr % 4 || nr > 16) return 0;
    long base[16];
    int dy[16], dx[16];
    for (int c = 0; c < nr && c < taps; c++) {
        int k = tap0 + c;
        base[c] = (long)(k / 9) * x->images * hw;
        dy[c] = (k % 9) / 3 - 1;
        dx[c] = k % 3 - 1;
    }
    long image = pixel0 / hw;
    int y = (int)(pixel0 % hw) / w, x0 = (int)(pixel0 % hw) % w;
    for (int p = 0; p < kc; p += 4) {
        const float *img = x->data + image * hw;
        for (int g = 0; g < nr; g += 4) {
            v128_t r[4];
            for (int i = 0; i < 4; i++) {
                int c = g + i, sy = c < taps ? y + dy[c] : -1;
                if (sy < 0 || sy >= h) {
                    r[i] = wasm_f32x4_splat(0.0f);
                    continue;
                }
                int edge = (dx[c] < 0 && x0 == 0) || (dx[c] > 0 && x0 + 4 == w);
                r[i] = load_run4(img + base[c] + (long)sy * w + x0 + dx[c], x0, dx[c], w, edge);
            }
            transpose4(&r[0], &r[1], &r[2], &r[3]);
            for (int q = 0; q < 4; q++) wasm_v128_store(out + (long)(p + q) * nr + g, r[q]);
        }
        if ((x0 += 4) == w) {
            x0 = 0;
            if (++y == h) {
                y = 0;
                image++;
            }
        }
    }
    return 1;
}
