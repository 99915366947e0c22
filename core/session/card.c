/* card.c - run cards: one JSON file that says what a run was (engine, kernels, every setting,
 * the data's MD5s) and fingerprints its training state (SHA-256) after each of its first
 * Q4_CARD_STEPS steps and after each epoch, with the epoch's figures. Anyone can re-run it from
 * the card and compare, step by step; in exact mode across builds (native, browser) too.
 * Format (version 1):
 *   {"card":1, "engine":"q4 VERSION", "kernels":"...", "exact":0|1, "config":{...},
 *    "data":{"kind":10|100, "files":{"data_batch_1.bin":"md5", ...}},
 *    "steps":["sha256 after step 1", ...], "epochs":[{"epoch":1, "step":391, "loss":...,
 *    "train_accuracy":..., "test_accuracy":..., "tta_accuracy":...|null, "sha256":"..."}, ...]} */
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
    if (s->global_step == card->n_steps + 1 && card->n_steps < Q4_CARD_STEPS)
        q4_session_state_sha256(s, card->steps[card->n_steps++]);
    if (!report || report->epoch != card->n_epochs + 1) return; /* a card has every epoch from the first */
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

static int is_hex(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return s[n] == 0;
}

/* the text of the value of `key` in object `at`, or NULL (err filled) */
static const char *field(const char *text, const q4_json_token *t, int at, const char *key, char *out, size_t size,
                         q4_error *err) {
    int v = q4_json_find(text, t, at, key);
    if (v < 0 || t[v].type == Q4_JSON_OBJECT || t[v].type == Q4_JSON_ARRAY || q4_json_text(text, &t[v], out, size)) {
        q4_fail(err, Q4_ERR_FORMAT, "run card: '%s' is missing or malformed", key);
        return NULL;
    }
    return out;
}

q4_card *q4_card_parse(const char *text, size_t size, q4_error *err) {
    if (size > (64u << 20)) {
        q4_fail(err, Q4_ERR_FORMAT, "run card: too large (%zu bytes)", size);
        return NULL;
    }
    int max = 64 + 8 * Q4_CARD_STEPS + (int)(size / 8);
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
    if (!field(text, t, 0, "card", value, sizeof value, err)) {
        st = q4_fail(err, Q4_ERR_FORMAT, "not a run card (no \"card\" field)");
        goto done;
    }
    if (atoi(value) != CARD_FORMAT) {
        st = q4_fail(err, Q4_ERR_VERSION, "run card format %s is not supported (this build reads %d)", value, CARD_FORMAT);
        goto done;
    }
    if (!field(text, t, 0, "engine", card->engine, sizeof card->engine, err) ||
        !field(text, t, 0, "kernels", card->kernels, sizeof card->kernels, err)) {
        st = Q4_ERR_FORMAT;
        goto done;
    }
    /* the settings, each through the same rules as everywhere else */
    int config = q4_json_find(text, t, 0, "config");
    if (config < 0 || t[config].type != Q4_JSON_OBJECT) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: no settings (\"config\")");
        goto done;
    }
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
    int data = q4_json_find(text, t, 0, "data"), files = q4_json_find(text, t, data, "files");
    if (!field(text, t, data, "kind", value, sizeof value, err) || files < 0 || t[files].type != Q4_JSON_OBJECT ||
        t[files].size > MAX_FILES) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: the data's description is missing or malformed");
        goto done;
    }
    card->kind = atoi(value);
    for (int i = files + 1, k = 0; k < t[files].size; k++, i = t[i + 1].next) {
        if (q4_json_text(text, &t[i], card->file_names[k], sizeof card->file_names[k]) ||
            q4_json_text(text, &t[i + 1], card->file_md5[k], sizeof card->file_md5[k]) || !is_hex(card->file_md5[k], 32)) {
            st = q4_fail(err, Q4_ERR_FORMAT, "run card: data file %d is malformed", k + 1);
            goto done;
        }
        card->n_files++;
    }
    int steps = q4_json_find(text, t, 0, "steps"), epochs = q4_json_find(text, t, 0, "epochs");
    if (steps < 0 || t[steps].type != Q4_JSON_ARRAY || t[steps].size > Q4_CARD_STEPS || epochs < 0 ||
        t[epochs].type != Q4_JSON_ARRAY) {
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: the fingerprints (\"steps\", \"epochs\") are missing or malformed");
        goto done;
    }
    for (int k = 0; k < t[steps].size; k++) {
        int v = q4_json_element(t, steps, k);
        if (q4_json_text(text, &t[v], card->steps[k], sizeof card->steps[k]) || !is_hex(card->steps[k], 64)) {
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
        char number[64];
        if (!field(text, t, e, "epoch", number, sizeof number, err)) goto bad_epoch;
        out->epoch = atoi(number);
        if (!field(text, t, e, "step", number, sizeof number, err)) goto bad_epoch;
        out->step = atoll(number);
        if (!field(text, t, e, "test_accuracy", number, sizeof number, err)) goto bad_epoch;
        out->test_accuracy = atof(number);
        q4_error optional; /* these may be missing */
        if (field(text, t, e, "train_accuracy", number, sizeof number, &optional)) out->train_accuracy = atof(number);
        if (field(text, t, e, "loss", number, sizeof number, &optional)) out->loss = atof(number);
        out->tta_accuracy = field(text, t, e, "tta_accuracy", number, sizeof number, &optional) && strcmp(number, "null")
                                ? atof(number)
                                : -1.0;
        if (!field(text, t, e, "sha256", out->sha256, sizeof out->sha256, err) || !is_hex(out->sha256, 64) ||
            out->epoch != k + 1)
            goto bad_epoch;
        card->n_epochs++;
        continue;
    bad_epoch:
        st = q4_fail(err, Q4_ERR_FORMAT, "run card: epoch %d is malformed", k + 1);
        goto done;
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

int q4_card_check(const q4_card *card, const q4_session *s, int epoch_ended) {
    const char *expected = NULL;
    if (epoch_ended > 0) {
        if (epoch_ended <= card->n_epochs) expected = card->epochs[epoch_ended - 1].sha256;
    } else if (s->global_step >= 1 && s->global_step <= card->n_steps) {
        expected = card->steps[s->global_step - 1];
    }
    if (!expected) return 0;
    char hex[65];
    q4_session_state_sha256(s, hex);
    return strcmp(hex, expected) == 0 ? 1 : -1;
}

void q4_card_summarize(const q4_card *card, q4_card_summary *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->engine, sizeof out->engine, "%s", card->engine);
    snprintf(out->kernels, sizeof out->kernels, "%s", card->kernels);
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
    return epoch >= 1 && epoch <= card->n_epochs ? card->epochs[epoch - 1].test_accuracy : -1.0;
}
