/* The member side: a link is a local WebSocket whose room is owned by
 * another instance. Its upgrade (a breakout grant spent in Redis first),
 * the open sent to the owner, its messages and end forwarded to the owner's
 * inbox (queued until the owner is known, taken back from a dead owner and
 * sent to the new one), the room stream's frames written to it, and its
 * join here when this instance becomes the owner. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth/grant.h"
#include "lib/envelope.h"
#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "net/ws.h"
#include "room/op.h"
#include "signal/signal.h"

/* KEYS hb:{old owner}, inbox:{old owner}; ARGV instance, link. nil while the
 * old owner beats; else the messages of that link it never read (still in
 * its inbox: inbox_mark_read), in order, deleted so that they never will
 * be read there. Looks at the newest RECOVER_SCAN entries only. */
static const char LUA_RECOVER[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return false end "
    "local es = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', ARGV[3]) local out = {} "
    "for n = #es, 1, -1 do local e = es[n] local f = e[2] local k, i, id, d "
    "  for j = 1, #f, 2 do local v = f[j + 1] "
    "    if f[j] == 'k' then k = v elseif f[j] == 'i' then i = v elseif f[j] == 'id' then id = v "
    "    elseif f[j] == 'd' then d = v end end "
    "  if k == 'msg' and i == ARGV[1] and id == ARGV[2] and d then "
    "    out[#out + 1] = d redis.call('XDEL', KEYS[2], e[1]) end "
    "end return out";

/* The sender's side: the instance its link's open went to no longer owns
 * the room. That instance is alive, so its heartbeat is no reason to wait:
 * the room is resolved afresh (taken here, or found elsewhere) and the open
 * goes again with the client's messages since. */
void link_moved(struct cluster *cl, const char *inst, const char *id) {
  struct link *l = map_get(&cl->links, id);
  if (l == NULL || l->room == NULL || !l->opened || l->confirmed || strcmp(l->sent_to, inst) != 0) return;
  struct croom *cr = l->room;
  if (++l->moves > LINK_MOVES_MAX) {
    struct conn *c = l->c;
    log_warn("open_refused room=%s owner=%s moves=%d", cr->id, inst, l->moves);
    link_unlink(cl, l);
    ws_close(c, 1012, "owner moved, reconnect");
    return;
  }
  l->opened = 0;
  cl->st.opens_moved++;
  if (strcmp(cr->owner, inst) == 0) {
    cr->owner[0] = '\0';
    cr->watching = 0;
  }
  if (cr->owned && !cr->rebuilding) links_join_local(cl, cr);
  else if (!cr->owned && cr->owner[0] && cr->watching) link_send_open(cl, l);
  else croom_resolve(cl, cr);
}

/* A new owner rebuilt a session of ours (link id) from its room's
 * snapshot: a link gone answers with an end, a live one sends there now. */
void link_probe(struct cluster *cl, const char *inst, const char *id, const char *room) {
  struct link *l = map_get(&cl->links, id);
  if (l == NULL) {
    char why[8];
    snprintf(why, sizeof(why), "%d", (int)CONN_END_CUT);
    const char *fv[] = {"k", "end", "i", cl->inst, "id", id, "why", why, "c", "1006"};
    inbox_send(cl, inst, 10, fv, NULL);
  } else if (l->opened && l->room && strcmp(l->room->id, room) == 0) {
    link_retarget(cl, l, inst);
  }
}

/* Sends l's queued messages (u32 length + bytes each), in order, to the
 * inbox of instance to; the queue stays as it is. */
static void link_send_queue(struct cluster *cl, struct link *l, const char *to) {
  size_t off = 0;
  const char *d;
  uint32_t n;
  while (msgq_next(&l->queue, &off, &d, &n)) {
    const char *mv[] = {"k", "msg", "i", cl->inst, "id", l->key, "d", d};
    size_t ml[] = {1, 3, 1, strlen(cl->inst), 2, strlen(l->key), 1, n};
    inbox_send(cl, to, 8, mv, ml);
    cl->st.forwarded_out++;
  }
}

void link_send_open(struct cluster *cl, struct link *l) {
  struct croom *cr = l->room;
  char cs[64], ls[24] = "", adm[4];
  claims_to_fields(&l->claims, cs, sizeof(cs));
  if (l->last_seq != UINT64_MAX) snprintf(ls, sizeof(ls), "%" PRIu64, l->last_seq);
  snprintf(adm, sizeof(adm), "%d", l->admitted);
  const char *fv[] = {"k", "open", "i", cl->inst, "id", l->key, "room", cr->id, "u", l->claims.sub,
                      "n", l->claims.name, "rm", l->claims.room, "cl", cs, "adm", adm,
                      "rt", l->has_rt ? l->rt : "", "ls", ls, "g", l->grant.data ? l->grant.data : ""};
  inbox_send(cl, cr->owner, 24, fv, NULL);
  cl->st.forwarded_out++;
  l->opened = 1;
  snprintf(l->sent_to, sizeof(l->sent_to), "%s", cr->owner);
  /* Messages the client sent before the owner was known, in order. */
  link_send_queue(cl, l, cr->owner);
  /* Kept until the owner's first frame: an open refused by an instance
   * that gave the room up is sent again, with these, to the next owner. */
}

void link_unlink(struct cluster *cl, struct link *l) {
  struct croom *cr = l->room;
  for (struct link **pp = cr ? &cr->links : NULL; pp && *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  map_del(&cl->links, l->key);
  if (l->c) l->c->cluster = NULL;
  buf_free(&l->queue);
  buf_free(&l->grant);
  free(l);
}

/* Holds a client message in l's queue, or, past LINK_QUEUE_BYTES (or out
 * of memory), refuses it at once with its ref: the client hears of every
 * message (its refusal may come before the answers to the messages held). */
static void link_queue(struct link *l, const char *data, size_t len) {
  if (l->queue.len + len + 4 <= LINK_QUEUE_BYTES && msgq_push(&l->queue, data, len) == 0) {
    l->nqueued++;
    return;
  }
  struct conn *c = l->c;
  if (c == NULL || (len == 1 && data[0] == BINARY_MARK[0])) {
    if (c) signal_error(c, API_ERR_TOO_MANY_MESSAGES, NULL, "a binary frame past the messages held", 1000);
    return;
  }
  char ref[ENVELOPE_ID_MAX + 1] = "", detail[256];
  struct envelope_in in;
  if (envelope_decode(data, len, &c->srv->json_limits, &in, detail, sizeof(detail), ref, sizeof(ref)) == API_OK)
    envelope_in_free(&in);
  snprintf(detail, sizeof(detail), "%u bytes of messages held while the room's instance is found; not handled",
           LINK_QUEUE_BYTES);
  signal_error(c, API_ERR_TOO_MANY_MESSAGES, ref[0] ? ref : NULL, detail, 1000);
}

static void recover_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  struct link *l = cl ? map_get(&cl->links, (const char *)priv) : NULL;
  free(priv);
  if (l == NULL || !l->recovering) return;
  l->recovering = 0;
  redisReply *r = reply;
  struct buf got = {0};
  size_t ngot = 0;
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *d = r->element[i];
    if (d->type != REDIS_REPLY_STRING) continue;
    msgq_push(&got, d->str, d->len);
    ngot++;
  }
  if (ngot) log_info("msgs_recovered link=%s n=%zu", l->key, ngot);
  cl->st.msgs_recovered += ngot;
  buf_append(&got, l->queue.data ? l->queue.data : "", l->queue.len); /* then those sent since, in order */
  buf_free(&l->queue);
  l->queue = got;
  l->nqueued += ngot;
  /* This instance is the new owner (rebuilding): the rebuild feeds the
   * queue to the connection once it is a member (snap_session). */
  if (l->room && l->room->owned) return;
  link_send_queue(cl, l, l->sent_to);
  buf_free(&l->queue);
  l->nqueued = 0;
}

/* l's messages the owner it sent them to (old) never read: taken back from
 * old's inbox if old is dead; l's next messages wait until they are. */
void link_recover(struct cluster *cl, struct link *l, const char *old) {
  char hb[KEY_MAX], inbox[KEY_MAX];
  key_of(hb, "hb", old);
  key_of(inbox, "inbox", old);
  char *k = strdup(l->key);
  if (k == NULL) return;
  l->recovering = 1;
  const char *argv[] = {"EVAL", LUA_RECOVER, "2", hb, inbox, cl->inst, l->key, RECOVER_SCAN};
  redis_cmd(cl, recover_cb, k, 0, 8, argv, NULL);
}

/* The room's owner is now owner: l sends there; what it sent the old one
 * and that was never read is recovered first. */
void link_retarget(struct cluster *cl, struct link *l, const char *owner) {
  if (strcmp(l->sent_to, owner) == 0) return;
  if (l->opened && l->confirmed && l->sent_to[0] && !l->recovering && strcmp(l->sent_to, cl->inst) != 0)
    link_recover(cl, l, l->sent_to);
  snprintf(l->sent_to, sizeof(l->sent_to), "%s", owner);
}

void cluster_on_text(struct conn *c, const char *data, size_t len) {
  struct cluster *cl = the_cluster;
  struct link *l = cl && !c->proxy ? c->cluster : NULL;
  if (l == NULL) {
    if (cl) gate_push(cl, c, data, len);
    else signal_on_message(c, data, len);
    return;
  }
  if (!l->opened) {
    link_queue(l, data, len); /* the owner is not known yet */
    return;
  }
  if (l->recovering || (l->room && l->room->owned)) {
    /* Behind messages being taken back from a dead owner, or the room is
     * being rebuilt here: held in order. */
    link_queue(l, data, len);
    return;
  }
  /* Kept for a second open (to a next owner) until the owner's first frame;
   * sent now, so none is refused here. */
  if (!l->confirmed && l->queue.len + len + 4 <= LINK_QUEUE_BYTES) link_queue(l, data, len);
  const char *fv[] = {"k", "msg", "i", cl->inst, "id", l->key, "d", data};
  size_t fl[] = {1, 3, 1, strlen(cl->inst), 2, strlen(l->key), 1, len};
  inbox_send(cl, l->sent_to, 8, fv, fl);
  cl->st.forwarded_out++;
}

void cluster_on_binary(struct conn *c) { cluster_on_text(c, BINARY_MARK, 1); }

void cluster_on_end(struct conn *c, enum conn_end why, int code) {
  struct cluster *cl = the_cluster;
  if (cl == NULL || c->proxy || c->cluster == NULL) {
    if (cl) gate_drop(cl, c);
    signal_on_end(c, why, code);
    return;
  }
  if (c->kind != CONN_WS) return;
  struct link *l = c->cluster;
  if (l->opened) {
    char w[8], cs[12];
    snprintf(w, sizeof(w), "%d", (int)why);
    snprintf(cs, sizeof(cs), "%d", code);
    const char *fv[] = {"k", "end", "i", cl->inst, "id", l->key, "why", w, "c", cs};
    inbox_send(cl, l->sent_to, 10, fv, NULL);
  }
  link_unlink(cl, l);
}

/* A stream entry of a room owned elsewhere: the frame to this instance's
 * sessions it names (copied once for all of them). */
void stream_entry(struct cluster *cl, struct croom *cr, const redisReply *f) {
  char k[4], rcpt[8192], owner[32];
  reply_field_str(f, "k", k, sizeof(k));
  /* Written by a new owner (a takeover): forward to it from now on. */
  if (reply_field_str(f, "o", owner, sizeof(owner)) == 0 && owner[0] && strcmp(owner, cr->owner) != 0) {
    log_info("owner_changed room=%s owner=%s", cr->id, owner);
    snprintf(cr->owner, sizeof(cr->owner), "%s", owner);
    for (struct link *l = cr->links; l; l = l->next)
      if (l->opened) link_retarget(cl, l, owner);
  }
  const redisReply *r = reply_field(f, "r");
  if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0) return;
  cl->st.stream_entries_in++;
  long long ms = reply_field_int(f, "ms");
  if (ms > 0) {
    double lag = (double)((long long)hub_now_ms() - ms);
    if (lag < 0) lag = 0;
    cl->st.stream_lag_ms = lag;
    if (lag > cl->st.stream_lag_max_ms) cl->st.stream_lag_max_ms = lag;
  }
  struct outbuf *b = NULL;
  const redisReply *fr = reply_field(f, "f");
  char why[128] = "";
  int code = (int)reply_field_int(f, "c");
  reply_field_str(f, "why", why, sizeof(why));
  size_t il = strlen(cl->inst);
  const char *p = r->str, *end = r->str + r->len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *e = comma ? comma : end;
    size_t n = (size_t)(e - p);
    if (n > il + 1 && memcmp(p, cl->inst, il) == 0 && p[il] == '/' && n - il - 1 < sizeof(rcpt)) {
      memcpy(rcpt, p + il + 1, n - il - 1);
      rcpt[n - il - 1] = '\0';
      struct link *l = map_get(&cl->links, rcpt);
      if (l && l->c) {
        if (k[0] == 'C') {
          struct conn *c = l->c;
          link_unlink(cl, l); /* the owner already ended the session */
          ws_close(c, code, why);
        } else if (fr && fr->type == REDIS_REPLY_STRING) {
          if (!l->confirmed) {
            l->confirmed = 1;
            buf_free(&l->queue);
            l->nqueued = 0;
          }
          if (b == NULL && (b = outbuf_new(fr->len)) != NULL) {
            memcpy(b->data, fr->str, fr->len);
            b->len = fr->len;
          }
          if (b) ws_send(l->c, outbuf_ref(b));
        }
      }
    }
    p = e + 1;
  }
  outbuf_unref(b);
}

/* The room is owned here now: its deferred opens run, then this instance's
 * links join as on a single instance, their held messages after them. */
void links_join_local(struct cluster *cl, struct croom *cr) {
  deferred_run(cl, cr);
  while (cr->links) {
    struct link *l = cr->links;
    struct conn *c = l->c;
    struct token_claims tc = l->claims;
    int adm = l->admitted, has_rt = l->has_rt;
    char rt[80];
    uint64_t ls = l->last_seq;
    snprintf(rt, sizeof(rt), "%s", l->rt);
    struct buf q = l->queue, g = l->grant;
    memset(&l->queue, 0, sizeof(l->queue));
    memset(&l->grant, 0, sizeof(l->grant));
    link_unlink(cl, l);
    if (c == NULL) {
      buf_free(&q);
      buf_free(&g);
      continue;
    }
    owner_join(cl, c, cr->id, &tc, adm, has_rt ? rt : NULL, ls, g.data);
    buf_free(&g);
    size_t off = 0;
    const char *d;
    uint32_t n;
    while (!c->closing && msgq_next(&q, &off, &d, &n)) gate_push(cl, c, d, n); /* counted as any message */
    buf_free(&q);
  }
}

/* A link joins its room's list (arrival order: the owner admits in the order
 * the opens come) and goes to the owner, or joins here. */
static void link_place(struct cluster *cl, struct link *l, struct croom *cr) {
  l->room = cr;
  struct link **pp = &cr->links;
  while (*pp) pp = &(*pp)->next;
  *pp = l;
  if (cr->owned && !cr->rebuilding) {
    links_join_local(cl, cr);
  } else if (!cr->owned && cr->owner[0] && cr->watching) {
    link_send_open(cl, l);
  } else {
    croom_resolve(cl, cr);
  }
}

/* The reply to a grant's SET NX: the first use anywhere in the cluster goes
 * on to the owner; a grant spent before (through any instance) is refused.
 * With Redis away the owner's own spent set still refuses a second use
 * there. */
static void spend_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac;
  struct cluster *cl = the_cluster;
  char *key = priv;
  struct link *l = cl ? map_get(&cl->links, key) : NULL;
  free(key);
  if (l == NULL || !l->spending) return; /* the client went away meanwhile */
  redisReply *r = reply;
  l->spending = 0;
  if (r && r->type == REDIS_REPLY_NIL) {
    struct conn *c = l->c;
    log_info("ws_refused room=%s user=%s code=INVALID_TOKEN grant=spent", l->spend_room, l->claims.sub);
    link_unlink(cl, l);
    signal_error(c, API_ERR_INVALID_TOKEN, "this grant was used already", NULL, 0);
    ws_close(c, 1008, api_err_code(API_ERR_INVALID_TOKEN));
    return;
  }
  struct croom *cr = croom_get(cl, l->spend_room, 1);
  if (cr == NULL) {
    struct conn *c = l->c;
    link_unlink(cl, l);
    ws_close(c, 1011, "internal error");
    return;
  }
  link_place(cl, l, cr);
}

enum api_err cluster_grant_precheck(struct hub *h, const char *grant, const char *room_id,
                                    struct token_claims *claims) {
  struct grant_claims g;
  /* Without a key yet (public-key tokens, Redis never reached): per instance. */
  if (!h->grant_key_ready) return op_grant_check(h, grant, room_id, claims, 1);
  if (grant_verify(h->grant_key, grant, strlen(grant), (int64_t)(hub_now_ms() / 1000), &g) != API_OK)
    return API_ERR_INVALID_TOKEN;
  if (strcmp(g.room, room_id) != 0) return API_ERR_TOKEN_ROOM_MISMATCH;
  memset(claims, 0, sizeof(*claims));
  snprintf(claims->sub, sizeof(claims->sub), "%s", g.user);
  snprintf(claims->room, sizeof(claims->room), "%s", room_id);
  claims->exp = g.exp;
  return API_OK;
}

int cluster_ws_open(struct hub *h, struct conn *c, const char *room_id, const struct token_claims *claims,
                    int admitted, const char *resume_token, uint64_t last_seq, const char *grant) {
  struct cluster *cl = h->cluster;
  /* A grant (with the shared key) always takes this path: its claims are
   * the owner's to make (cluster_grant_precheck filled only the user). */
  int spend = grant && grant[0] && h->grant_key_ready;
  struct croom *cr = croom_get(cl, room_id, 1);
  if (cr == NULL && !spend) return 0;
  if (!spend && cr->owned && !cr->rebuilding && hub_room_find(h, room_id)) return 0;
  if (ws_accept(c) != 0) return 1;
  struct grant_claims g;
  if (spend && (cr == NULL ||
                grant_verify(h->grant_key, grant, strlen(grant), (int64_t)(hub_now_ms() / 1000), &g) != API_OK)) {
    signal_error(c, API_ERR_INVALID_TOKEN, "the grant expired", NULL, 0); /* between the precheck and now */
    ws_close(c, 1008, api_err_code(API_ERR_INVALID_TOKEN));
    return 1;
  }
  struct link *l = calloc(1, sizeof(*l));
  if (l == NULL || (grant && grant[0] && buf_append(&l->grant, grant, strlen(grant)) != 0)) {
    free(l);
    ws_close(c, 1011, "internal error");
    return 1;
  }
  l->cl = cl;
  l->c = c;
  l->id = ++cl->next_id;
  snprintf(l->key, sizeof(l->key), "%" PRIu64, l->id);
  l->claims = *claims;
  l->admitted = admitted;
  l->has_rt = resume_token != NULL;
  if (resume_token) snprintf(l->rt, sizeof(l->rt), "%s", resume_token);
  l->last_seq = last_seq;
  map_put(&cl->links, l->key, l);
  c->cluster = l;
  if (!spend) {
    link_place(cl, l, cr);
    return 1;
  }
  /* Single use across the cluster: the first SET NX of the jti wins, kept
   * until the grant would have expired anyway. */
  l->spending = 1;
  snprintf(l->spend_room, sizeof(l->spend_room), "%s", room_id);
  char key[KEY_MAX], px[24];
  key_of(key, "grant", g.jti);
  int64_t left_ms = g.exp * 1000 - (int64_t)hub_now_ms();
  snprintf(px, sizeof(px), "%" PRId64, (left_ms > 0 ? left_ms : 0) + 1000);
  const char *argv[] = {"SET", key, "1", "NX", "PX", px};
  char *k = strdup(l->key);
  if (k == NULL) {
    l->spending = 0;
    link_place(cl, l, cr);
    return 1;
  }
  redis_cmd(cl, spend_cb, k, 0, 6, argv, NULL);
  return 1;
}
