/* Several instances through Redis: leases, room streams, forwarding to the
 * owner, takeover (see cluster.h and docs/adr/0006-several-instances.md).
 *
 * Redis keys (prefix huddle:):
 *   lease:{room}   "instance:fence", PX LEASE_MS, renewed by the owner
 *   fence:{room}   INCR'd for every new owner
 *   stream:{room}  the room's stream: id "seq-0" for a room-log entry (L),
 *                  "seq-k" (k > 0) for a frame to one session (S) or a
 *                  session close (C) after that seq; MAXLEN ~ room-log-max
 *   snap:{room}    JSON snapshot of the room's state (members, roles,
 *                  overrides, settings, hands, bans, seq)
 *   inbox:{inst}   what other instances send this one (opens, messages,
 *                  ends, REST calls and their responses); its reader trims
 *                  what it read before running messages and REST calls
 *   hb:{inst}      heartbeat, PX LEASE_MS; its value is the address other
 *                  instances reach this one at for shared files ("-": none)
 *   grant:{jti}    a spent breakout grant, PX until the grant expires
 *   rooms          sorted set: rooms live on some instance, scored by when
 *                  their entry expires (renewed by the owner every tick)
 *   roomview       hash: room id -> the owner's JSON view (GET /webrtc/rooms)
 *   bcast          what every instance applies (a user's erase); each
 *                  instance reads it from where it started
 * Two connections: one for commands (pipelined, in call order) and one
 * reading (XREAD BLOCK over the inbox and the streams of rooms owned
 * elsewhere that have local members).
 *
 * This file: start and stop, the tick (heartbeat, renewals, takeovers,
 * released rooms) and the check after every loop turn (snapshots), health
 * and metrics. The parts are listed in cluster_int.h. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "cluster/cluster_int.h"
#include "lib/ids.h"
#include "signal/signal.h"
#include "store/store.h"

struct cluster *the_cluster; /* set by cluster_start: the net callbacks find it here */

/* The rooms this instance knows, all of them, for one pass of the tick
 * (releasing a room or a synchronous Redis answer may change cl->rooms). */
static struct ptrvec *rooms_collect(struct cluster *cl) {
  struct ptrvec *s = &cl->sweep;
  s->n = s->missed = 0;
  map_each(&cl->rooms, ptrvec_push, s);
  if (s->missed) log_warn("sweep_short rooms=%zu missed=%zu reason=\"out of memory\"", s->n, s->missed);
  return s;
}

/* After a loop turn: the snapshot and the analytics of a room owned here
 * that changed (both leave cl->rooms alone: their commands are sent or held). */
static void snapshot_if_dirty(const char *k, void *v, void *arg) {
  struct croom *cr = v;
  (void)k;
  struct cluster *cl = arg;
  if (cr->owned && !cr->rebuilding) {
    if (cr->dirty) snapshot_write(cl, cr);
    if (cl->ana_erases != cl->h->history.erases) cr->ana_full = 1;
    analytics_write(cl, cr);
  }
}

void heartbeat_send(struct cluster *cl) {
  char hb[KEY_MAX], ttl[16];
  key_of(hb, "hb", cl->inst);
  snprintf(ttl, sizeof(ttl), "%d", LEASE_MS);
  ffwd_addr(cl); /* the heartbeat's value: where the others reach this instance ("-": nowhere) */
  const char *argv[] = {"SET", hb, cl->addr[0] ? cl->addr : "-", "PX", ttl};
  if (cl->hb_unanswered == 0) cl->hb_unanswered = now_ms(cl); /* redis_watchdog */
  redis_cmd(cl, redis_hb_cb, NULL, 0, 5, argv, NULL);
}

static void on_timer(uv_timer_t *t) {
  struct cluster *cl = t->data;
  if (cl->srv->shutting_down && cl->shutdown_seen == 0) cl->shutdown_seen = now_ms(cl);
  if (cl->srv->shutting_down && cl->srv->nconns == 0) {
    cluster_stop(cl); /* the loop ends once our handles are closed */
    return;
  }
  redis_watchdog(cl);
  if (!cl->cmd_up) return;
  heartbeat_send(cl);
  map_each(&cl->rooms, renew_room, cl);
  if (now_ms(cl) - cl->up_since >= LEASE_MS) check_instances(cl);
  fwd_check(cl);
  struct ptrvec *s = rooms_collect(cl);
  rooms_publish(cl, s);
  for (size_t i = 0; i < s->n; i++) {
    struct croom *cr = s->v[i];
    if (cr->owned) {
      if (!cr->rebuilding && !cr->acquiring && hub_room_find(cl->h, cr->id) == NULL && cr->links == NULL &&
          cr->gated_joins == 0)
        croom_release(cl, cr);
    } else if (cr->links == NULL && !cr->acquiring && !(cr->parent[0] && hub_room_find(cl->h, cr->parent))) {
      croom_drop(cl, cr); /* nobody of ours in it any more (nor a breakout room of a family owned here) */
    } else if (now_ms(cl) - cl->up_since >= LEASE_MS) {
      /* Is the owner still there? A lease that expired is taken here. */
      croom_resolve(cl, cr);
    }
  }
}

/* After every loop turn: snapshots of rooms that changed, freed remotes. */
static void on_check(uv_check_t *t) {
  struct cluster *cl = t->data;
  remotes_reap(cl);
  /* Rooms made here by the room's own operations (breakout rooms) are
   * claimed like those of POST /webrtc/rooms: a grant used through another
   * instance must find the family's owner. */
  if (cl->cmd_up) {
    if (cl->h->rooms.count != cl->rooms_seen) map_each(&cl->h->rooms, claim_local, cl);
    cl->rooms_seen = cl->h->rooms.count;
  }
  map_each(&cl->rooms, snapshot_if_dirty, cl);
  cl->ana_erases = cl->h->history.erases;
}

int cluster_start(struct hub *h, struct server *srv, const char *url, char *err, size_t err_len) {
  struct cluster *cl = calloc(1, sizeof(*cl));
  if (cl == NULL) return snprintf(err, err_len, "out of memory"), -1;
  if (redis_url_parse(&cl->url, url, err, err_len) != 0) {
    free(cl);
    return -1;
  }
  cl->h = h;
  cl->srv = srv;
  cl->loop = h->loop;
  cl->backoff_ms = BACKOFF_MIN_MS;
  if (id_random_hex(cl->inst, 6) != 0) {
    free(cl);
    return snprintf(err, err_len, "no randomness for the instance id"), -1;
  }
  snprintf(cl->inbox_pos, sizeof(cl->inbox_pos), "0-0");
  cl->bus.ops = &bus_redis_ops;
  cl->bus.deliver = signal_bus_deliver;
  cl->bus.arg = cl;
  uv_timer_init(cl->loop, &cl->timer);
  uv_timer_init(cl->loop, &cl->retry);
  uv_timer_init(cl->loop, &cl->ana_wake);
  uv_check_init(cl->loop, &cl->check);
  uv_timer_init(cl->loop, &cl->stop_bound);
  cl->timer.data = cl->retry.data = cl->check.data = cl->ana_wake.data = cl->stop_bound.data = cl;
  uv_timer_start(&cl->timer, on_timer, TIMER_MS, TIMER_MS);
  uv_check_start(&cl->check, on_check);
  the_cluster = cl;
  h->cluster = cl;
  h->limiter = &redis_limiter;
  h->limiter_impl = cl;
  if (h->bus) h->bus->ops->close(h->bus);
  h->bus = &cl->bus;
  cl->grant_shared = !h->grant_key_ready; /* no HMAC secret to derive it from (family_grant_key) */
  /* Each instance with its own SQLite file keeps its own rooms' records:
   * history, audit and what restores a room are those of the instance that
   * had the room (README "Several instances"). */
  if (h->store && strcmp(store_backend(h->store), "postgresql") != 0)
    log_warn("store_not_shared backend=%s hint=\"several instances share chat history, audit logs and room "
             "restores only through one PostgreSQL (--database-url)\"", store_backend(h->store));
  redis_connect(cl, 0);
  redis_connect(cl, 1);
  return 0;
}

static void close_cb(uv_handle_t *hd) {}

/* While the command connection says goodbye (cluster_stop): once it is
 * gone the timer goes too; at the bound it is freed, its callbacks get NULL. */
static void stop_bound_cb(uv_timer_t *t) {
  struct cluster *cl = t->data;
  if (cl->cmd && now_ms(cl) >= cl->stop_deadline) {
    log_warn("redis_goodbye_unanswered reason=\"the command connection's replies did not come before the shutdown bound\"");
    redisAsyncContext *ac = cl->cmd;
    cl->cmd = NULL, cl->cmd_up = 0;
    redisAsyncFree(ac);
  }
  if (cl->cmd == NULL) {
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, close_cb);
  }
}

void cluster_stop(struct cluster *cl) {
  if (cl == NULL || cl->stopping) return;
  cl->stopping = 1;
  uv_timer_stop(&cl->timer);
  uv_timer_stop(&cl->retry);
  uv_timer_stop(&cl->ana_wake);
  uv_check_stop(&cl->check);
  uv_close((uv_handle_t *)&cl->timer, close_cb);
  uv_close((uv_handle_t *)&cl->retry, close_cb);
  uv_close((uv_handle_t *)&cl->ana_wake, close_cb);
  uv_close((uv_handle_t *)&cl->check, close_cb);
  free(cl->feeds);
  cl->feeds = NULL, cl->nfeeds = cl->cap_feeds = 0;
  ptrvec_free(&cl->sweep);
  ffwd_close_all(cl);
  if (cl->rd) {
    redisAsyncFree(cl->rd); /* blocked in XREAD: nothing to wait for */
    cl->rd = NULL, cl->rd_up = 0;
  }
  if (cl->cmd) redisAsyncDisconnect(cl->cmd); /* sends what is queued first, then waits for the replies */
  if (cl->cmd == NULL) {
    uv_close((uv_handle_t *)&cl->stop_bound, close_cb);
    return;
  }
  /* A Redis that does not answer (stopped, cut off) would hold the loop
   * for ever: the wait ends with --shutdown-timeout-ms (what is left of it
   * since the shutdown began, at least 100 ms). */
  uint64_t bound = (uint64_t)cl->srv->cfg->shutdown_timeout_ms;
  uint64_t spent = cl->shutdown_seen ? now_ms(cl) - cl->shutdown_seen : 0;
  bound = spent + 100 < bound ? bound - spent : 100;
  cl->stop_deadline = now_ms(cl) + bound;
  uv_timer_start(&cl->stop_bound, stop_bound_cb, 20, 20); /* also sees the goodbye done */
}

const char *cluster_instance_id(const struct cluster *cl) { return cl->inst; }

int cluster_redis_up(const struct cluster *cl) { return cl->cmd_up && cl->rd_up; }

const struct cluster_stats *cluster_stats_get(const struct cluster *cl) { return &cl->st; }

size_t cluster_owned_rooms(const struct cluster *cl) {
  size_t n = 0;
  for (size_t i = 0; i < cl->rooms.nbuckets; i++)
    for (struct map_entry *e = cl->rooms.buckets[i]; e; e = e->next) n += ((struct croom *)e->value)->owned;
  return n;
}

json_t *cluster_health_json(const struct cluster *cl) {
  json_t *owned = json_array();
  for (size_t i = 0; i < cl->rooms.nbuckets; i++)
    for (struct map_entry *e = cl->rooms.buckets[i]; e; e = e->next)
      if (((struct croom *)e->value)->owned) json_array_append_new(owned, json_string(e->key));
  return json_pack("{s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I}", "instance_id", cl->inst, "redis",
                   cluster_redis_up(cl) ? "ok" : "unavailable", "owned_rooms", owned, "forwarded_out",
                   (json_int_t)cl->st.forwarded_out, "forwarded_in", (json_int_t)cl->st.forwarded_in,
                   "stream_entries_in", (json_int_t)cl->st.stream_entries_in, "queued",
                   (json_int_t)cl->npending, "stream_lag_ms", cl->st.stream_lag_ms, "stream_lag_max_ms",
                   cl->st.stream_lag_max_ms, "takeovers", (json_int_t)cl->st.takeovers, "fenced",
                   (json_int_t)cl->st.fenced, "opens_moved", (json_int_t)cl->st.opens_moved, "forwards_retried",
                   (json_int_t)cl->st.forwards_retried, "forwards_unanswered", (json_int_t)cl->st.forwards_unanswered,
                   "msgs_recovered", (json_int_t)cl->st.msgs_recovered, "advertise_addr",
                   cl->addr[0] ? json_string(cl->addr) : json_null(), "files_forwarded",
                   (json_int_t)cl->st.files_forwarded, "files_forward_failed", (json_int_t)cl->st.files_forward_failed);
}

void cluster_metrics(const struct cluster *cl, struct buf *b) {
  char t[4096];
  int n = snprintf(
      t, sizeof(t),
      "# HELP huddle_cluster_info This instance's id in the cluster.\n# TYPE huddle_cluster_info gauge\n"
      "huddle_cluster_info{instance_id=\"%s\"} 1\n"
      "# HELP huddle_cluster_redis_up 1 while both Redis connections are up.\n# TYPE huddle_cluster_redis_up gauge\n"
      "huddle_cluster_redis_up %d\n"
      "# HELP huddle_cluster_owned_rooms Rooms whose lease this instance holds.\n# TYPE huddle_cluster_owned_rooms gauge\n"
      "huddle_cluster_owned_rooms %zu\n"
      "# HELP huddle_cluster_forwarded_out_total Client messages and REST calls sent to another instance.\n"
      "# TYPE huddle_cluster_forwarded_out_total counter\nhuddle_cluster_forwarded_out_total %llu\n"
      "# HELP huddle_cluster_forwarded_in_total Messages and calls from other instances run here.\n"
      "# TYPE huddle_cluster_forwarded_in_total counter\nhuddle_cluster_forwarded_in_total %llu\n"
      "# HELP huddle_cluster_stream_entries_in_total Room stream entries read for local sessions.\n"
      "# TYPE huddle_cluster_stream_entries_in_total counter\nhuddle_cluster_stream_entries_in_total %llu\n"
      "# HELP huddle_cluster_stream_lag_seconds Last delay from the owner's append to local delivery.\n"
      "# TYPE huddle_cluster_stream_lag_seconds gauge\nhuddle_cluster_stream_lag_seconds %.3f\n"
      "# HELP huddle_cluster_queued_commands Redis commands held while Redis is away.\n"
      "# TYPE huddle_cluster_queued_commands gauge\nhuddle_cluster_queued_commands %zu\n"
      "# HELP huddle_cluster_takeovers_total Rooms taken over from a dead owner.\n"
      "# TYPE huddle_cluster_takeovers_total counter\nhuddle_cluster_takeovers_total %llu\n"
      "# HELP huddle_cluster_opens_moved_total Joins sent again because the instance named as owner had given the room up.\n"
      "# TYPE huddle_cluster_opens_moved_total counter\nhuddle_cluster_opens_moved_total %llu\n"
      "# HELP huddle_cluster_forwards_retried_total REST calls taken back from a dead owner and sent again.\n"
      "# TYPE huddle_cluster_forwards_retried_total counter\nhuddle_cluster_forwards_retried_total %llu\n"
      "# HELP huddle_cluster_forwards_unanswered_total REST calls answered 503: their owner died after reading them, or did not answer in time.\n"
      "# TYPE huddle_cluster_forwards_unanswered_total counter\nhuddle_cluster_forwards_unanswered_total %llu\n"
      "# HELP huddle_cluster_msgs_recovered_total Client messages taken back from a dead owner's inbox and sent to the new owner.\n"
      "# TYPE huddle_cluster_msgs_recovered_total counter\nhuddle_cluster_msgs_recovered_total %llu\n"
      "# HELP huddle_cluster_files_forwarded_total Shared-file requests passed to their room's owner over HTTP.\n"
      "# TYPE huddle_cluster_files_forwarded_total counter\nhuddle_cluster_files_forwarded_total %llu\n"
      "# HELP huddle_cluster_files_forward_failed_total Shared-file requests whose owner could not answer: 503 or a cut connection.\n"
      "# TYPE huddle_cluster_files_forward_failed_total counter\nhuddle_cluster_files_forward_failed_total %llu\n",
      cl->inst, cluster_redis_up(cl), cluster_owned_rooms(cl), (unsigned long long)cl->st.forwarded_out,
      (unsigned long long)cl->st.forwarded_in, (unsigned long long)cl->st.stream_entries_in,
      cl->st.stream_lag_ms / 1000.0, cl->npending, (unsigned long long)cl->st.takeovers,
      (unsigned long long)cl->st.opens_moved, (unsigned long long)cl->st.forwards_retried,
      (unsigned long long)cl->st.forwards_unanswered, (unsigned long long)cl->st.msgs_recovered,
      (unsigned long long)cl->st.files_forwarded, (unsigned long long)cl->st.files_forward_failed);
  if (n > 0) buf_append(b, t, (size_t)n < sizeof(t) ? (size_t)n : sizeof(t) - 1);
}
