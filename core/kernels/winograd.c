/* winograd.c - 3x3 convolution (stride 1, padding 1) by Winograd's F(2x2, 3x3): each
 * 2x2 output tile costs 16 multiply-adds per input channel instead of 36. Weights are
 * transformed once per call (U = G g G^T, packed as GEMM A panels in the shared buffer);
 * tasks take fixed chunks of tiles: transform the input (V = B^T d B, written straight
 * into packed B panels), run the 16 small GEMMs with this ISA's microkernel, and transform
 * back (Y = A^T M A, plus the bias). ISA-neutral; chunking never depends on the thread
 * count, so neither do the results. Used for the forward and backward-to-input passes of
 * the convolutions with enough channels in and out (conv4-6 natively, conv2-6 in WASM). */
#include <string.h>

#include "kernels.h"

#define TILES_PER_TASK 48 /* a multiple of every NR in use (8, 16, 24); 96 ran no faster and took 3 MiB more scratch */

/* The transforms cost about 80 operations per tile and channel against the GEMM's 16 x co
 * multiply-adds, so whether Winograd pays depends on how fast the ISA's GEMM is (the
 * variant's winograd_min_channels, from `q4bench --steps 6` per layer, one thread):
 * AVX2+FMA: with 64 channels the transforms eat the saving (conv2 forward 68 against 92
 * GFLOP/s direct), from 128 on it wins (conv6: 121 against 85). WASM SIMD128, no FMA, GEMM
 * at half the native rate: it wins from 64 on (in Chromium, with 64: conv2 forward 47
 * GFLOP/s-equivalent and conv3 60, against 39 and 43 for their direct backward-to-weights
 * GEMMs in the same run; with 128 both forwards ran at the GEMM's rate). */
int q4_winograd_applies(const q4_gemm_variant *v, int ci, int co, int h, int wd) {
    return ci >= v->winograd_min_channels && co >= v->winograd_min_channels && h % 2 == 0 && wd % 2 == 0;
}

size_t q4_winograd_scratch_floats(int max_ci, int max_co) {
    return (size_t)16 * TILES_PER_TASK * ((size_t)max_ci + (size_t)max_co) + 64;
}

size_t q4_winograd_shared_floats(const q4_gemm_variant *v, int max_ci, int max_co) {
    size_t co_pad = ((size_t)max_co + v->mr - 1) / v->mr * v->mr;
    return 16 * co_pad * (size_t)max_ci;
}

typedef struct winograd_job {
    const q4_compute *cc;
    float *y;
    const float *x, *w, *bias;
    int n, ci, co, h, wd;
    long tiles;
    int co_pad;
    float *u; /* 16 x packed A (co_pad x ci) */
} winograd_job;

/* U = G g G^T for output channel `o`, packed: xi-th matrix, strip o / mr, row o % mr */
static void weight_task(void *context, int o, int thread) {
    (void)thread;
    const winograd_job *job = context;
    const q4_gemm_variant *v = job->cc->kernels->gemm;
    int mr = v->mr, ci = job->ci;
    size_t per_xi = (size_t)job->co_pad * ci;
    float *base = job->u + (size_t)(o / mr) * ci * mr + (o % mr);
    for (int i = 0; i < ci; i++) {
        const float *g = job->w + ((size_t)o * ci + i) * 9;
        float t[4][3];
        for (int c = 0; c < 3; c++) {
            t[0][c] = g[c];
            t[1][c] = 0.5f * (g[c] + g[3 + c] + g[6 + c]);
            t[2][c] = 0.5f * (g[c] - g[3 + c] + g[6 + c]);
            t[3][c] = g[6 + c];
        }
        for (int r = 0; r < 4; r++) {
            float u[4] = {t[r][0], 0.5f * (t[r][0] + t[r][1] + t[r][2]), 0.5f * (t[r][0] - t[r][1] + t[r][2]), t[r][2]};
            for (int c = 0; c < 4; c++) base[(size_t)(4 * r + c) * per_xi + (size_t)i * mr] = u[c];
        }
    }
}

/* zero rows for the padding strip rows beyond co */
static void weight_padding(const winograd_job *job) {
    const q4_gemm_variant *v = job->cc->kernels->gemm;
    int mr = v->mr, ci = job->ci;
    size_t per_xi = (size_t)job->co_pad * ci;
    for (int o = job->co; o < job->co_pad; o++) {
        float *base = job->u + (size_t)(o / mr) * ci * mr + (o % mr);
        for (int xi = 0; xi < 16; xi++)
            for (int i = 0; i < ci; i++) base[(size_t)xi * per_xi + (size_t)i * mr] = 0.0f;
    }
}

static void tile_task(void *context, int task, int thread) {
    const winograd_job *job = context;
    const q4_gemm_variant *v = job->cc->kernels->gemm;
    const int mr = v->mr, nr = v->nr, ci = job->ci, co = job->co, h = job->h, wd = job->wd;
    const long hw = (long)h * wd, th = h / 2, tw = wd / 2;
    long t0 = (long)task * TILES_PER_TASK;
    int count = job->tiles - t0 < TILES_PER_TASK ? (int)(job->tiles - t0) : TILES_PER_TASK;
    int count_pad = (count + nr - 1) / nr * nr;
    float *vp = job->cc->scratch + (size_t)thread * job->cc->scratch_floats; /* 16 x [strips][ci][nr] */
    float *mb = vp + (size_t)16 * ci * TILES_PER_TASK;                       /* 16 x [co][TILES_PER_TASK] */
    size_t v_per_xi = (size_t)ci * count_pad;

    /* input transform into packed B panels */
    for (int k = 0; k < count_pad; k++) {
        float *lane = vp + (size_t)(k / nr) * ci * nr + (k % nr);
        if (k >= count) {
            for (int xi = 0; xi < 16; xi++)
                for (int c = 0; c < ci; c++) lane[(size_t)xi * v_per_xi + (size_t)c * nr] = 0.0f;
            continue;
        }
        long t = t0 + k, image = t / (th * tw);
        int ty = (int)((t / tw) % th), tx = (int)(t % tw);
        int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
        for (int c = 0; c < ci; c++) {
            const float *plane = job->x + ((long)c * job->n + image) * hw;
            float d[4][4];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++) {
                    int yy = y0 + r, xx = x0 + q;
                    d[r][q] = (yy < 0 || yy >= h || xx < 0 || xx >= wd) ? 0.0f : plane[(long)yy * wd + xx];
                }
            float b[4][4];
            for (int q = 0; q < 4; q++) {
                b[0][q] = d[0][q] - d[2][q];
                b[1][q] = d[1][q] + d[2][q];
                b[2][q] = d[2][q] - d[1][q];
                b[3][q] = d[1][q] - d[3][q];
            }
            float *out = lane + (size_t)c * nr;
            for (int r = 0; r < 4; r++) {
                out[(size_t)(4 * r + 0) * v_per_xi] = b[r][0] - b[r][2];
                out[(size_t)(4 * r + 1) * v_per_xi] = b[r][1] + b[r][2];
                out[(size_t)(4 * r + 2) * v_per_xi] = b[r][2] - b[r][1];
                out[(size_t)(4 * r + 3) * v_per_xi] = b[r][1] - b[r][3];
            }
        }
    }

    /* 16 GEMMs: M_xi[co][tile] = U_xi[co][c] V_xi[c][tile], K = ci in blocks of kc */
    float tile_buffer[32 * 32];
    size_t u_per_xi = (size_t)job->co_pad * ci;
    for (int xi = 0; xi < 16; xi++) {
        const float *u = job->u + (size_t)xi * u_per_xi, *vv = vp + (size_t)xi * v_per_xi;
        float *m = mb + (size_t)xi * co * TILES_PER_TASK;
        for (int pc = 0; pc < ci; pc += v->kc) {
            int kc = ci - pc < v->kc ? ci - pc : v->kc;
            for (int jr = 0; jr < count_pad; jr += nr) {
                const float *b_panel = vv + (size_t)jr * ci + (size_t)pc * nr;
                int cols = count - jr < nr ? count - jr : nr;
                for (int ir = 0; ir < co; ir += mr) {
                    const float *a_panel = u + (size_t)ir * ci + (size_t)pc * mr;
                    int rows = co - ir < mr ? co - ir : mr;
                    float *c = m + (size_t)ir * TILES_PER_TASK + jr;
                    if (rows == mr && cols == nr) {
                        v->microkernel(kc, a_panel, b_panel, c, TILES_PER_TASK, pc > 0);
                    } else {
                        v->microkernel(kc, a_panel, b_panel, tile_buffer, nr, 0);
                        for (int r = 0; r < rows; r++)
                            for (int q = 0; q < cols; q++)
                                c[(size_t)r * TILES_PER_TASK + q] =
                                    pc > 0 ? c[(size_t)r * TILES_PER_TASK + q] + tile_buffer[r * nr + q]
                                           : tile_buffer[r * nr + q];
                    }
                }
            }
        }
    }

    /* output transform, plus the bias */
    size_t m_per_xi = (size_t)co * TILES_PER_TASK;
    for (int o = 0; o < co; o++) {
        float bias = job->bias ? job->bias[o] : 0.0f;
        for (int k = 0; k < count; k++) {
            const float *mm = mb + (size_t)o * TILES_PER_TASK + k;
            float s[4][4];
            for (int xi = 0; xi < 16; xi++) s[xi / 4][xi % 4] = mm[(size_t)xi * m_per_xi];
            float a0[4], a1[4];
            for (int q = 0; q < 4; q++) {
                a0[q] = s[0][q] + s[1][q] + s[2][q];
                a1[q] = s[1][q] - s[2][q] - s[3][q];
            }
            long t = t0 + k, image = t / (th * tw);
            int ty = (int)((t / tw) % th), tx = (int)(t % tw);
            float *yrow = job->y + ((long)o * job->n + image) * hw + (long)(2 * ty) * wd + 2 * tx;
            yrow[0] = a0[0] + a0[1] + a0[2] + bias;
            yrow[1] = a0[1] - a0[2] - a0[3] + bias;
            yrow[wd] = a1[0] + a1[1] + a1[2] + bias;
            yrow[wd + 1] = a1[1] - a1[2] - a1[3] + bias;
        }
    }
}

int q4_conv3x3_winograd(const q4_compute *cc, float *y, const float *x, const float *w, const float *bias, int n,
                        int ci, int co, int h, int wd) {
    const q4_gemm_variant *v = cc->kernels->gemm;
    int co_pad = (co + v->mr - 1) / v->mr * v->mr;
    if (!q4_winograd_applies(v, ci, co, h, wd) || !cc->shared || (size_t)16 * co_pad * ci > cc->shared_floats ||
        q4_winograd_scratch_floats(ci, co) > cc->scratch_floats)
        return 0;
    winograd_job job = {cc, y, x, w, bias, n, ci, co, h, wd, (long)n * (h / 2) * (wd / 2), co_pad, cc->shared};
    q4_pool_run(cc->pool, co, weight_task, &job);
    weight_padding(&job);
    int tasks = (int)((job.tiles + TILES_PER_TASK - 1) / TILES_PER_TASK);
    q4_pool_run(cc->pool, tasks, tile_task, &job);
    return 1;
}
