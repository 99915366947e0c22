/* fuzz_checkpoint.c - libFuzzer target: arbitrary bytes as a checkpoint header and as an
 * exported model file. Both parsers must refuse what they cannot read, never crash. */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/include/q4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    q4_checkpoint_info info;
    q4_error err;
    (void)q4_checkpoint_read_info(data, size, &info, &err);
    q4_model *model = q4_model_load(data, size, 1, &err);
    q4_model_destroy(model);
    return 0;
}
