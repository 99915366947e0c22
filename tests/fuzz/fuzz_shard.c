/* fuzz_shard.c - libFuzzer target: arbitrary bytes as a loose CIFAR shard or label-name
 * file (the first byte picks the release and the file name). The reader must return an
 * error or a dataset, never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/include/q4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const char *const names[] = {"data_batch_1.bin", "test_batch.bin", "batches.meta.txt", "train.bin",
                                        "test.bin", "fine_label_names.txt", "coarse_label_names.txt", "other.bin"};
    q4_dataset_kind kind = data[0] & 1 ? Q4_CIFAR100 : Q4_CIFAR10;
    const char *name = names[(data[0] >> 1) & 7];
    q4_cifar c;
    q4_cifar_begin(&c, kind);
    q4_memory memory;
    q4_source source = q4_memory_source(&memory, data + 1, size - 1, name);
    q4_error err;
    if (q4_cifar_add(&c, name, &source, &err) == Q4_OK) {
        q4_cifar_finish(&c, 0, &err);
        if (c.train.count > 0) (void)q4_dataset_image(&c.train, c.train.count - 1);
    }
    q4_cifar_free(&c);
    return 0;
}
