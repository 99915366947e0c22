/* checkpoint.c - the full training state as one versioned, checksummed byte buffer:
 * configuration, position (epoch, step), this epoch's running metrics, the best test
 * accuracy, parameters, BN running statistics and AdamW moments. The RNG needs no state
 * beyond the seed and the position: every draw is keyed by them. Little-endian on disk.
 * Layout (version 2):
 *   "Q4CKPT\r\n" | u32 version | u32 header bytes | header | u32 config bytes |
 *   config as "name=value" lines (every setting of the table in q4.h) |
 *   f32 parameters | f32 BN running means | f32 BN running variances | f32 optimizer moments
 *   (AdamW's first and second; SGD's momentum, then zeros) | when setting ema or lookahead is on:
 *   the moving average (or lookahead's slow copy) of the parameters, BN means and variances |
 *   u32 CRC-32 of everything before
 * Nothing in it depends on time or threads: the same training gives the same bytes.
 * Version 1 (fixed binary configuration of 16 settings) is still read. Every header field is
 * range-checked before anything is used: a CRC only detects accidents, anyone can forge one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/util.h"
#include "session.h"

#define CHECKPOINT_MAGIC "Q4CKPT\r\n"
#define CHECKPOINT_VERSION 2u
#define HEADER_BYTES 128u    /* version 2 */
#define V1_HEADER_BYTES 256u /* version 1 */
#define MAX_CONFIG_BYTES 16384u
#define MAX_EPOCHS 1000000

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
static void get_floats(const uint8_t *p, float *x, long long n) {
    for (long long i = 0; i < n; i++, p += 4) {
        uint32_t u = q4_get_u32(p);
        memcpy(&x[i], &u, 4);
    }
}

/* ------------------------------------------------------------ writing */

/* Streams bytes and float arrays (little-endian) through a small buffer, updating the CRC. */
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

static void emit_bytes(void *o, const uint8_t *bytes, size_t size) { emit(o, bytes, size); }
static void emit_floats(stream *o, const float *x, long long n) { q4_floats_to_le(x, n, emit_bytes, o); }

size_t q4_session_checkpoint_size(const q4_session *s) {
    size_t config = q4_config_format(&s->config, NULL, 0);
    return 16 + HEADER_BYTES + 4 + config +
           (size_t)(3 * s->model.param_count + 2 * s->model.bn_total + q4_session_ema_floats(s)) * 4 + 4;
}

q4_status q4_session_save_stream(q4_session *s, q4_write_fn write, void *context) {
    const q4_vgg *m = &s->model;
    long long p = m->param_count, bn = m->bn_total;
    char config[MAX_CONFIG_BYTES];
    size_t config_bytes = q4_config_format(&s->config, config, sizeof config);
    if (config_bytes >= sizeof config) return q4_session_fail(s, Q4_ERR_STATE, "the configuration is too long to save");
    uint8_t head[16 + HEADER_BYTES + 4];
    memset(head, 0, sizeof head);
    writer w = {head};
    memcpy(w.p, CHECKPOINT_MAGIC, 8);
    w.p += 8;
    put_u32(&w, CHECKPOINT_VERSION);
    put_u32(&w, HEADER_BYTES);
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
    w.p = head + 16 + HEADER_BYTES;
    put_u32(&w, (uint32_t)config_bytes);
    stream o = {write, context, 0, Q4_OK};
    emit(&o, head, sizeof head);
    emit(&o, (const uint8_t *)config, config_bytes);
    emit_floats(&o, m->params, p);
    emit_floats(&o, m->running_mean, bn);
    emit_floats(&o, m->running_var, bn);
    emit_floats(&o, s->moments, 2 * p);
    emit_floats(&o, s->ema, q4_session_ema_floats(s));
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

/* ------------------------------------------------------------ reading */

/* Everything a checkpoint says, checked for consistency, before any of it is used. */
typedef struct parsed {
    q4_checkpoint_info info;
    double loss_sum, last_loss;
    long long correct, seen;
    uint64_t fingerprint;
    long long params, bn, ema;
    const uint8_t *arrays; /* parameters, BN means, BN variances, moments, moving average */
} parsed;

/* Version 1's configuration: 16 settings in a fixed binary order. */
static void read_config_v1(reader *r, q4_config *c) {
    q4_config_default(c);
    c->num_classes = (int)get_u32(r);
    c->batch_size = (int)get_u32(r);
    c->epochs = (int)get_u32(r);
    c->weight_bits = get_u32(r) ? 4 : Q4_FP32_BITS; /* "quantized": 1 meant the paper's 4 bits */
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
    /* the image counts follow in the header; parse_checkpoint copies them to the limits */
}

static q4_status parse_checkpoint(const uint8_t *bytes, size_t size, parsed *out, q4_error *err) {
    memset(out, 0, sizeof *out);
    if (!bytes || size < 16 + 4) {
        if (bytes && size >= 8 && memcmp(bytes, CHECKPOINT_MAGIC, 8) == 0)
            return q4_fail(err, Q4_ERR_FORMAT, "checkpoint is truncated (%zu bytes)", size);
        return q4_fail(err, Q4_ERR_FORMAT, "not a q4 checkpoint (%zu bytes, too short)", size);
    }
    if (memcmp(bytes, CHECKPOINT_MAGIC, 8) != 0) {
        if (memcmp(bytes, "Q4MODEL", 7) == 0)
            return q4_fail(err, Q4_ERR_FORMAT, "this is an exported model, not a checkpoint: it cannot resume training");
        return q4_fail(err, Q4_ERR_FORMAT, "not a q4 checkpoint (wrong magic number)");
    }
    uint32_t version = q4_get_u32(bytes + 8);
    if (version != 1 && version != CHECKPOINT_VERSION)
        return q4_fail(err, Q4_ERR_VERSION, "checkpoint format version %u is not supported (this build reads versions 1 "
                       "and %u)", version, CHECKPOINT_VERSION);
    uint32_t header = version == 1 ? V1_HEADER_BYTES : HEADER_BYTES;
    if (q4_get_u32(bytes + 12) != header) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint header size is wrong");
    size_t config_at = 16 + header, config_bytes = 0;
    if (version >= 2) {
        if (size < config_at + 4) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint is truncated (%zu bytes)", size);
        config_bytes = q4_get_u32(bytes + config_at);
        config_at += 4;
        if (config_bytes > MAX_CONFIG_BYTES) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint header is corrupt");
    }
    if (size < config_at + config_bytes + 4) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint is truncated (%zu bytes)", size);

    q4_checkpoint_info *info = &out->info;
    info->version = (int)version;
    reader r = {bytes + 16};
    if (version == 1) read_config_v1(&r, &info->config);
    info->epoch = (int)get_u32(&r);
    info->step_in_epoch = (int)get_u32(&r);
    info->global_step = (long long)get_u64(&r);
    out->loss_sum = get_f64(&r);
    out->correct = (long long)get_u64(&r);
    out->seen = (long long)get_u64(&r);
    out->last_loss = get_f64(&r);
    info->best_accuracy = get_f64(&r);
    info->best_epoch = (int)get_u32(&r);
    info->train_count = (int)get_u32(&r);
    info->test_count = (int)get_u32(&r);
    out->fingerprint = get_u64(&r);
    uint64_t p = get_u64(&r), bn = get_u64(&r);
    if (p > (1ull << 30) || bn > (1ull << 20)) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint header is corrupt");
    out->params = (long long)p;
    out->bn = (long long)bn;
    if (version >= 2) { /* before the size check: the settings decide which arrays follow */
        char text[MAX_CONFIG_BYTES + 1];
        memcpy(text, bytes + config_at, config_bytes);
        text[config_bytes] = 0;
        if (strlen(text) != config_bytes) return q4_fail(err, Q4_ERR_FORMAT, "checkpoint settings are not text");
        q4_config_default(&info->config);
        q4_error why;
        q4_error_clear(&why);
        if (q4_config_parse(&info->config, text, &why))
            /* an unknown name may be a newer engine's setting; a known one out of range is damage */
            return q4_fail(err, Q4_ERR_FORMAT, "checkpoint settings: %s%s", why.message,
                           strstr(why.message, "there is no setting") ? " (made by a newer q4?)"
                                                                       : " (a value this engine never writes: the file was altered)");
    }
    out->ema = q4_config_keeps_copy(&info->config) ? (long long)(p + 2 * bn) : 0;
    size_t arrays_at = config_at + config_bytes;
    size_t expected = arrays_at + (size_t)(3 * p + 2 * bn + (uint64_t)out->ema) * 4 + 4;
    if (size < expected)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint is truncated (%zu of %zu bytes)", size, expected);
    if (size > expected)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint has %zu bytes more than its header describes", size - expected);
    if (!q4_checksum_matches(q4_crc32(0, bytes, size - 4), q4_get_u32(bytes + size - 4)))
        return q4_fail(err, Q4_ERR_CHECKSUM, "checkpoint is corrupt (CRC-32 mismatch)");
    out->arrays = bytes + arrays_at;
    if (version == 1) {
        info->config.train_limit = info->train_count;
        info->config.test_limit = info->test_count;
    } else if (info->config.train_limit != info->train_count || info->config.test_limit != info->test_count) {
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint image counts disagree with its settings");
    }
    q4_error why;
    q4_error_clear(&why);
    if (q4_config_check(&info->config, &why))
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint settings are out of range: %s", why.message);

    /* the position and metrics must describe a state this configuration can reach */
    const q4_config *c = &info->config;
    if (info->train_count < 2 || info->test_count < 1)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint records %d training and %d test images", info->train_count,
                       info->test_count);
    int steps_per_epoch = q4_steps_per_epoch(info->train_count, c->batch_size);
    if (info->epoch < 0 || info->epoch > MAX_EPOCHS || info->step_in_epoch < 0 ||
        info->step_in_epoch >= steps_per_epoch ||
        info->global_step != (long long)info->epoch * steps_per_epoch + info->step_in_epoch)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint position is inconsistent (epoch %d, step %d of %d, global "
                       "step %lld)", info->epoch, info->step_in_epoch, steps_per_epoch, info->global_step);
    if (out->seen != (long long)info->step_in_epoch * c->batch_size || out->correct < 0 || out->correct > out->seen ||
        !isfinite(out->loss_sum) || out->loss_sum < 0 || !isfinite(out->last_loss) || out->last_loss < 0)
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint metrics of the epoch in progress are inconsistent");
    if (info->best_epoch < 0 || info->best_epoch > info->epoch || !(info->best_accuracy >= 0 && info->best_accuracy <= 1))
        return q4_fail(err, Q4_ERR_FORMAT, "checkpoint best accuracy is out of range (%g at epoch %d)",
                       info->best_accuracy, info->best_epoch);
    return Q4_OK;
}

q4_status q4_checkpoint_read_info(const uint8_t *bytes, size_t size, q4_checkpoint_info *info, q4_error *err) {
    parsed x;
    q4_status st = parse_checkpoint(bytes, size, &x, err);
    if (st) return st;
    *info = x.info;
    return Q4_OK;
}

/* the first non-finite float of n at p, or -1 (a forged checkpoint must not smuggle NaN in) */
static long long first_bad_float(const uint8_t *p, long long n, int must_be_nonnegative) {
    for (long long i = 0; i < n; i++, p += 4) {
        uint32_t u = q4_get_u32(p);
        float v;
        memcpy(&v, &u, 4);
        if (!isfinite(v) || (must_be_nonnegative && v < 0)) return i;
    }
    return -1;
}

q4_status q4_session_load(q4_session *s, const uint8_t *bytes, size_t size) {
    q4_error err;
    q4_error_clear(&err);
    parsed x;
    if (parse_checkpoint(bytes, size, &x, &err)) return q4_session_fail(s, err.status, "%s", err.message);
    const q4_checkpoint_info *info = &x.info;
    char differences[1024];
    if (q4_config_differences(&info->config, &s->config, differences, sizeof differences))
        return q4_session_fail(s, Q4_ERR_MISMATCH,
                               "checkpoint settings differ from this session's (%s): resume with the checkpoint's own "
                               "settings", differences);
    if (info->train_count != s->train.count || info->test_count != s->test.count)
        return q4_session_fail(s, Q4_ERR_MISMATCH,
                               "checkpoint was made with %d training and %d test images; this run has %d and %d",
                               info->train_count, info->test_count, s->train.count, s->test.count);
    if (x.fingerprint != s->fingerprint)
        return q4_session_fail(s, Q4_ERR_MISMATCH, "checkpoint was made on different data (fingerprint mismatch)");
    q4_vgg *m = &s->model;
    if (x.params != m->param_count || x.bn != m->bn_total)
        return q4_session_fail(s, Q4_ERR_MISMATCH, "checkpoint holds %lld parameters, this model %ld", x.params,
                               m->param_count);
    long long p = x.params, bn = x.bn;
    const uint8_t *params = x.arrays, *means = params + 4 * p, *vars = means + 4 * bn, *moments = vars + 4 * bn;
    const uint8_t *ema = moments + 8 * p;
    if (first_bad_float(params, p, 0) >= 0 || first_bad_float(means, bn, 0) >= 0 || first_bad_float(vars, bn, 1) >= 0 ||
        first_bad_float(moments, p, 0) >= 0 || first_bad_float(moments + 4 * p, p, 1) >= 0 ||
        (x.ema && (first_bad_float(ema, p + bn, 0) >= 0 || first_bad_float(ema + 4 * (p + bn), bn, 1) >= 0)))
        return q4_session_fail(s, Q4_ERR_FORMAT, "checkpoint holds non-finite or negative-variance values");
    get_floats(params, m->params, p);
    get_floats(means, m->running_mean, bn);
    get_floats(vars, m->running_var, bn);
    get_floats(moments, s->moments, 2 * p);
    if (x.ema) get_floats(ema, s->ema, x.ema);
    s->epoch = info->epoch;
    s->step_in_epoch = info->step_in_epoch;
    s->global_step = info->global_step;
    s->epoch_loss_sum = x.loss_sum;
    s->epoch_correct = x.correct;
    s->epoch_seen = x.seen;
    s->last_loss = (float)x.last_loss;
    s->best_accuracy = info->best_accuracy;
    s->best_epoch = info->best_epoch;
    s->epoch_seconds = 0.0;
    s->epoch_timed_images = 0;
    s->order_epoch = -1;
    s->epoch_waiting = 0;
    return Q4_OK;
}
