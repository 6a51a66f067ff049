/* The owner of a room: the Redis bus (frames to local sockets at once, one
 * fenced stream entry for every other instance), sessions of clients
 * connected elsewhere (struct remote: a socketless conn whose writes and
 * closes become stream entries), and what other instances forward to it:
 * opens (joined in arrival order, or deferred while the lease reply or the
 * rebuild is pending), messages, ends and REST calls. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/grant.h"
#include "cluster/cluster_int.h"
#include "net/http.h"
#include "net/ws.h"
#include "room/op.h"
#include "room/policy.h"
#include "room/room.h"
#include "signal/signal.h"

/* KEYS lease, stream; ARGV "inst:", id, maxlen, field, value, ... */
static const char LUA_APPEND[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end "
    "return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], ARGV[2], unpack(ARGV, 4))";

static void stream_append(struct cluster *cl, struct croom *cr, const char *id, int nf, const char **fv,
                          const size_t *fl) {
  char lease[KEY_MAX], stream[KEY_MAX], prefix[40], mx[16];
  key_of(lease, "lease", cr->id);
  key_of(stream, "stream", cr->id);
  snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
  snprintf(mx, sizeof(mx), "%d", cl->h->cfg->room_log_max);
  const char *argv[40];
  size_t lens[40];
  int n = 0;
  argv[n] = "EVAL", lens[n++] = 4;
  argv[n] = LUA_APPEND, lens[n++] = sizeof(LUA_APPEND) - 1;
  argv[n] = "2", lens[n++] = 1;
  argv[n] = lease, lens[n++] = strlen(lease);
  argv[n] = stream, lens[n++] = strlen(stream);
  argv[n] = prefix, lens[n++] = strlen(prefix);
  argv[n] = id, lens[n++] = strlen(id);
  argv[n] = mx, lens[n++] = strlen(mx);
  for (int i = 0; i < nf && n < 40; i++) {
    argv[n] = fv[i];
    lens[n++] = fl ? fl[i] : strlen(fv[i]);
  }
  cl->st.stream_entries_out++;
  redis_cmd(cl, append_cb, NULL, 1, n, argv, lens);
}

void append_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (cl == NULL || r == NULL || r->type != REDIS_REPLY_ERROR) return;
  if (strstr(r->str, "FENCED")) {
    cl->st.fenced++;
    log_warn("stream_append_fenced reason=\"%s\"", r->str);
  } else {
    log_warn("stream_append_failed reason=\"%s\"", r->str);
  }
}

static void deliver_local(struct hub *h, const struct bus_msg *m, struct participant *p, struct buf *rcpt) {
  if (p == NULL || p->session == NULL) return;
  if (m->only_perm && (p->perms & m->only_perm) != m->only_perm) return;
  if (m->type >= 0 && m->type < HUB_STATS_TYPES) h->stats.out_by_type[m->type]++;
  struct conn *c = p->session;
  if (c->proxy) {
    struct remote *rm = c->cluster;
    if (rcpt->len) buf_append(rcpt, ",", 1);
    buf_append(rcpt, rm->key, strlen(rm->key));
    return;
  }
  ws_send(c, outbuf_ref(m->frame));
}

/* Frames go to this instance's sockets at once; one stream entry carries the
 * frame once for every other instance, with the sessions it is for, and the
 * recipient filter (for a new owner's room log). */
static int redis_publish(struct bus *b, const struct bus_msg *m, bus_publish_cb cb, void *arg) {
  struct cluster *cl = b->arg;
  struct hub *h = cl->h;
  struct room *r = hub_room_find(h, m->room_id);
  struct buf rcpt = {0};
  if (r) {
    if (m->to) {
      deliver_local(h, m, room_participant_find(r, m->to), &rcpt);
      if (m->also && strcmp(m->also, m->to) != 0) deliver_local(h, m, room_participant_find(r, m->also), &rcpt);
    } else {
      for (struct participant *p = r->head; p; p = p->next) {
        if (m->except && strcmp(p->user_id, m->except) == 0) continue;
        deliver_local(h, m, p, &rcpt);
      }
    }
  }
  struct croom *cr = croom_get(cl, m->room_id, 0);
  if (cr && cr->owned) {
    char id[48], type[12], pm[12], ts[24];
    stream_id_format(id, sizeof(id), m->seq, 0);
    snprintf(type, sizeof(type), "%d", m->type);
    snprintf(pm, sizeof(pm), "%u", m->only_perm);
    snprintf(ts, sizeof(ts), "%" PRIu64, hub_now_ms());
    const char *fv[] = {"k", "L", "f", (const char *)m->frame->data, "r", rcpt.data ? rcpt.data : "",
                        "t", type, "to", m->to ? m->to : "", "ex", m->except ? m->except : "",
                        "al", m->also ? m->also : "", "pm", pm, "ms", ts, "o", cl->inst};
    size_t fl[20];
    for (int i = 0; i < 20; i++) fl[i] = i == 3 ? m->frame->len : i == 5 ? rcpt.len : strlen(fv[i]);
    stream_append(cl, cr, id, 20, fv, fl);
    cr->last_seq = m->seq;
    cr->sub = 0;
    /* Relayed and chat-like messages change no state a new owner needs. */
    switch (m->type) {
    case MSG_CHAT_MESSAGE: case MSG_REACTION: case MSG_OFFER: case MSG_ANSWER: case MSG_ICE_CANDIDATE:
    case MSG_E2EE_KEY_EXCHANGE: case MSG_E2EE_RATCHET_UPDATE: case MSG_FILE_SHARE_PROGRESS:
      break;
    default:
      cr->dirty = 1;
    }
    /* The family's policy records are kept at its main room (a role or
     * permission change made in a breakout room, a first admission into
     * one, a rejection from its waiting room): its snapshot is written
     * again too, so a takeover of the family keeps them. */
    if (r && r->parent[0] && (m->type == MSG_ROLE_UPDATED || m->type == MSG_PERMISSION_UPDATED ||
                              m->type == MSG_USER_JOINED || m->type == MSG_WAITING_ROOM_REJECT)) {
      struct croom *pc = croom_get(cl, r->parent, 0);
      if (pc && pc->owned) pc->dirty = 1;
    }
  }
  buf_free(&rcpt);
  if (cb) cb(arg, 0);
  return 0;
}

static int redis_replay(struct bus *b, const char *room_id, uint64_t after_seq, bus_deliver_cb deliver,
                        void *arg) {
  return BUS_E_NOTSUP; /* the owner's room log is rebuilt from the stream at takeover */
}

static int redis_healthy(struct bus *b) { return 1; } /* degraded, not unavailable: see health */

static void redis_close(struct bus *b) {}

const struct bus_ops bus_redis_ops = {"redis", redis_publish, redis_replay, redis_healthy, redis_close};

void remote_free_later(struct cluster *cl, struct remote *rm) {
  rm->free_next = cl->to_free;
  cl->to_free = rm;
}

/* An S or C entry for one remote session, ordered after the room's last L. */
static void session_entry(struct cluster *cl, struct remote *rm, int nf, const char **fv, const size_t *fl) {
  struct croom *cr = croom_get(cl, rm->room, 0);
  if (cr == NULL || !cr->owned) return;
  char id[48];
  stream_id_format(id, sizeof(id), cr->last_seq, ++cr->sub);
  stream_append(cl, cr, id, nf, fv, fl);
  cr->dirty = 1;
}

static void http_answer(struct cluster *cl, struct remote *rm);

static void remote_write(struct conn *c, struct outbuf *b) {
  struct remote *rm = c->cluster;
  struct cluster *cl = the_cluster;
  if (rm->http) {
    buf_append(&rm->resp, b->data, b->len);
    /* A held call's answer (one write: http_reply) goes back now. The
     * handler's http_request_done then finds the conn closing and leaves
     * it alone (there is no socket, and no next request, here). */
    if (rm->held && !c->closing) {
      c->closing = 1;
      http_answer(cl, rm);
    }
  } else if (!rm->closed) {
    char ts[24];
    snprintf(ts, sizeof(ts), "%" PRIu64, hub_now_ms());
    const char *fv[] = {"k", "S", "f", (const char *)b->data, "r", rm->key, "ms", ts};
    size_t fl[] = {1, 1, 1, b->len, 1, strlen(rm->key), 2, strlen(ts)};
    session_entry(cl, rm, 8, fv, fl);
  }
  outbuf_unref(b);
}

static void remote_ws_close(struct conn *c, int code, const char *reason) {
  struct remote *rm = c->cluster;
  struct cluster *cl = the_cluster;
  if (rm->closed || rm->http) return;
  rm->closed = 1;
  cl->srv->handlers.ws_end(c, CONN_END_LOCAL, code);
  char cs[12];
  snprintf(cs, sizeof(cs), "%d", code);
  const char *fv[] = {"k", "C", "r", rm->key, "c", cs, "why", reason ? reason : ""};
  session_entry(cl, rm, 8, fv, NULL);
  map_del(&cl->remotes, rm->key);
  remote_free_later(cl, rm);
}

static void remote_end(struct conn *c) {
  struct remote *rm = c->cluster;
  if (!rm->http) remote_ws_close(c, 1000, "");
}

static const struct conn_proxy remote_proxy = {remote_write, remote_end, remote_ws_close};

struct remote *remote_new(struct cluster *cl, const char *inst, const char *id, const char *room, int http) {
  struct remote *rm = calloc(1, sizeof(*rm));
  struct conn *c = calloc(1, sizeof(*c));
  if (c && http) c->req = calloc(1, sizeof(*c->req)); /* a forwarded request: no parser runs */
  if (rm == NULL || c == NULL || (http && c->req == NULL)) {
    free(rm);
    if (c) free(c->req);
    free(c);
    return NULL;
  }
  snprintf(rm->key, sizeof(rm->key), "%s/%s", inst, id);
  snprintf(rm->inst, sizeof(rm->inst), "%s", inst);
  snprintf(rm->room, sizeof(rm->room), "%s", room);
  rm->http = http;
  rm->fake = c;
  c->srv = cl->srv;
  c->kind = http ? CONN_HTTP : CONN_WS;
  c->proxy = &remote_proxy;
  c->cluster = rm;
  snprintf(rm->ip, sizeof(rm->ip), "instance:%s", inst);
  c->ip = rm->ip;
  if (!http && map_put(&cl->remotes, rm->key, rm) != 0) {
    free(rm);
    free(c);
    return NULL;
  }
  return rm;
}

/* Owner side: the answer to a forwarded REST call goes back to the instance
 * the client reached; the remote is freed after this loop turn. */
static void http_answer(struct cluster *cl, struct remote *rm) {
  struct conn *c = rm->fake;
  const char *id = strchr(rm->key, '/') + 1;
  const char *fv[] = {"k", "resp", "id", id, "d", rm->resp.data ? rm->resp.data : ""};
  size_t fl[] = {1, 4, 2, strlen(id), 1, rm->resp.len};
  inbox_send(cl, rm->inst, 6, fv, fl);
  buf_free(&c->req->url), buf_free(&c->req->hdr[HDR_AUTHORIZATION]);
  buf_free(&c->req->hdr[HDR_CONTENT_TYPE]), buf_free(&c->req->body);
  remote_free_later(cl, rm);
}

void remotes_reap(struct cluster *cl) {
  while (cl->to_free) {
    struct remote *rm = cl->to_free;
    cl->to_free = rm->free_next;
    buf_free(&rm->resp);
    buf_free(&rm->q);
    free(rm->fake->req); /* its bufs were freed after the dispatch */
    buf_free(&rm->grant);
    free(rm->fake);
    free(rm);
  }
}

/* Admission and join of a connection on the owner (a local one whose room
 * was not owned yet, or a remote one). Refusals after the upgrade: the
 * error, then close 1008. */
void owner_join(struct cluster *cl, struct conn *c, const char *room_id, const struct token_claims *claims,
                       int admitted, const char *rt, uint64_t last_seq, const char *grant) {
  struct hub *h = cl->h;
  int64_t retry = 0;
  struct token_claims gc;
  enum api_err e = API_OK;
  if (join_gate(cl, c, room_id, claims, admitted, rt, last_seq, grant)) return; /* room_create counted first */
  /* A breakout grant: the family lives here, so its checks (the rooms, the
   * assignment, the member's standing) and the claims are the owner's. Its
   * single use was already recorded in Redis by the instance it reached.
   * Its claims are the member's standing with the room's changes on it
   * (policy_member_claims). */
  if (grant && grant[0]) {
    e = op_grant_check(h, grant, room_id, &gc, 1);
    admitted = 1;
  } else {
    /* A token's claims come as the token says (the instance the client
     * reached does not hold the room): the room's policy (role and
     * permission changes made in it) is applied here, where the room is,
     * as a single instance does in api.c before its admission. */
    gc = *claims;
    policy_apply(h, room_id, &gc);
  }
  claims = &gc;
  if (e == API_OK) e = hub_admission_check(h, room_id, claims, admitted, &retry);
  if (e != API_OK) {
    char detail[200];
    api_admission_detail(h, e, claims, detail, sizeof(detail)); /* as the HTTP refusal says it */
    log_info("ws_refused room=%s user=%s code=%s", room_id, claims->sub, api_err_code(e));
    signal_error(c, e, NULL, detail[0] ? detail : NULL, retry);
    ws_close(c, 1008, api_err_code(e));
    return;
  }
  signal_join(c, room_id, claims, admitted, rt, last_seq);
}

/* The claims of an open's fields (u, n, rm, cl). */
void claims_from_fields(const redisReply *f, struct token_claims *tc) {
  memset(tc, 0, sizeof(*tc));
  reply_field_str(f, "u", tc->sub, sizeof(tc->sub));
  reply_field_str(f, "n", tc->name, sizeof(tc->name));
  reply_field_str(f, "rm", tc->room, sizeof(tc->room));
  char cs[64];
  reply_field_str(f, "cl", cs, sizeof(cs));
  claims_parse(cs, tc);
}

/* An open that came to an instance that does not own its room (any more):
 * the sender resolves the owner again and sends the open there itself, so
 * its client sees nothing of it. */
static void open_refused(struct cluster *cl, const char *inst, const char *id, const char *room) {
  const char *fv[] = {"k", "moved", "i", cl->inst, "id", id, "room", room};
  inbox_send(cl, inst, 8, fv, NULL);
}

/* Owner side: an open forwarded by the instance its client reached (inst,
 * the link id there): joined now, kept until the lease reply or the rebuild
 * is done, or refused (not ours). */
void owner_open(struct cluster *cl, const redisReply *f, const char *inst, const char *id, const char *room,
                       const char *key) {
  cl->st.forwarded_in++;
  struct croom *cr = croom_get(cl, room, 0);
  struct remote *old = map_get(&cl->remotes, key);
  if (old) return;
  int wait = cr && ((!cr->owned && cr->acquiring) || (cr->owned && cr->rebuilding));
  if (!wait && (cr == NULL || !cr->owned)) {
    open_refused(cl, inst, id, room); /* not ours (any more) */
    return;
  }
  struct remote *rm = remote_new(cl, inst, id, room, 0);
  if (rm == NULL) return;
  if (wait) {
    /* Our lease reply or the rebuild is still on its way: join it then. */
    claims_from_fields(f, &rm->tc);
    rm->has_rt = reply_field_str(f, "rt", rm->rt, sizeof(rm->rt)) == 0 && rm->rt[0];
    char dls[24];
    rm->ls = UINT64_MAX;
    if (reply_field_str(f, "ls", dls, sizeof(dls)) == 0 && dls[0]) rm->ls = strtoull(dls, NULL, 10);
    rm->adm = (int)reply_field_int(f, "adm");
    const redisReply *gr = reply_field(f, "g");
    if (gr && gr->type == REDIS_REPLY_STRING && gr->len) buf_append(&rm->grant, gr->str, gr->len);
    rm->deferred = 1;
    struct remote **pp = &cr->deferred;
    while (*pp) pp = &(*pp)->defer_next;
    *pp = rm;
    return;
  }
  struct token_claims tc;
  claims_from_fields(f, &tc);
  char rt[80];
  int has_rt = reply_field_str(f, "rt", rt, sizeof(rt)) == 0 && rt[0];
  char ls[24];
  uint64_t last_seq = UINT64_MAX;
  if (reply_field_str(f, "ls", ls, sizeof(ls)) == 0 && ls[0]) last_seq = strtoull(ls, NULL, 10);
  char g[GRANT_MAX + 1] = "";
  reply_field_str(f, "g", g, sizeof(g));
  owner_join(cl, rm->fake, room, &tc, (int)reply_field_int(f, "adm"), has_rt ? rt : NULL, last_seq, g);
}

/* Owner side: a remote session's message, behind its earlier ones. */
void owner_msg(struct cluster *cl, const redisReply *f, const char *key) {
  cl->st.forwarded_in++;
  struct remote *rm = map_get(&cl->remotes, key);
  const redisReply *d = reply_field(f, "d");
  if (rm && !rm->closed && rm->deferred && d && d->type == REDIS_REPLY_STRING) {
    msgq_push(&rm->q, d->str, d->len);
    return;
  }
  if (rm && !rm->closed && d && d->type == REDIS_REPLY_STRING) gate_push(cl, rm->fake, d->str, d->len);
}

/* Owner side: a remote session ended on its instance. */
void owner_end(struct cluster *cl, const redisReply *f, const char *key) {
  struct remote *rm = map_get(&cl->remotes, key);
  if (rm == NULL || rm->closed) return;
  rm->closed = 1;
  map_del(&cl->remotes, rm->key);
  if (rm->deferred) return; /* never joined: freed when the deferred opens run */
  gate_drop(cl, rm->fake);
  signal_on_end(rm->fake, (enum conn_end)reply_field_int(f, "why"), (int)reply_field_int(f, "c"));
  remote_free_later(cl, rm);
}

/* Owner side: a forwarded REST call, run against a socketless connection;
 * the answer goes back to inst (http_answer). */
void owner_http(struct cluster *cl, const redisReply *f, const char *inst, const char *id, const char *room) {
  cl->st.forwarded_in++;
  struct croom *cr = room[0] ? croom_get(cl, room, 0) : NULL;
  if (room[0] && (cr == NULL || (!cr->owned && !cr->acquiring))) {
    /* Sent while this instance owned the room, read after it gave the room
     * up: not run here (another owner's room, or none); the sender looks
     * the owner up again. */
    const char *fv[] = {"k", "resp", "id", id, "mv", "1"};
    inbox_send(cl, inst, 6, fv, NULL);
    return;
  }
  struct remote *rm = remote_new(cl, inst, id, room, 1);
  if (rm == NULL) return;
  struct conn *c = rm->fake;
  const char *names[] = {"url", "auth", "ct", "body"};
  struct buf *dst[] = {&c->req->url, &c->req->hdr[HDR_AUTHORIZATION], &c->req->hdr[HDR_CONTENT_TYPE], &c->req->body};
  for (int i = 0; i < 4; i++) {
    const redisReply *v = reply_field(f, names[i]);
    if (v && v->type == REDIS_REPLY_STRING && v->len) buf_append(dst[i], v->str, v->len);
  }
  c->req->parser.method = (unsigned)reply_field_int(f, "m");
  /* The answer says keep-alive as the client's own request would have
   * made it (an HTTP/1.1 request without "Connection: close"); the
   * instance the client reached keeps or ends its connection by it. */
  c->req->complete = reply_field_int(f, "ka") == 1;
  c->req->parser.http_major = 1;
  c->req->parser.http_minor = 1;
  if (reply_field_int(f, "rc") == 1) counted_verdict(cl, 1); /* the sender counted api_call in Redis */
  char chs[256];
  struct charge ch;
  if (reply_field_str(f, "ch", chs, sizeof(chs)) == 0 && charge_parse(&ch, chs))
    charge_begin(cl, &ch); /* ... and the class the call spends */
  api_dispatch(c);
  cl->api_verdict_on = 0;
  charge_end(cl);
  const char *url = c->req->url.data ? c->req->url.data : "";
  if (c->req->parser.method == HTTP_POST && strncmp(url, "/webrtc/rooms", 13) == 0 && (url[13] == '\0' || url[13] == '?'))
    room_publish_now(cl, room); /* a creation forwarded here (the lease was ours): listed before it is answered */
  if (c->req->stream && !c->closing) {
    rm->held = 1; /* a store read: answered from remote_write */
    return;
  }
  http_answer(cl, rm);
}

/* The opens deferred while the room's lease reply or rebuild was pending,
 * in arrival order: joined now, or told to reconnect if the room is not
 * ours after all. */
void deferred_run(struct cluster *cl, struct croom *cr) {
  struct remote *rm;
  while ((rm = cr->deferred) != NULL) {
    cr->deferred = rm->defer_next;
    rm->deferred = 0;
    if (rm->closed) {
      remote_free_later(cl, rm);
      continue;
    }
    if (!cr->owned || cr->rebuilding) {
      /* Not ours after all: the sender finds the owner (its messages it
       * kept, and sends again). */
      const char *slash = strchr(rm->key, '/');
      open_refused(cl, rm->inst, slash ? slash + 1 : "", cr->id);
      rm->closed = 1;
      map_del(&cl->remotes, rm->key);
      remote_free_later(cl, rm);
      continue;
    }
    owner_join(cl, rm->fake, cr->id, &rm->tc, rm->adm, rm->has_rt ? rm->rt : NULL, rm->ls, rm->grant.data);
    buf_free(&rm->grant);
    size_t off = 0;
    const char *d;
    uint32_t n;
    while (!rm->closed && msgq_next(&rm->q, &off, &d, &n)) gate_push(cl, rm->fake, d, n);
    buf_free(&rm->q);
  }
}
