/* test_checkpoint.c - training state round trips and determinism, on a small synthetic
 * set (so it runs anywhere): N+M steps in one run equal N steps, save, resume, M steps, bit
 * for bit (across an epoch boundary, with another thread count); the same seed gives
 * bit-identical weights with 1, 2 and 3 threads; save-load-save is byte-identical; corrupted,
 * truncated, foreign and other-version checkpoints are refused without touching the session;
 * a NaN stops training with an error and keeps the weights of the last good step. */
#include "../core/session/session.h"
#include "../core/util/util.h"
#include "test_util.h"

#define TRAIN SYNTHETIC_TRAIN
#define TEST SYNTHETIC_TEST
#define BATCH 32

static synthetic_data data;
static q4_dataset train_set, test_set;

static void make_data(void) {
    make_synthetic(&data);
    train_set = data.train;
    test_set = data.test;
}

/* The recipe under test: the paper's (NULL), or settings text applied on top */
static const char *recipe_settings;

static q4_session *new_session(int threads, int quantized) {
    q4_config c;
    q4_config_default(&c);
    c.batch_size = BATCH;
    c.threads = threads;
    c.seed = 42;
    c.weight_bits = quantized ? 4 : Q4_FP32_BITS;
    return test_session(&c, recipe_settings, &train_set, &test_set);
}

static void train(q4_session *s, int steps) {
    q4_progress p;
    while (steps > 0) {
        CHECK(q4_session_progress(s, &p) == Q4_OK, "q4_session_progress failed");
        int before = (int)p.global_step;
        q4_status st = q4_session_train(s, steps, &p);
        CHECK(st == Q4_OK, "train: %s", q4_session_error(s));
        if (st) return;
        steps -= (int)p.global_step - before;
    }
}

/* the full state: parameters, moments, BN running statistics, the weight average */
static int same_state(q4_session *a, q4_session *b) {
    long p = a->model.param_count, bn = a->model.bn_total, ema = q4_session_ema_floats(a);
    return memcmp(a->model.params, b->model.params, p * 4) == 0 && memcmp(a->moments, b->moments, 2 * p * 4) == 0 &&
           memcmp(a->model.running_mean, b->model.running_mean, 2 * bn * 4) == 0 && a->global_step == b->global_step &&
           a->epoch == b->epoch && a->step_in_epoch == b->step_in_epoch && ema == q4_session_ema_floats(b) &&
           (ema == 0 || memcmp(a->ema, b->ema, ema * 4) == 0);
}

static void test_resume_and_threads(int quantized) {
    char mode[64];
    snprintf(mode, sizeof mode, "%s%s", quantized ? "4-bit" : "fp32", recipe_settings ? ", the fast recipe" : "");
    int steps_per_epoch = q4_steps_per_epoch(TRAIN, BATCH);
    CHECK(steps_per_epoch == 5, "150 images at batch 32: %d steps, expected 5 (4 full and one of 22)", steps_per_epoch);
    int n = 3, m = 3; /* crosses the epoch boundary at step 5 */

    q4_session *straight = new_session(2, quantized);
    train(straight, n + m);

    q4_session *first = new_session(1, quantized);
    train(first, n);
    uint8_t *bytes;
    size_t size;
    CHECK(q4_session_save(first, &bytes, &size) == Q4_OK, "save: %s", q4_session_error(first));
    q4_session_destroy(first);

    q4_checkpoint_info info;
    q4_error err = {0};
    CHECK(q4_checkpoint_read_info(bytes, size, &info, &err) == Q4_OK, "info: %s", err.message);
    CHECK(info.global_step == n && info.train_count == TRAIN && info.config.seed == 42 &&
              (info.config.weight_bits == 4) == quantized && info.config.batch_size == BATCH,
          "checkpoint info: step %lld, %d images, seed %llu", info.global_step, info.train_count,
          (unsigned long long)info.config.seed);

    q4_session *resumed = new_session(3, quantized);
    CHECK(q4_session_load(resumed, bytes, size) == Q4_OK, "load: %s", q4_session_error(resumed));
    train(resumed, m);
    CHECK(same_state(straight, resumed), "%s: %d+%d steps differ from %d steps, save, resume, %d steps", mode, n, m, n,
          m);

    /* save -> load -> save gives the same bytes */
    uint8_t *again;
    size_t again_size;
    q4_session *copy = new_session(2, quantized);
    CHECK(q4_session_load(copy, bytes, size) == Q4_OK, "reload: %s", q4_session_error(copy));
    /* the thread count is recorded but does not matter; set it as the saver had it */
    CHECK(q4_session_set_threads(copy, 1) == Q4_OK, "q4_session_set_threads failed");
    CHECK(q4_session_save(copy, &again, &again_size) == Q4_OK, "resave");
    CHECK(again_size == size, "resaved size %zu vs %zu", again_size, size);
    if (again_size == size) CHECK(memcmp(again, bytes, size) == 0, "%s: save -> load -> save changed the bytes", mode);
    free(again);
    q4_session_destroy(copy);

    /* the same seed with 1, 2 and 3 threads: identical state */
    q4_session *one = new_session(1, quantized), *three = new_session(3, quantized);
    train(one, n + m);
    train(three, n + m);
    CHECK(same_state(straight, one) && same_state(straight, three), "%s: 1, 2 and 3 threads give different weights", mode);
    q4_evaluation e1, e2;
    CHECK(q4_session_evaluate(one, &e1, NULL, 0) == Q4_OK, "q4_session_evaluate failed");
    CHECK(q4_session_evaluate(three, &e2, NULL, 0) == Q4_OK, "q4_session_evaluate failed");
    CHECK(e1.correct == e2.correct && e1.loss == e2.loss, "%s: evaluation depends on the thread count", mode);
    printf("%s: %d+%d steps = %d, save, resume (other threads), %d: identical; 1/2/3 threads identical; test %.1f%%\n",
           mode, n, m, n, m, 100 * e1.accuracy);

    /* refusals leave the session untouched */
    float *before = malloc(resumed->model.param_count * 4);
    memcpy(before, resumed->model.params, resumed->model.param_count * 4);
    uint8_t *bad = malloc(size);
    memcpy(bad, bytes, size);
    bad[size / 2] ^= 0x04;
    CHECK(q4_session_load(resumed, bad, size) == Q4_ERR_CHECKSUM, "a flipped bit was not detected: %s",
          q4_session_error(resumed));
    CHECK(strstr(q4_session_error(resumed), "corrupt") != NULL, "message: %s", q4_session_error(resumed));
    CHECK(q4_session_load(resumed, bytes, size - 1) == Q4_ERR_FORMAT, "a truncated checkpoint was accepted");
    CHECK(strstr(q4_session_error(resumed), "truncated") != NULL, "message: %s", q4_session_error(resumed));
    CHECK(q4_session_load(resumed, bytes, 100) == Q4_ERR_FORMAT, "a 100-byte checkpoint was accepted");
    memcpy(bad, bytes, size);
    q4_put_u32(bad + 8, 99);
    CHECK(q4_session_load(resumed, bad, size) == Q4_ERR_VERSION, "version 99 was accepted");
    CHECK(strstr(q4_session_error(resumed), "version 99") != NULL, "message: %s", q4_session_error(resumed));
    memcpy(bad, "PK\003\004", 4);
    CHECK(q4_session_load(resumed, bad, size) == Q4_ERR_FORMAT, "a foreign file was accepted");
    CHECK(strstr(q4_session_error(resumed), "not a q4 checkpoint") != NULL, "message: %s", q4_session_error(resumed));
    CHECK(memcmp(before, resumed->model.params, resumed->model.param_count * 4) == 0, "a refused load changed weights");
    uint8_t *exported;
    size_t exported_size;
    CHECK(q4_session_export(resumed, &exported, &exported_size) == Q4_OK, "q4_session_export failed");
    CHECK(q4_session_load(resumed, exported, exported_size) == Q4_ERR_FORMAT, "an exported model was accepted");
    CHECK(strstr(q4_session_error(resumed), "exported model") != NULL, "message: %s", q4_session_error(resumed));
    free(exported);

    /* other data: refused */
    q4_dataset fewer = q4_dataset_prefix(&train_set, TRAIN - 10);
    q4_config c = *q4_session_config(resumed);
    q4_session *other = q4_session_create(&c, &fewer, &test_set, &err);
    CHECK(q4_session_load(other, bytes, size) == Q4_ERR_MISMATCH, "a checkpoint for other data was accepted");
    q4_session_destroy(other);
    free(bad);
    free(before);
    free(bytes);
    q4_session_destroy(resumed);
    q4_session_destroy(straight);
    q4_session_destroy(one);
    q4_session_destroy(three);
}

/* The same state in the version 1 layout (16 settings as fixed binary fields, a 256-byte
 * header), built from a version 2 checkpoint: its position and metrics fields are the same. */
static uint8_t *to_version1(const q4_session *s, const uint8_t *v2, size_t size, size_t *v1_size) {
    uint32_t header = q4_get_u32(v2 + 12), config_bytes = q4_get_u32(v2 + 16 + header);
    size_t arrays = size - 4 - (16 + header + 4 + config_bytes);
    *v1_size = 16 + 256 + arrays + 4;
    uint8_t *out = calloc(1, *v1_size), *p = out + 16;
    memcpy(out, "Q4CKPT\r\n", 8);
    q4_put_u32(out + 8, 1);
    q4_put_u32(out + 12, 256);
    const q4_config *c = &s->config;
    uint32_t ints[6] = {(uint32_t)c->num_classes, (uint32_t)c->batch_size, (uint32_t)c->epochs, c->weight_bits == 4,
                        (uint32_t)c->augment, (uint32_t)c->threads};
    for (int i = 0; i < 6; i++, p += 4) q4_put_u32(p, ints[i]);
    q4_put_u64(p, c->seed), p += 8;
    double reals[7] = {c->learning_rate, c->weight_decay, c->beta1, c->beta2, c->adam_eps, c->clip_norm, c->tanh_bound};
    for (int i = 0; i < 7; i++, p += 8) memcpy(p, &reals[i], 8); /* little-endian host */
    q4_put_u32(p, (uint32_t)c->cosine_t_max), p += 4;
    memcpy(p, &c->dropout, 8), p += 8;
    memcpy(p, v2 + 16, 92); /* epoch .. BN count */
    memcpy(out + 16 + 256, v2 + size - 4 - arrays, arrays);
    q4_put_u32(out + *v1_size - 4, q4_crc32(0, out, *v1_size - 4));
    return out;
}

/* A well-formed checkpoint (its CRC recomputed: a CRC is no signature) with one field made
 * hostile is refused before anything is used: by read_info, and by load, which leaves the
 * session as it was. The position fields are the ones that crashed training before. */
static void test_hostile_headers(void) {
    q4_session *s = new_session(2, 1);
    train(s, 3);
    uint8_t *good;
    size_t size;
    CHECK(q4_session_save(s, &good, &size) == Q4_OK, "save");
    uint8_t *bad = malloc(size);
    float *before = malloc(s->model.param_count * 4);
    memcpy(before, s->model.params, s->model.param_count * 4);
    uint32_t header = q4_get_u32(good + 12), config_bytes = q4_get_u32(good + 16 + header);
    size_t arrays = 16 + header + 4 + config_bytes;
    double nan = NAN, two = 2.0;
    struct { const char *what; size_t at; int width; uint64_t value; const char *words; } cases[] = {
        {"step in epoch -1000000", 16 + 4, 4, (uint32_t)-1000000, "position is inconsistent"},
        {"step in epoch past the epoch", 16 + 4, 4, 5, "position is inconsistent"},
        {"epoch -1", 16 + 0, 4, (uint32_t)-1, "position is inconsistent"},
        {"global step that does not add up", 16 + 8, 8, 4, "position is inconsistent"},
        {"images seen this epoch that do not add up", 16 + 32, 8, 7, "metrics of the epoch in progress"},
        {"more correct than seen", 16 + 24, 8, 1000, "metrics of the epoch in progress"},
        {"NaN loss sum", 16 + 16, 8, 0, "metrics of the epoch in progress"},
        {"best epoch after the current one", 16 + 56, 4, 9, "best accuracy is out of range"},
        {"best accuracy 2", 16 + 48, 8, 0, "best accuracy is out of range"},
        {"NaN best accuracy", 16 + 48, 8, 0, "best accuracy is out of range"},
        {"negative training image count", 16 + 60, 4, (uint32_t)-150, "image counts disagree"},
        {"a NaN weight", arrays + 4 * 1000, 4, 0x7fc00000u, "non-finite"},
        {"a negative BN variance", arrays + 4 * (s->model.param_count + s->model.bn_total + 3), 4, 0xbf800000u,
         "negative-variance"},
    };
    memcpy(&cases[6].value, &nan, 8);
    memcpy(&cases[8].value, &two, 8);
    memcpy(&cases[9].value, &nan, 8);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, good, size);
        if (cases[i].width == 4) q4_put_u32(bad + cases[i].at, (uint32_t)cases[i].value);
        else q4_put_u64(bad + cases[i].at, cases[i].value);
        q4_put_u32(bad + size - 4, q4_crc32(0, bad, size - 4));
        q4_checkpoint_info info;
        q4_error err = {0};
        int arrays_field = cases[i].at >= arrays; /* only load looks at the arrays */
        if (!arrays_field)
            CHECK(q4_checkpoint_read_info(bad, size, &info, &err) == Q4_ERR_FORMAT && strstr(err.message, cases[i].words),
                  "%s: read_info says '%s'", cases[i].what, err.message);
        q4_status st = q4_session_load(s, bad, size);
        CHECK(st == Q4_ERR_FORMAT && strstr(q4_session_error(s), cases[i].words), "%s: load says %d '%s'", cases[i].what,
              st, q4_session_error(s));
        CHECK(memcmp(before, s->model.params, s->model.param_count * 4) == 0 && s->global_step == 3,
              "%s: the refused checkpoint changed the session", cases[i].what);
    }
    /* the settings text: an unknown setting, a value out of range, no text at all */
    const char *texts[][2] = {{"turbo=1\n", "there is no setting 'turbo'"},
                              {"batch_size=0\n", "batch_size must be"},
                              {"", "image counts disagree"}};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(texts[i][0]), forged_size = size - config_bytes + n;
        uint8_t *forged = malloc(forged_size);
        memcpy(forged, good, 16 + header);
        q4_put_u32(forged + 16 + header, (uint32_t)n);
        memcpy(forged + 16 + header + 4, texts[i][0], n);
        memcpy(forged + 16 + header + 4 + n, good + arrays, size - arrays);
        q4_put_u32(forged + forged_size - 4, q4_crc32(0, forged, forged_size - 4));
        q4_checkpoint_info info;
        q4_error err = {0};
        CHECK(q4_checkpoint_read_info(forged, forged_size, &info, &err) == Q4_ERR_FORMAT &&
                  strstr(err.message, texts[i][1]),
              "settings '%s': %s", texts[i][0], err.message);
        free(forged);
    }
    /* the untouched checkpoint still loads */
    CHECK(q4_session_load(s, good, size) == Q4_OK, "the good checkpoint: %s", q4_session_error(s));
    free(good), free(bad), free(before);
    q4_session_destroy(s);
}

/* A checkpoint of format version 1 (written before the settings table) still resumes. */
static void test_version1(void) {
    q4_session *a = new_session(2, 1);
    train(a, 3);
    uint8_t *v2;
    size_t size, v1_size;
    CHECK(q4_session_save(a, &v2, &size) == Q4_OK, "save");
    uint8_t *v1 = to_version1(a, v2, size, &v1_size);
    q4_checkpoint_info info;
    q4_error err = {0};
    CHECK(q4_checkpoint_read_info(v1, v1_size, &info, &err) == Q4_OK, "version 1 info: %s", err.message);
    CHECK(info.version == 1 && info.global_step == 3 && info.config.seed == 42 && info.config.batch_size == BATCH &&
              info.config.train_limit == TRAIN && info.config.test_limit == TEST,
          "version 1 info: version %d, step %lld, seed %llu", info.version, info.global_step,
          (unsigned long long)info.config.seed);
    q4_session *b = new_session(1, 1);
    CHECK(q4_session_load(b, v1, v1_size) == Q4_OK, "version 1 load: %s", q4_session_error(b));
    CHECK(same_state(a, b), "a version 1 checkpoint loads a different state");
    train(a, 2);
    train(b, 2);
    CHECK(same_state(a, b), "training on from a version 1 checkpoint differs");
    free(v1);
    free(v2);
    q4_session_destroy(a);
    q4_session_destroy(b);
}

static void test_nan(void) {
    q4_session *s = new_session(2, 1);
    train(s, 2);
    s->model.param.fc1_weight[5] = NAN;
    float *before = malloc(s->model.param_count * 4);
    memcpy(before, s->model.params, s->model.param_count * 4);
    long long step = s->global_step;
    q4_progress p;
    q4_status st = q4_session_train(s, 1, &p);
    CHECK(st == Q4_ERR_NUMERIC, "a NaN weight did not stop training (status %d)", st);
    CHECK(strstr(q4_session_error(s), "NaN") != NULL, "message: %s", q4_session_error(s));
    CHECK(s->global_step == step && memcmp(before, s->model.params, s->model.param_count * 4) == 0,
          "the failed step changed the state");
    free(before);
    q4_session_destroy(s);
}

int main(void) {
    make_data();
    test_resume_and_threads(1);
    test_resume_and_threads(0);
    /* the fast recipe (SGD momentum, the per-step one-cycle schedule, label smoothing) with
     * the moving average, cutout and alternating flips on: their state and position survive
     * a save too; in micro-batches of 12 (32 = 12 + 12 + 8, the epoch's last batch of 22 =
     * 12 + 10), which must not depend on the thread count either */
    recipe_settings = "recipe=fast\nbatch_size=32\nepochs=3\nema=0.99\ncutout=8\nflip=alternate\nmicro_batch=12";
    test_resume_and_threads(1);
    recipe_settings = NULL;
    test_nan();
    test_version1();
    test_hostile_headers();
    return test_finish("test_checkpoint");
}
