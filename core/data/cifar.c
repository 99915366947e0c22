/* cifar.c - readers for the official CIFAR-10 and CIFAR-100 binary releases: loose shard
 * files, a folder, or the official .tar.gz / .tar, all through one streaming path shared
 * by the native CLI and the browser. Images stay uint8 exactly as stored. Every problem is
 * one error naming the file; a failed load keeps nothing and changes nothing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/q4.h"
#include "../util/digest.h"
#include "../util/util.h"
#include "inflate.h"
#include "tar.h"

static const char *const cifar10_names[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                              "dog", "frog", "horse", "ship", "truck"};

/* which official file a name is */
typedef enum {
    FILE_UNKNOWN,
    FILE_TRAIN,       /* data_batch_N.bin (CIFAR-10) or train.bin (CIFAR-100) */
    FILE_TEST,        /* test_batch.bin or test.bin */
    FILE_NAMES,       /* batches.meta.txt or fine_label_names.txt */
    FILE_COARSE_NAMES /* coarse_label_names.txt */
} file_role;

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *back = strrchr(path, '\\');
    if (back && (!slash || back > slash)) slash = back;
    return slash ? slash + 1 : path;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* role of a file name under `kind`; *batch gets the training batch index (0-based);
 * *other_kind is set when the name belongs to the other release */
static file_role classify(const char *path, q4_dataset_kind kind, int *batch, int *other_kind) {
    const char *name = base_name(path);
    *batch = 0;
    *other_kind = 0;
    int is10 = kind == Q4_CIFAR10;
    if (strncmp(name, "data_batch_", 11) == 0 && name[11] >= '1' && name[11] <= '5' && strcmp(name + 12, ".bin") == 0) {
        *batch = name[11] - '1';
        if (is10) return FILE_TRAIN;
        *other_kind = 1;
        return FILE_UNKNOWN;
    }
    if (strcmp(name, "test_batch.bin") == 0) {
        if (is10) return FILE_TEST;
        *other_kind = 1;
        return FILE_UNKNOWN;
    }
    if (strcmp(name, "batches.meta.txt") == 0) return is10 ? FILE_NAMES : FILE_UNKNOWN;
    if (strcmp(name, "train.bin") == 0 || strcmp(name, "test.bin") == 0) {
        if (!is10) return name[1] == 'r' ? FILE_TRAIN : FILE_TEST;
        *other_kind = 1;
        return FILE_UNKNOWN;
    }
    if (strcmp(name, "fine_label_names.txt") == 0) return is10 ? FILE_UNKNOWN : FILE_NAMES;
    if (strcmp(name, "coarse_label_names.txt") == 0) return is10 ? FILE_UNKNOWN : FILE_COARSE_NAMES;
    return FILE_UNKNOWN;
}

static const char *kind_name(q4_dataset_kind kind) { return kind == Q4_CIFAR10 ? "CIFAR-10" : "CIFAR-100"; }

/* ------------------------------------------------------------ shards */

static void shard_free(q4_shard *s) {
    free(s->pixels);
    free(s->labels);
    free(s->coarse_labels);
    memset(s, 0, sizeof *s);
}

/* Reads one shard of `size` bytes from src into *out. */
static q4_status read_shard(q4_shard *out, q4_source *src, const char *name, long long size, q4_dataset_kind kind,
                            q4_error *err) {
    memset(out, 0, sizeof *out);
    int label_bytes = kind == Q4_CIFAR10 ? 1 : 2;
    long long record = Q4_IMAGE_BYTES + label_bytes, other = Q4_IMAGE_BYTES + 3 - label_bytes;
    if (size == 0) return q4_fail(err, Q4_ERR_FORMAT, "%s: is empty (a %s shard holds records of %lld bytes)", name,
                                  kind_name(kind), record);
    if (size < 0) return q4_fail(err, Q4_ERR_IO, "%s: size unknown", name);
    if (size % record != 0) {
        if (size % other == 0)
            return q4_fail(err, Q4_ERR_FORMAT,
                           "%s: %lld bytes is not a whole number of %lld-byte %s records, but fits %lld-byte %s "
                           "records: is this a %s file? (choose --dataset %s)",
                           name, size, record, kind_name(kind), other, kind == Q4_CIFAR10 ? "CIFAR-100" : "CIFAR-10",
                           kind == Q4_CIFAR10 ? "CIFAR-100" : "CIFAR-10", kind == Q4_CIFAR10 ? "cifar100" : "cifar10");
        return q4_fail(err, Q4_ERR_FORMAT,
                       "%s: %lld bytes is not a whole number of %lld-byte %s records (truncated or over-long: %lld "
                       "records and %lld bytes over)",
                       name, size, record, kind_name(kind), size / record, size % record);
    }
    long long count = size / record;
    if (count > 1000000) return q4_fail(err, Q4_ERR_FORMAT, "%s: %lld records is more than any CIFAR shard holds", name, count);
    out->count = (int)count;
    out->pixels = malloc((size_t)count * Q4_IMAGE_BYTES);
    out->labels = malloc((size_t)count);
    if (label_bytes == 2) out->coarse_labels = malloc((size_t)count);
    if (!out->pixels || !out->labels || (label_bytes == 2 && !out->coarse_labels)) {
        shard_free(out);
        return q4_fail(err, Q4_ERR_NOMEM, "%s: out of memory for %lld images (%.1f MB)", name, count,
                       count * (double)Q4_IMAGE_BYTES / 1048576.0);
    }
    enum { BATCH_RECORDS = 64 };
    uint8_t *buffer = malloc((size_t)(BATCH_RECORDS * record));
    if (!buffer) {
        shard_free(out);
        return q4_fail(err, Q4_ERR_NOMEM, "%s: out of memory", name);
    }
    int num_classes = kind == Q4_CIFAR10 ? 10 : 100;
    q4_status st = Q4_OK;
    for (long long first = 0; first < count && !st; first += BATCH_RECORDS) {
        long long n = count - first < BATCH_RECORDS ? count - first : BATCH_RECORDS;
        size_t want = (size_t)(n * record), got = 0;
        while (got < want) {
            long long r = src->read(src->context, buffer + got, want - got, err);
            if (r < 0) {
                st = err ? err->status : Q4_ERR_IO;
                if (st == Q4_OK) st = Q4_ERR_IO;
                break;
            }
            if (r == 0) {
                st = q4_fail(err, Q4_ERR_FORMAT, "%s: truncated: ends after %lld of %lld bytes", name,
                             first * record + (long long)got, size);
                break;
            }
            got += (size_t)r;
        }
        for (long long i = 0; i < n && !st; i++) {
            const uint8_t *rec = buffer + i * record;
            long long index = first + i;
            int fine = rec[label_bytes - 1];
            if (label_bytes == 2) {
                if (rec[0] >= 20) {
                    st = q4_fail(err, Q4_ERR_FORMAT, "%s: record %lld has coarse label %d, outside 0..19", name, index, rec[0]);
                    break;
                }
                out->coarse_labels[index] = rec[0];
            }
            if (fine >= num_classes) {
                st = q4_fail(err, Q4_ERR_FORMAT, "%s: record %lld has label %d, outside 0..%d%s", name, index, fine,
                             num_classes - 1, kind == Q4_CIFAR10 ? " (is this a CIFAR-100 file?)" : "");
                break;
            }
            out->labels[index] = (uint8_t)fine;
            memcpy(out->pixels + index * Q4_IMAGE_BYTES, rec + label_bytes, Q4_IMAGE_BYTES);
        }
    }
    free(buffer);
    if (st) shard_free(out);
    return st;
}

/* label names: one per line (CR tolerated), blank lines ignored */
static q4_status read_names(char names[][Q4_CLASS_NAME_MAX], int expected, q4_source *src, const char *name,
                            long long size, q4_error *err) {
    enum { LIMIT = 65536 }; /* bytes a label-name file may have */
    if (size > LIMIT) return q4_fail(err, Q4_ERR_FORMAT, "%s: %lld bytes is too large for a label-name file", name, size);
    char text[LIMIT + 2]; /* room for one byte past the limit, which tells a file that is too large */
    size_t got = 0;
    for (;;) {
        long long r = src->read(src->context, (uint8_t *)text + got, sizeof text - 1 - got, err);
        if (r < 0) return err ? err->status : Q4_ERR_IO;
        if (r == 0) break;
        got += (size_t)r;
        if (got > LIMIT) return q4_fail(err, Q4_ERR_FORMAT, "%s: too large for a label-name file", name);
    }
    text[got] = 0;
    int count = 0;
    char *line = text;
    while (*line) {
        char *end = line + strcspn(line, "\r\n");
        char saved = *end;
        *end = 0;
        if (*line) {
            if (count < expected) snprintf(names[count], Q4_CLASS_NAME_MAX, "%.*s", Q4_CLASS_NAME_MAX - 1, line);
            count++;
        }
        if (!saved) break;
        line = end + 1;
    }
    if (count != expected)
        return q4_fail(err, Q4_ERR_FORMAT, "%s: lists %d class names, expected %d", name, count, expected);
    return Q4_OK;
}

/* ------------------------------------------------------------ sources */

typedef struct file_context {
    FILE *file;
    const char *path;
} file_context;

static long long file_read(void *context, uint8_t *buffer, size_t size, q4_error *err) {
    file_context *fc = context;
    size_t n = fread(buffer, 1, size, fc->file);
    if (n == 0 && ferror(fc->file)) return q4_fail(err, Q4_ERR_IO, "%s: read error: %s", fc->path, strerror(errno)), -1;
    return (long long)n;
}

static long long memory_read(void *context, uint8_t *buffer, size_t size, q4_error *err) {
    (void)err;
    q4_memory *m = context;
    size_t n = m->size - m->position < size ? m->size - m->position : size;
    memcpy(buffer, m->data + m->position, n);
    m->position += n;
    return (long long)n;
}

q4_source q4_memory_source(q4_memory *memory, const uint8_t *data, size_t size, const char *name) {
    memory->data = data;
    memory->size = size;
    memory->position = 0;
    q4_source s = {memory_read, memory, name, (long long)size};
    return s;
}

/* ------------------------------------------------------------ building a release */

void q4_cifar_begin(q4_cifar *c, q4_dataset_kind kind) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->num_classes = kind == Q4_CIFAR10 ? 10 : 100;
    c->train.num_classes = c->test.num_classes = c->num_classes;
    for (int i = 0; i < c->num_classes; i++) {
        if (kind == Q4_CIFAR10) snprintf(c->class_names[i], Q4_CLASS_NAME_MAX, "%s", cifar10_names[i]);
        else snprintf(c->class_names[i], Q4_CLASS_NAME_MAX, "class %d", i);
    }
    if (kind == Q4_CIFAR100) {
        c->num_coarse_classes = 20;
        for (int i = 0; i < 20; i++) snprintf(c->coarse_names[i], Q4_CLASS_NAME_MAX, "superclass %d", i);
    }
}

void q4_cifar_free(q4_cifar *c) {
    for (int i = 0; i < Q4_MAX_SHARDS; i++) {
        shard_free(&c->train.shards[i]);
        shard_free(&c->test.shards[i]);
    }
    q4_dataset_kind kind = c->kind ? c->kind : Q4_CIFAR10;
    q4_cifar_begin(c, kind);
}

/* Staged content of one add: moved into the release only when the whole add succeeded. */
typedef struct staging {
    q4_shard train[5], test;
    int has_train[5], has_test, has_names, has_coarse;
    char names[Q4_MAX_CLASSES][Q4_CLASS_NAME_MAX];
    char coarse[20][Q4_CLASS_NAME_MAX];
} staging;

static void staging_free(staging *s) {
    for (int i = 0; i < 5; i++) shard_free(&s->train[i]);
    shard_free(&s->test);
}

/* One member (file) of a release, already classified by name. */
static q4_status stage_file(staging *s, q4_dataset_kind kind, const char *path, q4_source *src, long long size,
                            q4_error *err) {
    int batch, other;
    file_role role = classify(path, kind, &batch, &other);
    const char *name = src->name ? src->name : path;
    switch (role) {
    case FILE_TRAIN:
        shard_free(&s->train[batch]);
        s->has_train[batch] = 0;
        if (read_shard(&s->train[batch], src, name, size, kind, err)) return err ? err->status : Q4_ERR_FORMAT;
        s->has_train[batch] = 1;
        return Q4_OK;
    case FILE_TEST:
        shard_free(&s->test);
        s->has_test = 0;
        if (read_shard(&s->test, src, name, size, kind, err)) return err ? err->status : Q4_ERR_FORMAT;
        s->has_test = 1;
        return Q4_OK;
    case FILE_NAMES: {
        q4_status st = read_names(s->names, kind == Q4_CIFAR10 ? 10 : 100, src, name, size, err);
        if (!st) s->has_names = 1;
        return st;
    }
    case FILE_COARSE_NAMES: {
        q4_status st = read_names(s->coarse, 20, src, name, size, err);
        if (!st) s->has_coarse = 1;
        return st;
    }
    case FILE_UNKNOWN:
        break;
    }
    if (other)
        return q4_fail(err, Q4_ERR_FORMAT, "%s: is a %s file name, but %s was chosen (use --dataset %s)", name,
                       kind == Q4_CIFAR10 ? "CIFAR-100" : "CIFAR-10", kind_name(kind),
                       kind == Q4_CIFAR10 ? "cifar100" : "cifar10");
    return Q4_ERR_ARGUMENT; /* not ours: the caller decides whether that is an error */
}

/* Reads a tar stream, staging every official member it holds. */
static q4_status stage_tar(staging *s, q4_dataset_kind kind, q4_source *in, int inside_gzip, q4_error *err) {
    q4_tar tar;
    q4_tar_open(&tar, in, inside_gzip);
    q4_tar_entry entry;
    int found = 0;
    for (;;) {
        int r = q4_tar_next(&tar, &entry, err);
        if (r < 0) return err ? err->status : Q4_ERR_FORMAT;
        if (r == 0) break;
        char member_name[700];
        snprintf(member_name, sizeof member_name, "%s: %s", tar.name, entry.path);
        q4_source member = {q4_tar_read, &tar, member_name, entry.size};
        q4_status st = stage_file(s, kind, entry.path, &member, entry.size, err);
        if (st == Q4_ERR_ARGUMENT) continue; /* readme.html and the like */
        if (st) return st;
        found++;
    }
    /* read to the end so a gzip wrapper verifies its CRC-32 */
    uint8_t drain[4096];
    for (;;) {
        long long r = in->read(in->context, drain, sizeof drain, err);
        if (r < 0) return err ? err->status : Q4_ERR_FORMAT;
        if (r == 0) break;
    }
    if (!found)
        return q4_fail(err, Q4_ERR_FORMAT, "%s: holds no %s files (expected %s)", tar.name, kind_name(kind),
                       kind == Q4_CIFAR10 ? "cifar-10-batches-bin/data_batch_1.bin ..." : "cifar-100-binary/train.bin ...");
    return Q4_OK;
}

/* replays peeked bytes before the rest of a source */
typedef struct replay_context {
    q4_source *inner;
    uint8_t head[2];
    size_t head_len, head_pos;
} replay_context;

static long long replay_read(void *context, uint8_t *buffer, size_t size, q4_error *err) {
    replay_context *r = context;
    if (r->head_pos < r->head_len) {
        size_t n = r->head_len - r->head_pos < size ? r->head_len - r->head_pos : size;
        memcpy(buffer, r->head + r->head_pos, n);
        r->head_pos += n;
        return (long long)n;
    }
    return r->inner->read(r->inner->context, buffer, size, err);
}

/* An official tarball: gzip around tar, or a plain tar. */
static q4_status stage_archive(staging *s, q4_dataset_kind kind, const char *name, q4_source *src, q4_error *err) {
    replay_context peek = {src, {0, 0}, 0, 0};
    while (peek.head_len < 2) {
        long long r = src->read(src->context, peek.head + peek.head_len, 2 - peek.head_len, err);
        if (r < 0) return err ? err->status : Q4_ERR_IO;
        if (r == 0) break;
        peek.head_len += (size_t)r;
    }
    if (peek.head_len == 0) return q4_fail(err, Q4_ERR_FORMAT, "%s: is empty", name);
    q4_source replay = {replay_read, &peek, name, src->size};
    if (peek.head_len == 2 && peek.head[0] == 0x1f && peek.head[1] == 0x8b) {
        q4_gzip *gz = malloc(sizeof *gz);
        if (!gz) return q4_fail(err, Q4_ERR_NOMEM, "%s: out of memory for the gzip decoder", name);
        q4_status st = q4_gzip_open(gz, &replay, err);
        if (!st) {
            q4_source inflated = q4_gzip_source(gz);
            st = stage_tar(s, kind, &inflated, 1, err);
            if (st == Q4_ERR_FORMAT && !q4_gzip_failed(gz)) {
                /* a member that makes no sense may be a corrupt archive: if the rest of the
                 * stream fails its CRC-32, say that instead */
                q4_error drained = {0};
                uint8_t buffer[4096];
                long long r;
                while ((r = q4_gzip_read(gz, buffer, sizeof buffer, &drained)) > 0) {
                }
                if (r < 0 && (drained.status == Q4_ERR_CHECKSUM || drained.status == Q4_ERR_FORMAT) && err) {
                    *err = drained;
                    st = drained.status;
                }
            }
        }
        free(gz);
        return st;
    }
    return stage_tar(s, kind, &replay, 0, err);
}

static int is_archive_name(const char *name) {
    return ends_with(name, ".tar.gz") || ends_with(name, ".tgz") || ends_with(name, ".gz") || ends_with(name, ".tar");
}

static void commit(q4_cifar *c, staging *s) {
    for (int i = 0; i < 5; i++)
        if (s->has_train[i]) {
            shard_free(&c->train.shards[i]);
            c->train.shards[i] = s->train[i];
            memset(&s->train[i], 0, sizeof s->train[i]);
        }
    if (s->has_test) {
        shard_free(&c->test.shards[0]);
        c->test.shards[0] = s->test;
        memset(&s->test, 0, sizeof s->test);
    }
    if (s->has_names) memcpy(c->class_names, s->names, sizeof s->names);
    if (s->has_coarse) memcpy(c->coarse_names, s->coarse, sizeof s->coarse);
    c->train.num_shards = c->kind == Q4_CIFAR10 ? 5 : 1;
    c->test.num_shards = 1;
    c->train.count = c->test.count = 0;
    for (int i = 0; i < c->train.num_shards; i++) c->train.count += c->train.shards[i].count;
    c->test.count = c->test.shards[0].count;
}

q4_status q4_cifar_add(q4_cifar *c, const char *name, q4_source *source, q4_error *err) {
    staging *s = calloc(1, sizeof *s);
    if (!s) return q4_fail(err, Q4_ERR_NOMEM, "%s: out of memory", name);
    q4_status st;
    if (is_archive_name(name)) {
        st = stage_archive(s, c->kind, name, source, err);
    } else {
        st = stage_file(s, c->kind, name, source, source->size, err);
        if (st == Q4_ERR_ARGUMENT)
            st = q4_fail(err, Q4_ERR_FORMAT,
                         "%s: is not a %s file name (expected %s, or the official %s)", name, kind_name(c->kind),
                         c->kind == Q4_CIFAR10 ? "data_batch_1.bin ... data_batch_5.bin, test_batch.bin, batches.meta.txt"
                                               : "train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt",
                         c->kind == Q4_CIFAR10 ? "cifar-10-binary.tar.gz" : "cifar-100-binary.tar.gz");
    }
    if (!st) {
        commit(c, s);
        if (is_archive_name(name)) snprintf(c->origin, sizeof c->origin, "%s", name);
    }
    staging_free(s);
    free(s);
    return st;
}

q4_status q4_cifar_finish(q4_cifar *c, int require_complete, q4_error *err) {
    const char *origin = c->origin[0] ? c->origin : "the data";
    const char *test_name = c->kind == Q4_CIFAR10 ? "test_batch.bin" : "test.bin";
    if (c->kind == Q4_CIFAR10 && require_complete)
        for (int i = 0; i < 5; i++)
            if (!c->train.shards[i].count)
                return q4_fail(err, Q4_ERR_FORMAT, "%s: has no data_batch_%d.bin (the official release has 5)", origin, i + 1);
    if (!c->test.shards[0].count) return q4_fail(err, Q4_ERR_FORMAT, "%s: has no %s (the test set)", origin, test_name);
    c->train.num_shards = c->kind == Q4_CIFAR10 ? 5 : 1;
    c->test.num_shards = 1;
    c->train.count = 0;
    for (int i = 0; i < c->train.num_shards; i++) c->train.count += c->train.shards[i].count;
    c->test.count = c->test.shards[0].count;
    if (!c->train.count)
        return q4_fail(err, Q4_ERR_FORMAT, "%s: has no training shard (%s)", origin,
                       c->kind == Q4_CIFAR10 ? "data_batch_1.bin ... data_batch_5.bin" : "train.bin");
    return Q4_OK;
}

const char *q4_file_kind(unsigned mode) {
    return S_ISDIR(mode) ? "a directory" : S_ISFIFO(mode) ? "a FIFO" : S_ISCHR(mode) ? "a character device"
           : S_ISBLK(mode) ? "a block device" : S_ISSOCK(mode) ? "a socket" : S_ISREG(mode) ? "a regular file"
                                                                                    : "not a regular file";
}

FILE *q4_open_regular(const char *path, long long *size, q4_error *err) {
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer; it is refused instead */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        q4_fail(err, Q4_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        q4_fail(err, Q4_ERR_IO, "%s: is %s, not a regular file", path, q4_file_kind(info.st_mode));
        close(fd);
        return NULL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        q4_fail(err, Q4_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (size) *size = (long long)info.st_size;
    return f;
}

static q4_status add_file(q4_cifar *c, const char *path, int required, q4_error *err) {
    struct stat info;
    if (!required && stat(path, &info) != 0 && errno == ENOENT) return Q4_OK;
    long long size = 0;
    FILE *f = q4_open_regular(path, &size, err);
    if (!f) return err ? err->status : Q4_ERR_IO;
    file_context fc = {f, path};
    q4_source src = {file_read, &fc, path, size};
    q4_status st = q4_cifar_add(c, path, &src, err);
    fclose(f);
    return st;
}

static int is_directory(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

q4_status q4_cifar_load_path(q4_cifar *out, const char *path, q4_dataset_kind kind, q4_error *err) {
    q4_cifar_begin(out, kind);
    struct stat info;
    if (stat(path, &info) != 0) return q4_fail(err, Q4_ERR_IO, "%s: does not exist (%s)", path, strerror(errno));
    q4_status st = Q4_OK;
    if (S_ISDIR(info.st_mode)) {
        char dir[4096], file[4200];
        const char *top = kind == Q4_CIFAR10 ? "cifar-10-batches-bin" : "cifar-100-binary";
        snprintf(dir, sizeof dir, "%s/%s", path, top);
        if (!is_directory(dir)) snprintf(dir, sizeof dir, "%s", path);
        snprintf(out->origin, sizeof out->origin, "%.*s", (int)sizeof out->origin - 1, dir);
        static const char *const files10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                              "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin", NULL};
        static const char *const files100[] = {"train.bin", "test.bin", NULL};
        const char *const *files = kind == Q4_CIFAR10 ? files10 : files100;
        for (int i = 0; files[i] && !st; i++) {
            snprintf(file, sizeof file, "%s/%s", dir, files[i]);
            struct stat probe;
            if (lstat(file, &probe) == 0 || errno != ENOENT) { /* there, or there but unreadable: add_file says why */
                st = add_file(out, file, 1, err);
                continue;
            }
            {
                /* a folder of the other release (or holding its top folder) gets a pointed message */
                char alt[4200], alt_top[4200];
                snprintf(alt, sizeof alt, "%s/%s", dir, kind == Q4_CIFAR10 ? "train.bin" : "data_batch_1.bin");
                snprintf(alt_top, sizeof alt_top, "%s/%s", path, kind == Q4_CIFAR10 ? "cifar-100-binary" : "cifar-10-batches-bin");
                FILE *alt_file = fopen(alt, "rb");
                if (alt_file) fclose(alt_file);
                if (alt_file || is_directory(alt_top)) {
                    st = q4_fail(err, Q4_ERR_FORMAT, "%s: holds %s files, but %s was chosen (use --dataset %s)", path,
                                 kind == Q4_CIFAR10 ? "CIFAR-100" : "CIFAR-10", kind_name(kind),
                                 kind == Q4_CIFAR10 ? "cifar100" : "cifar10");
                } else {
                    st = q4_fail(err, Q4_ERR_IO, "%s: missing %s (run `make data` to fetch CIFAR-10)", dir, files[i]);
                }
                break;
            }
        }
        if (!st) {
            const char *names = kind == Q4_CIFAR10 ? "batches.meta.txt" : "fine_label_names.txt";
            snprintf(file, sizeof file, "%s/%s", dir, names);
            st = add_file(out, file, 0, err);
        }
        if (!st && kind == Q4_CIFAR100) {
            snprintf(file, sizeof file, "%s/coarse_label_names.txt", dir);
            st = add_file(out, file, 0, err);
        }
    } else {
        st = add_file(out, path, 1, err);
        if (!st && !is_archive_name(path)) snprintf(out->origin, sizeof out->origin, "%s", path);
    }
    if (!st) st = q4_cifar_finish(out, 1, err);
    if (st) q4_cifar_free(out);
    return st;
}

/* ------------------------------------------------------------ access and statistics */

const uint8_t *q4_dataset_image(const q4_dataset *set, int index) {
    for (int s = 0; s < set->num_shards; s++) {
        if (index < set->shards[s].count) return set->shards[s].pixels + (size_t)index * Q4_IMAGE_BYTES;
        index -= set->shards[s].count;
    }
    return NULL;
}

int q4_dataset_label(const q4_dataset *set, int index) {
    for (int s = 0; s < set->num_shards; s++) {
        if (index < set->shards[s].count) return set->shards[s].labels[index];
        index -= set->shards[s].count;
    }
    return -1;
}

q4_dataset q4_dataset_prefix(const q4_dataset *set, int limit) {
    q4_dataset view = *set;
    if (limit <= 0 || limit >= set->count) return view;
    int left = limit;
    for (int s = 0; s < view.num_shards; s++) {
        if (view.shards[s].count > left) view.shards[s].count = left;
        left -= view.shards[s].count;
    }
    view.count = limit;
    return view;
}

void q4_dataset_compute_stats(const q4_dataset *set, q4_dataset_stats *stats) {
    memset(stats, 0, sizeof *stats);
    stats->count = set->count;
    double sum[3] = {0, 0, 0}, squares[3] = {0, 0, 0};
    for (int s = 0; s < set->num_shards; s++) {
        const q4_shard *sh = &set->shards[s];
        for (int i = 0; i < sh->count; i++) {
            stats->class_counts[sh->labels[i]]++;
            const uint8_t *img = sh->pixels + (size_t)i * Q4_IMAGE_BYTES;
            for (int c = 0; c < 3; c++) {
                long long s1 = 0, s2 = 0;
                for (int p = 0; p < 1024; p++) {
                    int v = img[c * 1024 + p];
                    s1 += v;
                    s2 += v * v;
                }
                sum[c] += (double)s1;
                squares[c] += (double)s2;
            }
        }
    }
    double n = (double)set->count * 1024.0;
    for (int c = 0; c < 3 && n > 0; c++) {
        double mean = sum[c] / n, mean_sq = squares[c] / n;
        stats->mean[c] = mean / 255.0;
        stats->std[c] = sqrt(mean_sq - mean * mean) / 255.0;
    }
}

/* the shard's records as the official file stores them: [coarse label] label pixels */
static void shard_md5(const q4_shard *shard, char md5[33]) {
    q4_md5 c;
    q4_md5_init(&c);
    for (int i = 0; i < shard->count; i++) {
        if (shard->coarse_labels) q4_md5_update(&c, &shard->coarse_labels[i], 1);
        q4_md5_update(&c, &shard->labels[i], 1);
        q4_md5_update(&c, shard->pixels + (size_t)i * Q4_IMAGE_BYTES, Q4_IMAGE_BYTES);
    }
    q4_md5_final(&c, NULL, md5);
}

int q4_cifar_md5(const q4_cifar *c, char names[][32], char md5[][33], int max) {
    int n = 0;
    for (int split = 0; split < 2; split++) {
        const q4_dataset *set = split ? &c->test : &c->train;
        for (int i = 0; i < Q4_MAX_SHARDS && n < max; i++) {
            if (set->shards[i].count == 0) continue;
            if (c->kind == Q4_CIFAR100) snprintf(names[n], 32, "%s", split ? "test.bin" : "train.bin");
            else if (split) snprintf(names[n], 32, "test_batch.bin");
            else snprintf(names[n], 32, "data_batch_%d.bin", i + 1);
            shard_md5(&set->shards[i], md5[n]);
            n++;
        }
    }
    return n;
}
