/* fuzz_checkpoint.c - libFuzzer target: checkpoints that a hostile or broken file could hold,
 * loaded into a real session (a small generated dataset), then one training step when the
 * load is accepted. The input overwrites the start of a valid checkpoint of that session
 * (header, settings text, the first weights), so mutations explore the header and settings
 * while the arrays stay the right size; the fuzzing build skips the CRC (Q4_FUZZING), so the
 * checks behind it are reached. A refused load must leave the session as it was (checked
 * here: abort() tells libFuzzer), an accepted one must train or fail cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/session/session.h"

#define TRAIN 40
#define TEST 8

static uint8_t pixels[(TRAIN + TEST) * Q4_IMAGE_BYTES], labels[TRAIN + TEST];
static q4_dataset train_set, test_set;
static q4_session *session;
static uint8_t *valid;
static size_t valid_size;
static uint8_t *candidate;

/* the position and a sample of every array (a load copies all of them or none) */
static uint64_t state_hash(const q4_session *s) {
    uint64_t h = 1469598103934665603ull;
#define MIX(v) (h = (h ^ (uint64_t)(v)) * 1099511628211ull)
    MIX(s->epoch), MIX(s->step_in_epoch), MIX(s->global_step), MIX(s->best_epoch), MIX(s->epoch_seen);
    const float *arrays[3] = {s->model.params, s->moments, s->model.running_mean};
    long long counts[3] = {s->model.param_count, 2 * s->model.param_count, 2 * s->model.bn_total};
    for (int a = 0; a < 3; a++)
        for (long long i = 0; i < counts[a]; i += 4099) {
            uint32_t u;
            memcpy(&u, &arrays[a][i], 4);
            MIX(u);
        }
#undef MIX
    return h;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < (TRAIN + TEST) * Q4_IMAGE_BYTES; i++) pixels[i] = (uint8_t)(i * 2654435761u >> 24);
    for (int i = 0; i < TRAIN + TEST; i++) labels[i] = (uint8_t)(i % 10);
    q4_dataset tr = {TRAIN, 10, 1, {{TRAIN, pixels, labels, NULL}}};
    q4_dataset te = {TEST, 10, 1, {{TEST, pixels + TRAIN * Q4_IMAGE_BYTES, labels + TRAIN, NULL}}};
    train_set = tr;
    test_set = te;
    q4_config c;
    q4_config_default(&c);
    c.batch_size = 16;
    c.epochs = 2;
    q4_error err;
    session = q4_session_create(&c, &train_set, &test_set, &err);
    q4_progress p;
    if (!session || q4_session_train(session, 1, &p)) abort();
    if (q4_session_save(session, &valid, &valid_size)) abort();
    candidate = malloc(valid_size);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    memcpy(candidate, valid, valid_size);
    memcpy(candidate, data, size < valid_size ? size : valid_size);
    q4_checkpoint_info info;
    q4_error err;
    (void)q4_checkpoint_read_info(candidate, valid_size, &info, &err);
    uint64_t before = state_hash(session);
    if (q4_session_load(session, candidate, valid_size) != Q4_OK) {
        if (state_hash(session) != before) abort(); /* a refused checkpoint changed the session */
        return 0;
    }
    q4_progress p;
    (void)q4_session_train(session, 1, &p);
    if (q4_session_load(session, valid, valid_size)) abort(); /* back to the valid state */
    return 0;
}
