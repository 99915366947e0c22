/* config.c - the training configuration, walked through its one table (Q4_CONFIG_FIELDS in
 * q4.h): defaults, parsing and checking of each setting, the text form checkpoints and the
 * browser bridge use, the JSON form of run logs, and the recipes. No setting is named here
 * except in the recipe definitions. */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/q4.h"
#include "../util/json.h"
#include "../util/util.h"

static const q4_config_field fields[] = {
#define Q4_CONFIG_ROW(type, name, def, lowest, highest, choices, flags, help) \
    {#name, Q4_FIELD_##type, offsetof(q4_config, name), def, lowest, highest, choices, flags, help},
    Q4_CONFIG_FIELDS(Q4_CONFIG_ROW)
#undef Q4_CONFIG_ROW
};
#define FIELD_COUNT ((int)(sizeof fields / sizeof fields[0]))

/* The fast recipe's settings, which fast15 builds on */
#define FAST_SETTINGS                                                                                     \
    "batch_size=64\noptimizer=sgd\nlearning_rate=0.07\nmomentum=0.9\nnesterov=1\nweight_decay=5e-4\n"        \
    "schedule=onecycle\nwarmup=0.2\nlabel_smoothing=0.2\ndropout=0\nclip_norm=0\ncrop=2\ntta=flip-translate"

/* The recipes, by their index in the `recipe` field's choices: the settings each changes from
 * the defaults (which are the paper's). Applying a recipe first resets every METHOD setting;
 * a recipe made for one budget also sets its plan (epochs), which later settings may change. */
static const char *const recipe_settings[] = {
    /* paper: PAPER.md, every default */
    "",
    /* plain-adamw: the paper's ablation baseline "plain AdamW": its optimizer without the two
     * quantization-aware parts (no gradient clipping, no tanh soft clipping); the quantizer,
     * schedule and everything else as the paper's */
    "clip_norm=0\ntanh_bound=0",
    /* fast: the same network, quantizer and 4-bit weights, trained for a budget of a few epochs
     * (README, "How the fast recipe was chosen": each value by 1- and 3-epoch runs on full CIFAR-10).
     * SGD with Nesterov momentum and a one-cycle schedule that ends at the planned last epoch;
     * label smoothing instead of dropout; no gradient clipping (the tanh clip stays);
     * test-time augmentation reported beside the plain figure. */
    FAST_SETTINGS,
    /* fast15: the headline runs (README, "The headline"): the fast recipe with alternating
     * flips (each image mirrored in every other epoch after a random first one), planned for 15
     * epochs. Screened at 15 epochs beside it: cutout 8, a moving average of the weights (ema
     * 0.999), batch 32 at peak lr 0.05, batch 128 at peak lr 0.1, label smoothing 0.1, no weight
     * decay on biases and BatchNorm (decay_all 0): none better on the last epoch by more than a
     * seed's noise; lookahead 5 the best (README's table of variants). */
    FAST_SETTINGS "\nflip=alternate\nepochs=15",
};

int q4_config_field_count(void) { return FIELD_COUNT; }

const q4_config_field *q4_config_field_at(int index) { return index >= 0 && index < FIELD_COUNT ? &fields[index] : NULL; }

const q4_config_field *q4_config_field_find(const char *name) {
    for (int i = 0; i < FIELD_COUNT; i++)
        if (strcmp(fields[i].name, name) == 0) return &fields[i];
    return NULL;
}

/* ------------------------------------------------------------ typed access */

static void *slot(q4_config *c, const q4_config_field *f) { return (char *)c + f->offset; }
static const void *cslot(const q4_config *c, const q4_config_field *f) { return (const char *)c + f->offset; }

static void store_default(q4_config *c, const q4_config_field *f) {
    switch (f->type) {
    case Q4_FIELD_INT:
    case Q4_FIELD_CHOICE: *(int *)slot(c, f) = (int)f->default_value; break;
    case Q4_FIELD_U64: *(uint64_t *)slot(c, f) = (uint64_t)f->default_value; break;
    case Q4_FIELD_REAL: *(double *)slot(c, f) = f->default_value; break;
    }
}

void q4_config_default(q4_config *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < FIELD_COUNT; i++) store_default(c, &fields[i]);
}

/* The index of `value` among the comma-separated choices, or -1. */
static int choice_index(const char *choices, const char *value) {
    size_t n = strlen(value);
    int index = 0;
    for (const char *p = choices; p && *p; index++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0) return index;
        if (!end) break;
        p = end + 1;
    }
    return -1;
}

/* The choice at `index` into out. */
static int choice_name(const char *choices, int index, char *out, size_t size) {
    const char *p = choices;
    for (int i = 0; p && i < index; i++) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p) return snprintf(out, size, "%d", index);
    const char *end = strchr(p, ',');
    int len = end ? (int)(end - p) : (int)strlen(p);
    return snprintf(out, size, "%.*s", len, p);
}

static q4_status apply_recipe(q4_config *c, int recipe, q4_error *err);
static int same_value(const q4_config *a, const q4_config *b, const q4_config_field *f);

q4_status q4_config_set(q4_config *c, const char *name, const char *value, q4_error *err) {
    const q4_config_field *f = q4_config_field_find(name);
    if (!f) return q4_fail(err, Q4_ERR_ARGUMENT, "there is no setting '%s'", name);
    if (!value || !*value) return q4_fail(err, Q4_ERR_ARGUMENT, "%s needs a value", name);
    char *end = NULL;
    errno = 0;
    switch (f->type) {
    case Q4_FIELD_INT: {
        long long v = strtoll(value, &end, 10);
        if (errno || *end || end == value || v < (long long)f->lowest || v > (long long)f->highest)
            return q4_fail(err, Q4_ERR_ARGUMENT, "%s must be a whole number from %.0f to %.0f, not '%s'", name,
                           f->lowest, f->highest, value);
        if (f->offset == offsetof(q4_config, weight_bits) && v > Q4_MAX_QUANT_BITS && v != Q4_FP32_BITS)
            return q4_fail(err, Q4_ERR_ARGUMENT, "weight_bits must be 2 to %d, or %d (FP32 weights), not '%s'",
                           Q4_MAX_QUANT_BITS, Q4_FP32_BITS, value);
        if (f->offset == offsetof(q4_config, act_bits) && v > Q4_MAX_QUANT_BITS && v != Q4_FP32_BITS)
            return q4_fail(err, Q4_ERR_ARGUMENT, "act_bits must be 2 to %d, or %d (float activations), not '%s'",
                           Q4_MAX_QUANT_BITS, Q4_FP32_BITS, value);
        *(int *)slot(c, f) = (int)v;
        return Q4_OK;
    }
    case Q4_FIELD_U64: {
        /* digits only: strtoull would take "-1" as 2^64-1 */
        int digits = 1;
        for (const char *p = value; *p; p++) digits &= *p >= '0' && *p <= '9';
        unsigned long long v = digits ? strtoull(value, &end, 10) : 0;
        if (!digits || errno || *end)
            return q4_fail(err, Q4_ERR_ARGUMENT, "%s must be a whole number from 0 to 18446744073709551615, not '%s'",
                           name, value);
        *(uint64_t *)slot(c, f) = (uint64_t)v;
        return Q4_OK;
    }
    case Q4_FIELD_REAL: {
        double v = strtod(value, &end);
        if (errno || *end || end == value || !isfinite(v) || v < f->lowest || v > f->highest)
            return q4_fail(err, Q4_ERR_ARGUMENT, "%s must be a number from %g to %g, not '%s'", name, f->lowest,
                           f->highest, value);
        *(double *)slot(c, f) = v;
        return Q4_OK;
    }
    case Q4_FIELD_CHOICE: {
        int index = choice_index(f->choices, value);
        if (index < 0) return q4_fail(err, Q4_ERR_ARGUMENT, "%s must be one of %s, not '%s'", name, f->choices, value);
        if (f->flags & Q4_FIELD_RECIPE) return apply_recipe(c, index, err);
        *(int *)slot(c, f) = index;
        return Q4_OK;
    }
    }
    return Q4_ERR_ARGUMENT;
}

int q4_config_get(const q4_config *c, const q4_config_field *f, char *out, size_t size) {
    switch (f->type) {
    case Q4_FIELD_INT: return snprintf(out, size, "%d", *(const int *)cslot(c, f));
    case Q4_FIELD_U64: return snprintf(out, size, "%llu", (unsigned long long)*(const uint64_t *)cslot(c, f));
    case Q4_FIELD_REAL: return q4_format_double(out, size, *(const double *)cslot(c, f));
    case Q4_FIELD_CHOICE: return choice_name(f->choices, *(const int *)cslot(c, f), out, size);
    }
    return 0;
}

q4_status q4_config_parse(q4_config *c, const char *text, q4_error *err) {
    q4_config work = *c; /* nothing changes on error */
    char line[512];
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= sizeof line) return q4_fail(err, Q4_ERR_ARGUMENT, "a settings line is too long");
        memcpy(line, p, len);
        line[len] = 0;
        p = end ? end + 1 : p + len;
        if (len && line[len - 1] == '\r') line[--len] = 0;
        if (!len || line[0] == '#') continue;
        char *eq = strchr(line, '=');
        if (!eq) return q4_fail(err, Q4_ERR_ARGUMENT, "settings are name=value lines, not '%s'", line);
        *eq = 0;
        q4_status st = q4_config_set(&work, line, eq + 1, err);
        if (st) return st;
    }
    *c = work;
    return Q4_OK;
}

size_t q4_config_format(const q4_config *c, char *out, size_t size) {
    size_t length = 0;
    for (int i = 0; i < FIELD_COUNT; i++) {
        char value[64];
        q4_config_get(c, &fields[i], value, sizeof value);
        int n = snprintf(out && length < size ? out + length : NULL, out && length < size ? size - length : 0,
                         "%s=%s\n", fields[i].name, value);
        length += (size_t)n;
    }
    return length;
}

static void json_value(q4_json *j, const q4_config *c, const q4_config_field *f) {
    switch (f->type) {
    case Q4_FIELD_INT: q4_json_int(j, f->name, *(const int *)cslot(c, f)); break;
    case Q4_FIELD_U64: q4_json_u64_string(j, f->name, *(const uint64_t *)cslot(c, f)); break;
    case Q4_FIELD_REAL: q4_json_number(j, f->name, *(const double *)cslot(c, f)); break;
    case Q4_FIELD_CHOICE: {
        char name[64];
        q4_config_get(c, f, name, sizeof name);
        q4_json_string(j, f->name, name);
        break;
    }
    }
}

size_t q4_config_json(const q4_config *c, char *out, size_t size) {
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '{');
    for (int i = 0; i < FIELD_COUNT; i++) json_value(&j, c, &fields[i]);
    q4_json_close(&j);
    return q4_json_finish(&j);
}

size_t q4_config_fields_json(char *out, size_t size) {
    static const char *const type_names[] = {"int", "u64", "real", "choice"};
    q4_config defaults;
    q4_config_default(&defaults);
    q4_json j;
    q4_json_init(&j, out, size);
    q4_json_open(&j, NULL, '[');
    for (int i = 0; i < FIELD_COUNT; i++) {
        const q4_config_field *f = &fields[i];
        char value[64];
        q4_config_get(&defaults, f, value, sizeof value);
        q4_json_open(&j, NULL, '{');
        q4_json_string(&j, "name", f->name);
        q4_json_string(&j, "type", type_names[f->type]);
        q4_json_string(&j, "default", value);
        if (f->type == Q4_FIELD_INT || f->type == Q4_FIELD_REAL) {
            q4_json_number(&j, "lowest", f->lowest);
            q4_json_number(&j, "highest", f->highest);
        }
        if (f->choices) {
            q4_json_open(&j, "choices", '[');
            for (int k = 0;; k++) {
                char name[64];
                choice_name(f->choices, k, name, sizeof name);
                if (choice_index(f->choices, name) != k) break;
                q4_json_string(&j, NULL, name);
            }
            q4_json_close(&j);
        }
        q4_json_int(&j, "method", !!(f->flags & Q4_FIELD_METHOD));
        q4_json_int(&j, "runtime", !!(f->flags & Q4_FIELD_RUNTIME));
        q4_json_int(&j, "plan", !!(f->flags & Q4_FIELD_PLAN));
        q4_json_string(&j, "help", f->help);
        q4_json_close(&j);
    }
    q4_json_close(&j);
    return q4_json_finish(&j);
}

q4_status q4_config_check(const q4_config *c, q4_error *err) {
    for (int i = 0; i < FIELD_COUNT; i++) {
        const q4_config_field *f = &fields[i];
        char value[64];
        q4_config_get(c, f, value, sizeof value);
        q4_config copy = *c;
        q4_status st = q4_config_set(&copy, f->name, value, err); /* the same rule as for text */
        if (f->type == Q4_FIELD_CHOICE) {
            int index = *(const int *)cslot(c, f);
            char name[64];
            choice_name(f->choices, index, name, sizeof name);
            if (index < 0 || choice_index(f->choices, name) != index)
                return q4_fail(err, Q4_ERR_ARGUMENT, "%s must be one of %s, not choice %d", f->name, f->choices, index);
        } else if (st) {
            return st;
        }
    }
    if (c->act_bits < Q4_FP32_BITS && c->weight_bits > 7)
        return q4_fail(err, Q4_ERR_ARGUMENT,
                       "act_bits %d needs 2- to 7-bit weights, not %d: it multiplies their levels by the activations in "
                       "integer arithmetic",
                       c->act_bits, c->weight_bits);
    if (c->ema > 0 && c->lookahead > 0)
        return q4_fail(err, Q4_ERR_ARGUMENT,
                       "ema and lookahead cannot both be on: each keeps its own copy of the weights in the one place "
                       "the session has for it (ema %g, lookahead %d)",
                       c->ema, c->lookahead);
    if (c->integer_eval && c->weight_bits > 7)
        return q4_fail(err, Q4_ERR_ARGUMENT,
                       "integer_eval needs 2- to 7-bit weights, not %d: it multiplies their levels by 8-bit activations",
                       c->weight_bits);
    return Q4_OK;
}

static int same_value(const q4_config *a, const q4_config *b, const q4_config_field *f) {
    switch (f->type) {
    case Q4_FIELD_INT:
    case Q4_FIELD_CHOICE: return *(const int *)cslot(a, f) == *(const int *)cslot(b, f);
    case Q4_FIELD_U64: return *(const uint64_t *)cslot(a, f) == *(const uint64_t *)cslot(b, f);
    case Q4_FIELD_REAL: return *(const double *)cslot(a, f) == *(const double *)cslot(b, f);
    }
    return 0;
}

int q4_config_differences(const q4_config *a, const q4_config *b, char *out, size_t size) {
    int count = 0;
    size_t length = 0;
    if (out && size) out[0] = 0;
    for (int i = 0; i < FIELD_COUNT; i++) {
        const q4_config_field *f = &fields[i];
        if (f->flags & (Q4_FIELD_RUNTIME | Q4_FIELD_PLAN) || same_value(a, b, f)) continue;
        char va[64], vb[64];
        q4_config_get(a, f, va, sizeof va);
        q4_config_get(b, f, vb, sizeof vb);
        if (out && length < size)
            length += (size_t)snprintf(out + length, size - length, "%s%s %s -> %s", count ? ", " : "", f->name, va, vb);
        count++;
    }
    return count;
}

/* The recipe settings in which `c` departs from `base`, as "name value, ..." (c's values). */
static int method_departures(const q4_config *base, const q4_config *c, char *out, size_t size) {
    int count = 0;
    size_t length = 0;
    if (out && size) out[0] = 0;
    for (int i = 0; i < FIELD_COUNT; i++) {
        const q4_config_field *f = &fields[i];
        if (!(f->flags & Q4_FIELD_METHOD) || same_value(base, c, f)) continue;
        char value[64];
        q4_config_get(c, f, value, sizeof value);
        if (out && length < size) length += (size_t)snprintf(out + length, size - length, "%s%s %s", count ? ", " : "", f->name, value);
        count++;
    }
    return count;
}

int q4_config_recipe_changes(const q4_config *c, char *out, size_t size) {
    q4_config recipe = *c;
    q4_error err;
    if (apply_recipe(&recipe, c->recipe, &err)) return 0;
    return method_departures(&recipe, c, out, size);
}

int q4_config_recipe_definition(int recipe, char *out, size_t size) {
    q4_config paper, mine;
    q4_error err;
    q4_config_default(&paper);
    mine = paper;
    if (apply_recipe(&mine, recipe, &err)) return -1;
    return method_departures(&paper, &mine, out, size);
}

static q4_status apply_recipe(q4_config *c, int recipe, q4_error *err) {
    if (recipe < 0 || recipe >= (int)(sizeof recipe_settings / sizeof recipe_settings[0]))
        return q4_fail(err, Q4_ERR_ARGUMENT, "recipe %d has no definition", recipe);
    q4_config work = *c;
    for (int i = 0; i < FIELD_COUNT; i++)
        if (fields[i].flags & Q4_FIELD_METHOD) store_default(&work, &fields[i]);
    q4_status st = q4_config_parse(&work, recipe_settings[recipe], err);
    if (st) return st;
    work.recipe = recipe;
    *c = work;
    return Q4_OK;
}
