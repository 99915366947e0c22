/* pack-avx2.c - GEMM packing with 8x8 in-register transposes, for the two transposing
 * cases that dominate the weight-gradient GEMMs: rows of a dense matrix into A panels
 * (pack_rows) and the transposed 3x3 patch matrix into B panels (pack_patch_t). They
 * move values only, so results equal the generic packing's exactly. */
#include <immintrin.h>

#include "avx2.h"

static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

static inline __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

int q4_avx2_pack_rows(float *out, const float *a, long lda, int rows, int kc, int mr) {
    if (mr > 16 || mr < 4) return 0;
    int p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int g = 0; g < mr; g += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = g + i < rows ? _mm256_loadu_ps(a + (long)(g + i) * lda + p) : _mm256_setzero_ps();
            transpose8(r);
            int width = mr - g < 8 ? mr - g : 8;
            if (width == 8) {
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(out + (long)(p + q) * mr + g, r[q]);
            } else {
                __m256i mask = first_lanes(width);
                for (int q = 0; q < 8; q++) _mm256_maskstore_ps(out + (long)(p + q) * mr + g, mask, r[q]);
            }
        }
    for (; p < kc; p++)
        for (int r = 0; r < mr; r++) out[(long)p * mr + r] = r < rows ? a[(long)r * lda + p] : 0.0f;
    return 1;
}

int q4_avx2_pack_patch_t(float *out, const q4_operand *x, int tap0, int taps, long pixel0, int kc, int nr) {
    int h = x->height, w = x->width;
    long hw = (long)h * w;
    if (w % 8 || pixel0 % 8 || kc % 8 || nr % 8 || nr > 32) return 0;
    long base[32];
    int dy[32], dx[32];
    for (int c = 0; c < nr && c < taps; c++) {
        int k = tap0 + c;
        base[c] = (long)(k / 9) * x->images * hw;
        dy[c] = (k % 9) / 3 - 1;
        dx[c] = k % 3 - 1;
    }
    const __m256i skip_first = _mm256_setr_epi32(0, -1, -1, -1, -1, -1, -1, -1);
    const __m256i skip_last = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
    long image = pixel0 / hw;
    int y = (int)(pixel0 % hw) / w, x0 = (int)(pixel0 % hw) % w;
    for (int p = 0; p < kc; p += 8) {
        const float *img = x->data + image * hw;
        for (int g = 0; g < nr; g += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) {
                int c = g + i, sy = c < taps ? y + dy[c] : -1;
                if (sy < 0 || sy >= h) {
                    r[i] = _mm256_setzero_ps();
                    continue;
                }
                const float *src = img + base[c] + (long)sy * w + x0 + dx[c];
                if (dx[c] < 0 && x0 == 0) r[i] = _mm256_maskload_ps(src, skip_first);
                else if (dx[c] > 0 && x0 + 8 == w) r[i] = _mm256_maskload_ps(src, skip_last);
                else r[i] = _mm256_loadu_ps(src);
            }
            transpose8(r);
            for (int q = 0; q < 8; q++) _mm256_storeu_ps(out + (long)(p + q) * nr + g, r[q]);
        }
        if ((x0 += 8) == w) {
            x0 = 0;
            if (++y == h) {
                y = 0;
                image++;
            }
        }
    }
    return 1;
}

int q4_avx2_pack_patch(float *out, const q4_operand *x, int p0, int kc, long j0, int nc, long n, int nr) {
    int h = x->height, w = x->width;
    long hw = (long)h * w;
    if (w % 8 || j0 % 8 || nr % 8 || nr > 32 || n % 8 || kc > 1024) return 0;
    long end = j0 + nc < n ? j0 + nc : n;
    /* per tap: offset of the shifted source from the output pixel, and the shift */
    long offset[1024];
    signed char dy[1024], dx[1024];
    for (int p = 0; p < kc; p++) {
        int k = p0 + p;
        dy[p] = (signed char)((k % 9) / 3 - 1);
        dx[p] = (signed char)(k % 3 - 1);
        offset[p] = (long)(k / 9) * x->images * hw + dy[p] * w + dx[p];
    }
    const __m256i skip_first = _mm256_setr_epi32(0, -1, -1, -1, -1, -1, -1, -1);
    const __m256i skip_last = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
    long image = j0 / hw;
    int y = (int)(j0 % hw) / w, x0 = (int)(j0 % hw) % w;
    /* a strip at a time, its runs of 8 pixels side by side: the panel is written in order */
    for (long s = j0; s < j0 + nc; s += nr) {
        int runs = nr / 8;
        long base[4];
        int ry[4], first[4], last[4], live[4];
        for (int r = 0; r < runs; r++) {
            live[r] = s + 8 * r < end;
            base[r] = image * hw + (long)y * w + x0;
            ry[r] = y;
            first[r] = x0 == 0;
            last[r] = x0 + 8 == w;
            if (live[r] && (x0 += 8) == w) {
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
                __m256 v = _mm256_setzero_ps();
                if (live[r] && (unsigned)(ry[r] + dy[p]) < (unsigned)h) {
                    const float *src = x->data + base[r] + offset[p];
                    if (dx[p] < 0 && first[r]) v = _mm256_maskload_ps(src, skip_first);
                    else if (dx[p] > 0 && last[r]) v = _mm256_maskload_ps(src, skip_last);
                    else v = _mm256_loadu_ps(src);
                }
                _mm256_storeu_ps(dst + 8 * r, v);
            }
        }
    }
    return 1;
}
