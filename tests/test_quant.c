/* test_quant.c - the 4-bit quantizer's properties (the paper's: per-tensor scale
 * (max|W| + 1e-8) / 7, round half to even, 15 levels -7..7, -8 never used), for the scalar
 * reference and this build's SIMD kernel on ragged sizes; the model's quantization of all
 * 8 layers; and the packed export: 4-bit levels and scales survive the round trip exactly. */
#include "../core/kernels/ref/ref.h"
#include "../core/quant/quant.h"
#include "../core/model/vgg.h"
#include "../core/session/session.h"
#include "../core/util/util.h"
#include "test_util.h"

static void check_levels(const char *what, const q4_kernels *k, const float *w, long n) {
    float *q = malloc((n ? n : 1) * sizeof(float));
    float scale = (k->max_abs(w, n) + 1e-8f) / 7.0f;
    k->quantize(q, w, n, scale, Q4_MAX_LEVEL);
    long bad_level = 0, bad_round = 0, nan = 0;
    int seen[15] = {0};
    for (long i = 0; i < n; i++) {
        if (isnan(q[i])) nan++;
        float r = rintf(q[i] / scale); /* the level; q must be exactly level * scale in float */
        if (q[i] != r * scale || r < -7 || r > 7) bad_level++;
        else seen[(int)r + 7] = 1;
        /* nearest level: |w - q| <= scale / 2, ties to the even level */
        double dist = fabs((double)w[i] - (double)q[i]);
        if (dist > scale * 0.5000001 + 1e-12) bad_round++;
    }
    CHECK(nan == 0, "%s: %ld NaN outputs", what, nan);
    CHECK(bad_level == 0, "%s: %ld outputs are not integer levels -7..7 times the scale", what, bad_level);
    CHECK(bad_round == 0, "%s: %ld outputs are not the nearest level", what, bad_round);
    if (n >= 1000) {
        int used = 0;
        for (int l = 0; l < 15; l++) used += seen[l];
        CHECK(used == 15, "%s: a spread tensor uses %d of 15 levels", what, used);
    }
    free(q);
}

static void test_quantizer(const q4_kernels *k) {
    static const long sizes[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 64, 100, 1000, 4097};
    char what[64];
    for (unsigned s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        long n = sizes[s];
        float *w = malloc(n * sizeof(float)), *neg = malloc(n * sizeof(float)), *qa = malloc(n * sizeof(float)),
              *qb = malloc(n * sizeof(float));
        fill_values(w, n, 100 + s);
        snprintf(what, sizeof what, "%s quantize n=%ld", k->name, n);
        check_levels(what, k, w, n);
        /* symmetry: quantize(-w) = -quantize(w), same scale */
        for (long i = 0; i < n; i++) neg[i] = -w[i];
        float scale = (k->max_abs(w, n) + 1e-8f) / 7.0f;
        CHECK((k->max_abs(neg, n) + 1e-8f) / 7.0f == scale, "%s: scale of -w differs", what);
        k->quantize(qa, w, n, scale, Q4_MAX_LEVEL);
        k->quantize(qb, neg, n, scale, Q4_MAX_LEVEL);
        long asym = 0;
        for (long i = 0; i < n; i++) asym += qa[i] != -qb[i];
        CHECK(asym == 0, "%s: %ld values break quantize(-w) = -quantize(w)", what, asym);
        /* the largest magnitude maps to level 7 exactly; -8 is never produced */
        long at_max = 0;
        for (long i = 0; i < n; i++) at_max += fabsf(qa[i]) == 7.0f * scale;
        CHECK(at_max >= 1, "%s: no value at level +-7", what);
        /* the SIMD kernel equals the scalar reference bit for bit */
        q4_ref_quantize(qb, w, n, scale, Q4_MAX_LEVEL);
        CHECK(memcmp(qa, qb, n * sizeof(float)) == 0, "%s: differs from the scalar reference", what);
        free(w), free(neg), free(qa), free(qb);
    }

    /* ties round to even: w / s = k + 0.5 exactly */
    float scale = 0.5f, ties[16], q[16];
    for (int i = 0; i < 16; i++) ties[i] = ((float)(i - 8) + 0.5f) * scale; /* -7.5 .. 7.5 levels */
    k->quantize(q, ties, 16, scale, Q4_MAX_LEVEL);
    for (int i = 0; i < 16; i++) {
        float level = (float)(i - 8) + 0.5f, expect = rintf(level); /* nearbyint: half to even */
        if (expect > 7) expect = 7;
        if (expect < -7) expect = -7;
        CHECK(q[i] == expect * scale, "%s: tie %.1f quantized to level %g, expected %g", k->name, level, q[i] / scale,
              expect);
    }
    CHECK(q[8 + 2] / scale == 2.0f && q[8 + 1] / scale == 2.0f && q[8 + 0] / scale == 0.0f,
          "%s: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2 expected", k->name);

    /* an all-zero tensor gives zeros and a finite scale, no NaN */
    float zeros[37] = {0}, out[37];
    float zscale = (k->max_abs(zeros, 37) + 1e-8f) / 7.0f;
    CHECK(zscale > 0 && isfinite(zscale), "%s: scale of zeros is %g", k->name, zscale);
    k->quantize(out, zeros, 37, zscale, Q4_MAX_LEVEL);
    for (int i = 0; i < 37; i++) CHECK(out[i] == 0.0f && !signbit(out[i]) == !signbit(zeros[i]), "%s: zeros[%d] -> %g", k->name, i, out[i]);

    /* max_abs propagates NaN, so a broken tensor cannot hide behind a finite scale */
    float with_nan[19];
    fill_values(with_nan, 19, 7);
    with_nan[13] = NAN;
    CHECK(isnan(k->max_abs(with_nan, 19)), "%s: max_abs ignores NaN", k->name);
}

static void test_model_and_export(void) {
    q4_error err = {0};
    q4_config config;
    q4_config_default(&config);
    config.batch_size = 8;
    /* a two-image dataset is enough to create a session */
    uint8_t pixels[2 * Q4_IMAGE_BYTES] = {0}, labels[2] = {1, 2};
    q4_dataset set = {2, 10, 1, {{2, pixels, labels, NULL}}};
    q4_session *s = q4_session_create(&config, &set, &set, &err);
    CHECK(s != NULL, "session: %s", err.message);
    if (!s) return;
    q4_layer_stats stats[Q4_NUM_QUANT_LAYERS];
    CHECK(q4_session_layer_stats(s, stats) == Q4_OK, "q4_session_layer_stats failed");
    q4_vgg *m = &s->model;
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
        const float *w = m->params + t->offset;
        float expect = (q4_ref_max_abs(w, t->count) + 1e-8f) / 7.0f;
        CHECK(m->quant_scale[layer] == expect, "layer %d scale %g, expected %g", layer, m->quant_scale[layer], expect);
        long total = 0;
        CHECK(stats[layer].levels == Q4_LEVELS, "layer %d: %d levels at 4 bits", layer, stats[layer].levels);
        for (int l = 0; l < stats[layer].levels; l++) total += stats[layer].histogram[l];
        CHECK(total == t->count, "layer %d histogram counts %ld of %ld", layer, total, t->count);
        CHECK(stats[layer].unique_levels >= 12 && stats[layer].unique_levels <= 15, "layer %d uses %d levels",
              layer, stats[layer].unique_levels);
    }
    /* export -> load: the decoded quantized weights equal the session's bit for bit */
    uint8_t *bytes;
    size_t size;
    CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "export failed");
    long weights = 0, others = 0;
    for (int t = 0; t < Q4_NUM_TENSORS; t++) {
        if (m->tensors[t].quant_layer >= 0) weights += m->tensors[t].count;
        else others += m->tensors[t].count;
    }
    size_t expected = 20 + 8 * 12 + (size_t)(weights + 1) / 2 + (size_t)(others + 2 * m->bn_total) * 4 + 4;
    CHECK(size <= expected + 8 && size >= expected - 8, "export is %zu bytes, expected about %zu", size, expected);
    printf("export: %zu bytes (%.2f MiB) for %ld weights at 4 bits and %ld FP32 values\n", size, size / 1048576.0,
           weights, others + 2 * m->bn_total);
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model != NULL, "model load: %s", err.message);
    if (model) {
        q4_vgg *d = (q4_vgg *)model; /* q4_model starts with its q4_vgg */
        for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
            const q4_tensor_info *t = &m->tensors[m->weight_tensor[layer]];
            CHECK(d->quant_scale[layer] == m->quant_scale[layer], "layer %d scale changed in export", layer);
            /* equal as floats: the 4-bit code of level 0 has no sign, so -0 comes back as +0,
             * which changes no sum and no prediction */
            long changed = 0;
            for (long i = 0; i < t->count; i++)
                changed += d->qweights[d->qweight_offset[layer] + i] != m->qweights[m->qweight_offset[layer] + i];
            CHECK(changed == 0, "layer %d: %ld quantized weights changed in export", layer, changed);
        }
        q4_model_destroy(model);
    }
    /* corruption is refused */
    bytes[size / 2] ^= 0x10;
    model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model == NULL && err.status == Q4_ERR_CHECKSUM, "a corrupted export was accepted (%s)", err.message);
    bytes[size / 2] ^= 0x10;
    model = q4_model_load(bytes, size - 100, 1, 0, &err);
    CHECK(model == NULL && err.status == Q4_ERR_FORMAT, "a truncated export was accepted (%s)", err.message);
    /* a layer shape that does not match, with a valid checksum: named in the error (the
       message was once formatted from the model after it was destroyed: a division by zero,
       found by fuzz_model) */
    uint8_t header[4];
    memcpy(header, bytes + 20, 4);
    q4_put_u32(bytes + 20, 65);
    q4_put_u32(bytes + size - 4, q4_crc32(0, bytes, size - 4));
    model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model == NULL && err.status == Q4_ERR_FORMAT && strstr(err.message, "layer 1 has shape 65x27, expected 64x27"),
          "a model with a wrong layer shape: %s", err.message);
    memcpy(bytes + 20, header, 4);
    q4_put_u32(bytes + size - 4, q4_crc32(0, bytes, size - 4));
    /* numbers it would evaluate with silently, each with a valid checksum: refused, named */
    const struct {
        size_t at;     /* from the end of the file */
        uint32_t bits; /* the float written there */
        const char *words;
    } bad[] = {
        {8, 0xbf800000u, "BatchNorm statistics at"},             /* the last variance -1 */
        {8, 0x7fc00000u, "BatchNorm statistics at"},             /* the last variance NaN */
        {4 + 8 * (size_t)s->model.bn_total, 0x7f800000u, "BatchNorm statistics at 0"}, /* the first mean +inf */
        {4 + 8 * (size_t)s->model.bn_total + 4, 0x7fc00000u, "model tensor fc2.bias holds a non-finite value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *slot = bytes + size - bad[i].at, saved[4];
        memcpy(saved, slot, 4);
        q4_put_u32(slot, bad[i].bits);
        q4_put_u32(bytes + size - 4, q4_crc32(0, bytes, size - 4));
        model = q4_model_load(bytes, size, 1, 0, &err);
        CHECK(model == NULL && err.status == Q4_ERR_FORMAT && strstr(err.message, bad[i].words),
              "a model with 0x%08x at %zu from its end: %s", bad[i].bits, bad[i].at, model ? "accepted" : err.message);
        q4_model_destroy(model);
        memcpy(slot, saved, 4);
    }
    q4_put_u32(bytes + size - 4, q4_crc32(0, bytes, size - 4));
    model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model != NULL, "the restored model is refused: %s", err.message);
    q4_model_destroy(model);
    free(bytes);
    q4_session_destroy(s);
}

/* every width 2..8: the levels, their packing, an export that evaluates as the session does;
 * and one scale for all layers */
static void test_widths(const q4_kernels *k) {
    enum { N = 100003 };
    float *w = malloc(N * 4), *q = malloc(N * 4), *back = malloc(N * 4);
    uint8_t *packed = malloc(N + 8);
    fill_values(w, N, 77);
    for (int bits = 2; bits <= 8; bits++) {
        int max = q4_max_level(bits);
        float scale = q4_quant_scale(k->max_abs(w, N), max);
        k->quantize(q, w, N, scale, (float)max);
        static int seen[Q4_MAX_LEVELS];
        memset(seen, 0, sizeof seen);
        long bad = 0;
        for (long i = 0; i < N; i++) {
            float level = q[i] / scale;
            if (level != rintf(level) || level < -max || level > max) bad++;
            else seen[(int)level + max] = 1;
        }
        int unique = 0;
        for (int l = 0; l < 2 * max + 1; l++) unique += seen[l];
        /* 2 bits: -1, 0, 1; 8 bits: all 255 of -127..127 over 100,003 values spread on [-1, 1) */
        CHECK(bad == 0 && unique == 2 * max + 1, "%s %d bits: %ld off-grid values, %d of %d levels used", k->name, bits,
              bad, unique, 2 * max + 1);
        /* packing: ragged counts, round trip exact (as levels), the size (count * bits + 7) / 8 */
        for (long count = 1; count <= N; count = count < 40 ? count + 1 : count * 7 + 3) {
            size_t size = q4_pack_levels_size(count, bits);
            CHECK(size == ((size_t)count * bits + 7) / 8, "%d bits, %ld values: %zu bytes", bits, count, size);
            packed[size] = 0xa5; /* must stay */
            q4_pack_levels(packed, q, count, scale, bits);
            CHECK(packed[size] == 0xa5, "%d bits, %ld values: packing wrote past its end", bits, count);
            CHECK(q4_unpack_levels(back, packed, count, scale, bits) == -1, "%d bits: a valid packing refused", bits);
            long differ = 0;
            for (long i = 0; i < count; i++) differ += back[i] != q[i] && !(back[i] == 0 && q[i] == 0);
            CHECK(differ == 0, "%d bits, %ld values: %ld change in a round trip", bits, count, differ);
        }
        /* the code -2^(bits-1) is never written: reading it is refused at its index */
        q4_pack_levels(packed, q, 5, scale, bits);
        unsigned code = 1u << (bits - 1), mask = (1u << bits) - 1; /* two's complement -2^(bits-1) */
        size_t bit = 3 * (size_t)bits;
        uint16_t pair = (uint16_t)(packed[bit / 8] | packed[bit / 8 + 1] << 8);
        pair = (uint16_t)((pair & ~(mask << (bit % 8))) | code << (bit % 8));
        packed[bit / 8] = (uint8_t)pair, packed[bit / 8 + 1] = (uint8_t)(pair >> 8);
        CHECK(q4_unpack_levels(back, packed, 5, scale, bits) == 3, "%d bits: the level -%u was not refused", bits, code);
    }
    free(w), free(q), free(back), free(packed);
}

/* The session's export, loaded back, evaluates `set` as the session does: the same predictions,
 * the mean loss within 1e-6 (what names the run in a failure) */
static void check_export_evaluates(q4_session *s, const q4_dataset *set, const char *what) {
    uint8_t *bytes;
    size_t size;
    q4_error err = {0};
    CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "%s: export", what);
    q4_evaluation live, exported;
    CHECK(q4_session_evaluate(s, &live, NULL, 0) == Q4_OK, "%s: q4_session_evaluate failed", what);
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    CHECK(model && q4_model_evaluate(model, set, Q4_TTA_NONE, &exported, &err) == Q4_OK, "%s: %s", what, err.message);
    if (model)
        CHECK(exported.correct == live.correct && fabs(exported.loss - live.loss) <= 1e-6 * live.loss,
              "%s: the export evaluates to %d correct (loss %.9g), the session %d (%.9g)", what, exported.correct,
              exported.loss, live.correct, live.loss);
    q4_model_destroy(model);
    free(bytes);
}

static void test_session_widths(void) {
    uint8_t pixels[40 * Q4_IMAGE_BYTES], labels[40];
    for (int i = 0; i < 40 * Q4_IMAGE_BYTES; i++) pixels[i] = (uint8_t)(i * 2654435761u >> 24);
    for (int i = 0; i < 40; i++) labels[i] = (uint8_t)(i % 10);
    q4_dataset set = {40, 10, 1, {{40, pixels, labels, NULL}}};
    for (int bits = 2; bits <= 8; bits += bits == 4 ? 2 : 1) {
        for (int global = 0; global < 2; global++) {
            q4_config c;
            q4_config_default(&c);
            c.batch_size = 8;
            c.weight_bits = bits;
            c.scale = global ? Q4_SCALE_GLOBAL : Q4_SCALE_TENSOR;
            q4_error err = {0};
            q4_session *s = q4_session_create(&c, &set, &set, &err);
            CHECK(s != NULL, "%d bits: %s", bits, err.message);
            if (!s) continue;
            q4_progress p;
            CHECK(q4_session_train(s, 2, &p) == Q4_OK, "q4_session_train failed");
            q4_layer_stats stats[Q4_NUM_QUANT_LAYERS];
            CHECK(q4_session_layer_stats(s, stats) == Q4_OK, "q4_session_layer_stats failed");
            q4_vgg *m = &s->model;
            float all = 0;
            for (int l = 0; l < Q4_NUM_QUANT_LAYERS; l++) {
                const q4_tensor_info *t = &m->tensors[m->weight_tensor[l]];
                all = fmaxf(all, q4_ref_max_abs(m->params + t->offset, t->count));
            }
            for (int l = 0; l < Q4_NUM_QUANT_LAYERS; l++) {
                const q4_tensor_info *t = &m->tensors[m->weight_tensor[l]];
                float expect = global ? (all + 1e-8f) / (float)q4_max_level(bits)
                                      : (q4_ref_max_abs(m->params + t->offset, t->count) + 1e-8f) / (float)q4_max_level(bits);
                CHECK(stats[l].scale == expect, "%d bits, %s scale: layer %d scale %g, expected %g", bits,
                      global ? "global" : "tensor", l, stats[l].scale, expect);
                CHECK(stats[l].levels == 2 * q4_max_level(bits) + 1 && stats[l].unique_levels <= stats[l].levels,
                      "%d bits: layer %d has %d levels, %d used", bits, l, stats[l].levels, stats[l].unique_levels);
            }
            char what[32];
            snprintf(what, sizeof what, "%d bits, %s scale", bits, global ? "global" : "tensor");
            check_export_evaluates(s, &set, what);
            q4_session_destroy(s);
        }
    }
}

/* integer activations (setting act_bits, issue 26): the export (format version 2, with the
 * activation bits) evaluates exactly as the session does, in integer arithmetic and beside it;
 * a header with activation bits out of range is refused; 8-bit weights are refused */
static void test_session_act_bits(void) {
    uint8_t pixels[40 * Q4_IMAGE_BYTES], labels[40];
    for (int i = 0; i < 40 * Q4_IMAGE_BYTES; i++) pixels[i] = (uint8_t)(i * 2654435761u >> 24);
    for (int i = 0; i < 40; i++) labels[i] = (uint8_t)(i % 10);
    q4_dataset set = {40, 10, 1, {{40, pixels, labels, NULL}}};
    for (int act = 4; act <= 8; act += 4) {
        q4_config c;
        q4_config_default(&c);
        c.batch_size = 8;
        c.act_bits = act;
        q4_error err = {0};
        q4_session *s = q4_session_create(&c, &set, &set, &err);
        CHECK(s != NULL, "act_bits %d: %s", act, err.message);
        if (!s) continue;
        q4_progress p;
        CHECK(q4_session_train(s, 2, &p) == Q4_OK, "act_bits %d: training failed", act);
        uint8_t *bytes;
        size_t size;
        CHECK(q4_session_export(s, &bytes, &size) == Q4_OK, "export");
        CHECK(q4_get_u32(bytes + 8) == 2 && q4_get_u32(bytes + 20) == (uint32_t)act, "act_bits %d: version %u, %u bits",
              act, q4_get_u32(bytes + 8), q4_get_u32(bytes + 20));
        for (int integer = 0; integer < 2; integer++) {
            q4_evaluation live, exported;
            CHECK(q4_session_evaluate_as(s, integer, &live) == Q4_OK, "q4_session_evaluate_as failed");
            q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
            CHECK(model && q4_model_set_integer(model, integer, &err) == Q4_OK &&
                      q4_model_evaluate(model, &set, Q4_TTA_NONE, &exported, &err) == Q4_OK,
                  "act_bits %d: %s", act, err.message);
            if (model)
                /* the same predictions; the mean loss within rounding (the session adds batches of 8, the model one of 40) */
                CHECK(exported.correct == live.correct && fabs(exported.loss - live.loss) <= 1e-9 * live.loss,
                      "act_bits %d, integer %d: the export evaluates to %d correct (loss %.9g), the session %d (%.9g)", act,
                      integer, exported.correct, exported.loss, live.correct, live.loss);
            q4_model_destroy(model);
        }
        q4_put_u32(bytes + 20, 9);
        q4_put_u32(bytes + size - 4, q4_crc32(0, bytes, size - 4));
        q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
        CHECK(!model && err.status == Q4_ERR_FORMAT && strstr(err.message, "activation bits 2..8"),
              "a model with 9 activation bits: %s", model ? "accepted" : err.message);
        q4_model_destroy(model);
        free(bytes);
        q4_session_destroy(s);
    }
    q4_config c;
    q4_config_default(&c);
    c.weight_bits = 8;
    c.act_bits = 8;
    q4_error err = {0};
    CHECK(q4_config_check(&c, &err) == Q4_ERR_ARGUMENT && strstr(err.message, "act_bits 8 needs 2- to 7-bit weights"),
          "8-bit weights with act_bits 8: %s", err.message);
}

/* scale_rms (a switch beside the paper's quantizer): each tensor's range is max|W| capped at
 * scale_rms times its RMS; the weights beyond it take the end levels; the scales do not depend
 * on the thread count; a cap above every max|W| is the paper's quantizer, bit for bit; the
 * export evaluates as the session does. */
static void test_session_scale_rms(void) {
    uint8_t pixels[40 * Q4_IMAGE_BYTES], labels[40];
    for (int i = 0; i < 40 * Q4_IMAGE_BYTES; i++) pixels[i] = (uint8_t)(i * 2654435761u >> 24);
    for (int i = 0; i < 40; i++) labels[i] = (uint8_t)(i % 10);
    q4_dataset set = {40, 10, 1, {{40, pixels, labels, NULL}}};
    /* the runs: cap (0: none), threads */
    const double caps[] = {0.0, 2.0, 2.0, 3.5, 100.0};
    const int thread_counts[] = {1, 1, 2, 1, 1};
    float scales[5][Q4_NUM_QUANT_LAYERS];
    for (int k = 0; k < 5; k++) {
        int threads = thread_counts[k];
        q4_config c;
        q4_config_default(&c);
        c.batch_size = 8;
        c.threads = threads;
        c.scale_rms = caps[k];
        q4_error err = {0};
        q4_session *s = q4_session_create(&c, &set, &set, &err);
        CHECK(s != NULL, "scale_rms %g: %s", caps[k], err.message);
        if (!s) continue;
        q4_progress p;
        CHECK(q4_session_train(s, 2, &p) == Q4_OK, "scale_rms %g: training failed", caps[k]);
        q4_layer_stats stats[Q4_NUM_QUANT_LAYERS];
        CHECK(q4_session_layer_stats(s, stats) == Q4_OK, "q4_session_layer_stats failed");
        q4_vgg *m = &s->model;
        int capped = 0, large_capped = 0, large = 0;
        for (int l = 0; l < Q4_NUM_QUANT_LAYERS; l++) {
            const q4_tensor_info *t = &m->tensors[m->weight_tensor[l]];
            const float *w = m->params + t->offset, *q = q4_vgg_layer_weights(m, l);
            double squares = 0.0;
            for (long i = 0; i < t->count; i++) squares += (double)w[i] * w[i];
            float max = q4_ref_max_abs(w, t->count), limit = (float)(caps[k] * sqrt(squares / (double)t->count));
            float range = caps[k] > 0 && limit < max ? limit : max, expect = (range + 1e-8f) / 7.0f;
            scales[k][l] = stats[l].scale;
            capped += range < max;
            large_capped += range < max && t->count >= 36864;
            large += t->count >= 36864;
            CHECK(fabsf(stats[l].scale - expect) <= 1e-6f * expect, "scale_rms %g: layer %d scale %.9g, expected %.9g",
                  caps[k], l, stats[l].scale, expect);
            long wrong = 0, ends = 0;
            for (long i = 0; i < t->count; i++) {
                float level = rintf(w[i] / stats[l].scale);
                level = level > 7 ? 7 : level < -7 ? -7 : level;
                wrong += q[i] != level * stats[l].scale;
                ends += fabsf(w[i]) > range;
            }
            CHECK(wrong == 0, "scale_rms %g: layer %d: %ld weights not at their clamped level", caps[k], l, wrong);
            if (caps[k] == 2.0) CHECK(ends > 0, "scale_rms 2: layer %d: no weight beyond the range", l);
        }
        /* the weights spread like their He-normal draws: 2 RMS lies below every layer's max|W|, 3.5 below
         * that of every layer of 36864 weights or more (the largest of so many normal draws is about 4.2
         * RMS; conv1's 1728 and fc2's 5120 may stay below it), 100 above every one */
        if (caps[k] == 2.0) CHECK(capped == Q4_NUM_QUANT_LAYERS, "scale_rms 2: %d layers capped", capped);
        if (caps[k] == 3.5) CHECK(large == 6 && large_capped == large, "scale_rms 3.5: %d of %d large layers capped",
                                  large_capped, large);
        if (caps[k] == 100.0) CHECK(capped == 0, "scale_rms 100: %d layers capped", capped);
        char what[32];
        snprintf(what, sizeof what, "scale_rms %g", caps[k]);
        check_export_evaluates(s, &set, what);
        q4_session_destroy(s);
    }
    CHECK(!memcmp(scales[1], scales[2], sizeof scales[1]), "scale_rms 2: the scales depend on the threads");
    CHECK(!memcmp(scales[4], scales[0], sizeof scales[0]), "scale_rms 100 is not the paper's quantizer");
}

int main(void) {
    q4_kernels fast;
    q4_kernels_init(&fast, 0);
    test_quantizer(q4_kernels_reference());
    test_quantizer(&fast);
    test_model_and_export();
    test_widths(q4_kernels_reference());
    test_widths(&fast);
    test_session_widths();
    test_session_act_bits();
    test_session_scale_rms();
    return test_finish("test_quant");
}
