/* main.c - paystream-ingest entry point (placeholder until the HTTP server lands):
 * loads and checks its settings, then exits. */
#include "config.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    ps_config cfg;
    char err[512];
    int rc = 0;
    if (config_load(&cfg, PROG_INGEST, &argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "paystream-ingest: %s\n", err);
        rc = 2;
    } else if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("paystream-ingest %s\n", PAYSTREAM_VERSION);
    } else if (argc > 1 && strcmp(argv[1], "--help") == 0) {
        printf("Usage: paystream-ingest [settings]\n\n");
        config_print_help(stdout, PROG_INGEST);
    } else if (argc > 1) {
        fprintf(stderr, "paystream-ingest: unknown argument '%s' (see --help)\n", argv[1]);
        rc = 2;
    }
    config_free(&cfg);
    return rc;
}
