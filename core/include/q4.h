/* q4.h - the one public header of the q4 engine: status codes, datasets, the training
 * session and its checkpoints. Both front ends (native CLI, browser worker) use only this.
 * Nothing here exits, aborts or prints: every call returns a status and fills a message. */
#ifndef Q4_H
#define Q4_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The engine's version, in run cards: raised whenever the arithmetic of a setting changes. */
#define Q4_VERSION "0.10.0"

/* ---------------------------------------------------------------- status codes */

typedef enum q4_status {
    Q4_OK = 0,
    Q4_ERR_ARGUMENT = 1, /* invalid argument or configuration */
    Q4_ERR_NOMEM = 2,    /* an allocation failed */
    Q4_ERR_IO = 3,       /* a file could not be opened, read or written */
    Q4_ERR_FORMAT = 4,   /* malformed, truncated or foreign input */
    Q4_ERR_CHECKSUM = 5, /* stored checksum does not match the content */
    Q4_ERR_VERSION = 6,  /* a format version this build does not read */
    Q4_ERR_NUMERIC = 7,  /* NaN or infinity met during training */
    Q4_ERR_STATE = 8,    /* call not valid in the current state */
    Q4_ERR_MISMATCH = 9  /* checkpoint and data or configuration disagree */
} q4_status;

/* One error: the status and a sentence naming the file (if any) and the problem. */
typedef struct q4_error {
    q4_status status;
    char message[512];
} q4_error;

const char *q4_status_name(q4_status status);

/* ---------------------------------------------------------------- datasets */

#define Q4_IMAGE_SIDE 32
#define Q4_IMAGE_BYTES 3072 /* 1024 R, 1024 G, 1024 B, each 32x32 row-major */
#define Q4_MAX_SHARDS 8
#define Q4_MAX_CLASSES 100
#define Q4_CLASS_NAME_MAX 32

typedef enum q4_dataset_kind { Q4_CIFAR10 = 10, Q4_CIFAR100 = 100 } q4_dataset_kind;

/* One shard as read from its file: pixels stay uint8 exactly as stored. */
typedef struct q4_shard {
    int count;
    uint8_t *pixels;        /* count x 3072 */
    uint8_t *labels;        /* count: CIFAR-10 label or CIFAR-100 fine label */
    uint8_t *coarse_labels; /* count, CIFAR-100 only; NULL for CIFAR-10 */
} q4_shard;

/* A split (train or test): its shards in the official order. */
typedef struct q4_dataset {
    int count;
    int num_classes;
    int num_shards;
    q4_shard shards[Q4_MAX_SHARDS];
} q4_dataset;

/* Both splits of one CIFAR release with its class names. */
typedef struct q4_cifar {
    q4_dataset_kind kind;
    q4_dataset train;
    q4_dataset test;
    int num_classes;
    char class_names[Q4_MAX_CLASSES][Q4_CLASS_NAME_MAX];
    int num_coarse_classes; /* 20 for CIFAR-100, else 0 */
    char coarse_names[20][Q4_CLASS_NAME_MAX];
    char origin[512]; /* folder or archive the data came from (error messages) */
} q4_cifar;

/* Pull-based byte source: returns bytes read (0 at end), or -1 on error with err filled. */
typedef struct q4_source {
    long long (*read)(void *context, uint8_t *buffer, size_t size, q4_error *err);
    void *context;
    const char *name; /* shown in error messages */
    long long size;   /* total bytes if known, else -1 */
} q4_source;

/* A source reading a buffer in memory (the browser hands over files this way). */
typedef struct q4_memory {
    const uint8_t *data;
    size_t size, position;
} q4_memory;
q4_source q4_memory_source(q4_memory *memory, const uint8_t *data, size_t size, const char *name);

/* Load from a path: a folder holding the official binary files (or their official top
 * folder), or the official .tar.gz / .tar. Everything present is validated; on error
 * nothing is kept and *out is left empty. */
q4_status q4_cifar_load_path(q4_cifar *out, const char *path, q4_dataset_kind kind, q4_error *err);
/* Opens a regular file for reading without blocking on a FIFO: anything else (FIFO, device,
 * directory, socket) is refused naming what it is. *size: its size. Native builds' file input. */
FILE *q4_open_regular(const char *path, long long *size, q4_error *err);
/* "a FIFO", "a character device", "a directory", ... for a stat mode */
const char *q4_file_kind(unsigned mode);

/* Incremental loading (the browser's file picker): begin, add files by name (official
 * shard names, label-name files, or a .tar.gz/.tgz/.tar holding them), then finish.
 * A rejected file leaves what was added before intact. */
void q4_cifar_begin(q4_cifar *cifar, q4_dataset_kind kind);
q4_status q4_cifar_add(q4_cifar *cifar, const char *name, q4_source *source, q4_error *err);
/* require_complete: every official shard must be present (folders, tarballs). */
q4_status q4_cifar_finish(q4_cifar *cifar, int require_complete, q4_error *err);
void q4_cifar_free(q4_cifar *cifar);

/* Image i of a split (3072 bytes) and its label. */
const uint8_t *q4_dataset_image(const q4_dataset *set, int index);
int q4_dataset_label(const q4_dataset *set, int index);
/* A view of the first `limit` images (limit <= 0 or >= count: all). Shares memory. */
q4_dataset q4_dataset_prefix(const q4_dataset *set, int limit);

/* MD5 of each shard of a release, in its official file format (so equal to the official
 * files' checksums): names[i] (e.g. "data_batch_1.bin") and md5[i] (32 hex digits) for the
 * shards present, training shards first. Returns how many (at most max). */
int q4_cifar_md5(const q4_cifar *cifar, char names[][32], char md5[][33], int max);

typedef struct q4_dataset_stats {
    int count;
    int class_counts[Q4_MAX_CLASSES];
    double mean[3], std[3]; /* of pixels scaled to [0,1], per channel R, G, B */
} q4_dataset_stats;
void q4_dataset_compute_stats(const q4_dataset *set, q4_dataset_stats *stats);

/* ---------------------------------------------------------------- configuration */

/* Every training setting, once. A row: X(type, name, default, lowest, highest, choices,
 * flags, help). The struct q4_config, its defaults and validation, its text form (checkpoints,
 * run logs, the browser bridge), its JSON form and the trainer's --name options all come from
 * this table: adding a setting is adding a row (and the code that uses it).
 * Types: INT (int), U64 (uint64_t, any value), REAL (double), CHOICE (int: index into the
 * comma-separated choices). Bounds are inclusive.
 * Flags: METHOD - part of a recipe (setting `recipe` resets these); RUNTIME - does not change
 * results (may differ when resuming); PLAN - may be changed when resuming.
 * Rule: a new setting's default reproduces the behaviour from before it existed, so that
 * checkpoints and run cards that lack it mean what they meant. */
#define Q4_FIELD_METHOD 1u
#define Q4_FIELD_RUNTIME 2u
#define Q4_FIELD_PLAN 4u
#define Q4_FIELD_RECIPE 8u

#define Q4_CONFIG_FIELDS(X)                                                                                          \
    X(CHOICE, recipe, 0, 0, 0, "paper,plain-adamw,fast,fast15", Q4_FIELD_RECIPE,                                                 \
      "the recipe the settings start from; setting it resets every recipe setting to the recipe's value")           \
    X(INT, num_classes, 10, 2, Q4_MAX_CLASSES, NULL, 0, "classes of the data and outputs of the last layer")        \
    X(INT, train_limit, 0, 0, 1000000, NULL, 0, "train on the first N training images (0: all)")                   \
    X(INT, test_limit, 0, 0, 1000000, NULL, 0, "evaluate on the first N test images (0: all)")                     \
    X(INT, batch_size, 128, 2, 1024, NULL, Q4_FIELD_METHOD, "images per training step")                             \
    X(INT, micro_batch, 0, 0, 1024, NULL, Q4_FIELD_METHOD,                                                           \
      "images per micro-batch: the sums over a batch (BatchNorm statistics and their gradients, weight gradients, "  \
      "the loss) taken per micro-batch and added in micro-batch order, the order data-parallel training keeps "     \
      "for any number of processes; 0, or the batch size or more: the whole batch at once")                        \
    X(INT, epochs, 150, 1, 10000, NULL, Q4_FIELD_PLAN, "planned epochs (for the ETA and schedules that end with the run)") \
    X(INT, weight_bits, 4, 2, 32, NULL, 0,                                                                            \
      "bits per weight: 2 to 8 (levels -(2^(b-1)-1) .. 2^(b-1)-1; 4 is the paper's), or 32: FP32 weights, no quantizer, " \
      "no tanh clip")                                                                                                 \
    X(CHOICE, scale, 0, 0, 0, "tensor,global", 0,                                                                     \
      "quantizer scale: one per weight tensor (the paper's), or one for all layers (its ablation)")                   \
    X(REAL, scale_rms, 0, 0, 100, NULL, Q4_FIELD_METHOD,                                                              \
      "quantizer range: 0: the largest |W| takes the top level (the paper's); c > 0: at most c times the RMS of "   \
      "the weights does, and weights beyond it take the end levels (straight-through as before)")                   \
    X(INT, augment, 1, 0, 1, NULL, Q4_FIELD_METHOD, "random crop and horizontal flip of training images")          \
    X(INT, crop, 4, 0, 8, NULL, Q4_FIELD_METHOD, "random crops: zero-pad by this many pixels, take a 32x32 window") \
    X(INT, threads, 1, 1, 256, NULL, Q4_FIELD_RUNTIME, "threads including the caller (results do not depend on it)") \
    X(U64, seed, 0, 0, 0, NULL, 0, "fixes initialisation, shuffling, augmentation and dropout")                    \
    X(REAL, learning_rate, 1e-3, 1e-9, 10, NULL, Q4_FIELD_METHOD, "peak learning rate")                             \
    X(REAL, weight_decay, 5e-4, 0, 1, NULL, Q4_FIELD_METHOD, "weight decay (decoupled for AdamW)")                 \
    X(INT, decay_all, 1, 0, 1, NULL, Q4_FIELD_METHOD,                                                                \
      "1: weight decay on every parameter (the paper's); 0: on conv and linear weights only, not on biases and "     \
      "BatchNorm scales and shifts")                                                                                 \
    X(REAL, shift_lr, 1, 1, 1000, NULL, Q4_FIELD_METHOD,                                                            \
      "BatchNorm shifts (biases): their learning rate is this many times the others', their weight decay per step "   \
      "unchanged (1: the paper's; airbench94 uses 64 with its BatchNorm scales frozen)")                             \
    X(INT, bn_recalibrate, 0, 0, 1, NULL, Q4_FIELD_METHOD,                                                           \
      "1: after the last planned step every BatchNorm's running statistics are recomputed for the final weights: "  \
      "the plain average of their batch statistics over the training images, unaugmented, in order, in batches of " \
      "batch_size (PyTorch's swa_utils.update_bn); 0: kept as training left them (the paper's)")                    \
    X(INT, freeze_bn_scale, 0, 0, 1, NULL, Q4_FIELD_METHOD,                                                          \
      "1: the BatchNorm scales stay at their initial 1 (no step, no weight decay, left out of the clip norm), as "   \
      "airbench94's; 0: they learn (the paper's)")                                                                   \
    X(REAL, beta1, 0.9, 0, 0.999999, NULL, Q4_FIELD_METHOD, "AdamW: first-moment decay")                            \
    X(REAL, beta2, 0.999, 0, 0.999999999, NULL, Q4_FIELD_METHOD, "AdamW: second-moment decay")                      \
    X(REAL, adam_eps, 1e-8, 1e-30, 1, NULL, Q4_FIELD_METHOD, "AdamW: epsilon")                                      \
    X(REAL, clip_norm, 0.5, 0, 1e9, NULL, Q4_FIELD_METHOD, "gradients clipped to this global L2 norm (0: off)")     \
    X(REAL, tanh_bound, 3, 0, 1e9, NULL, Q4_FIELD_METHOD, "after each step W = b * tanh(W / b), 4-bit runs (0: off)") \
    X(INT, cosine_t_max, 100, 1, 100000, NULL, Q4_FIELD_METHOD, "cosine schedule: period in epochs (continued past it)") \
    X(REAL, dropout, 0.5, 0, 0.95, NULL, Q4_FIELD_METHOD, "dropout probability after fc1")                         \
    X(CHOICE, optimizer, 0, 0, 0, "adamw,sgd", Q4_FIELD_METHOD,                                                      \
      "adamw: the paper's AdamW; sgd: SGD with momentum (weight decay added to the gradient)")                     \
    X(REAL, momentum, 0.9, 0, 0.999, NULL, Q4_FIELD_METHOD, "sgd: momentum")                                       \
    X(INT, nesterov, 1, 0, 1, NULL, Q4_FIELD_METHOD, "sgd: Nesterov momentum")                                     \
    X(CHOICE, schedule, 0, 0, 0, "cosine,onecycle", Q4_FIELD_METHOD,                                                 \
      "cosine: the paper's, per epoch over cosine_t_max epochs; onecycle: per step, linear from 0 to the peak over "  \
      "the warm-up, then linear to 0 at the last planned step")                                                      \
    X(REAL, warmup, 0.2, 0, 0.9, NULL, Q4_FIELD_METHOD, "onecycle: share of the planned steps spent warming up")    \
    X(REAL, label_smoothing, 0, 0, 0.5, NULL, Q4_FIELD_METHOD, "share of each target spread evenly over the classes") \
    X(REAL, ema, 0, 0, 0.99999, NULL, Q4_FIELD_METHOD,                                                               \
      "decay per step of a moving average of the weights and BN statistics, which evaluation and export use (0: off)") \
    X(INT, lookahead, 0, 0, 100000, NULL, Q4_FIELD_METHOD,                                                           \
      "lookahead: every N steps a slow copy of the weights and BN statistics moves toward them by 1 - 0.95^5 (t/T)^3 " \
      "(step t of T planned) and they take its values; after the last planned step they take it (0: off)")          \
    X(CHOICE, tta, 0, 0, 0, "none,flip,flip-translate", Q4_FIELD_METHOD,                                             \
      "test-time augmentation at the last planned epoch, reported beside the plain accuracy")                      \
    X(INT, act_bits, 32, 2, 32, NULL, Q4_FIELD_METHOD,                                                              \
      "bits per activation into conv2-6 in the training forward pass, which then runs in integer arithmetic "       \
      "(quantized per image, straight-through in the backward pass), and in evaluation: 2 to 8, or 32: floats "     \
      "(2- to 7-bit weights)")                                                                                      \
    X(INT, integer_eval, 0, 0, 1, NULL, 0,                                                                           \
      "1: evaluate the test set in integer arithmetic: 8-bit activations (per image) times the weight levels, "     \
      "summed in int32, in every conv and linear layer (2- to 7-bit weights)")                                      \
    X(INT, cutout, 0, 0, 32, NULL, Q4_FIELD_METHOD, "side of a square of each training image set to the mean (0: off)") \
    X(CHOICE, flip, 0, 0, 0, "random,alternate", Q4_FIELD_METHOD,                                                    \
      "random: each training image flipped with p 0.5 every epoch; alternate: a random first flip, then the "        \
      "opposite of the previous epoch's")                                                                              \
    X(REAL, bn_momentum, 0.1, 0, 1, NULL, Q4_FIELD_METHOD, "BatchNorm running statistics: weight of each new batch") \
    X(INT, exact, 0, 0, 1, NULL, 0,                                                                                  \
      "1: the same bits in every build (native, WebAssembly): no fused multiply-add, fixed reduction orders, our "   \
      "own exp/log/tanh; slower")

/* The CHOICE settings' values, in the order of their choices above (test_config checks). */
enum { Q4_RECIPE_PAPER = 0, Q4_RECIPE_PLAIN_ADAMW = 1, Q4_RECIPE_FAST = 2, Q4_RECIPE_FAST15 = 3 };
enum { Q4_OPTIMIZER_ADAMW = 0, Q4_OPTIMIZER_SGD = 1 };
enum { Q4_SCHEDULE_COSINE = 0, Q4_SCHEDULE_ONECYCLE = 1 };
enum { Q4_TTA_NONE = 0, Q4_TTA_FLIP = 1, Q4_TTA_FLIP_TRANSLATE = 2 };
enum { Q4_FLIP_RANDOM = 0, Q4_FLIP_ALTERNATE = 1 };
enum { Q4_SCALE_TENSOR = 0, Q4_SCALE_GLOBAL = 1 };

#define Q4_CONFIG_TYPE_INT int
#define Q4_CONFIG_TYPE_U64 uint64_t
#define Q4_CONFIG_TYPE_REAL double
#define Q4_CONFIG_TYPE_CHOICE int

typedef struct q4_config {
#define Q4_CONFIG_MEMBER(type, name, ...) Q4_CONFIG_TYPE_##type name;
    Q4_CONFIG_FIELDS(Q4_CONFIG_MEMBER)
#undef Q4_CONFIG_MEMBER
} q4_config;

typedef enum q4_field_type { Q4_FIELD_INT, Q4_FIELD_U64, Q4_FIELD_REAL, Q4_FIELD_CHOICE } q4_field_type;

/* One row of the table, for code that walks the settings (parsers, forms, the bridge). */
typedef struct q4_config_field {
    const char *name;
    q4_field_type type;
    size_t offset;
    double default_value, lowest, highest;
    const char *choices; /* CHOICE: "a,b,c"; else NULL */
    unsigned flags;
    const char *help;
} q4_config_field;

int q4_config_field_count(void);
const q4_config_field *q4_config_field_at(int index);
const q4_config_field *q4_config_field_find(const char *name);

/* The paper's recipe (every default). */
void q4_config_default(q4_config *config);
/* Sets one field from text ("0.001", "fast", "18446744073709551615"), checked against its
 * type and bounds; err names the setting and the problem. Nothing changes on error. */
q4_status q4_config_set(q4_config *config, const char *name, const char *value, q4_error *err);
/* The field's value as text that q4_config_set reads back exactly. Returns its length. */
int q4_config_get(const q4_config *config, const q4_config_field *field, char *out, size_t size);
/* "name=value" lines (blank lines and lines starting with # ignored), applied in order. */
q4_status q4_config_parse(q4_config *config, const char *text, q4_error *err);
/* Every field as "name=value\n" lines; returns the length (like snprintf, even if truncated). */
size_t q4_config_format(const q4_config *config, char *out, size_t size);
/* Every field as one JSON object (seeds as strings: they need 64 bits). Returns the length. */
size_t q4_config_json(const q4_config *config, char *out, size_t size);
/* The table as JSON: [{name, type, default, lowest, highest, choices, flags, help}, ...]. */
size_t q4_config_fields_json(char *out, size_t size);
/* Checks every field and the combinations; err names the first problem. */
q4_status q4_config_check(const q4_config *config, q4_error *err);
/* Names the fields that would make `b` train differently from `a` (all but RUNTIME and PLAN),
 * as "name a-value -> b-value, ..."; returns how many differ. */
int q4_config_differences(const q4_config *a, const q4_config *b, char *out, size_t size);
/* The recipe settings (METHOD) in which the configuration departs from its recipe, as
 * "name value, ..."; returns how many. */
int q4_config_recipe_changes(const q4_config *config, char *out, size_t size);
/* What a recipe is: the recipe settings in which it departs from the paper's, as
 * "name value, ..." (empty for the paper's); returns how many, or -1 for no such recipe. */
int q4_config_recipe_definition(int recipe, char *out, size_t size);

/* ---------------------------------------------------------------- training session */

#define Q4_NUM_QUANT_LAYERS 8 /* 6 convolutions, 2 linear layers */
#define Q4_MAX_LEVEL 7        /* the paper's 4-bit weights take the levels -7..7 */
#define Q4_LEVELS (2 * Q4_MAX_LEVEL + 1)
#define Q4_FP32_BITS 32       /* weight_bits of runs without quantizer */
#define Q4_MAX_QUANT_BITS 8
#define Q4_MAX_LEVELS 255     /* levels of 8-bit weights: -127..127 */
/* the largest level of b-bit weights: 2^(b-1) - 1 (7 for 4 bits) */
static inline int q4_max_level(int bits) { return (1 << (bits - 1)) - 1; }

typedef struct q4_session q4_session;

/* Creates a session over borrowed datasets (they must outlive it), of which it uses the
 * first config->train_limit and test_limit images (the session's configuration then holds
 * the counts used). The weights are initialised from config->seed. Returns NULL with err
 * filled on failure. */
q4_session *q4_session_create(const q4_config *config, const q4_dataset *train,
                              const q4_dataset *test, q4_error *err);
void q4_session_destroy(q4_session *session);
const char *q4_session_error(const q4_session *session);
/* Changes the thread count (results do not depend on it). */
q4_status q4_session_set_threads(q4_session *session, int threads);
/* Changes the planned epochs (the ETA; and schedules that end with the run). */
q4_status q4_session_set_epochs(q4_session *session, int epochs);

/* Data-parallel training (setting micro_batch > 0): P processes each run one session, the
 * same settings and data in all, and hold part of every training step's batch. The step's M
 * micro-batches are split into contiguous runs, process r holding [r*M/P, (r+1)*M/P)
 * (q4_micro_share; a process may hold none). Every sum over the batch (BatchNorm's statistics
 * and their gradients, the weight and bias gradients, the loss and the correct count) is
 * taken per micro-batch and the micro-batches' sums are added in micro-batch order, never in
 * an order set by P: every process ends each step with the same bits, the bits one process
 * gets with the same micro_batch. The combiner is how the processes meet; the session calls
 * its functions at fixed points of every training step, in the same order in every process.
 * They return nothing: a transport that fails ends the processes (MPI's default). */
typedef struct q4_combiner {
    void *context;
    int processes, rank;
    /* rows: [micro_total][row_values] doubles of which this process has filled the rows it
     * holds; on return every row holds its micro-batch's values, in every process */
    void (*gather)(void *context, double *rows, long row_values, int micro_total);
    /* out[count] = the micro-batches' arrays added in micro-batch order, ((g0 + g1) + g2) + ...
     * (float additions); held: this process's arrays, [held][count] */
    void (*sum)(void *context, float *out, const float *held, long count, int micro_total);
} q4_combiner;
/* the micro-batches process `rank` of `processes` holds of a step's micro_total */
void q4_micro_share(int micro_total, int processes, int rank, int *first, int *held);
/* Makes the session one of combiner->processes (the combiner must outlive it; NULL: alone
 * again). Needs micro-batches smaller than the batch (micro_batch 1 .. batch_size - 1). The
 * session's evaluation is split too: each process evaluates a run of test batches (the same
 * split) and the combiner gathers each batch's loss and predictions. */
q4_status q4_session_set_combiner(q4_session *session, const q4_combiner *combiner);

typedef struct q4_progress {
    int epoch;            /* epoch in progress (0-based), or the next one after epoch_done */
    int step_in_epoch;    /* steps done in the current epoch */
    int steps_per_epoch;
    long long global_step;
    int epoch_done;       /* 1 when the last step run finished an epoch */
    float last_loss;      /* mean loss of the last batch */
    double epoch_loss;    /* mean loss so far this epoch (or of the finished epoch) */
    double epoch_accuracy; /* training accuracy so far this epoch, in [0,1] */
    double learning_rate; /* of the last step (or the next one before any) */
    int images_seen;      /* this epoch */
    double epoch_seconds; /* spent in training steps this epoch (since the session was made or loaded) */
    double images_per_second; /* training throughput over those steps */
    double best_accuracy; /* best test accuracy of the ended epochs, and its epoch (0: none) */
    int best_epoch;
} q4_progress;

/* Runs up to max_steps training steps, stopping early at the end of an epoch. */
q4_status q4_session_train(q4_session *session, int max_steps, q4_progress *progress);
q4_status q4_session_progress(const q4_session *session, q4_progress *progress);
/* The progress as one JSON object; returns the length (like snprintf). */
size_t q4_progress_json(const q4_progress *progress, char *out, size_t size);

typedef struct q4_evaluation {
    int count;
    int correct;
    double accuracy;
    double loss;
    int num_classes;
    int class_total[Q4_MAX_CLASSES];
    int class_correct[Q4_MAX_CLASSES];
    int *confusion; /* num_classes x num_classes, [true][predicted]; owned by the session */
} q4_evaluation;

/* Evaluates on the test set (running BN statistics, no dropout, weights quantized; the moving
 * average of the weights where setting ema is on).
 * predictions (may be NULL) receives the predicted class of the first n_predictions images. */
q4_status q4_session_evaluate(q4_session *session, q4_evaluation *evaluation,
                              uint8_t *predictions, int n_predictions);
/* The same once in integer arithmetic (integer 1) or in floats (0), whatever setting integer_eval
 * says (it is left as it was): the two side by side, e.g. for tests. */
q4_status q4_session_evaluate_as(q4_session *session, int integer, q4_evaluation *evaluation);

typedef struct q4_layer_stats {
    char name[16];
    int rows, cols; /* weight tensor as [out][in*k*k] */
    float scale;    /* quantizer scale (0 for FP32 runs) */
    int levels;     /* levels of the weight width (15 at 4 bits), 0 for FP32 runs */
    int unique_levels;
    int histogram[Q4_MAX_LEVELS]; /* count per level, from the lowest: histogram[levels / 2] is 0 */
} q4_layer_stats;

q4_status q4_session_layer_stats(q4_session *session, q4_layer_stats stats[Q4_NUM_QUANT_LAYERS]);
/* The model's class probabilities for one image (3072 bytes: R, G, B planes of 32x32), with
 * the weights evaluation uses (quantized; the moving average where there is one). */
q4_status q4_session_classify(q4_session *session, const uint8_t image[Q4_IMAGE_BYTES],
                              double probabilities[Q4_MAX_CLASSES]);
/* conv1's weights [64][3][3][3] as trained (FP32) and as the forward pass uses them
 * (quantized), each 1728 floats; *scale receives the quantizer scale (0 for FP32 runs). */
q4_status q4_session_conv1(q4_session *session, float weights[1728], float quantized[1728], float *scale);

/* SHA-256 of the training state: position (epoch, step, global step), parameters, BN running
 * statistics, optimizer moments and the moving average, as little-endian bytes. Equal states
 * give equal hashes whatever the thread count or build; 64 hex digits and a NUL. */
void q4_session_state_sha256(const q4_session *session, char hex[65]);
const q4_config *q4_session_config(const q4_session *session);
/* The GEMM variant this session runs (exact mode has its own), e.g. "f32-gemm-4x24-avx2". */
const char *q4_session_kernels(const q4_session *session);
/* The algorithm each convolution takes in each pass (direct GEMM, Winograd F(2x2) or F(4x4)),
 * chosen once when the session is made: a table, or (compact) one line. Like snprintf. */
size_t q4_session_plan(const q4_session *session, int compact, char *out, size_t size);
long long q4_session_parameter_count(const q4_session *session);
size_t q4_session_memory_bytes(const q4_session *session);

/* Where training time goes: seconds per phase (per layer and direction) since the last
 * reset, with the flops each phase does per image (2 per multiply-add). */
#define Q4_PROFILE_MAX_PHASES 32
typedef struct q4_profile {
    int phases;
    const char *names[Q4_PROFILE_MAX_PHASES];
    double seconds[Q4_PROFILE_MAX_PHASES];
    double flops_per_image[Q4_PROFILE_MAX_PHASES];
    double flops_per_image_total;   /* one training step, per image */
    double forward_flops_per_image; /* one evaluation, per image */
    long long steps, images;
} q4_profile;
void q4_session_profile(const q4_session *session, q4_profile *profile);
void q4_session_profile_reset(q4_session *session);
size_t q4_profile_json(const q4_profile *profile, char *out, size_t size);

/* ---------------------------------------------------------------- the end of an epoch */

#define Q4_REPORT_PREDICTIONS 32 /* test images whose predicted class a report carries */

/* Everything a front end shows after an epoch, from one call. */
typedef struct q4_epoch_report {
    int epoch;                 /* the finished epoch, 1-based */
    int epochs;                /* planned */
    long long global_step;
    double train_loss, train_accuracy; /* over the epoch's training batches */
    double learning_rate;      /* of the epoch's last step */
    double train_seconds;      /* the epoch's training steps */
    double images_per_second;  /* training throughput over the epoch */
    double eval_seconds;
    double elapsed_seconds;    /* training and evaluation since the session was created or loaded */
    q4_evaluation test;        /* the plain evaluation: the headline figure */
    double tta_accuracy;       /* with test-time augmentation (setting tta) after the last planned
                                  epoch; -1 otherwise */
    double best_accuracy;      /* best plain test accuracy so far, and its epoch */
    int best_epoch;
    int levels_min, levels_max; /* unique weight levels over the quantized layers */
    double levels_mean;
    q4_layer_stats layers[Q4_NUM_QUANT_LAYERS];
    q4_profile profile;        /* the epoch's training steps */
    int n_predictions;
    uint8_t predictions[Q4_REPORT_PREDICTIONS]; /* of the first test images */
} q4_epoch_report;

/* Ends the epoch that q4_session_train just finished (progress.epoch_done): evaluates on the
 * test set, records the best accuracy, gathers layer statistics and the profile (then resets
 * it). Q4_ERR_STATE if no epoch is waiting to be ended. */
q4_status q4_session_end_epoch(q4_session *session, q4_epoch_report *report);
/* The report as one JSON object. detail 0: the run-log line (no confusion matrix, no
 * predictions, no profile); 1: everything. Returns the length (like snprintf). */
size_t q4_epoch_report_json(const q4_epoch_report *report, int detail, char *out, size_t size);

/* ---------------------------------------------------------------- checkpoints and exports */

/* Checkpoints: the full training state in a versioned, checksummed byte buffer. The
 * caller frees *bytes with free(). Loading refuses corrupted, truncated or foreign data
 * and buffers whose data fingerprint differs from the session's datasets. */
q4_status q4_session_save(q4_session *session, uint8_t **bytes, size_t *size);
/* The same bytes streamed through write() in pieces (no copy of the whole state). */
typedef q4_status (*q4_write_fn)(void *context, const uint8_t *bytes, size_t size);
q4_status q4_session_save_stream(q4_session *session, q4_write_fn write, void *context);
size_t q4_session_checkpoint_size(const q4_session *session);
q4_status q4_session_load(q4_session *session, const uint8_t *bytes, size_t size);
/* What a checkpoint holds, read without a session (to create one before loading):
 * its configuration, the dataset sizes it was made with and its position. */
typedef struct q4_checkpoint_info {
    int version;
    q4_config config;
    int train_count, test_count;
    int epoch, step_in_epoch;
    long long global_step;
    double best_accuracy;
    int best_epoch;
} q4_checkpoint_info;
q4_status q4_checkpoint_read_info(const uint8_t *bytes, size_t size, q4_checkpoint_info *info, q4_error *err);
size_t q4_checkpoint_info_json(const q4_checkpoint_info *info, char *out, size_t size);

/* Export: packed 4-bit weights (two per byte) with each tensor's scale, FP32 biases and
 * BatchNorm parameters. */
q4_status q4_session_export(q4_session *session, uint8_t **bytes, size_t *size);

/* An exported model, loaded for evaluation only. */
typedef struct q4_model q4_model;
/* An exported model of any weight width (2..8 bits, or FP32). exact: evaluate as exact mode
 * does (the same bits in every build) */
q4_model *q4_model_load(const uint8_t *bytes, size_t size, int threads, int exact, q4_error *err);
void q4_model_destroy(q4_model *model);
/* on: evaluate in integer arithmetic (setting integer_eval); 2- to 7-bit models only */
q4_status q4_model_set_integer(q4_model *model, int on, q4_error *err);
int q4_model_num_classes(const q4_model *model);
/* One weight layer of a quantized model counted by level: counts[k] weights at level
 * k - max_level, for k = 0 .. 2 max_level (max_level = 2^(bits-1) - 1: 7 for 4 bits); and its
 * rows (output channels) counted by their largest |level|: row_max[k] rows reach k at most, for
 * k = 0 .. max_level (what one scale per output channel instead of per tensor would refine). */
typedef struct q4_layer_levels {
    const char *name; /* the weight tensor's, e.g. "conv1.weight" */
    int rows, cols;
    float scale; /* a level's value: max|W| / max_level when it was quantized */
    int bits, max_level;
    long count;
    long counts[2 * ((1 << (Q4_MAX_QUANT_BITS - 1)) - 1) + 1];
    long row_max[1 << (Q4_MAX_QUANT_BITS - 1)];
} q4_layer_levels;
/* layer: 0 to 7 (conv1-6, fc1, fc2). An FP32 model has no levels: Q4_ERR_ARGUMENT. */
q4_status q4_model_levels(const q4_model *model, int layer, q4_layer_levels *out, q4_error *err);
/* tta: Q4_TTA_NONE, or a test-time augmentation (the choices of setting tta) */
q4_status q4_model_evaluate(q4_model *model, const q4_dataset *test, int tta, q4_evaluation *evaluation,
                            q4_error *err);
/* The same evaluation in parts, for a caller that shows its progress or may stop it: begin, then
 * steps of at least `images` test images each (whole batches) with the same evaluation each time;
 * *evaluated says how many are done, and once it is the test set's count the evaluation holds exactly
 * what q4_model_evaluate gives (the same batches, summed in the same order). The test images must
 * stay until the last step; a new begin discards an evaluation not finished. */
q4_status q4_model_evaluate_begin(q4_model *model, const q4_dataset *test, int tta, q4_evaluation *evaluation,
                                  q4_error *err);
q4_status q4_model_evaluate_step(q4_model *model, int images, q4_evaluation *evaluation, int *evaluated,
                                 q4_error *err);
/* BatchNorm recalibration (setting bn_recalibrate) of a loaded model: every BatchNorm's running
 * statistics recomputed for its weights over `train` (unaugmented, in order, in batches of
 * `batch`, 2 to 128, a loaded model's capacity): what a run with bn_recalibrate 1 does after its
 * last step. */
q4_status q4_model_recalibrate_bn(q4_model *model, const q4_dataset *train, int batch, q4_error *err);
/* The class probabilities for one image (3072 bytes: R, G, B planes of 32x32), as
 * q4_session_classify gives them for a session's model. */
q4_status q4_model_classify(q4_model *model, const uint8_t image[Q4_IMAGE_BYTES], double probabilities[Q4_MAX_CLASSES],
                            q4_error *err);

/* ---------------------------------------------------------------- run cards */

/* A run card: what a run was (engine, kernels, every setting, the data's MD5s) and the SHA-256
 * of its training state after each of its first Q4_CARD_STEPS steps and after each epoch, so
 * that anyone can re-run it and compare, step by step (in exact mode, across builds too). */
#define Q4_CARD_STEPS 20
typedef struct q4_card q4_card;

/* A card for the run `session` makes on `data`: from step 0, or, for a session loaded from a
 * checkpoint, from that checkpoint's step and training state (which the card records, and
 * which verifying it requires). */
q4_card *q4_card_create(const q4_session *session, const q4_cifar *data, q4_error *err);
/* After each training step: the state's fingerprint while within the first Q4_CARD_STEPS
 * steps; with the report of q4_session_end_epoch, the epoch's figures and fingerprint. */
void q4_card_record(q4_card *card, const q4_session *session, const q4_epoch_report *report);
/* The card as JSON; returns the length (like snprintf). */
size_t q4_card_json(const q4_card *card, char *out, size_t size);
/* Reads a card (its settings through the same rules as everywhere); NULL and err on error. */
q4_card *q4_card_parse(const char *text, size_t size, q4_error *err);
void q4_card_free(q4_card *card);
const q4_config *q4_card_config(const q4_card *card);
/* Q4_ERR_MISMATCH naming the first data file whose MD5 differs from the card's, or missing. */
q4_status q4_card_check_data(const q4_card *card, const q4_cifar *data, q4_error *err);
/* Verifying a card: its run re-made in a new session with the card's settings on its data
 * (MD5s checked with q4_card_check_data), a step at a time, comparing the state's fingerprint
 * after each step and epoch the card records, and every figure it claims for an epoch (loss,
 * training, test and TTA accuracy) exactly. Same kernels, or exact mode, give the same bits. */
typedef struct q4_card_verification {
    long long start;     /* the step the card's run began at: 0, or its checkpoint's */
    long long last;      /* the card's last recorded step */
    long long stop;      /* where this verification ends: last, or an earlier step asked for */
    long long step;      /* steps trained so far */
    int fingerprints;    /* fingerprints compared, all identical so far */
    int claims;          /* figures compared, all equal so far */
    int epoch_ended;     /* the epoch the last step ended (its figures in report), or 0 */
    int verified_epochs; /* epochs whose fingerprint and figures matched */
    int claimed_epochs;  /* epochs the card records */
    int done;            /* 1: stop reached, or something differs */
    int different;       /* 1: message names the first fingerprint or figure that differs */
    char message[512];   /* when done: the verdict, saying what was checked and what was not */
    q4_epoch_report report;
} q4_card_verification;
/* Refuses a card that cannot be an honest record of its settings' run (no fingerprints; epochs
 * at steps its settings do not make; more epochs than planned; missing first-step fingerprints),
 * before any training, so that no card makes verification run past its own run's length.
 * steps: verify only the first `steps` (0: all). session: new, made with the card's settings. */
q4_status q4_card_verify_begin(const q4_card *card, const q4_session *session, long long steps,
                               q4_card_verification *verification, q4_error *err);
/* Trains one step and compares what the card records for it (at an epoch's end: the epoch's
 * fingerprint and figures). Differences are not errors: they end the verification with
 * `different` set; errors are training failures or a call after the end. */
q4_status q4_card_verify_step(const q4_card *card, q4_session *session, q4_card_verification *verification,
                              q4_error *err);
/* The verification's state as one JSON object (for the page); returns the length. */
size_t q4_card_verification_json(const q4_card_verification *verification, const q4_card *card, char *out,
                                 size_t size);
typedef struct q4_card_summary {
    char engine[64], kernels[64];
    long long start_step;  /* 0, or the step of the checkpoint the card's run resumed */
    int start_epoch;       /* epochs ended at that step */
    char start_sha256[65]; /* the training state there ("" for step 0) */
    int steps, epochs;     /* fingerprints recorded */
    long long last_step;   /* of the last recorded epoch */
    double test_accuracy, tta_accuracy; /* of the last recorded epoch (-1: none) */
} q4_card_summary;
void q4_card_summarize(const q4_card *card, q4_card_summary *summary);
/* The test accuracy the card records for an epoch, or -1. */
double q4_card_epoch_accuracy(const q4_card *card, int epoch);

/* An exported model checked against a run card (q4train --eval-model M --card C, and the page's
 * "Check a published run"): evaluated as the card's run evaluated its model (its test images,
 * exact mode, integer arithmetic, and its test-time augmentation where the card claims an
 * accuracy with it), it must score exactly the accuracies the card claims for its last epoch. */
typedef struct q4_card_claim {
    int test_limit;            /* the test images the run evaluated on (0: all) */
    int tta;                   /* the card's test-time augmentation, Q4_TTA_NONE when it claims none */
    int exact, integer_eval;   /* load the model with exact, set integer_eval (q4_model_set_integer) */
    q4_card_summary summary;   /* the claims: summary.test_accuracy, summary.tta_accuracy, after summary.epochs */
} q4_card_claim;
/* Checks the data against the card's MD5s (q4_card_check_data); refuses a card that records no
 * finished epoch (Q4_ERR_ARGUMENT). */
q4_status q4_card_claim_read(const q4_card *card, const q4_cifar *data, q4_card_claim *claim, q4_error *err);
/* 1 when the model's evaluations (augmented: with claim->tta; NULL when that is none) score
 * exactly what the card claims, else 0; message: the verdict, "AS CLAIMED: the card CARD_NAME
 * claims test accuracy ..." or "DIFFERENT: ...". */
int q4_card_claim_compare(const q4_card_claim *claim, const q4_evaluation *plain, const q4_evaluation *augmented,
                          const char *card_name, char *message, size_t size);

/* ---------------------------------------------------------------- kernels and time */

/* Chooses the kernels of every session created afterwards: the instruction set ("avx512",
 * "avx2", "scalar"; NULL or "": the best this CPU runs, found with cpuid) and the GEMM
 * variant by name (e.g. "f32-gemm-6x16-avx2"; NULL or "": the ISA's default). Refuses an ISA
 * the CPU lacks. Front ends call it, e.g. from Q4_ISA and Q4_GEMM_VARIANT; the library reads
 * no environment. */
q4_status q4_kernels_select(const char *isa, const char *variant, q4_error *err);
/* The kernels sessions use: the ISA and the GEMM variant, e.g. "avx2 f32-gemm-4x24-avx2". */
const char *q4_kernels_name(void);
/* Which ISA sessions use and why: chosen by the caller, measured faster on this CPU family
 * (a table in kernels.c), or the widest this CPU runs. */
const char *q4_kernels_choice(void);
/* The instruction sets this CPU and build can use, best first, e.g. "avx512 avx2 scalar". */
const char *q4_kernels_available(void);
/* Seconds on a monotonic clock. */
double q4_now(void);
/* Seconds that `threads` threads of the pool take for a fixed amount of arithmetic (64
 * tasks of about half a millisecond on one core, no memory traffic); negative if the threads
 * could not be had. Front ends compare thread counts with it: a browser may report more
 * cores than it runs (WebKit says 4 on 2). */
double q4_threads_probe(int threads);

#ifdef __cplusplus
}
#endif
#endif
