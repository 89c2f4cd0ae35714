/* json_arena.c - a per-thread bump arena for jansson (see json_arena.h).
 *
 * Every block jansson gets starts with a 16-byte header saying where it came
 * from, so that the free function knows whether to call free() without
 * looking the pointer up. The arena keeps its blocks between batches.
 *
 * Under AddressSanitizer the arena poisons what is not handed out: a block
 * freed by jansson, and the whole arena after json_arena_end(), so a tree
 * used after its free or after the batch is reported as it would be with
 * malloc. */
#include "json_arena.h"
#include "alloc.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARENA_BLOCK  (1u << 20) /* bytes per arena block */
#define ARENA_BLOCKS 8          /* blocks a thread keeps at most */
#define ARENA_LARGE  (ARENA_BLOCK / 16)
#define HDR          16 /* keeps jansson's blocks 16-byte aligned */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

enum { FROM_MALLOC = 0x6d616c6c, FROM_ARENA = 0x6172656e };

typedef struct arena {
    char *blocks[ARENA_BLOCKS];
    size_t nblocks;
    size_t cur;  /* block being filled */
    size_t used; /* bytes used in it */
    bool on;
} arena;

/* (cppcheck needs -D_Thread_local= here, or it takes the members for unused) */
static _Thread_local arena A;

/* The header: where the block came from, and its size (header included). */
static void *tag(char *p, uint32_t from, size_t n) {
    *(uint32_t *)(void *)p = from;
    *(size_t *)(void *)(p + 8) = n;
    return p + HDR;
}

/* n bytes (header included) from the arena, or NULL when it is full. */
static char *arena_take(size_t n) {
    while (A.cur < ARENA_BLOCKS) {
        if (A.cur == A.nblocks) {
            A.blocks[A.cur] = ps_malloc(ARENA_BLOCK);
            if (A.blocks[A.cur] == NULL) return NULL;
            POISON(A.blocks[A.cur], ARENA_BLOCK);
            A.nblocks++;
        }
        if (ARENA_BLOCK - A.used >= n) {
            char *p = A.blocks[A.cur] + A.used;
            A.used += n;
            UNPOISON(p, n);
            return p;
        }
        A.cur++;
        A.used = 0;
    }
    return NULL;
}

static void *arena_malloc(size_t size) {
    size_t n = (size + HDR + 15) & ~(size_t)15;
    if (n < size) return NULL;
    if (A.on && n <= ARENA_LARGE) {
        char *p = arena_take(n);
        if (p) return tag(p, FROM_ARENA, n);
    }
    char *p = ps_malloc(n);
    return p ? tag(p, FROM_MALLOC, n) : NULL;
}

static void arena_free(void *ptr) {
    if (ptr == NULL) return;
    char *p = (char *)ptr - HDR;
    if (*(uint32_t *)(void *)p == FROM_MALLOC)
        ps_free(p);
    else
        POISON(p, *(size_t *)(void *)(p + 8)); /* a second free is reported */
}

void json_arena_install(void) {
    json_set_alloc_funcs(arena_malloc, arena_free);
}

void json_arena_begin(void) {
    A.on = true;
}

void json_arena_end(void) {
    A.on = false;
    for (size_t i = 0; i < A.nblocks; i++)
        POISON(A.blocks[i], ARENA_BLOCK);
    A.cur = A.used = 0;
}

void json_arena_release(void) {
    for (size_t i = 0; i < A.nblocks; i++) {
        UNPOISON(A.blocks[i], ARENA_BLOCK);
        ps_free(A.blocks[i]);
    }
    A.nblocks = A.cur = A.used = 0;
    A.on = false;
}
