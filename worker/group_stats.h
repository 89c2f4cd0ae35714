/* group_stats.h - the consumer group's state as a whole (lag, pending, the
 * oldest pending entry, dead letters, waiting events) and whether Redis and
 * PostgreSQL answer, asked by the admin thread on its own connections, at
 * most once a second. Not thread-safe: one admin thread owns it. */
#ifndef PS_WORKER_GROUP_STATS_H
#define PS_WORKER_GROUP_STATS_H

#include "config.h"
#include "metrics.h"

typedef struct group_stats group_stats;

/* NULL only when out of memory. Connects lazily, on the first refresh. */
group_stats *group_stats_new(const ps_config *cfg);
void group_stats_free(group_stats *gs);
/* The latest values, asked again when the last ones are older than a second.
 * A source that does not answer is marked down and its connection re-made
 * on the next refresh. */
const wm_group *group_stats_get(group_stats *gs);

#endif
