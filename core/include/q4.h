/* q4.h - the one public header of the q4 engine: status codes, datasets, the training
 * session and its checkpoints. Both front ends (native CLI, browser worker) use only this.
 * Nothing here exits, aborts or prints: every call returns a status and fills a message. */
#ifndef Q4_H
#define Q4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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

typedef struct q4_dataset_stats {
    int count;
    int class_counts[Q4_MAX_CLASSES];
    double mean[3], std[3]; /* of pixels scaled to [0,1], per channel R, G, B */
} q4_dataset_stats;
void q4_dataset_compute_stats(const q4_dataset *set, q4_dataset_stats *stats);

/* ---------------------------------------------------------------- training session */

#define Q4_NUM_QUANT_LAYERS 8 /* 6 convolutions, 2 linear layers */
#define Q4_LEVELS 15          /* -7..7 */

typedef struct q4_config {
    int num_classes;    /* 10 or 100 */
    int batch_size;     /* 128 */
    int epochs;         /* planned epochs (schedule and ETA); training may stop earlier */
    int quantized;      /* 1: the paper's 4-bit weights; 0: FP32 (no quantizer, no tanh clip) */
    int augment;        /* 1: pad-4 random crop and horizontal flip */
    int threads;        /* worker threads including the caller; >= 1 */
    uint64_t seed;      /* fixes initialisation, shuffling, augmentation and dropout */
    double learning_rate; /* 1e-3 */
    double weight_decay;  /* 5e-4, decoupled, on every parameter */
    double beta1, beta2, adam_eps; /* 0.9, 0.999, 1e-8 */
    double clip_norm;     /* 0.5: global L2 norm */
    double tanh_bound;    /* 3: W = b * tanh(W / b) after each step (quantized runs) */
    int cosine_t_max;     /* 100 epochs, continued past T_max */
    double dropout;       /* 0.5 */
} q4_config;

void q4_config_default(q4_config *config);

typedef struct q4_session q4_session;

/* Creates a session over borrowed datasets (they must outlive it). The weights are
 * initialised from config->seed. Returns NULL with err filled on failure. */
q4_session *q4_session_create(const q4_config *config, const q4_dataset *train,
                              const q4_dataset *test, q4_error *err);
void q4_session_destroy(q4_session *session);
const char *q4_session_error(const q4_session *session);
/* Changes the thread count (results do not depend on it). */
q4_status q4_session_set_threads(q4_session *session, int threads);

typedef struct q4_progress {
    int epoch;            /* epoch in progress (0-based), or the next one after epoch_done */
    int step_in_epoch;    /* steps done in the current epoch */
    int steps_per_epoch;
    long long global_step;
    int epoch_done;       /* 1 when the last step run finished an epoch */
    float last_loss;      /* mean loss of the last batch */
    double epoch_loss;    /* mean loss so far this epoch (or of the finished epoch) */
    double epoch_accuracy; /* training accuracy so far this epoch, in [0,1] */
    double learning_rate; /* used by the current epoch */
    int images_seen;      /* this epoch */
} q4_progress;

/* Runs up to max_steps training steps, stopping early at the end of an epoch. */
q4_status q4_session_train(q4_session *session, int max_steps, q4_progress *progress);
q4_status q4_session_progress(const q4_session *session, q4_progress *progress);

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

/* Evaluates on the test set (running BN statistics, no dropout, weights quantized).
 * predictions (may be NULL) receives the predicted class of the first n_predictions images. */
q4_status q4_session_evaluate(q4_session *session, q4_evaluation *evaluation,
                              uint8_t *predictions, int n_predictions);
/* Records an epoch's evaluated test accuracy (keeps the best and its epoch). */
void q4_session_record_test(q4_session *session, int epoch, double accuracy);
void q4_session_best(const q4_session *session, double *accuracy, int *epoch);

typedef struct q4_layer_stats {
    char name[16];
    int rows, cols; /* weight tensor as [out][in*k*k] */
    float scale;    /* quantizer scale (0 for FP32 runs) */
    int unique_levels;
    int histogram[Q4_LEVELS]; /* count per level -7..7 */
} q4_layer_stats;

q4_status q4_session_layer_stats(q4_session *session, q4_layer_stats stats[Q4_NUM_QUANT_LAYERS]);
const q4_config *q4_session_config(const q4_session *session);
long long q4_session_parameter_count(const q4_session *session);
size_t q4_session_memory_bytes(const q4_session *session);

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
    q4_config config;
    int train_count, test_count;
    int epoch, step_in_epoch;
    long long global_step;
} q4_checkpoint_info;
q4_status q4_checkpoint_read_info(const uint8_t *bytes, size_t size, q4_checkpoint_info *info, q4_error *err);

/* Export: packed 4-bit weights (two per byte) with each tensor's scale, FP32 biases and
 * BatchNorm parameters. */
q4_status q4_session_export(q4_session *session, uint8_t **bytes, size_t *size);

/* Weights of the session as flat arrays in PyTorch order (tests and tools). */
float *q4_session_parameters(q4_session *session, long long *count);

/* An exported model, loaded for evaluation only. */
typedef struct q4_model q4_model;
q4_model *q4_model_load(const uint8_t *bytes, size_t size, int threads, q4_error *err);
void q4_model_destroy(q4_model *model);
int q4_model_num_classes(const q4_model *model);
q4_status q4_model_evaluate(q4_model *model, const q4_dataset *test, q4_evaluation *evaluation,
                            q4_error *err);

/* Where training time goes: seconds per phase (per layer and direction) since the last
 * reset, with the flops each phase does per image (2 per multiply-add). */
#define Q4_PROFILE_MAX_PHASES 32
typedef struct q4_profile {
    int phases;
    const char *names[Q4_PROFILE_MAX_PHASES];
    double seconds[Q4_PROFILE_MAX_PHASES];
    double flops_per_image[Q4_PROFILE_MAX_PHASES];
    double flops_per_image_total;
    long long steps, images;
} q4_profile;
void q4_session_profile(const q4_session *session, q4_profile *profile);
void q4_session_profile_reset(q4_session *session);

/* Kernel set in use (e.g. "avx2", "wasmsimd", "scalar") and the GEMM tile variant. */
const char *q4_kernels_name(void);

#ifdef __cplusplus
}
#endif
#endif
