/* json_arena.c - a per-thread bump arena for jansson (see json_arena.h).
 *
 * Every block jansson gets starts with a 16-byte header saying where it came
 * from, so that the free function knows whether to call free() without
 * looking the pointer up. The arena keeps its blocks between batches. */
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

static void *tag(char *p, uint32_t from) {
    *(uint32_t *)(void *)p = from;
    return p + HDR;
}

/* n bytes (header included) from the arena, or NULL when it is full. */
static char *arena_take(size_t n) {
    while (A.cur < ARENA_BLOCKS) {
        if (A.cur == A.nblocks) {
            A.blocks[A.cur] = ps_malloc(ARENA_BLOCK);
            if (A.blocks[A.cur] == NULL) return NULL;
            A.nblocks++;
        }
        if (ARENA_BLOCK - A.used >= n) {
            char *p = A.blocks[A.cur] + A.used;
            A.used += n;
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
        if (p) return tag(p, FROM_ARENA);
    }
    char *p = ps_malloc(n);
    return p ? tag(p, FROM_MALLOC) : NULL;
}

static void arena_free(void *ptr) {
    if (ptr == NULL) return;
    char *p = (char *)ptr - HDR;
    if (*(uint32_t *)(void *)p == FROM_MALLOC) ps_free(p);
}

void json_arena_install(void) {
    json_set_alloc_funcs(arena_malloc, arena_free);
}

void json_arena_begin(void) {
    A.on = true;
}

void json_arena_end(void) {
    A.on = false;
    A.cur = A.used = 0;
}

void json_arena_release(void) {
    for (size_t i = 0; i < A.nblocks; i++)
        ps_free(A.blocks[i]);
    A.nblocks = A.cur = A.used = 0;
    A.on = false;
}
