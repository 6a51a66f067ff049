/* clamd client (see clamd.h): the z-prefixed commands (NUL-terminated),
 * INSTREAM chunks as a 4-byte big-endian length and the bytes, a zero
 * length to finish, and one NUL-terminated reply line. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "files/clamd.h"

#define SCAN_CHUNK 65536
#define IO_TIMEOUT_S 60 /* a big file takes clamd a while */

static int dial(const char *path) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  if (path == NULL || strlen(path) >= sizeof(a.sun_path)) return -1;
  memcpy(a.sun_path, path, strlen(path) + 1);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  struct timeval tv = {IO_TIMEOUT_S, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
    close(s);
    return -1;
  }
  return s;
}

static int send_all(int s, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(s, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads the reply up to its NUL (or EOF) into out. Returns its length or -1. */
static int read_reply(int s, char *out, size_t out_len) {
  size_t n = 0;
  while (n + 1 < out_len) {
    ssize_t r = recv(s, out + n, out_len - 1 - n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
    if (memchr(out, '\0', n)) break;
  }
  out[n] = '\0';
  n = strlen(out);
  while (n && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
  return n ? (int)n : -1;
}

enum clamd_result clamd_scan_fd(const char *socket_path, int fd, char *out, size_t out_len) {
  static const char cmd[] = "zINSTREAM"; /* sent with its NUL */
  char reply[512];
  unsigned char buf[4 + SCAN_CHUNK];
  snprintf(out, out_len, "clamd unreachable");
  int s = dial(socket_path);
  if (s < 0) return CLAMD_ERROR;
  enum clamd_result rc = CLAMD_ERROR;
  if (send_all(s, cmd, sizeof(cmd)) != 0) goto done;
  for (off_t off = 0;;) {
    ssize_t n = pread(fd, buf + 4, SCAN_CHUNK, off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(out, out_len, "read: %s", strerror(errno));
      goto done;
    }
    uint32_t len = (uint32_t)n;
    buf[0] = (unsigned char)(len >> 24);
    buf[1] = (unsigned char)(len >> 16);
    buf[2] = (unsigned char)(len >> 8);
    buf[3] = (unsigned char)len;
    /* clamd may stop reading (size limit) and answer early: read its reply then. */
    if (send_all(s, buf, 4 + (size_t)n) != 0) break;
    if (n == 0) break;
    off += n;
  }
  if (read_reply(s, reply, sizeof(reply)) < 0) {
    snprintf(out, out_len, "no reply from clamd");
    goto done;
  }
  /* "stream: OK", "stream: Name FOUND", or "... ERROR". */
  size_t rl = strlen(reply);
  const char *body = strncmp(reply, "stream: ", 8) == 0 ? reply + 8 : reply;
  if (rl >= 3 && strcmp(reply + rl - 3, " OK") == 0) {
    rc = CLAMD_CLEAN;
    snprintf(out, out_len, "clean");
  } else if (rl >= 6 && strcmp(reply + rl - 6, " FOUND") == 0) {
    rc = CLAMD_INFECTED;
    snprintf(out, out_len, "%.*s", (int)(strlen(body) - 6), body);
  } else {
    snprintf(out, out_len, "%s", body);
  }
done:
  close(s);
  return rc;
}

int clamd_ping(const char *socket_path) {
  static const char cmd[] = "zPING";
  char reply[64];
  int s = dial(socket_path);
  if (s < 0) return -1;
  int ok = send_all(s, cmd, sizeof(cmd)) == 0 && read_reply(s, reply, sizeof(reply)) > 0 &&
           strcmp(reply, "PONG") == 0;
  close(s);
  return ok ? 0 : -1;
}
