/* test_accuracy.c - accuracy on real CIFAR-10 under the protocol of the native-engine
 * issue: seed 0, one epoch over data_batch_1.bin (the first 10,000 training images),
 * evaluated on all 10,000 test images; the paper's recipe 4-bit and with the FP32 switch, and
 * the fast recipe. Thresholds come from our own runs of seeds 0-4 (see THRESHOLDS below and the
 * README); the PyTorch reference reaches about 40-45% under this protocol.
 * Usage: test_accuracy DIR (the folder with the official binary files). */
#include "../core/include/q4.h"
#include "test_util.h"

#include <pthread.h>

/* THRESHOLDS, from scripts/measure-thresholds.sh (results/logs/thresholds.txt: engine 0.10,
 * AVX-512 kernels, the 2-core AMD EPYC; results do not depend on the thread count), the protocol
 * above for seeds 0-4, `build/q4train --data data --epochs 1 --train-limit 10000 --seed S
 * [--fp32 | --recipe fast --tta none]`:
 *   paper recipe, 4-bit: 46.07 / 47.00 / 45.69 / 43.73 / 46.75%
 *   paper recipe, FP32:  43.33 / 46.66 / 47.89 / 47.11 / 50.11%  (FP32 - 4-bit: -2.74 .. +3.38)
 *   fast recipe, 4-bit:  55.43 / 53.93 / 54.38 / 51.98 / 53.02%  (fast - paper: 6.27 .. 9.36)
 * One epoch on 10,000 images is chaotic: a change that only reorders float additions moves a
 * seed by up to 4 points (Winograd did, engine 0.9 -> 0.10), so each threshold sits at least 3.3
 * points beyond the least favourable seed, and a broken recipe (no learning: 10%) fails them all.
 * PyTorch's torch_ref.py (engine 0.9's day): 4-bit 40.81 / 41.17 / 45.09%, FP32 (seed 0) 36.92%. */
#define MIN_4BIT_ACCURACY 0.40  /* 3.73 under the lowest seed */
#define MAX_FP32_GAP 0.07       /* 3.62 over the largest gap */
#define MIN_FAST_ACCURACY 0.48  /* 3.98 under the lowest seed */
#define MIN_FAST_GAIN 0.03      /* the fast recipe's lead over the paper's, 3.27 under the smallest */

/* One epoch over `train` with these settings (seed 0, one thread), evaluated on `test`; the three
 * runs go side by side, one thread each: this machine's second thread adds only 27% to one run
 * (README, "MPI"), so three runs at once take about two thirds of the time of three in a row at two
 * threads each. Results do not depend on the thread count. The checks are made by main(). */
typedef struct {
    const char *name, *settings;
    const q4_dataset *train, *test;
    int weight_bits;
    q4_epoch_report report;
    double train_seconds, eval_seconds;
    char error[600]; /* empty when the run ended */
} job;

static void *run(void *arg) {
    job *j = arg;
    q4_config config;
    q4_config_default(&config);
    q4_error err = {0};
    if (q4_config_parse(&config, j->settings, &err) != Q4_OK) {
        snprintf(j->error, sizeof j->error, "settings: %s", err.message);
        return NULL;
    }
    config.threads = 1;
    config.seed = 0;
    config.epochs = 1;
    j->weight_bits = config.weight_bits;
    q4_session *s = q4_session_create(&config, j->train, j->test, &err);
    if (!s) {
        snprintf(j->error, sizeof j->error, "session: %s", err.message);
        return NULL;
    }
    q4_progress p;
    double t0 = q4_now();
    do {
        if (q4_session_train(s, 1000, &p)) {
            snprintf(j->error, sizeof j->error, "training: %s", q4_session_error(s));
            break;
        }
    } while (!p.epoch_done);
    double t1 = q4_now();
    if (!j->error[0] && q4_session_end_epoch(s, &j->report) != Q4_OK)
        snprintf(j->error, sizeof j->error, "evaluation: %s", q4_session_error(s));
    j->train_seconds = t1 - t0;
    j->eval_seconds = q4_now() - t1;
    q4_session_destroy(s);
    return NULL;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : getenv("Q4_CIFAR10_DIR");
    if (!dir) dir = "data/cifar-10-batches-bin";
    q4_cifar cifar;
    q4_error err = {0};
    if (q4_cifar_load_path(&cifar, dir, Q4_CIFAR10, &err)) {
        fprintf(stderr, "test_accuracy: %s (run `make data`)\n", err.message);
        return 1;
    }
    q4_dataset train = q4_dataset_prefix(&cifar.train, 10000);
    job jobs[3] = {
        {.name = "paper recipe, 4-bit", .settings = "recipe=paper"},
        {.name = "paper recipe, FP32 ", .settings = "recipe=paper\nweight_bits=32"},
        {.name = "fast recipe, 4-bit ", .settings = "recipe=fast\ntta=none"},
    };
    pthread_t threads[3];
    int started[3];
    for (int i = 0; i < 3; i++) {
        jobs[i].train = &train;
        jobs[i].test = &cifar.test;
        started[i] = pthread_create(&threads[i], NULL, run, &jobs[i]) == 0;
        if (!started[i]) run(&jobs[i]); /* no thread to be had: in turn */
    }
    double accuracy[3];
    for (int i = 0; i < 3; i++) {
        if (started[i]) pthread_join(threads[i], NULL);
        const job *j = &jobs[i];
        const q4_epoch_report *r = &j->report;
        CHECK(!j->error[0], "%s: %s", j->name, j->error);
        char levels[48] = "";
        if (j->weight_bits < Q4_FP32_BITS) {
            snprintf(levels, sizeof levels, ", fewest levels in a layer %d", r->levels_min);
            CHECK(r->levels_min >= 10, "%s: a layer uses only %d levels", j->name, r->levels_min);
        }
        printf("%s: loss %.4f, train %.2f%%, test %.2f%% (%d/%d)%s; %.1f train img/s, %.1f eval img/s (3 runs side by side)\n",
               j->name, r->train_loss, 100 * r->train_accuracy, 100 * r->test.accuracy, r->test.correct, r->test.count, levels,
               train.count / j->train_seconds, cifar.test.count / j->eval_seconds);
        accuracy[i] = r->test.accuracy;
    }
    double q4 = accuracy[0], fp32 = accuracy[1], fast = accuracy[2];
    CHECK(q4 >= MIN_4BIT_ACCURACY, "4-bit test accuracy %.2f%% is below %.0f%%", 100 * q4, 100 * MIN_4BIT_ACCURACY);
    CHECK(fabs(fp32 - q4) <= MAX_FP32_GAP, "FP32 %.2f%% vs 4-bit %.2f%%: more than %.0f points apart", 100 * fp32,
          100 * q4, 100 * MAX_FP32_GAP);
    CHECK(fast - q4 >= MIN_FAST_GAIN, "fast recipe %.2f%% is not %.0f points above the paper recipe's %.2f%%", 100 * fast,
          100 * MIN_FAST_GAIN, 100 * q4);
    CHECK(fast >= MIN_FAST_ACCURACY, "fast recipe: test accuracy %.2f%% is below %.0f%%", 100 * fast, 100 * MIN_FAST_ACCURACY);
    q4_cifar_free(&cifar);
    return test_finish("test_accuracy");
}
