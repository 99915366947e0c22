/* export.c - the trained model as a compact file, and such files loaded back as
 * evaluation-only models (q4_model). Each of the 8 weight tensors is stored as its levels
 * packed at the run's width (quant.h: 4 bits are two per byte) with its FP32 scale, then the
 * FP32 biases, BatchNorm parameters and running statistics. FP32 runs export FP32 weights in
 * the same layout. A loaded model's forward pass uses exactly the training-time quantized
 * weights. Layout (version 1): "Q4MODEL\n" | u32 version | u32 classes | u32 weight bits (2..8,
 * or 32) | per layer: u32 rows, u32 cols, f32 scale, weights | f32 tensors | u32 CRC-32.
 * Version 2, written for runs with integer activations (setting act_bits < 32) only, adds
 * u32 activation bits (2..8) after the weight bits: their evaluation quantizes conv2-6's inputs
 * as their training did. Every other model is written as version 1, byte for byte as before. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../quant/quant.h"
#include "../util/util.h"
#include "session.h"

#define MODEL_MAGIC "Q4MODEL\n"
#define MODEL_VERSION 1u
#define MODEL_VERSION_ACT 2u /* with activation bits */

static size_t weight_bytes(long count, int bits) {
    return bits < Q4_FP32_BITS ? q4_pack_levels_size(count, bits) : (size_t)count * 4;
}

static size_t model_size(const q4_vgg *m, int bits, uint32_t version) {
    size_t total = 8 + 4 + 4 + 4 + (version == MODEL_VERSION_ACT ? 4 : 0);
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++)
        total += 12 + weight_bytes(m->tensors[m->weight_tensor[layer]].count, bits);
    for (int t = 0; t < Q4_NUM_TENSORS; t++)
        if (m->tensors[t].quant_layer < 0) total += (size_t)m->tensors[t].count * 4;
    total += (size_t)m->bn_total * 2 * 4;
    return total + 4;
}

static void put_f32(uint8_t **p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    q4_put_u32(*p, u);
    *p += 4;
}

static float get_f32(const uint8_t **p) {
    uint32_t u = q4_get_u32(*p);
    float v;
    *p += 4;
    memcpy(&v, &u, 4);
    return v;
}

q4_status q4_session_export(q4_session *s, uint8_t **bytes, size_t *size) {
    q4_vgg *m = &s->model;
    int bits = m->weight_bits;
    int live = !s->averaged_in;
    q4_session_use_average(s); /* the model evaluation reports on */
    q4_vgg_quantize(m);
    uint32_t version = m->act_levels ? MODEL_VERSION_ACT : MODEL_VERSION;
    size_t total = model_size(m, bits, version);
    uint8_t *buffer = calloc(1, total);
    if (!buffer) {
        if (live) q4_session_use_live(s);
        return q4_session_fail(s, Q4_ERR_NOMEM, "out of memory exporting the model");
    }
    uint8_t *p = buffer;
    memcpy(p, MODEL_MAGIC, 8);
    p += 8;
    q4_put_u32(p, version);
    q4_put_u32(p + 4, (uint32_t)m->num_classes);
    q4_put_u32(p + 8, (uint32_t)bits);
    p += 12;
    if (version == MODEL_VERSION_ACT) {
        q4_put_u32(p, (uint32_t)m->act_bits);
        p += 4;
    }
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
        q4_put_u32(p, (uint32_t)t->shape[0]);
        q4_put_u32(p + 4, (uint32_t)(t->count / t->shape[0]));
        p += 8;
        if (bits == Q4_FP32_BITS) {
            put_f32(&p, 0.0f);
            const float *w = m->params + t->offset;
            for (long i = 0; i < t->count; i++) put_f32(&p, w[i]);
            continue;
        }
        float scale = m->quant_scale[layer];
        put_f32(&p, scale);
        q4_pack_levels(p, m->qweights + m->qweight_offset[layer], t->count, scale, bits);
        p += q4_pack_levels_size(t->count, bits);
    }
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        if (m->tensors[t].quant_layer >= 0) continue;
        const float *x = m->params + m->tensors[t].offset;
        for (long i = 0; i < m->tensors[t].count; i++) put_f32(&p, x[i]);
    }
    for (long i = 0; i < m->bn_total; i++) put_f32(&p, m->running_mean[i]);
    for (long i = 0; i < m->bn_total; i++) put_f32(&p, m->running_var[i]);
    q4_put_u32(p, q4_crc32(0, buffer, total - 4));
    if (live) q4_session_use_live(s);
    *bytes = buffer;
    *size = total;
    return Q4_OK;
}

static q4_status export_decode(q4_vgg *m, const uint8_t *bytes, size_t size, int threads, int exact, q4_error *err) {
    if (!bytes || size < 24 || memcmp(bytes, MODEL_MAGIC, 8) != 0) {
        if (bytes && size >= 8 && memcmp(bytes, "Q4CKPT", 6) == 0)
            return q4_fail(err, Q4_ERR_FORMAT, "this is a training checkpoint, not an exported model (use --resume)");
        return q4_fail(err, Q4_ERR_FORMAT, "not a q4 model file (wrong magic number or too short)");
    }
    uint32_t version = q4_get_u32(bytes + 8);
    if (version != MODEL_VERSION && version != MODEL_VERSION_ACT)
        return q4_fail(err, Q4_ERR_VERSION, "model format version %u is not supported (this build reads versions %u and %u)",
                       version, MODEL_VERSION, MODEL_VERSION_ACT);
    int classes = (int)q4_get_u32(bytes + 12), bits = (int)q4_get_u32(bytes + 16);
    int act_bits = version == MODEL_VERSION_ACT ? (size < 28 ? 0 : (int)q4_get_u32(bytes + 20)) : Q4_FP32_BITS;
    if (classes < 2 || classes > Q4_MAX_CLASSES || ((bits < 2 || bits > Q4_MAX_QUANT_BITS) && bits != Q4_FP32_BITS) ||
        (version == MODEL_VERSION_ACT && (act_bits < 2 || act_bits > Q4_MAX_QUANT_BITS || bits > 7)))
        return q4_fail(err, Q4_ERR_FORMAT, "model header is corrupt (%d classes, %d-bit weights%s)", classes, bits,
                       version == MODEL_VERSION_ACT ? ", activation bits 2..8 with 2- to 7-bit weights expected" : "");
    q4_vgg_describe(m, classes);
    size_t expected = model_size(m, bits, version);
    if (size != expected)
        return q4_fail(err, Q4_ERR_FORMAT, "model file is %s (%zu bytes, expected %zu)",
                       size < expected ? "truncated" : "too long", size, expected);
    if (!q4_checksum_matches(q4_crc32(0, bytes, size - 4), q4_get_u32(bytes + size - 4)))
        return q4_fail(err, Q4_ERR_CHECKSUM, "model file is corrupt (CRC-32 mismatch)");
    q4_status st = q4_vgg_create(m, classes, bits, 128, 0, threads, 0.0f, exact, err);
    if (st) return st;
    if ((st = q4_vgg_set_integer(m, 0, act_bits, err))) {
        q4_vgg_destroy(m);
        return st;
    }
    const uint8_t *p = bytes + (version == MODEL_VERSION_ACT ? 24 : 20);
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
        int rows = (int)q4_get_u32(p), cols = (int)q4_get_u32(p + 4);
        p += 8;
        if (rows != t->shape[0] || (long)rows * cols != t->count) {
            /* the message reads the model's shape, so it comes before the model is destroyed */
            q4_status bad = q4_fail(err, Q4_ERR_FORMAT, "model layer %d has shape %dx%d, expected %dx%ld", layer + 1,
                                    rows, cols, t->shape[0], t->count / t->shape[0]);
            q4_vgg_destroy(m);
            return bad;
        }
        float scale = get_f32(&p);
        if (bits == Q4_FP32_BITS) {
            float *w = m->params + t->offset;
            for (long i = 0; i < t->count; i++) w[i] = get_f32(&p);
            continue;
        }
        if (!(scale > 0.0f) || !isfinite(scale)) {
            q4_vgg_destroy(m);
            return q4_fail(err, Q4_ERR_FORMAT, "model layer %d has an invalid scale %g", layer + 1, scale);
        }
        m->quant_scale[layer] = scale;
        if (q4_unpack_levels(m->qweights + m->qweight_offset[layer], p, t->count, scale, bits) >= 0) {
            q4_vgg_destroy(m);
            return q4_fail(err, Q4_ERR_FORMAT, "model layer %d holds the level -%d, which the quantizer never uses",
                           layer + 1, 1 << (bits - 1));
        }
        p += q4_pack_levels_size(t->count, bits);
    }
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        if (m->tensors[t].quant_layer >= 0) continue;
        float *x = m->params + m->tensors[t].offset;
        for (long i = 0; i < m->tensors[t].count; i++) x[i] = get_f32(&p);
    }
    for (long i = 0; i < m->bn_total; i++) m->running_mean[i] = get_f32(&p);
    for (long i = 0; i < m->bn_total; i++) m->running_var[i] = get_f32(&p);
    /* every number it evaluates with: finite, and variances not negative (BatchNorm adds eps) */
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        if (bits < Q4_FP32_BITS && m->tensors[t].quant_layer >= 0) continue; /* levels and a checked scale */
        const float *x = m->params + m->tensors[t].offset;
        for (long i = 0; i < m->tensors[t].count; i++)
            if (!isfinite(x[i])) {
                q4_status bad = q4_fail(err, Q4_ERR_FORMAT, "model tensor %s holds a non-finite value (%g at %ld)",
                                        m->tensors[t].name, x[i], i);
                q4_vgg_destroy(m);
                return bad;
            }
    }
    for (long i = 0; i < m->bn_total; i++)
        if (!isfinite(m->running_mean[i]) || !isfinite(m->running_var[i]) || m->running_var[i] < 0.0f) {
            q4_status bad = q4_fail(err, Q4_ERR_FORMAT,
                                    "model BatchNorm statistics at %ld are invalid (mean %g, variance %g: finite, and a "
                                    "variance not negative)",
                                    i, m->running_mean[i], m->running_var[i]);
            q4_vgg_destroy(m);
            return bad;
        }
    return Q4_OK;
}

/* ------------------------------------------------------------ exported models */

struct q4_model {
    q4_vgg model;
    int *confusion;
    uint8_t labels[1024], batch_predictions[1024];
    q4_evaluation_run run; /* an evaluation in parts (q4_model_evaluate_begin) */
    int evaluating;        /* begun and not finished */
};

q4_status q4_model_levels(const q4_model *model, int layer, q4_layer_levels *out, q4_error *err) {
    const q4_vgg *m = &model->model;
    if (layer < 0 || layer >= Q4_NUM_QUANT_LAYERS)
        return q4_fail(err, Q4_ERR_ARGUMENT, "there is no weight layer %d (0 to %d)", layer, Q4_NUM_QUANT_LAYERS - 1);
    if (!m->quantized) return q4_fail(err, Q4_ERR_ARGUMENT, "an FP32 model has no quantization levels");
    const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->rows = t->shape[0];
    out->cols = (int)(t->count / t->shape[0]);
    out->scale = m->quant_scale[layer];
    out->bits = m->weight_bits;
    out->max_level = (1 << (m->weight_bits - 1)) - 1;
    out->count = t->count;
    const float *w = m->qweights + m->qweight_offset[layer];
    for (int r = 0; r < out->rows; r++) {
        int top = 0;
        for (long i = (long)r * out->cols; i < (long)(r + 1) * out->cols; i++) {
            int level = q4_quant_level(w[i], out->scale, out->max_level);
            out->counts[level + out->max_level]++;
            if (abs(level) > top) top = abs(level);
        }
        out->row_max[top]++;
    }
    return Q4_OK;
}

q4_model *q4_model_load(const uint8_t *bytes, size_t size, int threads, int exact, q4_error *err) {
    q4_model *model = calloc(1, sizeof *model);
    if (!model) {
        q4_fail(err, Q4_ERR_NOMEM, "out of memory loading the model");
        return NULL;
    }
    if (export_decode(&model->model, bytes, size, threads, exact, err)) {
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

q4_status q4_model_set_integer(q4_model *model, int on, q4_error *err) {
    return q4_vgg_set_integer(&model->model, on, model->model.act_bits, err);
}

int q4_model_num_classes(const q4_model *model) { return model->model.num_classes; }

q4_status q4_model_recalibrate_bn(q4_model *model, const q4_dataset *train, int batch, q4_error *err) {
    q4_vgg *m = &model->model;
    if (batch < 2 || batch > m->batch_capacity || train->count < 2)
        return q4_fail(err, Q4_ERR_ARGUMENT, "BatchNorm recalibration of a model needs batches of 2 to %d images and 2 "
                       "or more training images (batches of %d, %d images)", m->batch_capacity, batch, train->count);
    if (train->num_classes > m->num_classes)
        return q4_fail(err, Q4_ERR_MISMATCH, "the model has %d classes but the training set %d", m->num_classes,
                       train->num_classes);
    q4_status st = q4_recalibrate_bn(m, train, batch);
    return st ? q4_fail(err, st, "the recomputed BatchNorm statistics are not finite") : Q4_OK;
}

q4_status q4_model_classify(q4_model *model, const uint8_t image[Q4_IMAGE_BYTES], double probabilities[Q4_MAX_CLASSES],
                            q4_error *err) {
    /* the stored levels times their scales, as evaluation uses them */
    q4_status st = q4_classify_image(&model->model, image, probabilities);
    return st ? q4_fail(err, st, "the model's outputs are not finite") : Q4_OK;
}

q4_status q4_model_evaluate_begin(q4_model *model, const q4_dataset *test, int tta, q4_evaluation *e, q4_error *err) {
    model->evaluating = 0;
    if (test->num_classes > model->model.num_classes)
        return q4_fail(err, Q4_ERR_MISMATCH, "the model has %d classes but the test set %d", model->model.num_classes,
                       test->num_classes);
    /* the stored 4-bit levels times their scales are used as they are: no requantization */
    q4_status st = q4_evaluate_begin(&model->model, &model->run, test, tta, e, model->confusion);
    if (st) return q4_fail(err, st, "an evaluation in parts needs a model of one process");
    model->evaluating = 1;
    return Q4_OK;
}

q4_status q4_model_evaluate_step(q4_model *model, int images, q4_evaluation *e, int *evaluated, q4_error *err) {
    q4_evaluation_run *run = &model->run;
    if (!model->evaluating) return q4_fail(err, Q4_ERR_STATE, "no evaluation begun, or it has ended (q4_model_evaluate_begin)");
    int batches = images <= 0 ? 1 : (images + model->model.batch_capacity - 1) / model->model.batch_capacity;
    q4_status st = q4_evaluate_more(&model->model, run, batches, e, model->confusion, model->labels,
                                    model->batch_predictions, NULL, 0);
    if (evaluated) *evaluated = run->evaluated;
    if (st || run->next == run->batches) model->evaluating = 0;
    if (st) return q4_fail(err, st, "evaluation produced non-finite outputs");
    return Q4_OK;
}

q4_status q4_model_evaluate(q4_model *model, const q4_dataset *test, int tta, q4_evaluation *e, q4_error *err) {
    q4_status st = q4_model_evaluate_begin(model, test, tta, e, err);
    int evaluated = 0;
    return st ? st : q4_model_evaluate_step(model, test->count, e, &evaluated, err);
}
