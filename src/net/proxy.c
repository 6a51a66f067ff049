/* Client addresses behind trusted proxies (see proxy.h). */
#define LOG_MODULE "proxy"
#include "log.h"

#include <arpa/inet.h>
#include <string.h>

#include "net/http.h"
#include "net/proxy.h"
#include "net/server.h"

static int trimmed(const char **p, const char **end) {
  while (*p < *end && (**p == ' ' || **p == '\t')) (*p)++;
  while (*end > *p && ((*end)[-1] == ' ' || (*end)[-1] == '\t')) (*end)--;
  return *end > *p;
}

int proxy_trusted(const char *list, const char *addr) {
  if (list == NULL || addr == NULL || !*addr) return 0;
  size_t al = strlen(addr);
  const char *p = list;
  while (*p) {
    const char *comma = strchr(p, ',');
    const char *end = comma ? comma : p + strlen(p);
    const char *a = p, *b = end;
    if (trimmed(&a, &b) && (size_t)(b - a) == al && memcmp(a, addr, al) == 0) return 1;
    if (!comma) break;
    p = comma + 1;
  }
  return 0;
}

static int valid_ip(const char *s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int proxy_client_from_xff(const char *list, const char *xff, size_t len, char *out, size_t out_len) {
  const char *end = xff + len;
  while (end > xff) {
    const char *start = end;
    while (start > xff && start[-1] != ',') start--;
    const char *a = start, *b = end;
    end = start > xff ? start - 1 : xff;
    if (!trimmed(&a, &b)) return -1;
    char addr[64];
    if ((size_t)(b - a) >= sizeof(addr) || (size_t)(b - a) >= out_len) return -1;
    memcpy(addr, a, (size_t)(b - a));
    addr[b - a] = '\0';
    if (!valid_ip(addr)) return -1;
    if (proxy_trusted(list, addr) && end > xff) continue; /* another proxy of ours: look further left */
    memcpy(out, addr, (size_t)(b - a) + 1);
    return 0;
  }
  return -1;
}

int proxy_resolve(struct conn *c) {
  const char *list = c->srv->cfg->trusted_proxies;
  if (list == NULL || !*list || !proxy_trusted(list, c->req->peer)) return 0;
  const struct buf *x = &c->req->hdr[HDR_X_FORWARDED_FOR];
  char client[64];
  const char *who = c->req->peer;
  if (x->len && proxy_client_from_xff(list, x->data, x->len, client, sizeof(client)) == 0) who = client;
  if (server_conn_readdress(c, who) != 0) {
    log_warn("connection_refused ip=%s via=%s code=%s", c->ip, c->req->peer, api_err_code(API_ERR_TOO_MANY_CONNECTIONS));
    http_reply_error(c, API_ERR_TOO_MANY_CONNECTIONS, NULL, 0);
    return -1;
  }
  return 0;
}
