/* iconv.c - integer convolution and linear layers (issue 26): activations quantized per image to
 * bytes, pixel-major, times packed weight levels, summed in int32 by the ISA's microkernel
 * (kernels.h, q4_iconv_variant), and back to floats. A 3x3 convolution reads its nine taps
 * straight from the padded activations (no im2col copy): the tap (ky, kx) of the pixel tile
 * at (y, x0) is the padded row y + ky from column x0 + kx, so a tile of mr pixels in one row
 * is mr consecutive channel vectors. ISA-neutral: the arithmetic is in the microkernel. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

/* ------------------------------------------------------------ quantization */

/* 1.5 x 2^23: adding and subtracting it rounds a float of magnitude below 2^22 to an integer,
 * to nearest with ties to even (the default rounding mode), in plain float arithmetic */
#define ROUNDER 12582912.0f
#define RUN 32

typedef struct quantize_job {
    const q4_kernels *kern;
    uint8_t *out;
    float *scale;
    const float *x;
    int n, c, k, h, wd, pad, levels, zero;
    float *fake; /* q4_ifakequant: the tensor to replace by its quantized values */
} quantize_job;

/* max |x| over image b of a [c][n][h][w] tensor (NaN if one is NaN) */
static float image_top(const q4_kernels *kern, const float *x, int n, int c, long hw, int b) {
    float top = 0.0f;
    long stride = (long)n * hw;
    if (hw == 1) /* a linear layer's input [c][n]: one value per channel */
        for (int i = 0; i < c; i++) {
            float v = fabsf(x[i * stride + b]);
            top = v > top || v != v ? v : top;
        }
    else
        for (int i = 0; i < c; i++) {
            float v = kern->max_abs(x + i * stride + b * hw, hw);
            if (v > top || v != v) top = v;
        }
    return top;
}

/* the level of v (v times levels / top): rounded to nearest, ties to even, as rintf, without a
 * call (|v| <= 255), and clamped to [low, high] */
static inline float level_of(float v, float low, float high) {
    float r = (v + ROUNDER) - ROUNDER;
    r = r > high ? high : r;
    return r < low ? low : r;
}

static void quantize_task(void *context, int b, int thread) {
    (void)thread;
    const quantize_job *j = context;
    long hw = (long)j->h * j->wd, stride = (long)j->n * hw;
    float top = image_top(j->kern, j->x, j->n, j->c, hw, b);
    int levels = j->levels, zero = j->zero, linear = hw == 1 && j->pad == 0;
    int ph = j->h + 2 * j->pad, pw = j->wd + 2 * j->pad;
    long row_bytes = (long)pw * j->k;
    uint8_t *img = j->out + (long)b * ph * row_bytes;
    /* an image of zeros has scale 0; one with a value not finite, a scale not finite (the sums
     * it gives are not finite either, as in the float pass) */
    j->scale[b] = top > 0.0f && top <= FLT_MAX ? top / (float)levels : top == 0.0f ? 0.0f : NAN;
    float inv = top > 0.0f && top <= FLT_MAX ? (float)levels / top : 0.0f, top_level = (float)levels;
    float low_level = (float)-(levels < zero ? levels : zero);
    if (linear) {
        for (int c = 0; c < j->k; c++)
            img[c] = (uint8_t)((int32_t)level_of((c < j->c ? j->x[c * stride + b] : 0.0f) * inv, low_level, top_level) + zero);
        return;
    }
    /* the border: the zero point */
    memset(img, zero, (size_t)(j->pad * row_bytes));
    memset(img + (long)(ph - j->pad) * row_bytes, zero, (size_t)(j->pad * row_bytes));
    for (int y = 0; y < j->h; y++) {
        uint8_t *row = img + (long)(y + j->pad) * row_bytes;
        memset(row, zero, (size_t)j->pad * j->k);
        memset(row + (long)(pw - j->pad) * j->k, zero, (size_t)j->pad * j->k);
    }
    /* row by row: the channels in sixteens by the ISA's kernel, the rest four at a time (one
     * 32-bit word per pixel; channels past c: the zero point), a run of pixels at a time */
    int sixteens = j->c & ~15;
    for (int y = 0; y < j->h; y++) {
        uint8_t *row = img + (long)(y + j->pad) * row_bytes + (long)j->pad * j->k;
        if (sixteens)
            j->kern->iquantize_rows(row, j->k, j->x + b * hw + (long)y * j->wd, stride, sixteens, j->wd, inv,
                                    (int)low_level, levels, zero);
        for (int c0 = sixteens; c0 < j->k; c0 += 4)
            for (int x0 = 0; x0 < j->wd; x0 += RUN) {
                int count = j->wd - x0 < RUN ? j->wd - x0 : RUN;
                uint32_t word[RUN];
                for (int x = 0; x < count; x++) word[x] = 0;
                for (int q = 0; q < 4; q++) {
                    int c = c0 + q;
                    if (c >= j->c) {
                        for (int x = 0; x < count; x++) word[x] |= (uint32_t)zero << (8 * q);
                        continue;
                    }
                    const float *in = j->x + c * stride + b * hw + (long)y * j->wd + x0;
                    for (int x = 0; x < count; x++)
                        word[x] |= (uint32_t)((int32_t)level_of(in[x] * inv, low_level, top_level) + zero) << (8 * q);
                }
                for (int x = 0; x < count; x++) memcpy(row + (long)(x0 + x) * j->k + c0, &word[x], 4); /* little-endian */
            }
    }
}

void q4_iquantize(const q4_compute *cc, uint8_t *out, float *scale, const float *x, int n, int c, int k, int h, int wd,
                  int pad, int levels, int zero_point) {
    quantize_job job = {cc->kernels, out, scale, x, n, c, k, h, wd, pad, levels, zero_point, NULL};
    q4_pool_run(cc->pool, n, quantize_task, &job);
}

/* image b of the tensor replaced by level x scale, the values q4_iquantize's levels stand for */
static void fakequant_task(void *context, int b, int thread) {
    (void)thread;
    const quantize_job *j = context;
    long hw = (long)j->h * j->wd, stride = (long)j->n * hw;
    float top = image_top(j->kern, j->fake, j->n, j->c, hw, b);
    if (!(top > 0.0f && top <= FLT_MAX)) return; /* zeros stay zeros; a value not finite stays */
    float scale = top / (float)j->levels, inv = (float)j->levels / top, high = (float)j->levels;
    for (int c = 0; c < j->c; c++) {
        float *x = j->fake + c * stride + b * hw;
        for (long i = 0; i < hw; i++) x[i] = level_of(x[i] * inv, 0.0f, high) * scale;
    }
}

void q4_ifakequant(const q4_compute *cc, float *x, int n, int c, int h, int wd, int levels) {
    quantize_job job = {cc->kernels, NULL, NULL, NULL, n, c, c, h, wd, 0, levels, 0, x};
    q4_pool_run(cc->pool, n, fakequant_task, &job);
}

/* ------------------------------------------------------------ weights */

static long round_up(long a, long b) { return (a + b - 1) / b * b; }

/* the level a quantized weight (level x scale) stands for: as rintf(w / scale), without a call */
static inline int weight_level(float w, float scale) { return (int)((w / scale + ROUNDER) - ROUNDER); }

size_t q4_iconv_packed_bytes(const q4_iconv_variant *v, int taps, int k, int co) {
    return (size_t)round_up(co, v->nr) * (size_t)taps * (size_t)k * (size_t)v->wbytes;
}

void q4_iconv_pack(const q4_iconv_variant *v, void *out, int32_t *rowsum, const float *w, float scale, int taps, int ci,
                   int k, int co) {
    int nr = v->nr, kg = v->kgroup;
    long tile = (long)taps * k * nr; /* elements per tile of nr output channels */
    for (int o0 = 0; o0 < co; o0 += nr)
        for (int t = 0; t < taps; t++)
            for (int kk = 0; kk < k; kk++)
                for (int j = 0; j < nr; j++) {
                    int o = o0 + j, level = 0;
                    if (o < co && kk < ci && scale > 0.0f) level = weight_level(w[((long)o * ci + kk) * taps + t], scale);
                    long at = (long)(o0 / nr) * tile + ((long)t * (k / kg) + kk / kg) * nr * kg + (long)j * kg + kk % kg;
                    if (v->wbytes == 1) ((int8_t *)out)[at] = (int8_t)level;
                    else ((int16_t *)out)[at] = (int16_t)level;
                }
    if (rowsum)
        for (int o = 0; o < co; o++) {
            int32_t sum = 0;
            for (long e = 0; e < (long)ci * taps; e++) sum += scale > 0.0f ? weight_level(w[(long)o * ci * taps + e], scale) : 0;
            rowsum[o] = sum;
        }
}

/* ------------------------------------------------------------ the layers */

/* One run of pixels (a row of an image, or the images of a linear layer) times a range of
 * output-channel tiles: the tasks of both layers. */
typedef struct iconv_job {
    const q4_iconv_variant *v;
    int32_t *y;
    const uint8_t *x;
    const char *w;
    int taps, k, co;
    long tap_offsets[9];
    long x_stride;          /* bytes between neighbouring pixels: k */
    int rows, row_pixels;   /* runs of pixels, and pixels per run */
    long row_in, image_in;  /* conv: input bytes per padded row and per padded image (0: linear) */
    int height;             /* conv: rows per image */
    int co_chunks, chunk_tiles;
    /* the sums back to floats: y[o * y_stride + pixel] = (sum - shift[o]) * wscale * scale[image] + bias[o] */
    float *y_float;
    long y_stride;
    const float *scale;
    float wscale;
    const int32_t *shift;
    const float *bias;
} iconv_job;

static const int32_t no_shift[64];
static const float no_bias[64];

static void iconv_task(void *context, int task, int thread) {
    (void)thread;
    const iconv_job *j = context;
    const q4_iconv_variant *v = j->v;
    int row = task / j->co_chunks, chunk = task % j->co_chunks, mr = v->mr, nr = v->nr;
    const uint8_t *in;
    long first_pixel = (long)row * j->row_pixels;
    if (j->image_in) in = j->x + (long)(row / j->height) * j->image_in + (long)(row % j->height) * j->row_in;
    else in = j->x;
    int tiles = (j->co + nr - 1) / nr, t0 = chunk * j->chunk_tiles, t1 = t0 + j->chunk_tiles < tiles ? t0 + j->chunk_tiles : tiles;
    long wtile = (long)j->taps * j->k * nr * v->wbytes;
    int32_t tmp[16 * 64]; /* mr x nr at most 16 x 64 (checked by test_kernels) */
    float s[16];
    for (int t = t0; t < t1; t++) {
        int o0 = t * nr, cols = j->co - o0 < nr ? j->co - o0 : nr;
        for (int p = 0; p < j->row_pixels; p += mr) {
            int pixels = j->row_pixels - p < mr ? j->row_pixels - p : mr;
            const uint8_t *a = in + (long)p * j->x_stride;
            if (j->y_float)
                for (int i = 0; i < pixels; i++)
                    s[i] = j->wscale * j->scale[j->image_in ? row / j->height : first_pixel + p + i];
            if (pixels == mr && cols == nr) { /* a whole tile: straight into y */
                if (!j->y_float) {
                    v->ukernel(j->taps, j->tap_offsets, j->k, a, j->x_stride, j->w + t * wtile, j->y + (first_pixel + p) * j->co + o0,
                               j->co, NULL);
                    continue;
                }
                q4_iconv_epilogue e = {j->y_float + o0 * j->y_stride + first_pixel + p, j->y_stride, s,
                                       j->shift ? j->shift + o0 : no_shift, j->bias ? j->bias + o0 : no_bias};
                v->ukernel(j->taps, j->tap_offsets, j->k, a, j->x_stride, j->w + t * wtile, NULL, 0, &e);
                continue;
            }
            v->ukernel(j->taps, j->tap_offsets, j->k, a, j->x_stride, j->w + t * wtile, tmp, nr, NULL);
            if (!j->y_float) {
                int32_t *out = j->y + (first_pixel + p) * j->co + o0;
                for (int i = 0; i < pixels; i++) memcpy(out + (long)i * j->co, tmp + i * nr, (size_t)cols * sizeof(int32_t));
                continue;
            }
            /* part of a tile, still in the cache, back to floats, channel-major */
            for (int c = 0; c < cols; c++) {
                int o = o0 + c;
                int32_t shift = j->shift ? j->shift[o] : 0;
                float bias = j->bias ? j->bias[o] : 0.0f, *out = j->y_float + o * j->y_stride + first_pixel + p;
                for (int i = 0; i < pixels; i++) out[i] = (float)(tmp[i * nr + c] - shift) * s[i] + bias;
            }
        }
    }
}

/* splits the output-channel tiles so that there are at least 4 tasks per thread where it can */
static void run_iconv(const q4_compute *cc, iconv_job *j) {
    int tiles = (j->co + j->v->nr - 1) / j->v->nr, want = 4 * q4_pool_threads(cc->pool);
    j->co_chunks = 1;
    while (j->rows * j->co_chunks < want && j->co_chunks < tiles) j->co_chunks++;
    j->chunk_tiles = (tiles + j->co_chunks - 1) / j->co_chunks;
    j->co_chunks = (tiles + j->chunk_tiles - 1) / j->chunk_tiles;
    q4_pool_run(cc->pool, j->rows * j->co_chunks, iconv_task, j);
}

/* what both layers share: the kernels, operands, shape and output (the sums as they are, or
 * back to floats with rescale) */
static iconv_job job_for(const q4_compute *cc, void *y, const q4_iconv_rescale *r, long y_stride, const uint8_t *x,
                         const void *w, int taps, int k, int co) {
    iconv_job j;
    memset(&j, 0, sizeof j);
    j.v = cc->kernels->iconv;
    j.x = x;
    j.w = w;
    j.taps = taps;
    j.k = k;
    j.co = co;
    j.x_stride = k;
    if (!r) {
        j.y = y;
        return j;
    }
    j.y_float = y;
    j.y_stride = y_stride;
    j.scale = r->scale;
    j.wscale = r->wscale;
    j.shift = r->shift;
    j.bias = r->bias;
    return j;
}

void q4_iconv3x3(const q4_compute *cc, void *y, const q4_iconv_rescale *rescale, const uint8_t *x, const void *w, int n,
                 int k, int co, int h, int wd) {
    iconv_job j = job_for(cc, y, rescale, (long)n * h * wd, x, w, 9, k, co);
    j.row_in = (long)(wd + 2) * k;
    j.image_in = (long)(h + 2) * j.row_in;
    j.height = h;
    j.rows = n * h;
    j.row_pixels = wd;
    for (int t = 0; t < 9; t++) j.tap_offsets[t] = (t / 3) * j.row_in + (long)(t % 3) * k;
    run_iconv(cc, &j);
}

void q4_ilinear(const q4_compute *cc, void *y, const q4_iconv_rescale *rescale, const uint8_t *x, const void *w, int n,
                int k, int out) {
    iconv_job j = job_for(cc, y, rescale, n, x, w, 1, k, out);
    j.rows = 1;
    j.row_pixels = n;
    run_iconv(cc, &j);
}

/* ------------------------------------------------------------ integer Winograd F(2x2, 3x3) */

#define WINO_POINTS 16
#define WINO_TILES 32   /* tiles per task (a multiple of the variant's mr) */
#define WINO_BLOCK 64   /* output channels per pass over a task's transformed input */
_Static_assert(WINO_BLOCK <= sizeof no_bias / sizeof no_bias[0], "no_bias covers a block");

int q4_iwinograd_fits(int k, int max_level) {
    /* |V| <= 4 x 255, |U| <= 9 x max_level, a point's sum over k channels, then 9 of those in
     * A^T M A: 81 x 1020 x max_level x k must stay below 2^31 */
    return max_level > 0 && k > 0 && 81.0 * 1020.0 * max_level * k < 2147483647.0;
}

size_t q4_iwinograd_packed_bytes(const q4_iwinograd_variant *v, int k, int co) {
    return (size_t)WINO_POINTS * (size_t)round_up(co, v->nr) * (size_t)k * sizeof(int16_t);
}

/* U = (2G) g (2G)^T per output and input channel: 2G = [2 0 0; 1 1 1; 1 -1 1; 0 0 2], packed per
 * point, per tile of nr output channels, channels in pairs: [16][co/nr][k/2][nr][2] */
void q4_iwinograd_pack(const q4_iwinograd_variant *v, int16_t *out, const float *w, float scale, int ci, int k, int co) {
    static const int g2[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};
    int nr = v->nr, tiles = (int)(round_up(co, nr) / nr);
    long point = (long)tiles * k * nr; /* elements from one point's matrix to the next */
    for (int ot = 0; ot < tiles; ot++)
        for (int c = 0; c < k; c++)
            for (int j = 0; j < nr; j++) {
                int o = ot * nr + j, u[16] = {0};
                if (o < co && c < ci && scale > 0.0f) {
                    const float *wo = w + ((long)o * ci + c) * 9;
                    int g[9], t[4][3];
                    for (int e = 0; e < 9; e++) g[e] = weight_level(wo[e], scale);
                    for (int i = 0; i < 4; i++) /* (2G) g */
                        for (int b = 0; b < 3; b++) t[i][b] = g2[i][0] * g[b] + g2[i][1] * g[3 + b] + g2[i][2] * g[6 + b];
                    for (int i = 0; i < 4; i++) /* ... (2G)^T */
                        for (int e = 0; e < 4; e++) u[i * 4 + e] = t[i][0] * g2[e][0] + t[i][1] * g2[e][1] + t[i][2] * g2[e][2];
                }
                int16_t *at = out + ((long)ot * (k / 2) + c / 2) * nr * 2 + (long)j * 2 + c % 2;
                for (int xi = 0; xi < WINO_POINTS; xi++) at[xi * point] = (int16_t)u[xi];
            }
}

typedef struct iwino_job {
    const q4_compute *cc;
    const q4_iwinograd_variant *v;
    const uint8_t *x;
    const int16_t *w;
    int n, k, co, h, wd, tiles, group;
    long row_in, image_in;
    long v_point, m_point; /* elements from one point's matrix to the next */
    int32_t *y;            /* sums [n][h][w][co], or */
    float *y_float;        /* floats [co][n][h][w] */
    const float *scale;
    float wscale;
    const float *bias;
} iwino_job;

/* A task: `group` tiles (numbered image by image, row by row) transformed into the thread's
 * scratch, then, per block of output channels, the 16 points' GEMMs and the output transform;
 * the transforms take runs of tiles side by side in one tile row. */
static void iwino_task(void *context, int task, int thread) {
    const iwino_job *j = context;
    const q4_iwinograd_variant *v = j->v;
    int mr = v->mr, nr = v->nr, k = j->k, tw = j->wd / 2, per_image = (j->h / 2) * tw;
    int first = task * j->group, count = j->tiles - first < j->group ? j->tiles - first : j->group;
    int rows = (count + mr - 1) / mr * mr, co_pad = (int)round_up(j->co, nr), wtiles = co_pad / nr;
    int16_t *vv = (int16_t *)(void *)(j->cc->scratch + (size_t)thread * j->cc->scratch_floats);
    int32_t *mm = (int32_t *)(void *)(vv + WINO_POINTS * j->v_point);
    for (int i = 0, run; i < count; i += run) {
        int t = first + i, b = t / per_image, ty = t % per_image / tw, tx = t % tw;
        run = tw - tx < count - i ? tw - tx : count - i;
        v->input(vv + (long)i * k, j->v_point, j->x + b * j->image_in + 2L * ty * j->row_in + 2L * tx * k, j->row_in, k, run);
    }
    for (int i = count; i < rows; i++) /* a last group's missing tiles: zeros */
        for (int xi = 0; xi < WINO_POINTS; xi++) memset(vv + xi * j->v_point + (long)i * k, 0, (size_t)k * sizeof(int16_t));
    for (int ob = 0; ob < co_pad; ob += WINO_BLOCK) {
        int block = co_pad - ob < WINO_BLOCK ? co_pad - ob : WINO_BLOCK, oe = ob + block < j->co ? ob + block : j->co;
        for (int xi = 0; xi < WINO_POINTS; xi++)
            for (int ot = ob / nr; ot < (ob + block) / nr; ot++) {
                const int16_t *w = j->w + ((long)xi * wtiles + ot) * k * nr;
                for (int i0 = 0; i0 < rows; i0 += mr)
                    v->ukernel(k, vv + xi * j->v_point + (long)i0 * k, k, w, mm + xi * j->m_point + (long)i0 * WINO_BLOCK + ot * nr - ob,
                               WINO_BLOCK);
            }
        for (int i = 0, run; i < count; i += run) {
            int t = first + i, b = t / per_image, ty = t % per_image / tw, tx = t % tw;
            long pixel = ((long)b * j->h + 2 * ty) * j->wd + 2 * tx; /* the run's top left output */
            const int32_t *m = mm + (long)i * WINO_BLOCK;
            run = tw - tx < count - i ? tw - tx : count - i;
            if (j->y_float) {
                long plane = (long)j->n * j->h * j->wd;
                v->output(j->y_float + ob * plane + pixel, plane, j->wd, m, j->m_point, WINO_BLOCK, run, oe - ob,
                          j->wscale * j->scale[b], j->bias ? j->bias + ob : no_bias);
                continue;
            }
            for (int r = 0; r < run; r++) /* the sums as they are (tests): Y = A^T M A / 4 */
                for (int o = ob; o < oe; o++) {
                    const int32_t *p = m + (long)r * WINO_BLOCK + (o - ob);
                    int32_t r0[4], r1[4];
                    for (int q = 0; q < 4; q++) {
                        int32_t m0 = p[q * j->m_point], m1 = p[(4 + q) * j->m_point];
                        int32_t m2 = p[(8 + q) * j->m_point], m3 = p[(12 + q) * j->m_point];
                        r0[q] = m0 + m1 + m2;
                        r1[q] = m1 - m2 - m3;
                    }
                    int32_t *out = j->y + (pixel + 2 * r) * j->co + o;
                    out[0] = (r0[0] + r0[1] + r0[2]) / 4, out[j->co] = (r0[1] - r0[2] - r0[3]) / 4;
                    out[(long)j->wd * j->co] = (r1[0] + r1[1] + r1[2]) / 4, out[((long)j->wd + 1) * j->co] = (r1[1] - r1[2] - r1[3]) / 4;
                }
        }
    }
}

/* elements from one point's matrix to the next: one cache line more than the matrix (the
 * matrices are multiples of 4 KiB; unpadded, all 16 would share the L1 sets: winograd.c) */
static long point_elements(long elements, int bytes) { return elements + 64 / bytes; }

/* scratch bytes for a task of `group` tiles */
static size_t wino_scratch(int group, int k, long *v_point, long *m_point) {
    *v_point = point_elements((long)group * k, 2);
    *m_point = point_elements((long)group * WINO_BLOCK, 4);
    return (size_t)WINO_POINTS * (size_t)(*v_point * 2 + *m_point * 4);
}

size_t q4_iwinograd_scratch_bytes(const q4_iwinograd_variant *v, int k) {
    long vp, mp;
    return wino_scratch(v->mr, k, &vp, &mp);
}

int q4_iconv3x3_winograd(const q4_compute *cc, void *y, const q4_iconv_rescale *rescale, const uint8_t *x,
                         const int16_t *w, int n, int k, int co, int h, int wd, int max_level) {
    const q4_iwinograd_variant *v = cc->kernels->iwinograd;
    if (!v || h % 2 || wd % 2 || k % 2 || (rescale && rescale->shift) || !q4_iwinograd_fits(k, max_level)) return 0;
    iwino_job j;
    memset(&j, 0, sizeof j);
    j.cc = cc;
    j.v = v;
    /* as many tiles per task as fit the scratch, up to WINO_TILES, a multiple of mr */
    size_t room = cc->scratch_floats * sizeof(float);
    for (j.group = WINO_TILES / v->mr * v->mr; j.group >= v->mr; j.group -= v->mr)
        if (wino_scratch(j.group, k, &j.v_point, &j.m_point) <= room) break;
    if (j.group < v->mr) return 0;
    j.x = x;
    j.w = w;
    j.n = n, j.k = k, j.co = co, j.h = h, j.wd = wd;
    j.tiles = n * (h / 2) * (wd / 2);
    j.row_in = (long)(wd + 2) * k;
    j.image_in = (long)(h + 2) * j.row_in;
    if (rescale) {
        j.y_float = y;
        j.scale = rescale->scale;
        j.wscale = rescale->wscale;
        j.bias = rescale->bias;
    } else j.y = y;
    q4_pool_run(cc->pool, (j.tiles + j.group - 1) / j.group, iwino_task, &j);
    return 1;
}
