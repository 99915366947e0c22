/* session.c - the training session both front ends drive: create from a configuration
 * and datasets, run steps (batch -> quantize -> forward -> loss -> backward -> clip,
 * AdamW, tanh), evaluate, and report layer statistics. A step that meets NaN changes
 * nothing and returns an error; nothing here prints or exits. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../data/batch.h"
#include "../optim/optim.h"
#include "../util/util.h"
#include "session.h"

void q4_config_default(q4_config *c) {
    memset(c, 0, sizeof *c);
    c->num_classes = 10;
    c->batch_size = 128;
    c->epochs = 150;
    c->quantized = 1;
    c->augment = 1;
    c->threads = 1;
    c->seed = 0;
    c->learning_rate = 1e-3;
    c->weight_decay = 5e-4;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->clip_norm = 0.5;
    c->tanh_bound = 3.0;
    c->cosine_t_max = 100;
    c->dropout = 0.5;
}

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

static q4_status check_config(const q4_config *c, q4_error *err) {
    if (c->num_classes < 2 || c->num_classes > Q4_MAX_CLASSES)
        return q4_fail(err, Q4_ERR_ARGUMENT, "number of classes must be 2..%d, not %d", Q4_MAX_CLASSES, c->num_classes);
    if (c->batch_size < 2 || c->batch_size > 1024)
        return q4_fail(err, Q4_ERR_ARGUMENT, "batch size must be 2..1024, not %d", c->batch_size);
    if (c->threads < 1 || c->threads > 256) return q4_fail(err, Q4_ERR_ARGUMENT, "threads must be 1..256, not %d", c->threads);
    if (c->epochs < 1) return q4_fail(err, Q4_ERR_ARGUMENT, "epochs must be at least 1, not %d", c->epochs);
    if (!(c->learning_rate > 0 && c->learning_rate < 1))
        return q4_fail(err, Q4_ERR_ARGUMENT, "learning rate must be in (0, 1), not %g", c->learning_rate);
    if (!(c->dropout >= 0 && c->dropout < 1)) return q4_fail(err, Q4_ERR_ARGUMENT, "dropout must be in [0, 1)");
    if (c->cosine_t_max < 1) return q4_fail(err, Q4_ERR_ARGUMENT, "cosine T_max must be at least 1");
    if (!(c->weight_decay >= 0) || !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->adam_eps > 0) || !(c->clip_norm > 0) || !(c->tanh_bound > 0))
        return q4_fail(err, Q4_ERR_ARGUMENT, "optimizer constants out of range");
    return Q4_OK;
}

q4_session *q4_session_create(const q4_config *config, const q4_dataset *train, const q4_dataset *test, q4_error *err) {
    if (!config || !train || !test) {
        q4_fail(err, Q4_ERR_ARGUMENT, "session needs a configuration and both datasets");
        return NULL;
    }
    if (check_config(config, err)) return NULL;
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
    s->train = *train;
    s->test = *test;
    if (q4_vgg_create(&s->model, config->num_classes, config->quantized, config->batch_size, config->threads,
                      (float)config->dropout, err)) {
        free(s);
        return NULL;
    }
    long long p = s->model.param_count;
    int classes = config->num_classes;
    s->moments = q4_alloc_aligned(2 * (size_t)p * sizeof(float));
    s->order = malloc((size_t)train->count * sizeof(int));
    s->labels = malloc((size_t)config->batch_size);
    s->predictions = malloc((size_t)config->batch_size);
    s->running_backup = malloc(2 * (size_t)s->model.bn_total * sizeof(float));
    s->confusion = calloc((size_t)classes * classes, sizeof(int));
    if (!s->moments || !s->order || !s->labels || !s->predictions || !s->running_backup || !s->confusion) {
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
    return s;
}

void q4_session_destroy(q4_session *s) {
    if (!s) return;
    q4_vgg_destroy(&s->model);
    q4_free_aligned(s->moments);
    free(s->order);
    free(s->labels);
    free(s->predictions);
    free(s->running_backup);
    free(s->confusion);
    free(s);
}

q4_status q4_session_set_threads(q4_session *s, int threads) {
    q4_error err;
    q4_error_clear(&err);
    if (threads < 1 || threads > 256) return q4_session_fail(s, Q4_ERR_ARGUMENT, "threads must be 1..256, not %d", threads);
    if (q4_vgg_set_threads(&s->model, threads, &err)) return q4_session_fail(s, err.status, "%s", err.message);
    s->config.threads = threads;
    return Q4_OK;
}

const q4_config *q4_session_config(const q4_session *s) { return &s->config; }
long long q4_session_parameter_count(const q4_session *s) { return s->model.param_count; }

size_t q4_session_memory_bytes(const q4_session *s) {
    return q4_vgg_memory_bytes(&s->model) + 2 * (size_t)s->model.param_count * sizeof(float) +
           (size_t)s->train.count * sizeof(int);
}

float *q4_session_parameters(q4_session *s, long long *count) {
    if (count) *count = s->model.param_count;
    return s->model.params;
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
    p->learning_rate = q4_cosine_lr(s->config.learning_rate, s->epoch, s->config.cosine_t_max);
    p->images_seen = (int)s->epoch_seen;
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
    q4_make_batch(m->input, s->labels, &s->train, s->order + position, n, c->augment, c->seed, s->epoch, position);
    q4_phase_end(m, Q4_PHASE_BATCH, &t);

    memcpy(s->running_backup, m->running_mean, 2 * (size_t)m->bn_total * sizeof(float));
    q4_vgg_quantize(m);
    q4_vgg_forward(m, n, 1, c->seed, s->global_step);
    int correct = 0;
    double loss = q4_vgg_loss(m, n, s->labels, &correct, NULL);
    if (!isfinite(loss)) {
        memcpy(m->running_mean, s->running_backup, 2 * (size_t)m->bn_total * sizeof(float));
        return q4_session_fail(s, Q4_ERR_NUMERIC, "the loss became %s at epoch %d, step %d: training stopped, the "
                               "weights are those before this step", isnan(loss) ? "NaN" : "infinite", s->epoch + 1,
                               s->step_in_epoch + 1);
    }
    q4_vgg_backward(m, n);
    double lr = q4_cosine_lr(c->learning_rate, s->epoch, c->cosine_t_max);
    double norm = 0.0;
    float *moment2 = s->moments + m->param_count;
    t = q4_now();
    q4_status optimized = q4_optimizer_step(m, s->moments, moment2, s->global_step + 1, lr, c, &norm);
    q4_phase_end(m, Q4_PHASE_OPTIMIZER, &t);
    if (optimized) {
        memcpy(m->running_mean, s->running_backup, 2 * (size_t)m->bn_total * sizeof(float));
        return q4_session_fail(s, Q4_ERR_NUMERIC, "the gradient norm became %s at epoch %d, step %d: training "
                               "stopped, the weights are those before this step", isnan(norm) ? "NaN" : "infinite",
                               s->epoch + 1, s->step_in_epoch + 1);
    }
    s->global_step++;
    s->step_in_epoch++;
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
        q4_status st = train_step(s);
        if (st) return st;
        if (s->step_in_epoch == s->steps_per_epoch) {
            fill_progress(s, &s->finished);
            s->finished.epoch_done = 1;
            s->has_finished = 1;
            s->epoch++;
            s->step_in_epoch = 0;
            s->epoch_loss_sum = 0.0;
            s->epoch_correct = s->epoch_seen = 0;
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

static q4_status evaluate_model(q4_vgg *m, const q4_dataset *test, q4_evaluation *e, int *confusion, uint8_t *labels,
                                uint8_t *batch_predictions, uint8_t *predictions, int n_predictions) {
    int classes = m->num_classes, batch = m->batch_capacity;
    memset(e, 0, sizeof *e);
    memset(confusion, 0, (size_t)classes * classes * sizeof(int));
    e->num_classes = classes;
    e->confusion = confusion;
    int order[1024];
    double loss_sum = 0.0;
    for (int first = 0; first < test->count; first += batch) {
        int n = test->count - first < batch ? test->count - first : batch;
        for (int i = 0; i < n; i++) order[i] = first + i;
        q4_make_batch(m->input, labels, test, order, n, 0, 0, 0, 0);
        q4_vgg_forward(m, n, 0, 0, 0);
        int correct = 0;
        double loss = q4_vgg_loss(m, n, labels, &correct, batch_predictions);
        if (!isfinite(loss)) return Q4_ERR_NUMERIC;
        loss_sum += loss * n;
        e->correct += correct;
        for (int i = 0; i < n; i++) {
            e->class_total[labels[i]]++;
            if (batch_predictions[i] == labels[i]) e->class_correct[labels[i]]++;
            confusion[labels[i] * classes + batch_predictions[i]]++;
            if (predictions && first + i < n_predictions) predictions[first + i] = batch_predictions[i];
        }
    }
    e->count = test->count;
    e->accuracy = test->count ? (double)e->correct / test->count : 0.0;
    e->loss = test->count ? loss_sum / test->count : 0.0;
    return Q4_OK;
}

q4_status q4_session_evaluate(q4_session *s, q4_evaluation *e, uint8_t *predictions, int n_predictions) {
    q4_vgg_quantize(&s->model);
    q4_status st = evaluate_model(&s->model, &s->test, e, s->confusion, s->labels, s->predictions, predictions,
                                  n_predictions);
    if (st) return q4_session_fail(s, st, "evaluation produced non-finite outputs");
    return Q4_OK;
}

void q4_session_record_test(q4_session *s, int epoch, double accuracy) {
    if (s->best_epoch == 0 || accuracy > s->best_accuracy) {
        s->best_accuracy = accuracy;
        s->best_epoch = epoch;
    }
}

void q4_session_best(const q4_session *s, double *accuracy, int *epoch) {
    if (accuracy) *accuracy = s->best_accuracy;
    if (epoch) *epoch = s->best_epoch;
}

/* ------------------------------------------------------------ layer statistics */

q4_status q4_session_layer_stats(q4_session *s, q4_layer_stats stats[Q4_NUM_QUANT_LAYERS]) {
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
        const float *q = m->qweights + m->qweight_offset[layer];
        for (long i = 0; i < t->count; i++) {
            int level = (int)lrintf(q[i] / st->scale);
            if (level < -7) level = -7;
            if (level > 7) level = 7;
            st->histogram[level + 7]++;
        }
        for (int l = 0; l < Q4_LEVELS; l++) st->unique_levels += st->histogram[l] > 0;
    }
    return Q4_OK;
}

/* ------------------------------------------------------------ exported models */

struct q4_model {
    q4_vgg model;
    int *confusion;
    uint8_t labels[1024], batch_predictions[1024];
};

q4_status q4_export_decode(q4_vgg *m, const uint8_t *bytes, size_t size, int threads, q4_error *err);

q4_model *q4_model_load(const uint8_t *bytes, size_t size, int threads, q4_error *err) {
    q4_model *model = calloc(1, sizeof *model);
    if (!model) {
        q4_fail(err, Q4_ERR_NOMEM, "out of memory loading the model");
        return NULL;
    }
    if (q4_export_decode(&model->model, bytes, size, threads, err)) {
        free(model);
        return NULL;
    }
    int k = model->model.num_classes;
    model->confusion = calloc((size_t)k * k, sizeof(int));
    if (!model->confusion) {
        q4_model_destroy(model);
        q4_fail(err, Q4_ERR_NOMEM, "out of memory loading the model");
        return NULL;
    }
    return model;
}

void q4_model_destroy(q4_model *model) {
    if (!model) return;
    q4_vgg_destroy(&model->model);
    free(model->confusion);
    free(model);
}

int q4_model_num_classes(const q4_model *model) { return model->model.num_classes; }

q4_status q4_model_evaluate(q4_model *model, const q4_dataset *test, q4_evaluation *e, q4_error *err) {
    if (test->num_classes > model->model.num_classes)
        return q4_fail(err, Q4_ERR_MISMATCH, "the model has %d classes but the test set %d", model->model.num_classes,
                       test->num_classes);
    /* the stored 4-bit levels times their scales are used as they are: no requantization */
    q4_status st = evaluate_model(&model->model, test, e, model->confusion, model->labels, model->batch_predictions,
                                  NULL, 0);
    if (st) return q4_fail(err, st, "evaluation produced non-finite outputs");
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
}

void q4_session_profile_reset(q4_session *s) {
    memset(s->model.phase_seconds, 0, sizeof s->model.phase_seconds);
    s->profiled_steps = 0;
    s->profiled_images = 0;
}
