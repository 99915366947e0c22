/* test_exact.c - exact mode (setting `exact`): our exp, log, sin, cos and tanh against libm's
 * (within a few units in the last place), and training in exact mode: the same state after the
 * same steps whatever the thread count. The program prints one line per run with the SHA-256 of
 * the training state and the evaluation loss's bits; `make test-exact` runs it in the AVX2, the
 * scalar and the WebAssembly builds and checks that all three print the same lines (one run
 * evaluates in integer arithmetic: every ISA's integer kernels, the same bits). */
#include "../core/session/session.h"
#include "../core/util/exactmath.h"
#include "test_util.h"

static void test_math(void) {
    double worst_exp = 0, worst_log = 0, worst_sin = 0, worst_cos = 0, worst_tanh = 0;
    for (int i = 0; i <= 200000; i++) {
        double x = -700 + 1400.0 * i / 200000;
        worst_exp = fmax(worst_exp, fabs(q4_exact_exp(x) - exp(x)) / exp(x));
        double y = exp(x);
        if (fabs(log(y)) > 1e-3) worst_log = fmax(worst_log, fabs(q4_exact_log(y) - log(y)) / fabs(log(y)));
        double t = -20 + 40.0 * i / 200000;
        worst_sin = fmax(worst_sin, fabs(q4_exact_sin(t) - sin(t)));
        worst_cos = fmax(worst_cos, fabs(q4_exact_cos(t) - cos(t)));
        float f = (float)(-30 + 60.0 * i / 200000);
        worst_tanh = fmax(worst_tanh, fabs((double)q4_exact_tanhf(f) - (double)tanhf(f)));
    }
    /* measured: exp 2.2e-16, log 4.1e-16, sin and cos 1.1e-16, tanh 1.2e-7 (one float ulp near 1) */
    CHECK(worst_exp <= 4.5e-16, "exp: relative error %.3g", worst_exp);
    CHECK(worst_log <= 9e-16, "log: relative error %.3g", worst_log);
    CHECK(worst_sin <= 2.3e-16 && worst_cos <= 2.3e-16, "sin, cos: error %.3g, %.3g", worst_sin, worst_cos);
    CHECK(worst_tanh <= 2.4e-7, "tanh: error %.3g", worst_tanh);
    CHECK(q4_exact_exp(0) == 1.0 && q4_exact_log(1) == 0.0 && q4_exact_exp(-800) == 0.0 && isinf(q4_exact_exp(800)) &&
              isnan(q4_exact_log(-1)) && isinf(q4_exact_log(0)) && q4_exact_log(4.9e-324) < -744 &&
              q4_exact_pow_int(0.5, 10) == 1.0 / 1024 && q4_exact_pow_int(3, 0) == 1.0,
          "special values");
    printf("our math against libm: exp %.2g, log %.2g (relative), sin %.2g, cos %.2g, tanhf %.2g\n", worst_exp, worst_log,
           worst_sin, worst_cos, worst_tanh);
}

#define TRAIN SYNTHETIC_TRAIN
#define TEST SYNTHETIC_TEST
static synthetic_data data;
static q4_dataset train_set, test_set;

static void make_data(void) {
    make_synthetic(&data);
    train_set = data.train;
    test_set = data.test;
}

/* trains `steps` steps in exact mode with `threads`; returns the state's hash and the evaluation,
 * and where `integer` is not NULL the same state evaluated in integer arithmetic too */
static void train(const char *settings, int threads, int steps, char hash[65], q4_evaluation *e, q4_evaluation *integer) {
    q4_config c;
    q4_config_default(&c);
    c.batch_size = 32;
    c.seed = 17;
    c.exact = 1;
    c.threads = threads;
    q4_session *s = test_session(&c, settings, &train_set, &test_set);
    test_steps(s, steps);
    q4_session_state_sha256(s, hash);
    CHECK(q4_session_evaluate(s, e, NULL, 0) == Q4_OK, "evaluate");
    if (integer) CHECK(q4_session_evaluate_as(s, 1, integer) == Q4_OK, "evaluate in integer arithmetic");
    q4_session_destroy(s);
}

int main(void) {
    test_math();
    make_data();
    enum { RUNS = 5, INTEGER = 3 };
    const char *runs[RUNS][2] = {
        {"paper", ""},
        {"fast", "optimizer=sgd\nlearning_rate=0.05\nschedule=onecycle\nepochs=2\nlabel_smoothing=0.2\nema=0.9\n"
                 "cutout=8\nflip=alternate\ndropout=0\nclip_norm=0"},
        {"fp32", "weight_bits=32"},
        /* the paper's run evaluated in integer arithmetic (issue 26): integer_eval changes no step,
         * so it is the paper's run, trained once, evaluated both ways */
        {"integer", NULL},
        {"act8", "act_bits=8\ninteger_eval=1"}, /* trained with conv2-6 in integer arithmetic (issue 26) */
    };
    char one[RUNS][65], three[RUNS][65];
    q4_evaluation e1[RUNS], e3[RUNS];
    for (int r = 0; r < RUNS; r++) {
        if (r == INTEGER) continue; /* trained with the paper's */
        q4_evaluation *i1 = r == 0 ? &e1[INTEGER] : NULL, *i3 = r == 0 ? &e3[INTEGER] : NULL;
        train(runs[r][1], 1, 7, one[r], &e1[r], i1); /* 5 steps an epoch: crosses into the second */
        train(runs[r][1], 3, 7, three[r], &e3[r], i3);
    }
    memcpy(one[INTEGER], one[0], 65);
    memcpy(three[INTEGER], three[0], 65);
    for (int r = 0; r < RUNS; r++) {
        CHECK(strcmp(one[r], three[r]) == 0 && e1[r].loss == e3[r].loss, "%s: 1 and 3 threads differ in exact mode", runs[r][0]);
        uint64_t loss_bits;
        memcpy(&loss_bits, &e1[r].loss, 8);
        /* the line `make test-exact` compares between builds */
        printf("exact %s: state %s, evaluation loss %016llx, %d correct\n", runs[r][0], one[r],
               (unsigned long long)loss_bits, e1[r].correct);
    }
    return test_finish("test_exact");
}
