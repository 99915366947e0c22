/* fuzz_card.c - libFuzzer target: arbitrary bytes as a run card. The JSON reader and the card
 * parser must refuse what they cannot read, never crash or read out of bounds; a card that
 * parses is written back and read again. */
#include <stdint.h>
#include <stdlib.h>

#include "../../core/include/q4.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    q4_error err;
    q4_card *card = q4_card_parse((const char *)data, size, &err);
    if (!card) return 0;
    size_t n = q4_card_json(card, NULL, 0);
    char *text = malloc(n + 1);
    q4_card_json(card, text, n + 1);
    q4_card *again = q4_card_parse(text, n, &err);
    if (!again) abort(); /* what we write we must read */
    q4_card_free(again);
    q4_card_free(card);
    free(text);
    return 0;
}
