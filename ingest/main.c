/* main.c - paystream-ingest: settings, secrets, signals and the event loop.
 *
 * SIGTERM/SIGINT: close the listening sockets, let every request already
 * read get its Redis reply and its answer written, then exit 0. SIGHUP:
 * re-read the secrets. Only PAYSTREAM_SECRET_FILE can change under a running
 * process: its environment (STRIPE_WEBHOOK_SECRET) is fixed at exec, so a
 * reload re-reads the file and keeps the environment's secrets as they were. */
#include "ingest.h"
#include "alloc.h"
#include "fileio.h"
#include "log.h"
#include "strbuf.h"
#include "timeutil.h"

#include <event2/event.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define SECRET_FILE_MAX (64 * 1024)
#define DRAIN_POLL_MS   20

/* The loop's own events; the signal callbacks get this as their argument. */
typedef struct loop_events {
    ingest *in;
    struct event *sigterm, *sigint, *sighup;
    struct event *drain; /* polls while draining, for answers still being written */
} loop_events;

/* -------------------------------------------------------------- secrets -- */

/* The file's lines, without those whose first non-blank character is '#'
 * (operators annotate which secret is which, e.g. before a rotation). */
static void append_uncommented(strbuf *sb, const char *text, size_t len) {
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end, *q = p;
        while (q < eol && (*q == ' ' || *q == '\t'))
            q++;
        if (q == eol || *q != '#') {
            strbuf_append(sb, p, (size_t)(eol - p));
            strbuf_puts(sb, "\n");
        }
        p = nl ? nl + 1 : end;
    }
}

static int read_secret_file(const char *path, strbuf *sb, char *err, size_t errlen) {
    char ferr[256];
    size_t len = 0;
    char *text = file_read_all(path, SECRET_FILE_MAX, &len, ferr, sizeof(ferr));
    if (text == NULL) {
        snprintf(err, errlen, "PAYSTREAM_SECRET_FILE: %s", ferr);
        return -1;
    }
    if (sb->len) strbuf_puts(sb, "\n");
    append_uncommented(sb, text, len);
    OPENSSL_cleanse(text, len);
    ps_free(text);
    return 0;
}

int ingest_load_secrets(const ps_config *cfg, sig_secrets *out, char *err, size_t errlen) {
    char perr[256];
    int rc = -1;
    strbuf sb;
    strbuf_init(&sb);
    memset(out, 0, sizeof(*out));
    if (cfg->webhook_secret == NULL && cfg->secret_file == NULL) {
        snprintf(err, errlen,
                 "STRIPE_WEBHOOK_SECRET: required setting is missing (or set "
                 "PAYSTREAM_SECRET_FILE)");
        goto done;
    }
    if (cfg->webhook_secret) strbuf_puts(&sb, cfg->webhook_secret);
    if (cfg->secret_file && read_secret_file(cfg->secret_file, &sb, err, errlen) != 0) goto done;
    if (sb.oom) {
        snprintf(err, errlen, "out of memory reading the secrets");
        goto done;
    }
    if (sig_secrets_parse(sb.buf ? sb.buf : "", out, perr, sizeof(perr)) != 0) {
        snprintf(err, errlen, "%s: %s",
                 cfg->secret_file ? "PAYSTREAM_SECRET_FILE" : "STRIPE_WEBHOOK_SECRET", perr);
        goto done;
    }
    rc = 0;
done:
    if (sb.buf) OPENSSL_cleanse(sb.buf, sb.len);
    strbuf_free(&sb);
    return rc;
}

static void warn_about_secrets(const sig_secrets *s) {
    char warn[256];
    if (sig_secrets_check(s, warn, sizeof(warn)) > 0) log_warn("webhook secrets: %s", warn);
}

/* ---------------------------------------------------------------- signals -- */

static void maybe_exit(ingest *in) {
    if (in->draining && in->inflight == 0 && http_server_unflushed(in->http) == 0)
        event_base_loopexit(in->base, NULL);
}

void ingest_request_done(ingest *in) {
    if (in->draining) maybe_exit(in);
}

/* While draining: exit once nothing is in flight and every answer is out,
 * or at the deadline (Redis and client timeouts make that a safety net). */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    ingest *in = arg;
    maybe_exit(in);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    loop_events *ev = arg;
    ingest *in = ev->in;
    if (in->draining) return;
    in->draining = true;
    log_info("signal %d: no longer accepting connections; finishing %u requests in flight",
             (int)sig, in->inflight);
    http_server_stop_accepting(in->http);
    long limit_ms = in->cfg.redis_timeout_ms + in->cfg.timeout * 1000 + 1000;
    struct timeval tv = {limit_ms / 1000, (limit_ms % 1000) * 1000};
    event_base_loopexit(in->base, &tv);
    struct timeval tick = {0, DRAIN_POLL_MS * 1000};
    event_add(ev->drain, &tick);
    maybe_exit(in);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    ingest *in = ((loop_events *)arg)->in;
    sig_secrets fresh;
    char err[512];
    if (ingest_load_secrets(&in->cfg, &fresh, err, sizeof(err)) != 0) {
        in->metrics.secret_reload_failures++;
        log_error("SIGHUP: secrets not reloaded, keeping the %d in use: %s", in->secrets.count,
                  err);
        return;
    }
    sig_secrets_free(&in->secrets);
    in->secrets = fresh;
    in->metrics.secret_reloads++;
    log_info("SIGHUP: %d webhook secret%s loaded", fresh.count, fresh.count == 1 ? "" : "s");
    warn_about_secrets(&in->secrets);
}

/* ------------------------------------------------------------------ run -- */

static int add_events(ingest *in, loop_events *ev) {
    ev->in = in;
    ev->sigterm = evsignal_new(in->base, SIGTERM, on_sigterm, ev);
    ev->sigint = evsignal_new(in->base, SIGINT, on_sigterm, ev);
    ev->sighup = evsignal_new(in->base, SIGHUP, on_sighup, ev);
    ev->drain = event_new(in->base, -1, EV_PERSIST, on_drain_tick, in);
    if (!ev->sigterm || !ev->sigint || !ev->sighup || !ev->drain) return -1;
    if (event_add(ev->sigterm, NULL) || event_add(ev->sigint, NULL) || event_add(ev->sighup, NULL))
        return -1;
    return 0;
}

static void free_events(loop_events *ev) {
    struct event *all[] = {ev->sigterm, ev->sigint, ev->sighup, ev->drain};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i]) event_free(all[i]);
}

static int run(ingest *in) {
    char err[512];
    loop_events ev = {0};
    int rc = 1;
    in->started_ms = time_now_ms();
    in->base = event_base_new();
    if (in->base == NULL) {
        fprintf(stderr, "paystream-ingest: cannot create the event loop\n");
        return 1;
    }
    in->redis =
        redis_async_new(in->base, in->cfg.redis_url, in->cfg.redis_timeout_ms, err, sizeof(err));
    if (in->redis == NULL || http_server_new(in, err, sizeof(err)) == NULL) {
        fprintf(stderr, "paystream-ingest: %s\n", err);
        goto done;
    }
    in->metrics.min_replicas = in->cfg.redis_min_replicas;
    if (in->cfg.redis_min_replicas > 0 && (in->replicas = replicas_new(in)) == NULL) {
        fprintf(stderr, "paystream-ingest: out of memory\n");
        goto done;
    }
    if (add_events(in, &ev) != 0) {
        fprintf(stderr, "paystream-ingest: cannot set up signal handling\n");
        goto done;
    }
    log_info("paystream-ingest %s: stream %s on redis %s, %d webhook secret%s, tolerance %lds, "
             "%ld replica%s to confirm each event",
             PAYSTREAM_VERSION, in->cfg.stream, redis_async_describe(in->redis), in->secrets.count,
             in->secrets.count == 1 ? "" : "s", in->cfg.tolerance, in->cfg.redis_min_replicas,
             in->cfg.redis_min_replicas == 1 ? "" : "s");
    warn_about_secrets(&in->secrets);
    event_base_dispatch(in->base);
    if (in->inflight || http_server_unflushed(in->http))
        log_warn("drain time limit reached with %u requests in flight: they get 503", in->inflight);
    log_info("stopped");
    rc = 0;
done:
    redis_async_free(in->redis); /* answers whatever is still pending */
    replicas_free(in->replicas); /* and what was still to be sent a WAIT */
    http_server_free(in->http);
    free_events(&ev);
    event_base_free(in->base);
    return rc;
}

/* ------------------------------------------------------------- settings -- */

static int check_settings(ingest *in, char *err, size_t errlen) {
    const ps_config *cfg = &in->cfg;
    if (cfg->tolerance <= 0) {
        snprintf(err, errlen, "PAYSTREAM_TOLERANCE: must be more than 0 seconds for ingest");
        return -1;
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        snprintf(err, errlen, "%s: required when %s is set",
                 cfg->tls_cert ? "PAYSTREAM_TLS_KEY" : "PAYSTREAM_TLS_CERT",
                 cfg->tls_cert ? "PAYSTREAM_TLS_CERT" : "PAYSTREAM_TLS_KEY");
        return -1;
    }
    if (cfg->webhook_path[0] != '/') {
        snprintf(err, errlen, "PAYSTREAM_WEBHOOK_PATH: must start with '/'");
        return -1;
    }
    return ingest_load_secrets(cfg, &in->secrets, err, errlen);
}

static void usage(FILE *out) {
    fprintf(out, "Usage: paystream-ingest [--help] [--version] [--show-config] [settings]\n\n"
                 "Receives Stripe webhooks, verifies their signature and adds them to a Redis\n"
                 "stream; answers 200 only once Redis has the event. SIGTERM drains and exits,\n"
                 "SIGHUP re-reads PAYSTREAM_SECRET_FILE. Several processes may listen on one\n"
                 "port (SO_REUSEPORT) to use every core.\n\n");
    config_print_help(out, PROG_INGEST);
}

/* 0: run; 1: done (help, version, config shown); -1: bad argument. */
static int handle_args(int argc, char **argv, const ps_config *cfg) {
    if (argc <= 1) return 0;
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("paystream-ingest %s\n", PAYSTREAM_VERSION);
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--show-config") == 0) {
        config_show(stdout, cfg, PROG_INGEST);
        return 1;
    }
    fprintf(stderr, "paystream-ingest: unknown argument '%s' (see --help)\n", argv[1]);
    return -1;
}

int main(int argc, char **argv) {
    static ingest in;
    char err[512];
    int rc = 2;
    signal(SIGPIPE, SIG_IGN);
    if (config_load(&in.cfg, PROG_INGEST, &argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "paystream-ingest: %s\n", err);
        goto done;
    }
    log_init("paystream-ingest", (log_level)in.cfg.log_level);
    int a = handle_args(argc, argv, &in.cfg);
    if (a != 0) {
        rc = a > 0 ? 0 : 2;
        goto done;
    }
    if (check_settings(&in, err, sizeof(err)) != 0) {
        fprintf(stderr, "paystream-ingest: %s\n", err);
        goto done;
    }
    rc = run(&in);
done:
    sig_secrets_free(&in.secrets);
    config_free(&in.cfg);
    return rc;
}
