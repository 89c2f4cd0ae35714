/* fuzz_envelope.c - libFuzzer target for common/envelope.c, differential
 * against jansson (envelope_ref.h): valid per jansson ⇔ valid per ours, and
 * the same fields. Any disagreement aborts with both answers. */
#include "tests/fuzz/envelope_ref.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char why[512];
    if (!ref_agrees(data, size, why, sizeof(why))) {
        fprintf(stderr, "envelope_parse disagrees with jansson: %s\n", why);
        abort();
    }
    return 0;
}
