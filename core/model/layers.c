/* layers.c - BatchNorm+ReLU, max pooling, dropout, flatten and the loss, each as a
 * forward/backward pair calling the kernel table; parallel over channels only. */
#include "layers.h"

#include <math.h>
#include <string.h>

#include "../util/exactmath.h"
#include "../util/util.h"

/* ------------------------------------------------------------ BatchNorm + ReLU */

typedef struct bn_job {
    const q4_compute *cc;
    const q4_batchnorm *bn;
    float *out;
    float *y;        /* backward: in y, out dy */
    const float *in; /* forward input */
    const float *da;
    long plane, segment; /* segment: values per channel of one micro-batch (its sums added in order) */
    int train;
} bn_job;

/* the length of the micro-batch segment of a channel's plane that starts at `at` */
static long seg_len(const bn_job *job, long at) { return job->plane - at < job->segment ? job->plane - at : job->segment; }

static void bn_forward_task(void *context, int c, int thread) {
    (void)thread;
    const bn_job *job = context;
    const q4_batchnorm *bn = job->bn;
    const q4_kernels *k = job->cc->kernels;
    const float *y = job->in + (long)c * job->plane;
    float mean, invstd;
    if (job->train) {
        /* batch statistics accumulated in double, as PyTorch's CPU kernel does */
        double n = (double)job->plane, mu, var_sum = 0.0;
        if (job->segment >= job->plane) {
            mu = k->sum(y, job->plane) / n;
            var_sum = k->centered_sum_squares(y, job->plane, mu);
        } else { /* per micro-batch, added in micro-batch order */
            double total = 0.0;
            for (long at = 0; at < job->plane; at += job->segment)
                total = at ? total + k->sum(y + at, seg_len(job, at)) : k->sum(y, seg_len(job, at));
            mu = total / n;
            for (long at = 0; at < job->plane; at += job->segment) {
                double part = k->centered_sum_squares(y + at, seg_len(job, at), mu);
                var_sum = at ? var_sum + part : part;
            }
        }
        double inv = 1.0 / sqrt(var_sum / n + (double)Q4_BN_EPS);
        double unbiased = job->plane > 1 ? var_sum / (n - 1.0) : var_sum;
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

void q4_batchnorm_relu_forward(const q4_compute *cc, float *out, const float *y, long plane, long segment, int train,
                               const q4_batchnorm *bn) {
    bn_job job = {cc, bn, out, NULL, y, NULL, plane, segment > 0 && segment < plane ? segment : plane, train};
    q4_pool_run(cc->pool, bn->channels, bn_forward_task, &job);
}

static void bn_reapply_task(void *context, int c, int thread) {
    (void)thread;
    const bn_job *job = context;
    job->cc->kernels->affine_relu(job->out + (long)c * job->plane, job->in + (long)c * job->plane, job->plane,
                                  job->bn->scale[c], job->bn->shift[c]);
}

void q4_batchnorm_relu_reapply(const q4_compute *cc, float *out, const float *y, long plane, const q4_batchnorm *bn) {
    bn_job job = {cc, bn, out, NULL, y, NULL, plane, plane, 0};
    q4_pool_run(cc->pool, bn->channels, bn_reapply_task, &job);
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
    if (job->segment >= job->plane) {
        k->affine_relu_backward_sums(sums, da, y, job->plane, scale, shift, mean, invstd);
    } else { /* per micro-batch from zero, added in micro-batch order */
        for (long at = 0; at < job->plane; at += job->segment) {
            double part[2] = {0.0, 0.0};
            k->affine_relu_backward_sums(part, da + at, y + at, seg_len(job, at), scale, shift, mean, invstd);
            sums[0] = at ? sums[0] + part[0] : part[0];
            sums[1] = at ? sums[1] + part[1] : part[1];
        }
    }
    bn->dgamma[c] = (float)sums[1]; /* sum dz * xhat */
    bn->dbeta[c] = (float)sums[0];  /* sum dz */
    double n = (double)job->plane;
    k->affine_relu_backward_apply(y, da, y, job->plane, scale, shift, mean, invstd, bn->gamma[c] * invstd,
                                  (float)(sums[0] / n), (float)(sums[1] / n));
}

void q4_batchnorm_relu_backward(const q4_compute *cc, float *y_to_dy, const float *da, long plane, long segment,
                                const q4_batchnorm *bn) {
    bn_job job = {cc, bn, NULL, y_to_dy, NULL, da, plane, segment > 0 && segment < plane ? segment : plane, 1};
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

void q4_dropout_mask(float *mask, long count, float p, uint64_t seed, long long step) {
    float keep = 1.0f - p, scale = 1.0f / keep;
    for (long i = 0; i < count; i++) {
        double u = q4_random_unit(q4_random(seed, Q4_STREAM_DROPOUT, (uint64_t)step, (uint64_t)i));
        mask[i] = u < keep ? scale : 0.0f;
    }
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

double q4_softmax_cross_entropy(float *dlogits, const float *logits, const uint8_t *labels, int classes, int n,
                                int micro, float smoothing, int exact, int *correct, uint8_t *predictions) {
    double (*exp_fn)(double) = exact ? q4_exact_exp : exp, (*log_fn)(double) = exact ? q4_exact_log : log;
    int right = 0;
    if (micro <= 0 || micro > n) micro = n;
    double total = 0.0, part = 0.0, spread = (double)smoothing / classes, keep = 1.0 - (double)smoothing;
    for (int b = 0; b < n; b++) {
        float best = logits[b];
        int arg = 0;
        for (int c = 1; c < classes; c++)
            if (logits[(long)c * n + b] > best) {
                best = logits[(long)c * n + b];
                arg = c;
            }
        double sum = 0.0;
        for (int c = 0; c < classes; c++) sum += exp_fn((double)logits[(long)c * n + b] - best);
        double log_sum = log_fn(sum) + best;
        if (smoothing == 0.0f) {
            part += log_sum - logits[(long)labels[b] * n + b];
        } else {
            double mean_logit = 0.0;
            for (int c = 0; c < classes; c++) mean_logit += logits[(long)c * n + b];
            part += log_sum - keep * logits[(long)labels[b] * n + b] - (double)smoothing * mean_logit / classes;
        }
        if ((b + 1) % micro == 0 || b + 1 == n) { /* a micro-batch's sum, added in micro-batch order */
            total = b < micro ? part : total + part;
            part = 0.0;
        }
        if (dlogits)
            for (int c = 0; c < classes; c++) {
                double p = exp_fn((double)logits[(long)c * n + b] - log_sum);
                double target = smoothing == 0.0f ? (c == labels[b] ? 1.0 : 0.0) : (c == labels[b] ? keep : 0.0) + spread;
                dlogits[(long)c * n + b] = (float)((p - target) / n);
            }
        if (arg == labels[b]) right++;
        if (predictions) predictions[b] = (uint8_t)arg;
    }
    if (correct) *correct = right;
    return total / n;
}
