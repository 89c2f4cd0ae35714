/* fileio.c - bounded whole-file reads (see fileio.h). */
#include "fileio.h"
#include "alloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

char *fd_read_all(int fd, size_t max, size_t *len, char *err, size_t errlen) {
    size_t cap = 4096, n = 0;
    char *buf = ps_malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *p = (cap > max + 1) ? NULL : ps_realloc(buf, cap * 2);
            if (p == NULL) break;
            buf = p;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errlen, "read failed: %s", strerror(errno));
            ps_free(buf);
            return NULL;
        }
        if (r == 0) {
            buf[n] = '\0';
            if (len) *len = n;
            return buf;
        }
        n += (size_t)r;
        if (n > max) {
            snprintf(err, errlen, "input is larger than %zu bytes", max);
            ps_free(buf);
            return NULL;
        }
    }
    snprintf(err, errlen, "out of memory");
    ps_free(buf);
    return NULL;
}

char *file_read_all(const char *path, size_t max, size_t *len, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char why[200];
    char *buf = fd_read_all(fd, max, len, why, sizeof(why));
    if (buf == NULL) snprintf(err, errlen, "%s: %s", path, why);
    close(fd);
    return buf;
}
