/* test_config.c - the configuration table (q4.h) and what is derived from it: defaults are the
 * paper's; every setting's text form reads back exactly; each type refuses what it must
 * (fractions for whole numbers, negative or over-long seeds, out-of-range values, unknown
 * names and choices) with a message naming the setting, and changes nothing on error; a recipe
 * resets the recipe settings only; differences name what would change training; the JSON form
 * parses as the table says. */
#include "../core/include/q4.h"
#include "../core/optim/optim.h"
#include "../core/util/json.h"
#include <stddef.h>

#include "test_util.h"

static void test_defaults(void) {
    q4_config c;
    q4_config_default(&c);
    /* PAPER.md, constant by constant */
    CHECK(c.batch_size == 128 && c.epochs == 150 && c.weight_bits == 4 && c.scale == Q4_SCALE_TENSOR && c.augment == 1 && c.seed == 0 &&
              c.learning_rate == 1e-3 && c.weight_decay == 5e-4 && c.beta1 == 0.9 && c.beta2 == 0.999 &&
              c.adam_eps == 1e-8 && c.clip_norm == 0.5 && c.tanh_bound == 3.0 && c.cosine_t_max == 100 &&
              c.dropout == 0.5 && c.num_classes == 10 && c.train_limit == 0 && c.test_limit == 0 && c.recipe == 0,
          "the defaults are not the paper's recipe");
    q4_error err = {0};
    CHECK(q4_config_check(&c, &err) == Q4_OK, "defaults fail their own check: %s", err.message);
}

static void test_round_trip(void) {
    q4_config c, back;
    q4_config_default(&c);
    q4_error err = {0};
    CHECK(q4_config_set(&c, "learning_rate", "0.1", &err) == Q4_OK, "%s", err.message);
    CHECK(q4_config_set(&c, "weight_decay", "3.3333333333333335e-05", &err) == Q4_OK, "%s", err.message);
    CHECK(q4_config_set(&c, "seed", "18446744073709551615", &err) == Q4_OK, "largest seed: %s", err.message);
    CHECK(c.seed == UINT64_MAX, "seed 2^64-1 read as %llu", (unsigned long long)c.seed);
    char text[8192];
    size_t n = q4_config_format(&c, text, sizeof text);
    CHECK(n > 0 && n < sizeof text && q4_config_format(&c, NULL, 0) == n, "format length %zu", n);
    q4_config_default(&back);
    CHECK(q4_config_parse(&back, text, &err) == Q4_OK, "parse of format: %s", err.message);
    CHECK(memcmp(&back, &c, sizeof c) == 0, "format -> parse changed the configuration");
    CHECK(strstr(text, "learning_rate=0.1\n") != NULL, "shortest form of 0.1: %s", text);

    /* every field has a line, in table order */
    int lines = 0;
    for (const char *p = text; *p; p++) lines += *p == '\n';
    CHECK(lines == q4_config_field_count(), "%d lines for %d settings", lines, q4_config_field_count());

    /* the JSON: every setting by name, seeds as strings (64 bits do not fit a JSON number) */
    char json[8192];
    q4_config_json(&c, json, sizeof json);
    CHECK(strstr(json, "\"seed\":\"18446744073709551615\"") != NULL, "seed in JSON: %s", json);
    CHECK(strstr(json, "\"recipe\":\"paper\"") != NULL, "recipe in JSON: %s", json);
    size_t measured = q4_config_json(&c, NULL, 0);
    CHECK(measured == strlen(json), "JSON measured %zu, written %zu", measured, strlen(json));
    char fields[16384];
    size_t f = q4_config_fields_json(fields, sizeof fields);
    CHECK(f < sizeof fields && strstr(fields, "\"name\":\"learning_rate\",\"type\":\"real\",\"default\":\"0.001\"") != NULL,
          "fields JSON: %.300s", fields);
}

/* refused with a message that contains `words`, leaving the configuration as it was */
static void refused(const char *name, const char *value, const char *words) {
    q4_config c, before;
    q4_config_default(&c);
    before = c;
    q4_error err = {0};
    q4_status st = q4_config_set(&c, name, value, &err);
    CHECK(st == Q4_ERR_ARGUMENT, "%s=%s accepted", name, value);
    CHECK(strstr(err.message, words) != NULL, "%s=%s: message '%s' lacks '%s'", name, value, err.message, words);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "%s=%s: a refused value changed the configuration", name, value);
}

static void test_refusals(void) {
    refused("epochs", "1e9", "epochs must be a whole number from 1 to 10000, not '1e9'");
    refused("epochs", "0", "epochs must be a whole number");
    refused("weight_bits", "4.0", "weight_bits must be a whole number from 2 to 32");
    refused("weight_bits", "16", "weight_bits must be 2 to 8, or 32 (FP32 weights), not '16'");
    refused("weight_bits", "1", "weight_bits must be a whole number from 2 to 32");
    refused("train_limit", "-5", "train_limit must be a whole number from 0 to 1000000");
    refused("seed", "-1", "seed must be a whole number from 0 to 18446744073709551615");
    refused("seed", "18446744073709551616", "seed must be");
    refused("seed", "12x", "seed must be");
    refused("seed", " 1", "seed must be");
    refused("learning_rate", "nan", "learning_rate must be a number");
    refused("learning_rate", "inf", "learning_rate must be a number");
    refused("learning_rate", "0", "learning_rate must be a number from 1e-09 to 10");
    refused("dropout", "0.99", "dropout must be a number from 0 to 0.95");
    refused("recipe", "turbo", "recipe must be one of");
    refused("no_such_setting", "1", "there is no setting 'no_such_setting'");
    refused("epochs", "", "epochs needs a value");

    /* a bad line in a block changes nothing, not even the lines before it */
    q4_config c, before;
    q4_config_default(&c);
    before = c;
    q4_error err = {0};
    CHECK(q4_config_parse(&c, "epochs=5\nseed=7\nbatch_size=two\n", &err) == Q4_ERR_ARGUMENT, "bad block accepted");
    CHECK(strstr(err.message, "batch_size") != NULL, "message: %s", err.message);
    CHECK(memcmp(&c, &before, sizeof c) == 0, "a refused block changed the configuration");
    CHECK(q4_config_parse(&c, "# a comment\n\nepochs=5\r\nseed=7", &err) == Q4_OK, "comments, blank and CRLF: %s",
          err.message);
    CHECK(c.epochs == 5 && c.seed == 7, "parsed epochs %d seed %llu", c.epochs, (unsigned long long)c.seed);
    CHECK(q4_config_parse(&c, "epochs 5", &err) == Q4_ERR_ARGUMENT && strstr(err.message, "name=value"),
          "a line without '=': %s", err.message);

    /* a struct set directly is checked by the same rules */
    q4_config_default(&c);
    c.batch_size = 1;
    CHECK(q4_config_check(&c, &err) == Q4_ERR_ARGUMENT && strstr(err.message, "batch_size"), "check: %s", err.message);
    q4_config_default(&c);
    c.recipe = 99;
    CHECK(q4_config_check(&c, &err) == Q4_ERR_ARGUMENT && strstr(err.message, "recipe"), "check: %s", err.message);
}

static void test_recipes_and_differences(void) {
    const q4_config_field *recipe = q4_config_field_find("recipe");
    CHECK(recipe && recipe->choices, "no recipe setting");
    if (!recipe) return;
    /* every recipe named in the table has a definition, and resets only recipe settings */
    char choices[256];
    snprintf(choices, sizeof choices, "%s", recipe->choices);
    for (char *name = strtok(choices, ","); name; name = strtok(NULL, ",")) {
        q4_config c;
        q4_config_default(&c);
        c.learning_rate = 0.5;
        c.seed = 99;
        c.epochs = 7;
        q4_error err = {0};
        CHECK(q4_config_set(&c, "recipe", name, &err) == Q4_OK, "recipe %s: %s", name, err.message);
        /* only fast15 sets a plan (15 epochs) */
        CHECK(c.seed == 99 && c.epochs == (strcmp(name, "fast15") == 0 ? 15 : 7),
              "recipe %s reset settings that are not the recipe's", name);
        CHECK(c.learning_rate != 0.5, "recipe %s kept a recipe setting", name);
        CHECK(q4_config_check(&c, &err) == Q4_OK, "recipe %s fails the check: %s", name, err.message);
        char text[64];
        q4_config_get(&c, recipe, text, sizeof text);
        CHECK(strcmp(text, name) == 0, "recipe %s reads back as %s", name, text);
        char changes[512];
        CHECK(q4_config_recipe_changes(&c, changes, sizeof changes) == 0, "recipe %s departs from itself: %s", name, changes);
        int departures = q4_config_recipe_definition(c.recipe, changes, sizeof changes);
        CHECK(strcmp(name, "paper") == 0 ? departures == 0 && !changes[0] : departures > 0,
              "recipe %s: %d departures from the paper's (%s)", name, departures, changes);
    }
    char definition[512];
    CHECK(q4_config_recipe_definition(Q4_RECIPE_FAST, definition, sizeof definition) > 0 &&
              strstr(definition, "optimizer sgd") && strstr(definition, "schedule onecycle"),
          "the fast recipe reads: %s", definition);
    CHECK(q4_config_recipe_definition(99, definition, sizeof definition) == -1, "a recipe that does not exist has a definition");
    /* fast15 is what the README's recipe table says: the fast recipe's settings, flips
     * alternating, 15 planned epochs; its schedule warms up over the first 20% of 15 epochs of
     * 782 steps (11730 steps, 2346 of warm-up), peaks at 0.07 and ends at 0 after step 11730 */
    {
        q4_config fast, fast15;
        q4_error err = {0};
        q4_config_default(&fast), q4_config_default(&fast15);
        CHECK(q4_config_set(&fast, "recipe", "fast", &err) == Q4_OK && q4_config_set(&fast15, "recipe", "fast15", &err) == Q4_OK,
              "%s", err.message);
        char changes[512];
        CHECK(q4_config_differences(&fast, &fast15, changes, sizeof changes) == 2 && strstr(changes, "recipe fast -> fast15") &&
                  strstr(changes, "flip random -> alternate"),
              "fast15 against fast: %s", changes);
        CHECK(fast15.epochs == 15 && fast15.batch_size == 64 && fast15.optimizer == Q4_OPTIMIZER_SGD &&
                  fast15.learning_rate == 0.07 && fast15.momentum == 0.9 && fast15.nesterov == 1 &&
                  fast15.weight_decay == 5e-4 && fast15.schedule == Q4_SCHEDULE_ONECYCLE && fast15.warmup == 0.2 &&
                  fast15.label_smoothing == 0.2 && fast15.dropout == 0 && fast15.clip_norm == 0 && fast15.crop == 2 &&
                  fast15.tta == Q4_TTA_FLIP_TRANSLATE && fast15.flip == Q4_FLIP_ALTERNATE && fast15.weight_bits == 4 &&
                  fast15.tanh_bound == 3 && fast15.cutout == 0 && fast15.ema == 0,
              "fast15's settings are not the README's");
        int steps = 782; /* 50,000 images at batch 64 */
        double first = q4_learning_rate(&fast15, 0, 0, steps), peak = q4_learning_rate(&fast15, 2, 781, steps),
               after_peak = q4_learning_rate(&fast15, 3, 1, steps), last = q4_learning_rate(&fast15, 14, 781, steps),
               past = q4_learning_rate(&fast15, 15, 0, steps);
        CHECK(first == 0.07 / 2346 && peak == 0.07 && after_peak == 0.07 * (11730 - 2347) / 9384 &&
                  last == 0.07 / 9384 && past == 0,
              "fast15's schedule: %g at the first step, %g at step 2346, %g at step 2348, %g at the last, %g past the plan",
              first, peak, after_peak, last, past);
    }
    q4_config a, b;
    q4_config_default(&a);
    b = a;
    b.threads = 8;  /* runtime */
    b.epochs = 3;   /* plan */
    char out[512];
    CHECK(q4_config_differences(&a, &b, out, sizeof out) == 0, "threads and epochs counted as differences: %s", out);
    CHECK(q4_config_recipe_changes(&b, out, sizeof out) == 0, "recipe changes of the paper recipe: %s", out);
    b.seed = 5;
    b.learning_rate = 0.002;
    CHECK(q4_config_recipe_changes(&b, out, sizeof out) == 1 && strcmp(out, "learning_rate 0.002") == 0,
          "recipe changes: %s", out);
    CHECK(q4_config_differences(&a, &b, out, sizeof out) == 2, "differences: %s", out);
    CHECK(strstr(out, "seed 0 -> 5") && strstr(out, "learning_rate 0.001 -> 0.002"), "differences: %s", out);
}

/* the enums of q4.h name the choices in their order */
static void test_choice_enums(void) {
    struct { const char *name, *value; int expect; size_t offset; } cases[] = {
        {"recipe", "paper", Q4_RECIPE_PAPER, offsetof(q4_config, recipe)},
        {"recipe", "plain-adamw", Q4_RECIPE_PLAIN_ADAMW, offsetof(q4_config, recipe)},
        {"recipe", "fast", Q4_RECIPE_FAST, offsetof(q4_config, recipe)},
        {"recipe", "fast15", Q4_RECIPE_FAST15, offsetof(q4_config, recipe)},
        {"optimizer", "adamw", Q4_OPTIMIZER_ADAMW, offsetof(q4_config, optimizer)},
        {"optimizer", "sgd", Q4_OPTIMIZER_SGD, offsetof(q4_config, optimizer)},
        {"schedule", "cosine", Q4_SCHEDULE_COSINE, offsetof(q4_config, schedule)},
        {"schedule", "onecycle", Q4_SCHEDULE_ONECYCLE, offsetof(q4_config, schedule)},
        {"tta", "none", Q4_TTA_NONE, offsetof(q4_config, tta)},
        {"tta", "flip", Q4_TTA_FLIP, offsetof(q4_config, tta)},
        {"tta", "flip-translate", Q4_TTA_FLIP_TRANSLATE, offsetof(q4_config, tta)},
        {"flip", "random", Q4_FLIP_RANDOM, offsetof(q4_config, flip)},
        {"flip", "alternate", Q4_FLIP_ALTERNATE, offsetof(q4_config, flip)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        q4_config c;
        q4_config_default(&c);
        q4_error err = {0};
        CHECK(q4_config_set(&c, cases[i].name, cases[i].value, &err) == Q4_OK, "%s", err.message);
        int got = *(int *)((char *)&c + cases[i].offset);
        CHECK(got == cases[i].expect, "%s=%s is %d, the enum says %d", cases[i].name, cases[i].value, got, cases[i].expect);
    }
}

static void test_json_writer(void) {
    char out[256];
    q4_json j;
    q4_json_init(&j, out, sizeof out);
    q4_json_open(&j, NULL, '{');
    q4_json_string(&j, "name", "a \"quoted\"\\ \n name");
    q4_json_number(&j, "nan", 0.0 / 0.0);
    q4_json_number(&j, "third", 1.0 / 3.0);
    int values[3] = {1, -2, 3};
    q4_json_ints(&j, "list", values, 3);
    q4_json_open(&j, "empty", '[');
    q4_json_close(&j);
    q4_json_close(&j);
    size_t n = q4_json_finish(&j);
    const char *expect = "{\"name\":\"a \\\"quoted\\\"\\\\ \\n name\",\"nan\":null,\"third\":0.3333333333333333,"
                         "\"list\":[1,-2,3],\"empty\":[]}";
    CHECK(strcmp(out, expect) == 0 && n == strlen(expect), "JSON writer: %s", out);
    /* too small: truncated, terminated, and the full length still counted */
    char tiny[8];
    q4_json_init(&j, tiny, sizeof tiny);
    q4_json_open(&j, NULL, '{');
    q4_json_string(&j, "name", "long enough");
    q4_json_close(&j);
    n = q4_json_finish(&j);
    CHECK(n == strlen("{\"name\":\"long enough\"}") && strlen(tiny) == sizeof tiny - 1, "truncation: %zu '%s'", n, tiny);
    /* what the writer escapes the reader reads back, in keys too (a run card's keys are the
     * data's file names: the card fuzzer found a tab in one written raw, which no reader takes) */
    const char *odd = "tab\there, \"quote\", back\\slash, \x01 and \r\n";
    q4_json_init(&j, out, sizeof out);
    q4_json_open(&j, NULL, '{');
    q4_json_string(&j, odd, odd);
    q4_json_close(&j);
    n = q4_json_finish(&j);
    q4_json_token tokens[4];
    char key[64] = "", value[64] = "";
    int count = q4_json_parse(out, (int)n, tokens, 4);
    CHECK(count == 3 && q4_json_text(out, &tokens[1], key, sizeof key) == 0 &&
              q4_json_text(out, &tokens[2], value, sizeof value) == 0 && strcmp(key, odd) == 0 && strcmp(value, odd) == 0,
          "escaped key and value read back: %s", out);
    const char *bad[] = {"\"\\u0000\"", "\"\\u00e9\"", "\"\\u12\"", "\"\\x41\""}; /* NUL, not ASCII, short, unknown */
    for (int i = 0; i < 4; i++) {
        count = q4_json_parse(bad[i], (int)strlen(bad[i]), tokens, 4);
        CHECK(count != 1 || q4_json_text(bad[i], &tokens[0], value, sizeof value) == -1, "escape %s refused", bad[i]);
    }
}

int main(void) {
    test_defaults();
    test_round_trip();
    test_refusals();
    test_recipes_and_differences();
    test_choice_enums();
    test_json_writer();
    return test_finish("test_config");
}
