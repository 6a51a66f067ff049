/* REST on any instance: a call for a room owned elsewhere goes to the
 * owner's inbox and its answer comes back (struct fwd_http holds the
 * request meanwhile); a call whose owner died is sent again or answered
 * 503; POST /webrtc/rooms takes the new room's lease first; GET
 * /webrtc/rooms adds the views other owners publish (rooms_publish). */
#define LOG_MODULE "cluster"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "lib/ids.h"
#include "net/http.h"
#include "room/durable.h"
#include "room/room.h"

/* KEYS rooms, roomview; ARGV ttl, id, view, id, view, ... */
static const char LUA_ROOMS_PUT[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "for i = 2, #ARGV, 2 do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) "
    "  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end return 1";

/* KEYS rooms, roomview; ARGV "inst:". Forgets expired entries, returns the
 * views of rooms whose lease is held by another instance. */
static const char LUA_ROOMS_LIST[] =
    "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now) "
    "for _, id in ipairs(gone) do redis.call('HDEL', KEYS[2], id) end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "local out = {} "
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
    "  local v = redis.call('GET', 'huddle:lease:' .. id) "
    "  if v and string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then "
    "    local j = redis.call('HGET', KEYS[2], id) if j then out[#out + 1] = j end end "
    "end return out";

/* KEYS hb:{owner}, inbox:{owner}; ARGV the forwarded call's inbox entry id
 * ("" unknown). Returns {alive, removed}: with the owner's heartbeat gone,
 * removed is 1 when the entry was still in its inbox, i.e. the owner never
 * read it (an owner trims its inbox up to a REST call before running it:
 * inbox_mark_read); it is deleted, so that it never will be. Never from a
 * live owner: its XREAD reply may hold the entry already. */
static const char LUA_FWD_CHECK[] =
    "local alive = redis.call('EXISTS', KEYS[1]) "
    "if alive == 1 or ARGV[1] == '' then return {alive, 0} end "
    "return {0, redis.call('XDEL', KEYS[2], ARGV[1])}";

static void fw_unavailable(struct cluster *cl, struct fwd_http *fw, const char *detail);
static void lookup_cb(redisAsyncContext *ac, void *reply, void *priv);

/* The owner's answer (fields f) to the forwarded REST call id: written to
 * the client, if it is still there. */
void fw_answer(struct cluster *cl, const char *id, const redisReply *f) {
  struct fwd_http *fw = map_del(&cl->http_wait, id);
  const redisReply *d = reply_field(f, "d");
  if (fw == NULL) return;
  /* The client may have gone while the owner answered. */
  struct conn *live = cl->srv->conns;
  while (live && live != fw->c) live = live->next;
  if (live == NULL || live->cluster != fw) fw->c = NULL;
  if (fw->c && reply_field_int(f, "mv") == 1) {
    /* The instance no longer owned the room when it read the call (it
     * never ran it): the owner is looked up again, a few times at most. */
    if (++fw->moves > LINK_MOVES_MAX) {
      fw_unavailable(cl, fw, "the room moved between instances; the call did not take effect");
      return;
    }
    cl->st.forwards_retried++;
    fw->owner[0] = '\0';
    fw->id = ++cl->next_id;
    char lease[KEY_MAX];
    key_of(lease, "lease", fw->room);
    const char *argv[] = {"GET", lease};
    redis_cmd(cl, lookup_cb, fw, 0, 2, argv, NULL);
    return;
  }
  if (fw->c) {
    struct conn *c = fw->c;
    http_stream_set(c, NULL, NULL); /* the request is answered here, not aborted */
    c->cluster = NULL;
    if (d && d->type == REDIS_REPLY_STRING && d->len) conn_write_copy(c, d->str, d->len);
    /* Kept alive when the owner's answer says so (it was told what the
     * client asked for); the next pipelined request goes on after it. */
    if (d == NULL || d->type != REDIS_REPLY_STRING || !answer_keeps(d->str, d->len) || c->srv->shutting_down)
      conn_end(c);
    http_request_done(c);
  }
  buf_free(&fw->url), buf_free(&fw->auth), buf_free(&fw->ctype), buf_free(&fw->body);
  free(fw);
}

/* The forward still waiting under the call id priv carries, or NULL
 * (answered meanwhile). */
static struct fwd_http *fw_waiting(struct cluster *cl, void *priv) {
  char id[24];
  snprintf(id, sizeof(id), "%" PRIu64, (uint64_t)(uintptr_t)priv);
  return cl ? map_get(&cl->http_wait, id) : NULL;
}

/* The forward's inbox entry id (for LUA_FWD_CHECK). priv: the call's id. */
static void fwd_added_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  struct fwd_http *fw = fw_waiting(cl, priv);
  if (fw && r && r->type == REDIS_REPLY_STRING) reply_str(r, fw->entry, sizeof(fw->entry));
}

static void http_forward(struct cluster *cl, struct fwd_http *fw, const char *owner) {
  char m[8], id[24];
  snprintf(m, sizeof(m), "%d", fw->method);
  snprintf(id, sizeof(id), "%" PRIu64, fw->id);
  /* What the client asked for: keep-alive (HTTP/1.1 without "Connection:
   * close", or 1.0 with "keep-alive"), as http_reply would decide here. */
  int ka = fw->c && fw->c->req->complete && http_should_keep_alive(&fw->c->req->parser);
  char ch[256] = "";
  if (fw->has_charge) charge_format(&fw->charge, ch, sizeof(ch)); /* counted here, spent (or given back) there */
  const char *fv[] = {"k", "http", "i", cl->inst, "id", id, "room", fw->room, "m", m,
                      "url", fw->url.data ? fw->url.data : "", "auth", fw->auth.data ? fw->auth.data : "",
                      "ct", fw->ctype.data ? fw->ctype.data : "", "rc", fw->counted ? "1" : "0",
                      "ka", ka ? "1" : "0", "ch", ch, "body", fw->body.data ? fw->body.data : ""};
  size_t fl[24];
  for (int i = 0; i < 24; i++) fl[i] = i == 23 ? fw->body.len : strlen(fv[i]);
  map_put(&cl->http_wait, id, fw);
  snprintf(fw->owner, sizeof(fw->owner), "%s", owner);
  fw->entry[0] = '\0';
  fw->sent_ms = now_ms(cl);
  fw->unsent = 0;
  /* The entry id is wanted only when the XADD goes out now (a held command
   * has no callback); the priv is the id itself, nothing to free. */
  if (cl->cmd_up && cl->pend_head == NULL)
    inbox_send_cb(cl, owner, fwd_added_cb, (void *)(uintptr_t)fw->id, 24, fv, fl);
  else
    inbox_send(cl, owner, 24, fv, fl);
  cl->st.forwarded_out++;
}

/* A call waiting for Redis holds its request (http_stream_set without a
 * body: the HTTP layer keeps the request and reads nothing more until
 * http_request_done), so it is answered in order and the connection stays
 * kept alive. The stream's on_abort tells that the client went away. */
static void fw_abort(void *data) {
  struct fwd_http *fw = data;
  fw->c = NULL;
}

static const struct http_stream fw_stream = {NULL, NULL, fw_abort, NULL};

static void fwd_free(struct fwd_http *fw) {
  if (fw->c && fw->c->req->stream_data == fw) http_stream_set(fw->c, NULL, NULL);
  if (fw->c && fw->c->cluster == fw) fw->c->cluster = NULL;
  buf_free(&fw->url), buf_free(&fw->auth), buf_free(&fw->ctype), buf_free(&fw->body);
  free(fw);
}

/* 1 while fw's connection still waits for its answer; otherwise frees fw
 * (the client went away) and returns 0. */
int fw_keep(struct cluster *cl, struct fwd_http *fw) {
  if (cl != NULL && fw->c != NULL && !fw->c->closing && !fw->c->ending) return 1;
  fwd_free(fw);
  return 0;
}

/* Takes c's request back from fw (freed): the caller answers it now. */
struct conn *fw_take(struct fwd_http *fw) {
  struct conn *c = fw->c;
  fwd_free(fw);
  return c;
}

/* The end of a call answered after the request handler returned: the next
 * request on the connection goes on, unless the answer is itself waiting
 * (a forward, a lookup) or streamed (a download). */
void fw_done(struct conn *c) {
  if (c->req->stream == NULL) http_request_done(c);
}

/* Answers fw's call here, as a single instance would. Frees fw. */
void fw_dispatch_here(struct cluster *cl, struct fwd_http *fw) {
  int counted = fw->counted, has = fw->has_charge;
  struct charge ch = fw->charge;
  struct conn *c = fw_take(fw);
  if (counted) counted_verdict(cl, 1);
  if (has) charge_begin(cl, &ch);
  api_dispatch(c);
  cl->api_verdict_on = 0;
  charge_end(cl);
  fw_done(c);
}

static void fw_park(struct cluster *cl, struct fwd_http *fw);

static void lookup_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  char val[64] = "";
  if (r && r->type == REDIS_REPLY_STRING) reply_str(r, val, sizeof(val));
  char owner[32];
  if (lease_parse(val, owner, sizeof(owner), NULL) == 0 && !lease_held_by(val, cl->inst)) {
    /* A call taken back from a dead owner whose lease has not expired yet:
     * it waits for the takeover. */
    if (fw->owner[0] && strcmp(owner, fw->owner) == 0) fw_park(cl, fw);
    else http_forward(cl, fw, owner);
    return;
  }
  /* The lease is ours but the room is not rebuilt yet: wait for it. */
  struct croom *cr = val[0] && fw->room[0] ? croom_get(cl, fw->room, 0) : NULL;
  if (cr && (cr->acquiring || cr->rebuilding)) {
    fw_park(cl, fw);
    return;
  }
  /* Answer here, as a single instance would (the room is not live anywhere,
   * or this instance took it over). */
  fw_dispatch_here(cl, fw);
}

/* Forwarded calls whose owner died: a forwarded call is answered by the
 * owner through our inbox. If the owner dies first, nothing would answer it
 * until the HTTP header timeout closed the client's connection. Every tick,
 * calls waiting FWD_CHECK_MS or more are checked (LUA_FWD_CHECK): with the
 * owner's heartbeat gone, a call is sent again through a fresh lookup of the
 * lease (a new id: a late answer of the old owner is ignored) when that is
 * safe: a GET or HEAD, or a call the owner never read (its entry was still
 * in the owner's inbox, now deleted). Otherwise, or when no owner answered
 * within the bound (a share of the header timeout, so the client hears
 * before the timeout closes its connection), the client gets 503
 * SERVICE_UNAVAILABLE with a retry hint. */

/* A call taken back, waiting for the lease of its dead owner to expire or
 * for this instance's rebuild: checked again at the next tick. */
static void fw_park(struct cluster *cl, struct fwd_http *fw) {
  char id[24];
  snprintf(id, sizeof(id), "%" PRIu64, fw->id);
  fw->unsent = 1;
  fw->sent_ms = 0; /* checked at the next tick */
  map_put(&cl->http_wait, id, fw);
}

/* How long a forwarded call may wait for an answer: the header timeout
 * (which would close the client's connection) less a margin of two ticks,
 * so the 503 comes first. */
static uint64_t fw_bound_ms(const struct cluster *cl) {
  uint64_t t = (uint64_t)cl->srv->cfg->header_timeout_ms;
  return t > 4 * TIMER_MS ? t - 2 * TIMER_MS : t / 2;
}

static void fw_unavailable(struct cluster *cl, struct fwd_http *fw, const char *detail) {
  log_warn("forward_unanswered room=%s owner=%s", fw->room, fw->owner);
  cl->st.forwards_unanswered++;
  struct conn *c = fw_take(fw);
  http_reply_error(c, API_ERR_SERVICE_UNAVAILABLE, detail, LEASE_MS);
  fw_done(c);
}

static void fwd_check_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  struct fwd_http *fw = fw_waiting(cl, priv);
  if (fw == NULL) return; /* answered meanwhile */
  fw->checking = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_INTEGER ||
      r->element[1]->type != REDIS_REPLY_INTEGER)
    return; /* Redis away: checked again */
  char id[24];
  snprintf(id, sizeof(id), "%" PRIu64, fw->id);
  map_del(&cl->http_wait, id);
  if (!fw_keep(cl, fw)) return;
  int alive = r->element[0]->integer == 1;
  if (r->element[1]->integer == 1) fw->unsent = 1;
  int safe = fw->unsent || fw->method == HTTP_GET || fw->method == HTTP_HEAD;
  if (fw->last_check) {
    fw_unavailable(cl, fw, fw->unsent ? "the room's instance did not take the call in time; it did not take effect"
                   : alive ? "the room's instance did not answer in time; the call may have taken effect"
                   : "the room's instance is gone; the call may have taken effect");
    return;
  }
  if (alive) {
    map_put(&cl->http_wait, id, fw); /* still working on it */
    return;
  }
  if (!safe) {
    fw_unavailable(cl, fw, "the room's instance is gone after it received the call; the call may have taken effect");
    return;
  }
  /* Resolve the owner again and send it there (a new id). */
  cl->st.forwards_retried++;
  fw->id = ++cl->next_id;
  char lease[KEY_MAX];
  key_of(lease, "lease", fw->room);
  const char *argv[] = {"GET", lease};
  redis_cmd(cl, lookup_cb, fw, 0, 2, argv, NULL);
}

struct fw_scan { struct ptrvec due; uint64_t now, bound; };

static void collect_fw(const char *k, void *v, void *arg) {
  struct fw_scan *fs = arg;
  struct fwd_http *fw = v;
  if (!fw->checking && (fw->owner[0] || fw->unsent) &&
      (fs->now - fw->sent_ms >= FWD_CHECK_MS || fs->now - fw->first_ms >= fs->bound))
    ptrvec_push(k, fw, &fs->due);
}

/* Every forwarded call due for a check (the checks' answers change
 * http_wait, and a call not collected for want of memory is due again at
 * the next tick). */
void fwd_check(struct cluster *cl) {
  struct fw_scan fs;
  memset(&fs, 0, sizeof(fs));
  fs.now = now_ms(cl);
  fs.bound = fw_bound_ms(cl);
  map_each(&cl->http_wait, collect_fw, &fs);
  if (fs.due.missed) log_warn("fwd_check_short calls=%zu missed=%zu reason=\"out of memory\"", fs.due.n, fs.due.missed);
  for (size_t i = 0; i < fs.due.n; i++) {
    struct fwd_http *fw = fs.due.v[i];
    char hb[KEY_MAX], inbox[KEY_MAX];
    key_of(hb, "hb", fw->owner);
    key_of(inbox, "inbox", fw->owner);
    fw->last_check = fs.now - fw->first_ms >= fs.bound;
    const char *argv[] = {"EVAL", LUA_FWD_CHECK, "2", hb, inbox, fw->unsent ? "" : fw->entry};
    fw->checking = 1;
    redis_cmd(cl, fwd_check_cb, (void *)(uintptr_t)fw->id, 0, 6, argv, NULL);
  }
  ptrvec_free(&fs.due);
}

/* Rooms made here by POST /webrtc/rooms: this instance claims their lease,
 * so that joins and REST calls on other instances come to it. */
void claim_local(const char *k, void *v, void *arg) {
  struct cluster *cl = arg;
  (void)v;
  struct croom *cr = croom_get(cl, k, 1);
  if (cr && !cr->owned && !cr->acquiring && !cr->watching) croom_resolve(cl, cr);
}

/* POST /webrtc/rooms: the new room's lease is taken first (set if absent,
 * the ACQUIRE script), so two creations of one id through two instances
 * make one room; a room live elsewhere is ROOM_ALREADY_EXISTS. */
/* POST /webrtc/rooms answered here once the lease is known (taken: the
 * room is live elsewhere). */
static void create_here(struct cluster *cl, struct fwd_http *fw, int taken) {
  char room[ID_MAX + 1];
  snprintf(room, sizeof(room), "%s", fw->room);
  cl->taken = taken ? room : NULL;
  fw_dispatch_here(cl, fw);
  cl->taken = NULL;
  map_each(&cl->h->rooms, claim_local, cl);
  room_publish_now(cl, room);
}

static void create_refreshed(void *arg) {
  struct fwd_http *fw = arg;
  struct cluster *cl = the_cluster;
  if (fw_keep(cl, fw)) create_here(cl, fw, 0);
}

/* POST /webrtc/rooms: the new room's lease is taken first (set if absent,
 * the ACQUIRE script), so two creations of one id through two instances
 * make one room; a room live elsewhere is ROOM_ALREADY_EXISTS. */
static void create_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  int taken = 0;
  char holder[32] = "";
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
    taken = !(r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1);
    char val[64] = "";
    if (taken && reply_str(r->element[1], val, sizeof(val)) == 0) lease_parse(val, holder, sizeof(holder), NULL);
  }
  if (cl) {
    /* The lease is ours (or someone else's) as after a join's ACQUIRE. */
    char *id = strdup(fw->room);
    struct croom *cr = croom_get(cl, fw->room, 0);
    if (id) acquire_cb(ac, reply, id);
    else if (cr) cr->acquiring = 0;
  }
  if (!fw_keep(cl, fw)) return;
  if (taken && holder[0] && strcmp(holder, cl->inst) != 0) {
    /* The lease is another instance's: that instance alone knows whether
     * the room is live there (ROOM_ALREADY_EXISTS) or ended a moment ago
     * and not released yet (made there again, under its lease). */
    http_forward(cl, fw, holder);
    return;
  }
  /* With a database the instances share, the room's restore data is read
   * again first (as for a join: takeover.c fresh_room). */
  if (!taken && durable_room_refresh(cl->h, fw->room, create_refreshed, fw) == 0) return;
  create_here(cl, fw, taken);
}

/* GET /webrtc/rooms: the views the owners keep in Redis, then the list. */
static void list_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct fwd_http *fw = priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (!fw_keep(cl, fw)) return;
  json_t *views = json_array();
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    json_t *v = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
    if (json_is_object(v)) json_array_append(views, v);
    json_decref(v);
  }
  cl->listing = views;
  fw_dispatch_here(cl, fw);
  cl->listing = NULL;
  json_decref(views);
}

struct fwd_http *fw_new(struct cluster *cl, struct conn *c, const char *room) {
  struct fwd_http *fw = calloc(1, sizeof(*fw));
  if (fw == NULL) return NULL;
  const char *url = c->req->url.data ? c->req->url.data : "";
  fw->cl = cl;
  fw->c = c;
  fw->id = ++cl->next_id;
  fw->first_ms = now_ms(cl);
  snprintf(fw->room, sizeof(fw->room), "%s", room);
  fw->method = c->req->parser.method;
  buf_append(&fw->url, url, c->req->url.len);
  if (c->req->hdr[HDR_AUTHORIZATION].len)
    buf_append(&fw->auth, c->req->hdr[HDR_AUTHORIZATION].data, c->req->hdr[HDR_AUTHORIZATION].len);
  if (c->req->hdr[HDR_CONTENT_TYPE].len)
    buf_append(&fw->ctype, c->req->hdr[HDR_CONTENT_TYPE].data, c->req->hdr[HDR_CONTENT_TYPE].len);
  if (c->req->body.len) buf_append(&fw->body, c->req->body.data, c->req->body.len);
  fw->counted = cl->api_verdict_on && cl->api_verdict.allowed;
  if (cl->verdict_on) {
    /* The class counted for this call goes along: whoever runs it spends
     * it or gives it back. */
    fw->charge = cl->verdict;
    fw->has_charge = 1;
    cl->verdict_on = 0;
  }
  c->cluster = fw; /* an HTTP conn's slot: its pending call */
  http_stream_set(c, &fw_stream, fw);
  return fw;
}

/* Returns 1 when the call waits for Redis (POST or GET /webrtc/rooms), 0
 * when it is answered as before. */
static int rooms_call(struct cluster *cl, struct conn *c) {
  if (c->req->parser.method == HTTP_GET) {
    struct fwd_http *fw = fw_new(cl, c, "");
    if (fw == NULL) return 0;
    char rooms[KEY_MAX], views[KEY_MAX], prefix[40];
    key_of(rooms, "rooms", "");
    key_of(views, "roomview", "");
    snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
    const char *argv[] = {"EVAL", LUA_ROOMS_LIST, "2", rooms, views, prefix};
    redis_cmd(cl, list_cb, fw, 0, 6, argv, NULL);
    return 1;
  }
  /* The room id of the body; anything malformed is the API's to refuse. */
  json_t *body = c->req->body.len ? json_loadb(c->req->body.data, c->req->body.len, 0, NULL) : NULL;
  json_t *jid = json_object_get(body, "room_id");
  const char *id = json_string_value(jid);
  int ok = id && id_valid(id, json_string_length(jid)) && hub_room_find(cl->h, id) == NULL;
  struct croom *cr = ok ? croom_get(cl, id, 1) : NULL;
  struct fwd_http *fw = cr && !cr->acquiring && !cr->rebuilding ? fw_new(cl, c, id) : NULL;
  json_decref(body);
  if (fw == NULL) return 0;
  croom_acquire(cl, cr, create_cb, fw);
  return 1;
}

int cluster_room_taken(const struct cluster *cl, const char *room_id) {
  return cl && cl->taken && strcmp(cl->taken, room_id) == 0;
}

void cluster_rooms_list(const struct cluster *cl, json_t *rooms) {
  size_t i;
  json_t *v;
  if (cl == NULL || cl->listing == NULL) return;
  json_array_foreach(cl->listing, i, v) {
    const char *id = json_string_value(json_object_get(v, "room_id"));
    if (id && hub_room_find(cl->h, id) == NULL) json_array_append(rooms, v);
  }
}

void route_request(struct conn *c) {
  struct cluster *cl = the_cluster;
  const char *url = c->req->url.data ? c->req->url.data : "";
  static const char pre[] = "/webrtc/rooms/";
  if (cl != NULL && cl->cmd_up && c->req->parser.method == HTTP_GET &&
      strncmp(url, "/webrtc/rate-limits/", 20) == 0 && status_call(cl, c, url))
    return;
  if (cl != NULL && strncmp(url, "/webrtc/rooms", 13) == 0 && (url[13] == '\0' || url[13] == '?') &&
      cl->cmd_up && (c->req->parser.method == HTTP_POST || c->req->parser.method == HTTP_GET) && rooms_call(cl, c))
    return;
  if (cl != NULL && c->req->parser.method == HTTP_POST && strncmp(url, "/webrtc/rooms", 13) == 0 &&
      (url[13] == '\0' || url[13] == '?')) {
    api_dispatch(c);
    map_each(&cl->h->rooms, claim_local, cl);
    return;
  }
  if (cl == NULL || strncmp(url, pre, sizeof(pre) - 1) != 0) {
    api_dispatch(c);
    return;
  }
  const char *id = url + sizeof(pre) - 1;
  size_t n = strcspn(id, "/?");
  char room[ID_MAX + 1];
  /* Shared files of a room owned elsewhere went to its owner over HTTP
   * before this (files_fwd.c, ADR 0019); those that reach here are answered
   * here: the room is ours or live nowhere, Redis is away, or the request
   * was forwarded to this instance already. */
  if (n == 0 || n > ID_MAX || strncmp(id + n, "/files", 6) == 0) {
    api_dispatch(c);
    return;
  }
  memcpy(room, id, n);
  room[n] = '\0';
  struct croom *cr = croom_get(cl, room, 0);
  int rebuilding = cr && cr->owned && cr->rebuilding && hub_room_find(cl->h, room) == NULL;
  if (!rebuilding && (hub_room_find(cl->h, room) || (cr && cr->owned))) {
    api_dispatch(c);
    return;
  }
  struct fwd_http *fw = fw_new(cl, c, room);
  if (fw == NULL) {
    api_dispatch(c);
    return;
  }
  if (rebuilding) {
    fw_park(cl, fw); /* taken over here a moment ago: answered once the room is rebuilt */
    return;
  }
  if (cr && cr->owner[0] && cr->watching) {
    http_forward(cl, fw, cr->owner);
    return;
  }
  char lease[KEY_MAX];
  key_of(lease, "lease", room);
  const char *argv[] = {"GET", lease};
  redis_cmd(cl, lookup_cb, fw, 0, 2, argv, NULL);
}

/* The views of the rooms owned here, for GET /webrtc/rooms on any instance
 * (each entry lives two lease periods unless renewed). One script per
 * ROOMS_PUT_BATCH rooms, so that the command's argv stays on the stack
 * however many rooms this instance owns. */
#define ROOMS_PUT_BATCH 128

void room_publish_now(struct cluster *cl, const char *room) {
  struct croom *cr = croom_get(cl, room, 0);
  struct room *r = cr && cr->owned ? hub_room_find(cl->h, room) : NULL;
  json_t *v = r ? api_room_view(r, hub_now_ms()) : NULL;
  char *txt = v ? json_dumps(v, JSON_COMPACT) : NULL;
  json_decref(v);
  if (txt == NULL) return;
  char rooms[KEY_MAX], views[KEY_MAX], ttl[16];
  key_of(rooms, "rooms", "");
  key_of(views, "roomview", "");
  snprintf(ttl, sizeof(ttl), "%d", 2 * LEASE_MS);
  const char *argv[] = {"EVAL", LUA_ROOMS_PUT, "2", rooms, views, ttl, room, txt};
  redis_cmd(cl, NULL, NULL, 0, 8, argv, NULL);
  free(txt);
}

void rooms_publish(struct cluster *cl, const struct ptrvec *s) {
  const char *argv[6 + 2 * ROOMS_PUT_BATCH];
  char *texts[ROOMS_PUT_BATCH];
  char rooms[KEY_MAX], views[KEY_MAX], ttl[16];
  key_of(rooms, "rooms", "");
  key_of(views, "roomview", "");
  snprintf(ttl, sizeof(ttl), "%d", 2 * LEASE_MS);
  const char *head[] = {"EVAL", LUA_ROOMS_PUT, "2", rooms, views, ttl};
  uint64_t now = hub_now_ms();
  size_t i = 0;
  while (i < s->n) {
    size_t n = 0, argc = 0;
    for (size_t j = 0; j < 6; j++) argv[argc++] = head[j];
    for (; i < s->n && n < ROOMS_PUT_BATCH; i++) {
      struct croom *cr = s->v[i];
      struct room *r = cr->owned && !cr->rebuilding ? hub_room_find(cl->h, cr->id) : NULL;
      json_t *v = r ? api_room_view(r, now) : NULL;
      char *txt = v ? json_dumps(v, JSON_COMPACT) : NULL;
      json_decref(v);
      if (txt == NULL) continue;
      texts[n++] = txt;
      argv[argc++] = cr->id;
      argv[argc++] = txt;
    }
    if (n) redis_cmd(cl, NULL, NULL, 0, (int)argc, argv, NULL);
    for (size_t j = 0; j < n; j++) free(texts[j]);
  }
}
