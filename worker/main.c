/* main.c - paystream-worker entry point (placeholder until the consumer lands):
 * loads and checks its settings, then exits. */
#include "config.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    ps_config cfg;
    char err[512];
    int rc = 0;
    if (config_load(&cfg, PROG_WORKER, &argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "paystream-worker: %s\n", err);
        rc = 2;
    } else if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("paystream-worker %s\n", PAYSTREAM_VERSION);
    } else if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("Usage: paystream-worker [settings]\n\n");
        config_print_help(stdout, PROG_WORKER);
    } else if (argc > 1) {
        fprintf(stderr, "paystream-worker: unknown argument '%s' (see --help)\n", argv[1]);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
