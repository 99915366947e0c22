/* fuzz_archive.c - libFuzzer target: arbitrary bytes as an official tarball (.tar.gz or
 * .tar, detected from the content) through the gzip decoder, the tar reader and the shard
 * parser; also the raw gzip stream read to its end. Errors are fine; crashes are not. */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/data/inflate.h"
#include "../../core/include/q4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    q4_dataset_kind kind = data[0] & 1 ? Q4_CIFAR100 : Q4_CIFAR10;
    q4_cifar c;
    q4_cifar_begin(&c, kind);
    q4_memory memory;
    q4_source source = q4_memory_source(&memory, data + 1, size - 1, "fuzz.tar.gz");
    q4_error err;
    if (q4_cifar_add(&c, "fuzz.tar.gz", &source, &err) == Q4_OK) q4_cifar_finish(&c, 1, &err);
    q4_cifar_free(&c);

    /* the decoder alone, pulled in odd-sized reads */
    q4_gzip *gz = malloc(sizeof *gz);
    source = q4_memory_source(&memory, data + 1, size - 1, "fuzz.gz");
    if (gz && q4_gzip_open(gz, &source, &err) == Q4_OK) {
        uint8_t out[777];
        for (int i = 0; i < 100000; i++)
            if (q4_gzip_read(gz, out, 1 + (size_t)(i * 131) % sizeof out, &err) <= 0) break;
    }
    free(gz);
    return 0;
}
