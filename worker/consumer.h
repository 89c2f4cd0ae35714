/* consumer.h - one member of the consumer group: its own Redis and
 * PostgreSQL connections, its own name, its own retry schedule. A worker
 * process runs PAYSTREAM_CONCURRENCY of them, one thread each. */
#ifndef PS_WORKER_CONSUMER_H
#define PS_WORKER_CONSUMER_H

#include "config.h"

#include <signal.h>
#include <stdint.h>

typedef struct consumer_stats {
    uint64_t applied, skipped, duplicates, retried, dead;
    uint64_t waited; /* events that started waiting for another (SPEC 3) */
} consumer_stats;

/* Run until *stop is set; finishes the entry in hand first. index makes the
 * consumer name unique within the process. */
void consumer_run(const ps_config *cfg, int index, volatile sig_atomic_t *stop,
                  consumer_stats *stats);

#endif
