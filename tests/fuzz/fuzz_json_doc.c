/* fuzz_json_doc.c - libFuzzer target for common/json_doc.c, differential
 * against jansson (json_doc_ref.h): accepted by one ⇔ accepted by the other
 * (NUL bytes aside), and every value read back the same. One document is
 * reused across inputs, as the worker reuses one per batch slot. */
#include "tests/fuzz/json_doc_ref.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static json_doc *doc;
    char why[512];
    if (doc == NULL && (doc = json_doc_new()) == NULL) abort();
    if (!ref_doc_agrees(doc, data, size, why, sizeof(why))) {
        fprintf(stderr, "json_doc disagrees with jansson: %s\n", why);
        abort();
    }
    return 0;
}
