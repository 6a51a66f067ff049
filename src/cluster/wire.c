/* The cluster's small wire formats, as pure functions (no Redis, no loop;
 * tests/unit/test_cluster.c): room stream entry ids and seq, lease values,
 * the claims field of an open, the message queues of links and deferred
 * opens, the keep-alive of a forwarded answer, the Redis URL, the
 * reconnect backoff, and the growable pointer list the sweeps collect into. */
#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"

void stream_id_format(char *out, size_t n, uint64_t seq, uint64_t sub) {
  snprintf(out, n, "%" PRIu64 "-%" PRIu64, seq, sub);
}

/* One decimal number of at most 20 digits that fits in 64 bits. */
static const char *u64_parse(const char *p, uint64_t *v) {
  uint64_t x = 0;
  const char *s = p;
  while (*p >= '0' && *p <= '9') {
    unsigned d = (unsigned)(*p - '0');
    if (x > (UINT64_MAX - d) / 10) return NULL;
    x = x * 10 + d;
    p++;
  }
  if (p == s) return NULL;
  *v = x;
  return p;
}

int stream_id_parse(const char *id, uint64_t *a, uint64_t *b) {
  uint64_t x, y;
  const char *p = id ? u64_parse(id, &x) : NULL;
  if (p == NULL || *p != '-' || (p = u64_parse(p + 1, &y)) == NULL || *p) return -1;
  *a = x, *b = y;
  return 0;
}

int lease_parse(const char *val, char *owner, size_t n, uint64_t *fence) {
  const char *colon = strrchr(val, ':');
  if (n) snprintf(owner, n, "%.*s", (int)(colon ? colon - val : 0), val);
  if (fence) *fence = colon ? strtoull(colon + 1, NULL, 10) : 0;
  return colon ? 0 : -1;
}

int lease_held_by(const char *val, const char *inst) {
  size_t n = strlen(inst);
  return n && strncmp(val, inst, n) == 0 && val[n] == ':';
}

void claims_to_fields(const struct token_claims *tc, char *buf, size_t n) {
  snprintf(buf, n, "%d,%u,%u,%d", (int)tc->role, tc->perms_set, tc->perms_val, tc->admin);
}

int claims_parse(const char *cs, struct token_claims *tc) {
  int role = 0, admin = 0;
  unsigned ps = 0, pv = 0;
  int n = sscanf(cs, "%d,%u,%u,%d", &role, &ps, &pv, &admin);
  int ok = n == 4 && role >= 0 && role < ROOM_ROLE__COUNT;
  tc->role = ok ? (enum room_role)role : ROOM_ROLE_VIEWER;
  tc->perms_set = ps;
  tc->perms_val = pv;
  tc->admin = admin;
  return ok ? 0 : -1;
}

int msgq_push(struct buf *q, const char *data, size_t len) {
  uint32_t n = (uint32_t)len;
  if (len > UINT32_MAX || buf_append(q, &n, 4) != 0) return -1;
  return buf_append(q, data, len);
}

int msgq_next(const struct buf *q, size_t *off, const char **data, uint32_t *len) {
  uint32_t n;
  if (q->data == NULL || *off + 4 > q->len) return 0;
  memcpy(&n, q->data + *off, 4);
  if (n > q->len - *off - 4) return 0; /* a truncated tail: never written whole */
  *data = q->data + *off + 4;
  *len = n;
  *off += 4 + (size_t)n;
  return 1;
}

int answer_keeps(const char *d, size_t n) {
  static const char ka[] = "\r\nConnection: keep-alive\r\n";
  for (size_t i = 0; i + sizeof(ka) - 1 <= n; i++) {
    if (d[i] == '\r' && i + 3 < n && memcmp(d + i, "\r\n\r\n", 4) == 0) return 0; /* end of the head */
    if (memcmp(d + i, ka, sizeof(ka) - 1) == 0) return 1;
  }
  return 0;
}

int redis_url_parse(struct redis_url *u, const char *url, char *err, size_t n) {
  const char *p = url;
  memset(u, 0, sizeof(*u));
  if (strncmp(p, "redis://", 8) != 0) return snprintf(err, n, "--redis-url must start with redis://"), -1;
  p += 8;
  const char *at = strrchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon) {
      snprintf(u->user, sizeof(u->user), "%.*s", (int)(colon - p), p);
      snprintf(u->pass, sizeof(u->pass), "%.*s", (int)(at - colon - 1), colon + 1);
    } else {
      snprintf(u->pass, sizeof(u->pass), "%.*s", (int)(at - p), p);
    }
    p = at + 1;
  }
  size_t hl = strcspn(p, ":/");
  if (hl == 0 || hl >= sizeof(u->host)) return snprintf(err, n, "--redis-url: no host"), -1;
  snprintf(u->host, sizeof(u->host), "%.*s", (int)hl, p);
  p += hl;
  u->port = 6379;
  if (*p == ':') {
    u->port = (int)strtol(p + 1, (char **)&p, 10);
    if (u->port <= 0 || u->port > 65535) return snprintf(err, n, "--redis-url: bad port"), -1;
  }
  if (*p == '/') {
    char *e;
    long db = strtol(p + 1, &e, 10);
    if (e == p + 1 || *e || db < 0 || db > 1000000) return snprintf(err, n, "--redis-url: bad db index"), -1;
    u->db = (int)db;
  } else if (*p) {
    return snprintf(err, n, "--redis-url: unexpected '%s'", p), -1;
  }
  return 0;
}

int backoff_next(int ms) { return ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : ms * 2; }

void ptrvec_push(const char *k, void *v, void *arg) {
  struct ptrvec *pv = arg;
  (void)k;
  if (pv->n == pv->cap) {
    size_t cap = pv->cap ? 2 * pv->cap : 64;
    void **nv = realloc(pv->v, cap * sizeof(*nv));
    if (nv == NULL) {
      pv->missed++;
      return;
    }
    pv->v = nv, pv->cap = cap;
  }
  pv->v[pv->n++] = v;
}

void ptrvec_free(struct ptrvec *pv) {
  free(pv->v);
  memset(pv, 0, sizeof(*pv));
}

/* ---- shared files on any instance (files_fwd.c) ---- */

int files_url_room(const char *url, size_t len, char *room, size_t n) {
  static const char pre[] = "/webrtc/rooms/";
  const size_t pl = sizeof(pre) - 1;
  if (url != NULL && len > 0 && url[0] != '/') {
    /* The absolute-form (RFC 9112 3.2.2): its path, as api_dispatch takes it. */
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) return 0;
    url += u.field_data[UF_PATH].off;
    len = u.field_data[UF_PATH].len;
  }
  if (url == NULL || len <= pl || strncmp(url, pre, pl) != 0) return 0;
  const char *id = url + pl, *end = url + len;
  size_t idl = 0;
  while (id + idl < end && id[idl] != '/' && id[idl] != '?') idl++;
  const char *rest = id + idl;
  if (idl == 0 || idl > ID_MAX || idl + 1 > n || (size_t)(end - rest) < 6 || strncmp(rest, "/files", 6) != 0)
    return 0;
  if (rest + 6 < end && rest[6] != '/' && rest[6] != '?') return 0; /* "/filesx" */
  if (!id_valid(id, idl)) return 0;
  memcpy(room, id, idl);
  room[idl] = '\0';
  return 1;
}

int addr_parse(const char *s, struct sockaddr_storage *sa) {
  char host[64];
  const char *port;
  if (s == NULL || sa == NULL) return -1;
  if (s[0] == '[') {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host)) return -1;
    memcpy(host, s + 1, (size_t)(close - s - 1));
    host[close - s - 1] = '\0';
    port = close + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host)) return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = colon + 1;
  }
  uint64_t p;
  const char *e = u64_parse(port, &p);
  if (e == NULL || *e || p == 0 || p > 65535 || host[0] == '\0') return -1;
  memset(sa, 0, sizeof(*sa));
  if (strchr(host, ':')) return uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)sa) == 0 ? 0 : -1;
  return uv_ip4_addr(host, (int)p, (struct sockaddr_in *)sa) == 0 ? 0 : -1;
}

int addr_advertised(const char *adv, const char *bound, char *out, size_t n) {
  struct sockaddr_storage sa;
  if (n) out[0] = '\0';
  if (adv && *adv) {
    if (addr_parse(adv, &sa) != 0) return -1;
    snprintf(out, n, "%s", adv);
    return 0;
  }
  if (bound == NULL || addr_parse(bound, &sa) != 0) return 0;
  if (sa.ss_family == AF_INET && ((struct sockaddr_in *)&sa)->sin_addr.s_addr == 0) return 0; /* 0.0.0.0 */
  if (sa.ss_family == AF_INET6) {
    static const unsigned char any[16];
    if (memcmp(&((struct sockaddr_in6 *)&sa)->sin6_addr, any, 16) == 0) return 0; /* :: */
  }
  snprintf(out, n, "%s", bound);
  return 0;
}

int fwd_head_build(struct buf *out, const char *method, const char *url, size_t url_len,
                   const struct fwd_hdr *h, size_t nh, const char *inst, const char *client_ip, int framing,
                   uint64_t content_length) {
  char line[128];
  int ok = buf_append(out, method, strlen(method)) == 0 && buf_append(out, " ", 1) == 0 &&
           buf_append(out, url, url_len) == 0 && buf_append(out, " HTTP/1.1\r\nHost: huddle\r\nConnection: close\r\n", 44) == 0;
  for (size_t i = 0; ok && i < nh; i++) {
    if (h[i].len == 0) continue;
    /* http-parser refused CR and LF in values; checked again, never sent. */
    if (memchr(h[i].value, '\r', h[i].len) || memchr(h[i].value, '\n', h[i].len)) return -1;
    ok = buf_append(out, h[i].name, strlen(h[i].name)) == 0 && buf_append(out, ": ", 2) == 0 &&
         buf_append(out, h[i].value, h[i].len) == 0 && buf_append(out, "\r\n", 2) == 0;
  }
  snprintf(line, sizeof(line), "X-Huddle-Forwarded: %s\r\nX-Forwarded-For: %s\r\n", inst, client_ip);
  ok = ok && buf_append(out, line, strlen(line)) == 0;
  if (framing == FWD_BODY_LENGTH) snprintf(line, sizeof(line), "Content-Length: %" PRIu64 "\r\n\r\n", content_length);
  else if (framing == FWD_BODY_CHUNKED) snprintf(line, sizeof(line), "Transfer-Encoding: chunked\r\n\r\n");
  else snprintf(line, sizeof(line), "\r\n");
  ok = ok && buf_append(out, line, strlen(line)) == 0;
  return ok ? 0 : -1;
}
