/* q4train.c - the native front end: parses options, loads CIFAR, drives a q4 session
 * epoch by epoch with a progress bar (or plain lines when not on a terminal), evaluates,
 * logs JSON lines, and writes checkpoints and exports atomically. All training logic is
 * in core/; this file only does I/O and presentation. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/include/q4.h"

static const char *usage_text =
    "usage: q4train --data PATH [options]\n"
    "Trains the paper's 4-bit VGG on CIFAR (arXiv 2603.13931).\n"
    "  --data PATH            folder with the official binary files, or the official .tar.gz\n"
    "  --dataset NAME         cifar10 (default) or cifar100\n"
    "  --epochs N             epochs to train (default 150, the paper's)\n"
    "  --train-limit N        use the first N training images (default: all)\n"
    "  --test-limit N         evaluate on the first N test images (default: all)\n"
    "  --seed S               fixes initialisation, shuffling, augmentation, dropout (default 0)\n"
    "  --threads T            worker threads (default: all cores)\n"
    "  --batch N              batch size (default 128)\n"
    "  --fp32                 train without quantization (FP32 weights, no tanh clip)\n"
    "  --checkpoint FILE      save the full training state here after every epoch\n"
    "  --resume FILE          continue from a checkpoint (its settings are used)\n"
    "  --max-steps N          stop after N training steps in total (saves the checkpoint)\n"
    "  --export FILE          write the trained model as packed 4-bit weights at the end\n"
    "  --log FILE.jsonl       append one JSON line per epoch\n"
    "  --eval-model FILE      evaluate an exported model on the test set and exit\n"
    "  --stats                print per-class counts and channel mean/std of the training set and exit\n"
    "  --quiet                only the final summary\n";

typedef struct options {
    const char *data, *checkpoint, *resume, *export_path, *log, *eval_model;
    q4_dataset_kind kind;
    int epochs, train_limit, test_limit, threads, batch, fp32, stats, quiet;
    long long max_steps;
    unsigned long long seed;
    int seed_given, fp32_given, batch_given, epochs_given;
} options;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

static int fail(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("q4train: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    return 1;
}

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double peak_memory_mb(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0;
}

static int parse_int(const char *text, const char *flag, long long low, long long high, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < low || v > high) {
        fail("%s needs a whole number from %lld to %lld, not '%s'", flag, low, high, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->kind = Q4_CIFAR10;
    o->epochs = 150;
    o->batch = 128;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cores > 0 ? (int)cores : 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
#define NEED_VALUE()                                          \
    do {                                                      \
        if (!v) return fail("%s needs a value", a), -1;       \
        i++;                                                  \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(a, "--data")) { NEED_VALUE(); o->data = v;
        } else if (!strcmp(a, "--dataset")) {
            NEED_VALUE();
            if (!strcmp(v, "cifar10")) o->kind = Q4_CIFAR10;
            else if (!strcmp(v, "cifar100")) o->kind = Q4_CIFAR100;
            else return fail("--dataset must be cifar10 or cifar100, not '%s'", v), -1;
        } else if (!strcmp(a, "--epochs")) { NEED_VALUE(); if (parse_int(v, a, 1, 100000, &n)) return -1; o->epochs = (int)n; o->epochs_given = 1;
        } else if (!strcmp(a, "--train-limit")) { NEED_VALUE(); if (parse_int(v, a, 2, 1000000, &n)) return -1; o->train_limit = (int)n;
        } else if (!strcmp(a, "--test-limit")) { NEED_VALUE(); if (parse_int(v, a, 1, 1000000, &n)) return -1; o->test_limit = (int)n;
        } else if (!strcmp(a, "--seed")) {
            NEED_VALUE();
            if (parse_int(v, a, 0, 0x7fffffffffffffffLL, &n)) return -1;
            o->seed = (unsigned long long)n;
            o->seed_given = 1;
        } else if (!strcmp(a, "--threads")) { NEED_VALUE(); if (parse_int(v, a, 1, 256, &n)) return -1; o->threads = (int)n;
        } else if (!strcmp(a, "--batch")) { NEED_VALUE(); if (parse_int(v, a, 2, 1024, &n)) return -1; o->batch = (int)n; o->batch_given = 1;
        } else if (!strcmp(a, "--max-steps")) { NEED_VALUE(); if (parse_int(v, a, 1, 1LL << 40, &n)) return -1; o->max_steps = n;
        } else if (!strcmp(a, "--fp32")) { o->fp32 = 1; o->fp32_given = 1;
        } else if (!strcmp(a, "--checkpoint")) { NEED_VALUE(); o->checkpoint = v;
        } else if (!strcmp(a, "--resume")) { NEED_VALUE(); o->resume = v;
        } else if (!strcmp(a, "--export")) { NEED_VALUE(); o->export_path = v;
        } else if (!strcmp(a, "--log")) { NEED_VALUE(); o->log = v;
        } else if (!strcmp(a, "--eval-model")) { NEED_VALUE(); o->eval_model = v;
        } else if (!strcmp(a, "--stats")) { o->stats = 1;
        } else if (!strcmp(a, "--quiet")) { o->quiet = 1;
        } else {
            return fail("unknown option '%s' (see --help)", a), -1;
        }
#undef NEED_VALUE
    }
    if (!o->data) return fail("--data PATH is required (see --help; `make data` fetches CIFAR-10 into data/)"), -1;
    return 0;
}

/* ------------------------------------------------------------ files */

static int read_file(const char *path, uint8_t **bytes, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail("%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
        fclose(f);
        return fail("%s: not a regular file", path);
    }
    *size = (size_t)info.st_size;
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes) {
        fclose(f);
        return fail("%s: out of memory reading %zu bytes", path, *size);
    }
    if (fread(*bytes, 1, *size, f) != *size) {
        free(*bytes);
        fclose(f);
        return fail("%s: read error", path);
    }
    fclose(f);
    return 0;
}

static q4_status file_write(void *context, const uint8_t *bytes, size_t size) {
    return fwrite(bytes, 1, size, (FILE *)context) == size ? Q4_OK : Q4_ERR_IO;
}

/* Writes to a temporary file, flushed to disk, then renamed over the target: never a torn
 * file. Either bytes, or a session whose checkpoint is streamed (no copy in memory). */
static int write_atomic(const char *path, const uint8_t *bytes, size_t size, q4_session *checkpoint_of) {
    char temp[4200];
    snprintf(temp, sizeof temp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(temp, "wb");
    if (!f) return fail("%s: cannot create: %s", temp, strerror(errno));
    int ok = checkpoint_of ? q4_session_save_stream(checkpoint_of, file_write, f) == Q4_OK
                           : fwrite(bytes, 1, size, f) == size;
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(temp, path) != 0) {
        int e = errno;
        remove(temp);
        return fail("%s: could not write (%s); the previous file, if any, is unchanged", path, strerror(e));
    }
    return 0;
}

/* ------------------------------------------------------------ presentation */

static void print_bar(const q4_progress *p, int epochs, double rate, double eta) {
    int width = 28, filled = p->steps_per_epoch ? width * p->step_in_epoch / p->steps_per_epoch : 0;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
    bar[width] = 0;
    fprintf(stderr, "\r\033[Kepoch %d/%d [%s] %d/%d  %.1f img/s  ETA %d:%02d  loss %.4f", p->epoch + 1, epochs, bar,
            p->step_in_epoch, p->steps_per_epoch, rate, (int)(eta / 60), (int)fmod(eta, 60), p->epoch_loss);
    fflush(stderr);
}

typedef struct level_summary {
    int min, max;
    double mean;
    int per_layer[Q4_NUM_QUANT_LAYERS];
} level_summary;

static void summarize_levels(q4_session *s, level_summary *l) {
    q4_layer_stats stats[Q4_NUM_QUANT_LAYERS];
    q4_session_layer_stats(s, stats);
    l->min = 99;
    l->max = 0;
    l->mean = 0;
    for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++) {
        int u = stats[i].unique_levels;
        l->per_layer[i] = u;
        if (u < l->min) l->min = u;
        if (u > l->max) l->max = u;
        l->mean += u / (double)Q4_NUM_QUANT_LAYERS;
    }
}

static int evaluate_exported(const options *o, const q4_dataset *test) {
    uint8_t *bytes;
    size_t size;
    if (read_file(o->eval_model, &bytes, &size)) return 1;
    q4_error err = {0};
    q4_model *model = q4_model_load(bytes, size, o->threads, &err);
    free(bytes);
    if (!model) return fail("%s: %s", o->eval_model, err.message);
    q4_evaluation e;
    double t0 = now_seconds();
    if (q4_model_evaluate(model, test, &e, &err)) {
        q4_model_destroy(model);
        return fail("%s: %s", o->eval_model, err.message);
    }
    double dt = now_seconds() - t0;
    printf("model %s: test accuracy %.2f%% (%d/%d), loss %.4f, %.1f img/s\n", o->eval_model, 100.0 * e.accuracy,
           e.correct, e.count, e.loss, e.count / dt);
    q4_model_destroy(model);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o)) return 2;

    q4_error err = {0};
    q4_cifar cifar;
    double t_load = now_seconds();
    if (q4_cifar_load_path(&cifar, o.data, o.kind, &err)) return fail("%s", err.message);
    t_load = now_seconds() - t_load;

    if (o.stats) {
        q4_dataset_stats st;
        q4_dataset_compute_stats(&cifar.train, &st);
        printf("%s training set: %d images, %d classes (loaded in %.1f s)\n", o.kind == Q4_CIFAR10 ? "CIFAR-10" : "CIFAR-100",
               st.count, cifar.num_classes, t_load);
        for (int c = 0; c < cifar.num_classes; c++) printf("  class %2d %-16s %d\n", c, cifar.class_names[c], st.class_counts[c]);
        printf("  channel mean %.4f %.4f %.4f\n  channel std  %.4f %.4f %.4f\n", st.mean[0], st.mean[1], st.mean[2],
               st.std[0], st.std[1], st.std[2]);
        q4_cifar_free(&cifar);
        return 0;
    }

    q4_dataset train = q4_dataset_prefix(&cifar.train, o.train_limit);
    q4_dataset test = q4_dataset_prefix(&cifar.test, o.test_limit);
    if (o.eval_model) {
        int rc = evaluate_exported(&o, &test);
        q4_cifar_free(&cifar);
        return rc;
    }

    q4_config config;
    q4_config_default(&config);
    config.num_classes = cifar.num_classes;
    config.epochs = o.epochs;
    config.seed = o.seed;
    config.threads = o.threads;
    config.batch_size = o.batch;
    config.quantized = !o.fp32;

    uint8_t *resume_bytes = NULL;
    size_t resume_size = 0;
    if (o.resume) {
        if (read_file(o.resume, &resume_bytes, &resume_size)) return q4_cifar_free(&cifar), 1;
        q4_checkpoint_info info;
        if (q4_checkpoint_read_info(resume_bytes, resume_size, &info, &err)) {
            free(resume_bytes);
            q4_cifar_free(&cifar);
            return fail("%s: %s", o.resume, err.message);
        }
        if ((o.seed_given && info.config.seed != config.seed) || (o.fp32_given && info.config.quantized) ||
            (o.batch_given && info.config.batch_size != config.batch_size)) {
            free(resume_bytes);
            q4_cifar_free(&cifar);
            return fail("%s: --seed/--fp32/--batch conflict with the checkpoint's settings (seed %llu, %s, batch %d); "
                        "omit them when resuming", o.resume, (unsigned long long)info.config.seed,
                        info.config.quantized ? "4-bit" : "FP32", info.config.batch_size);
        }
        int threads = config.threads, epochs = o.epochs_given ? o.epochs : info.config.epochs;
        config = info.config;
        config.threads = threads;
        config.epochs = epochs;
        if (!o.train_limit) train = q4_dataset_prefix(&cifar.train, info.train_count);
        if (!o.test_limit) test = q4_dataset_prefix(&cifar.test, info.test_count);
    }

    q4_session *s = q4_session_create(&config, &train, &test, &err);
    if (!s) {
        free(resume_bytes);
        q4_cifar_free(&cifar);
        return fail("%s", err.message);
    }
    if (resume_bytes) {
        q4_status st = q4_session_load(s, resume_bytes, resume_size);
        free(resume_bytes);
        if (st) {
            int rc = fail("%s: %s", o.resume, q4_session_error(s));
            q4_session_destroy(s);
            q4_cifar_free(&cifar);
            return rc;
        }
    }

    FILE *log = NULL;
    if (o.log) {
        log = fopen(o.log, o.resume ? "a" : "w");
        if (!log) {
            int rc = fail("%s: cannot open the log: %s", o.log, strerror(errno));
            q4_session_destroy(s);
            q4_cifar_free(&cifar);
            return rc;
        }
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int tty = isatty(fileno(stderr)) && !o.quiet;
    q4_progress p;
    q4_session_progress(s, &p);
    if (!o.quiet)
        printf("q4 %s: %s, %d train / %d test images, %lld parameters, %s weights, batch %d, %d threads, seed %llu%s\n",
               q4_kernels_name(), o.kind == Q4_CIFAR10 ? "CIFAR-10" : "CIFAR-100", train.count, test.count,
               q4_session_parameter_count(s), config.quantized ? "4-bit" : "FP32", config.batch_size, config.threads,
               (unsigned long long)config.seed, o.resume ? " (resumed)" : "");
    fflush(stdout);

    double run_start = now_seconds();
    int rc = 0, stopped = 0;
    while (p.epoch < config.epochs && !stopped) {
        int epoch = p.epoch;
        double epoch_start = now_seconds(), train_time = 0.0;
        int images_at_start = p.images_seen, report_every = p.steps_per_epoch / 10 > 0 ? p.steps_per_epoch / 10 : 1;
        /* one epoch, a step at a time so the bar, --max-steps and Ctrl-C can act between steps */
        for (;;) {
            if (o.max_steps && p.global_step >= o.max_steps) {
                stopped = 1;
                break;
            }
            if (interrupted) {
                stopped = 1;
                break;
            }
            double t0 = now_seconds();
            q4_status st = q4_session_train(s, 1, &p);
            train_time += now_seconds() - t0;
            if (st) {
                rc = fail("%s", q4_session_error(s));
                stopped = 1;
                break;
            }
            double rate = (p.images_seen - images_at_start) / (train_time > 0 ? train_time : 1e-9);
            if (p.epoch_done) rate = (p.images_seen - images_at_start) / (train_time > 0 ? train_time : 1e-9);
            double eta = rate > 0 ? (p.steps_per_epoch - p.step_in_epoch) * (double)config.batch_size / rate : 0;
            if (tty) print_bar(&p, config.epochs, rate, eta);
            else if (!o.quiet && !p.epoch_done && p.step_in_epoch % report_every == 0)
                printf("  epoch %d step %d/%d  loss %.4f  %.1f img/s\n", epoch + 1, p.step_in_epoch, p.steps_per_epoch,
                       p.epoch_loss, rate), fflush(stdout);
            if (p.epoch_done) break;
        }
        if (tty) fputs("\r\033[K", stderr);
        if (rc) break;
        if (!p.epoch_done) {
            /* stopped inside an epoch: save so that --resume continues from this step */
            if (o.checkpoint) {
                if (write_atomic(o.checkpoint, NULL, 0, s)) rc = 1;
                if (!o.quiet && !rc) printf("stopped at step %lld; checkpoint saved to %s\n", p.global_step, o.checkpoint);
            }
            if (interrupted && !rc) rc = 130;
            break;
        }
        double images_per_second = (p.images_seen - images_at_start) / (train_time > 0 ? train_time : 1e-9);
        q4_evaluation e;
        if (q4_session_evaluate(s, &e, NULL, 0)) {
            rc = fail("%s", q4_session_error(s));
            break;
        }
        q4_session_record_test(s, epoch + 1, e.accuracy);
        level_summary levels;
        summarize_levels(s, &levels);
        double elapsed = now_seconds() - run_start, epoch_time = now_seconds() - epoch_start;
        if (!o.quiet) {
            printf("epoch %3d/%d  loss %.4f  train %6.2f%%  test %6.2f%%  lr %.6f", epoch + 1, config.epochs, p.epoch_loss,
                   100.0 * p.epoch_accuracy, 100.0 * e.accuracy, p.learning_rate);
            if (config.quantized) printf("  levels %d/%d/%.1f", levels.min, levels.max, levels.mean);
            printf("  %.1f img/s  %.1fs\n", images_per_second, elapsed);
            fflush(stdout);
        }
        if (log) {
            fprintf(log,
                    "{\"epoch\":%d,\"loss\":%.6f,\"train_accuracy\":%.6f,\"test_accuracy\":%.6f,\"test_loss\":%.6f,"
                    "\"learning_rate\":%.9g,\"levels_min\":%d,\"levels_max\":%d,\"levels_mean\":%.4f,\"levels\":[",
                    epoch + 1, p.epoch_loss, p.epoch_accuracy, e.accuracy, e.loss, p.learning_rate,
                    config.quantized ? levels.min : 0, config.quantized ? levels.max : 0,
                    config.quantized ? levels.mean : 0.0);
            for (int i = 0; i < Q4_NUM_QUANT_LAYERS; i++)
                fprintf(log, "%s%d", i ? "," : "", config.quantized ? levels.per_layer[i] : 0);
            fprintf(log, "],\"images_per_second\":%.2f,\"epoch_seconds\":%.3f,\"elapsed_seconds\":%.3f,\"step\":%lld,"
                         "\"threads\":%d,\"quantized\":%d,\"seed\":%llu}\n",
                    images_per_second, epoch_time, elapsed, p.global_step, config.threads, config.quantized,
                    (unsigned long long)config.seed);
            fflush(log);
        }
        if (o.checkpoint && write_atomic(o.checkpoint, NULL, 0, s)) {
            rc = 1;
            break;
        }
        q4_session_progress(s, &p);
    }

    if (!rc && o.export_path) {
        uint8_t *bytes;
        size_t size;
        if (q4_session_export(s, &bytes, &size)) rc = fail("%s", q4_session_error(s));
        else {
            if (write_atomic(o.export_path, bytes, size, NULL)) rc = 1;
            else if (!o.quiet || 1)
                printf("exported %s: %zu bytes (%.2f MB, %.2f MiB; the paper: 1.55 MB)\n", o.export_path, size,
                       size / 1e6, size / 1048576.0);
            free(bytes);
        }
    }
    double best;
    int best_epoch;
    q4_session_best(s, &best, &best_epoch);
    if (best_epoch) printf("best test accuracy %.2f%% at epoch %d\n", 100.0 * best, best_epoch);
    printf("peak memory %.1f MB (resident), engine %.1f MB, total time %.1f s\n", peak_memory_mb(),
           q4_session_memory_bytes(s) / 1048576.0, now_seconds() - run_start);
    if (log) fclose(log);
    q4_session_destroy(s);
    q4_cifar_free(&cifar);
    return rc;
}
