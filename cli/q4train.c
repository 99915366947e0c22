/* q4train.c - the native front end: parses options (every setting of the configuration
 * table as --name value), loads CIFAR, drives a q4 session a step at a time with a progress
 * bar (or plain lines when not on a terminal), prints and logs each epoch's report, and
 * writes checkpoints and exports atomically. All training logic is in core/; this file only
 * does I/O and presentation. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/include/q4.h"
#include "front.h"

#define MAX_SETTINGS 64

typedef struct options {
    const char *data, *checkpoint, *resume, *export_path, *log, *eval_model, *card, *verify, *levels;
    q4_dataset_kind kind;
    int stats, quiet;
    long long max_steps, verify_steps;
    /* settings given on the command line, in order (a recipe first) */
    int settings;
    const char *setting_name[MAX_SETTINGS], *setting_value[MAX_SETTINGS];
    char names[MAX_SETTINGS][64];
} options;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) {
    (void)sig;
    interrupted = 1;
}

/* one line on stderr, written at once (ranks of q4train-mpi share the terminal) */
static int fail(const char *format, ...) {
    char line[2048];
    int at = front_processes() > 1
                 ? snprintf(line, sizeof line, "%s (rank %d of %d): ", front_name(), front_rank(), front_processes())
                 : snprintf(line, sizeof line, "%s: ", front_name());
    va_list args;
    va_start(args, format);
    vsnprintf(line + at, sizeof line - (size_t)at - 1, format, args);
    va_end(args);
    strcat(line, "\n");
    fputs(line, stderr);
    fflush(stderr);
    return 1;
}

static void usage(FILE *out) {
    if (front_processes() > 1 || strcmp(front_name(), "q4train"))
        fputs("usage: mpirun -n N q4train-mpi --data PATH --micro-batch K [options]\n"
              "Trains data-parallel over N processes: the same bits as one process (q4train) with the same\n"
              "--micro-batch K, for any N (README, \"Several processes\"). Rank 0 writes every file.\n",
              out);
    else fputs("usage: q4train --data PATH [options]\n", out);
    fputs("Trains the 4-bit VGG of arXiv 2603.13931 on CIFAR, natively.\n"
          "  --data PATH            folder with the official binary files, or the official .tar.gz\n"
          "  --dataset NAME         cifar10 (default) or cifar100\n"
          "  --checkpoint FILE      save the full training state here after every epoch\n"
          "  --resume FILE          continue from a checkpoint (its settings are used)\n"
          "  --max-steps N          stop after N training steps in total (saves the checkpoint)\n"
          "  --export FILE          write the trained model as packed 4-bit weights at the end\n"
          "  --log FILE.jsonl       append one JSON line per epoch (after a line describing the run)\n"
          "  --eval-model FILE      evaluate an exported model on the test set and exit (with --card: beside the card's)\n"
          "  --card FILE.json       write a run card: settings, data MD5s, state fingerprints of the first 20 steps\n"
          "                         and of every epoch (continued when resuming; a new card of a resumed run\n"
          "                         begins at its checkpoint, whose step and state SHA-256 it records)\n"
          "  --verify FILE.json     re-run a run card and report bit-identical or the first step that differs\n"
          "                         (a card that began at a checkpoint: give that checkpoint with --resume)\n"
          "  --steps N              with --verify: compare the first N steps only\n"
          "  --stats                print per-class counts and channel mean/std of the training set and exit\n"
          "  --levels FILE          print how an exported model's weights spread over the quantization levels, per\n"
          "                         layer, and exit (needs no data)\n"
          "  --quiet                only the final summary\n"
          "  --batch N, --bits B    short for --batch-size N, --weight-bits B\n"
          "  --fp32                 short for --weight-bits 32\n"
          "  --integer              short for --integer-eval 1 (also for --eval-model)\n"
          "Settings (--name value; --recipe applies first, the others override it):\n",
          out);
    q4_config defaults;
    q4_config_default(&defaults);
    for (int i = 0; i < q4_config_field_count(); i++) {
        const q4_config_field *f = q4_config_field_at(i);
        char flag[64], value[64];
        snprintf(flag, sizeof flag, "--%s", f->name);
        for (char *c = flag; *c; c++)
            if (*c == '_') *c = '-';
        q4_config_get(&defaults, f, value, sizeof value);
        fprintf(out, "  %-22s %s (default %s%s%s)\n", flag, f->help,
                strcmp(f->name, "threads") == 0 ? "all cores" : value,
                f->choices ? "; one of " : "", f->choices ? f->choices : "");
    }
    fputs("Environment: Q4_ISA picks the instruction set (avx512, avx2, scalar; default: the best this CPU has),\n"
          "  Q4_GEMM_VARIANT the GEMM tiles (e.g. f32-gemm-6x16-avx2).\n", out);
}

static int parse_count(const char *text, const char *flag, long long low, long long high, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end || end == text || v < low || v > high)
        return fail("%s needs a whole number from %lld to %lld, not '%s'", flag, low, high, text), -1;
    *out = v;
    return 0;
}

static int add_setting(options *o, const char *flag, const char *name, const char *value) {
    if (o->settings == MAX_SETTINGS) return fail("too many settings"), -1;
    snprintf(o->names[o->settings], sizeof o->names[0], "%s", name);
    for (char *c = o->names[o->settings]; *c; c++)
        if (*c == '-') *c = '_';
    const q4_config_field *f = q4_config_field_find(o->names[o->settings]);
    if (!f) return fail("unknown option %s (see --help)", flag), -1;
    for (int i = 0; i < o->settings; i++) /* one rule for every setting: given once */
        if (!strcmp(o->setting_name[i], o->names[o->settings]))
            return fail("%s: the setting %s is given twice (%s, then %s)", flag, f->name, o->setting_value[i], value), -1;
    int at = o->settings++;
    if (f->flags & Q4_FIELD_RECIPE) { /* the recipe first: the other settings refine it */
        memmove(&o->setting_name[1], &o->setting_name[0], (size_t)at * sizeof o->setting_name[0]);
        memmove(&o->setting_value[1], &o->setting_value[0], (size_t)at * sizeof o->setting_value[0]);
        at = 0;
    }
    o->setting_name[at] = o->names[o->settings - 1];
    o->setting_value[at] = value;
    return 0;
}

/* The options that name a file or folder, by flag. */
static const char **path_option(options *o, const char *flag) {
    static const struct {
        const char *flag;
        size_t offset;
    } paths[] = {
        {"--data", offsetof(options, data)},     {"--checkpoint", offsetof(options, checkpoint)},
        {"--resume", offsetof(options, resume)}, {"--export", offsetof(options, export_path)},
        {"--log", offsetof(options, log)},       {"--eval-model", offsetof(options, eval_model)},
        {"--card", offsetof(options, card)},     {"--verify", offsetof(options, verify)},
        {"--levels", offsetof(options, levels)},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(flag, paths[i].flag)) return (const char **)((char *)o + paths[i].offset);
    return NULL;
}

static int parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->kind = Q4_CIFAR10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (front_rank() == 0) usage(stdout);
            exit(front_finish(0));
        }
        if (strncmp(a, "--", 2) != 0) return fail("unexpected argument '%s' (see --help)", a), -1;
        if (!strcmp(a, "--fp32")) {
            if (add_setting(o, a, "weight_bits", "32")) return -1;
            continue;
        }
        if (!strcmp(a, "--integer")) {
            if (add_setting(o, a, "integer_eval", "1")) return -1;
            continue;
        }
        if (!strcmp(a, "--stats")) { o->stats = 1; continue; }
        if (!strcmp(a, "--quiet")) { o->quiet = 1; continue; }
        const char **path = path_option(o, a);
        char name[64];
        snprintf(name, sizeof name, "%s", a + 2);
        for (char *c = name; *c; c++)
            if (*c == '-') *c = '_';
        int known = path || !strcmp(a, "--dataset") || !strcmp(a, "--max-steps") || !strcmp(a, "--steps") ||
                    !strcmp(a, "--batch") || !strcmp(a, "--bits") || q4_config_field_find(name);
        if (!known) return fail("unknown option %s (see --help)", a), -1;
        if (!v) return fail("%s needs a value", a), -1;
        i++;
        if (path) {
            if (*path) return fail("%s is given twice (%s, then %s)", a, *path, v), -1;
            if (!*v) return fail("%s needs a file name, not an empty one", a), -1;
            *path = v;
        } else if (!strcmp(a, "--dataset")) {
            if (!strcmp(v, "cifar10")) o->kind = Q4_CIFAR10;
            else if (!strcmp(v, "cifar100")) o->kind = Q4_CIFAR100;
            else return fail("--dataset must be cifar10 or cifar100, not '%s'", v), -1;
        } else if (!strcmp(a, "--max-steps")) {
            if (parse_count(v, a, 1, 1LL << 40, &n)) return -1;
            o->max_steps = n;
        } else if (!strcmp(a, "--steps")) {
            if (parse_count(v, a, 1, 1LL << 40, &n)) return -1;
            o->verify_steps = n;
        } else if (!strcmp(a, "--batch")) {
            if (add_setting(o, a, "batch_size", v)) return -1;
        } else if (!strcmp(a, "--bits")) {
            if (add_setting(o, a, "weight_bits", v)) return -1;
        } else if (add_setting(o, a, a + 2, v)) return -1;
    }
    if (o->levels) {
        if (o->data || o->checkpoint || o->resume || o->export_path || o->log || o->eval_model || o->card || o->verify ||
            o->stats || o->max_steps || o->verify_steps || o->settings)
            return fail("--levels describes an exported model's weights and runs nothing: give it alone"), -1;
        return 0;
    }
    if (!o->data) return fail("--data PATH is required (see --help; `make data` fetches CIFAR-10 into data/)"), -1;
    if (o->verify && (o->card || o->checkpoint || o->export_path || o->eval_model || o->log || o->stats || o->max_steps))
        return fail("--verify runs a card on its own (with --resume: the checkpoint a resumed run's card began from): "
                    "leave out --card, --checkpoint, --export, --eval-model, --log, --stats, --max-steps"), -1;
    if (o->eval_model && (o->resume || o->checkpoint || o->export_path || o->log || o->stats || o->max_steps))
        return fail("--eval-model evaluates a model and trains nothing: leave out --resume, --checkpoint, --export, "
                    "--log, --stats, --max-steps (--card compares with a run card)"), -1;
    if (o->stats && (o->resume || o->checkpoint || o->export_path || o->log || o->card || o->max_steps))
        return fail("--stats describes the data and trains nothing: leave out --resume, --checkpoint, --export, --log, "
                    "--card, --max-steps"), -1;
    if (o->verify_steps && !o->verify) return fail("--steps goes with --verify (to stop training early: --max-steps)"), -1;
    return 0;
}

/* Applies the command line's settings to c; the first problem names its option. */
static int apply_settings(const options *o, q4_config *c) {
    for (int i = 0; i < o->settings; i++) {
        q4_error err = {0};
        if (q4_config_set(c, o->setting_name[i], o->setting_value[i], &err)) return fail("%s", err.message), -1;
    }
    return 0;
}

/* ------------------------------------------------------------ files */

static int read_file(const char *path, uint8_t **bytes, size_t *size) {
    q4_error err = {0};
    long long length = 0;
    FILE *f = q4_open_regular(path, &length, &err);
    if (!f) return fail("%s", err.message);
    *size = (size_t)length;
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes) {
        fclose(f);
        return fail("%s: out of memory reading %zu bytes", path, *size);
    }
    if (fread(*bytes, 1, *size, f) != *size) {
        int e = ferror(f) ? errno : 0;
        free(*bytes);
        fclose(f);
        return fail("%s: %s", path, e ? strerror(e) : "shorter than its size (changed while read?)");
    }
    fclose(f);
    return 0;
}

static q4_status file_write(void *context, const uint8_t *bytes, size_t size) {
    return fwrite(bytes, 1, size, (FILE *)context) == size ? Q4_OK : Q4_ERR_IO;
}

/* Removes temporaries a killed run left beside path ("NAME.tmp.PID" whose process is gone). */
static void remove_stale_temporaries(const char *path) {
    char copy[4096], name_copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    snprintf(name_copy, sizeof name_copy, "%s", path);
    const char *dir = dirname(copy), *name = basename(name_copy);
    DIR *d = opendir(dir);
    if (!d) return;
    size_t n = strlen(name);
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, name, n) != 0 || strncmp(e->d_name + n, ".tmp.", 5) != 0) continue;
        char *end;
        long pid = strtol(e->d_name + n + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%ld", pid);
        struct stat st;
        if (stat(proc, &st) == 0) continue; /* still running */
        char stale[8192];
        snprintf(stale, sizeof stale, "%s/%s", dir, e->d_name);
        remove(stale);
    }
    closedir(d);
}

/* Writes to a temporary file, flushed to disk, renamed over the target, and the directory
 * flushed: never a torn file, and the rename survives a power cut. Either bytes, or a session
 * whose checkpoint is streamed (no copy in memory). */
static int write_atomic(const char *path, const uint8_t *bytes, size_t size, q4_session *checkpoint_of) {
    remove_stale_temporaries(path);
    char temp[4200];
    snprintf(temp, sizeof temp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(temp, "wb");
    if (!f) return fail("%s: cannot create: %s", temp, strerror(errno));
    /* e: the errno of the first step that failed, never an earlier call's */
    int e = 0, ok = checkpoint_of ? q4_session_save_stream(checkpoint_of, file_write, f) == Q4_OK
                                  : fwrite(bytes, 1, size, f) == size;
    if (!ok) e = errno;
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0)) ok = 0, e = errno;
    if (fclose(f) != 0 && ok) ok = 0, e = errno;
    if (ok && rename(temp, path) != 0) ok = 0, e = errno;
    if (!ok) {
        remove(temp);
        return fail("%s: could not write (%s); the previous file, if any, is unchanged", path,
                    e ? strerror(e) : "write error");
    }
    char dir_copy[4096];
    snprintf(dir_copy, sizeof dir_copy, "%s", path);
    int dir = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    return 0;
}

/* The absolute name `path` has, or will have once written: symbolic links followed, dangling
 * ones too (writing through them creates their target). 0, or -1 when it cannot be resolved. */
static int canonical_name(const char *path, char out[PATH_MAX]) {
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s", path);
    for (int hops = 0; hops < 40; hops++) {
        if (realpath(name, out)) return 0; /* it exists */
        char link[PATH_MAX];
        ssize_t n = readlink(name, link, sizeof link - 1);
        if (n < 0) break; /* not a link: a file to be created */
        link[n] = 0;
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", name);
        const char *parent = link[0] == '/' ? "" : dirname(dir);
        int length = snprintf(name, sizeof name, "%s%s%s", parent, *parent ? "/" : "", link);
        if (length < 0 || length >= (int)sizeof name) return -1;
    }
    char dir[PATH_MAX], base[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", name);
    snprintf(base, sizeof base, "%s", name);
    if (!realpath(dirname(dir), real)) return -1;
    const char *file = basename(base);
    int n = snprintf(out, PATH_MAX, "%s/%s", real, file);
    return n > 0 && n < PATH_MAX ? 0 : -1;
}

/* Whether two paths name one file: the same device and inode when both exist, else the same
 * resolved name. */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (!strcmp(a, b)) return 1;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ca[PATH_MAX], cb[PATH_MAX];
    return !canonical_name(a, ca) && !canonical_name(b, cb) && !strcmp(ca, cb);
}

/* Outputs are replaced whole (a temporary renamed over them; the log is appended to): each must
 * be a regular file or not exist yet, and no two may be one file, nor an output the --resume
 * checkpoint except --checkpoint itself. Checked before anything is read or trained. */
static int check_outputs(const options *o) {
    const struct {
        const char *flag, *path;
    } out[] = {{"--checkpoint", o->checkpoint}, {"--export", o->export_path}, {"--log", o->log}, {"--card", o->card}};
    int n = (int)(sizeof out / sizeof out[0]);
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (!out[i].path || (o->eval_model && !strcmp(out[i].flag, "--card"))) continue; /* there --card is read */
        if (stat(out[i].path, &st) == 0 && !S_ISREG(st.st_mode))
            return fail("%s %s: is %s; an output must be a regular file (it is replaced whole) or not exist yet",
                        out[i].flag, out[i].path, q4_file_kind(st.st_mode));
        for (int k = 0; k < i; k++)
            if (out[k].path && same_file(out[i].path, out[k].path))
                return fail("%s %s and %s %s are the same file: each output needs its own", out[k].flag, out[k].path,
                            out[i].flag, out[i].path);
        if (o->resume && i > 0 && same_file(out[i].path, o->resume))
            return fail("%s %s is the checkpoint --resume reads: it would be overwritten", out[i].flag, out[i].path);
    }
    return 0;
}

/* the run card, rewritten whole (atomically) whenever it grows */
static int write_card(const char *path, const q4_card *card) {
    size_t size = q4_card_json(card, NULL, 0);
    char *text = malloc(size + 2);
    if (!text) return fail("%s: out of memory", path);
    q4_card_json(card, text, size + 1);
    text[size] = '\n';
    int rc = write_atomic(path, (const uint8_t *)text, size + 1, NULL);
    free(text);
    return rc;
}

static q4_card *read_card(const char *path) {
    uint8_t *bytes;
    size_t size;
    if (read_file(path, &bytes, &size)) return NULL;
    q4_error err = {0};
    q4_card *card = q4_card_parse((const char *)bytes, size, &err);
    free(bytes);
    if (!card) fail("%s: %s", path, err.message);
    return card;
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

static void print_report(const q4_epoch_report *r, int quantized) {
    printf("epoch %3d/%d  loss %.4f  train %6.2f%%  test %6.2f%%", r->epoch, r->epochs, r->train_loss,
           100.0 * r->train_accuracy, 100.0 * r->test.accuracy);
    if (r->tta_accuracy >= 0) printf(" (TTA %.2f%%)", 100.0 * r->tta_accuracy);
    printf("  lr %.6f", r->learning_rate);
    if (quantized) printf("  levels %d/%d/%.1f", r->levels_min, r->levels_max, r->levels_mean);
    printf("  %.1f img/s  %.1fs\n", r->images_per_second, r->elapsed_seconds);
    fflush(stdout);
}

/* ------------------------------------------------------------ a run */

typedef struct run {
    q4_cifar cifar;
    int have_cifar;
    q4_session *session;
    q4_card *card;
    FILE *log;
    uint8_t *resume_bytes;
    size_t resume_size;
} run;

static void run_free(run *r) {
    if (r->log) fclose(r->log);
    q4_card_free(r->card);
    q4_session_destroy(r->session);
    free(r->resume_bytes);
    if (r->have_cifar) q4_cifar_free(&r->cifar);
}

/* Evaluates an exported model. With --card: on the card's own test images, data checked against its
 * MD5s, in its arithmetic mode, and exit 1 unless the model scores exactly the card's final claim. */
static int evaluate_exported(const options *o, const q4_cifar *cifar, const q4_config *asked, int threads) {
    q4_error err = {0};
    q4_card_claim claim = {.test_limit = asked->test_limit, .tta = asked->tta, .exact = asked->exact,
                           .integer_eval = asked->integer_eval};
    if (o->card && asked->bn_recalibrate)
        return fail("--card checks the model as it was exported: leave out --bn-recalibrate");
    if (o->card) {
        q4_card *card = read_card(o->card);
        if (!card) return 1;
        int limit = q4_card_config(card)->test_limit, rc = 0;
        if (q4_card_claim_read(card, cifar, &claim, &err)) rc = fail("%s: %s", o->card, err.message);
        else if (asked->test_limit && asked->test_limit != limit)
            rc = fail("--test-limit %d: the card's run was tested on the first %d test images (leave it out)",
                      asked->test_limit, limit);
        q4_card_free(card);
        if (rc) return rc;
    }
    q4_dataset test = q4_dataset_prefix(&cifar->test, claim.test_limit);
    uint8_t *bytes;
    size_t size;
    if (read_file(o->eval_model, &bytes, &size)) return 1;
    q4_model *model = q4_model_load(bytes, size, threads, claim.exact, &err);
    free(bytes);
    if (!model) return fail("%s: %s", o->eval_model, err.message);
    if (claim.integer_eval && q4_model_set_integer(model, 1, &err)) {
        q4_model_destroy(model);
        return fail("%s: %s", o->eval_model, err.message);
    }
    if (asked->bn_recalibrate) {
        q4_dataset train = q4_dataset_prefix(&cifar->train, asked->train_limit);
        double t = q4_now();
        if (q4_model_recalibrate_bn(model, &train, asked->batch_size, &err)) {
            q4_model_destroy(model);
            return fail("%s: %s", o->eval_model, err.message);
        }
        printf("model %s: BatchNorm statistics recomputed over %d training images in batches of %d (%.1f s)\n",
               o->eval_model, train.count, asked->batch_size, q4_now() - t);
    }
    q4_evaluation e, augmented;
    double t0 = q4_now();
    q4_status st = q4_model_evaluate(model, &test, Q4_TTA_NONE, &e, &err);
    double dt = q4_now() - t0;
    if (!st && claim.tta != Q4_TTA_NONE) st = q4_model_evaluate(model, &test, claim.tta, &augmented, &err);
    q4_model_destroy(model);
    if (st) return fail("%s: %s", o->eval_model, err.message);
    printf("model %s: test accuracy %.2f%% (%d/%d), loss %.4f, %.1f img/s\n", o->eval_model, 100.0 * e.accuracy,
           e.correct, e.count, e.loss, e.count / dt);
    if (claim.tta != Q4_TTA_NONE)
        printf("model %s: with test-time augmentation: test accuracy %.2f%% (%d/%d)\n", o->eval_model,
               100.0 * augmented.accuracy, augmented.correct, augmented.count);
    if (!o->card) return 0;
    char verdict[512];
    int same = q4_card_claim_compare(&claim, &e, &augmented, o->card, verdict, sizeof verdict);
    printf("%s\n", verdict);
    return same ? 0 : 1;
}

static void print_stats(const options *o, const q4_cifar *cifar) {
    q4_dataset_stats st;
    q4_dataset_compute_stats(&cifar->train, &st);
    printf("%s training set: %d images, %d classes\n", o->kind == Q4_CIFAR10 ? "CIFAR-10" : "CIFAR-100", st.count,
           cifar->num_classes);
    for (int c = 0; c < cifar->num_classes; c++) printf("  class %2d %-16s %d\n", c, cifar->class_names[c], st.class_counts[c]);
    printf("  channel mean %.4f %.4f %.4f\n  channel std  %.4f %.4f %.4f\n", st.mean[0], st.mean[1], st.mean[2],
           st.std[0], st.std[1], st.std[2]);
}

/* one of front_processes() processes: with several, training is data-parallel (micro-batches) */
static int attach(q4_session *s) {
    char message[512];
    if (front_attach(s, message, sizeof message))
        return fail("%s%s", message, front_processes() > 1 && q4_session_config(s)->micro_batch <= 0
                                         ? " (e.g. --micro-batch 8; one process gives the same bits with the same setting)"
                                         : "");
    return 0;
}

/* Several processes must start from the same data, settings and state, or they would train on
 * apart without noticing: each item is compared with rank 0's. 0, or 1 with a message. */
static int check_same_start(const run *r) {
    if (front_processes() == 1) return 0;
    char names[16][32], md5[16][33], text[16384];
    int shards = q4_cifar_md5(&r->cifar, names, md5, 16);
    size_t used = 0;
    for (int i = 0; i < shards && used < sizeof text; i++)
        used += (size_t)snprintf(text + used, sizeof text - used, "%s %s\n", names[i], md5[i]);
    struct {
        const char *what, *compared, *fix;
    } items[3] = {{"data", "the shards' MD5s", "every rank must read the same files"},
                  {"settings", "the settings", "every rank must be given the same options"},
                  {"weights", "the training state's SHA-256", "every rank must start from the same checkpoint"}};
    for (int item = 0; item < 3; item++) {
        if (item == 1) q4_config_json(q4_session_config(r->session), text, sizeof text);
        if (item == 2) q4_session_state_sha256(r->session, text);
        int other = front_first_different(text);
        if (other < 0) continue;
        if (front_rank() == other) /* the rank that differs says how */
            fail("not rank 0's %s; mine: %.300s", items[item].compared + 4, text);
        return fail("rank %d starts from other %s than rank 0 (compared: %s): %s", other, items[item].what,
                    items[item].compared, items[item].fix);
    }
    return 0;
}

/* the threads of each process by default: this machine's cores shared by its processes */
static int default_threads(long cores) {
    long each = cores > 0 ? cores / front_local_processes() : 1;
    return each < 1 ? 1 : each > 256 ? 256 : (int)each;
}

/* The configuration of a new run, or of the checkpoint to resume (with the settings the
 * command line may change); creates the session. */
static int open_session(const options *o, run *r, long cores) {
    q4_config config;
    q4_config_default(&config);
    config.num_classes = r->cifar.num_classes;
    config.threads = default_threads(cores);
    q4_error err = {0};
    if (o->resume) {
        if (read_file(o->resume, &r->resume_bytes, &r->resume_size)) return 1;
        q4_checkpoint_info info;
        if (q4_checkpoint_read_info(r->resume_bytes, r->resume_size, &info, &err))
            return fail("%s: %s", o->resume, err.message);
        q4_config asked = info.config;
        asked.threads = config.threads;
        if (apply_settings(o, &asked)) return 1;
        char differences[1024];
        if (q4_config_differences(&info.config, &asked, differences, sizeof differences))
            return fail("%s: the options change the checkpoint's settings (%s); omit them when resuming", o->resume,
                        differences);
        config = asked;
    } else if (apply_settings(o, &config)) {
        return 1;
    }
    r->session = q4_session_create(&config, &r->cifar.train, &r->cifar.test, &err);
    if (!r->session && o->resume && config.num_classes != r->cifar.num_classes)
        return fail("%s: made on data of %d classes; %s has %d (%s)", o->resume, config.num_classes, o->data,
                    r->cifar.num_classes, err.message);
    if (!r->session && o->resume) return fail("%s: %s", o->resume, err.message);
    if (!r->session) return fail("%s", err.message);
    if (r->resume_bytes && q4_session_load(r->session, r->resume_bytes, r->resume_size))
        return fail("%s: %s", o->resume, q4_session_error(r->session));
    return attach(r->session) || check_same_start(r);
}

/* The log's first line of each (re)start: what ran, on what. */
static void log_run(FILE *log, const run *r, const q4_progress *p, int resumed) {
    char config[8192], changes[1024], definition[1024];
    q4_config_json(q4_session_config(r->session), config, sizeof config);
    q4_config_recipe_changes(q4_session_config(r->session), changes, sizeof changes);
    q4_config_recipe_definition(q4_session_config(r->session)->recipe, definition, sizeof definition);
    fprintf(log, "{\"run\":{\"engine\":\"q4\",\"kernels\":\"%s\",\"resumed\":%d,\"step\":%lld,\"parameters\":%lld,"
                 "\"recipe_definition\":\"%s\",\"recipe_changes\":\"%s\",\"config\":%s}}\n",
            q4_session_kernels(r->session), resumed, p->global_step, q4_session_parameter_count(r->session), definition,
            changes, config);
    fflush(log);
}

/* Trains until the planned epochs are done, --max-steps is reached or Ctrl-C; 0 on success. */
static int train(const options *o, run *r) {
    q4_session *s = r->session;
    const q4_config *config = q4_session_config(s);
    int tty = isatty(fileno(stderr)) && !o->quiet;
    q4_progress p;
    q4_session_progress(s, &p);
    char recipe[1024], changes[900], bits[16];
    if (config->weight_bits == Q4_FP32_BITS) snprintf(bits, sizeof bits, "FP32");
    else snprintf(bits, sizeof bits, "%d-bit", config->weight_bits);
    q4_config_get(config, q4_config_field_find("recipe"), recipe, 32);
    if (q4_config_recipe_definition(config->recipe, changes, sizeof changes) > 0)
        snprintf(recipe + strlen(recipe), sizeof recipe - strlen(recipe), " (the paper's with %s)", changes);
    if (q4_config_recipe_changes(config, changes, sizeof changes))
        snprintf(recipe + strlen(recipe), sizeof recipe - strlen(recipe), " (changed: %s)", changes);
    char processes[96];
    if (front_processes() > 1)
        snprintf(processes, sizeof processes, "%d processes x %d threads, micro-batches of %d", front_processes(),
                 config->threads, config->micro_batch);
    else snprintf(processes, sizeof processes, "%d threads", config->threads);
    if (!o->quiet)
        printf("q4 %s (this CPU: %s): %s, %d train / %d test images, %lld parameters, recipe %s, %s weights, batch %d, "
               "%s, seed %llu%s\n",
               q4_session_kernels(s), q4_kernels_available(), o->kind == Q4_CIFAR10 ? "CIFAR-10" : "CIFAR-100", config->train_limit, config->test_limit,
               q4_session_parameter_count(s), recipe, bits, config->batch_size,
               processes, (unsigned long long)config->seed, o->resume ? " (resumed)" : "");
    if (!o->quiet) {
        char plan[1024];
        q4_session_plan(s, 1, plan, sizeof plan);
        printf("plan: %s\nISA: %s\n", plan, q4_kernels_choice());
    }
    fflush(stdout);
    if (r->log) {
        log_run(r->log, r, &p, o->resume != NULL);
        if (ferror(r->log)) return fail("%s: cannot write the log: %s", o->log, strerror(errno));
    }

    while (p.epoch < config->epochs) {
        int report_every = p.steps_per_epoch / 10 > 0 ? p.steps_per_epoch / 10 : 1;
        /* a step at a time, so that the bar, --max-steps and Ctrl-C act between steps */
        do {
            if ((o->max_steps && p.global_step >= o->max_steps) || front_any(interrupted)) {
                interrupted = interrupted || !(o->max_steps && p.global_step >= o->max_steps);
                /* stopped inside an epoch: save so that --resume continues from this step */
                if (r->card && write_card(o->card, r->card)) return 1;
                if (o->checkpoint) {
                    if (tty) fputs("\r\033[K", stderr);
                    if (write_atomic(o->checkpoint, NULL, 0, s)) return 1;
                    if (!o->quiet) printf("stopped at step %lld; checkpoint saved to %s\n", p.global_step, o->checkpoint);
                }
                return interrupted ? 130 : 0;
            }
            if (q4_session_train(s, 1, &p)) return fail("%s", q4_session_error(s));
            if (r->card) q4_card_record(r->card, s, NULL);
            double rate = p.images_per_second;
            double eta = rate > 0 ? (p.steps_per_epoch - p.step_in_epoch) * (double)config->batch_size / rate : 0;
            if (tty) print_bar(&p, config->epochs, rate, eta);
            else if (!o->quiet && !p.epoch_done && p.step_in_epoch % report_every == 0)
                printf("  epoch %d step %d/%d  loss %.4f  %.1f img/s\n", p.epoch + 1, p.step_in_epoch,
                       p.steps_per_epoch, p.epoch_loss, rate), fflush(stdout);
        } while (!p.epoch_done);
        if (tty) fputs("\r\033[K", stderr);

        q4_epoch_report report;
        if (q4_session_end_epoch(s, &report)) return fail("%s", q4_session_error(s));
        if (!o->quiet) print_report(&report, config->weight_bits < Q4_FP32_BITS);
        /* the checkpoint before the log line: a crash between them re-runs the epoch, whose
         * line then appears once */
        if (r->card) {
            q4_card_record(r->card, s, &report);
            if (write_card(o->card, r->card)) return 1;
        }
        if (o->checkpoint && write_atomic(o->checkpoint, NULL, 0, s)) return 1;
        if (r->log) {
            static char line[65536];
            q4_epoch_report_json(&report, 0, line, sizeof line);
            fprintf(r->log, "%s\n", line);
            if (fflush(r->log) != 0 || ferror(r->log)) return fail("%s: cannot write the log: %s", o->log, strerror(errno));
        }
        q4_session_progress(s, &p);
    }
    return 0;
}

/* Re-runs a card: the same data (MD5s), settings and steps; compares the state's fingerprint
 * after each step the card recorded and at each epoch's end. 0 only when all are identical. */
static int verify(const options *o, run *r, long cores) {
    q4_card *card = read_card(o->verify);
    if (!card) return 1;
    r->card = card;
    q4_error err = {0};
    if (q4_card_check_data(card, &r->cifar, &err)) return fail("%s: %s", o->verify, err.message);
    q4_config config = *q4_card_config(card);
    config.threads = default_threads(cores);
    if (apply_settings(o, &config)) return 1;
    char differences[1024];
    if (q4_config_differences(q4_card_config(card), &config, differences, sizeof differences))
        return fail("%s: the options change the card's settings (%s)", o->verify, differences);
    q4_card_summary cs;
    q4_card_summarize(card, &cs);
    if (cs.start_step > 0 && !o->resume)
        return fail("%s: this card's run resumed a checkpoint at step %lld (training state SHA-256 %.12s...): give that "
                    "checkpoint with --resume", o->verify, cs.start_step, cs.start_sha256);
    if (cs.start_step == 0 && o->resume)
        return fail("%s: this card's run began at step 0, not from a checkpoint: verify it without --resume", o->verify);
    if (!(r->session = q4_session_create(&config, &r->cifar.train, &r->cifar.test, &err))) return fail("%s", err.message);
    q4_session *s = r->session;
    if (o->resume && (read_file(o->resume, &r->resume_bytes, &r->resume_size) ||
                      q4_session_load(s, r->resume_bytes, r->resume_size)))
        return r->resume_bytes ? fail("%s: %s", o->resume, q4_session_error(s)) : 1;
    if (attach(s) || check_same_start(r)) return 1;
    printf("verifying %s: made by %s with %s%s; this is %s with %s\n", o->verify, cs.engine, cs.kernels,
           config.exact ? " in exact mode" : "", "q4 " Q4_VERSION, q4_session_kernels(s));
    if (cs.start_step > 0) printf("  the card's run resumed a checkpoint at step %lld: %s\n", cs.start_step, o->resume);
    if (!config.exact && strcmp(cs.kernels, q4_session_kernels(s)) != 0)
        printf("  (not in exact mode: only the same kernels reproduce a run bit for bit)\n");
    if (strcmp(cs.engine, "q4 " Q4_VERSION) != 0)
        printf("  (made by another engine version: its arithmetic may differ, e.g. 0.10.0 changed the Winograd "
               "transforms, so cards made before verify only with the version that made them)\n");
    q4_card_verification *v = malloc(sizeof *v);
    if (!v) return fail("out of memory");
    int rc = 0;
    if (q4_card_verify_begin(card, s, o->verify_steps, v, &err)) {
        rc = fail("%s: %s", o->verify, err.message);
        goto done;
    }
    while (!v->done) {
        if (q4_card_verify_step(card, s, v, &err)) {
            rc = fail("%s: %s", o->verify, err.message);
            goto done;
        }
        if (v->different) break;
        if (!o->quiet && v->step - cs.start_step <= cs.steps) printf("  step %lld: identical\n", v->step);
        if (v->epoch_ended && v->epoch_ended - cs.start_epoch <= cs.epochs)
            printf("  epoch %d (step %lld): identical; test accuracy %.2f%%, as the card claims\n", v->epoch_ended, v->step,
                   100.0 * v->report.test.accuracy);
    }
    printf("%s: %s\n", v->different ? "DIFFERENT" : v->stop == v->last ? "VERIFIED" : "PARTLY CHECKED", v->message);
    rc = v->different ? 1 : 0;
done:
    free(v);
    return rc;
}

static double peak_memory_mb(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0;
}

/* One row of --levels: the shares at each level (when wide), at 0, within one level of 0, the
 * mean |level| and how many levels are used; then of its rows (output channels), the median
 * largest |level| and the share whose largest |level| is at most half the top level. */
static void print_level_row(const char *name, const char *shape, const char *scale, const long *counts,
                            const long *row_max, int max_level, long count, int wide) {
    double mean = 0.0;
    int used = 0;
    for (int k = 0; k <= 2 * max_level; k++) mean += (double)abs(k - max_level) * (double)counts[k], used += counts[k] > 0;
    printf("%-13s %-9s %-9s", name, shape, scale);
    if (wide)
        for (int k = 0; k <= 2 * max_level; k++) printf(" %5.1f", 100.0 * (double)counts[k] / (double)count);
    long near = counts[max_level] + counts[max_level - 1] + counts[max_level + 1];
    long rows = 0, seen = 0, half = 0;
    for (int k = 0; k <= max_level; k++) rows += row_max[k], half += k <= max_level / 2 ? row_max[k] : 0;
    int median = 0;
    while (median < max_level && 2 * (seen + row_max[median]) < rows + 1) seen += row_max[median++];
    printf(" %6.1f %6.1f %6.2f %5d %5d %6.1f\n", 100.0 * (double)counts[max_level] / (double)count,
           100.0 * (double)near / (double)count, mean / (double)count, used, median,
           100.0 * (double)half / (double)rows);
}

/* --levels: per layer and for all layers, print_level_row (every level up to 4 bits, a summary beyond) */
static int print_levels(const options *o) {
    uint8_t *bytes;
    size_t size;
    q4_error err = {0};
    if (read_file(o->levels, &bytes, &size)) return 1;
    q4_model *model = q4_model_load(bytes, size, 1, 0, &err);
    free(bytes);
    if (!model) return fail("%s: %s", o->levels, err.message);
    q4_layer_levels all = {0}, l;
    for (int layer = 0; layer < Q4_NUM_QUANT_LAYERS; layer++) {
        if (q4_model_levels(model, layer, &l, &err)) {
            q4_model_destroy(model);
            return fail("%s: %s", o->levels, err.message);
        }
        int wide = l.max_level <= 7;
        if (layer == 0) {
            printf("model %s: %d-bit weights, levels -%d to %d; per layer the share of its weights", o->levels, l.bits,
                   l.max_level, l.max_level);
            printf(wide ? " at each level (%%),\n" : ",\n");
            printf("the share at 0 and within one level of 0, the mean |level| and how many levels are used; of its rows\n"
                   "(output channels), the median largest |level| (rmax) and the share whose largest |level| is at most %d\n",
                   l.max_level / 2);
            printf("%-13s %-9s %-9s", "layer", "shape", "scale");
            if (wide)
                for (int k = -l.max_level; k <= l.max_level; k++) printf(" %5d", k);
            char half[16];
            snprintf(half, sizeof half, "r<=%d", l.max_level / 2);
            printf(" %6s %6s %6s %5s %5s %6s\n", "0", "-1..1", "mean", "used", "rmax", half);
        }
        for (int k = 0; k <= 2 * l.max_level; k++) all.counts[k] += l.counts[k];
        for (int k = 0; k <= l.max_level; k++) all.row_max[k] += l.row_max[k];
        all.count += l.count;
        char shape[32], scale[32];
        snprintf(shape, sizeof shape, "%dx%d", l.rows, l.cols);
        snprintf(scale, sizeof scale, "%.6f", l.scale);
        print_level_row(l.name, shape, scale, l.counts, l.row_max, l.max_level, l.count, wide);
        if (layer == Q4_NUM_QUANT_LAYERS - 1) {
            snprintf(shape, sizeof shape, "%ld", all.count);
            print_level_row("all layers", shape, "", all.counts, all.row_max, l.max_level, all.count, wide);
        }
    }
    q4_model_destroy(model);
    return 0;
}

static int run_main(const options *o, run *r) {
    q4_error err = {0};
    if (o->levels) return print_levels(o);
    if (q4_kernels_select(getenv("Q4_ISA"), getenv("Q4_GEMM_VARIANT"), &err)) return fail("Q4_ISA, Q4_GEMM_VARIANT: %s", err.message);
    if (check_outputs(o)) return 1;
    q4_config probe; /* settings are checked before the data is read */
    q4_config_default(&probe);
    if (apply_settings(o, &probe)) return 1;
    if (q4_cifar_load_path(&r->cifar, o->data, o->kind, &err)) return fail("%s", err.message);
    r->have_cifar = 1;
    if (o->stats) {
        print_stats(o, &r->cifar);
        return 0;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (o->eval_model) {
        return evaluate_exported(o, &r->cifar, &probe, cores > 0 ? (int)cores : 1);
    }
    if (o->verify) return verify(o, r, cores);
    if (open_session(o, r, cores)) return 1;
    if (o->card) { /* a resumed run goes on with its card; without one, its card begins at the checkpoint */
        struct stat st;
        if (o->resume && stat(o->card, &st) == 0) {
            if (!(r->card = read_card(o->card))) return 1;
            char differences[1024];
            if (q4_config_differences(q4_card_config(r->card), q4_session_config(r->session), differences,
                                      sizeof differences))
                return fail("%s: this card belongs to another run (%s)", o->card, differences);
        } else if (!(r->card = q4_card_create(r->session, &r->cifar, &err))) {
            return fail("%s: %s", o->card, err.message);
        }
        if (write_card(o->card, r->card)) return 1;
    }
    if (o->log && !(r->log = fopen(o->log, o->resume ? "a" : "w")))
        return fail("%s: cannot open the log: %s", o->log, strerror(errno));

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    double start = q4_now();
    int rc = train(o, r);
    if (!rc && o->export_path) {
        uint8_t *bytes;
        size_t size;
        if (q4_session_export(r->session, &bytes, &size)) return fail("%s", q4_session_error(r->session));
        rc = write_atomic(o->export_path, bytes, size, NULL);
        if (!rc)
            printf("exported %s: %zu bytes (%.2f MB, %.2f MiB; the paper: 1.55 MB)\n", o->export_path, size,
                   size / 1e6, size / 1048576.0);
        free(bytes);
    }
    q4_progress p;
    q4_session_progress(r->session, &p);
    if (p.best_epoch) printf("best test accuracy %.2f%% at epoch %d\n", 100.0 * p.best_accuracy, p.best_epoch);
    printf("peak memory %.1f MiB (resident), engine %.1f MiB, total time %.1f s\n", peak_memory_mb(),
           q4_session_memory_bytes(r->session) / 1048576.0, q4_now() - start);
    double combine_seconds, combine_bytes;
    long long combine_calls;
    front_combine_stats(&combine_seconds, &combine_bytes, &combine_calls);
    if (front_processes() > 1 && p.global_step > 0)
        printf("combining (%d processes): %.1f s in all, %.2f ms per step; %.1f MB sent per step by this process\n",
               front_processes(), combine_seconds, 1e3 * combine_seconds / p.global_step,
               combine_bytes / 1e6 / p.global_step);
    return rc;
}

int main(int argc, char **argv) {
    if (front_start(&argc, &argv)) return fail("could not start the processes"), 1;
    options o;
    if (parse_options(argc, argv, &o)) return front_finish(2);
    if (front_rank() > 0) { /* rank 0 alone writes: files and what it prints */
        o.checkpoint = o.export_path = o.log = o.card = NULL;
        if (!freopen("/dev/null", "w", stdout)) return front_finish(fail("cannot silence rank %d", front_rank()));
    }
    run r;
    memset(&r, 0, sizeof r);
    int rc = run_main(&o, &r);
    run_free(&r);
    /* a stop every process agreed on (Ctrl-C) ends them normally; a failure ends them all at once */
    return rc == 130 ? (front_finish(0), 130) : front_finish(rc);
}
