/* winograd.c - 3x3 convolution (stride 1, padding 1) by Winograd's minimal filtering:
 * F(2x2, 3x3) costs 16 multiply-adds per 2x2 output tile and input channel, F(4x4, 3x3) 36
 * per 4x4 tile, instead of 36 and 144.
 *
 * Forward (and backward to the input, with the transposed-flipped kernel): the weights are
 * transformed once per call (U = G g G^T, packed as GEMM A panels in the shared buffer);
 * tasks take fixed chunks of tiles: transform the input (V = B^T d B, written straight into
 * packed B panels), run the small GEMMs (one per point of the transformed tile) with this
 * ISA's microkernel, and transform back (Y = A^T M A, plus the bias).
 *
 * Backward to the weights: dU = sum over tiles of (A dY A^T) . V, then dg = G^T dU G. The
 * tiles are taken in fixed chunks; per chunk both transforms are written as plain matrices
 * (one [channels][tiles] per point) and the products dU += dM V^T are GEMMs over the tiles.
 *
 * The transforms' arithmetic is the ISA's (winograd-transforms.h, vectorized over tiles);
 * this file gathers tiles and orders the work. Chunking never depends on the thread count,
 * so neither do the results. Which form a layer takes is the GEMM variant's choice
 * (winograd_min_channels, winograd4_min_channels), measured per ISA. */
#include <string.h>

#include "kernels.h"

#define MAX_LANES 32 /* tiles one transform call takes (the widest NR) */

typedef struct form {
    int m, a, points;    /* output tile m x m, input tile a x a (a = m + 2), a*a points */
    int tiles_per_task;  /* forward: tiles a task takes, rounded up to the variant's NR */
    long gradient_floats; /* weight gradient: tiles per chunk = this / the larger channel count
                             (1024 output pixels at 256 channels): a fixed part of its
                             summation order, the same in every build */
} form;
static const form F2 = {2, 4, 16, 96, 65536}, F4 = {4, 6, 36, 48, 16384};

/* F(4x4) never in the training forward pass: its rounding (about 1e-5 of the largest value,
 * against 5e-7 for F(2x2) and the direct GEMM: test_kernels) there flips ReLU and max-pool
 * decisions, which the PyTorch golden test sees as 0.1-1% gradient differences after one step;
 * backward, the golden test cannot tell it from the direct GEMM, and evaluation makes no step */
int q4_conv_plan(const q4_gemm_variant *v, int ci, int co, int h, int wd, q4_conv_pass pass) {
    int c = ci < co ? ci : co;
    if (v->nr > MAX_LANES) return Q4_CONV_DIRECT;
    if (pass != Q4_PASS_TRAIN_FORWARD && v->winograd4_min_channels && c >= v->winograd4_min_channels && h % 4 == 0 &&
        wd % 4 == 0)
        return Q4_CONV_F4;
    if (c >= v->winograd_min_channels && h % 2 == 0 && wd % 2 == 0) return Q4_CONV_F2;
    return Q4_CONV_DIRECT;
}

const char *q4_conv_algorithm_name(int algorithm) {
    return algorithm == Q4_CONV_F4 ? "F(4x4)" : algorithm == Q4_CONV_F2 ? "F(2x2)" : "direct";
}

static const form *form_of(int m) { return m == 4 ? &F4 : m == 2 ? &F2 : NULL; }

static int tiles_per_task(const q4_gemm_variant *v, const form *f) {
    return (f->tiles_per_task + v->nr - 1) / v->nr * v->nr;
}

static long gradient_chunk(const form *f, int ci, int co) { return f->gradient_floats / (ci > co ? ci : co); }

/* Floats from one point's matrix to the next, for matrices of `floats` values: one cache line
 * more. The sizes are multiples of 4 KiB, so unpadded every point's matrix would start in the
 * same L1 cache set, and the transforms, which touch all points of a tile at once (16 or 36
 * lines), would evict their own lines: padded, the input transform of conv2 in WebAssembly
 * took 39 instead of 54-64 ms (F(2x2), one thread, batch 128). Only where values sit changes,
 * not what is computed. */
static size_t point_stride(size_t floats) { return floats + 16; }

/* room for the largest layer, over the forms the variant may use */
static size_t room(const q4_gemm_variant *v, int max_ci, int max_co, int what) {
    const form *forms[2] = {&F2, v->winograd4_min_channels ? &F4 : NULL};
    size_t most = 0, co_pad = ((size_t)max_co + v->mr - 1) / v->mr * v->mr;
    for (int i = 0; i < 2; i++) {
        const form *f = forms[i];
        if (!f) continue;
        size_t tiles = (size_t)tiles_per_task(v, f), chunk = (size_t)gradient_chunk(f, max_ci, max_co);
        size_t need = what == 0   ? f->points * (point_stride(tiles * max_ci) + point_stride(tiles * max_co)) + 64
                      : what == 1 ? f->points * point_stride(co_pad * max_ci)
                                  : f->points * (point_stride((size_t)max_ci * max_co) + point_stride(max_co * chunk) +
                                                 point_stride(max_ci * chunk));
        if (need > most) most = need;
    }
    return most;
}

size_t q4_winograd_scratch_floats(const q4_gemm_variant *v, int max_ci, int max_co) { return room(v, max_ci, max_co, 0); }
size_t q4_winograd_shared_floats(const q4_gemm_variant *v, int max_ci, int max_co) { return room(v, max_ci, max_co, 1); }
size_t q4_winograd_gradient_floats(const q4_gemm_variant *v, int max_ci, int max_co) {
    return room(v, max_ci, max_co, 2);
}

/* ------------------------------------------------------------ gathering tiles */

/* Tiles are numbered image by image, row by row; a run is the tiles of one tile row among the
 * lanes, taken together: their input rows are one contiguous span of the image, and their output
 * pixels every m-th of one span. Returns how many of the `left` tiles from t on are in t's row. */
static int tile_run(const form *f, long t, int left, int h, int wd, long *image, int *ty, int *tx) {
    const long th = h / f->m, tw = wd / f->m;
    *image = t / (th * tw);
    *ty = (int)((t / tw) % th);
    *tx = (int)(t % tw);
    return tw - *tx < left ? (int)(tw - *tx) : left;
}

/* room for one image row of a run, zero-padded, plus what the ISA's spread may read past it */
#define SPAN_FLOATS (4 * MAX_LANES + 6 + 4 * 16)

/* d[(a*r+q)*lanes + l] = the input at (m*ty - 1 + r, m*tx - 1 + q) of tile t0 + l, from one
 * channel's planes (images after each other); zeros outside the image and for tiles >= end */
static void gather_input(const q4_kernels *k, const form *f, float *d, int lanes, const float *planes, long t0,
                         long end, int h, int wd) {
    const int m = f->m, a = f->a;
    const long hw = (long)h * wd;
    float span[SPAN_FLOATS]; /* one input row of a run, zero-padded: m * run + 2 values */
    for (int l = 0; l < lanes;) {
        if (t0 + l >= end) { /* past the last tile: zeros */
            for (int e = 0; e < f->points; e++)
                for (int j = l; j < lanes; j++) d[e * lanes + j] = 0.0f;
            break;
        }
        long image;
        int ty, tx, left = end - (t0 + l) < lanes - l ? (int)(end - (t0 + l)) : lanes - l;
        int run = tile_run(f, t0 + l, left, h, wd, &image, &ty, &tx);
        const int y0 = m * ty - 1, x0 = m * tx - 1, width = m * run + 2;
        const int lo = x0 < 0 ? -x0 : 0, hi = x0 + width > wd ? wd - x0 : width;
        for (int r = 0; r < a; r++) {
            const int yy = y0 + r;
            if (yy < 0 || yy >= h) {
                memset(span, 0, (size_t)width * sizeof(float));
            } else {
                const float *row = planes + image * hw + (long)yy * wd + x0;
                for (int i = 0; i < lo; i++) span[i] = 0.0f;
                memcpy(span + lo, row + lo, (size_t)(hi - lo) * sizeof(float));
                for (int i = hi; i < width; i++) span[i] = 0.0f;
            }
            k->winograd_spread(m, a, d + a * r * lanes + l, lanes, span, run);
        }
        l += run;
    }
}

/* y[(m*r+q)*lanes + l] of tile t0 + l moved to its m x m output pixels (plus the bias) in one
 * channel's planes, or the reverse (gather = 1: the output gradient into y) */
static void move_outputs(const q4_kernels *k, const form *f, float *y, int lanes, float *planes, long t0, int h,
                         int wd, float bias, int gather) {
    const int m = f->m;
    const long hw = (long)h * wd;
    float span[SPAN_FLOATS];
    for (int l = 0; l < lanes;) {
        long image;
        int ty, tx, run = tile_run(f, t0 + l, lanes - l, h, wd, &image, &ty, &tx);
        float *out = planes + image * hw + (long)(m * ty) * wd + m * tx;
        for (int r = 0; r < m; r++) {
            if (gather) {
                memcpy(span, out + (long)r * wd, (size_t)(m * run) * sizeof(float));
                k->winograd_spread(m, m, y + m * r * lanes + l, lanes, span, run);
            } else {
                k->winograd_merge(m, out + (long)r * wd, y + m * r * lanes + l, lanes, run, bias);
            }
        }
        l += run;
    }
}

/* ------------------------------------------------------------ the kernel's transforms */

/* G applied to a 3-vector: o[0..a) */
static void apply_g(const form *f, float *o, float x0, float x1, float x2) {
    if (f->m == 2) {
        o[0] = x0;
        o[1] = 0.5f * (x0 + x1 + x2);
        o[2] = 0.5f * (x0 - x1 + x2);
        o[3] = x2;
    } else {
        o[0] = 0.25f * x0;
        o[1] = (-1.0f / 6.0f) * (x0 + x1 + x2);
        o[2] = (-1.0f / 6.0f) * (x0 - x1 + x2);
        o[3] = (1.0f / 24.0f) * x0 + (1.0f / 12.0f) * x1 + (1.0f / 6.0f) * x2;
        o[4] = (1.0f / 24.0f) * x0 - (1.0f / 12.0f) * x1 + (1.0f / 6.0f) * x2;
        o[5] = x2;
    }
}

/* G^T applied to an a-vector: o[0..3) */
static void apply_gt(const form *f, float *o, const float *x) {
    if (f->m == 2) {
        o[0] = x[0] + 0.5f * (x[1] + x[2]);
        o[1] = 0.5f * (x[1] - x[2]);
        o[2] = 0.5f * (x[1] + x[2]) + x[3];
    } else {
        o[0] = 0.25f * x[0] - (1.0f / 6.0f) * (x[1] + x[2]) + (1.0f / 24.0f) * (x[3] + x[4]);
        o[1] = (1.0f / 6.0f) * (x[2] - x[1]) + (1.0f / 12.0f) * (x[3] - x[4]);
        o[2] = (1.0f / 6.0f) * (x[3] + x[4] - x[1] - x[2]) + x[5];
    }
}

/* u[xi * stride] = (G g G^T)[xi] */
static void transform_weight(const form *f, float *u, size_t stride, const float *g) {
    float t[6][3], row[6];
    for (int c = 0; c < 3; c++) {
        apply_g(f, row, g[c], g[3 + c], g[6 + c]);
        for (int r = 0; r < f->a; r++) t[r][c] = row[r];
    }
    for (int r = 0; r < f->a; r++) {
        apply_g(f, row, t[r][0], t[r][1], t[r][2]);
        for (int c = 0; c < f->a; c++) u[(size_t)(f->a * r + c) * stride] = row[c];
    }
}

/* g = (G^T dU G), du[xi * stride] */
static void transform_weight_gradient(const form *f, float *g, const float *du, size_t stride) {
    float s[3][6], col[6], o[3];
    for (int c = 0; c < f->a; c++) {
        for (int r = 0; r < f->a; r++) col[r] = du[(size_t)(f->a * r + c) * stride];
        apply_gt(f, o, col);
        for (int i = 0; i < 3; i++) s[i][c] = o[i];
    }
    for (int i = 0; i < 3; i++) {
        apply_gt(f, o, s[i]);
        for (int j = 0; j < 3; j++) g[3 * i + j] = o[j];
    }
}

/* ------------------------------------------------------------ forward */

typedef struct winograd_job {
    const q4_compute *cc;
    const form *f;
    float *y;
    const float *x, *w, *bias;
    int n, ci, co, h, wd;
    long tiles;
    int co_pad, per_task;
    float *u;        /* points x packed A (co_pad x ci) */
    size_t u_stride; /* point_stride(co_pad * ci) */
} winograd_job;

/* U for output channel `o`, packed: xi-th matrix, strip o / mr, row o % mr (zeros beyond co) */
static void weight_task(void *context, int o, int thread) {
    (void)thread;
    const winograd_job *job = context;
    int mr = job->cc->kernels->gemm->mr, ci = job->ci;
    size_t per_xi = job->u_stride;
    float *base = job->u + (size_t)(o / mr) * ci * mr + (o % mr);
    for (int i = 0; i < ci; i++) {
        if (o < job->co) {
            transform_weight(job->f, base + (size_t)i * mr, per_xi, job->w + ((size_t)o * ci + i) * 9);
        } else {
            for (int xi = 0; xi < job->f->points; xi++) base[(size_t)xi * per_xi + (size_t)i * mr] = 0.0f;
        }
    }
}

static void tile_task(void *context, int task, int thread) {
    const winograd_job *job = context;
    const form *f = job->f;
    const q4_kernels *k = job->cc->kernels;
    const q4_gemm_variant *v = k->gemm;
    const int mr = v->mr, nr = v->nr, ci = job->ci, co = job->co, per_task = job->per_task;
    const long hw = (long)job->h * job->wd;
    long t0 = (long)task * per_task;
    int count = job->tiles - t0 < per_task ? (int)(job->tiles - t0) : per_task;
    int count_pad = (count + nr - 1) / nr * nr;
    float *vp = job->cc->scratch + (size_t)thread * job->cc->scratch_floats; /* points x [strips][ci][nr] */
    float *mb = vp + f->points * point_stride((size_t)ci * per_task);       /* points x [co][per_task] */
    size_t v_per_xi = point_stride((size_t)ci * count_pad), m_per_xi = point_stride((size_t)co * per_task);
    float d[36 * MAX_LANES];

    /* input transform, a strip of nr tiles at a time, into packed B panels; channel by channel,
     * so that the input is read in order (the strips of one channel are neighbouring rows of
     * its plane; the next channel's plane is n * h * w floats away, where the hardware's
     * prefetcher cannot follow: strip by strip, every gather began with cache misses) */
    for (int c = 0; c < ci; c++)
        for (int s = 0; s < count_pad; s += nr) {
            gather_input(k, f, d, nr, job->x + (long)c * job->n * hw, t0 + s, t0 + count, job->h, job->wd);
            k->winograd_input(f->m, vp + (size_t)s * ci + (size_t)c * nr, (long)v_per_xi, d, nr);
        }

    /* a GEMM per point: M_xi[co][tile] = U_xi[co][c] V_xi[c][tile], K = ci in blocks of kc */
    float tile_buffer[32 * 32];
    for (int xi = 0; xi < f->points; xi++) {
        const float *u = job->u + (size_t)xi * job->u_stride, *vv = vp + (size_t)xi * v_per_xi;
        float *m = mb + (size_t)xi * m_per_xi;
        for (int pc = 0; pc < ci; pc += v->kc) {
            int kc = ci - pc < v->kc ? ci - pc : v->kc;
            for (int jr = 0; jr < count_pad; jr += nr) {
                const float *b_panel = vv + (size_t)jr * ci + (size_t)pc * nr;
                int cols = count - jr < nr ? count - jr : nr;
                for (int ir = 0; ir < co; ir += mr) {
                    const float *a_panel = u + (size_t)ir * ci + (size_t)pc * mr;
                    int rows = co - ir < mr ? co - ir : mr;
                    float *c = m + (size_t)ir * per_task + jr;
                    if (rows == mr && cols == nr) {
                        v->microkernel(kc, a_panel, b_panel, c, per_task, pc > 0);
                    } else {
                        v->microkernel(kc, a_panel, b_panel, tile_buffer, nr, 0);
                        for (int r = 0; r < rows; r++)
                            for (int q = 0; q < cols; q++)
                                c[(size_t)r * per_task + q] = pc > 0 ? c[(size_t)r * per_task + q] + tile_buffer[r * nr + q]
                                                                    : tile_buffer[r * nr + q];
                    }
                }
            }
        }
    }

    /* output transform, plus the bias */
    for (int o = 0; o < co; o++) {
        float bias = job->bias ? job->bias[o] : 0.0f;
        for (int j = 0; j < count; j += MAX_LANES) {
            int lanes = count - j < MAX_LANES ? count - j : MAX_LANES;
            k->winograd_output(f->m, d, mb + (size_t)o * per_task + j, (long)m_per_xi, lanes);
            move_outputs(k, f, d, lanes, job->y + (long)o * job->n * hw, t0 + j, job->h, job->wd, bias, 0);
        }
    }
}

int q4_conv3x3_winograd(const q4_compute *cc, float *y, const float *x, const float *w, const float *bias, int n,
                        int ci, int co, int h, int wd, int m) {
    const q4_gemm_variant *v = cc->kernels->gemm;
    const form *f = v->nr > MAX_LANES ? NULL : form_of(m);
    int co_pad = (co + v->mr - 1) / v->mr * v->mr, per_task = f ? tiles_per_task(v, f) : 0;
    size_t u_stride = f ? point_stride((size_t)co_pad * ci) : 0;
    if (!f || !cc->shared || f->points * u_stride > cc->shared_floats ||
        f->points * (point_stride((size_t)per_task * ci) + point_stride((size_t)per_task * co)) > cc->scratch_floats)
        return 0;
    winograd_job job = {cc, f, y, x, w, bias, n, ci, co, h, wd, (long)n * (h / f->m) * (wd / f->m), co_pad, per_task,
                        cc->shared, u_stride};
    q4_pool_run(cc->pool, co_pad, weight_task, &job);
    int tasks = (int)((job.tiles + per_task - 1) / per_task);
    q4_pool_run(cc->pool, tasks, tile_task, &job);
    return 1;
}

/* ------------------------------------------------------------ backward to the weights */

typedef struct gradient_job {
    const q4_compute *cc;
    const form *f;
    float *dw;
    const float *dy, *x;
    int n, ci, co, h, wd;  /* n: images per channel plane of dy and x (their stride) */
    long t0, count, chunk; /* this chunk's tiles; rows of dm and vt are `chunk` long */
    float *du, *dm, *vt;   /* points x [co][ci], points x [co][chunk], points x [ci][chunk] */
    size_t du_stride, dm_stride, vt_stride; /* from one point's matrix to the next: point_stride */
} gradient_job;

/* task < co: dM of output channel `task`; otherwise V of input channel task - co */
static void gradient_transform_task(void *context, int task, int thread) {
    (void)thread;
    const gradient_job *job = context;
    const form *f = job->f;
    const q4_kernels *k = job->cc->kernels;
    const long hw = (long)job->h * job->wd;
    float d[36 * MAX_LANES];
    for (long j = 0; j < job->count; j += MAX_LANES) {
        int lanes = job->count - j < MAX_LANES ? (int)(job->count - j) : MAX_LANES;
        if (task < job->co) {
            move_outputs(k, f, d, lanes, (float *)job->dy + (long)task * job->n * hw, job->t0 + j, job->h, job->wd, 0, 1);
            k->winograd_gradient(f->m, job->dm + (size_t)task * job->chunk + j, (long)job->dm_stride, d, lanes);
        } else {
            int c = task - job->co;
            gather_input(k, f, d, lanes, job->x + (long)c * job->n * hw, job->t0 + j, job->t0 + job->count, job->h,
                         job->wd);
            k->winograd_input(f->m, job->vt + (size_t)c * job->chunk + j, (long)job->vt_stride, d, lanes);
        }
    }
}

/* dU_xi[co][ci] (+)= dM_xi[co][tiles] V_xi[ci][tiles]^T for point xi, on this thread alone
 * (the GEMM's summation order does not depend on how its work is split) */
static void gradient_gemm_task(void *context, int xi, int thread) {
    const gradient_job *job = context;
    const int co = job->co, ci = job->ci;
    q4_compute alone = *job->cc;
    alone.pool = NULL;
    alone.scratch = job->cc->scratch + (size_t)thread * job->cc->scratch_floats;
    alone.shared = alone.winograd = NULL;
    alone.shared_floats = alone.winograd_floats = 0;
    q4_operand A = q4_dense(job->dm + (size_t)xi * job->dm_stride, job->chunk, 1);
    q4_operand B = q4_dense(job->vt + (size_t)xi * job->vt_stride, 1, job->chunk);
    q4_gemm(&alone, co, ci, (int)job->count, &A, &B, job->du + (size_t)xi * job->du_stride, ci, job->t0 > 0);
}

/* dg = G^T dU G for output channel o, all input channels */
static void gradient_weight_task(void *context, int o, int thread) {
    (void)thread;
    const gradient_job *job = context;
    for (int i = 0; i < job->ci; i++)
        transform_weight_gradient(job->f, job->dw + ((size_t)o * job->ci + i) * 9,
                                  job->du + (size_t)o * job->ci + i, job->du_stride);
}

int q4_conv3x3_winograd_backward_weights(const q4_compute *cc, float *dw, const float *dy, const float *x, int n,
                                         int ci, int co, int h, int wd, int m) {
    return q4_conv3x3_winograd_backward_weights_strided(cc, dw, dy, x, n, n, ci, co, h, wd, m);
}

int q4_conv3x3_winograd_backward_weights_strided(const q4_compute *cc, float *dw, const float *dy, const float *x,
                                                 int n, int count, int ci, int co, int h, int wd, int m) {
    const form *f = cc->kernels->gemm->nr > MAX_LANES ? NULL : form_of(m);
    if (!f || !cc->winograd) return 0;
    long tiles = (long)count * (h / f->m) * (wd / f->m), chunk = gradient_chunk(f, ci, co);
    size_t du_stride = point_stride((size_t)co * ci), dm_stride = point_stride((size_t)co * chunk),
           vt_stride = point_stride((size_t)ci * chunk);
    if (f->points * (du_stride + dm_stride + vt_stride) > cc->winograd_floats) return 0;
    float *du = cc->winograd, *dm = du + f->points * du_stride, *vt = dm + f->points * dm_stride;
    gradient_job job = {cc, f, dw, dy, x, n, ci, co, h, wd, 0, 0, chunk, du, dm, vt, du_stride, dm_stride, vt_stride};
    for (long t0 = 0; t0 < tiles; t0 += chunk) {
        job.t0 = t0;
        job.count = tiles - t0 < chunk ? tiles - t0 : chunk;
        q4_pool_run(cc->pool, co + ci, gradient_transform_task, &job);
        q4_pool_run(cc->pool, f->points, gradient_gemm_task, &job);
    }
    q4_pool_run(cc->pool, co, gradient_weight_task, &job);
    return 1;
}
