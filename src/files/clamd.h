/* clamd over its UNIX socket: INSTREAM scans and PING. Blocking calls, for
 * the thread pool only (never the loop thread). */
#ifndef HUDDLE_FILES_CLAMD_H
#define HUDDLE_FILES_CLAMD_H

#include <stddef.h>

enum clamd_result { CLAMD_CLEAN = 0, CLAMD_INFECTED = 1, CLAMD_ERROR = -1 };

/* Streams the file open on fd (read with pread from offset 0 to EOF) to the
 * clamd listening on socket_path. Returns CLAMD_CLEAN, CLAMD_INFECTED (the
 * signature name in out) or CLAMD_ERROR (why in out). */
enum clamd_result clamd_scan_fd(const char *socket_path, int fd, char *out, size_t out_len);

/* Returns 0 if clamd answers PING with PONG, else -1. */
int clamd_ping(const char *socket_path);

#endif
