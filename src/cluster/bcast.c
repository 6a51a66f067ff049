/* The broadcast stream (bcast:): what every instance applies. Today a
 * user's erase: the instance that answered POST /webrtc/admin/users/{id}/erase
 * publishes it, every other one applies it to the rooms it owns and to its
 * links whose open no owner has seen. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "net/ws.h"
#include "room/durable.h"
#include "room/hub.h"
#include "store/store.h"

/* A user's erase (POST /webrtc/admin/users/{id}/erase) on the instance that
 * answered it: every other instance applies it to the rooms it owns (its
 * members and waiters of that user, wherever they are connected, close with
 * 4007 through the owner as on one instance) and, when the store committed
 * it, drops what its room logs still held naming the user. */
/* The user's links whose open no owner has seen yet: closed here (an owner
 * that has its session closes it itself, the others hearing why). */
struct erase_scan { const char *user; struct ptrvec gone; };

static void collect_erased(const char *k, void *v, void *arg) {
  struct link *l = v;
  struct erase_scan *es = arg;
  if (!l->opened && l->c && strcmp(l->claims.sub, es->user) == 0) ptrvec_push(k, l, &es->gone);
}

static void erase_links(struct cluster *cl, const char *user) {
  /* All of them, collected first: link_unlink removes each from cl->links. */
  struct erase_scan es = {user, {0}};
  map_each(&cl->links, collect_erased, &es);
  if (es.gone.missed) log_warn("erase_links_short links=%zu missed=%zu reason=\"out of memory\"", es.gone.n, es.gone.missed);
  for (size_t i = 0; i < es.gone.n; i++) {
    struct link *l = es.gone.v[i];
    struct conn *c = l->c;
    link_unlink(cl, l);
    ws_close(c, ERASE_CLOSE_CODE, "erased");
  }
  ptrvec_free(&es.gone);
}

void cluster_user_erase(struct cluster *cl, const char *user_id, int committed) {
  if (cl == NULL) return;
  if (!committed) erase_links(cl, user_id);
  char mx[16];
  snprintf(mx, sizeof(mx), "%d", BCAST_MAX);
  const char *argv[] = {"XADD", BCAST_KEY, "MAXLEN", "~", mx, "*", "k", committed ? "erased" : "erase",
                        "i", cl->inst, "u", user_id};
  redis_cmd(cl, NULL, NULL, 1, 12, argv, NULL);
}

/* One SQLite file per instance: this instance's stored rows of the user
 * (chat of the rooms it owned, their analytics, audit and policy) are erased
 * here too. A shared PostgreSQL is erased once, by the instance that
 * answered. */
static void erase_stored_here(struct cluster *cl, const char *user) {
  struct store *st = cl->h->store;
  if (st == NULL || strcmp(store_backend(st), "sqlite") != 0) return;
  struct store_rec *rec = store_rec_new(STORE_ERASE_USER, NULL);
  if (rec == NULL) return;
  snprintf(rec->user_id, sizeof(rec->user_id), "%s", user);
  rec->ts = hub_now_ms();
  if (store_submit(st, rec, 0) != 0) log_warn("erase_store_refused user=%s reason=\"store queue full\"", user);
}

void bcast_entry(struct cluster *cl, const redisReply *f) {
  char k[16], inst[32], user[ID_MAX + 1];
  reply_field_str(f, "k", k, sizeof(k));
  reply_field_str(f, "i", inst, sizeof(inst));
  if (reply_field_str(f, "u", user, sizeof(user)) != 0 || !user[0] || strcmp(inst, cl->inst) == 0) return;
  if (strcmp(k, "erase") == 0) {
    durable_user_erase(cl->h, user); /* its leaves are queued before the store's erase */
    erase_links(cl, user);
    erase_stored_here(cl, user);
  } else if (strcmp(k, "erased") == 0) {
    durable_user_erased(cl->h, user);
  }
}

/* The broadcast stream is read from its end when this instance started. */
void bcast_end_cb(redisAsyncContext *ac, void *reply, void *priv) {
  (void)ac, (void)priv;
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  if (cl == NULL) return;
  cl->bcast_asked = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) return; /* asked again when Redis is back */
  snprintf(cl->bcast_pos, sizeof(cl->bcast_pos), "0-0");
  if (r->elements > 0) reply_str(reply_at(r->element[0], 0), cl->bcast_pos, sizeof(cl->bcast_pos));
  reader_wake(cl);
}
