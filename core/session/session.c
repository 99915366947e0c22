/* session.c - the training session both front ends drive: create from a configuration
 * and datasets, run steps (batch -> quantize -> forward -> loss -> backward -> clip,
 * AdamW, tanh), and end each epoch with one call that evaluates and gathers everything a
 * front end shows. A step that meets NaN changes nothing and returns an error; nothing here
 * prints or exits. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/batch.h"
#include "../optim/optim.h"
#include "../quant/quant.h"
#include "../util/digest.h"
#include "../util/exactmath.h"
#include "../util/util.h"
#include "session.h"

q4_status q4_session_fail(q4_session *s, q4_status status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(s->error, sizeof s->error, format, args);
    va_end(args);
    return status;
}

const char *q4_session_error(const q4_session *s) { return s ? s->error : "no session"; }

int q4_steps_per_epoch(int count, int batch) {
    int steps = count / batch;
    if (count % batch >= 2) steps++;
    return steps;
}

uint64_t q4_data_fingerprint(const q4_dataset *train, const q4_dataset *test) {
    uint64_t h = q4_mix64((uint64_t)train->count << 32 | (uint64_t)test->count);
    const q4_dataset *sets[2] = {train, test};
    for (int k = 0; k < 2; k++) {
        const q4_dataset *set = sets[k];
        for (int i = 0; i < set->count; i++) {
            h = q4_mix64(h ^ (uint64_t)q4_dataset_label(set, i));
            if (i % 997 == 0) { /* a sample of pixels */
                const uint8_t *img = q4_dataset_image(set, i);
                for (int p = 0; p < Q4_IMAGE_BYTES; p += 61) h = q4_mix64(h ^ img[p]);
            }
        }
    }
    return h;
}

q4_session *q4_session_create(const q4_config *config, const q4_dataset *train, const q4_dataset *test, q4_error *err) {
    if (!config || !train || !test) {
        q4_fail(err, Q4_ERR_ARGUMENT, "session needs a configuration and both datasets");
        return NULL;
    }
    if (q4_config_check(config, err)) return NULL;
    q4_dataset train_used = q4_dataset_prefix(train, config->train_limit);
    q4_dataset test_used = q4_dataset_prefix(test, config->test_limit);
    train = &train_used;
    test = &test_used;
    if (train->count < 2) {
        q4_fail(err, Q4_ERR_ARGUMENT, "the training set has %d images; at least 2 are needed", train->count);
        return NULL;
    }
    if (test->count < 1) {
        q4_fail(err, Q4_ERR_ARGUMENT, "the test set is empty");
        return NULL;
    }
    if (train->num_classes > config->num_classes) {
        q4_fail(err, Q4_ERR_ARGUMENT, "the data has %d classes but the model %d", train->num_classes, config->num_classes);
        return NULL;
    }
    q4_session *s = calloc(1, sizeof *s);
    if (!s) {
        q4_fail(err, Q4_ERR_NOMEM, "out of memory creating the session");
        return NULL;
    }
    s->config = *config;
    s->config.train_limit = train->count; /* the counts used, so that resumes compare like with like */
    s->config.test_limit = test->count;
    s->train = *train;
    s->test = *test;
    if (q4_vgg_create(&s->model, config->num_classes, config->weight_bits, config->batch_size, config->micro_batch,
                      config->threads,
                      (float)config->dropout, config->exact, err)) {
        free(s);
        return NULL;
    }
    if (q4_vgg_set_integer(&s->model, config->integer_eval, config->act_bits, err)) {
        q4_vgg_destroy(&s->model);
        free(s);
        return NULL;
    }
    long long p = s->model.param_count;
    int classes = config->num_classes;
    s->moments = q4_alloc_aligned(2 * (size_t)p * sizeof(float));
    s->order = malloc((size_t)train->count * sizeof(int));
    s->labels = malloc((size_t)config->batch_size);
    s->predictions = malloc((size_t)config->batch_size);
    s->running_backup = malloc((size_t)s->model.running_floats * sizeof(float));
    s->confusion = calloc((size_t)classes * classes, sizeof(int));
    s->tta_confusion = calloc((size_t)classes * classes, sizeof(int));
    if (q4_config_keeps_copy(config)) s->ema = q4_alloc_aligned((size_t)q4_session_ema_floats(s) * sizeof(float));
    if (!s->moments || !s->order || !s->labels || !s->predictions || !s->running_backup || !s->confusion ||
        !s->tta_confusion || (q4_config_keeps_copy(config) && !s->ema)) {
        q4_session_destroy(s);
        q4_fail(err, Q4_ERR_NOMEM, "out of memory creating the session (%.0f MB of optimizer state)",
                2.0 * (double)p * 4 / 1048576.0);
        return NULL;
    }
    memset(s->moments, 0, 2 * (size_t)p * sizeof(float));
    s->fingerprint = q4_data_fingerprint(train, test);
    s->order_epoch = -1;
    s->steps_per_epoch = q4_steps_per_epoch(train->count, config->batch_size);
    q4_vgg_init(&s->model, config->seed);
    for (int i = 0; i < Q4_NUM_BN; i++) s->model.bn[i].momentum = config->bn_momentum;
    s->model.global_scale = config->scale == Q4_SCALE_GLOBAL;
    s->model.scale_rms = (float)config->scale_rms;
    if (s->ema) { /* the average (or lookahead's slow copy) starts at the initial weights */
        memcpy(s->ema, s->model.params, (size_t)p * sizeof(float));
        memcpy(s->ema + p, s->model.running_mean, (size_t)s->model.running_floats * sizeof(float));
    }
    return s;
}

void q4_session_destroy(q4_session *s) {
    if (!s) return;
    q4_session_use_live(s); /* the model frees its own parameters, the session the average */
    q4_vgg_destroy(&s->model);
    q4_free_aligned(s->moments);
    free(s->order);
    free(s->labels);
    free(s->predictions);
    free(s->running_backup);
    free(s->confusion);
    free(s->tta_confusion);
    q4_free_aligned(s->ema);
    free(s);
}

/* ------------------------------------------------------------ the moving average */

int q4_config_keeps_copy(const q4_config *c) { return c->ema > 0 || c->lookahead > 0; }

long long q4_session_ema_floats(const q4_session *s) {
    return q4_config_keeps_copy(&s->config) ? s->model.param_count + s->model.running_floats : 0;
}

#define EMA_CHUNK 65536

typedef struct ema_job {
    q4_session *s;
    float decay, one_minus;
} ema_job;

static void ema_task(void *context, int c, int thread) {
    (void)thread;
    ema_job *job = context;
    q4_vgg *m = &job->s->model;
    long long p = m->param_count, begin = (long long)c * EMA_CHUNK, end = begin + EMA_CHUNK < p ? begin + EMA_CHUNK : p;
    m->kernels.ema(job->s->ema + begin, m->params + begin, (long)(end - begin), job->decay, job->one_minus);
}

/* avg = d * avg + (1 - d) * w over the parameters and the BN running statistics */
static void average_in(q4_session *s, double d) {
    q4_vgg *m = &s->model;
    ema_job job = {s, (float)d, (float)(1.0 - d)};
    q4_pool_run(m->compute.pool, (int)((m->param_count + EMA_CHUNK - 1) / EMA_CHUNK), ema_task, &job);
    m->kernels.ema(s->ema + m->param_count, m->running_mean, m->running_floats, job.decay, job.one_minus);
}

/* After step t (1-based): avg = d * avg + (1 - d) * w with d = min(ema, (1 + t) / (10 + t)),
 * so that the first steps do not leave the average at the initial weights. */
static void ema_update(q4_session *s) {
    double t = (double)s->global_step, d = (1.0 + t) / (10.0 + t);
    average_in(s, d > s->config.ema ? s->config.ema : d);
}

/* Lookahead as airbench94 schedules it: after every N-th step t of T planned, the slow copy
 * moves toward the weights by 1 - d with d = 0.95^5 (t/T)^3 (so it follows them closely early
 * and averages over more steps late), and the weights and BN statistics take its values; after
 * step T they take its values without the move. Steps past T (a run continued) count as T. */
#define LOOKAHEAD_DECAY (0.95 * 0.95 * 0.95 * 0.95 * 0.95)

static void lookahead_update(q4_session *s) {
    q4_vgg *m = &s->model;
    long long t = s->global_step, total = (long long)s->config.epochs * s->steps_per_epoch;
    int due = t % s->config.lookahead == 0;
    if (due) {
        double r = t < total ? (double)t / (double)total : 1.0;
        average_in(s, LOOKAHEAD_DECAY * r * r * r);
    }
    if (due || t == total) {
        memcpy(m->params, s->ema, (size_t)m->param_count * sizeof(float));
        memcpy(m->running_mean, s->ema + m->param_count, (size_t)m->running_floats * sizeof(float));
    }
}

/* bn_recalibrate: after the last planned step, the BatchNorm running statistics of the model
 * that is evaluated (the average's, with ema) recomputed for its quantized weights over the
 * training images; the average (or lookahead's slow copy) keeps them too. */
static q4_status recalibrate(q4_session *s) {
    q4_vgg *m = &s->model;
    q4_session_use_average(s);
    q4_vgg_quantize(m);
    q4_status st = q4_recalibrate_bn(m, &s->train, s->config.batch_size);
    if (!st && q4_config_keeps_copy(&s->config))
        memcpy(s->ema + m->param_count, m->running_mean, (size_t)m->running_floats * sizeof(float));
    q4_session_use_live(s);
    return st;
}

/* The model's parameters become the average's (the model points at them; nothing is copied)
 * and its BN running statistics the average's (the live ones kept in running_backup). */
void q4_session_use_average(q4_session *s) {
    if (s->config.ema <= 0 || s->averaged_in) return;
    q4_vgg *m = &s->model;
    s->live_params = m->params;
    q4_vgg_point_params(m, s->ema);
    size_t bn = (size_t)m->running_floats * sizeof(float);
    memcpy(s->running_backup, m->running_mean, bn);
    memcpy(m->running_mean, s->ema + m->param_count, bn);
    s->averaged_in = 1;
}

void q4_session_use_live(q4_session *s) {
    if (!s->averaged_in) return;
    q4_vgg *m = &s->model;
    q4_vgg_point_params(m, s->live_params);
    s->live_params = NULL;
    memcpy(m->running_mean, s->running_backup, (size_t)m->running_floats * sizeof(float));
    s->averaged_in = 0;
}

/* checks one value against its setting's rule, as text would be */
static q4_status check_setting(q4_session *s, const char *name, int value) {
    q4_config copy = s->config;
    char text[32];
    snprintf(text, sizeof text, "%d", value);
    q4_error err;
    q4_error_clear(&err);
    if (q4_config_set(&copy, name, text, &err)) return q4_session_fail(s, err.status, "%s", err.message);
    return Q4_OK;
}

q4_status q4_session_set_threads(q4_session *s, int threads) {
    q4_error err;
    q4_error_clear(&err);
    if (check_setting(s, "threads", threads)) return Q4_ERR_ARGUMENT;
    q4_status st = q4_vgg_set_threads(&s->model, threads, &err);
    s->config.threads = q4_pool_threads(s->model.compute.pool);
    if (st) return q4_session_fail(s, st, "%s", err.message);
    return Q4_OK;
}

q4_status q4_session_set_epochs(q4_session *s, int epochs) {
    if (check_setting(s, "epochs", epochs)) return Q4_ERR_ARGUMENT;
    s->config.epochs = epochs;
    return Q4_OK;
}

q4_status q4_session_set_combiner(q4_session *s, const q4_combiner *combiner) {
    q4_error err;
    q4_error_clear(&err);
    q4_status st = q4_vgg_set_combiner(&s->model, combiner, &err);
    return st ? q4_session_fail(s, st, "%s", err.message) : Q4_OK;
}

const q4_config *q4_session_config(const q4_session *s) { return &s->config; }
const char *q4_session_kernels(const q4_session *s) { return s->model.kernels.gemm->name; }

size_t q4_session_plan(const q4_session *s, int compact, char *out, size_t size) {
    return q4_vgg_plan_text(&s->model, compact, out, size);
}
long long q4_session_parameter_count(const q4_session *s) { return s->model.param_count; }

size_t q4_session_memory_bytes(const q4_session *s) {
    return q4_vgg_memory_bytes(&s->model) + 2 * (size_t)s->model.param_count * sizeof(float) +
           (size_t)q4_session_ema_floats(s) * sizeof(float) + (size_t)s->train.count * sizeof(int);
}

static void fill_progress(const q4_session *s, q4_progress *p) {
    memset(p, 0, sizeof *p);
    p->epoch = s->epoch;
    p->step_in_epoch = s->step_in_epoch;
    p->steps_per_epoch = s->steps_per_epoch;
    p->global_step = s->global_step;
    p->last_loss = s->last_loss;
    p->epoch_loss = s->epoch_seen ? s->epoch_loss_sum / (double)s->epoch_seen : 0.0;
    p->epoch_accuracy = s->epoch_seen ? (double)s->epoch_correct / (double)s->epoch_seen : 0.0;
    /* the last step run in this epoch, or its first before any */
    p->learning_rate = q4_learning_rate(&s->config, s->epoch, s->step_in_epoch > 0 ? s->step_in_epoch - 1 : 0,
                                        s->steps_per_epoch);
    p->images_seen = (int)s->epoch_seen;
    p->epoch_seconds = s->epoch_seconds;
    p->images_per_second = s->epoch_seconds > 0 ? (double)s->epoch_timed_images / s->epoch_seconds : 0.0;
    p->best_accuracy = s->best_accuracy;
    p->best_epoch = s->best_epoch;
}

q4_status q4_session_progress(const q4_session *s, q4_progress *p) {
    fill_progress(s, p);
    return Q4_OK;
}

static q4_status train_step(q4_session *s) {
    q4_vgg *m = &s->model;
    const q4_config *c = &s->config;
    if (s->order_epoch != s->epoch) {
        q4_epoch_order(s->order, s->train.count, c->seed, s->epoch);
        s->order_epoch = s->epoch;
    }
    long position = (long)s->step_in_epoch * c->batch_size;
    int n = s->train.count - position < c->batch_size ? (int)(s->train.count - position) : c->batch_size;
    double t = q4_now();
    /* the images this process holds: with a combiner some micro-batches of the step, else all */
    int first = 0, held = m->combiner ? q4_vgg_plan_step(m, n, &first) : n;
    q4_augmentation augmentation = {c->augment, c->crop, c->flip, c->cutout, c->seed};
    q4_make_batch(m->input, s->labels, &s->train, s->order + position + first, held, &augmentation, s->epoch,
                  position + first);
    q4_phase_end(m, Q4_PHASE_BATCH, &t);

    memcpy(s->running_backup, m->running_mean, (size_t)m->running_floats * sizeof(float));
    q4_vgg_quantize(m);
    q4_vgg_forward(m, held, 1, c->seed, s->global_step);
    int correct = 0;
    double loss = q4_vgg_loss(m, held, s->labels, (float)c->label_smoothing, &correct, NULL);
    if (!isfinite(loss)) {
        memcpy(m->running_mean, s->running_backup, (size_t)m->running_floats * sizeof(float));
        return q4_session_fail(s, Q4_ERR_NUMERIC, "the loss became %s at epoch %d, step %d: training stopped, the "
                               "weights are those before this step", isnan(loss) ? "NaN" : "infinite", s->epoch + 1,
                               s->step_in_epoch + 1);
    }
    q4_vgg_backward(m, held);
    double lr = q4_learning_rate(c, s->epoch, s->step_in_epoch, s->steps_per_epoch);
    double norm = 0.0;
    float *moment2 = s->moments + m->param_count;
    t = q4_now();
    q4_status optimized = q4_optimizer_step(m, s->moments, moment2, s->global_step + 1, lr, c, &norm);
    q4_phase_end(m, Q4_PHASE_OPTIMIZER, &t);
    if (optimized) {
        memcpy(m->running_mean, s->running_backup, (size_t)m->running_floats * sizeof(float));
        return q4_session_fail(s, Q4_ERR_NUMERIC, "the gradient norm became %s at epoch %d, step %d: training "
                               "stopped, the weights are those before this step", isnan(norm) ? "NaN" : "infinite",
                               s->epoch + 1, s->step_in_epoch + 1);
    }
    s->global_step++;
    s->step_in_epoch++;
    if (s->config.ema > 0) ema_update(s);
    if (s->config.lookahead > 0) lookahead_update(s);
    if (s->config.bn_recalibrate && s->global_step == (long long)s->config.epochs * s->steps_per_epoch) {
        q4_status st = recalibrate(s);
        if (st == Q4_ERR_NOMEM)
            return q4_session_fail(s, st, "out of memory recomputing the BatchNorm statistics after the last step");
        if (st)
            return q4_session_fail(s, st, "the BatchNorm statistics recomputed after the last step are not finite: the "
                                   "weights are those after it");
    }
    s->profiled_steps++;
    s->profiled_images += n;
    s->last_loss = (float)loss;
    s->epoch_loss_sum += loss * n;
    s->epoch_correct += correct;
    s->epoch_seen += n;
    return Q4_OK;
}

q4_status q4_session_train(q4_session *s, int max_steps, q4_progress *progress) {
    if (!s) return Q4_ERR_ARGUMENT;
    int epoch_done = 0;
    for (int k = 0; k < max_steps && !epoch_done; k++) {
        s->epoch_waiting = 0; /* a finished epoch not ended before training on is not reported */
        double t = q4_now();
        long long seen_before = s->epoch_seen;
        q4_status st = train_step(s);
        double dt = q4_now() - t;
        if (st) return st;
        s->epoch_seconds += dt;
        s->epoch_timed_images += s->epoch_seen - seen_before;
        s->elapsed_seconds += dt;
        if (s->step_in_epoch == s->steps_per_epoch) {
            fill_progress(s, &s->finished);
            s->finished.epoch_done = 1;
            s->epoch_waiting = 1;
            s->epoch++;
            s->step_in_epoch = 0;
            s->epoch_loss_sum = 0.0;
            s->epoch_correct = s->epoch_seen = 0;
            s->epoch_seconds = 0.0;
            s->epoch_timed_images = 0;
            epoch_done = 1;
        }
    }
    if (progress) {
        if (epoch_done) *progress = s->finished;
        else fill_progress(s, progress);
    }
    return Q4_OK;
}

/* ------------------------------------------------------------ evaluation */

/* with the weights evaluation uses: the moving average's where there is one */
static q4_status evaluate(q4_session *s, int tta, q4_evaluation *e, int *confusion, uint8_t *predictions,
                          int n_predictions) {
    q4_vgg_quantize(&s->model);
    q4_status st = q4_evaluate_model(&s->model, &s->test, tta, e, confusion, s->labels, s->predictions, predictions,
                                     n_predictions);
    if (st) return q4_session_fail(s, st, "evaluation produced non-finite outputs");
    return Q4_OK;
}

q4_status q4_session_evaluate(q4_session *s, q4_evaluation *e, uint8_t *predictions, int n_predictions) {
    q4_session_use_average(s);
    q4_status st = evaluate(s, Q4_TTA_NONE, e, s->confusion, predictions, n_predictions);
    q4_session_use_live(s);
    return st;
}

q4_status q4_session_evaluate_as(q4_session *s, int integer, q4_evaluation *e) {
    int was = s->model.integer;
    q4_error err = {0};
    int act = s->config.act_bits;
    if (integer != was && q4_vgg_set_integer(&s->model, integer, act, &err)) return q4_session_fail(s, err.status, "%s", err.message);
    q4_status st = q4_session_evaluate(s, e, NULL, 0);
    if (integer != was && q4_vgg_set_integer(&s->model, was, act, &err) && !st) st = q4_session_fail(s, err.status, "%s", err.message);
    return st;
}

/* ------------------------------------------------------------ layer statistics */

q4_status q4_session_layer_stats(q4_session *s, q4_layer_stats stats[Q4_NUM_QUANT_LAYERS]) {
    int live = !s->averaged_in;
    q4_session_use_average(s);
    q4_vgg *m = &s->model;
    q4_vgg_quantize(m);
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        q4_layer_stats *st = &stats[layer];
        const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
        memset(st, 0, sizeof *st);
        snprintf(st->name, sizeof st->name, "%.*s", (int)(strchr(t->name, '.') - t->name), t->name);
        st->rows = t->shape[0];
        st->cols = (int)(t->count / t->shape[0]);
        if (!m->quantized) continue;
        st->scale = m->quant_scale[layer];
        st->levels = 2 * m->max_level + 1;
        const float *q = m->qweights + m->qweight_offset[layer];
        for (long i = 0; i < t->count; i++) st->histogram[q4_quant_level(q[i], st->scale, m->max_level) + m->max_level]++;
        for (int l = 0; l < st->levels; l++) st->unique_levels += st->histogram[l] > 0;
    }
    if (live) q4_session_use_live(s);
    return Q4_OK;
}

/* ------------------------------------------------------------ profile */

static double conv_macs(int l) {
    const q4_conv_spec *c = &q4_conv_specs[l];
    return (double)c->out_channels * c->in_channels * 9 * c->size * c->size;
}

void q4_session_profile(const q4_session *s, q4_profile *p) {
    memset(p, 0, sizeof *p);
    p->phases = Q4_PHASE_COUNT;
    p->steps = s->profiled_steps;
    p->images = s->profiled_images;
    for (int i = 0; i < Q4_PHASE_COUNT; i++) {
        p->names[i] = q4_phase_names[i];
        p->seconds[i] = s->model.phase_seconds[i];
    }
    /* 2 flops per multiply-add, per image */
    for (int l = 0; l < Q4_NUM_CONV; l++) {
        p->flops_per_image[Q4_PHASE_CONV_FORWARD + l] = 2 * conv_macs(l);
        p->flops_per_image[Q4_PHASE_CONV_BACKWARD_INPUT + l] = l == 0 ? 0 : 2 * conv_macs(l);
        p->flops_per_image[Q4_PHASE_CONV_BACKWARD_WEIGHTS + l] = 2 * conv_macs(l);
    }
    double fc = (double)Q4_FC_IN * Q4_FC_HIDDEN + (double)Q4_FC_HIDDEN * s->config.num_classes;
    p->flops_per_image[Q4_PHASE_FC] = 2 * 3 * fc;
    p->flops_per_image[Q4_PHASE_RECOMPUTE_CONV1] = 2 * 2 * conv_macs(0);
    for (int i = 0; i < Q4_PHASE_COUNT; i++) p->flops_per_image_total += p->flops_per_image[i];
    for (int l = 0; l < Q4_NUM_CONV; l++) p->forward_flops_per_image += 2 * conv_macs(l);
    p->forward_flops_per_image += 2 * fc;
}

void q4_session_profile_reset(q4_session *s) {
    memset(s->model.phase_seconds, 0, sizeof s->model.phase_seconds);
    s->profiled_steps = 0;
    s->profiled_images = 0;
}

/* ------------------------------------------------------------ the end of an epoch */

q4_status q4_session_end_epoch(q4_session *s, q4_epoch_report *r) {
    if (!s->epoch_waiting)
        return q4_session_fail(s, Q4_ERR_STATE, "no finished epoch to end: train until an epoch finishes");
    const q4_progress *f = &s->finished;
    memset(r, 0, sizeof *r);
    r->epoch = f->epoch + 1;
    r->epochs = s->config.epochs;
    r->global_step = f->global_step;
    r->train_loss = f->epoch_loss;
    r->train_accuracy = f->epoch_accuracy;
    r->learning_rate = f->learning_rate;
    r->train_seconds = f->epoch_seconds;
    r->images_per_second = f->images_per_second;

    double t = q4_now();
    r->n_predictions = s->test.count < Q4_REPORT_PREDICTIONS ? s->test.count : Q4_REPORT_PREDICTIONS;
    q4_session_use_average(s);
    q4_status st = evaluate(s, Q4_TTA_NONE, &r->test, s->confusion, r->predictions, r->n_predictions);
    r->tta_accuracy = -1.0;
    if (!st && s->config.tta != Q4_TTA_NONE && r->epoch == s->config.epochs) {
        q4_evaluation tta;
        st = evaluate(s, s->config.tta, &tta, s->tta_confusion, NULL, 0);
        r->tta_accuracy = tta.accuracy;
    }
    if (!st) q4_session_layer_stats(s, r->layers);
    q4_session_use_live(s);
    if (st) return st;
    r->eval_seconds = q4_now() - t;
    s->elapsed_seconds += r->eval_seconds;
    r->elapsed_seconds = s->elapsed_seconds;
    if (s->best_epoch == 0 || r->test.accuracy > s->best_accuracy) {
        s->best_accuracy = r->test.accuracy;
        s->best_epoch = r->epoch;
    }
    r->best_accuracy = s->best_accuracy;
    r->best_epoch = s->best_epoch;

    if (s->model.quantized) {
        r->levels_min = Q4_MAX_LEVELS;
        for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++) {
            int u = r->layers[i].unique_levels;
            if (u < r->levels_min) r->levels_min = u;
            if (u > r->levels_max) r->levels_max = u;
            r->levels_mean += u / (double)Q4_NUM_QUANT_LAYERS;
        }
    }
    q4_session_profile(s, &r->profile);
    q4_session_profile_reset(s);
    s->epoch_waiting = 0;
    return Q4_OK;
}

/* ------------------------------------------------------------ the state's fingerprint */

static void hash_bytes(void *c, const uint8_t *bytes, size_t size) { q4_sha256_update(c, bytes, size); }
static void hash_floats(q4_sha256 *c, const float *x, long long n) { q4_floats_to_le(x, n, hash_bytes, c); }

void q4_session_state_sha256(const q4_session *s, char hex[65]) {
    const q4_vgg *m = &s->model;
    q4_sha256 c;
    q4_sha256_init(&c);
    uint8_t position[16];
    q4_put_u32(position, (uint32_t)s->epoch);
    q4_put_u32(position + 4, (uint32_t)s->step_in_epoch);
    q4_put_u64(position + 8, (uint64_t)s->global_step);
    q4_sha256_update(&c, position, sizeof position);
    hash_floats(&c, m->params, m->param_count);
    hash_floats(&c, m->running_mean, m->running_floats);
    hash_floats(&c, s->moments, 2 * m->param_count);
    hash_floats(&c, s->ema, q4_session_ema_floats(s));
    q4_sha256_final(&c, NULL, hex);
}

/* ------------------------------------------------------------ looking at the model */

q4_status q4_session_classify(q4_session *s, const uint8_t image[Q4_IMAGE_BYTES], double probabilities[Q4_MAX_CLASSES]) {
    q4_session_use_average(s);
    q4_vgg_quantize(&s->model);
    q4_status st = q4_classify_image(&s->model, image, probabilities);
    q4_session_use_live(s);
    return st ? q4_session_fail(s, st, "the model's outputs are not finite") : Q4_OK;
}

q4_status q4_session_conv1(q4_session *s, float weights[1728], float quantized[1728], float *scale) {
    q4_vgg *m = &s->model;
    q4_session_use_average(s);
    q4_vgg_quantize(m);
    memcpy(weights, m->param.conv_weight[0], 1728 * sizeof(float));
    memcpy(quantized, q4_vgg_layer_weights(m, 0), 1728 * sizeof(float));
    *scale = m->quantized ? m->quant_scale[0] : 0.0f;
    q4_session_use_live(s);
    return Q4_OK;
}
