/* gemm.c - the blocked, threaded GEMM driver (BLIS-style loops and packing) behind every
 * convolution and linear layer. It is ISA-neutral: the register-tile microkernel comes
 * from the variant table. Work is split over output tiles only, and every output element
 * is summed in the same order whatever the split, so results never depend on threads. */
#include <string.h>

#include "../kernels.h"

size_t q4_gemm_scratch_floats(const q4_gemm_variant *v) {
    size_t a = (size_t)v->mc * v->kc, b = (size_t)v->kc * v->nc, tile = (size_t)v->mr * v->nr;
    /* each block rounded to 64 bytes so the next one stays aligned */
    return ((a + 15) & ~(size_t)15) + ((b + 15) & ~(size_t)15) + ((tile + 15) & ~(size_t)15);
}

/* ------------------------------------------------------------ im2col geometry helpers */

/* Writes `count` values of the patch row (channel plane `plane`, tap dy, dx) for output
 * pixels (y, x0 .. x0+count-1) of one image, to dest[0], dest[stride], ... */
static void copy_shifted_row(float *dest, long stride, const float *plane, int y, int x0, int count,
                             int dy, int dx, int h, int w) {
    int sy = y + dy;
    if (sy < 0 || sy >= h) {
        for (int i = 0; i < count; i++) dest[i * stride] = 0.0f;
        return;
    }
    const float *row = plane + (long)sy * w;
    int i = 0;
    /* left border: source x = x0 + i + dx < 0 */
    for (; i < count && x0 + i + dx < 0; i++) dest[i * stride] = 0.0f;
    int end = count;
    if (x0 + end + dx > w) end = w - dx - x0;
    if (end < i) end = i;
    if (stride == 1) {
        memcpy(dest + i, row + x0 + i + dx, (size_t)(end - i) * sizeof(float));
    } else {
        for (int k = i; k < end; k++) dest[k * stride] = row[x0 + k + dx];
    }
    for (i = end; i < count; i++) dest[i * stride] = 0.0f;
}

/* Patch-matrix column range [j, j + count) walked in row segments: calls copy for each. */
static void copy_im2col_columns(float *dest, long stride, const q4_operand *op, int channel, int ky,
                                int kx, long j, long count) {
    int h = op->height, w = op->width;
    long hw = (long)h * w;
    long image = j / hw, rem = j % hw;
    int y = (int)(rem / w), x = (int)(rem % w);
    while (count > 0) {
        int run = w - x;
        if (run > count) run = (int)count;
        const float *plane = op->data + ((long)channel * op->images + image) * hw;
        copy_shifted_row(dest, stride, plane, y, x, run, ky - 1, kx - 1, h, w);
        dest += run * stride;
        count -= run;
        x = 0;
        if (++y == h) {
            y = 0;
            image++;
        }
    }
}

/* ------------------------------------------------------------ packing */

/* A block rows [i0, i0+mc) x cols [p0, p0+kc) into strips of mr rows: out[s][p][r]. */
static void pack_a(const q4_gemm_variant *v, float *out, const q4_operand *A, int M, int i0, int mc, int p0, int kc) {
    int mr = v->mr;
    for (int s = 0; s < mc; s += mr) {
        float *panel = out + (long)s * kc;
        int rows = M - (i0 + s) < mr ? M - (i0 + s) : mr;
        if (rows < 0) rows = 0;
        if (A->kind == Q4_DENSE && A->col_stride == 1 && rows > 0 && v->pack_rows &&
            v->pack_rows(panel, A->data + (long)(i0 + s) * A->row_stride + p0, A->row_stride, rows, kc, mr))
            continue;
        for (int r = 0; r < mr; r++) {
            int i = i0 + s + r;
            if (r >= rows) {
                for (int p = 0; p < kc; p++) panel[p * mr + r] = 0.0f;
                continue;
            }
            if (A->kind == Q4_DENSE) {
                const float *src = A->data + (long)i * A->row_stride + (long)p0 * A->col_stride;
                long cs = A->col_stride;
                for (int p = 0; p < kc; p++) panel[p * mr + r] = src[p * cs];
            } else {
                for (int p = 0; p < kc; p++) panel[p * mr + r] = q4_operand_at(A, i, p0 + p);
            }
        }
    }
}

/* One run of `count` output pixels (x0.. of one image row y) of patch row (dy, dx). */
static inline void copy_run(float *dst, const float *plane, int y, int x0, int count, int dy, int dx, int h, int w) {
    int sy = y + dy;
    if (sy < 0 || sy >= h) {
        for (int i = 0; i < count; i++) dst[i] = 0.0f;
        return;
    }
    const float *src = plane + (long)sy * w + x0 + dx;
    if (x0 + dx >= 0 && x0 + count + dx <= w) {
        for (int i = 0; i < count; i++) dst[i] = src[i];
        return;
    }
    for (int i = 0; i < count; i++) {
        int x = x0 + i + dx;
        dst[i] = (x < 0 || x >= w) ? 0.0f : src[i];
    }
}

/* IM2COL B block, walked a tap row at a time in runs of whole image rows (or strips): each
 * run is a contiguous shifted copy. Needs the strips to start at image-row boundaries. */
static int pack_b_im2col_rows(float *out, const q4_operand *B, int N, int p0, int kc, int j0, int nc, int nr) {
    int h = B->height, w = B->width;
    long hw = (long)h * w;
    if (j0 % nr || !(w % nr == 0 || nr % w == 0) || N % (w < nr ? w : nr)) return 0;
    int run = w < nr ? w : nr;
    int end = j0 + nc < N ? j0 + nc : N;
    long image0 = j0 / hw;
    int y0 = (int)(j0 % hw) / w, x00 = (int)(j0 % hw) % w;
    int channel = p0 / 9, tap = p0 % 9;
    for (int p = 0; p < kc; p++) {
        int dy = tap / 3 - 1, dx = tap % 3 - 1;
        const float *planes = B->data + (long)channel * B->images * hw;
        long image = image0;
        int y = y0, x0 = x00;
        for (int j = j0; j < end; j += run) {
            int lane = (j - j0) % nr;
            float *dst = out + (long)((j - j0) / nr) * kc * nr + (long)p * nr + lane;
            copy_run(dst, planes + image * hw, y, x0, run, dy, dx, h, w);
            if ((x0 += run) == w) {
                x0 = 0;
                if (++y == h) {
                    y = 0;
                    image++;
                }
            }
        }
        if ((end - j0) % nr) { /* the last strip's columns beyond N */
            float *dst = out + (long)((end - j0) / nr) * kc * nr + (long)p * nr;
            for (int c = (end - j0) % nr; c < nr; c++) dst[c] = 0.0f;
        }
        if (++tap == 9) {
            tap = 0;
            channel++;
        }
    }
    return 1;
}

/* B block rows [p0, p0+kc) x cols [j0, j0+nc) into strips of nr columns: out[s][p][c]. */
static void pack_b(const q4_gemm_variant *v, float *out, const q4_operand *B, int N, int p0, int kc, int j0, int nc) {
    int nr = v->nr;
    if (B->kind == Q4_IM2COL && v->pack_patch && v->pack_patch(out, B, p0, kc, j0, nc, N, nr)) return;
    if (B->kind == Q4_IM2COL && pack_b_im2col_rows(out, B, N, p0, kc, j0, nc, nr)) return;
    for (int s = 0; s < nc; s += nr) {
        float *panel = out + (long)s * kc;
        int j = j0 + s;
        int valid = N - j < nr ? N - j : nr;
        if (valid < 0) valid = 0;
        if (B->kind == Q4_DENSE) {
            if (B->col_stride == 1) {
                for (int p = 0; p < kc; p++) {
                    const float *src = B->data + (long)(p0 + p) * B->row_stride + j;
                    float *dst = panel + (long)p * nr;
                    for (int c = 0; c < valid; c++) dst[c] = src[c];
                    for (int c = valid; c < nr; c++) dst[c] = 0.0f;
                }
            } else if (valid > 0 && v->pack_rows && B->row_stride == 1 &&
                       v->pack_rows(panel, B->data + (long)j * B->col_stride + p0, B->col_stride, valid, kc, nr)) {
                /* transposed B: its columns are rows in memory */
            } else {
                for (int c = 0; c < nr; c++) {
                    if (c >= valid) {
                        for (int p = 0; p < kc; p++) panel[(long)p * nr + c] = 0.0f;
                        continue;
                    }
                    const float *src = B->data + (long)(j + c) * B->col_stride + (long)p0 * B->row_stride;
                    for (int p = 0; p < kc; p++) panel[(long)p * nr + c] = src[(long)p * B->row_stride];
                }
            }
        } else if (B->kind == Q4_IM2COL) {
            /* rows are taps (channel, ky, kx), columns are output pixels */
            for (int p = 0; p < kc; p++) {
                int k = p0 + p, channel = k / 9, ky = (k % 9) / 3, kx = k % 3;
                float *dst = panel + (long)p * nr;
                copy_im2col_columns(dst, 1, B, channel, ky, kx, j, valid);
                for (int c = valid; c < nr; c++) dst[c] = 0.0f;
            }
        } else { /* Q4_IM2COL_T: rows are output pixels, columns are taps */
            if (valid > 0 && v->pack_patch_t && v->pack_patch_t(panel, B, j, valid, p0, kc, nr)) continue;
            for (int c = 0; c < nr; c++) {
                if (c >= valid) {
                    for (int p = 0; p < kc; p++) panel[(long)p * nr + c] = 0.0f;
                    continue;
                }
                int k = j + c, channel = k / 9, ky = (k % 9) / 3, kx = k % 3;
                copy_im2col_columns(panel + c, nr, B, channel, ky, kx, p0, kc);
            }
        }
    }
}

/* ------------------------------------------------------------ driver */

typedef struct gemm_job {
    const q4_compute *cc;
    int M, N, K;
    const q4_operand *A, *B;
    float *C;
    long ldc;
    int accumulate;
    int split_n;         /* tasks split columns (1) or rows (0) */
    int tiles, tasks;
    const float *a_packed; /* all of A packed once (strip s, block pc at s*K*mr + pc*mr), or NULL */
} gemm_job;

static void gemm_range(const gemm_job *job, int i_begin, int i_end, int j_begin, int j_end, int thread) {
    const q4_gemm_variant *v = job->cc->kernels->gemm;
    const int mr = v->mr, nr = v->nr;
    float *scratch = job->cc->scratch + (size_t)thread * job->cc->scratch_floats;
    size_t a_size = (((size_t)v->mc * v->kc) + 15) & ~(size_t)15;
    size_t b_size = (((size_t)v->kc * v->nc) + 15) & ~(size_t)15;
    float *a_pack = scratch, *b_pack = scratch + a_size, *tile = b_pack + b_size;

    for (int jc = j_begin; jc < j_end; jc += v->nc) {
        int nc = j_end - jc < v->nc ? j_end - jc : v->nc;
        int nc_padded = (nc + nr - 1) / nr * nr;
        for (int pc = 0; pc < job->K; pc += v->kc) {
            int kc = job->K - pc < v->kc ? job->K - pc : v->kc;
            int add = job->accumulate || pc > 0;
            pack_b(v, b_pack, job->B, job->N, pc, kc, jc, nc_padded);
            for (int ic = i_begin; ic < i_end; ic += v->mc) {
                int mc = i_end - ic < v->mc ? i_end - ic : v->mc;
                int mc_padded = (mc + mr - 1) / mr * mr;
                if (!job->a_packed) pack_a(v, a_pack, job->A, job->M, ic, mc_padded, pc, kc);
                for (int jr = 0; jr < nc; jr += nr) {
                    const float *b_panel = b_pack + (long)jr * kc;
                    int cols = nc - jr < nr ? nc - jr : nr;
                    for (int ir = 0; ir < mc; ir += mr) {
                        const float *a_panel = job->a_packed
                                                   ? job->a_packed + (long)(ic + ir) / mr * job->K * mr + (long)pc * mr
                                                   : a_pack + (long)ir * kc;
                        int rows = mc - ir < mr ? mc - ir : mr;
                        float *c = job->C + (long)(ic + ir) * job->ldc + jc + jr;
                        if (rows == mr && cols == nr) {
                            v->microkernel(kc, a_panel, b_panel, c, job->ldc, add);
                        } else {
                            v->microkernel(kc, a_panel, b_panel, tile, nr, 0);
                            for (int r = 0; r < rows; r++)
                                for (int q = 0; q < cols; q++)
                                    c[(long)r * job->ldc + q] = add ? c[(long)r * job->ldc + q] + tile[r * nr + q]
                                                                    : tile[r * nr + q];
                        }
                    }
                }
            }
        }
    }
}

static void gemm_task(void *context, int task, int thread) {
    const gemm_job *job = context;
    const q4_gemm_variant *v = job->cc->kernels->gemm;
    int t0 = (int)((long)task * job->tiles / job->tasks), t1 = (int)((long)(task + 1) * job->tiles / job->tasks);
    if (t0 == t1) return;
    if (job->split_n) {
        int j0 = t0 * v->nr, j1 = t1 * v->nr < job->N ? t1 * v->nr : job->N;
        gemm_range(job, 0, job->M, j0, j1, thread);
    } else {
        int i0 = t0 * v->mr, i1 = t1 * v->mr < job->M ? t1 * v->mr : job->M;
        gemm_range(job, i0, i1, 0, job->N, thread);
    }
}

/* packs row strip `task` of A over all of K into the shared buffer */
static void prepack_task(void *context, int strip, int thread) {
    (void)thread;
    const gemm_job *job = context;
    const q4_gemm_variant *v = job->cc->kernels->gemm;
    float *out = (float *)job->a_packed + (long)strip * job->K * v->mr;
    for (int pc = 0; pc < job->K; pc += v->kc) {
        int kc = job->K - pc < v->kc ? job->K - pc : v->kc;
        pack_a(v, out + (long)pc * v->mr, job->A, job->M, strip * v->mr, v->mr, pc, kc);
    }
}

void q4_gemm(const q4_compute *cc, int M, int N, int K, const q4_operand *A, const q4_operand *B,
             float *C, long ldc, int accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int i = 0; i < M; i++) memset(C + (long)i * ldc, 0, (size_t)N * sizeof(float));
        return;
    }
    const q4_gemm_variant *v = cc->kernels->gemm;
    int m_tiles = (M + v->mr - 1) / v->mr, n_tiles = (N + v->nr - 1) / v->nr;
    int threads = q4_pool_threads(cc->pool);
    gemm_job job = {cc, M, N, K, A, B, C, ldc, accumulate, 1, n_tiles, 1, NULL};
    /* A small enough to pack once for all tasks: split the columns, several tasks per
     * thread so a slowed core does not hold the others up */
    int prepack = cc->shared && A->kind == Q4_DENSE && (size_t)m_tiles * v->mr * K <= cc->shared_floats &&
                  n_tiles >= 2 * threads;
    if (prepack) {
        job.a_packed = cc->shared;
        job.tasks = n_tiles < 4 * threads ? n_tiles : 4 * threads;
        q4_pool_run(cc->pool, m_tiles, prepack_task, &job);
    } else {
        /* otherwise each task packs the operand it shares with the others: split the
         * dimension that makes that operand the smaller one, if it has tiles enough */
        if ((M > N && m_tiles >= threads) || n_tiles < threads) {
            job.split_n = 0;
            job.tiles = m_tiles;
        }
        job.tasks = job.tiles < threads ? job.tiles : threads;
    }
    q4_pool_run(cc->pool, job.tasks, gemm_task, &job);
}
