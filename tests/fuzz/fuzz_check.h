/* fuzz_check.h - CHECK(cond) for the fuzz targets: a failed property aborts
 * with its text and line, which libFuzzer reports as a crash with the input. */
#ifndef PS_FUZZ_CHECK_H
#define PS_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
