/* fuzz_model.c - libFuzzer target: exported model files. The input overwrites the start of a
 * valid export (header, the first layers' shapes, scales and packed levels), the fuzzing build
 * skips the CRC (Q4_FUZZING); a model that loads is evaluated on a few generated images. The
 * loader must refuse what it cannot read, never crash or read out of bounds; an input of any
 * length is also tried as a whole file. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/include/q4.h"

#define TRAIN 32
#define TEST 8

static uint8_t pixels[(TRAIN + TEST) * Q4_IMAGE_BYTES], labels[TRAIN + TEST];
static q4_dataset test_set;
static uint8_t *valid, *candidate;
static size_t valid_size;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    for (int i = 0; i < (TRAIN + TEST) * Q4_IMAGE_BYTES; i++) pixels[i] = (uint8_t)(i * 2654435761u >> 24);
    for (int i = 0; i < TRAIN + TEST; i++) labels[i] = (uint8_t)(i % 10);
    q4_dataset tr = {TRAIN, 10, 1, {{TRAIN, pixels, labels, NULL}}};
    q4_dataset te = {TEST, 10, 1, {{TEST, pixels + TRAIN * Q4_IMAGE_BYTES, labels + TRAIN, NULL}}};
    test_set = te;
    q4_config c;
    q4_config_default(&c);
    c.batch_size = 16;
    q4_error err;
    q4_session *s = q4_session_create(&c, &tr, &te, &err);
    q4_progress p;
    if (!s || q4_session_train(s, 1, &p) || q4_session_export(s, &valid, &valid_size)) abort();
    q4_session_destroy(s);
    candidate = malloc(valid_size);
    return 0;
}

static void try_model(const uint8_t *bytes, size_t size) {
    q4_error err;
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    if (!model) return;
    q4_evaluation e;
    (void)q4_model_evaluate(model, &test_set, Q4_TTA_NONE, &e, &err);
    q4_model_destroy(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    memcpy(candidate, valid, valid_size);
    memcpy(candidate, data, size < valid_size ? size : valid_size);
    try_model(candidate, valid_size);
    try_model(data, size);
    return 0;
}
