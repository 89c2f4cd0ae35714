/* json_arena.h - jansson's memory for the event trees of one batch.
 *
 * Parsing a 4 KB event makes a few hundred small jansson allocations, and
 * freeing the tree as many frees: a sixth of the worker's CPU went to
 * malloc and free. Between json_arena_begin() and json_arena_end() the
 * calling thread's jansson allocations come from its own bump arena, and
 * freeing them costs nothing; json_arena_end() rewinds the arena, so every
 * tree parsed in between must be freed (json_decref) before it. Outside
 * that window, and for large or overflowing requests, jansson uses malloc. */
#ifndef PS_WORKER_JSON_ARENA_H
#define PS_WORKER_JSON_ARENA_H

/* Route jansson's allocations through the arena's functions; once, before
 * any jansson call and before threads start. */
void json_arena_install(void);
void json_arena_begin(void);
void json_arena_end(void);
/* Give the thread's arena back (before the thread exits). */
void json_arena_release(void);

#endif
