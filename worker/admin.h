/* admin.h - the worker's admin listener (PAYSTREAM_ADMIN_LISTEN): /healthz,
 * /readyz and /metrics over plain HTTP, on a thread of its own with its own
 * libevent loop. The counters are metrics.h's; the group-wide gauges and the
 * probes group_stats.h's. */
#ifndef PS_WORKER_ADMIN_H
#define PS_WORKER_ADMIN_H

#include "config.h"

#include <signal.h>
#include <stddef.h>

typedef struct admin admin;

/* Bind cfg->admin_listen (HOST:PORT or [V6]:PORT) and start serving on a new
 * thread until *stop is set. NULL with a one-line reason naming the setting
 * in err when it cannot listen. */
admin *admin_start(const ps_config *cfg, volatile sig_atomic_t *stop, char *err, size_t errlen);
/* Wait for the thread to see *stop (set by the caller) and free it all.
 * Accepts NULL. */
void admin_join(admin *a);

#endif
