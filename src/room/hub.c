/* The hub (see hub.h): rooms, publishing, and resume bookkeeping. */
#define LOG_MODULE "room"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "lib/envelope.h"
#include "room/durable.h"
#include "room/family.h"
#include "room/hub.h"
#include "room/op.h"
#include "store/store.h"

uint64_t hub_now_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static const struct hub_limiter_ops local_limiter;

int hub_init(struct hub *h, uv_loop_t *loop, const struct config *cfg, char *err, size_t err_len) {
  memset(h, 0, sizeof(*h));
  h->loop = loop;
  h->cfg = cfg;
  h->last_prune_ms = uv_now(loop);
  ratelimit_init(&h->rl);
  h->limiter = &local_limiter;
  h->limiter_impl = &h->rl;
  h->history.max_rooms = (size_t)cfg->history_rooms;
  h->history.max_bytes = (size_t)cfg->history_max_mb << 20;
  for (int i = 0; i < RATE__COUNT; i++) {
    const char *spec = cfg->rate[i];
    if (spec && ratelimit_rule_parse(spec, &h->rl.rules[i]) != 0) {
      snprintf(err, err_len, "--rate-%s: expected N/window such as 60/1m, got '%s'",
               ratelimit_class_name((enum rate_class)i), spec);
      return -1;
    }
  }
  return 0;
}

static void free_room(const char *key, void *value, void *arg) { room_free(value); }

void hub_free(struct hub *h) {
  durable_free(h);
  op_grants_free(h);
  map_each(&h->rooms, free_room, NULL);
  map_free(&h->rooms);
  map_free(&h->expired);
  history_registry_free(&h->history);
  ratelimit_free(&h->rl);
  if (h->bus) h->bus->ops->close(h->bus);
  h->bus = NULL;
  store_close(h->store);
  h->store = NULL;
}

void hub_tick(void *data) {
  struct hub *h = data;
  uint64_t now = uv_now(h->loop);
  hub_members_expire(h);
  durable_tick(h);
  if (now - h->last_prune_ms >= 60000) {
    h->last_prune_ms = now;
    op_grants_prune(h);
    hub_rooms_sweep(h);
    hub_expired_prune(h);
    ratelimit_prune(&h->rl, now);
  }
}

/* ---- rate limits ---- */

static void local_check(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                        struct ratelimit_result *out) {
  ratelimit_check(impl, key, c, now_ms, out);
}

static void local_peek(void *impl, const char *key, enum rate_class c, uint64_t now_ms,
                       struct ratelimit_result *out) {
  ratelimit_peek(impl, key, c, now_ms, out);
}

static const struct hub_limiter_ops local_limiter = {"local", local_check, local_peek};

void hub_rate_check(struct hub *h, const char *key, enum rate_class c, struct ratelimit_result *out) {
  h->limiter->check(h->limiter_impl, key, c, uv_now(h->loop), out);
}

void hub_rate_peek(struct hub *h, const char *key, enum rate_class c, struct ratelimit_result *out) {
  h->limiter->peek(h->limiter_impl, key, c, uv_now(h->loop), out);
}

/* ---- rooms ---- */

struct room *hub_room_find(struct hub *h, const char *room_id) { return map_get(&h->rooms, room_id); }

struct room *hub_room_create(struct hub *h, const char *room_id) {
  uint64_t now = hub_now_ms();
  struct room *r = room_new(room_id, h->cfg->max_room_participants, now);
  if (r == NULL) return NULL;
  roomlog_init(&r->log, (size_t)h->cfg->room_log_max, (size_t)h->cfg->room_log_max_bytes,
               (uint64_t)h->cfg->room_log_max_age_ms);
  r->hist = history_get_or_create(&h->history, room_id, now);
  if (r->hist == NULL || map_put(&h->rooms, room_id, r) != 0) {
    room_free(r);
    return NULL;
  }
  durable_room_open(h, r);
  log_info("room_created room=%s", room_id);
  return r;
}

void hub_room_release(struct hub *h, struct room *r) {
  if (family_collapse(h, r)) return; /* an empty family closes as a whole */
  if (!room_idle(r, hub_now_ms())) return;
  log_info("room_closed room=%s peak=%zu", r->id, r->peak);
  map_del(&h->rooms, r->id);
  durable_room_close(h, r);
  if (r->hist) {
    op_media_stop_all(h, r->hist);
    history_close(&h->history, r->hist, hub_now_ms());
  }
  room_free(r);
}

struct idle_rooms { char (*ids)[ID_MAX + 1]; size_t n, cap; uint64_t now; };

static void collect_idle(const char *k, void *v, void *arg) {
  struct idle_rooms *ir = arg;
  if (!room_idle(v, ir->now) || ir->n == ir->cap) return;
  snprintf(ir->ids[ir->n++], ID_MAX + 1, "%s", k);
}

void hub_rooms_sweep(struct hub *h) {
  char ids[64][ID_MAX + 1];
  struct idle_rooms ir = {ids, 0, 64, hub_now_ms()};
  family_sweep(h);
  map_each(&h->rooms, collect_idle, &ir);
  for (size_t i = 0; i < ir.n; i++) {
    struct room *r = map_get(&h->rooms, ids[i]);
    if (r) hub_room_release(h, r);
  }
}

void hub_room_evict(struct hub *h, struct room *r, int code, const char *reason) {
  uint64_t now = hub_now_ms();
  r->held++;
  while (r->head) {
    struct participant *p = r->head;
    void *session = p->session;
    if (p->away_ms) {
      p->away_ms = 0;
      r->naway--;
      h->naway--;
    }
    room_participant_remove(r, p);
    room_transfers_drop_user(r, p->user_id);
    if (r->hist) {
      uint64_t len = now > p->joined_ms ? now - p->joined_ms : 0;
      r->hist->closed_session_ms += len;
      history_event(r->hist, now, "leave", p->user_id, reason, (int64_t)len, NULL);
    }
    p->session = NULL;
    if (session) h->sessions.close(h->sessions.data, session, code, reason);
    room_participant_free(p);
  }
  r->held--;
  hub_room_release(h, r);
}

/* ---- publishing ---- */

/* r: the open room of room_id, or NULL (closed meanwhile: no log). */
static int publish_frame(struct hub *h, struct room *r, const char *room_id, uint64_t seq, int type,
                         struct outbuf *frame, const char *to, const char *except, const char *also,
                         uint32_t only_perm) {
  if (r) roomlog_append(&r->log, seq, uv_now(h->loop), type, frame, to, except, also, only_perm);
  struct bus_msg m = {room_id, to, except, also, only_perm, type, frame, seq};
  return h->bus->ops->publish(h->bus, &m, NULL, NULL);
}

int hub_publish_frame(struct hub *h, const char *room_id, uint64_t seq, int type, struct outbuf *frame,
                      const char *to, const char *except, const char *also, uint32_t only_perm) {
  return publish_frame(h, hub_room_find(h, room_id), room_id, seq, type, frame, to, except, also, only_perm);
}

/* Assigns e the room's next seq and encodes it once; NULL on failure. */
static struct outbuf *encode_event(struct room *r, const struct room_event *e, uint64_t *seq) {
  uint64_t ts = hub_now_ms();
  *seq = room_seq_next(r);
  return e->raw_payload
      ? envelope_encode_raw(e->type, r->id, e->from, e->to, *seq, ts, e->raw_payload, e->raw_len, e->ref)
      : envelope_encode(e->type, r->id, e->from, e->to, *seq, ts, e->payload, e->ref);
}

/* Publishes an encoded room message, or holds it behind a chat message the
 * store has not committed yet (the room log gets it when it is published).
 * Consumes the caller's ref on b. */
static int send_frame(struct hub *h, struct room *r, uint64_t seq, int type, struct outbuf *b, const char *to,
                      const char *except, const char *also, uint32_t only_perm) {
  int rc = durable_hold(h, r, seq, type, b, to, except, also, only_perm)
      ? 0 : publish_frame(h, r, r->id, seq, type, b, to, except, also, only_perm);
  outbuf_unref(b);
  return rc;
}

int hub_send(struct hub *h, struct room *r, const struct room_event *e) {
  uint64_t seq;
  struct outbuf *b = encode_event(r, e, &seq);
  if (b == NULL) return -1;
  return send_frame(h, r, seq, msg_type_id(e->type), b, e->to, e->except, e->also, e->only_perm);
}

int hub_publish(struct hub *h, struct room *r, const char *type, const char *from, const char *to,
                const char *except, json_t *payload) {
  struct room_event e = {type, from, to, except, NULL, 0, payload, NULL, NULL, 0};
  return hub_send(h, r, &e);
}

int hub_send_only(struct hub *h, struct room *r, const struct room_event *e, const char *deliver_to) {
  uint64_t seq;
  struct outbuf *b = encode_event(r, e, &seq);
  if (b == NULL) return -1;
  return send_frame(h, r, seq, msg_type_id(e->type), b, deliver_to, NULL, NULL, 0);
}

void hub_send_session(struct hub *h, void *session, struct room *r, const char *type, json_t *payload,
                      const char *ref) {
  /* The last seq published, not one still held behind a chat being stored
   * (durable.c): what follows must be numbered above it. */
  struct outbuf *b = envelope_encode(type, r ? r->id : NULL, "server", NULL, r ? durable_published_seq(h, r) : 0,
                                     hub_now_ms(), payload, ref);
  int id = msg_type_id(type);
  if (id >= 0 && id < HUB_STATS_TYPES) h->stats.out_by_type[id]++;
  if (b) h->sessions.send(h->sessions.data, session, b);
}

/* ---- resume bookkeeping ---- */

#define EXPIRED_KEEP_MS (10 * 60 * 1000)
#define EXPIRED_MAX 100000
#define EXPIRED_KEY (2 * ID_MAX + 70)

static void expired_key(char *out, size_t n, const char *room, const char *user, const char *token) {
  snprintf(out, n, "%s/%s/%s", room, user, token);
}

void hub_expired_add(struct hub *h, struct room *r, const struct participant *p) {
  if (h->expired.count >= EXPIRED_MAX) return;
  char key[EXPIRED_KEY];
  char rt[65];
  expired_key(key, sizeof(key), r->id, p->user_id, room_participant_resume_token(p, rt));
  map_put(&h->expired, key, (void *)(uintptr_t)(uv_now(h->loop) + EXPIRED_KEEP_MS));
}

int hub_expired_has(struct hub *h, const char *room_id, const char *user_id, const char *token) {
  char key[EXPIRED_KEY];
  expired_key(key, sizeof(key), room_id, user_id, token);
  return map_get(&h->expired, key) != NULL;
}

struct expired_scan { uint64_t now; char (*keys)[EXPIRED_KEY]; size_t n, cap; };

static void collect_expired(const char *k, void *v, void *arg) {
  struct expired_scan *es = arg;
  if ((uint64_t)(uintptr_t)v > es->now || es->n == es->cap) return;
  snprintf(es->keys[es->n++], EXPIRED_KEY, "%s", k);
}

void hub_expired_prune(struct hub *h) {
  char (*keys)[EXPIRED_KEY] = malloc(256 * sizeof(*keys));
  if (keys == NULL) return;
  struct expired_scan es = {uv_now(h->loop), keys, 0, 256};
  map_each(&h->expired, collect_expired, &es);
  for (size_t i = 0; i < es.n; i++) map_del(&h->expired, keys[i]);
  free(keys);
}
