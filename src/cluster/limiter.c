/* The shared rate limits: one GCRA state per user and class in Redis,
 * counted by a Lua script by Redis's clock. A member's messages wait in
 * order per connection (struct gate) for the script's verdict, which the
 * limiter seam (hub_limiter_ops) then answers; REST calls that count
 * against api_call wait the same way, and the rate-limit status call reads
 * the shared budget. With Redis away the local limiter answers. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "net/proxy.h"
#include "room/command.h"
#include "signal/signal.h"

/* The limiter seam (hub_limiter_ops) is synchronous; Redis is not. A
 * member's message is held (in order, per connection) until one Lua script
 * has checked and counted its classes (websocket_message and the type's own
 * class) atomically in Redis, by Redis's clock; the message is then handled
 * as on one instance, and the limiter answers the handler's calls with that
 * verdict. Without Redis (an outage) the local limiter answers. */

/* KEYS one TAT key per class; ARGV limit, window_ms per class. Returns
 * {1, 0, 0, remaining} or {0, refused class index (1-based), retry_after_ms, 0}. */
static const char LUA_GCRA[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local new = {} local rem = 0 "
    "for i = 1, #KEYS do "
    "  local L = tonumber(ARGV[2 * i - 1]) local T = tonumber(ARGV[2 * i]) "
    "  local iv = T / L local tau = T - iv "
    "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') "
    "  if tat < now then tat = now end "
    "  if tat - now > tau + 0.0001 then return {0, i, math.ceil(tat - tau - now), 0} end "
    "  new[i] = tat + iv rem = math.floor((T - (new[i] - now)) / iv + 0.0001) "
    "end "
    "for i = 1, #KEYS do redis.call('SET', KEYS[i], string.format('%.4f', new[i]), 'PX', math.ceil(new[i] - now) + 1000) end "
    "return {1, 0, 0, rem}";

/* KEYS the TAT key; ARGV limit, window_ms. The budget as LUA_GCRA would
 * find it now, counting nothing: {remaining, reset_ms}. */
static const char LUA_GCRA_PEEK[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local L = tonumber(ARGV[1]) local T = tonumber(ARGV[2]) local iv = T / L local tau = T - iv "
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if tat < now then tat = now end "
    "local d = tat - now "
    "if d > tau + 0.0001 then return {0, math.ceil(d - 0.0001)} end "
    "return {math.floor((T - d) / iv + 0.0001), math.ceil(d - 0.0001)}";

struct gmsg {
  struct gmsg *next;
  size_t len;
  char data[];
};

struct gate {
  struct conn *c;
  char key[32];
  char user[ID_MAX + 1];
  struct gmsg *head, *tail;
  int inflight;
  int cls[2];
  int ncls;
};

/* Class c's GCRA state key of user (rl:{class}:{user}, the same on every
 * instance) and its rule as the scripts' ARGV (limit, window ms). */
static void gcra_args(const struct cluster *cl, int c, const char *user, char key[KEY_MAX], char limit[16],
                      char window[24]) {
  char id[ID_MAX + 24];
  snprintf(id, sizeof(id), "%d:%s", c, user);
  key_of(key, "rl", id);
  snprintf(limit, 16, "%u", cl->h->rl.rules[c].limit);
  snprintf(window, 24, "%llu", (unsigned long long)cl->h->rl.rules[c].window_ms);
}

static void gate_key(const struct conn *c, char *out, size_t n) { snprintf(out, n, "%p", (const void *)c); }

static void redis_limiter_check(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                                struct ratelimit_result *out) {
  struct cluster *cl = impl;
  if (c == RATE_API_CALL && cl->api_verdict_on) {
    *out = cl->api_verdict;
    return;
  }
  if (cl->verdict_on && cl->verdict_has[c] && strcmp(key, cl->verdict_user) == 0) {
    *out = cl->verdict[c];
    return;
  }
  ratelimit_check(&cl->h->rl, key, c, now_ms, out);
}

static void redis_limiter_peek(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                               struct ratelimit_result *out) {
  struct cluster *cl = impl;
  if (cl->peek_on && (int)c == cl->peek_class && strcmp(key, cl->peek_user) == 0) {
    *out = cl->peek;
    return;
  }
  if (cl->verdict_on && cl->verdict_has[c] && strcmp(key, cl->verdict_user) == 0) {
    *out = cl->verdict[c];
    return;
  }
  ratelimit_peek(&cl->h->rl, key, c, now_ms, out);
}

const struct hub_limiter_ops redis_limiter = {"redis", redis_limiter_check, redis_limiter_peek};

/* The rate classes a message spends: websocket_message and its type's. */
static int message_classes(struct cluster *cl, const char *data, size_t len, int cls[2]) {
  int n = 0;
  const struct ratelimit_rule *rules = cl->h->rl.rules;
  if (rules[RATE_WEBSOCKET_MESSAGE].limit) cls[n++] = RATE_WEBSOCKET_MESSAGE;
  json_t *j = json_loadb(data, len, JSON_DISABLE_EOF_CHECK, NULL);
  const char *type = json_string_value(json_object_get(j, "type"));
  const struct sig_type *t = type ? signal_type_find(type) : NULL;
  if (t) {
    int rc = command_get(t->cmd)->rate;
    if (rc != COMMAND_NO_RATE && rules[rc].limit && rc != RATE_WEBSOCKET_MESSAGE) cls[n++] = rc;
  }
  json_decref(j);
  return n;
}

static void gate_pump(struct cluster *cl, struct gate *g);

static void gate_deliver(struct cluster *cl, struct gate *g) {
  struct gmsg *m = g->head;
  g->head = m->next;
  if (g->head == NULL) g->tail = NULL;
  struct conn *c = g->c;
  signal_on_message(c, m->data, m->len);
  free(m);
}

static void gcra_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  char *key = priv;
  struct gate *g = cl ? map_get(&cl->gates, key) : NULL;
  free(key);
  if (g == NULL) return;
  g->inflight = 0;
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4 && g->head) {
    int allowed = r->element[0]->integer == 1;
    int refused_i = (int)r->element[1]->integer - 1;
    memset(cl->verdict_has, 0, sizeof(cl->verdict_has));
    for (int i = 0; i < g->ncls; i++) {
      int c = g->cls[i];
      struct ratelimit_result *v = &cl->verdict[c];
      memset(v, 0, sizeof(*v));
      v->limit = cl->h->rl.rules[c].limit;
      /* A class checked before the refused one was not counted either: it answers allowed. */
      v->allowed = allowed || i != refused_i;
      if (!v->allowed) v->retry_after_ms = (uint64_t)r->element[2]->integer;
      if (allowed) v->remaining = (uint32_t)r->element[3]->integer;
      cl->verdict_has[c] = 1;
    }
    snprintf(cl->verdict_user, sizeof(cl->verdict_user), "%s", g->user);
    cl->verdict_on = 1;
    gate_deliver(cl, g);
    cl->verdict_on = 0;
  } else if (g->head) {
    gate_deliver(cl, g); /* Redis is away: the local limiter answers */
  }
  g = map_get(&cl->gates, g->key) == g ? g : NULL;
  if (g) gate_pump(cl, g);
}

static void gate_pump(struct cluster *cl, struct gate *g) {
  while (g->head && !g->inflight) {
    struct conn *c = g->c;
    struct gmsg *m = g->head;
    if (c->part == NULL) {
      gate_deliver(cl, g); /* a waiter, or closing: nothing to count */
      if (map_get(&cl->gates, g->key) != g) return;
      continue;
    }
    snprintf(g->user, sizeof(g->user), "%s", c->part->user_id);
    g->ncls = message_classes(cl, m->data, m->len, g->cls);
    if (g->ncls == 0 || !cl->cmd_up) {
      gate_deliver(cl, g);
      if (map_get(&cl->gates, g->key) != g) return;
      continue;
    }
    char k0[KEY_MAX], k1[KEY_MAX], l0[16], w0[24], l1[16], w1[24];
    gcra_args(cl, g->cls[0], g->user, k0, l0, w0);
    const char *argv[10] = {"EVAL", LUA_GCRA, g->ncls == 2 ? "2" : "1", k0};
    int n = 4;
    if (g->ncls == 2) {
      gcra_args(cl, g->cls[1], g->user, k1, l1, w1);
      argv[n++] = k1;
    }
    argv[n++] = l0;
    argv[n++] = w0;
    if (g->ncls == 2) argv[n++] = l1, argv[n++] = w1;
    char *key = strdup(g->key);
    if (key == NULL) {
      gate_deliver(cl, g);
      return;
    }
    g->inflight = 1;
    redis_cmd(cl, gcra_cb, key, 0, n, argv, NULL);
  }
}

/* A member's message, in order behind its connection's earlier ones. */
void gate_push(struct cluster *cl, struct conn *c, const char *data, size_t len) {
  char key[32];
  gate_key(c, key, sizeof(key));
  struct gate *g = map_get(&cl->gates, key);
  if (g == NULL) {
    if ((g = calloc(1, sizeof(*g))) == NULL) return;
    g->c = c;
    snprintf(g->key, sizeof(g->key), "%s", key);
    if (map_put(&cl->gates, key, g) != 0) {
      free(g);
      return;
    }
  }
  struct gmsg *m = malloc(sizeof(*m) + len + 1);
  if (m == NULL) return;
  m->next = NULL;
  m->len = len;
  memcpy(m->data, data, len);
  m->data[len] = '\0';
  if (g->tail) g->tail->next = m;
  else g->head = m;
  g->tail = m;
  gate_pump(cl, g);
}

/* c ended: its held messages go with it. */
void gate_drop(struct cluster *cl, struct conn *c) {
  char key[32];
  gate_key(c, key, sizeof(key));
  struct gate *g = map_del(&cl->gates, key);
  if (g == NULL) return;
  while (g->head) {
    struct gmsg *m = g->head;
    g->head = m->next;
    free(m);
  }
  free(g);
}

/* The api_call verdict for calls counted already (allowed). */
void counted_verdict(struct cluster *cl, int on) {
  cl->api_verdict_on = on;
  memset(&cl->api_verdict, 0, sizeof(cl->api_verdict));
  cl->api_verdict.allowed = 1;
  cl->api_verdict.limit = cl->h->rl.rules[RATE_API_CALL].limit;
}

/* The shared api_call verdict came: the call goes on (here or to its
 * room's owner) with it. */
static void api_gcra_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  struct conn *c = fw_take(fw);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 4) {
    counted_verdict(cl, 1);
    cl->api_verdict.allowed = r->element[0]->integer == 1;
    if (!cl->api_verdict.allowed) cl->api_verdict.retry_after_ms = (uint64_t)r->element[2]->integer;
    else cl->api_verdict.remaining = (uint32_t)r->element[3]->integer;
  }
  route_request(c); /* Redis away: the local limiter answers */
  cl->api_verdict_on = 0;
  fw_done(c);
}

/* Every REST call that counts against api_call is counted first by one GCRA
 * script in Redis (rl:{class}:{user}, as the WebSocket limits), so a user
 * has one budget on all instances. */
void cluster_on_request(struct conn *c) {
  /* Files of a room owned elsewhere go to the owner first, uncounted: the
   * owner counts them as it counts its own (files_fwd.c). */
  if (ffwd_try(the_cluster, c, 0)) return;
  request_here(c);
}

void request_here(struct conn *c) {
  struct cluster *cl = the_cluster;
  char key[ID_MAX + 8];       /* a subject (ID_MAX) or "ip:" and an address (47) */
  if (cl == NULL || !cl->cmd_up || cl->h->rl.rules[RATE_API_CALL].limit == 0 || c->proxy) {
    route_request(c);
    return;
  }
  if (proxy_resolve(c) != 0) return; /* behind a trusted proxy: its client's address (or refused) */
  if (api_call_key(c, key, sizeof(key)) != 0) {
    route_request(c);
    return;
  }
  struct fwd_http *fw = fw_new(cl, c, "");
  if (fw == NULL) {
    route_request(c);
    return;
  }
  char k0[KEY_MAX], l0[16], w0[24];
  gcra_args(cl, RATE_API_CALL, key, k0, l0, w0);
  const char *argv[] = {"EVAL", LUA_GCRA, "1", k0, l0, w0};
  redis_cmd(cl, api_gcra_cb, fw, 0, 6, argv, NULL);
}

/* GET /webrtc/rate-limits/{class}/status: the caller's budget is the
 * shared one in Redis (the GCRA keys every instance counts in), read by one
 * script before the call is answered here as on one instance. */
static void peek_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  int on = 0;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
      r->element[1]->type == REDIS_REPLY_INTEGER) {
    on = 1;
    memset(&cl->peek, 0, sizeof(cl->peek));
    cl->peek.limit = cl->h->rl.rules[fw->peek_class].limit;
    cl->peek.remaining = (uint32_t)r->element[0]->integer;
    cl->peek.allowed = cl->peek.remaining > 0;
    cl->peek.reset_ms = (uint64_t)r->element[1]->integer;
    cl->peek_class = fw->peek_class;
    snprintf(cl->peek_user, sizeof(cl->peek_user), "%s", fw->peek_user);
  }
  cl->peek_on = on; /* Redis away: the local limiter answers */
  fw_dispatch_here(cl, fw);
  cl->peek_on = 0;
}

/* Returns 1 when c's call is a rate-limit status read that waits for Redis. */
int status_call(struct cluster *cl, struct conn *c, const char *url) {
  static const char pre[] = "/webrtc/rate-limits/";
  const char *name = url + sizeof(pre) - 1;
  size_t n = strcspn(name, "/?");
  char cname[40], sub[ID_MAX + 1];
  enum rate_class rc;
  if (n == 0 || n >= sizeof(cname) || strncmp(name + n, "/status", 7) != 0 ||
      (name[n + 7] != '\0' && name[n + 7] != '?'))
    return 0;
  memcpy(cname, name, n);
  cname[n] = '\0';
  if (ratelimit_class_parse(cname, &rc) != 0 || cl->h->rl.rules[rc].limit == 0 ||
      cl->h->rl.rules[rc].window_ms == 0 || api_request_subject(c, sub, sizeof(sub)) != 0)
    return 0; /* unknown, unlimited or unauthenticated: answered here as before */
  struct fwd_http *fw = fw_new(cl, c, "");
  if (fw == NULL) return 0;
  fw->peek_class = (int)rc;
  snprintf(fw->peek_user, sizeof(fw->peek_user), "%s", sub);
  char k0[KEY_MAX], l0[16], w0[24];
  gcra_args(cl, (int)rc, sub, k0, l0, w0);
  const char *argv[] = {"EVAL", LUA_GCRA_PEEK, "1", k0, l0, w0};
  redis_cmd(cl, peek_cb, fw, 0, 6, argv, NULL);
  return 1;
}
