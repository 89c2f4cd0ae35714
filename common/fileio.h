/* fileio.h - bounded whole-file reads (migrations, plan files, request bodies
 * from stdin). The result is NUL-terminated, owned by the caller (ps_free). */
#ifndef PS_FILEIO_H
#define PS_FILEIO_H

#include <stddef.h>

/* Read all of fd, at most max bytes. NULL and a one-line reason on error or
 * when the input is larger than max. */
char *fd_read_all(int fd, size_t max, size_t *len, char *err, size_t errlen);
char *file_read_all(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
