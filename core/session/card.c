/* card.c - run cards: one JSON file that says what a run was (engine, kernels, every setting,
 * the data's MD5s) and fingerprints its training state (SHA-256) after each of its first
 * Q4_CARD_STEPS steps and after each epoch, with the epoch's figures. Anyone can re-run it from
 * the card and compare, step by step; in exact mode across builds (native, browser) too.
 * Format (version 1):
 *   {"card":1, "engine":"q4 VERSION", "kernels":"...", "exact":0|1, "config":{...},
 *    "data":{"kind":10|100, "files":{"data_batch_1.bin":"md5", ...}},
 *    "steps":["sha256 after step 1", ...], "epochs":[{"epoch":1, "step":391, "loss":...,
 *    "train_accuracy":..., "test_accuracy":..., "tta_accuracy":...|null, "sha256":"..."}, ...]}
 * A run resumed from a checkpoint that has no card of its own gets a card of what it ran, which
 * says where it began: "start":{"step":S, "epoch":E, "sha256":"the training state's, as loaded"}
 * (after "exact"; absent from a card that begins at step 0). Its "steps" are steps S+1...,
 * its "epochs" E+1...; it is verified from that checkpoint and no other. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/json.h"
#include "../util/util.h"
#include "session.h"

#define CARD_FORMAT 1
#define MAX_FILES (2 * Q4_MAX_SHARDS)

typedef struct card_epoch {
    int epoch;
    long long step;
    double loss, train_accuracy, test_accuracy, tta_accuracy; /* tta: -1 when not measured */
    char sha256[65];
} card_epoch;

struct q4_card {
    char engine[64], kernels[64];
    q4_config config;
    /* where the run began: step 0, or a checkpoint's position (start_epoch epochs ended) and state */
    long long start_step;
    int start_epoch;
    char start_sha256[65];
    int kind;
    int n_files;
    char file_names[MAX_FILES][32], file_md5[MAX_FILES][33];
    int n_steps;
    char steps[Q4_CARD_STEPS][65];
    int n_epochs, capacity;
    card_epoch *epochs;
};

q4_card *q4_card_create(const q4_session *s, const q4_cifar *data, q4_error *err) {
    q4_card *card = calloc(1, sizeof *card);
    if (!card) {
        q4_fail(err, Q4_ERR_NOMEM, "out of memory for the run card");
        return NULL;
    }
    snprintf(card->engine, sizeof card->engine, "q4 %s", Q4_VERSION);
    snprintf(card->kernels, sizeof card->kernels, "%s", s->model.kernels.gemm->name);
    card->config = s->config;
    card->kind = (int)data->kind;
    q4_progress p;
    q4_session_progress(s, &p);
    if (p.global_step > 0) { /* a resumed run: its card begins where the checkpoint left it */
        card->start_step = p.global_step;
        card->start_epoch = (int)(p.global_step / p.steps_per_epoch);
        q4_session_state_sha256(s, card->start_sha256);
    }
    /* the files the run reads: those holding its first train_limit and test_limit images */
    char names[MAX_FILES][32], md5[MAX_FILES][33];
    int n = q4_cifar_md5(data, names, md5, MAX_FILES), file = 0;
    for (int split = 0; split < 2; split++) {
        const q4_dataset *set = split ? &data->test : &data->train;
        int limit = split ? s->config.test_limit : s->config.train_limit, before = 0;
        for (int i = 0; i < Q4_MAX_SHARDS; i++) {
            if (set->shards[i].count == 0) continue;
            if (before < limit && file < n) {
                snprintf(card->file_names[card->n_files], 32, "%s", names[file]);
                snprintf(card->file_md5[card->n_files], 33, "%s", md5[file]);
                card->n_files++;
            }
            before += set->shards[i].count;
            file++;
        }
    }
    return card;
}

void q4_card_free(q4_card *card) {
    if (!card) return;
    free(card->epochs);
    free(card);
}

const q4_config *q4_card_config(const q4_card *card) { return &card->config; }

void q4_card_record(q4_card *card, const q4_session *s, const q4_epoch_report *report) {
    if (s->global_step == card->start_step + card->n_steps + 1 && card->n_steps < Q4_CARD_STEPS)
        q4_session_state_sha256(s, card->steps[card->n_steps++]);
    /* a card has every epoch from its first */
    if (!report || report->epoch != card->start_epoch + card->n_epochs + 1) return;
    if (card->n_epochs == card->capacity) {
        int capacity = card->capacity ? 2 * card->capacity : 16;
        card_epoch *grown = realloc(card->epochs, (size_t)capacity * sizeof *grown);
        if (!grown) return;
        card->epochs = grown;
        card->capacity = capacity;
    }
    card_epoch *e = &card->epochs[card->n_epochs++];
    e->epoch = report->epoch;
    e->step = report->global_step;
    e->loss = report->train_loss;
    e->train_accuracy = report->train_accuracy;
    e->test_accuracy = report->test.accuracy;
    e->tta_accuracy = report->tta_accuracy;
    q4_session_state_sha256(s, e->sha256);
}

size_t q4_card_json(const q4_card *card, char *out, size_t size) {
    char config[8192];
    q4_config_json(&card->config, config, sizeof config);
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_int(&j, "card", CARD_FORMAT);
    q4_json_string(&j, "engine", card->engine);
    q4_json_string(&j, "kernels", card->kernels);
    q4_json_int(&j, "exact", card->config.exact);
    if (card->start_step > 0) {
        q4_json_open(&j, "start", '{');
        q4_json_int(&j, "step", card->start_step);
        q4_json_int(&j, "epoch", card->start_epoch);
        q4_json_string(&j, "sha256", card->start_sha256);
        q4_json_close(&j);
    }
    q4_json_raw(&j, "config", config);
    q4_json_open(&j, "data", '{');
    q4_json_int(&j, "kind", card->kind);
    q4_json_open(&j, "files", '{');
    for (int i = 0; i < card->n_files; i++) q4_json_string(&j, card->file_names[i], card->file_md5[i]);
    q4_json_close(&j);
    q4_json_close(&j);
    q4_json_open(&j, "steps", '[');
    for (int i = 0; i < card->n_steps; i++) q4_json_string(&j, NULL, card->steps[i]);
    q4_json_close(&j);
    q4_json_open(&j, "epochs", '[');
    for (int i = 0; i < card->n_epochs; i++) {
        const card_epoch *e = &card->epochs[i];
        q4_json_open(&j, NULL, '{');
        q4_json_int(&j, "epoch", e->epoch);
        q4_json_int(&j, "step", e->step);
        q4_json_number(&j, "loss", e->loss);
        q4_json_number(&j, "train_accuracy", e->train_accuracy);
        q4_json_number(&j, "test_accuracy", e->test_accuracy);
        if (e->tta_accuracy >= 0) q4_json_number(&j, "tta_accuracy", e->tta_accuracy);
        else q4_json_raw(&j, "tta_accuracy", "null");
        q4_json_string(&j, "sha256", e->sha256);
        q4_json_close(&j);
    }
    q4_json_close(&j);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

/* ------------------------------------------------------------ reading */

/* A card is read strictly: every key known and given once, every number whole or finite and in
 * its range, so that no two readers can see two different cards in one file. */
#define CARD_MAX_BYTES (4u << 20) /* a card of 10000 epochs (the most a run plans) is about 2.6 MB */
#define CARD_MAX_EPOCHS 10000

static int is_hex(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[n] == 0;
}

/* The object at token `at`: refused when it is not an object, has a key twice, or a key that is
 * not in `known` (NULL: any key). `what` names it in the message. */
static q4_status check_object(const char *text, const q4_json_token *t, int at, const char *const *known,
                              const char *what, q4_error *err) {
    if (at < 0 || t[at].type != Q4_JSON_OBJECT) return q4_fail(err, Q4_ERR_FORMAT, "run card: %s is missing or not an object", what);
    int repeated = q4_json_repeated_key(text, t, at);
    if (repeated >= 0)
        return q4_fail(err, Q4_ERR_FORMAT, "run card: %s has the key '%.*s' twice", what,
                       t[repeated].end - t[repeated].start > 64 ? 64 : t[repeated].end - t[repeated].start,
                       text + t[repeated].start);
    for (int i = at + 1, k = 0; known && k < t[at].size; k++, i = t[i + 1].next) {
        int found = 0;
        for (const char *const *name = known; *name && !found; name++)
            found = (size_t)(t[i].end - t[i].start) == strlen(*name) && memcmp(text + t[i].start, *name, strlen(*name)) == 0;
        if (!found)
            return q4_fail(err, Q4_ERR_FORMAT, "run card: %s has an unknown key '%.*s'", what,
                           t[i].end - t[i].start > 64 ? 64 : t[i].end - t[i].start, text + t[i].start);
    }
    return Q4_OK;
}

/* the text of the string or number `key` in object `at` into out */
static q4_status field(const char *text, const q4_json_token *t, int at, const char *key, q4_json_type type, char *out,
                       size_t size, const char *what, q4_error *err) {
    int v = q4_json_find(text, t, at, key);
    if (v < 0 || t[v].type != type || q4_json_text(text, &t[v], out, size))
        return q4_fail(err, Q4_ERR_FORMAT, "run card: %s: '%s' is missing or malformed", what, key);
    return Q4_OK;
}

/* A whole number of object `at` in [lowest, highest]. */
static q4_status whole(const char *text, const q4_json_token *t, int at, const char *key, long long lowest,
                       long long highest, long long *out, const char *what, q4_error *err) {
    char number[32];
    if (field(text, t, at, key, Q4_JSON_PRIMITIVE, number, sizeof number, what, err)) return Q4_ERR_FORMAT;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(number, &end, 10);
    if (errno || *end || end == number || v < lowest || v > highest)
        return q4_fail(err, Q4_ERR_FORMAT, "run card: %s: '%s' must be a whole number from %lld to %lld, not '%s'", what,
                       key, lowest, highest, number);
    *out = v;
    return Q4_OK;
}

/* A finite number of object `at` in [lowest, highest]; with nullable, null reads as -1. */
static q4_status real(const char *text, const q4_json_token *t, int at, const char *key, double lowest, double highest,
                      int nullable, double *out, const char *what, q4_error *err) {
    char number[64];
    if (field(text, t, at, key, Q4_JSON_PRIMITIVE, number, sizeof number, what, err)) return Q4_ERR_FORMAT;
    if (nullable && strcmp(number, "null") == 0) {
        *out = -1.0;
        return Q4_OK;
    }
    char *end = NULL;
    errno = 0;
    double v = strtod(number, &end);
    if (errno || *end || end == number || !(v >= lowest && v <= highest))
        return q4_fail(err, Q4_ERR_FORMAT, "run card: %s: '%s' must be a number from %g to %g%s, not '%s'", what, key,
                       lowest, highest, nullable ? " or null" : "", number);
    *out = v;
    return Q4_OK;
}

q4_card *q4_card_parse(const char *text, size_t size, q4_error *err) {
    if (size > CARD_MAX_BYTES) {
        q4_fail(err, Q4_ERR_FORMAT, "run card: %zu bytes, more than the %u a card may have (10000 epochs fit in 2.6 MB)",
                size, CARD_MAX_BYTES);
        return NULL;
    }
    /* every token takes at least two bytes of text (a value and its separator), so size / 2 + 2 always suffice */
    int max = (int)(size / 2) + 2;
    q4_json_token *t = malloc((size_t)max * sizeof *t);
    q4_card *card = calloc(1, sizeof *card);
    char value[256];
    q4_status st = Q4_OK;
    if (!t || !card) {
        st = q4_fail(err, Q4_ERR_NOMEM, "out of memory reading a run card");
        goto done;
    }
    if (q4_json_parse(text, (int)size, t, max) < 1 || t[0].type != Q4_JSON_OBJECT) {
        st = q4_fail(err, Q4_ERR_FORMAT, "not a run card (not a JSON object)");
        goto done;
    }
    static const char *const top_keys[] = {"card", "engine", "kernels", "exact", "start", "config", "data", "steps", "epochs",
                                           NULL};
    static const char *const start_keys[] = {"step", "epoch", "sha256", NULL};
    static const char *const data_keys[] = {"kind", "files", NULL};
    static const char *const epoch_keys[] = {"epoch", "step", "loss", "train_accuracy", "test_accuracy", "tta_accuracy",
                                             "sha256", NULL};
    if ((st = check_object(text, t, 0, top_keys, "the card", err))) goto done;
    int version = q4_json_find(text, t, 0, "card");
    if (version < 0) {
        st = q4_fail(err, Q4_ERR_FORMAT, "not a run card (no \"card\" field)");
        goto done;
    }
    if (t[version].type != Q4_JSON_PRIMITIVE || q4_json_text(text, &t[version], value, sizeof value) ||
        strcmp(value, "1") != 0) {
        st = q4_fail(err, Q4_ERR_VERSION, "run card format '%.*s' is not supported (this build reads %d)",
                     t[version].end - t[version].start > 32 ? 32 : t[version].end - t[version].start,
                     text + t[version].start, CARD_FORMAT);
        goto done;
    }
    long long exact = 0;
    if ((st = field(text, t, 0, "engine", Q4_JSON_STRING, card->engine, sizeof card->engine, "the card", err)) ||
        (st = field(text, t, 0, "kernels", Q4_JSON_STRING, card->kernels, sizeof card->kernels, "the card", err)) ||
        (st = whole(text, t, 0, "exact", 0, 1, &exact, "the card", err)))
        goto done;
    /* the settings, each through the same rules as everywhere else */
    int config = q4_json_find(text, t, 0, "config");
    if ((st = check_object(text, t, config, NULL, "the settings (\"config\")", err))) goto done;
    q4_config_default(&card->config);
    q4_error why;
    for (int i = config + 1, k = 0; k < t[config].size; k++, i = t[i + 1].next) {
        char name[64] = "?";
        q4_error_clear(&why);
        snprintf(why.message, sizeof why.message, "malformed");
        if (q4_json_text(text, &t[i], name, sizeof name) || t[i + 1].type == Q4_JSON_OBJECT ||
            t[i + 1].type == Q4_JSON_ARRAY || q4_json_text(text, &t[i + 1], value, sizeof value) ||
            q4_config_set(&card->config, name, value, &why)) {
            st = q4_fail(err, Q4_ERR_FORMAT, "run card: setting '%s': %s", name, why.message);
            goto done;
        }
    }
    if (q4_config_check(&card->config, &why)) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: %s", why.message);
        goto done;
    }
    if (exact != card->config.exact) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: 'exact' is %lld, its settings say %d", exact, card->config.exact);
        goto done;
    }
    int start = q4_json_find(text, t, 0, "start");
    if (start >= 0) { /* a run resumed from a checkpoint: where it began */
        long long start_epoch = 0;
        if ((st = check_object(text, t, start, start_keys, "the start (\"start\")", err)) ||
            (st = whole(text, t, start, "step", 1, 1LL << 40, &card->start_step, "the start", err)) ||
            (st = whole(text, t, start, "epoch", 0, CARD_MAX_EPOCHS, &start_epoch, "the start", err)) ||
            (st = field(text, t, start, "sha256", Q4_JSON_STRING, card->start_sha256, sizeof card->start_sha256,
                        "the start", err)))
            goto done;
        if (!is_hex(card->start_sha256, 64)) {
            st = q4_fail(err, Q4_ERR_FORMAT, "run card: the start: 'sha256' is not 64 hexadecimal digits");
            goto done;
        }
        card->start_epoch = (int)start_epoch;
    }
    int data = q4_json_find(text, t, 0, "data"), files = q4_json_find(text, t, data, "files");
    long long kind = 0;
    if ((st = check_object(text, t, data, data_keys, "the data (\"data\")", err))) goto done;
    if ((st = whole(text, t, data, "kind", 0, 1000000, &kind, "the data", err))) goto done;
    if (kind != 10 && kind != 100) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: the data: 'kind' must be 10 (CIFAR-10) or 100 (CIFAR-100), not %lld", kind);
        goto done;
    }
    card->kind = (int)kind;
    if ((st = check_object(text, t, files, NULL, "the data files (\"files\")", err))) goto done;
    if (t[files].size > MAX_FILES) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: %d data files, more than the %d a dataset has", t[files].size, MAX_FILES);
        goto done;
    }
    for (int i = files + 1, k = 0; k < t[files].size; k++, i = t[i + 1].next) {
        if (q4_json_text(text, &t[i], card->file_names[k], sizeof card->file_names[k]) || t[i + 1].type != Q4_JSON_STRING ||
            q4_json_text(text, &t[i + 1], card->file_md5[k], sizeof card->file_md5[k]) || !is_hex(card->file_md5[k], 32)) {
            st = q4_fail(err, Q4_ERR_FORMAT, "run card: data file %d is malformed", k + 1);
            goto done;
        }
        card->n_files++;
    }
    int steps = q4_json_find(text, t, 0, "steps"), epochs = q4_json_find(text, t, 0, "epochs");
    if (steps < 0 || t[steps].type != Q4_JSON_ARRAY || epochs < 0 || t[epochs].type != Q4_JSON_ARRAY) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: the fingerprints (\"steps\", \"epochs\") are missing or malformed");
        goto done;
    }
    if (t[steps].size > Q4_CARD_STEPS || t[epochs].size > CARD_MAX_EPOCHS) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: %d step and %d epoch fingerprints; a card has at most %d and %d",
                     t[steps].size, t[epochs].size, Q4_CARD_STEPS, CARD_MAX_EPOCHS);
        goto done;
    }
    for (int k = 0; k < t[steps].size; k++) {
        int v = q4_json_element(t, steps, k);
        if (t[v].type != Q4_JSON_STRING || q4_json_text(text, &t[v], card->steps[k], sizeof card->steps[k]) ||
            !is_hex(card->steps[k], 64)) {
            st = q4_fail(err, Q4_ERR_FORMAT, "run card: the fingerprint of step %d is malformed", k + 1);
            goto done;
        }
        card->n_steps++;
    }
    card->capacity = t[epochs].size ? t[epochs].size : 1;
    card->epochs = calloc((size_t)card->capacity, sizeof *card->epochs);
    if (!card->epochs) {
        st = q4_fail(err, Q4_ERR_NOMEM, "out of memory reading a run card");
        goto done;
    }
    for (int k = 0; k < t[epochs].size; k++) {
        int e = q4_json_element(t, epochs, k);
        card_epoch *out = &card->epochs[k];
        char what[32];
        long long epoch = 0;
        snprintf(what, sizeof what, "epoch %d", k + 1);
        if ((st = check_object(text, t, e, epoch_keys, what, err)) ||
            (st = whole(text, t, e, "epoch", 1, CARD_MAX_EPOCHS, &epoch, what, err)) ||
            (st = whole(text, t, e, "step", 1, 1LL << 40, &out->step, what, err)) ||
            (st = real(text, t, e, "loss", 0, 1e30, 0, &out->loss, what, err)) ||
            (st = real(text, t, e, "train_accuracy", 0, 1, 0, &out->train_accuracy, what, err)) ||
            (st = real(text, t, e, "test_accuracy", 0, 1, 0, &out->test_accuracy, what, err)) ||
            (st = real(text, t, e, "tta_accuracy", 0, 1, 1, &out->tta_accuracy, what, err)) ||
            (st = field(text, t, e, "sha256", Q4_JSON_STRING, out->sha256, sizeof out->sha256, what, err)))
            goto done;
        if (!is_hex(out->sha256, 64)) {
            st = q4_fail(err, Q4_ERR_FORMAT, "run card: %s: 'sha256' is not 64 hexadecimal digits", what);
            goto done;
        }
        if (epoch != card->start_epoch + k + 1) {
            if (card->start_step > 0)
                st = q4_fail(err, Q4_ERR_FORMAT,
                             "run card: the epochs must follow the start's epoch %d in order (%d, %d...); entry %d is epoch %lld",
                             card->start_epoch, card->start_epoch + 1, card->start_epoch + 2, k + 1, epoch);
            else
                st = q4_fail(err, Q4_ERR_FORMAT, "run card: the epochs must be 1, 2, 3... in order; entry %d is epoch %lld",
                             k + 1, epoch);
            goto done;
        }
        out->epoch = (int)epoch;
        card->n_epochs++;
    }
done:
    free(t);
    if (st) {
        q4_card_free(card);
        return NULL;
    }
    return card;
}

/* ------------------------------------------------------------ checking */

q4_status q4_card_check_data(const q4_card *card, const q4_cifar *data, q4_error *err) {
    if (card->kind != (int)data->kind)
        return q4_fail(err, Q4_ERR_MISMATCH, "the run card was made on CIFAR-%d, the data is CIFAR-%d", card->kind,
                       (int)data->kind);
    char names[MAX_FILES][32], md5[MAX_FILES][33];
    int n = q4_cifar_md5(data, names, md5, MAX_FILES);
    for (int i = 0; i < card->n_files; i++) {
        int found = -1;
        for (int k = 0; k < n; k++)
            if (strcmp(names[k], card->file_names[i]) == 0) found = k;
        if (found < 0)
            return q4_fail(err, Q4_ERR_MISMATCH, "the run card's data includes %s, which is not loaded",
                           card->file_names[i]);
        if (strcmp(md5[found], card->file_md5[i]) != 0)
            return q4_fail(err, Q4_ERR_MISMATCH, "%s differs from the run card's (MD5 %s, the card says %s)",
                           card->file_names[i], md5[found], card->file_md5[i]);
    }
    return Q4_OK;
}

/* ------------------------------------------------------------ verifying */

q4_status q4_card_verify_begin(const q4_card *card, const q4_session *s, long long steps, q4_card_verification *v,
                               q4_error *err) {
    memset(v, 0, sizeof *v);
    q4_progress p;
    q4_session_progress(s, &p);
    long long start = card->start_step;
    if (start == 0 && p.global_step != 0)
        return q4_fail(err, Q4_ERR_STATE, "a card is verified from a new session (this one is at step %lld)", p.global_step);
    if (start > 0 && p.global_step == 0)
        return q4_fail(err, Q4_ERR_ARGUMENT,
                       "the run card continues a checkpoint at step %lld (training state SHA-256 %.12s...): it is "
                       "verified from that checkpoint (q4train --verify CARD --resume CHECKPOINT)",
                       start, card->start_sha256);
    if (start > 0) {
        char hex[65];
        q4_session_state_sha256(s, hex);
        if (p.global_step != start || strcmp(hex, card->start_sha256) != 0)
            return q4_fail(err, Q4_ERR_MISMATCH,
                           "the checkpoint is not the one the run card began from (step %lld, training state SHA-256 "
                           "%.12s...; the card began at step %lld from %.12s...)",
                           p.global_step, hex, start, card->start_sha256);
    }
    if (q4_config_differences(&card->config, &s->config, v->message, sizeof v->message))
        return q4_fail(err, Q4_ERR_MISMATCH, "the session's settings are not the card's (%s)", v->message);
    if (card->n_steps + card->n_epochs == 0)
        return q4_fail(err, Q4_ERR_FORMAT, "the run card has no fingerprints (no steps, no epochs): there is nothing to verify");
    /* what an honest card holds follows from its settings: epoch k ends at step k * steps per epoch,
     * there are no more epochs than planned, and the first steps are all fingerprinted */
    long long per_epoch = p.steps_per_epoch, planned = (long long)card->config.epochs * per_epoch;
    if (start > 0 && card->start_epoch != start / per_epoch)
        return q4_fail(err, Q4_ERR_FORMAT, "the run card says it began in epoch %d at step %lld; its settings make %lld "
                       "steps per epoch", card->start_epoch + 1, start, per_epoch);
    if (card->start_epoch + card->n_epochs > card->config.epochs)
        return q4_fail(err, Q4_ERR_FORMAT, "the run card records epochs up to %d, its settings plan %d",
                       card->start_epoch + card->n_epochs, card->config.epochs);
    for (int k = 0; k < card->n_epochs; k++) {
        long long end = (card->start_epoch + k + 1) * per_epoch;
        if (card->epochs[k].step != end)
            return q4_fail(err, Q4_ERR_FORMAT,
                           "the run card says epoch %d ended at step %lld; its settings make %lld steps per epoch, so "
                           "it ends at step %lld",
                           card->start_epoch + k + 1, card->epochs[k].step, per_epoch, end);
    }
    long long last_epoch_step = card->n_epochs ? card->epochs[card->n_epochs - 1].step : start;
    long long ran = last_epoch_step - start, left = planned > start ? planned - start : 0;
    long long fewest = ran < Q4_CARD_STEPS ? ran : Q4_CARD_STEPS;
    long long most = left < Q4_CARD_STEPS ? left : Q4_CARD_STEPS;
    if (card->n_steps < fewest || card->n_steps > most)
        return q4_fail(err, Q4_ERR_FORMAT,
                       "the run card records %d step fingerprints; a run of its settings that reached step %lld%s records "
                       "%lld to %lld",
                       card->n_steps, last_epoch_step, start > 0 ? " from its start" : "", fewest, most);
    v->start = start;
    v->last = last_epoch_step > start + card->n_steps ? last_epoch_step : start + card->n_steps;
    v->stop = steps > 0 && start + steps < v->last ? start + steps : v->last;
    v->claimed_epochs = card->n_epochs;
    return Q4_OK;
}

/* a figure as the card writes it (the shortest text that reads back the same), as a percentage too */
static void figure_text(double x, int percent, char *out, size_t size) {
    char exact[40];
    q4_format_double(exact, sizeof exact, x);
    if (x < 0) snprintf(out, size, "none");
    else if (percent) snprintf(out, size, "%.2f%% (%s)", 100.0 * x, exact);
    else snprintf(out, size, "%s", exact);
}

/* "recomputed X, the card claims Y" for one figure, or nothing when they are equal */
static int differs(double recomputed, double claimed, const char *what, int epoch, int percent, q4_card_verification *v) {
    if (recomputed == claimed) {
        v->claims++;
        return 0;
    }
    char a[64], b[64];
    figure_text(recomputed, percent, a, sizeof a);
    figure_text(claimed, percent, b, sizeof b);
    snprintf(v->message, sizeof v->message, "epoch %d's %s: recomputed %s, the card claims %s", epoch, what, a, b);
    v->different = v->done = 1;
    return 1;
}

static void fingerprint_differs(q4_card_verification *v, int epoch) {
    if (epoch)
        snprintf(v->message, sizeof v->message, "the training state at the end of epoch %d (step %lld) differs from the card's",
                 epoch, v->step);
    else snprintf(v->message, sizeof v->message, "the training state after step %lld differs from the card's", v->step);
    v->different = v->done = 1;
}

q4_status q4_card_verify_step(const q4_card *card, q4_session *s, q4_card_verification *v, q4_error *err) {
    if (v->done || v->step >= v->stop) return q4_fail(err, Q4_ERR_STATE, "the verification has ended");
    q4_progress p;
    v->epoch_ended = 0;
    if (q4_session_train(s, 1, &p)) return q4_fail(err, Q4_ERR_STATE, "%s", q4_session_error(s));
    v->step = p.global_step;
    char hex[65];
    long long index = v->step - v->start; /* steps since the card's start, from 1 */
    if (index <= card->n_steps) {
        q4_session_state_sha256(s, hex);
        if (strcmp(hex, card->steps[index - 1]) != 0) {
            fingerprint_differs(v, 0);
            return Q4_OK;
        }
        v->fingerprints++;
    }
    if (p.epoch_done) {
        if (q4_session_end_epoch(s, &v->report)) return q4_fail(err, Q4_ERR_STATE, "%s", q4_session_error(s));
        int epoch = v->epoch_ended = v->report.epoch, nth = epoch - card->start_epoch;
        if (nth >= 1 && nth <= card->n_epochs) { /* within the card: the state and every figure it claims */
            const card_epoch *e = &card->epochs[nth - 1];
            q4_session_state_sha256(s, hex);
            if (strcmp(hex, e->sha256) != 0) {
                fingerprint_differs(v, epoch);
                return Q4_OK;
            }
            v->fingerprints++;
            if (differs(v->report.train_loss, e->loss, "training loss", epoch, 0, v) ||
                differs(v->report.train_accuracy, e->train_accuracy, "training accuracy", epoch, 1, v) ||
                differs(v->report.test.accuracy, e->test_accuracy, "test accuracy", epoch, 1, v) ||
                differs(v->report.tta_accuracy, e->tta_accuracy, "test accuracy with test-time augmentation", epoch, 1, v))
                return Q4_OK;
            v->verified_epochs = nth;
        }
    }
    if (v->step < v->stop) return Q4_OK;
    v->done = 1;
    long long trained = v->step - v->start;
    int steps_covered = (int)(trained < card->n_steps ? trained : card->n_steps);
    char from[96] = "";
    if (v->start > 0)
        snprintf(from, sizeof from, " from its checkpoint at step %lld (training state SHA-256 identical)", v->start);
    if (v->stop == v->last)
        snprintf(v->message, sizeof v->message,
                 "every claim of the card recomputed and identical: %lld steps trained%s, %d fingerprints "
                 "(%d steps, %d epochs) and %d figures (loss, training, test and TTA accuracy of %d epochs)",
                 trained, from, v->fingerprints, steps_covered, v->verified_epochs, v->claims, v->verified_epochs);
    else if (v->verified_epochs < card->n_epochs)
        snprintf(v->message, sizeof v->message,
                 "the first %lld of the card's %lld steps identical%s (%d fingerprints, %d figures); NOT checked: epochs "
                 "%d-%d of the card, their fingerprints and figures (verify without a step limit to check them)",
                 trained, v->last - v->start, from, v->fingerprints, v->claims,
                 card->start_epoch + v->verified_epochs + 1, card->start_epoch + card->n_epochs);
    else
        snprintf(v->message, sizeof v->message,
                 "the first %lld of the card's %lld steps identical%s (%d fingerprints, %d figures); NOT checked: the "
                 "fingerprints of steps %lld to %lld",
                 trained, v->last - v->start, from, v->fingerprints, v->claims, v->step + 1, v->start + card->n_steps);
    return Q4_OK;
}

size_t q4_card_verification_json(const q4_card_verification *v, const q4_card *card, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    q4_json_int(&j, "step", v->step);
    q4_json_int(&j, "stop", v->stop);
    q4_json_int(&j, "last", v->last);
    q4_json_int(&j, "fingerprints", v->fingerprints);
    q4_json_int(&j, "claims", v->claims);
    q4_json_int(&j, "epoch_ended", v->epoch_ended);
    if (v->epoch_ended) {
        q4_json_number(&j, "test_accuracy", v->report.test.accuracy);
        q4_json_number(&j, "card_test_accuracy", q4_card_epoch_accuracy(card, v->epoch_ended));
    }
    q4_json_int(&j, "verified_epochs", v->verified_epochs);
    q4_json_int(&j, "claimed_epochs", v->claimed_epochs);
    q4_json_int(&j, "done", v->done);
    q4_json_int(&j, "different", v->different);
    q4_json_int(&j, "identical", v->done && !v->different);
    q4_json_int(&j, "complete", v->done && !v->different && v->stop == v->last);
    q4_json_string(&j, "message", v->message);
    q4_json_string(&j, "engine", card->engine);
    q4_json_string(&j, "kernels", card->kernels);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

void q4_card_summarize(const q4_card *card, q4_card_summary *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->engine, sizeof out->engine, "%s", card->engine);
    snprintf(out->kernels, sizeof out->kernels, "%s", card->kernels);
    out->start_step = card->start_step;
    out->start_epoch = card->start_epoch;
    snprintf(out->start_sha256, sizeof out->start_sha256, "%s", card->start_sha256);
    out->steps = card->n_steps;
    out->epochs = card->n_epochs;
    out->test_accuracy = -1;
    if (card->n_epochs) {
        const card_epoch *last = &card->epochs[card->n_epochs - 1];
        out->last_step = last->step;
        out->test_accuracy = last->test_accuracy;
        out->tta_accuracy = last->tta_accuracy;
    }
}

double q4_card_epoch_accuracy(const q4_card *card, int epoch) {
    int nth = epoch - card->start_epoch;
    return nth >= 1 && nth <= card->n_epochs ? card->epochs[nth - 1].test_accuracy : -1.0;
}

/* ------------------------------------------------------------ a model against its card */

q4_status q4_card_claim_read(const q4_card *card, const q4_cifar *data, q4_card_claim *claim, q4_error *err) {
    memset(claim, 0, sizeof *claim);
    q4_status st = q4_card_check_data(card, data, err);
    if (st) return st;
    q4_card_summarize(card, &claim->summary);
    if (claim->summary.epochs == 0)
        return q4_fail(err, Q4_ERR_ARGUMENT, "the card records no finished epoch, so no accuracy to compare with");
    claim->test_limit = card->config.test_limit;
    claim->tta = claim->summary.tta_accuracy >= 0 ? card->config.tta : Q4_TTA_NONE;
    claim->exact = card->config.exact;
    claim->integer_eval = card->config.integer_eval;
    return Q4_OK;
}

int q4_card_claim_compare(const q4_card_claim *claim, const q4_evaluation *plain, const q4_evaluation *augmented,
                          const char *card_name, char *message, size_t size) {
    const q4_card_summary *cs = &claim->summary;
    int tta = claim->tta != Q4_TTA_NONE;
    int same = plain->accuracy == cs->test_accuracy && (!tta || (augmented && augmented->accuracy == cs->tta_accuracy));
    char augmented_claim[64] = "";
    if (tta) snprintf(augmented_claim, sizeof augmented_claim, " (%.2f%% with test-time augmentation)", 100.0 * cs->tta_accuracy);
    /* outside exact mode only the card's kernels promise its bits: other ones round differently */
    int other_kernels = !claim->exact && !strstr(q4_kernels_name(), cs->kernels);
    char why[192] = "";
    if (!same && other_kernels)
        snprintf(why, sizeof why, " (the card is not in exact mode and these kernels, %s, are not its own: their rounding "
                 "may move an image or two)", q4_kernels_name());
    snprintf(message, size, "%s: the card %s claims test accuracy %.2f%%%s after epoch %d (%s, %s)%s%s",
             same ? "AS CLAIMED" : "DIFFERENT", card_name, 100.0 * cs->test_accuracy, augmented_claim, cs->epochs,
             cs->engine, cs->kernels, same ? "" : "; the model does not score what the card says", why);
    return same;
}
