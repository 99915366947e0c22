/* bindings.c - the engine's WebAssembly face: plain exported C functions over integer
 * handles. Settings go in as "name=value" lines (the core's one parser checks them);
 * everything that comes out (configurations, progress, epoch reports, profiles, checkpoint
 * information) is the core's own JSON, read by name in wasm/q4.js. Functions returning text
 * return NULL on error, the others a negative status; q4w_last_error says why. The only file
 * that knows about Emscripten. Nothing here aborts. */
#include <emscripten.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/include/q4.h"
#include "../core/util/json.h"

#define MAX_HANDLES 8

static q4_cifar *cifars[MAX_HANDLES];
static q4_session *sessions[MAX_HANDLES];
static int session_data[MAX_HANDLES]; /* the cifar handle a session trains on */
static q4_card *session_card[MAX_HANDLES]; /* its run card, recorded as it trains */
static q4_card *verify_card[MAX_HANDLES];  /* the card a session verifies, and how far it got */
static q4_card_verification *verify_state[MAX_HANDLES];
static char last_error[600];

/* The text a function returns: valid until the next call that returns text. */
static char *reply;
static size_t reply_capacity;

static int fail(int status, const char *message) {
    snprintf(last_error, sizeof last_error, "%s", message);
    return status ? -status : -1;
}

static char *reply_room(size_t length) {
    if (length + 1 > reply_capacity) {
        char *grown = realloc(reply, length + 1);
        if (!grown) {
            fail(Q4_ERR_NOMEM, "out of memory");
            return NULL;
        }
        reply = grown;
        reply_capacity = length + 1;
    }
    return reply;
}

/* Returns the text that `call_with_out_size` (a q4_*_json call or snprintf naming the
 * locals `out` and `size`) writes: called once to measure, once to write into the reply. */
#define REPLY_JSON(call_with_out_size)                         \
    do {                                                       \
        char *out = NULL;                                      \
        size_t size = 0;                                       \
        size_t length = call_with_out_size;                    \
        if (!(out = reply_room(length))) return NULL;          \
        size = length + 1;                                     \
        (void)(call_with_out_size);                            \
        return out;                                            \
    } while (0)

EMSCRIPTEN_KEEPALIVE const char *q4w_last_error(void) { return last_error; }
EMSCRIPTEN_KEEPALIVE const char *q4w_kernels(void) { return q4_kernels_name(); }
EMSCRIPTEN_KEEPALIVE void *q4w_malloc(double size) { return malloc((size_t)size); }
EMSCRIPTEN_KEEPALIVE void q4w_free(void *p) { free(p); }
/* bytes allocated and not freed (the WebAssembly memory itself never shrinks) */
EMSCRIPTEN_KEEPALIVE double q4w_memory_in_use(void) { return (double)mallinfo().uordblks; }

/* q4_threads_probe: seconds for a fixed amount of arithmetic on `threads` threads (negative: none) */
EMSCRIPTEN_KEEPALIVE double q4w_threads_probe(int threads) { return q4_threads_probe(threads); }

/* ------------------------------------------------------------ settings */

/* The configuration table: [{name, type, default, lowest, highest, choices, ...}] */
EMSCRIPTEN_KEEPALIVE const char *q4w_config_fields(void) { REPLY_JSON(q4_config_fields_json(out, size)); }

/* The configuration that "name=value" lines make from the defaults, as JSON; NULL (and the
 * reason) if a line is wrong. */
EMSCRIPTEN_KEEPALIVE const char *q4w_config_resolve(const char *text) {
    q4_config c;
    q4_config_default(&c);
    q4_error err = {0};
    if (q4_config_parse(&c, text, &err) || q4_config_check(&c, &err)) {
        fail(err.status, err.message);
        return NULL;
    }
    REPLY_JSON(q4_config_json(&c, out, size));
}

/* ------------------------------------------------------------ data */

/* Reads from a JavaScript source (a Blob via FileReaderSync, or bytes), by id; the JS side
 * catches its own exceptions and returns -1 (they must not unwind through C frames). */
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

static q4_cifar *cifar_of(int h) {
    if (h < 0 || h >= MAX_HANDLES || !cifars[h]) {
        fail(Q4_ERR_ARGUMENT, "no such dataset");
        return NULL;
    }
    return cifars[h];
}

/* Adds one file (a shard, a label-name file or an official tarball) read from JS source `id`. */
EMSCRIPTEN_KEEPALIVE int q4w_cifar_add(int h, const char *name, int id, double size) {
    q4_cifar *c = cifar_of(h);
    if (!c) return -Q4_ERR_ARGUMENT;
    js_source context = {id};
    q4_source source = {js_read, &context, name, (long long)size};
    q4_error err = {0};
    q4_status st = q4_cifar_add(c, name, &source, &err);
    return st ? fail(st, err.message) : 0;
}

EMSCRIPTEN_KEEPALIVE int q4w_cifar_finish(int h, int require_complete) {
    q4_cifar *c = cifar_of(h);
    if (!c) return -Q4_ERR_ARGUMENT;
    q4_error err = {0};
    q4_status st = q4_cifar_finish(c, require_complete, &err);
    return st ? fail(st, err.message) : 0;
}

/* {kind, classes, train, test, shards, names: [...]} */
static size_t cifar_json(const q4_cifar *c, char *out, size_t size) {
    int shards = 0;
    for (int i = 0; i < Q4_MAX_SHARDS; i++) shards += c->train.shards[i].count > 0;
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_int(&j, "kind", (int)c->kind);
    q4_json_int(&j, "classes", c->num_classes);
    q4_json_int(&j, "train", c->train.count);
    q4_json_int(&j, "test", c->test.count);
    q4_json_int(&j, "shards", shards);
    q4_json_open(&j, "names", '[');
    for (int k = 0; k < c->num_classes; k++) q4_json_string(&j, NULL, c->class_names[k]);
    q4_json_close(&j);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

EMSCRIPTEN_KEEPALIVE const char *q4w_cifar_info(int h) {
    q4_cifar *c = cifar_of(h);
    if (!c) return NULL;
    REPLY_JSON(cifar_json(c, out, size));
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

/* ------------------------------------------------------------ JSON of arrays */

static size_t probabilities_json(const double *p, int k, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '[');
    for (int c = 0; c < k; c++) q4_json_number(&j, NULL, p[c]);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

static size_t filters_json(const float *weights, const float *quantized, float scale, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_number(&j, "scale", scale);
    q4_json_open(&j, "weights", '[');
    for (int i = 0; i < 1728; i++) q4_json_number(&j, NULL, weights[i]);
    q4_json_close(&j);
    q4_json_open(&j, "quantized", '[');
    for (int i = 0; i < 1728; i++) q4_json_number(&j, NULL, quantized[i]);
    q4_json_close(&j);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

/* ------------------------------------------------------------ sessions */

/* settings: "name=value" lines over the defaults (the recipe line first), train_limit and
 * test_limit among them. */
EMSCRIPTEN_KEEPALIVE int q4w_session_create(int data, const char *settings) {
    q4_cifar *cifar = cifar_of(data);
    if (!cifar) return -Q4_ERR_ARGUMENT;
    q4_config c;
    q4_config_default(&c);
    q4_error err = {0};
    if (q4_config_parse(&c, settings, &err)) return fail(err.status, err.message);
    for (int h = 0; h < MAX_HANDLES; h++)
        if (!sessions[h]) {
            sessions[h] = q4_session_create(&c, &cifar->train, &cifar->test, &err);
            if (!sessions[h]) return fail(err.status, err.message);
            session_data[h] = data;
            session_card[h] = q4_card_create(sessions[h], cifar, &err); /* NULL: no card, training goes on */
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
    q4_card_free(session_card[h]);
    session_card[h] = NULL;
    q4_card_free(verify_card[h]);
    verify_card[h] = NULL;
    free(verify_state[h]);
    verify_state[h] = NULL;
}

EMSCRIPTEN_KEEPALIVE const char *q4w_session_config(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    REPLY_JSON(q4_config_json(q4_session_config(s), out, size));
}

/* {parameters, memory_bytes, kernels} */
EMSCRIPTEN_KEEPALIVE const char *q4w_session_info(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    REPLY_JSON((size_t)snprintf(out, size, "{\"parameters\":%lld,\"memory_bytes\":%zu,\"kernels\":\"%s\"}",
                                q4_session_parameter_count(s), q4_session_memory_bytes(s), q4_session_kernels(s)));
}

EMSCRIPTEN_KEEPALIVE int q4w_set_threads(int h, int threads) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_status st = q4_session_set_threads(s, threads);
    return st ? session_fail(s, st) : 0;
}

/* Runs up to `steps` training steps (stopping at an epoch's end); the progress as JSON. */
EMSCRIPTEN_KEEPALIVE const char *q4w_train(int h, int steps) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    q4_progress p;
    q4_status st = q4_session_train(s, steps, &p);
    if (st) {
        session_fail(s, st);
        return NULL;
    }
    if (session_card[h]) q4_card_record(session_card[h], s, NULL);
    REPLY_JSON(q4_progress_json(&p, out, size));
}

EMSCRIPTEN_KEEPALIVE const char *q4w_progress(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    q4_progress p;
    q4_session_progress(s, &p);
    REPLY_JSON(q4_progress_json(&p, out, size));
}

/* The end of the epoch training just finished: the full report as JSON. */
EMSCRIPTEN_KEEPALIVE const char *q4w_end_epoch(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    static q4_epoch_report report;
    q4_status st = q4_session_end_epoch(s, &report);
    if (st) {
        session_fail(s, st);
        return NULL;
    }
    if (session_card[h]) q4_card_record(session_card[h], s, &report);
    REPLY_JSON(q4_epoch_report_json(&report, 1, out, size));
}

/* A test-set evaluation outside the epoch cycle (benchmarks): {accuracy, loss, count, correct} */
EMSCRIPTEN_KEEPALIVE const char *q4w_evaluate(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    q4_evaluation e;
    q4_status st = q4_session_evaluate(s, &e, NULL, 0);
    if (st) {
        session_fail(s, st);
        return NULL;
    }
    REPLY_JSON((size_t)snprintf(out, size, "{\"accuracy\":%.17g,\"loss\":%.17g,\"count\":%d,\"correct\":%d}", e.accuracy,
                                e.loss, e.count, e.correct));
}

EMSCRIPTEN_KEEPALIVE const char *q4w_profile(int h, int reset) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    q4_profile p;
    q4_session_profile(s, &p);
    if (reset) q4_session_profile_reset(s);
    REPLY_JSON(q4_profile_json(&p, out, size));
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

/* Loads a checkpoint into session h; its run card now begins at the checkpoint (a saved run's
 * own card replaces it through q4w_card_continue). */
EMSCRIPTEN_KEEPALIVE int q4w_load(int h, const uint8_t *bytes, double size) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_status st = q4_session_load(s, bytes, (size_t)size);
    if (st) return session_fail(s, st);
    q4_error err = {0};
    q4_cifar *cifar = cifar_of(session_data[h]);
    q4_card_free(session_card[h]);
    session_card[h] = cifar ? q4_card_create(s, cifar, &err) : NULL; /* NULL: no card, training goes on */
    return 0;
}

/* What a checkpoint holds: {version, config, train_count, test_count, epoch, ...} */
EMSCRIPTEN_KEEPALIVE const char *q4w_checkpoint_info(const uint8_t *bytes, double size) {
    q4_checkpoint_info info;
    q4_error err = {0};
    q4_status st = q4_checkpoint_read_info(bytes, (size_t)size, &info, &err);
    if (st) {
        fail(st, err.message);
        return NULL;
    }
    REPLY_JSON(q4_checkpoint_info_json(&info, out, size));
}

/* ------------------------------------------------------------ run cards */

/* The session's run card as JSON (from its first step, or from the checkpoint it resumed). */
EMSCRIPTEN_KEEPALIVE const char *q4w_card(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    if (!session_card[h]) {
        fail(Q4_ERR_STATE, "this run has no run card");
        return NULL;
    }
    REPLY_JSON(q4_card_json(session_card[h], out, size));
}

/* Continues a saved run's card (its settings must be the session's). */
EMSCRIPTEN_KEEPALIVE int q4w_card_continue(int h, const char *text) {
    q4_session *s = session_of(h);
    if (!s) return -Q4_ERR_ARGUMENT;
    q4_error err = {0};
    q4_card *card = q4_card_parse(text, strlen(text), &err);
    if (!card) return fail(err.status, err.message);
    char differences[512];
    if (q4_config_differences(q4_card_config(card), q4_session_config(s), differences, sizeof differences)) {
        q4_card_free(card);
        return fail(Q4_ERR_MISMATCH, "the run card belongs to another run");
    }
    q4_card_free(session_card[h]);
    session_card[h] = card;
    return 0;
}

/* A card's settings as JSON, after checking the data (handle) against its MD5s. */
EMSCRIPTEN_KEEPALIVE const char *q4w_card_settings(int data, const char *text) {
    q4_cifar *cifar = cifar_of(data);
    if (!cifar) return NULL;
    q4_error err = {0};
    q4_card *card = q4_card_parse(text, strlen(text), &err);
    if (!card) {
        fail(err.status, err.message);
        return NULL;
    }
    if (q4_card_check_data(card, cifar, &err)) {
        q4_card_free(card);
        fail(err.status, err.message);
        return NULL;
    }
    q4_config config = *q4_card_config(card);
    q4_card_free(card);
    REPLY_JSON(q4_config_json(&config, out, size));
}

/* Starts verifying a card in a new session made with its settings (q4w_card_settings): refuses a
 * card that cannot be an honest record of them. Returns the verification's state as JSON. */
EMSCRIPTEN_KEEPALIVE const char *q4w_verify_begin(int h, const char *text, double steps) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    q4_error err = {0};
    q4_card *card = q4_card_parse(text, strlen(text), &err);
    q4_card_verification *v = card ? malloc(sizeof *v) : NULL;
    if (card && !v) {
        err.status = Q4_ERR_NOMEM;
        snprintf(err.message, sizeof err.message, "out of memory for the verification");
    }
    if (!v || q4_card_verify_begin(card, s, (long long)steps, v, &err)) {
        q4_card_free(card);
        free(v);
        fail(err.status, err.message);
        return NULL;
    }
    q4_card_free(verify_card[h]);
    free(verify_state[h]);
    verify_card[h] = card;
    verify_state[h] = v;
    REPLY_JSON(q4_card_verification_json(v, card, out, size));
}

/* One step of the verification begun with q4w_verify_begin; its state as JSON. */
EMSCRIPTEN_KEEPALIVE const char *q4w_verify_step(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    if (!verify_state[h]) {
        fail(Q4_ERR_STATE, "no verification was begun in this session");
        return NULL;
    }
    q4_error err = {0};
    if (q4_card_verify_step(verify_card[h], s, verify_state[h], &err)) {
        fail(err.status, err.message);
        return NULL;
    }
    REPLY_JSON(q4_card_verification_json(verify_state[h], verify_card[h], out, size));
}

/* SHA-256 of the session's training state (run cards' fingerprints): 64 hex digits. */
EMSCRIPTEN_KEEPALIVE const char *q4w_state_sha256(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    static char hex[65];
    q4_session_state_sha256(s, hex);
    return hex;
}

/* ------------------------------------------------------------ exported models */

/* A model loaded from its exported bytes (q4train --export, Export 4-bit model), evaluated as
 * its run card's run evaluated (q4_card_claim) or, without a card, plainly on every test image. */
typedef struct loaded_model {
    q4_model *model;
    int with_card;
    q4_card_claim claim;
    q4_evaluation plain, augmented;
    int evaluated;  /* 0: not yet, 1: plainly, 2: with the card's test-time augmentation too */
    int evaluating; /* 0: no evaluation under way; 1: the plain one, 2: the augmented one */
    int eval_data;  /* the data handle it evaluates */
    char name[256]; /* the model file's name, which its errors begin with */
} loaded_model;
static loaded_model models[MAX_HANDLES];

static loaded_model *model_of(int h) {
    if (h < 0 || h >= MAX_HANDLES || !models[h].model) {
        fail(Q4_ERR_ARGUMENT, "no such model");
        return NULL;
    }
    return &models[h];
}

/* An error about one of the files, named: "NAME: message". */
static int fail_named(int status, const char *name, const char *message) {
    char named[sizeof last_error];
    snprintf(named, sizeof named, "%s: %s", name, message);
    return fail(status, named);
}

/* card: a run card's JSON text, or "" for none. With a card the data (handle) is checked against
 * its MD5s and the model is loaded in the card's arithmetic (exact, integer_eval). Errors name the
 * file they are about (model_name, card_name). */
EMSCRIPTEN_KEEPALIVE int q4w_model_load(int data, const uint8_t *bytes, double size, int threads, const char *card_text,
                                        const char *model_name, const char *card_name) {
    q4_cifar *cifar = cifar_of(data);
    if (!cifar) return -Q4_ERR_ARGUMENT;
    int h = 0;
    while (h < MAX_HANDLES && models[h].model) h++;
    if (h == MAX_HANDLES) return fail(Q4_ERR_STATE, "too many models open");
    q4_error err = {0};
    loaded_model m = {0};
    if (card_text[0]) {
        q4_card *card = q4_card_parse(card_text, strlen(card_text), &err);
        q4_status st = card ? q4_card_claim_read(card, cifar, &m.claim, &err) : err.status;
        q4_card_free(card);
        if (st) return fail_named(st, card_name, err.message);
        m.with_card = 1;
    }
    m.model = q4_model_load(bytes, (size_t)size, threads, m.claim.exact, &err);
    if (!m.model) return fail_named(err.status, model_name, err.message);
    if (m.claim.integer_eval && q4_model_set_integer(m.model, 1, &err)) {
        q4_model_destroy(m.model);
        return fail_named(err.status, model_name, err.message);
    }
    snprintf(m.name, sizeof m.name, "%s", model_name);
    models[h] = m;
    return h;
}

EMSCRIPTEN_KEEPALIVE void q4w_model_destroy(int h) {
    if (h < 0 || h >= MAX_HANDLES || !models[h].model) return;
    q4_model_destroy(models[h].model);
    memset(&models[h], 0, sizeof models[h]);
}

static size_t model_info_json(const loaded_model *m, char *out, size_t size) {
    const q4_card_summary *cs = &m->claim.summary;
    int augmented = m->claim.tta != Q4_TTA_NONE;
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_int(&j, "classes", q4_model_num_classes(m->model));
    q4_json_raw(&j, "card", m->with_card ? "true" : "false");
    q4_json_int(&j, "test_limit", m->claim.test_limit);
    q4_json_raw(&j, "augmented", augmented ? "true" : "false");
    q4_json_int(&j, "exact", m->claim.exact);
    q4_json_int(&j, "integer_eval", m->claim.integer_eval);
    if (m->with_card) {
        q4_json_int(&j, "epochs", cs->epochs);
        q4_json_number(&j, "test_accuracy", cs->test_accuracy);
        if (augmented) q4_json_number(&j, "tta_accuracy", cs->tta_accuracy);
        else q4_json_raw(&j, "tta_accuracy", "null");
        q4_json_string(&j, "engine", cs->engine);
        q4_json_string(&j, "kernels", cs->kernels);
    }
    q4_json_close(&j);
    return q4_json_finish(&j);
}

/* {classes, card, test_limit, augmented, exact, integer_eval}: how the model is evaluated; with a
 * card also what it claims: {epochs, test_accuracy, tta_accuracy (null without augmentation),
 * engine, kernels} */
EMSCRIPTEN_KEEPALIVE const char *q4w_model_info(int h) {
    loaded_model *m = model_of(h);
    if (!m) return NULL;
    REPLY_JSON(model_info_json(m, out, size));
}

/* Begins an evaluation of the model on the data's test images (the card's first test_limit):
 * plainly (augmented 0), or with the card's test-time augmentation (1, after the plain one); then
 * q4w_model_evaluate_step until it says done. 0, or a negative status. */
EMSCRIPTEN_KEEPALIVE int q4w_model_evaluate_begin(int h, int data, int augmented) {
    loaded_model *m = model_of(h);
    q4_cifar *cifar = m ? cifar_of(data) : NULL;
    if (!cifar) return -Q4_ERR_ARGUMENT;
    if (augmented && (m->claim.tta == Q4_TTA_NONE || m->evaluated < 1))
        return fail(Q4_ERR_STATE, "the augmented evaluation follows the plain one, for a card that claims one");
    q4_dataset test = q4_dataset_prefix(&cifar->test, m->claim.test_limit);
    q4_error err = {0};
    m->evaluating = 0;
    q4_status st = q4_model_evaluate_begin(m->model, &test, augmented ? m->claim.tta : Q4_TTA_NONE,
                                           augmented ? &m->augmented : &m->plain, &err);
    if (st) return fail_named(st, m->name, err.message);
    if (!augmented) m->evaluated = 0; /* the plain one again: an augmented one must follow it again */
    m->evaluating = augmented ? 2 : 1;
    m->eval_data = data;
    return 0;
}

/* Evaluates at least `images` more test images (whole batches) of the evaluation begun:
 * {evaluated, count, done}, and once done {accuracy, loss, correct} too */
EMSCRIPTEN_KEEPALIVE const char *q4w_model_evaluate_step(int h, int images) {
    loaded_model *m = model_of(h);
    if (!m) return NULL;
    if (!m->evaluating) {
        fail(Q4_ERR_STATE, "no evaluation of the model is under way");
        return NULL;
    }
    q4_cifar *cifar = cifar_of(m->eval_data);
    if (!cifar) { /* the data it began on is gone (cifar_of said so) */
        m->evaluating = 0;
        return NULL;
    }
    int augmented = m->evaluating == 2, count = q4_dataset_prefix(&cifar->test, m->claim.test_limit).count, evaluated = 0;
    q4_evaluation *e = augmented ? &m->augmented : &m->plain;
    q4_error err = {0};
    q4_status st = q4_model_evaluate_step(m->model, images, e, &evaluated, &err);
    if (st) {
        m->evaluating = 0;
        fail_named(st, m->name, err.message);
        return NULL;
    }
    int done = evaluated == count;
    if (done) {
        m->evaluating = 0;
        m->evaluated = augmented ? 2 : 1;
        REPLY_JSON((size_t)snprintf(out, size,
                                    "{\"evaluated\":%d,\"count\":%d,\"done\":true,\"accuracy\":%.17g,\"loss\":%.17g,\"correct\":%d}",
                                    evaluated, count, e->accuracy, e->loss, e->correct));
    }
    REPLY_JSON((size_t)snprintf(out, size, "{\"evaluated\":%d,\"count\":%d,\"done\":false}", evaluated, count));
}

static size_t verdict_json(int same, const char *message, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_raw(&j, "same", same ? "true" : "false");
    q4_json_string(&j, "message", message);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

/* The verdict of the evaluations against the card: {"same": true|false, "message": "AS CLAIMED: ..."} */
EMSCRIPTEN_KEEPALIVE const char *q4w_model_verdict(int h, const char *card_name) {
    loaded_model *m = model_of(h);
    if (!m) return NULL;
    if (!m->with_card || m->evaluated < (m->claim.tta != Q4_TTA_NONE ? 2 : 1)) {
        fail(Q4_ERR_STATE, m->with_card ? "evaluate the model first" : "the model was loaded without a run card");
        return NULL;
    }
    static char message[512];
    int same = q4_card_claim_compare(&m->claim, &m->plain, &m->augmented, card_name, message, sizeof message);
    REPLY_JSON(verdict_json(same, message, out, size));
}

/* The class probabilities the model gives one image (3072 bytes): [p0, p1, ...] */
EMSCRIPTEN_KEEPALIVE const char *q4w_model_classify(int h, const uint8_t *image) {
    loaded_model *m = model_of(h);
    if (!m) return NULL;
    double p[Q4_MAX_CLASSES];
    q4_error err = {0};
    q4_status st = q4_model_classify(m->model, image, p, &err);
    if (st) {
        fail(st, err.message);
        return NULL;
    }
    int k = q4_model_num_classes(m->model);
    REPLY_JSON(probabilities_json(p, k, out, size));
}

/* ------------------------------------------------------------ looking at the model */

/* The class probabilities for one image (3072 bytes, R, G, B planes of 32x32): [p0, p1, ...] */
EMSCRIPTEN_KEEPALIVE const char *q4w_classify(int h, const uint8_t *image) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    double p[Q4_MAX_CLASSES];
    q4_status st = q4_session_classify(s, image, p);
    if (st) {
        session_fail(s, st);
        return NULL;
    }
    int k = q4_session_config(s)->num_classes;
    REPLY_JSON(probabilities_json(p, k, out, size));
}

/* conv1's filters: {"scale": s, "weights": [1728], "quantized": [1728]} ([64][3][3][3]) */
EMSCRIPTEN_KEEPALIVE const char *q4w_conv1(int h) {
    q4_session *s = session_of(h);
    if (!s) return NULL;
    static float weights[1728], quantized[1728];
    float scale;
    q4_session_conv1(s, weights, quantized, &scale);
    REPLY_JSON(filters_json(weights, quantized, scale, out, size));
}
