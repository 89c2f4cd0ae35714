/* alloc.h - the one allocation wrapper every paystream file uses.
 *
 * All heap memory goes through ps_malloc() and friends so that tests can make
 * allocation fail on demand (ps_alloc_fail_after) and check that every caller
 * copes. ps_free(NULL) is a no-op, like free(). */
#ifndef PS_ALLOC_H
#define PS_ALLOC_H

#include <stddef.h>

void *ps_malloc(size_t size);
void *ps_calloc(size_t n, size_t size);
void *ps_realloc(void *ptr, size_t size);
char *ps_strdup(const char *s);
char *ps_strndup(const char *s, size_t n);
void ps_free(void *ptr);

/* Make the (n+1)th allocation from now on, and every one after it, fail.
 * A negative n turns failures off again. For tests only. */
void ps_alloc_fail_after(long n);

#endif
