/* bare_server.c - the "do nothing" anchor for bench/ingest.
 *
 * libevent's own HTTP server (evhttp) on one loop in one thread, as the ingest
 * issue set it: it reads each request whole (evhttp does that before calling
 * us) and answers 200 {"received":true} with no verification and no Redis.
 * paystream-ingest no longer uses evhttp (ingest/http_conn.c says why); this
 * stays the anchor: what a plain libevent HTTP server costs on this machine.
 *
 * Not part of the product build: bench/ingest/run compiles it with
 *   cc -O2 -o bare_server bare_server.c -levent
 *
 * Usage: bare_server PORT   (listens on 127.0.0.1 only; SIGINT/SIGTERM stop it)
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static void on_request(struct evhttp_request *req, void *arg) {
    (void)arg;
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(out, "{\"received\":true}", 17);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_signal(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    event_base_loopbreak((struct event_base *)arg);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    if (!base || !http) {
        fprintf(stderr, "bare_server: libevent init failed\n");
        return 1;
    }
    evhttp_set_max_body_size(http, 1 << 20);
    evhttp_set_timeout(http, 10);
    evhttp_set_gencb(http, on_request, NULL);
    if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
        fprintf(stderr, "bare_server: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    event_base_dispatch(base);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    event_base_free(base);
    return 0;
}
