/* Who owns a room: the rooms this instance knows (struct croom), the
 * lease and its fence (ACQUIRE: set if absent, the fence INCR'd for each
 * new owner; renewed every tick; released when the room ends), stepping
 * down, and the heartbeats of instances whose sessions this owner holds
 * (a missing one cuts their sessions). Not the rebuild (takeover.c). */
#define LOG_MODULE "cluster"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "room/room.h"
#include "signal/signal.h"

/* KEYS lease, fence, stream, hb of the last known owner; ARGV inst, ttl.
 * Returns {owned 0/1, lease value or '', last stream id or ''}. */
static const char LUA_ACQUIRE[] =
    "local v = redis.call('GET', KEYS[1]) "
    "local last = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1) "
    "local lid = '' if #last > 0 then lid = last[1][1] end "
    "if v then "
    "  if string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. ':' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return {1, v, lid} end "
    "  return {0, v, lid} end "
    "if redis.call('EXISTS', KEYS[4]) == 1 then return {0, '', lid} end "
    "local f = redis.call('INCR', KEYS[2]) "
    "v = ARGV[1] .. ':' .. f "
    "redis.call('SET', KEYS[1], v, 'PX', ARGV[2]) "
    "return {1, v, lid}";

/* KEYS lease; ARGV value, ttl */
static const char LUA_RENEW[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end return 0";

/* KEYS lease, snap, stream; ARGV value. A room that ended takes its
 * snapshot and stream with it: a later room of the same id starts empty
 * instead of being rebuilt with the old one's members. */
static const char LUA_RELEASE[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', unpack(KEYS)) return 1 end "
    "return 0";

struct croom *croom_get(struct cluster *cl, const char *id, int create) {
  struct croom *cr = map_get(&cl->rooms, id);
  if (cr || !create) return cr;
  cr = calloc(1, sizeof(*cr));
  if (cr == NULL) return NULL;
  snprintf(cr->id, sizeof(cr->id), "%s", id);
  if (map_put(&cl->rooms, id, cr) != 0) {
    free(cr);
    return NULL;
  }
  return cr;
}

void croom_drop(struct cluster *cl, struct croom *cr) {
  while (cr->deferred) {
    struct remote *rm = cr->deferred;
    cr->deferred = rm->defer_next;
    if (!rm->closed) map_del(&cl->remotes, rm->key);
    buf_free(&rm->q);
    buf_free(&rm->grant);
    free(rm->fake);
    free(rm);
  }
  map_del(&cl->rooms, cr->id);
  free(cr);
}

/* Steps down: the lease is someone else's. Local members reconnect (1012)
 * and find the new owner. */
static void step_down(struct cluster *cl, struct croom *cr) {
  cr->owned = 0;
  struct room *r = hub_room_find(cl->h, cr->id);
  log_warn("lease_lost room=%s", cr->id);
  if (r) hub_room_evict(cl->h, r, 1012, "room moved to another instance");
}

void acquire_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  if (cl == NULL) {
    free(priv);
    return;
  }
  struct croom *cr = croom_get(cl, (const char *)priv, 0);
  free(priv);
  if (cr == NULL) return;
  cr->acquiring = 0;
  redisReply *r = reply;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
    if (r && r->type == REDIS_REPLY_ERROR) log_warn("acquire_failed room=%s reason=\"%s\"", cr->id, r->str);
    return; /* Redis is away: tried again on the next tick */
  }
  int owned = r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
  char val[64], lid[48];
  reply_str(r->element[1], val, sizeof(val));
  reply_str(r->element[2], lid, sizeof(lid));
  if (owned) {
    int was = cr->owned;
    snprintf(cr->lease, sizeof(cr->lease), "%s", val);
    lease_parse(val, NULL, 0, &cr->fence);
    if (!was) {
      log_info("lease_acquired room=%s lease=%s", cr->id, val);
      become_owner(cl, cr);
    }
    return;
  }
  if (cr->owned) {
    step_down(cl, cr);
  }
  deferred_run(cl, cr); /* opens that came too early: reconnect to the owner */
  if (val[0] == '\0') return; /* no lease, but the last owner still beats: wait */
  char owner[32];
  lease_parse(val, owner, sizeof(owner), NULL);
  int changed = strcmp(owner, cr->owner) != 0;
  snprintf(cr->owner, sizeof(cr->owner), "%s", owner);
  if (!cr->watching) {
    snprintf(cr->pos, sizeof(cr->pos), "%s", lid[0] ? lid : "0-0");
    cr->watching = 1;
    reader_wake(cl);
  }
  for (struct link *l = cr->links; l; l = l->next) {
    if (!l->opened) link_send_open(cl, l);
    else if (changed) link_retarget(cl, l, owner); /* rebuilt there from the snapshot */
  }
}

/* Runs ACQUIRE for cr (fn gets the reply: {owned, lease, last stream id}). */
void croom_acquire(struct cluster *cl, struct croom *cr, redisCallbackFn *fn, void *priv) {
  char lease[KEY_MAX], fence[KEY_MAX], stream[KEY_MAX], hb[KEY_MAX], ttl[16];
  key_of(lease, "lease", cr->id);
  key_of(fence, "fence", cr->id);
  key_of(stream, "stream", cr->id);
  key_of(hb, "hb", cr->owner[0] && strcmp(cr->owner, cl->inst) != 0 ? cr->owner : "-");
  snprintf(ttl, sizeof(ttl), "%d", LEASE_MS);
  const char *argv[] = {"EVAL", LUA_ACQUIRE, "4", lease, fence, stream, hb, cl->inst, ttl};
  cr->acquiring = 1;
  redis_cmd(cl, fn, priv, 0, 9, argv, NULL);
}

void croom_resolve(struct cluster *cl, struct croom *cr) {
  if (cr->acquiring || cr->rebuilding) return;
  char *id = strdup(cr->id);
  if (id == NULL) return;
  croom_acquire(cl, cr, acquire_cb, id);
}

/* A room owned here ended: its lease, snapshot, stream, analytics and
 * list entry go (LUA_RELEASE), and so does cr. */
void croom_release(struct cluster *cl, struct croom *cr) {
  char lease[KEY_MAX], snap[KEY_MAX], stream[KEY_MAX], rooms[KEY_MAX], views[KEY_MAX];
  char ana[KEY_MAX], anaev[KEY_MAX], anaau[KEY_MAX];
  key_of(lease, "lease", cr->id);
  key_of(snap, "snap", cr->id);
  key_of(stream, "stream", cr->id);
  key_of(ana, "ana", cr->id);
  key_of(anaev, "anaev", cr->id);
  key_of(anaau, "anaau", cr->id);
  key_of(rooms, "rooms", "");
  key_of(views, "roomview", "");
  const char *rv[] = {"EVAL", LUA_RELEASE, "6", lease, snap, stream, ana, anaev, anaau, cr->lease};
  redis_cmd(cl, NULL, NULL, 0, 10, rv, NULL);
  const char *zv[] = {"ZREM", rooms, cr->id};
  redis_cmd(cl, NULL, NULL, 0, 3, zv, NULL);
  const char *hv[] = {"HDEL", views, cr->id};
  redis_cmd(cl, NULL, NULL, 0, 3, hv, NULL);
  croom_drop(cl, cr);
}

/* A renewal refused: the lease expired (and may be someone else's). Ask
 * again: ACQUIRE either gives it back or steps this instance down. */
static void renew_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  struct croom *cr = cl ? croom_get(cl, (const char *)priv, 0) : NULL;
  free(priv);
  if (cr && cr->owned && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
    log_warn("lease_renew_refused room=%s lease=%s", cr->id, cr->lease);
    croom_resolve(cl, cr);
  }
}

void renew_room(const char *k, void *v, void *arg) {
  struct cluster *cl = arg;
  struct croom *cr = v;
  (void)k;
  if (cr->owned && !cr->acquiring) {
    char lease[KEY_MAX], ttl[16];
    key_of(lease, "lease", cr->id);
    snprintf(ttl, sizeof(ttl), "%d", LEASE_MS);
    const char *argv[] = {"EVAL", LUA_RENEW, "1", lease, cr->lease, ttl};
    char *id = strdup(cr->id);
    if (id) redis_cmd(cl, renew_cb, id, 0, 6, argv, NULL);
  }
}

/* Owner side: sessions of an instance whose heartbeat stopped are cut
 * connections (the grace period, then user-left). */
struct dead_scan { const char *inst; struct ptrvec list; };

static void collect_dead(const char *k, void *v, void *arg) {
  struct remote *rm = v;
  struct dead_scan *ds = arg;
  if (strcmp(rm->inst, ds->inst) == 0) ptrvec_push(k, rm, &ds->list);
}

static void hb_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  redisReply *r = reply;
  char *inst = priv;
  if (cl && r && r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
    /* All of them, collected first: each cut removes its remote from
     * cl->remotes. Those not collected for want of memory are cut when
     * the next check finds the heartbeat still gone. */
    struct dead_scan ds = {inst, {0}};
    map_each(&cl->remotes, collect_dead, &ds);
    if (ds.list.n) log_warn("instance_gone instance=%s sessions=%zu", inst, ds.list.n);
    if (ds.list.missed) log_warn("instance_gone_short instance=%s missed=%zu reason=\"out of memory\"", inst, ds.list.missed);
    for (size_t i = 0; i < ds.list.n; i++) {
      struct remote *rm = ds.list.v[i];
      rm->closed = 1;
      map_del(&cl->remotes, rm->key);
      gate_drop(cl, rm->fake);
      signal_on_end(rm->fake, CONN_END_CUT, 0);
      remote_free_later(cl, rm);
    }
    ptrvec_free(&ds.list);
  }
  free(inst);
}

/* The instances with sessions here, each once (a set: however many). */
static void collect_insts(const char *k, void *v, void *arg) {
  struct remote *rm = v;
  struct map *insts = arg;
  (void)k;
  if (map_get(insts, rm->inst) == NULL && map_put(insts, rm->inst, (void *)1) != 0)
    log_warn("instance_check_short instance=%s reason=\"out of memory\"", rm->inst); /* checked next tick */
}

static void check_one(const char *inst, void *v, void *arg) {
  struct cluster *cl = arg;
  (void)v;
  char hb[KEY_MAX];
  key_of(hb, "hb", inst);
  const char *argv[] = {"EXISTS", hb};
  char *id = strdup(inst);
  if (id) redis_cmd(cl, hb_cb, id, 0, 2, argv, NULL);
}

void check_instances(struct cluster *cl) {
  struct map insts = {0};
  map_each(&cl->remotes, collect_insts, &insts);
  /* hb_cb may run at once (Redis away) and change cl->remotes, not insts. */
  map_each(&insts, check_one, cl);
  map_free(&insts);
}
