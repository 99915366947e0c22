/* bindings.c - the engine's WebAssembly face: plain exported C functions over integer
 * handles, numbers passed through double arrays with the layouts documented below, and
 * status codes (the message of the last error via q4w_last_error). The only file that knows
 * about Emscripten; wasm/q4.js wraps it for JavaScript. Nothing here aborts. */
#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/include/q4.h"

#define MAX_HANDLES 8

static q4_cifar *cifars[MAX_HANDLES];
static q4_session *sessions[MAX_HANDLES];
static int session_data[MAX_HANDLES]; /* the cifar handle a session trains on */
static q4_dataset session_train[MAX_HANDLES], session_test[MAX_HANDLES];
static char last_error[600];

static int fail(int status, const char *message) {
    snprintf(last_error, sizeof last_error, "%s", message);
    return status ? -status : -1;
}

EMSCRIPTEN_KEEPALIVE const char *q4w_last_error(void) { return last_error; }
EMSCRIPTEN_KEEPALIVE const char *q4w_kernels(void) { return q4_kernels_name(); }
EMSCRIPTEN_KEEPALIVE void *q4w_malloc(double size) { return malloc((size_t)size); }
EMSCRIPTEN_KEEPALIVE void q4w_free(void *p) { free(p); }

/* ------------------------------------------------------------ data */

/* Reads from a JavaScript source (a Blob via FileReaderSync, or bytes), by id. */
EM_JS(double, js_source_read, (int id, uint8_t *buffer, double size), {
    return Module.q4ReadSource(id, buffer, size);
});

typedef struct js_source {
    int id;
} js_source;

static long long js_read(void *context, uint8_t *buffer, size_t size, q4_error *err) {
    js_source *s = context;
    double got = js_source_read(s->id, buffer, (double)size);
    if (got < 0) {
        if (err) {
            err->status = Q4_ERR_IO;
            snprintf(err->message, sizeof err->message, "could not read the file (the browser refused it)");
        }
        return -1;
    }
    return (long long)got;
}

EMSCRIPTEN_KEEPALIVE int q4w_cifar_begin(int kind) {
    for (int h = 0; h < MAX_HANDLES; h++)
        if (!cifars[h]) {
            cifars[h] = calloc(1, sizeof *cifars[h]);
            if (!cifars[h]) return fail(Q4_ERR_NOMEM, "out of memory");
            q4_cifar_begin(cifars[h], kind == 100 ? Q4_CIFAR100 : Q4_CIFAR10);
            return h;
        }
    return fail(Q4_ERR_STATE, "too many datasets open");
}

/* Adds one file (a shard, a label-name file or an official tarball) read from JS source `id`. */
EMSCRIPTEN_KEEPALIVE int q4w_cifar_add(int h, const char *name, int id, double size) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h]) return fail(Q4_ERR_ARGUMENT, "no such dataset");
    js_source context = {id};
    q4_source source = {js_read, &context, name, (long long)size};
    q4_error err = {0};
    q4_status st = q4_cifar_add(cifars[h], name, &source, &err);
    return st ? fail(st, err.message) : 0;
}

EMSCRIPTEN_KEEPALIVE int q4w_cifar_finish(int h, int require_complete) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h]) return fail(Q4_ERR_ARGUMENT, "no such dataset");
    q4_error err = {0};
    q4_status st = q4_cifar_finish(cifars[h], require_complete, &err);
    return st ? fail(st, err.message) : 0;
}

/* out: [kind, classes, train count, test count, shards with data] */
EMSCRIPTEN_KEEPALIVE int q4w_cifar_info(int h, double *out) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h]) return fail(Q4_ERR_ARGUMENT, "no such dataset");
    q4_cifar *c = cifars[h];
    int shards = 0;
    for (int i = 0; i < Q4_MAX_SHARDS; i++) shards += c->train.shards[i].count > 0;
    out[0] = c->kind;
    out[1] = c->num_classes;
    out[2] = c->train.count;
    out[3] = c->test.count;
    out[4] = shards;
    return 0;
}

EMSCRIPTEN_KEEPALIVE const char *q4w_cifar_class_name(int h, int c) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h] || c < 0 || c >= cifars[h]->num_classes) return "";
    return cifars[h]->class_names[c];
}

EMSCRIPTEN_KEEPALIVE const uint8_t *q4w_cifar_test_image(int h, int i) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h] || i < 0 || i >= cifars[h]->test.count) return NULL;
    return q4_dataset_image(&cifars[h]->test, i);
}

EMSCRIPTEN_KEEPALIVE int q4w_cifar_test_label(int h, int i) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h] || i < 0 || i >= cifars[h]->test.count) return -1;
    return q4_dataset_label(&cifars[h]->test, i);
}

EMSCRIPTEN_KEEPALIVE void q4w_cifar_free(int h) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h]) return;
    for (int s = 0; s < MAX_HANDLES; s++)
        if (sessions[s] && session_data[s] == h) return; /* still in use */
    q4_cifar_free(cifars[h]);
    free(cifars[h]);
    cifars[h] = NULL;
}

/* ------------------------------------------------------------ sessions */

/* config: [classes, batch, epochs, quantized, augment, threads, seed, learning rate,
 * weight decay, beta1, beta2, eps, clip norm, tanh bound, cosine T_max, dropout] */
static void config_from(q4_config *c, const double *in) {
    q4_config_default(c);
    c->num_classes = (int)in[0];
    c->batch_size = (int)in[1];
    c->epochs = (int)in[2];
    c->quantized = (int)in[3];
    c->augment = (int)in[4];
    c->threads = (int)in[5];
    c->seed = (uint64_t)in[6];
    c->learning_rate = in[7];
    c->weight_decay = in[8];
    c->beta1 = in[9];
    c->beta2 = in[10];
    c->adam_eps = in[11];
    c->clip_norm = in[12];
    c->tanh_bound = in[13];
    c->cosine_t_max = (int)in[14];
    c->dropout = in[15];
}

static void config_to(double *out, const q4_config *c) {
    double v[16] = {c->num_classes, c->batch_size, c->epochs,       c->quantized,    c->augment,   c->threads,
                    (double)c->seed, c->learning_rate, c->weight_decay, c->beta1,     c->beta2,     c->adam_eps,
                    c->clip_norm,   c->tanh_bound,  c->cosine_t_max, c->dropout};
    memcpy(out, v, sizeof v);
}

EMSCRIPTEN_KEEPALIVE int q4w_session_create(int data, const double *config, int train_limit, int test_limit) {
    if (data < 0 || data >= MAX_HANDLES || !cifars[data]) return fail(Q4_ERR_ARGUMENT, "no such dataset");
    for (int h = 0; h < MAX_HANDLES; h++)
        if (!sessions[h]) {
            q4_config c;
            config_from(&c, config);
            session_train[h] = q4_dataset_prefix(&cifars[data]->train, train_limit);
            session_test[h] = q4_dataset_prefix(&cifars[data]->test, test_limit);
            q4_error err = {0};
            sessions[h] = q4_session_create(&c, &session_train[h], &session_test[h], &err);
            if (!sessions[h]) return fail(err.status, err.message);
            session_data[h] = data;
            return h;
        }
    return fail(Q4_ERR_STATE, "too many sessions open");
}

static q4_session *session_of(int h) {
    if (h < 0 || h >= MAX_HANDLES || !sessions[h]) {
        fail(Q4_ERR_ARGUMENT, "no such session");
        return NULL;
    }
    return sessions[h];
}

static int session_fail(q4_session *s, int status) { return fail(status, q4_session_error(s)); }

EMSCRIPTEN_KEEPALIVE void q4w_session_destroy(int h) {
    if (h < 0 || h >= MAX_HANDLES || !sessions[h]) return;
    q4_session_destroy(sessions[h]);
    sessions[h] = NULL;
}

EMSCRIPTEN_KEEPALIVE int q4w_set_threads(int h, int threads) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_status st = q4_session_set_threads(s, threads);
    return st ? session_fail(s, st) : 0;
}

/* progress: [epoch, step in epoch, steps per epoch, global step, epoch done, last loss,
 * epoch loss, epoch accuracy, learning rate, images seen] */
static void progress_to(double *out, const q4_progress *p) {
    double v[10] = {p->epoch,     p->step_in_epoch, p->steps_per_epoch, (double)p->global_step, p->epoch_done,
                    p->last_loss, p->epoch_loss,    p->epoch_accuracy,  p->learning_rate,       p->images_seen};
    memcpy(out, v, sizeof v);
}

EMSCRIPTEN_KEEPALIVE int q4w_train(int h, int steps, double *progress) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_progress p;
    q4_status st = q4_session_train(s, steps, &p);
    if (st) return session_fail(s, st);
    progress_to(progress, &p);
    return 0;
}

EMSCRIPTEN_KEEPALIVE int q4w_progress(int h, double *progress) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_progress p;
    q4_session_progress(s, &p);
    progress_to(progress, &p);
    return 0;
}

/* out: [count, correct, accuracy, loss, classes, best accuracy, best epoch,
 * class_total x classes, class_correct x classes]; confusion: classes^2 ints [true][predicted] */
EMSCRIPTEN_KEEPALIVE int q4w_evaluate(int h, int epoch, double *out, int *confusion, uint8_t *predictions, int n) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_evaluation e;
    q4_status st = q4_session_evaluate(s, &e, predictions, n);
    if (st) return session_fail(s, st);
    if (epoch > 0) q4_session_record_test(s, epoch, e.accuracy);
    double best;
    int best_epoch;
    q4_session_best(s, &best, &best_epoch);
    out[0] = e.count, out[1] = e.correct, out[2] = e.accuracy, out[3] = e.loss, out[4] = e.num_classes;
    out[5] = best, out[6] = best_epoch;
    for (int c = 0; c < e.num_classes; c++) {
        out[7 + c] = e.class_total[c];
        out[7 + e.num_classes + c] = e.class_correct[c];
    }
    memcpy(confusion, e.confusion, (size_t)e.num_classes * e.num_classes * sizeof(int));
    return 0;
}

/* out: 8 layers x [rows, cols, scale, unique levels, histogram of 15 levels] */
EMSCRIPTEN_KEEPALIVE int q4w_layer_stats(int h, double *out) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_layer_stats stats[Q4_NUM_QUANT_LAYERS];
    q4_session_layer_stats(s, stats);
    for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++) {
        double *o = out + i * 19;
        o[0] = stats[i].rows, o[1] = stats[i].cols, o[2] = stats[i].scale, o[3] = stats[i].unique_levels;
        for (int l = 0; l < Q4_LEVELS; l++) o[4 + l] = stats[i].histogram[l];
    }
    return 0;
}

/* out: [memory bytes, parameters, steps profiled, images profiled, then per phase: seconds, flops per image] */
EMSCRIPTEN_KEEPALIVE int q4w_profile(int h, double *out, int reset) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_profile p;
    q4_session_profile(s, &p);
    out[0] = (double)q4_session_memory_bytes(s);
    out[1] = (double)q4_session_parameter_count(s);
    out[2] = (double)p.steps;
    out[3] = (double)p.images;
    for (int i = 0; i < p.phases; i++) {
        out[4 + 2 * i] = p.seconds[i];
        out[5 + 2 * i] = p.flops_per_image[i];
    }
    if (reset) q4_session_profile_reset(s);
    return p.phases;
}

EMSCRIPTEN_KEEPALIVE const char *q4w_phase_name(int h, int i) {
    q4_session *s = session_of(h);
    if (!s) return "";
    q4_profile p;
    q4_session_profile(s, &p);
    return i >= 0 && i < p.phases ? p.names[i] : "";
}

/* bytes of a checkpoint or an export: out[0] = pointer, out[1] = size; free with q4w_free */
EMSCRIPTEN_KEEPALIVE int q4w_save(int h, double *out) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    uint8_t *bytes;
    size_t size;
    q4_status st = q4_session_save(s, &bytes, &size);
    if (st) return session_fail(s, st);
    out[0] = (double)(uintptr_t)bytes;
    out[1] = (double)size;
    return 0;
}

EMSCRIPTEN_KEEPALIVE int q4w_export(int h, double *out) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    uint8_t *bytes;
    size_t size;
    q4_status st = q4_session_export(s, &bytes, &size);
    if (st) return session_fail(s, st);
    out[0] = (double)(uintptr_t)bytes;
    out[1] = (double)size;
    return 0;
}

EMSCRIPTEN_KEEPALIVE int q4w_load(int h, const uint8_t *bytes, double size) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_status st = q4_session_load(s, bytes, (size_t)size);
    return st ? session_fail(s, st) : 0;
}

/* out: [config x 16, train count, test count, epoch, step in epoch, global step] */
EMSCRIPTEN_KEEPALIVE int q4w_checkpoint_info(const uint8_t *bytes, double size, double *out) {
    q4_checkpoint_info info;
    q4_error err = {0};
    q4_status st = q4_checkpoint_read_info(bytes, (size_t)size, &info, &err);
    if (st) return fail(st, err.message);
    config_to(out, &info.config);
    out[16] = info.train_count, out[17] = info.test_count, out[18] = info.epoch, out[19] = info.step_in_epoch;
    out[20] = (double)info.global_step;
    return 0;
}

/* the session's parameters (tests compare them across the native and browser builds) */
EMSCRIPTEN_KEEPALIVE int q4w_parameters(int h, double *out) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    long long count;
    float *p = q4_session_parameters(s, &count);
    out[0] = (double)(uintptr_t)p;
    out[1] = (double)count;
    return 0;
}
