/* alloc.c - allocation wrapper with a failure switch for tests (see alloc.h). */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_after = -1;

static int should_fail(void) {
    long n = atomic_load(&fail_after);
    if (n < 0) return 0;
    if (n == 0) return 1;
    atomic_fetch_sub(&fail_after, 1);
    return 0;
}

void ps_alloc_fail_after(long n) {
    atomic_store(&fail_after, n);
}

void *ps_malloc(size_t size) {
    return should_fail() ? NULL : malloc(size ? size : 1);
}

void *ps_calloc(size_t n, size_t size) {
    return should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
}

void *ps_realloc(void *ptr, size_t size) {
    return should_fail() ? NULL : realloc(ptr, size ? size : 1);
}

char *ps_strndup(const char *s, size_t n) {
    char *p = ps_malloc(n + 1);
    if (p == NULL) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ps_strdup(const char *s) {
    return s ? ps_strndup(s, strlen(s)) : NULL;
}

void ps_free(void *ptr) {
    free(ptr);
}
