/* test_archive.c - our tar and gzip readers on archives written byte by byte here, for the
 * variants the system's tar and gzip (test_data.c) do not produce: POSIX ustar with a path
 * prefix, old GNU headers (whose time fields sit where ustar's prefix is), GNU long names,
 * pax extended headers, base-256 sizes; gzip header flags (extra field, name, comment, header
 * CRC), stored blocks and multi-member streams; and cut-short headers of both, each refused
 * with a message that says where. Also a label-name file of exactly the size limit. */
#include "../core/data/tar.h"
#include "../core/include/q4.h"
#include "../core/util/util.h"
#include "test_util.h"

#define IMAGES 3

typedef struct buffer {
    uint8_t *data;
    size_t size, capacity;
} buffer;

static void put(buffer *b, const void *data, size_t n) {
    if (b->size + n > b->capacity) {
        b->capacity = (b->size + n) * 2;
        b->data = realloc(b->data, b->capacity);
    }
    memcpy(b->data + b->size, data, n);
    b->size += n;
}

static void put_byte(buffer *b, int v) {
    uint8_t c = (uint8_t)v;
    put(b, &c, 1);
}

/* a CIFAR-10 shard of IMAGES records */
static void shard(buffer *b, int seed) {
    for (int i = 0; i < IMAGES; i++) {
        put_byte(b, (i + seed) % 10);
        for (int p = 0; p < Q4_IMAGE_BYTES; p++) put_byte(b, (p * 7 + i * 3 + seed) & 255);
    }
}

enum { USTAR, OLD_GNU };

/* one 512-byte header; size_base256 writes the size in GNU's binary form */
static void tar_header(buffer *b, const char *name, const char *prefix, long long size, char type, int format,
                       int size_base256) {
    uint8_t h[512] = {0};
    snprintf((char *)h, 100, "%s", name);
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0000000", 8);
    memcpy(h + 116, "0000000", 8);
    if (size_base256) {
        h[124] = 0x80;
        for (int i = 0; i < 8; i++) h[135 - i] = (uint8_t)(size >> (8 * i));
    } else {
        snprintf((char *)h + 124, 12, "%011llo", size);
    }
    memcpy(h + 136, "14113377777", 12);
    h[156] = (uint8_t)type;
    if (format == USTAR) {
        memcpy(h + 257, "ustar", 6);
        memcpy(h + 263, "00", 2);
        if (prefix) snprintf((char *)h + 345, 155, "%s", prefix);
    } else {
        memcpy(h + 257, "ustar  ", 8);
        memcpy(h + 345, "14113377777", 12); /* access and change times, as octal text */
        memcpy(h + 357, "14113377777", 12);
    }
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    put(b, h, 512);
}

static void tar_data(buffer *b, const void *data, size_t n) {
    put(b, data, n);
    static const uint8_t zeros[512];
    put(b, zeros, (512 - n % 512) % 512);
}

static void tar_end(buffer *b) {
    static const uint8_t zeros[1024];
    put(b, zeros, 1024);
}

/* a release with data_batch_1.bin and test_batch.bin, their paths spelled as `how` says */
enum { PLAIN, PREFIX, LONG_NAME, PAX, BASE256 };
static buffer make_tar(int how, int format) {
    buffer t = {0}, one = {0}, test = {0};
    shard(&one, 1);
    shard(&test, 9);
    const char *dir = "cifar-10-batches-bin";
    if (how == PAX) { /* a pax header (its records are skipped) before each member */
        const char *record = "30 mtime=1243188800.123456789\n";
        tar_header(&t, "PaxHeaders/data_batch_1.bin", NULL, (long long)strlen(record), 'x', USTAR, 0);
        tar_data(&t, record, strlen(record));
    }
    if (how == LONG_NAME) { /* the path in a 'L' member before the real one */
        char long_path[300];
        snprintf(long_path, sizeof long_path, "%s/%0200d/../data_batch_1.bin", dir, 0);
        snprintf(long_path, sizeof long_path, "some/very/long/folder/name/that/goes/on/%0150d/%s/data_batch_1.bin", 7, dir);
        tar_header(&t, "././@LongLink", NULL, (long long)strlen(long_path) + 1, 'L', OLD_GNU, 0);
        tar_data(&t, long_path, strlen(long_path) + 1);
        tar_header(&t, "truncated-name-in-header", NULL, (long long)one.size, '0', OLD_GNU, 0);
    } else if (how == PREFIX) {
        tar_header(&t, "data_batch_1.bin", dir, (long long)one.size, '0', USTAR, 0);
    } else {
        char path[128];
        snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
        tar_header(&t, path, NULL, (long long)one.size, '0', format, how == BASE256);
    }
    tar_data(&t, one.data, one.size);
    char path[128];
    snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    if (how == PREFIX) tar_header(&t, "test_batch.bin", dir, (long long)test.size, '0', USTAR, 0);
    else tar_header(&t, path, NULL, (long long)test.size, '0', format, how == BASE256);
    tar_data(&t, test.data, test.size);
    tar_end(&t);
    free(one.data), free(test.data);
    return t;
}

/* gzip of data with stored (uncompressed) deflate blocks of at most `block` bytes */
enum { F_HCRC = 2, F_EXTRA = 4, F_NAME = 8, F_COMMENT = 16 };
static void gzip_member(buffer *g, const uint8_t *data, size_t n, int flags, size_t block) {
    size_t start = g->size;
    uint8_t head[10] = {0x1f, 0x8b, 8, (uint8_t)flags, 0, 0, 0, 0, 0, 3};
    put(g, head, 10);
    if (flags & F_EXTRA) put(g, "\x06\x00" "AB\x02\x00xy", 8);
    if (flags & F_NAME) put(g, "cifar-10-binary.tar", 20);
    if (flags & F_COMMENT) put(g, "made by test_archive", 21);
    if (flags & F_HCRC) {
        uint32_t crc = q4_crc32(0, g->data + start, g->size - start);
        put_byte(g, crc & 255), put_byte(g, (crc >> 8) & 255);
    }
    size_t at = 0;
    do {
        size_t len = n - at < block ? n - at : block;
        put_byte(g, at + len == n); /* BFINAL, BTYPE 00: stored */
        put_byte(g, len & 255), put_byte(g, len >> 8), put_byte(g, ~len & 255), put_byte(g, (~len >> 8) & 255);
        put(g, data + at, len);
        at += len;
    } while (at < n);
    uint32_t crc = q4_crc32(0, data, n);
    for (int i = 0; i < 4; i++) put_byte(g, (crc >> (8 * i)) & 255);
    for (int i = 0; i < 4; i++) put_byte(g, (int)((n >> (8 * i)) & 255));
}

static q4_status add(q4_cifar *c, const char *name, const buffer *b, q4_error *err) {
    q4_memory memory;
    q4_source source = q4_memory_source(&memory, b->data, b->size, name);
    return q4_cifar_add(c, name, &source, err);
}

/* loads an archive; checks the two shards arrived whole */
static void accepts(const char *what, const char *name, const buffer *b) {
    q4_cifar c;
    q4_error err = {0};
    q4_cifar_begin(&c, Q4_CIFAR10);
    q4_status st = add(&c, name, b, &err);
    if (!st) st = q4_cifar_finish(&c, 0, &err);
    CHECK(st == Q4_OK, "%s: %s", what, err.message);
    if (!st) {
        CHECK(c.train.count == IMAGES && c.test.count == IMAGES, "%s: %d train, %d test images", what, c.train.count,
              c.test.count);
        CHECK(q4_dataset_label(&c.train, 1) == 2 && q4_dataset_label(&c.test, 2) == 1 &&
                  q4_dataset_image(&c.train, 2)[100] == ((100 * 7 + 2 * 3 + 1) & 255),
              "%s: the content differs", what);
    }
    q4_cifar_free(&c);
}

static void refuses(const char *what, const char *name, const buffer *b, const char *words) {
    q4_cifar c;
    q4_error err = {0};
    q4_cifar_begin(&c, Q4_CIFAR10);
    q4_status st = add(&c, name, b, &err);
    if (!st) st = q4_cifar_finish(&c, 1, &err);
    CHECK(st != Q4_OK, "%s: accepted", what);
    CHECK(strstr(err.message, name) && strstr(err.message, words), "%s: message '%s' lacks '%s'", what, err.message, words);
    q4_cifar_free(&c);
}

/* the path the tar reader gives the first regular member */
static void first_path(const buffer *b, char *out, size_t size) {
    q4_memory memory;
    q4_source source = q4_memory_source(&memory, b->data, b->size, "cifar-10-binary.tar");
    q4_tar tar;
    q4_tar_entry entry;
    q4_error err = {0};
    q4_tar_open(&tar, &source, 0);
    snprintf(out, size, "%s", q4_tar_next(&tar, &entry, &err) == 1 ? entry.path : err.message);
}

static void test_tar(void) {
    struct { const char *what; int how, format; } cases[] = {
        {"POSIX ustar, full path in the name", PLAIN, USTAR},
        {"old GNU header (times where ustar has its prefix)", PLAIN, OLD_GNU},
        {"POSIX ustar with the folder in the prefix field", PREFIX, USTAR},
        {"GNU long name", LONG_NAME, OLD_GNU},
        {"pax extended header", PAX, USTAR},
        {"GNU base-256 size", BASE256, OLD_GNU},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buffer t = make_tar(cases[i].how, cases[i].format);
        accepts(cases[i].what, "cifar-10-binary.tar", &t);
        char path[512];
        first_path(&t, path, sizeof path);
        const char *expect = cases[i].how == LONG_NAME ? "some/very/long/folder/name/" : "cifar-10-batches-bin/data_batch_1.bin";
        CHECK(strncmp(path, expect, strlen(expect)) == 0 && strstr(path, "cifar-10-batches-bin/data_batch_1.bin"),
              "%s: the member's path reads as '%s'", cases[i].what, path);
        buffer g = {0};
        gzip_member(&g, t.data, t.size, 0, 65535);
        accepts(cases[i].what, "cifar-10-binary.tar.gz", &g);
        free(t.data), free(g.data);
    }
    /* a header cut short, and a member's data cut short */
    buffer t = make_tar(PLAIN, USTAR);
    buffer cut = {t.data, 700, 0};
    refuses("tar cut inside a member", "cifar-10-binary.tar", &cut, "truncated");
    cut.size = 512 + 3 * 3073 + 512 + 100;
    refuses("tar cut inside a header", "cifar-10-binary.tar", &cut, "truncated");
    free(t.data);
}

static void test_gzip(void) {
    buffer t = make_tar(PLAIN, USTAR);
    int flag_sets[] = {F_EXTRA, F_NAME, F_COMMENT, F_HCRC, F_EXTRA | F_NAME | F_COMMENT | F_HCRC};
    for (size_t i = 0; i < sizeof flag_sets / sizeof flag_sets[0]; i++) {
        buffer g = {0};
        gzip_member(&g, t.data, t.size, flag_sets[i], 1000);
        char what[64];
        snprintf(what, sizeof what, "gzip with header flags %#x, stored blocks of 1000", flag_sets[i]);
        accepts(what, "cifar-10-binary.tar.gz", &g);
        free(g.data);
    }
    /* two members, the tar split between them: one stream, as gzip -c a b > c makes */
    buffer g = {0};
    gzip_member(&g, t.data, 5000, F_NAME, 65535);
    gzip_member(&g, t.data + 5000, t.size - 5000, 0, 4096);
    accepts("multi-member gzip", "cifar-10-binary.tar.gz", &g);
    free(g.data);

    /* cut inside each header field: "inside the gzip header", not "inside compressed data" */
    buffer full = {0};
    gzip_member(&full, t.data, t.size, F_EXTRA | F_NAME | F_COMMENT | F_HCRC, 65535);
    size_t cuts[] = {5, 11, 14, 25, 40, 48};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        buffer part = {full.data, cuts[i], 0};
        char what[64];
        snprintf(what, sizeof what, "gzip cut after %zu header bytes", cuts[i]);
        refuses(what, "cifar-10-binary.tar.gz", &part, "truncated inside the gzip header");
    }
    buffer part = {full.data, full.size - 100, 0};
    refuses("gzip cut inside the data", "cifar-10-binary.tar.gz", &part, "inside compressed data");
    free(full.data), free(t.data);
}

/* a label-name file may have up to 65,536 bytes: exactly that is read, one more refused */
static void test_label_name_limit(void) {
    for (int extra = 0; extra < 2; extra++) {
        buffer names = {0};
        const char *classes = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
        put(&names, classes, strlen(classes));
        while (names.size < 65536 + (size_t)extra) put_byte(&names, '\n'); /* blank lines are ignored */
        q4_cifar c;
        q4_error err = {0};
        q4_cifar_begin(&c, Q4_CIFAR10);
        q4_status st = add(&c, "batches.meta.txt", &names, &err);
        if (extra) CHECK(st == Q4_ERR_FORMAT && strstr(err.message, "too large"), "65,537 bytes: %s", err.message);
        else CHECK(st == Q4_OK && strcmp(c.class_names[9], "truck") == 0, "65,536 bytes: %s", err.message);
        q4_cifar_free(&c);
        free(names.data);
    }
}

int main(void) {
    test_tar();
    test_gzip();
    test_label_name_limit();
    return test_finish("test_archive");
}
