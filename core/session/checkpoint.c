/* checkpoint.c - the full training state as one versioned, checksummed byte buffer:
 * configuration, position (epoch, step), this epoch's running metrics, the best test
 * accuracy, parameters, BN running statistics and AdamW moments. The RNG needs no state
 * beyond the seed and the position: every draw is keyed by them. Little-endian on disk.
 * Layout (version 1):
 *   "Q4CKPT\r\n" | u32 version | u32 header bytes | header | f32 arrays | u32 CRC-32 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "session.h"

#define CHECKPOINT_MAGIC "Q4CKPT\r\n"
#define CHECKPOINT_VERSION 1u
#define HEADER_BYTES 256u

typedef struct writer {
    uint8_t *p;
} writer;

static void put_u32(writer *w, uint32_t v) { q4_put_u32(w->p, v); w->p += 4; }
static void put_u64(writer *w, uint64_t v) { q4_put_u64(w->p, v); w->p += 8; }
static void put_f64(writer *w, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(w, u);
}
typedef struct reader {
    const uint8_t *p;
} reader;

static uint32_t get_u32(reader *r) { uint32_t v = q4_get_u32(r->p); r->p += 4; return v; }
static uint64_t get_u64(reader *r) { uint64_t v = q4_get_u64(r->p); r->p += 8; return v; }
static double get_f64(reader *r) {
    uint64_t u = get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}
static void get_floats(reader *r, float *x, long long n) {
    for (long long i = 0; i < n; i++) {
        uint32_t u = q4_get_u32(r->p);
        r->p += 4;
        memcpy(&x[i], &u, 4);
    }
}

static void write_config(writer *w, const q4_config *c) {
    put_u32(w, (uint32_t)c->num_classes);
    put_u32(w, (uint32_t)c->batch_size);
    put_u32(w, (uint32_t)c->epochs);
    put_u32(w, (uint32_t)c->quantized);
    put_u32(w, (uint32_t)c->augment);
    put_u32(w, (uint32_t)c->threads);
    put_u64(w, c->seed);
    put_f64(w, c->learning_rate);
    put_f64(w, c->weight_decay);
    put_f64(w, c->beta1);
    put_f64(w, c->beta2);
    put_f64(w, c->adam_eps);
    put_f64(w, c->clip_norm);
    put_f64(w, c->tanh_bound);
    put_u32(w, (uint32_t)c->cosine_t_max);
    put_f64(w, c->dropout);
}

static void read_config(reader *r, q4_config *c) {
    q4_config_default(c);
    c->num_classes = (int)get_u32(r);
    c->batch_size = (int)get_u32(r);
    c->epochs = (int)get_u32(r);
    c->quantized = (int)get_u32(r);
    c->augment = (int)get_u32(r);
    c->threads = (int)get_u32(r);
    c->seed = get_u64(r);
    c->learning_rate = get_f64(r);
    c->weight_decay = get_f64(r);
    c->beta1 = get_f64(r);
    c->beta2 = get_f64(r);
    c->adam_eps = get_f64(r);
    c->clip_norm = get_f64(r);
    c->tanh_bound = get_f64(r);
    c->cosine_t_max = (int)get_u32(r);
    c->dropout = get_f64(r);
}

/* Streams float arrays through a small buffer, little-endian, updating the CRC. */
typedef struct stream {
    q4_write_fn write;
    void *context;
    uint32_t crc;
    q4_status status;
} stream;

static void emit(stream *o, const uint8_t *bytes, size_t size) {
    if (o->status) return;
    o->crc = q4_crc32(o->crc, bytes, size);
    o->status = o->write(o->context, bytes, size);
}

static void emit_floats(stream *o, const float *x, long long n) {
    uint8_t buffer[16384];
    for (long long i = 0; i < n;) {
        size_t k = 0;
        for (; k < sizeof buffer / 4 && i < n; k++, i++) {
            uint32_t u;
            memcpy(&u, &x[i], 4);
            q4_put_u32(buffer + 4 * k, u);
        }
        emit(o, buffer, 4 * k);
    }
}

size_t q4_session_checkpoint_size(const q4_session *s) {
    return 8 + 4 + 4 + HEADER_BYTES + (size_t)(3 * s->model.param_count + 2 * s->model.bn_total) * 4 + 4;
}

q4_status q4_session_save_stream(q4_session *s, q4_write_fn write, void *context) {
    const q4_vgg *m = &s->model;
    long long p = m->param_count, bn = m->bn_total;
    uint8_t head[16 + HEADER_BYTES];
    memset(head, 0, sizeof head);
    writer w = {head};
    memcpy(w.p, CHECKPOINT_MAGIC, 8);
    w.p += 8;
    put_u32(&w, CHECKPOINT_VERSION);
    put_u32(&w, HEADER_BYTES);
    write_config(&w, &s->config);
    put_u32(&w, (uint32_t)s->epoch);
    put_u32(&w, (uint32_t)s->step_in_epoch);
    put_u64(&w, (uint64_t)s->global_step);
    put_f64(&w, s->epoch_loss_sum);
    put_u64(&w, (uint64_t)s->epoch_correct);
    put_u64(&w, (uint64_t)s->epoch_seen);
    put_f64(&w, (double)s->last_loss);
    put_f64(&w, s->best_accuracy);
    put_u32(&w, (uint32_t)s->best_epoch);
    put_u32(&w, (uint32_t)s->train.count);
    put_u32(&w, (uint32_t)s->test.count);
    put_u64(&w, s->fingerprint);
    put_u64(&w, (uint64_t)p);
    put_u64(&w, (uint64_t)bn);
    stream o = {write, context, 0, Q4_OK};
    emit(&o, head, sizeof head);
    emit_floats(&o, m->params, p);
    emit_floats(&o, m->running_mean, bn);
    emit_floats(&o, m->running_var, bn);
    emit_floats(&o, s->moments, 2 * p);
    uint8_t crc[4];
    q4_put_u32(crc, o.crc);
    if (!o.status) o.status = write(context, crc, 4);
    if (o.status) return q4_session_fail(s, o.status, "could not write the checkpoint");
    return Q4_OK;
}

typedef struct memory_writer {
    uint8_t *at, *end;
} memory_writer;

static q4_status memory_write(void *context, const uint8_t *bytes, size_t size) {
    memory_writer *mw = context;
    if ((size_t)(mw->end - mw->at) < size) return Q4_ERR_STATE;
    memcpy(mw->at, bytes, size);
    mw->at += size;
    return Q4_OK;
}

q4_status q4_session_save(q4_session *s, uint8_t **bytes, size_t *size) {
    size_t total = q4_session_checkpoint_size(s);
    uint8_t *buffer = malloc(total);
    if (!buffer) return q4_session_fail(s, Q4_ERR_NOMEM, "out of memory writing a checkpoint (%zu bytes)", total);
    memory_writer mw = {buffer, buffer + total};
    q4_status st = q4_session_save_stream(s, memory_write, &mw);
    if (st) {
        free(buffer);
        return st;
    }
    *bytes = buffer;
    *size = total;
    return Q4_OK;
}

/* Checks magic, version, size and checksum; leaves r at the header. */
static q4_status open_checkpoint(const uint8_t *bytes, size_t size, reader *r, q4_error *err) {
    if (!bytes || size < 8 + 8 + HEADER_BYTES + 4) {
        if (size >= 8 && memcmp(bytes, CHECKPOINT_MAGIC, 8) == 0)
            return q4_fail(err, Q4_ERR_FORMAT, "checkpoint is truncated (%zu bytes)", size);
        return q4_fail(err, Q4_ERR_FORMAT, "not a q4 checkpoint (%zu bytes, too short)", size);
    }
    if (memcmp(bytes, CHECKPOINT_MAGIC, 8) != 0) {
        if (memcmp(bytes, "Q4MODEL", 7) == 0)
            return q4_fail(err, Q4_ERR_FORMAT, "this is an exported model, not a checkpoint: it cannot resume training");
        return q4_fail(err, Q4_ERR_FORMAT, "not a q4 checkpoint (wrong magic number)");
    }
    uint32_t version = q4_get_u32(bytes + 8);
    if (version != CHECKPOINT_VERSION)
        return q4_fail(err, Q4_ERR_VERSION, "checkpoint format version %u is not supported (this build reads version %u)",
                       version, CHECKPOINT_VERSION);
    if (q4_get_u32(bytes + 12) != HEADER_BYTES) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint header size is wrong");
    reader h = {bytes + 16};
    q4_config c;
    read_config(&h, &c);
    h.p += 4 + 4 + 8 + 8 + 8 + 8 + 8 + 8 + 4 + 4 + 4 + 8; /* position and metrics */
    uint64_t p = get_u64(&h), bn = get_u64(&h);
    if (p > (1ull << 30) || bn > (1ull << 20)) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint header is corrupt");
    size_t expected = 16 + HEADER_BYTES + (size_t)(3 * p + 2 * bn) * 4 + 4;
    if (size < expected)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint is truncated (%zu of %zu bytes)", size, expected);
    if (size > expected)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint has %zu bytes more than its header describes", size - expected);
    if (q4_crc32(0, bytes, size - 4) != q4_get_u32(bytes + size - 4))
        return q4_fail(err, Q4_ERR_CHECKSUM, "checkpoint is corrupt (CRC-32 mismatch)");
    r->p = bytes + 16;
    return Q4_OK;
}

q4_status q4_checkpoint_read_info(const uint8_t *bytes, size_t size, q4_checkpoint_info *info, q4_error *err) {
    reader r;
    q4_status st = open_checkpoint(bytes, size, &r, err);
    if (st) return st;
    read_config(&r, &info->config);
    info->epoch = (int)get_u32(&r);
    info->step_in_epoch = (int)get_u32(&r);
    info->global_step = (long long)get_u64(&r);
    r.p += 8 + 8 + 8 + 8 + 8 + 4; /* metrics */
    info->train_count = (int)get_u32(&r);
    info->test_count = (int)get_u32(&r);
    return Q4_OK;
}

q4_status q4_session_load(q4_session *s, const uint8_t *bytes, size_t size) {
    q4_error err;
    q4_error_clear(&err);
    reader r;
    if (open_checkpoint(bytes, size, &r, &err)) return q4_session_fail(s, err.status, "%s", err.message);
    q4_config c;
    read_config(&r, &c);
    const q4_config *mine = &s->config;
    if (c.num_classes != mine->num_classes || c.quantized != mine->quantized || c.batch_size != mine->batch_size ||
        c.seed != mine->seed || c.augment != mine->augment || c.learning_rate != mine->learning_rate ||
        c.weight_decay != mine->weight_decay || c.cosine_t_max != mine->cosine_t_max || c.dropout != mine->dropout ||
        c.beta1 != mine->beta1 || c.beta2 != mine->beta2 || c.adam_eps != mine->adam_eps ||
        c.clip_norm != mine->clip_norm || c.tanh_bound != mine->tanh_bound)
        return q4_session_fail(s, Q4_ERR_MISMATCH,
                               "checkpoint configuration differs from this session's (%d classes, %s, batch %d, seed "
                               "%llu): resume with the checkpoint's own settings",
                               c.num_classes, c.quantized ? "4-bit" : "FP32", c.batch_size, (unsigned long long)c.seed);
    int epoch = (int)get_u32(&r), step_in_epoch = (int)get_u32(&r);
    long long global_step = (long long)get_u64(&r);
    double loss_sum = get_f64(&r);
    long long correct = (long long)get_u64(&r), seen = (long long)get_u64(&r);
    double last_loss = get_f64(&r), best = get_f64(&r);
    int best_epoch = (int)get_u32(&r);
    int train_count = (int)get_u32(&r), test_count = (int)get_u32(&r);
    uint64_t fingerprint = get_u64(&r);
    long long p = (long long)get_u64(&r), bn = (long long)get_u64(&r);
    if (train_count != s->train.count || test_count != s->test.count)
        return q4_session_fail(s, Q4_ERR_MISMATCH,
                               "checkpoint was made with %d training and %d test images; this run has %d and %d",
                               train_count, test_count, s->train.count, s->test.count);
    if (fingerprint != s->fingerprint)
        return q4_session_fail(s, Q4_ERR_MISMATCH, "checkpoint was made on different data (fingerprint mismatch)");
    if (p != s->model.param_count || bn != s->model.bn_total)
        return q4_session_fail(s, Q4_ERR_MISMATCH, "checkpoint holds %lld parameters, this model %lld", p,
                               s->model.param_count);
    if (step_in_epoch >= s->steps_per_epoch || epoch < 0 || global_step < 0)
        return q4_session_fail(s, Q4_ERR_FORMAT, "checkpoint position is inconsistent");
    r.p = bytes + 16 + HEADER_BYTES;
    q4_vgg *m = &s->model;
    get_floats(&r, m->params, p);
    get_floats(&r, m->running_mean, bn);
    get_floats(&r, m->running_var, bn);
    get_floats(&r, s->moments, 2 * p);
    s->epoch = epoch;
    s->step_in_epoch = step_in_epoch;
    s->global_step = global_step;
    s->epoch_loss_sum = loss_sum;
    s->epoch_correct = correct;
    s->epoch_seen = seen;
    s->last_loss = (float)last_loss;
    s->best_accuracy = best;
    s->best_epoch = best_epoch;
    s->order_epoch = -1;
    s->has_finished = 0;
    return Q4_OK;
}
