/* winograd.c - 3x3 convolution (stride 1, padding 1) by Winograd's F(2x2, 3x3): each 2x2
 * output tile costs 16 multiply-adds per input channel instead of 36.
 *
 * Forward (and backward to the input, with the transposed-flipped kernel): the weights are
 * transformed once per call (U = G g G^T, packed as GEMM A panels in the shared buffer);
 * tasks take fixed chunks of tiles: transform the input (V = B^T d B, written straight into
 * packed B panels), run the 16 small GEMMs with this ISA's microkernel, and transform back
 * (Y = A^T M A, plus the bias).
 *
 * Backward to the weights: dU = sum over tiles of (A dY A^T) . V, then dg = G^T dU G. The
 * tiles are taken in fixed chunks; per chunk both transforms are written as plain matrices
 * (16 of [channels][tiles]) and the 16 products dU += dM V^T are GEMMs over the tiles.
 *
 * The transforms' arithmetic is the ISA's (winograd-transforms.h, vectorized over tiles);
 * this file gathers tiles and orders the work. Chunking never depends on the thread count,
 * so neither do the results. */
#include <string.h>

#include "kernels.h"

#define TILES_PER_TASK 96 /* forward: a multiple of every NR in use (8, 16, 24, 32) */
#define MAX_LANES 32      /* tiles one transform call takes (the widest NR) */
/* weight gradient: tiles per chunk, 65536 / the larger channel count (256 tiles at 256
 * channels, 1024 at 64): a fixed part of its summation order, the same in every build */
#define GRADIENT_CHUNK_FLOATS 65536

/* The transforms cost about 80 operations per tile and channel against the GEMM's 16 x co
 * multiply-adds, so whether Winograd pays depends on how fast the ISA's GEMM is: each
 * variant's winograd_min_channels was measured per ISA (see the variants). */
int q4_winograd_applies(const q4_gemm_variant *v, int ci, int co, int h, int wd) {
    return ci >= v->winograd_min_channels && co >= v->winograd_min_channels && h % 2 == 0 && wd % 2 == 0 &&
           v->nr <= MAX_LANES;
}

size_t q4_winograd_scratch_floats(int max_ci, int max_co) {
    return (size_t)16 * TILES_PER_TASK * ((size_t)max_ci + (size_t)max_co) + 64;
}

size_t q4_winograd_shared_floats(const q4_gemm_variant *v, int max_ci, int max_co) {
    size_t co_pad = ((size_t)max_co + v->mr - 1) / v->mr * v->mr;
    return 16 * co_pad * (size_t)max_ci;
}

static long gradient_chunk(int ci, int co) { return GRADIENT_CHUNK_FLOATS / (ci > co ? ci : co); }

size_t q4_winograd_gradient_floats(int max_ci, int max_co) {
    long chunk = gradient_chunk(max_ci, max_co);
    return (size_t)16 * ((size_t)max_ci * max_co + ((size_t)max_ci + max_co) * chunk);
}

/* ------------------------------------------------------------ gathering tiles */

/* d[(4r+q)*lanes + l] = the input at (2ty - 1 + r, 2tx - 1 + q) of tile t0 + l, from one
 * channel's planes (images after each other); zeros outside the image and for tiles >= end */
static void gather_input(float *d, int lanes, const float *planes, long t0, long end, int h, int wd) {
    const long hw = (long)h * wd, th = h / 2, tw = wd / 2;
    long image = t0 / (th * tw);
    int ty = (int)((t0 / tw) % th), tx = (int)(t0 % tw);
    for (int l = 0; l < lanes; l++) {
        if (t0 + l >= end) {
            for (int e = 0; e < 16; e++) d[e * lanes + l] = 0.0f;
            continue;
        }
        const float *plane = planes + image * hw;
        int y0 = 2 * ty - 1, x0 = 2 * tx - 1;
        if (y0 >= 0 && y0 + 4 <= h && x0 >= 0 && x0 + 4 <= wd) {
            for (int r = 0; r < 4; r++) {
                const float *row = plane + (long)(y0 + r) * wd + x0;
                for (int q = 0; q < 4; q++) d[(4 * r + q) * lanes + l] = row[q];
            }
        } else {
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++) {
                    int yy = y0 + r, xx = x0 + q;
                    d[(4 * r + q) * lanes + l] = (yy < 0 || yy >= h || xx < 0 || xx >= wd) ? 0.0f
                                                                                         : plane[(long)yy * wd + xx];
                }
        }
        if (++tx == tw) {
            tx = 0;
            if (++ty == th) ty = 0, image++;
        }
    }
}

/* y[j*lanes + l] of tile t0 + l moved to its 2x2 output pixels (plus the bias) in one
 * channel's planes, or the reverse (gather = 1: the 2x2 output gradient into y) */
static void move_outputs(float *y, int lanes, float *planes, long t0, int h, int wd, float bias, int gather) {
    const long hw = (long)h * wd, th = h / 2, tw = wd / 2;
    long image = t0 / (th * tw);
    int ty = (int)((t0 / tw) % th), tx = (int)(t0 % tw);
    for (int l = 0; l < lanes; l++) {
        float *out = planes + image * hw + (long)(2 * ty) * wd + 2 * tx;
        if (gather) {
            y[0 * lanes + l] = out[0], y[1 * lanes + l] = out[1];
            y[2 * lanes + l] = out[wd], y[3 * lanes + l] = out[wd + 1];
        } else {
            out[0] = y[0 * lanes + l] + bias, out[1] = y[1 * lanes + l] + bias;
            out[wd] = y[2 * lanes + l] + bias, out[wd + 1] = y[3 * lanes + l] + bias;
        }
        if (++tx == tw) {
            tx = 0;
            if (++ty == th) ty = 0, image++;
        }
    }
}

/* ------------------------------------------------------------ forward */

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
    const q4_kernels *k = job->cc->kernels;
    const q4_gemm_variant *v = k->gemm;
    const int mr = v->mr, nr = v->nr, ci = job->ci, co = job->co;
    const long hw = (long)job->h * job->wd;
    long t0 = (long)task * TILES_PER_TASK;
    int count = job->tiles - t0 < TILES_PER_TASK ? (int)(job->tiles - t0) : TILES_PER_TASK;
    int count_pad = (count + nr - 1) / nr * nr;
    float *vp = job->cc->scratch + (size_t)thread * job->cc->scratch_floats; /* 16 x [strips][ci][nr] */
    float *mb = vp + (size_t)16 * ci * TILES_PER_TASK;                       /* 16 x [co][TILES_PER_TASK] */
    size_t v_per_xi = (size_t)ci * count_pad;
    float d[16 * MAX_LANES];

    /* input transform, a strip of nr tiles at a time, into packed B panels */
    for (int s = 0; s < count_pad; s += nr)
        for (int c = 0; c < ci; c++) {
            gather_input(d, nr, job->x + (long)c * job->n * hw, t0 + s, t0 + count, job->h, job->wd);
            k->winograd_input(vp + (size_t)s * ci + (size_t)c * nr, (long)v_per_xi, d, nr);
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
        for (int j = 0; j < count; j += MAX_LANES) {
            int lanes = count - j < MAX_LANES ? count - j : MAX_LANES;
            k->winograd_output(d, mb + (size_t)o * TILES_PER_TASK + j, (long)m_per_xi, lanes);
            move_outputs(d, lanes, job->y + (long)o * job->n * hw, t0 + j, job->h, job->wd, bias, 0);
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

/* ------------------------------------------------------------ backward to the weights */

typedef struct gradient_job {
    const q4_compute *cc;
    float *dw;
    const float *dy, *x;
    int n, ci, co, h, wd;
    long t0, count, chunk; /* this chunk's tiles; rows of dm and vt are `chunk` long */
    float *du, *dm, *vt;   /* 16 x [co][ci], 16 x [co][chunk], 16 x [ci][chunk] */
} gradient_job;

/* task < co: dM of output channel `task`; otherwise V of input channel task - co */
static void gradient_transform_task(void *context, int task, int thread) {
    (void)thread;
    const gradient_job *job = context;
    const q4_kernels *k = job->cc->kernels;
    const long hw = (long)job->h * job->wd;
    float d[16 * MAX_LANES];
    for (long j = 0; j < job->count; j += MAX_LANES) {
        int lanes = job->count - j < MAX_LANES ? (int)(job->count - j) : MAX_LANES;
        if (task < job->co) {
            move_outputs(d, lanes, (float *)job->dy + (long)task * job->n * hw, job->t0 + j, job->h, job->wd, 0, 1);
            k->winograd_gradient(job->dm + (size_t)task * job->chunk + j, (long)job->co * job->chunk, d, lanes);
        } else {
            int c = task - job->co;
            gather_input(d, lanes, job->x + (long)c * job->n * hw, job->t0 + j, job->t0 + job->count, job->h,
                         job->wd);
            k->winograd_input(job->vt + (size_t)c * job->chunk + j, (long)job->ci * job->chunk, d, lanes);
        }
    }
}

/* dg = G^T dU G for output channel o, all input channels */
static void gradient_weight_task(void *context, int o, int thread) {
    (void)thread;
    const gradient_job *job = context;
    size_t per_xi = (size_t)job->co * job->ci;
    for (int i = 0; i < job->ci; i++) {
        float u[4][4], s[3][4];
        for (int xi = 0; xi < 16; xi++) u[xi / 4][xi % 4] = job->du[xi * per_xi + (size_t)o * job->ci + i];
        for (int c = 0; c < 4; c++) {
            s[0][c] = u[0][c] + 0.5f * (u[1][c] + u[2][c]);
            s[1][c] = 0.5f * (u[1][c] - u[2][c]);
            s[2][c] = 0.5f * (u[1][c] + u[2][c]) + u[3][c];
        }
        float *g = job->dw + ((size_t)o * job->ci + i) * 9;
        for (int a = 0; a < 3; a++) {
            g[3 * a + 0] = s[a][0] + 0.5f * (s[a][1] + s[a][2]);
            g[3 * a + 1] = 0.5f * (s[a][1] - s[a][2]);
            g[3 * a + 2] = 0.5f * (s[a][1] + s[a][2]) + s[a][3];
        }
    }
}

int q4_conv3x3_winograd_backward_weights(const q4_compute *cc, float *dw, const float *dy, const float *x, int n,
                                         int ci, int co, int h, int wd) {
    if (!q4_winograd_applies(cc->kernels->gemm, ci, co, h, wd) || !cc->winograd ||
        q4_winograd_gradient_floats(ci, co) > cc->winograd_floats)
        return 0;
    long tiles = (long)n * (h / 2) * (wd / 2), chunk = gradient_chunk(ci, co);
    float *du = cc->winograd, *dm = du + (size_t)16 * co * ci, *vt = dm + (size_t)16 * co * chunk;
    gradient_job job = {cc, dw, dy, x, n, ci, co, h, wd, 0, 0, chunk, du, dm, vt};
    for (long t0 = 0; t0 < tiles; t0 += chunk) {
        job.t0 = t0;
        job.count = tiles - t0 < chunk ? tiles - t0 : chunk;
        q4_pool_run(cc->pool, co + ci, gradient_transform_task, &job);
        for (int xi = 0; xi < 16; xi++) {
            /* dU_xi[co][ci] (+)= dM_xi[co][tiles] V_xi[ci][tiles]^T */
            q4_operand A = q4_dense(dm + (size_t)xi * co * chunk, chunk, 1);
            q4_operand B = q4_dense(vt + (size_t)xi * ci * chunk, 1, chunk);
            q4_gemm(cc, co, ci, (int)job.count, &A, &B, du + (size_t)xi * co * ci, ci, t0 > 0);
        }
    }
    q4_pool_run(cc->pool, co, gradient_weight_task, &job);
    return 1;
}
