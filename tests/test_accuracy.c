/* test_accuracy.c - accuracy on real CIFAR-10 under the protocol of the native-engine
 * issue: seed 0, one epoch over data_batch_1.bin (the first 10,000 training images),
 * evaluated on all 10,000 test images; the paper's recipe 4-bit and with the FP32 switch, and
 * the fast recipe. Thresholds come from our own runs of seeds 0-4 (see THRESHOLDS below and the
 * README); the PyTorch reference reaches about 40-45% under this protocol.
 * Usage: test_accuracy DIR (the folder with the official binary files). */
#include "../core/include/q4.h"
#include "test_util.h"

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

/* One epoch over `train` with these settings (seed 0, 2 threads), evaluated on `test`. */
static double run(const char *name, const char *settings, const q4_dataset *train, const q4_dataset *test) {
    q4_config config;
    q4_config_default(&config);
    q4_error err = {0};
    CHECK(q4_config_parse(&config, settings, &err) == Q4_OK, "%s: %s", name, err.message);
    config.threads = 2;
    config.seed = 0;
    config.epochs = 1;
    q4_session *s = q4_session_create(&config, train, test, &err);
    CHECK(s != NULL, "session: %s", err.message);
    if (!s) return 0;
    q4_progress p;
    double t0 = q4_now();
    do {
        if (q4_session_train(s, 1000, &p)) {
            CHECK(0, "training: %s", q4_session_error(s));
            break;
        }
    } while (!p.epoch_done);
    double t1 = q4_now();
    q4_epoch_report r;
    CHECK(q4_session_end_epoch(s, &r) == Q4_OK, "evaluation: %s", q4_session_error(s));
    double t2 = q4_now();
    char levels[48] = "";
    if (config.weight_bits < Q4_FP32_BITS) {
        snprintf(levels, sizeof levels, ", fewest levels in a layer %d", r.levels_min);
        CHECK(r.levels_min >= 10, "%s: a layer uses only %d levels", name, r.levels_min);
    }
    printf("%s: loss %.4f, train %.2f%%, test %.2f%% (%d/%d)%s; %.1f train img/s, %.1f eval img/s\n", name,
           r.train_loss, 100 * r.train_accuracy, 100 * r.test.accuracy, r.test.correct, r.test.count, levels,
           train->count / (t1 - t0), test->count / (t2 - t1));
    q4_session_destroy(s);
    return r.test.accuracy;
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
    double q4 = run("paper recipe, 4-bit", "recipe=paper", &train, &cifar.test);
    double fp32 = run("paper recipe, FP32 ", "recipe=paper\nweight_bits=32", &train, &cifar.test);
    double fast = run("fast recipe, 4-bit ", "recipe=fast\ntta=none", &train, &cifar.test);
    CHECK(q4 >= MIN_4BIT_ACCURACY, "4-bit test accuracy %.2f%% is below %.0f%%", 100 * q4, 100 * MIN_4BIT_ACCURACY);
    CHECK(fabs(fp32 - q4) <= MAX_FP32_GAP, "FP32 %.2f%% vs 4-bit %.2f%%: more than %.0f points apart", 100 * fp32,
          100 * q4, 100 * MAX_FP32_GAP);
    CHECK(fast - q4 >= MIN_FAST_GAIN, "fast recipe %.2f%% is not %.0f points above the paper recipe's %.2f%%", 100 * fast,
          100 * MIN_FAST_GAIN, 100 * q4);
    CHECK(fast >= MIN_FAST_ACCURACY, "fast recipe: test accuracy %.2f%% is below %.0f%%", 100 * fast, 100 * MIN_FAST_ACCURACY);
    q4_cifar_free(&cifar);
    return test_finish("test_accuracy");
}
