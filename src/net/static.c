/* Static files (see static.h). Paths are decoded and checked against a
 * whitelist before they touch the file system, only regular files with a
 * known extension are served, and each answer carries the CSP.
 * NOTE: files are read with blocking calls on the loop thread. They are small
 * (STATIC_MAX_BYTES) and in the page cache after the first read; a deployment
 * that serves many browsers puts a cache in front (docs/adr/0010). */
#define LOG_MODULE "static"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "net/http.h"
#include "net/server.h"
#include "net/static.h"

#ifndef HUDDLE_WEB_DIR
#define HUDDLE_WEB_DIR "/usr/local/share/huddle/web"
#endif

#define STATIC_MAX_BYTES (4 * 1024 * 1024)

struct ctype {
  const char *ext;
  const char *type;
};

/* Only these extensions are served; anything else is 404. */
static const struct ctype ctypes[] = {
  {".html", "text/html; charset=utf-8"},
  {".js", "text/javascript; charset=utf-8"},
  {".mjs", "text/javascript; charset=utf-8"},
  {".css", "text/css; charset=utf-8"},
  {".json", "application/json"},
  {".webmanifest", "application/manifest+json"},
  {".ts", "text/plain; charset=utf-8"},
  {".md", "text/markdown; charset=utf-8"},
  {".txt", "text/plain; charset=utf-8"},
  {".svg", "image/svg+xml"},
  {".png", "image/png"},
  {".ico", "image/x-icon"},
  {".woff2", "font/woff2"},
};

static const char *ctype_of(const char *name) {
  const char *dot = strrchr(name, '.');
  if (dot == NULL || strchr(dot, '/')) return NULL;
  for (size_t i = 0; i < sizeof(ctypes) / sizeof(ctypes[0]); i++)
    if (strcmp(dot, ctypes[i].ext) == 0) return ctypes[i].type;
  return NULL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int allowed(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '_' || ch == '-' || ch == '/';
}

int static_path_clean(const char *path, size_t path_len, char *out, size_t out_len) {
  if (path_len == 0 || path[0] != '/' || out_len < 16) return -1;
  size_t o = 0;
  for (size_t i = 1; i < path_len; i++) {
    unsigned char ch = (unsigned char)path[i];
    if (ch == '%') {
      if (i + 2 >= path_len) return -1;
      int hi = hexval(path[i + 1]), lo = hexval(path[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      ch = (unsigned char)(hi * 16 + lo);
      /* An encoded separator is never a separator, and never a name byte either. */
      if (ch == '/' || ch == '\\') return -1;
      i += 2;
    }
    if (!allowed(ch)) return -1; /* NUL, controls, '\\', spaces, non-ASCII */
    /* A segment may not be empty ("//") nor start with '.' (".", "..", ".git"). */
    if ((o == 0 || out[o - 1] == '/') && (ch == '/' || ch == '.')) return -1;
    if (o + 1 >= out_len) return -1;
    out[o++] = (char)ch;
  }
  if (o == 0 || out[o - 1] == '/') {
    static const char idx[] = "index.html";
    if (o + sizeof(idx) > out_len) return -1;
    memcpy(out + o, idx, sizeof(idx));
    return 0;
  }
  out[o] = '\0';
  return 0;
}

static int has_index(const char *dir) {
  char p[PATH_MAX];
  struct stat st;
  if (snprintf(p, sizeof(p), "%s/index.html", dir) >= (int)sizeof(p)) return 0;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int static_root(const char *configured, char *out, size_t out_len) {
  if (configured && *configured) {
    if (snprintf(out, out_len, "%s", configured) >= (int)out_len) return -1;
    return 0;
  }
  if (has_index(HUDDLE_WEB_DIR)) {
    snprintf(out, out_len, "%s", HUDDLE_WEB_DIR);
    return 0;
  }
  /* From a checkout: <checkout>/build/huddle serves <checkout>/web. */
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return -1;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL) return -1;
  *slash = '\0';
  char cand[PATH_MAX];
  if (snprintf(cand, sizeof(cand), "%s/../web", exe) >= (int)sizeof(cand)) return -1;
  char real[PATH_MAX];
  if (!has_index(cand) || realpath(cand, real) == NULL) return -1;
  return snprintf(out, out_len, "%s", real) >= (int)out_len ? -1 : 0;
}

/* Builds the file name for rel (already cleaned) under root. "sdk/..." comes
 * from <root>/sdk when it exists (installed), else <root>/../clients/js (a
 * checkout). */
static int file_name(const char *root, const char *rel, char *out, size_t out_len) {
  if (strncmp(rel, "sdk/", 4) == 0) {
    char dir[PATH_MAX + 8];
    struct stat st;
    if (snprintf(dir, sizeof(dir), "%s/sdk", root) >= (int)sizeof(dir)) return -1;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
      return snprintf(out, out_len, "%s/../clients/js/%s", root, rel + 4) >= (int)out_len ? -1 : 0;
    }
  }
  return snprintf(out, out_len, "%s/%s", root, rel) >= (int)out_len ? -1 : 0;
}

/* Reads a regular file of at most STATIC_MAX_BYTES. Returns a malloc'd
 * buffer (caller frees) or NULL. */
static char *read_file(const char *name, struct stat *st) {
  int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return NULL;
  char *data = NULL;
  if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode) || st->st_size > STATIC_MAX_BYTES) goto out;
  data = malloc((size_t)st->st_size + 1);
  if (data == NULL) goto out;
  size_t got = 0;
  while (got < (size_t)st->st_size) {
    ssize_t r = read(fd, data + got, (size_t)st->st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(data);
      data = NULL;
      goto out;
    }
    got += (size_t)r;
  }
out:
  close(fd);
  return data;
}

static void not_found(struct conn *c) {
  http_reply_error(c, API_ERR_NOT_FOUND, NULL, 0);
}

/* Compares a header value against our ETag; "*" and lists are honoured. */
static int etag_matches(const struct buf *inm, const char *etag) {
  if (inm->len == 0) return 0;
  char v[512];
  size_t n = inm->len < sizeof(v) - 1 ? inm->len : sizeof(v) - 1;
  memcpy(v, inm->data, n);
  v[n] = '\0';
  if (strcmp(v, "*") == 0) return 1;
  return strstr(v, etag + 2) != NULL; /* weak comparison: ignore "W/" on either side */
}

int static_serve(struct conn *c, const char *path, size_t path_len) {
  int method = (int)c->req->parser.method;
  if (method != HTTP_GET && method != HTTP_HEAD) return 0;
  if ((path_len >= 8 && memcmp(path, "/webrtc/", 8) == 0) ||
      (path_len == 7 && memcmp(path, "/webrtc", 7) == 0) ||
      (path_len >= 8 && memcmp(path, "/metrics", 8) == 0))
    return 0;
  char rel[512], root[PATH_MAX], name[PATH_MAX + 600];
  if (static_path_clean(path, path_len, rel, sizeof(rel)) != 0) {
    log_debug("static_refused reason=path");
    not_found(c);
    return 1;
  }
  const char *type = ctype_of(rel);
  int have_root = static_root(c->srv->cfg->web_root, root, sizeof(root)) == 0;
  /* Said once per process: an installed copy wins over a checkout's web/. */
  static int announced;
  if (!announced) {
    announced = 1;
    if (have_root) log_info("web_root dir=%s", root);
    else log_warn("web_root_missing configured=%s installed=%s",
                  c->srv->cfg->web_root ? c->srv->cfg->web_root : "(unset)", HUDDLE_WEB_DIR);
  }
  if (type == NULL || !have_root || file_name(root, rel, name, sizeof(name)) != 0) {
    not_found(c);
    return 1;
  }
  struct stat st;
  char *data = read_file(name, &st);
  if (data == NULL) {
    not_found(c);
    return 1;
  }
  char etag[96], lm[64];
  snprintf(etag, sizeof(etag), "W/\"%llx-%llx\"", (unsigned long long)st.st_size,
           (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec);
  struct tm tm;
  gmtime_r(&st.st_mtim.tv_sec, &tm);
  strftime(lm, sizeof(lm), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  char headers[1400];
  snprintf(headers, sizeof(headers),
           "Cache-Control: no-cache\r\nETag: %s\r\nLast-Modified: %s\r\n"
           "Content-Security-Policy: " STATIC_CSP "\r\n"
           "Referrer-Policy: no-referrer\r\nX-Frame-Options: DENY\r\n"
           "Cross-Origin-Opener-Policy: same-origin\r\n"
           "Permissions-Policy: camera=(self), microphone=(self), display-capture=(self)\r\n",
           etag, lm);
  /* If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2). */
  const struct buf *inm = &c->req->hdr[HDR_IF_NONE_MATCH];
  const struct buf *ims = &c->req->hdr[HDR_IF_MODIFIED_SINCE];
  int fresh = inm->len ? etag_matches(inm, etag)
                       : (ims->len == strlen(lm) && memcmp(ims->data, lm, ims->len) == 0);
  if (fresh) http_reply(c, 304, headers, type, "", 0);
  else http_reply(c, 200, headers, type, data, (size_t)st.st_size);
  free(data);
  return 1;
}
