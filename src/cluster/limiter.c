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
#include "net/http.h"
#include "net/proxy.h"
#include "room/command.h"
#include "room/msgtype.h"
#include "room/op.h"
#include "room/room.h"
#include "signal/signal.h"

/* The limiter seam (hub_limiter_ops) is synchronous; Redis is not. What a
 * member's message, a join that creates its room, or a REST call will
 * spend is counted first, atomically in Redis by Redis's clock (one
 * script: LUA_GCRA), and the message or call then runs as on one instance
 * with that count in force (struct charge): the limiter answers its checks
 * and peeks for that user and class from it. A class the run did not spend
 * (refused first for a missing permission, invalid input, the room there
 * after all) is given back at once (LUA_REFUND), so a refused call spends
 * nothing, as on one instance. Without Redis (an outage) the local limiter
 * answers. */

/* KEYS one TAT key per class; ARGV head, then limit, window_ms, cost per
 * class (cost 0: a peek, counting nothing). The first head classes are
 * all or nothing; each one after them is counted while the budget allows
 * (it stops at the first refused, and only when the head passed). Returns
 * per class {counted, remaining, retry_after_ms}: retry_after_ms > 0 for
 * the refused one (nothing of it counted); remaining is the budget left
 * after the count (a peek: before it). */
static const char LUA_GCRA[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local head = tonumber(ARGV[1]) local out = {} local new = {} local stop = #KEYS + 1 "
    "for i = 1, #KEYS do "
    "  local L = tonumber(ARGV[3 * i - 1]) local T = tonumber(ARGV[3 * i]) local n = tonumber(ARGV[3 * i + 1]) "
    "  local iv = T / L "
    "  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') if tat < now then tat = now end "
    "  local c = n if c == 0 then c = 1 end "
    "  local nt = tat + c * iv "
    "  if nt - now > T + 0.0001 then out[3 * i - 2] = 0 out[3 * i - 1] = 0 out[3 * i] = math.ceil(nt - T - now) "
    "    stop = i break end "
    "  out[3 * i - 2] = n out[3 * i] = 0 "
    "  if n == 0 then out[3 * i - 1] = math.floor((T - (tat - now)) / iv + 0.0001) "
    "  else out[3 * i - 1] = math.floor((T - (nt - now)) / iv + 0.0001) new[i] = nt end "
    "end "
    "for i = stop + 1, #KEYS do out[3 * i - 2] = 0 out[3 * i - 1] = 0 out[3 * i] = 0 end "
    "local last = stop - 1 "
    "if stop <= head then for i = 1, stop - 1 do out[3 * i - 2] = 0 end last = 0 end "
    "for i = 1, last do if new[i] then "
    "  redis.call('SET', KEYS[i], string.format('%.4f', new[i]), 'PX', math.ceil(new[i] - now) + 1000) end end "
    "return out";

/* KEYS one TAT key per class; ARGV limit, window_ms, units per class: the
 * units given back (counted by LUA_GCRA, not spent). */
static const char LUA_REFUND[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "for i = 1, #KEYS do "
    "  local L = tonumber(ARGV[3 * i - 2]) local T = tonumber(ARGV[3 * i - 1]) local n = tonumber(ARGV[3 * i]) "
    "  local nt = tonumber(redis.call('GET', KEYS[i]) or '0') - n * T / L "
    "  if nt <= now then redis.call('DEL', KEYS[i]) "
    "  else redis.call('SET', KEYS[i], string.format('%.4f', nt), 'PX', math.ceil(nt - now) + 1000) end "
    "end return 1";

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

struct gjoin {              /* a join that creates its room, waiting for room_create */
  char room[ID_MAX + 1];
  struct token_claims claims;
  int admitted, has_rt;
  char rt[80];
  uint64_t last_seq;
};

struct gmsg {
  struct gmsg *next;
  struct gjoin *join;       /* owned; NULL for a message */
  size_t len;
  char data[];
};

struct gate {
  struct conn *c;
  char key[32];
  struct gmsg *head, *tail;
  int inflight;
  struct charge ch;         /* the head's, while its count is in flight */
};

static int limited(const struct cluster *cl, int c) {
  return cl->h->rl.rules[c].limit != 0 && cl->h->rl.rules[c].window_ms != 0;
}

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

static void charge_add(struct charge *ch, int c, unsigned units) {
  if (ch->n >= CHARGE_MAX) return;
  ch->cls[ch->n] = c;
  ch->units[ch->n] = units;
  ch->n++;
}

/* One LUA_GCRA: api_key's api_call first (NULL: none), then ch's classes;
 * head as the script takes it. */
static void charge_send(struct cluster *cl, const char *api_key, const struct charge *ch, int head,
                        redisCallbackFn *fn, void *priv) {
  char keys[CHARGE_MAX + 1][KEY_MAX], lim[CHARGE_MAX + 1][16], win[CHARGE_MAX + 1][24], cost[CHARGE_MAX + 1][12];
  char nk[12], hd[12];
  const char *argv[4 + 5 * (CHARGE_MAX + 1)];
  int k = 0;
  if (api_key) {
    gcra_args(cl, RATE_API_CALL, api_key, keys[k], lim[k], win[k]);
    snprintf(cost[k], sizeof(cost[k]), "1");
    k++;
  }
  for (int i = 0; i < ch->n; i++, k++) {
    gcra_args(cl, ch->cls[i], ch->user, keys[k], lim[k], win[k]);
    snprintf(cost[k], sizeof(cost[k]), "%u", ch->units[i]);
  }
  snprintf(nk, sizeof(nk), "%d", k);
  snprintf(hd, sizeof(hd), "%d", head);
  int n = 0;
  argv[n++] = "EVAL";
  argv[n++] = LUA_GCRA;
  argv[n++] = nk;
  for (int i = 0; i < k; i++) argv[n++] = keys[i];
  argv[n++] = hd;
  for (int i = 0; i < k; i++) argv[n++] = lim[i], argv[n++] = win[i], argv[n++] = cost[i];
  redis_cmd(cl, fn, priv, 0, n, argv, NULL);
}

static long long elem_int(const redisReply *r, size_t i) {
  const redisReply *e = r->element[i];
  return e->type == REDIS_REPLY_INTEGER ? e->integer : 0;
}

/* ch's counts from a LUA_GCRA reply, its classes from element triple off. */
static void charge_fill(struct charge *ch, const redisReply *r, size_t off) {
  for (int i = 0; i < ch->n; i++) {
    size_t b = 3 * (off + (size_t)i);
    ch->counted[i] = (unsigned)elem_int(r, b);
    ch->remaining[i] = (uint32_t)elem_int(r, b + 1);
    ch->retry_ms[i] = (uint64_t)elem_int(r, b + 2);
    ch->refused[i] = ch->retry_ms[i] > 0;
    ch->used[i] = 0;
  }
}

/* What ch counted and its run did not spend goes back (one script). */
static void charge_settle(struct cluster *cl, const struct charge *ch) {
  char keys[CHARGE_MAX][KEY_MAX], lim[CHARGE_MAX][16], win[CHARGE_MAX][24], units[CHARGE_MAX][12], nk[12];
  const char *argv[3 + 4 * CHARGE_MAX];
  int k = 0;
  for (int i = 0; i < ch->n; i++) {
    if (ch->refused[i] || ch->counted[i] <= ch->used[i]) continue;
    gcra_args(cl, ch->cls[i], ch->user, keys[k], lim[k], win[k]);
    snprintf(units[k], sizeof(units[k]), "%u", ch->counted[i] - ch->used[i]);
    k++;
  }
  if (k == 0) return;
  snprintf(nk, sizeof(nk), "%d", k);
  int n = 0;
  argv[n++] = "EVAL";
  argv[n++] = LUA_REFUND;
  argv[n++] = nk;
  for (int i = 0; i < k; i++) argv[n++] = keys[i];
  for (int i = 0; i < k; i++) argv[n++] = lim[i], argv[n++] = win[i], argv[n++] = units[i];
  redis_cmd(cl, NULL, NULL, 0, n, argv, NULL);
}

void charge_begin(struct cluster *cl, const struct charge *ch) {
  cl->verdict = *ch;
  cl->verdict_on = 1;
}

void charge_end(struct cluster *cl) {
  if (!cl->verdict_on) return; /* none, or taken along by a forward (fw_new) */
  cl->verdict_on = 0;
  charge_settle(cl, &cl->verdict);
}

void charge_format(const struct charge *ch, char *out, size_t n) {
  size_t o = 0;
  out[0] = '\0';
  for (int i = 0; i < ch->n && o < n; i++)
    o += (size_t)snprintf(out + o, n - o, "%d %u %u %d %u %llu ", ch->cls[i], ch->units[i], ch->counted[i],
                          ch->refused[i], ch->remaining[i], (unsigned long long)ch->retry_ms[i]);
  if (o < n) snprintf(out + o, n - o, "|%s", ch->user);
}

int charge_parse(struct charge *ch, const char *s) {
  memset(ch, 0, sizeof(*ch));
  const char *bar = strchr(s, '|');
  if (bar == NULL) return 0;
  const char *p = s;
  while (p < bar && ch->n < CHARGE_MAX) {
    int c, refused;
    unsigned units, counted, rem;
    unsigned long long retry;
    int used = 0;
    if (sscanf(p, "%d %u %u %d %u %llu %n", &c, &units, &counted, &refused, &rem, &retry, &used) != 6 || used == 0 ||
        c < 0 || c >= RATE__COUNT)
      return 0;
    int i = ch->n++;
    ch->cls[i] = c, ch->units[i] = units, ch->counted[i] = counted, ch->refused[i] = refused;
    ch->remaining[i] = rem, ch->retry_ms[i] = retry;
    p += used;
  }
  snprintf(ch->user, sizeof(ch->user), "%s", bar + 1);
  return ch->n > 0;
}

/* The entry of the charge in force for key's class c, or -1. */
static int charge_find(struct cluster *cl, const char *key, enum rate_class c) {
  if (!cl->verdict_on || strcmp(key, cl->verdict.user) != 0) return -1;
  for (int i = 0; i < cl->verdict.n; i++)
    if (cl->verdict.cls[i] == (int)c) return i;
  return -1;
}

static void redis_limiter_check(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                                struct ratelimit_result *out) {
  struct cluster *cl = impl;
  if (c == RATE_API_CALL && cl->api_verdict_on) {
    *out = cl->api_verdict;
    return;
  }
  int i = charge_find(cl, key, c);
  struct charge *ch = &cl->verdict;
  if (i >= 0 && (ch->refused[i] || ch->used[i] < ch->counted[i])) {
    memset(out, 0, sizeof(*out));
    out->limit = cl->h->rl.rules[c].limit;
    if (ch->refused[i]) {
      out->retry_after_ms = ch->retry_ms[i];
      return;
    }
    ch->used[i]++;
    out->allowed = 1;
    out->remaining = ch->remaining[i] + (ch->counted[i] - ch->used[i]);
    return;
  }
  /* Not counted in Redis (Redis away, or more than was counted): local. */
  ratelimit_check(&cl->h->rl, key, c, now_ms, out);
}

static void redis_limiter_peek(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                               struct ratelimit_result *out) {
  struct cluster *cl = impl;
  if (cl->peek_on && (int)c == cl->peek_class && strcmp(key, cl->peek_user) == 0) {
    *out = cl->peek;
    return;
  }
  int i = charge_find(cl, key, c);
  struct charge *ch = &cl->verdict;
  if (i >= 0 && (ch->refused[i] || ch->units[i] == 0 || ch->counted[i] > 0)) {
    memset(out, 0, sizeof(*out));
    out->limit = cl->h->rl.rules[c].limit;
    if (ch->refused[i]) {
      out->retry_after_ms = ch->retry_ms[i];
      return;
    }
    out->allowed = 1;
    out->remaining = ch->remaining[i] + (ch->counted[i] - ch->used[i]); /* what a check would still find */
    return;
  }
  ratelimit_peek(&cl->h->rl, key, c, now_ms, out);
}

const struct hub_limiter_ops redis_limiter = {"redis", redis_limiter_check, redis_limiter_peek};

/* What a member's message spends (its head count: websocket_message and
 * its type's class, all or nothing), as signal_on_message will: the type's
 * class only when the member holds the type's permission (checked first
 * there), and room_create for the breakout rooms a breakout-room-create
 * asks for (spent after the others, in the handler). A binary frame, a
 * waiter's or a closing connection's message spends nothing. */
static int message_charge(struct cluster *cl, struct conn *c, const struct gmsg *m, struct charge *ch) {
  memset(ch, 0, sizeof(*ch));
  if (c->part == NULL || (m->len == 1 && m->data[0] == BINARY_MARK[0])) return 0;
  snprintf(ch->user, sizeof(ch->user), "%s", c->part->user_id);
  if (limited(cl, RATE_WEBSOCKET_MESSAGE)) charge_add(ch, RATE_WEBSOCKET_MESSAGE, 1);
  json_t *j = json_loadb(m->data, m->len, JSON_DISABLE_EOF_CHECK, NULL);
  const char *type = json_string_value(json_object_get(j, "type"));
  const struct sig_type *t = type ? signal_type_find(type) : NULL;
  int head = ch->n;
  if (t) {
    const struct command *cmd = command_get(t->cmd);
    struct actor a = op_actor_of(c->part);
    int permitted = !cmd->perm || a.admin || (a.perms & cmd->perm) == cmd->perm;
    if (permitted && cmd->rate != COMMAND_NO_RATE && cmd->rate != RATE_WEBSOCKET_MESSAGE && limited(cl, cmd->rate))
      charge_add(ch, cmd->rate, 1);
    head = ch->n;
    if (permitted && t->id == MSG_BREAKOUT_ROOM_CREATE && limited(cl, RATE_ROOM_CREATE)) {
      size_t k = op_breakout_units(json_object_get(j, "payload"));
      if (k) charge_add(ch, RATE_ROOM_CREATE, (unsigned)(k < ROOM_MAX_BREAKOUTS ? k : ROOM_MAX_BREAKOUTS));
    }
  }
  json_decref(j);
  return head;
}

static void gate_pump(struct cluster *cl, struct gate *g);

/* A held join leaves the gate (run or dropped). */
static void gjoin_done(struct cluster *cl, const struct gjoin *j) {
  struct croom *cr = croom_get(cl, j->room, 0);
  if (cr && cr->gated_joins > 0) cr->gated_joins--;
}

/* Runs g's first message or join, with ch in force (NULL: none). */
static void gate_deliver(struct cluster *cl, struct gate *g, const struct charge *ch) {
  struct gmsg *m = g->head;
  g->head = m->next;
  if (g->head == NULL) g->tail = NULL;
  struct conn *c = g->c;
  if (ch) charge_begin(cl, ch);
  if (m->join) {
    struct gjoin *j = m->join;
    gjoin_done(cl, j);
    cl->joining = 1;
    owner_join(cl, c, j->room, &j->claims, j->admitted, j->has_rt ? j->rt : NULL, j->last_seq, NULL);
    cl->joining = 0;
  } else if (m->len == 1 && m->data[0] == BINARY_MARK[0]) {
    signal_on_binary(c);
  } else {
    signal_on_message(c, m->data, m->len);
  }
  if (ch) charge_end(cl);
  free(m->join);
  free(m);
}

static void gcra_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  char key[32];
  snprintf(key, sizeof(key), "%s", (const char *)priv);
  free(priv);
  struct gate *g = cl ? map_get(&cl->gates, key) : NULL;
  if (g == NULL) return;
  g->inflight = 0;
  redisReply *r = reply;
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 * (size_t)g->ch.n && g->head) {
    struct charge ch = g->ch;
    charge_fill(&ch, r, 0);
    gate_deliver(cl, g, &ch);
  } else if (g->head) {
    gate_deliver(cl, g, NULL); /* Redis is away: the local limiter answers */
  }
  if (map_get(&cl->gates, key) == g) gate_pump(cl, g);
}

static void gate_pump(struct cluster *cl, struct gate *g) {
  char key[32];
  snprintf(key, sizeof(key), "%s", g->key); /* g may be freed by what it runs (a remote closed) */
  while (g->head && !g->inflight) {
    struct gmsg *m = g->head;
    int head = 0;
    if (m->join) {
      memset(&g->ch, 0, sizeof(g->ch));
      snprintf(g->ch.user, sizeof(g->ch.user), "%s", m->join->claims.sub);
      charge_add(&g->ch, RATE_ROOM_CREATE, 1);
    } else {
      head = message_charge(cl, g->c, m, &g->ch);
    }
    if (g->ch.n == 0 || !cl->cmd_up) {
      gate_deliver(cl, g, NULL);
      if (map_get(&cl->gates, key) != g) return;
      continue;
    }
    char *k = strdup(key);
    if (k == NULL) {
      gate_deliver(cl, g, NULL);
      return;
    }
    g->inflight = 1;
    charge_send(cl, NULL, &g->ch, head, gcra_cb, k);
  }
}

static void gate_key(const struct conn *c, char *out, size_t n) { snprintf(out, n, "%p", (const void *)c); }

static struct gate *gate_of(struct cluster *cl, struct conn *c) {
  char key[32];
  gate_key(c, key, sizeof(key));
  struct gate *g = map_get(&cl->gates, key);
  if (g) return g;
  if ((g = calloc(1, sizeof(*g))) == NULL) return NULL;
  g->c = c;
  snprintf(g->key, sizeof(g->key), "%s", key);
  if (map_put(&cl->gates, key, g) != 0) {
    free(g);
    return NULL;
  }
  return g;
}

static void gate_append(struct cluster *cl, struct gate *g, struct gmsg *m) {
  if (g->tail) g->tail->next = m;
  else g->head = m;
  g->tail = m;
  gate_pump(cl, g);
}

/* A member's message, in order behind its connection's earlier ones. */
void gate_push(struct cluster *cl, struct conn *c, const char *data, size_t len) {
  struct gate *g = gate_of(cl, c);
  struct gmsg *m = g ? malloc(sizeof(*m) + len + 1) : NULL;
  if (m == NULL) return;
  m->next = NULL;
  m->join = NULL;
  m->len = len;
  memcpy(m->data, data, len);
  m->data[len] = '\0';
  gate_append(cl, g, m);
}

int join_gate(struct cluster *cl, struct conn *c, const char *room_id, const struct token_claims *claims,
              int admitted, const char *rt, uint64_t last_seq, const char *grant) {
  if (cl->joining || (grant && grant[0]) || admitted || !cl->cmd_up || !limited(cl, RATE_ROOM_CREATE) ||
      hub_room_find(cl->h, room_id) || (claims->room[0] && strcmp(claims->room, room_id) != 0))
    return 0; /* joins now: nothing to count (or refused before room_create) */
  struct gate *g = gate_of(cl, c);
  struct gmsg *m = g ? calloc(1, sizeof(*m) + 1) : NULL;
  struct gjoin *j = m ? calloc(1, sizeof(*j)) : NULL;
  if (j == NULL) {
    free(m);
    return 0;
  }
  snprintf(j->room, sizeof(j->room), "%s", room_id);
  j->claims = *claims;
  j->admitted = admitted;
  j->has_rt = rt != NULL;
  if (rt) snprintf(j->rt, sizeof(j->rt), "%s", rt);
  j->last_seq = last_seq;
  m->join = j;
  struct croom *cr = croom_get(cl, room_id, 0);
  if (cr) cr->gated_joins++;
  gate_append(cl, g, m);
  return 1;
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
    if (m->join) gjoin_done(cl, m->join);
    free(m->join);
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

/* The shared count came (api_call, the class the call spends): the call
 * goes on (here or to its room's owner) with it. */
static void api_gcra_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  size_t api = (size_t)fw->api_asked;
  struct charge ch = fw->charge;
  int has = fw->has_charge;
  struct conn *c = fw_take(fw);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 * (api + (size_t)ch.n)) {
    if (api) {
      counted_verdict(cl, 1);
      cl->api_verdict.allowed = elem_int(r, 2) == 0;
      if (!cl->api_verdict.allowed) cl->api_verdict.retry_after_ms = (uint64_t)elem_int(r, 2);
      else cl->api_verdict.remaining = (uint32_t)elem_int(r, 1);
    }
    if (has) {
      charge_fill(&ch, r, api);
      charge_begin(cl, &ch);
    }
  }
  route_request(c); /* Redis away: the local limiter answers */
  cl->api_verdict_on = 0;
  charge_end(cl); /* what the call did not spend (unless a forward took it along) */
  fw_done(c);
}

/* Every REST call that counts against api_call, or spends a per-user class
 * (api_request_charge), is counted first by one GCRA script in Redis
 * (rl:{class}:{user}, as the WebSocket limits): api_call first, then the
 * class, so that a user has one budget on all instances. */
void cluster_on_request(struct conn *c) {
  /* Files of a room owned elsewhere go to the owner first, uncounted: the
   * owner counts them as it counts its own (files_fwd.c). */
  if (ffwd_try(the_cluster, c, 0)) return;
  request_here(c);
}

void request_here(struct conn *c) {
  struct cluster *cl = the_cluster;
  char key[ID_MAX + 8];       /* a subject (ID_MAX) or "ip:" and an address (47) */
  if (cl == NULL || !cl->cmd_up || c->proxy) {
    route_request(c);
    return;
  }
  if (proxy_resolve(c) != 0) return; /* behind a trusted proxy: its client's address (or refused) */
  int api = limited(cl, RATE_API_CALL) && api_call_key(c, key, sizeof(key)) == 0;
  struct charge ch;
  memset(&ch, 0, sizeof(ch));
  enum rate_class rc;
  unsigned units;
  if (api_request_charge(c, ch.user, sizeof(ch.user), &rc, &units)) charge_add(&ch, rc, units);
  if (!api && ch.n == 0) {
    route_request(c);
    return;
  }
  struct fwd_http *fw = fw_new(cl, c, "");
  if (fw == NULL) {
    route_request(c);
    return;
  }
  fw->api_asked = api;
  fw->charge = ch;
  fw->has_charge = ch.n > 0;
  charge_send(cl, api ? key : NULL, &ch, api, api_gcra_cb, fw);
}

/* The 503 of refuse_counted, or the 429 api_dispatch gives a call over its
 * api_call budget (the verdict in force, or the count here when Redis
 * did not count it). */
static void refuse_answer(struct cluster *cl, struct conn *c, const char *detail) {
  char key[ID_MAX + 8];
  if (!cl->api_verdict_on && limited(cl, RATE_API_CALL) && api_call_key(c, key, sizeof(key)) == 0) {
    struct ratelimit_result rr;
    hub_rate_check(cl->h, key, RATE_API_CALL, &rr); /* as api_dispatch counts it with Redis away */
    counted_verdict(cl, 1);
    cl->api_verdict = rr;
  }
  if (cl->api_verdict_on && !cl->api_verdict.allowed) api_dispatch(c); /* 429, the same body as any call's */
  else http_reply_error(c, API_ERR_SERVICE_UNAVAILABLE, detail, LEASE_MS);
  cl->api_verdict_on = 0;
}

static void refuse_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  const char *detail = fw->refuse;
  struct conn *c = fw_take(fw);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
    counted_verdict(cl, 1);
    cl->api_verdict.allowed = elem_int(r, 2) == 0;
    if (!cl->api_verdict.allowed) cl->api_verdict.retry_after_ms = (uint64_t)elem_int(r, 2);
    else cl->api_verdict.remaining = (uint32_t)elem_int(r, 1);
  }
  refuse_answer(cl, c, detail);
  fw_done(c);
}

void refuse_counted(struct conn *c, const char *detail) {
  struct cluster *cl = the_cluster;
  char key[ID_MAX + 8];
  struct fwd_http *fw = NULL;
  if (cl->cmd_up && !c->proxy && limited(cl, RATE_API_CALL) && api_call_key(c, key, sizeof(key)) == 0 &&
      (fw = fw_new(cl, c, "")) != NULL) {
    struct charge ch;
    memset(&ch, 0, sizeof(ch));
    fw->refuse = detail;
    fw->api_asked = 1;
    charge_send(cl, key, &ch, 1, refuse_cb, fw);
    return;
  }
  refuse_answer(cl, c, detail);
  fw_done(c);
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
