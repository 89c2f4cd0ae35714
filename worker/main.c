/* main.c - paystream-worker: settings, signals, one consumer thread per
 * PAYSTREAM_CONCURRENCY and, with PAYSTREAM_ADMIN_LISTEN, the admin thread
 * (admin.c). SIGTERM/SIGINT stop reading; each consumer finishes and
 * acknowledges what it holds, then the process exits 0. */
#include "admin.h"
#include "config.h"
#include "consumer.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "timeutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping;

typedef struct worker_thread {
    pthread_t tid;
    const ps_config *cfg;
    int index;
    consumer_stats stats;
} worker_thread;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static void *thread_main(void *arg) {
    worker_thread *t = arg;
    wmetrics_consumers_add(1);
    consumer_run(t->cfg, t->index, &stopping, &t->stats);
    wmetrics_consumers_add(-1);
    return NULL;
}

static int usage_or_version(int argc, char **argv, const ps_config *cfg) {
    if (argc < 2) return -1;
    if (strcmp(argv[1], "--version") == 0) {
        printf("paystream-worker %s\n", PAYSTREAM_VERSION);
    } else if (strcmp(argv[1], "--help") == 0) {
        printf("Usage: paystream-worker [settings]\n\nApplies the events of the Redis stream to "
               "the PostgreSQL ledger, exactly once each.\n\n");
        config_print_help(stdout, PROG_WORKER);
    } else if (strcmp(argv[1], "--show-config") == 0) {
        config_show(stdout, cfg, PROG_WORKER);
    } else {
        fprintf(stderr, "paystream-worker: unknown argument '%s' (see --help)\n", argv[1]);
        return 2;
    }
    return 0;
}

/* A malformed PAYSTREAM_REDIS_URL stops the worker at start, in one line
 * (a Redis that is down does not: the consumers wait for it). */
static int check_redis_url(const ps_config *cfg) {
    char err[512];
    redis_conn *c = redis_new(cfg->redis_url, cfg->redis_timeout_ms, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "paystream-worker: %s\n", err);
        return -1;
    }
    redis_close(c);
    return 0;
}

static int run(const ps_config *cfg) {
    struct sigaction sa;
    if (check_redis_url(cfg) != 0) return 2;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int n = (int)cfg->concurrency;
    char err[512];
    admin *adm = NULL;
    wmetrics_init(time_now_ms());
    if (cfg->admin_listen && (adm = admin_start(cfg, &stopping, err, sizeof(err))) == NULL) {
        fprintf(stderr, "paystream-worker: %s\n", err);
        return 2;
    }
    worker_thread *threads = calloc((size_t)n, sizeof(*threads));
    if (threads == NULL) {
        stopping = 1;
        admin_join(adm);
        return 1;
    }
    log_info("starting %d consumers on stream %s, group %s", n, cfg->stream, cfg->group);
    for (int i = 0; i < n; i++) {
        threads[i].cfg = cfg;
        threads[i].index = i;
        pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
    }
    consumer_stats total = {0};
    for (int i = 0; i < n; i++) {
        pthread_join(threads[i].tid, NULL);
        total.applied += threads[i].stats.applied;
        total.skipped += threads[i].stats.skipped;
        total.duplicates += threads[i].stats.duplicates;
        total.retried += threads[i].stats.retried;
        total.dead += threads[i].stats.dead;
        total.waited += threads[i].stats.waited;
    }
    log_info("stopped: %llu applied, %llu skipped, %llu duplicates, %llu retried, %llu waited, "
             "%llu dead",
             (unsigned long long)total.applied, (unsigned long long)total.skipped,
             (unsigned long long)total.duplicates, (unsigned long long)total.retried,
             (unsigned long long)total.waited, (unsigned long long)total.dead);
    free(threads);
    stopping = 1; /* the consumers may have stopped on their own (no connection) */
    admin_join(adm);
    return 0;
}

int main(int argc, char **argv) {
    ps_config cfg;
    char err[512];
    if (config_load(&cfg, PROG_WORKER, &argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "paystream-worker: %s\n", err);
        config_free(&cfg);
        return 2;
    }
    log_init("paystream-worker", (log_level)cfg.log_level);
    int rc = usage_or_version(argc, argv, &cfg);
    if (rc < 0) rc = run(&cfg);
    config_free(&cfg);
    return rc;
}
