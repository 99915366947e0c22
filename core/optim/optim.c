/* optim.c - clip, AdamW or SGD, tanh soft clip, and the schedules, over the flat parameter
 * array in fixed chunks so the result never depends on the thread count. */
#include "optim.h"

#include <math.h>

#include "../util/exactmath.h"

#define OPTIM_CHUNK 65536
#define MAX_CHUNKS 128

typedef struct optim_job {
    q4_vgg *m;
    float *moment1, *moment2;
    int chunks;
    int chunk_tensor[MAX_CHUNKS];
    long chunk_begin[MAX_CHUNKS], chunk_end[MAX_CHUNKS]; /* offsets into the parameter array */
    double chunk_sum[MAX_CHUNKS];
    float clip_coefficient;
    /* per parameter group: conv and linear weights; the other biases and the BN scales; the BN shifts */
    q4_adamw_params adam, adam_other, adam_shift;
    q4_sgd_params sgd, sgd_other, sgd_shift;
    int use_sgd;
    int freeze_scales; /* freeze_bn_scale: the BN scales neither count in the clip norm nor move */
    int soft_clip;
    float bound;
} optim_job;

static void make_chunks(optim_job *job) {
    q4_vgg *m = job->m;
    job->chunks = 0;
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        long begin = m->tensors[t].offset, end = begin + m->tensors[t].count;
        for (long b = begin; b < end; b += OPTIM_CHUNK) {
            job->chunk_tensor[job->chunks] = t;
            job->chunk_begin[job->chunks] = b;
            job->chunk_end[job->chunks] = b + OPTIM_CHUNK < end ? b + OPTIM_CHUNK : end;
            job->chunks++;
        }
    }
}

static void sum_squares_task(void *context, int c, int thread) {
    (void)thread;
    optim_job *job = context;
    if (job->freeze_scales && job->m->tensors[job->chunk_tensor[c]].role == Q4_ROLE_BN_GAMMA) {
        job->chunk_sum[c] = 0.0;
        return;
    }
    job->chunk_sum[c] = job->m->kernels.sum_squares(job->m->grads + job->chunk_begin[c],
                                                    job->chunk_end[c] - job->chunk_begin[c]);
}

static void update_task(void *context, int c, int thread) {
    (void)thread;
    optim_job *job = context;
    q4_vgg *m = job->m;
    long b = job->chunk_begin[c], n = job->chunk_end[c] - b;
    int role = m->tensors[job->chunk_tensor[c]].role, weight = role == Q4_ROLE_WEIGHT;
    if (job->freeze_scales && role == Q4_ROLE_BN_GAMMA) return;
    if (job->clip_coefficient < 1.0f) m->kernels.scale(m->grads + b, m->grads + b, n, job->clip_coefficient);
    if (job->use_sgd)
        m->kernels.sgd(m->params + b, m->grads + b, job->moment1 + b, n,
                       weight ? &job->sgd : role == Q4_ROLE_BN_BETA ? &job->sgd_shift : &job->sgd_other);
    else
        m->kernels.adamw(m->params + b, m->grads + b, job->moment1 + b, job->moment2 + b, n,
                         weight ? &job->adam : role == Q4_ROLE_BN_BETA ? &job->adam_shift : &job->adam_other);
    if (job->soft_clip && weight)
        m->kernels.tanh_clip(m->params + b, n, job->bound);
}

double q4_cosine_lr(double base_lr, int epoch, int t_max) {
    const double pi = 3.14159265358979323846;
    return base_lr * (1.0 + cos(pi * (double)epoch / (double)t_max)) / 2.0;
}

double q4_learning_rate(const q4_config *c, int epoch, int step_in_epoch, int steps_per_epoch) {
    if (c->schedule == Q4_SCHEDULE_COSINE && c->exact) {
        const double pi = 3.14159265358979323846;
        return c->learning_rate * (1.0 + q4_exact_cos(pi * (double)epoch / (double)c->cosine_t_max)) / 2.0;
    }
    if (c->schedule == Q4_SCHEDULE_COSINE) return q4_cosine_lr(c->learning_rate, epoch, c->cosine_t_max);
    long long total = (long long)c->epochs * steps_per_epoch, t = (long long)epoch * steps_per_epoch + step_in_epoch;
    long long warm = llround(c->warmup * (double)total);
    if (t < warm) return c->learning_rate * (double)(t + 1) / (double)warm;
    if (t >= total) return 0.0;
    return c->learning_rate * (double)(total - t) / (double)(total - warm);
}

q4_status q4_optimizer_step(q4_vgg *m, float *moment1, float *moment2, long long step, double lr,
                            const q4_config *config, double *grad_norm) {
    optim_job job;
    job.m = m;
    job.freeze_scales = config->freeze_bn_scale;
    job.moment1 = moment1;
    job.moment2 = moment2;
    make_chunks(&job);
    q4_pool_run(m->compute.pool, job.chunks, sum_squares_task, &job);

    /* PyTorch: total = ||(||g_t|| for each tensor t)||, coefficient = max / (total + 1e-6) */
    double total_squares = 0.0, tensor_squares = 0.0;
    for (int c = 0; c < job.chunks; c++) {
        tensor_squares += job.chunk_sum[c];
        if (c + 1 == job.chunks || job.chunk_tensor[c + 1] != job.chunk_tensor[c]) {
            float tensor_norm = (float)sqrt(tensor_squares);
            total_squares += (double)tensor_norm * tensor_norm;
            tensor_squares = 0.0;
        }
    }
    float total = (float)sqrt(total_squares);
    if (grad_norm) *grad_norm = total;
    if (!isfinite(total)) return Q4_ERR_NUMERIC;
    float coefficient = (float)config->clip_norm / (total + 1e-6f);
    job.clip_coefficient = config->clip_norm > 0 && coefficient < 1.0f ? coefficient : 1.0f;

    double bias_correction1 = 1.0 - (config->exact ? q4_exact_pow_int(config->beta1, step) : pow(config->beta1, (double)step));
    double bias_correction2 = 1.0 - (config->exact ? q4_exact_pow_int(config->beta2, step) : pow(config->beta2, (double)step));
    job.adam.decay = (float)(1.0 - lr * config->weight_decay);
    job.adam.beta1 = (float)config->beta1;
    job.adam.one_minus_beta1 = (float)(1.0 - config->beta1);
    job.adam.beta2 = (float)config->beta2;
    job.adam.one_minus_beta2 = (float)(1.0 - config->beta2);
    job.adam.eps = (float)config->adam_eps;
    job.adam.neg_step_size = (float)(-(lr / bias_correction1));
    job.adam.bc2_sqrt = (float)sqrt(bias_correction2);
    job.use_sgd = config->optimizer == Q4_OPTIMIZER_SGD;
    job.sgd.lr = (float)lr;
    job.sgd.momentum = (float)config->momentum;
    job.sgd.weight_decay = (float)config->weight_decay;
    job.sgd.nesterov = config->nesterov;
    job.adam_other = job.adam;
    job.sgd_other = job.sgd;
    if (!config->decay_all) {
        job.adam_other.decay = 1.0f;
        job.sgd_other.weight_decay = 0.0f;
    }
    /* The shifts: shift_lr times the step, the same decay per step (SGD adds the decay to the
     * gradient, so it is divided by shift_lr there; AdamW's decoupled decay stays as it is). */
    job.adam_shift = job.adam_other;
    job.sgd_shift = job.sgd_other;
    if (config->shift_lr != 1.0) {
        job.adam_shift.neg_step_size = (float)(-(lr * config->shift_lr / bias_correction1));
        job.sgd_shift.lr = (float)(lr * config->shift_lr);
        job.sgd_shift.weight_decay = (float)((double)job.sgd_other.weight_decay / config->shift_lr);
    }
    job.soft_clip = config->weight_bits < Q4_FP32_BITS && config->tanh_bound > 0;
    job.bound = (float)config->tanh_bound;
    q4_pool_run(m->compute.pool, job.chunks, update_task, &job);
    return Q4_OK;
}
