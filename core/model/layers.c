/* layers.c - BatchNorm+ReLU, max pooling, dropout, flatten and the loss, each as a
 * forward/backward pair calling the kernel table; parallel over channels only. */
#include "layers.h"

#include <math.h>
#include <string.h>

#include "../util/exactmath.h"
#include "../util/util.h"

/* ------------------------------------------------------------ micro-batches */

void q4_micro_share(int micro_total, int processes, int rank, int *first, int *held) {
    if (processes < 1) processes = 1;
    long begin = (long)rank * micro_total / processes, end = (long)(rank + 1) * micro_total / processes;
    *first = (int)begin;
    *held = (int)(end - begin);
}

void q4_micro_plan(q4_micro *mc, int size, int images, const q4_combiner *combiner) {
    mc->size = size > 0 && size < images ? size : 0;
    mc->images = images;
    mc->combiner = combiner;
    mc->total = mc->size ? (images + mc->size - 1) / mc->size : 1;
    if (combiner) q4_micro_share(mc->total, combiner->processes, combiner->rank, &mc->first, &mc->held);
    else mc->first = 0, mc->held = mc->total;
    if (combiner && !mc->size) mc->size = images; /* one micro-batch, held by one process */
}

int q4_micro_images(const q4_micro *mc, int *first_image) {
    if (!mc->size) {
        if (first_image) *first_image = 0;
        return mc->images;
    }
    long first = (long)mc->first * mc->size, end = (long)(mc->first + mc->held) * mc->size;
    if (end > mc->images) end = mc->images;
    if (first_image) *first_image = (int)first;
    return end > first ? (int)(end - first) : 0;
}

/* values per channel of held micro-batch j, whose channel run starts at j * size * per_image */
static long micro_len(const q4_micro *mc, int j, long plane, long per_image) {
    long at = (long)j * mc->size * per_image;
    return plane - at < (long)mc->size * per_image ? plane - at : (long)mc->size * per_image;
}

/* every process's rows made known to all (alone: it holds them all already) */
static void micro_gather(const q4_micro *mc, double *rows, long row_values) {
    if (mc->combiner) mc->combiner->gather(mc->combiner->context, rows, row_values, mc->total);
}

/* value `at` of every micro-batch's row added in micro-batch order */
static double micro_fold(const q4_micro *mc, const double *rows, long row_values, long at) {
    double total = rows[at];
    for (int j = 1; j < mc->total; j++) total += rows[(long)j * row_values + at];
    return total;
}

/* ------------------------------------------------------------ BatchNorm + ReLU */

typedef struct bn_job {
    const q4_compute *cc;
    const q4_batchnorm *bn;
    const q4_micro *micro; /* NULL or size 0: the plane's sums at once */
    float *out;
    float *y;        /* backward: in y, out dy */
    const float *in; /* forward input */
    const float *da;
    long plane, per_image; /* values per channel held here; of one image */
    double count;          /* values per channel in the whole batch (all processes) */
    int train;
} bn_job;

static int split(const bn_job *job) { return job->micro && job->micro->size; }

/* the rows of micro-batch sums: [total][channels] per value kind (forward: sums, then centered squares) */
static double *rows_of(const bn_job *job, int kind) {
    return job->micro->sums + (long)kind * job->micro->total * job->bn->channels;
}

static void bn_sum_task(void *context, int c, int thread) { /* forward, phase 1: each held micro-batch's sum */
    (void)thread;
    const bn_job *job = context;
    const q4_micro *mc = job->micro;
    const float *y = job->in + (long)c * job->plane;
    double *rows = rows_of(job, 0);
    for (int j = 0; j < mc->held; j++)
        rows[(long)(mc->first + j) * job->bn->channels + c] =
            job->cc->kernels->sum(y + (long)j * mc->size * job->per_image, micro_len(mc, j, job->plane, job->per_image));
}

static void bn_squares_task(void *context, int c, int thread) { /* phase 2: the centered squares, per micro-batch */
    (void)thread;
    const bn_job *job = context;
    const q4_micro *mc = job->micro;
    const float *y = job->in + (long)c * job->plane;
    double mu = micro_fold(mc, rows_of(job, 0), job->bn->channels, c) / job->count, *rows = rows_of(job, 1);
    for (int j = 0; j < mc->held; j++)
        rows[(long)(mc->first + j) * job->bn->channels + c] = job->cc->kernels->centered_sum_squares(
            y + (long)j * mc->size * job->per_image, micro_len(mc, j, job->plane, job->per_image), mu);
}

static void bn_forward_task(void *context, int c, int thread) {
    (void)thread;
    const bn_job *job = context;
    const q4_batchnorm *bn = job->bn;
    const q4_kernels *k = job->cc->kernels;
    const float *y = job->in + (long)c * job->plane;
    float mean, invstd;
    if (job->train) {
        /* batch statistics accumulated in double, as PyTorch's CPU kernel does */
        double n = job->count, mu, var_sum;
        if (!split(job)) {
            mu = k->sum(y, job->plane) / n;
            var_sum = k->centered_sum_squares(y, job->plane, mu);
        } else { /* the micro-batches' sums, added in micro-batch order */
            mu = micro_fold(job->micro, rows_of(job, 0), bn->channels, c) / n;
            var_sum = micro_fold(job->micro, rows_of(job, 1), bn->channels, c);
        }
        double inv = 1.0 / sqrt(var_sum / n + (double)Q4_BN_EPS);
        double unbiased = n > 1 ? var_sum / (n - 1.0) : var_sum;
        bn->running_mean[c] = (float)(bn->momentum * mu + (1.0 - bn->momentum) * bn->running_mean[c]);
        bn->running_var[c] = (float)(bn->momentum * unbiased + (1.0 - bn->momentum) * bn->running_var[c]);
        mean = (float)mu;
        invstd = (float)inv;
    } else {
        mean = bn->running_mean[c];
        invstd = (float)(1.0 / sqrt((double)bn->running_var[c] + (double)Q4_BN_EPS));
    }
    float scale = bn->gamma[c] * invstd;
    float shift = bn->beta[c] - mean * scale;
    bn->mean[c] = mean;
    bn->invstd[c] = invstd;
    bn->scale[c] = scale;
    bn->shift[c] = shift;
    k->affine_relu(job->out + (long)c * job->plane, y, job->plane, scale, shift);
}

void q4_batchnorm_relu_forward(const q4_compute *cc, float *out, const float *y, long plane, long per_image, int train,
                               const q4_micro *micro, const q4_batchnorm *bn) {
    bn_job job = {cc, bn, micro, out, NULL, y, NULL, plane, per_image, (double)plane, train};
    if (train && split(&job)) {
        job.count = (double)micro->images * per_image;
        q4_pool_run(cc->pool, bn->channels, bn_sum_task, &job);
        micro_gather(micro, rows_of(&job, 0), bn->channels);
        q4_pool_run(cc->pool, bn->channels, bn_squares_task, &job);
        micro_gather(micro, rows_of(&job, 1), bn->channels);
    }
    q4_pool_run(cc->pool, bn->channels, bn_forward_task, &job);
}

static void bn_reapply_task(void *context, int c, int thread) {
    (void)thread;
    const bn_job *job = context;
    job->cc->kernels->affine_relu(job->out + (long)c * job->plane, job->in + (long)c * job->plane, job->plane,
                                  job->bn->scale[c], job->bn->shift[c]);
}

void q4_batchnorm_relu_reapply(const q4_compute *cc, float *out, const float *y, long plane, const q4_batchnorm *bn) {
    bn_job job = {cc, bn, NULL, out, NULL, y, NULL, plane, 1, (double)plane, 0};
    q4_pool_run(cc->pool, bn->channels, bn_reapply_task, &job);
}

static void bn_backward_sums_task(void *context, int c, int thread) { /* phase 1: each held micro-batch's two sums */
    (void)thread;
    const bn_job *job = context;
    const q4_batchnorm *bn = job->bn;
    const q4_micro *mc = job->micro;
    const float *y = job->y + (long)c * job->plane, *da = job->da + (long)c * job->plane;
    double *rows = mc->sums;
    for (int j = 0; j < mc->held; j++) {
        long at = (long)j * mc->size * job->per_image;
        double part[2] = {0.0, 0.0};
        job->cc->kernels->affine_relu_backward_sums(part, da + at, y + at, micro_len(mc, j, job->plane, job->per_image),
                                                    bn->scale[c], bn->shift[c], bn->mean[c], bn->invstd[c]);
        double *row = rows + (long)(mc->first + j) * 2 * bn->channels + 2 * c;
        row[0] = part[0];
        row[1] = part[1];
    }
}

static void bn_backward_task(void *context, int c, int thread) {
    (void)thread;
    const bn_job *job = context;
    const q4_batchnorm *bn = job->bn;
    const q4_kernels *k = job->cc->kernels;
    float *y = job->y + (long)c * job->plane;
    const float *da = job->da + (long)c * job->plane;
    float scale = bn->scale[c], shift = bn->shift[c], mean = bn->mean[c], invstd = bn->invstd[c];
    double sums[2] = {0.0, 0.0};
    if (!split(job)) {
        k->affine_relu_backward_sums(sums, da, y, job->plane, scale, shift, mean, invstd);
    } else { /* the micro-batches' sums, added in micro-batch order */
        sums[0] = micro_fold(job->micro, job->micro->sums, 2 * bn->channels, 2 * c);
        sums[1] = micro_fold(job->micro, job->micro->sums, 2 * bn->channels, 2 * c + 1);
    }
    bn->dgamma[c] = (float)sums[1]; /* sum dz * xhat */
    bn->dbeta[c] = (float)sums[0];  /* sum dz */
    double n = job->count;
    k->affine_relu_backward_apply(y, da, y, job->plane, scale, shift, mean, invstd, bn->gamma[c] * invstd,
                                  (float)(sums[0] / n), (float)(sums[1] / n));
}

void q4_batchnorm_relu_backward(const q4_compute *cc, float *y_to_dy, const float *da, long plane, long per_image,
                                const q4_micro *micro, const q4_batchnorm *bn) {
    bn_job job = {cc, bn, micro, NULL, y_to_dy, NULL, da, plane, per_image, (double)plane, 1};
    if (split(&job)) {
        job.count = (double)micro->images * per_image;
        q4_pool_run(cc->pool, bn->channels, bn_backward_sums_task, &job);
        micro_gather(micro, micro->sums, 2 * bn->channels);
    }
    q4_pool_run(cc->pool, bn->channels, bn_backward_task, &job);
}

/* ------------------------------------------------------------ max pooling */

typedef struct bn_pool_job {
    const q4_compute *cc;
    const q4_batchnorm *bn;
    float *out;
    const float *y;
    int n, size;
} bn_pool_job;

static void bn_pool_task(void *context, int c, int thread) {
    const bn_pool_job *job = context;
    const q4_kernels *k = job->cc->kernels;
    float *plane = job->cc->scratch + (size_t)thread * job->cc->scratch_floats; /* no GEMM runs now */
    long in_plane = (long)job->size * job->size;
    for (int b = 0; b < job->n; b++) {
        long at = (long)c * job->n + b;
        k->affine_relu(plane, job->y + at * in_plane, in_plane, job->bn->scale[c], job->bn->shift[c]);
        k->maxpool2_forward(job->out + at * (in_plane / 4), plane, 1, job->size, job->size);
    }
}

void q4_batchnorm_relu_maxpool(const q4_compute *cc, float *out, const float *y, int n, int size,
                               const q4_batchnorm *bn) {
    bn_pool_job job = {cc, bn, out, y, n, size};
    q4_pool_run(cc->pool, bn->channels, bn_pool_task, &job);
}

typedef struct pool_job {
    const q4_compute *cc;
    float *a, *out;
    const float *dout;
    int n, size;
} pool_job;

static void pool_forward_task(void *context, int c, int thread) {
    (void)thread;
    const pool_job *job = context;
    long in_plane = (long)job->size * job->size, first = (long)c * job->n;
    job->cc->kernels->maxpool2_forward(job->out + first * (in_plane / 4), job->a + first * in_plane, job->n, job->size,
                                       job->size);
}

static void pool_backward_task(void *context, int c, int thread) {
    (void)thread;
    const pool_job *job = context;
    long in_plane = (long)job->size * job->size, first = (long)c * job->n;
    job->cc->kernels->maxpool2_backward(job->a + first * in_plane, job->dout + first * (in_plane / 4), job->n,
                                        job->size, job->size);
}

void q4_maxpool2_forward(const q4_compute *cc, float *out, const float *a, int channels, int n, int size) {
    pool_job job = {cc, (float *)a, out, NULL, n, size};
    q4_pool_run(cc->pool, channels, pool_forward_task, &job);
}

void q4_maxpool2_backward(const q4_compute *cc, float *a_to_da, const float *dout, int channels, int n, int size) {
    pool_job job = {cc, a_to_da, NULL, dout, n, size};
    q4_pool_run(cc->pool, channels, pool_backward_task, &job);
}

/* ------------------------------------------------------------ dropout, flatten, loss */

void q4_dropout_mask_images(float *mask, int units, int n, int first, int images, float p, uint64_t seed,
                            long long step) {
    float keep = 1.0f - p, scale = 1.0f / keep;
    for (int u = 0; u < units; u++)
        for (int b = 0; b < n; b++) {
            uint64_t i = (uint64_t)u * (uint64_t)images + (uint64_t)(first + b); /* its place in the whole batch */
            double r = q4_random_unit(q4_random(seed, Q4_STREAM_DROPOUT, (uint64_t)step, i));
            mask[(long)u * n + b] = r < keep ? scale : 0.0f;
        }
}

void q4_dropout_mask(float *mask, long count, float p, uint64_t seed, long long step) {
    q4_dropout_mask_images(mask, 1, (int)count, 0, (int)count, p, seed, step);
}

void q4_dropout_apply(float *x, const float *mask, long count) {
    for (long i = 0; i < count; i++) x[i] *= mask[i];
}

void q4_flatten(float *out, const float *in, int channels, int n, int positions) {
    for (int c = 0; c < channels; c++)
        for (int b = 0; b < n; b++)
            for (int p = 0; p < positions; p++)
                out[((long)c * positions + p) * n + b] = in[((long)c * n + b) * positions + p];
}

void q4_unflatten(float *out, const float *in, int channels, int n, int positions) {
    for (int c = 0; c < channels; c++)
        for (int b = 0; b < n; b++)
            for (int p = 0; p < positions; p++)
                out[((long)c * n + b) * positions + p] = in[((long)c * positions + p) * n + b];
}

/* image b's loss; its dlogits (d loss / d logits divided by `scale_n`) when dlogits is not NULL;
 * its prediction (the first maximum) in *arg */
static double image_loss(float *dlogits, const float *logits, const uint8_t *labels, int classes, int n, int b,
                         double scale_n, float smoothing, int exact, int *arg) {
    double (*exp_fn)(double) = exact ? q4_exact_exp : exp, (*log_fn)(double) = exact ? q4_exact_log : log;
    double spread = (double)smoothing / classes, keep = 1.0 - (double)smoothing, loss;
    float best = logits[b];
    *arg = 0;
    for (int c = 1; c < classes; c++)
        if (logits[(long)c * n + b] > best) {
            best = logits[(long)c * n + b];
            *arg = c;
        }
    double sum = 0.0;
    for (int c = 0; c < classes; c++) sum += exp_fn((double)logits[(long)c * n + b] - best);
    double log_sum = log_fn(sum) + best;
    if (smoothing == 0.0f) {
        loss = log_sum - logits[(long)labels[b] * n + b];
    } else {
        double mean_logit = 0.0;
        for (int c = 0; c < classes; c++) mean_logit += logits[(long)c * n + b];
        loss = log_sum - keep * logits[(long)labels[b] * n + b] - (double)smoothing * mean_logit / classes;
    }
    if (dlogits)
        for (int c = 0; c < classes; c++) {
            double p = exp_fn((double)logits[(long)c * n + b] - log_sum);
            double target = smoothing == 0.0f ? (c == labels[b] ? 1.0 : 0.0) : (c == labels[b] ? keep : 0.0) + spread;
            dlogits[(long)c * n + b] = (float)((p - target) / scale_n);
        }
    return loss;
}

double q4_softmax_cross_entropy(float *dlogits, const float *logits, const uint8_t *labels, int classes, int n,
                                int micro, float smoothing, int exact, int *correct, uint8_t *predictions) {
    int right = 0;
    if (micro <= 0 || micro > n) micro = n;
    double total = 0.0, part = 0.0;
    for (int b = 0; b < n; b++) {
        int arg;
        part += image_loss(dlogits, logits, labels, classes, n, b, n, smoothing, exact, &arg);
        if ((b + 1) % micro == 0 || b + 1 == n) { /* a micro-batch's sum, added in micro-batch order */
            total = b < micro ? part : total + part;
            part = 0.0;
        }
        if (arg == labels[b]) right++;
        if (predictions) predictions[b] = (uint8_t)arg;
    }
    if (correct) *correct = right;
    return total / n;
}

double q4_softmax_cross_entropy_micro(float *dlogits, const float *logits, const uint8_t *labels, int classes, int n,
                                      const q4_micro *mc, float smoothing, int exact, int *correct, uint8_t *predictions) {
    double *rows = mc->sums; /* per micro-batch: the loss sum, the correct count */
    for (int j = 0; j < mc->held; j++) {
        double part = 0.0;
        int right = 0, end = (j + 1) * mc->size < n ? (j + 1) * mc->size : n;
        for (int b = j * mc->size; b < end; b++) {
            int arg;
            part += image_loss(dlogits, logits, labels, classes, n, b, mc->images, smoothing, exact, &arg);
            if (arg == labels[b]) right++;
            if (predictions) predictions[b] = (uint8_t)arg;
        }
        rows[2L * (mc->first + j)] = part;
        rows[2L * (mc->first + j) + 1] = right;
    }
    micro_gather(mc, rows, 2);
    if (correct) *correct = (int)micro_fold(mc, rows, 2, 1);
    return micro_fold(mc, rows, 2, 0) / mc->images;
}
