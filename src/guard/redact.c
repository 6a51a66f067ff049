/* Stream-target redaction (see redact.h). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "guard/redact.h"

static const char *first_of(const char *p, const char *end, const char *set) {
  for (; p < end; p++)
    if (strchr(set, *p) && *p) return p;
  return end;
}

int redact_stream_target(const char *url, size_t len, char *out, size_t out_len) {
  size_t scheme;
  if (len >= 7 && strncasecmp(url, "rtmp://", 7) == 0) scheme = 7;
  else if (len >= 8 && strncasecmp(url, "rtmps://", 8) == 0) scheme = 8;
  else return -1;
  const char *end = url + len;
  const char *auth = url + scheme;
  const char *auth_end = first_of(auth, end, "/?#");
  /* userinfo: up to the last '@' of the authority */
  const char *host = auth;
  for (const char *p = auth; p < auth_end; p++)
    if (*p == '@') host = p + 1;
  if (host == auth_end) return -1;                       /* no host */
  const char *frag = first_of(auth_end, end, "#");
  const char *query = first_of(auth_end, frag, "?");
  const char *path = auth_end, *path_end = query;
  while (path_end > path && path_end[-1] == '/') path_end--; /* trailing slashes */
  if (path >= path_end || *path != '/') return -1;       /* no path */
  const char *key = path_end;
  while (key > path && key[-1] != '/') key--;
  if (key == path_end || key - 1 <= path) return -1;     /* needs an application and a key */
  if (key[-2] == '/') return -1;                          /* and no empty segment before the key */
  int n = snprintf(out, out_len, "%.*s%s%.*s****%s%s", (int)scheme, url, host != auth ? "****@" : "",
                   (int)(key - host), host, query < frag ? "?****" : "", frag < end ? "#****" : "");
  return n > 0 && (size_t)n < out_len ? 0 : -1;
}
