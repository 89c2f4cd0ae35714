/* json_bench.c - CPU per event of the worker's JSON work, two ways, on the
 * same realistic events (built and run by bench/worker/json_bench):
 *  - jansson: json_loadb(JSON_REJECT_DUPLICATES) into the per-batch bump
 *    arena the worker used (worker/json_arena.c, taken from git history by
 *    the script), the reads of json_reads.h on the tree through the helpers
 *    as they were (tests/fuzz/event_json_ref.h), json_decref, the
 *    arena rewound every 32 events as apply_batch did;
 *  - json_doc: json_doc_parse into one of 32 reused documents (one per batch
 *    slot), the same reads through the worker's own jstr/jint/jbool/jget
 *    (worker/event_util.c).
 * Also envelope_parse alone (the ingest's pass), for comparison. Best of
 * ROUNDS rounds of process CPU time; both sides must read the same values.
 *
 * Input: a file of bodies, each as "<length>\n<bytes>\n". */
#include "envelope.h"
#include "event.h"
#include "json_arena.h"
#include "tests/fuzz/event_json_ref.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 7
#define SLOTS  32

/* ------------------------------------------------------ the jansson side -- */

typedef json_t *jx_val;
#define V              jx_val
#define GET(v, p)      ref_get(v, p)
#define STR(v, p)      ref_str(v, p)
#define INT(v, p, o)   ref_int(v, p, o)
#define BOOL(v, p, o)  ref_bool(v, p, o)
#define FIRST(a)       json_array_get(a, 0)
#define FOR_EACH(a, e) for (size_t i_ = 0; ((e) = json_array_get(a, i_)) != NULL; i_++)
#define OK(v)          ((v) != NULL)
#define READS          reads_jansson
#include "json_reads.h"
#undef V
#undef GET
#undef STR
#undef INT
#undef BOOL
#undef FIRST
#undef FOR_EACH
#undef OK
#undef READS

/* ----------------------------------------------------- the json_doc side -- */

#define V              jval
#define GET(v, p)      jget(v, p)
#define STR(v, p)      jstr(v, p)
#define INT(v, p, o)   jint(v, p, o)
#define BOOL(v, p, o)  jbool(v, p, o)
#define FIRST(a)       jfirst(a)
#define FOR_EACH(a, e) for ((e) = jfirst(a); jok(e); (e) = jnext(a, e))
#define OK(v)          jok(v)
#define READS          reads_doc
#include "json_reads.h"

/* --------------------------------------------------------------- timing -- */

typedef struct bodies {
    char **b;
    size_t *len, n, bytes;
} bodies;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int load(const char *path, bodies *in) {
    FILE *f = fopen(path, "rb");
    size_t cap = 0, len;
    if (f == NULL) return -1;
    memset(in, 0, sizeof(*in));
    while (fscanf(f, "%zu", &len) == 1 && fgetc(f) == '\n') {
        if (in->n == cap) {
            cap = cap ? 2 * cap : 1024;
            in->b = realloc(in->b, cap * sizeof(*in->b));
            in->len = realloc(in->len, cap * sizeof(*in->len));
        }
        in->b[in->n] = malloc(len);
        if (fread(in->b[in->n], 1, len, f) != len) break;
        in->len[in->n++] = len;
        in->bytes += len;
        fgetc(f);
    }
    fclose(f);
    return in->n > 0 ? 0 : -1;
}

static uint64_t run_jansson(const bodies *in) {
    uint64_t sum = 0;
    json_t *trees[SLOTS];
    json_error_t err;
    for (size_t i = 0; i < in->n; i += SLOTS) {
        size_t n = in->n - i < SLOTS ? in->n - i : SLOTS;
        json_arena_begin();
        for (size_t k = 0; k < n; k++) {
            trees[k] = json_loadb(in->b[i + k], in->len[i + k], JSON_REJECT_DUPLICATES, &err);
            sum += trees[k] ? reads_jansson(trees[k]) : 1;
        }
        for (size_t k = 0; k < n; k++)
            json_decref(trees[k]);
        json_arena_end();
    }
    return sum;
}

static uint64_t run_doc(const bodies *in, json_doc **docs) {
    uint64_t sum = 0;
    for (size_t i = 0; i < in->n; i++) {
        json_doc *d = docs[i % SLOTS];
        sum += json_doc_parse(d, in->b[i], in->len[i]) == 0 ? reads_doc((jval){d, 0}) : 1;
    }
    return sum;
}

static uint64_t run_envelope(const bodies *in) {
    uint64_t sum = 0;
    envelope e;
    for (size_t i = 0; i < in->n; i++)
        sum += envelope_parse(in->b[i], in->len[i], &e, NULL, 0) == ENV_OK ? 1 : 0;
    return sum;
}

static void report(const char *what, double best, const bodies *in) {
    double per = best / (double)in->n;
    printf("%-36s %8.0f ns/event %8.1f MB/s\n", what, per * 1e9,
           (double)in->bytes / (double)in->n / per / 1e6);
}

int main(int argc, char **argv) {
    bodies in;
    json_doc *docs[SLOTS];
    if (argc != 2 || load(argv[1], &in) != 0) {
        fprintf(stderr, "usage: json_bench BODIES (\"<length>\\n<bytes>\\n\" each)\n");
        return 2;
    }
    json_arena_install();
    for (int i = 0; i < SLOTS; i++)
        docs[i] = json_doc_new();
    double best[3] = {1e9, 1e9, 1e9};
    uint64_t sums[3] = {0, 0, 0};
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = cpu_now();
        sums[0] = run_jansson(&in);
        double t1 = cpu_now();
        sums[1] = run_doc(&in, docs);
        double t2 = cpu_now();
        sums[2] = run_envelope(&in);
        double t3 = cpu_now();
        best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
        best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
        best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
    }
    printf("%zu events, %zu bytes each on average, best of %d rounds (CPU time)\n", in.n,
           in.bytes / in.n, ROUNDS);
    report("jansson+arena parse + reads", best[0], &in);
    report("json_doc parse + reads", best[1], &in);
    report("envelope_parse (ingest, alone)", best[2], &in);
    printf("speed-up %.1fx; reads agree: %s\n", best[0] / best[1],
           sums[0] == sums[1] ? "yes" : "NO");
    return sums[0] == sums[1] && sums[2] == in.n ? 0 : 1;
}
