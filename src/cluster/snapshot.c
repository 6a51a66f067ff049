/* The owner's snapshot of a room (snap:{room}), written after a loop turn
 * that changed the room, fenced: members with roles, overrides, resume
 * tokens and where their sessions are, settings, hands, bans, seq, the
 * waiting room, the family (breakout rooms), recordings and live streams,
 * and the room's policy (room/policy.h: who was admitted with what, role
 * and permission changes made in the room, rejections).
 * A new owner reads it back in takeover.c. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "lib/ids.h"
#include "room/policy.h"
#include "room/room.h"

/* KEYS lease, snap; ARGV "inst:", json */
static const char LUA_SNAP[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end "
    "redis.call('SET', KEYS[2], ARGV[2]) return 1";

/* The family (a main room's breakout rooms and who is assigned where, or a
 * breakout room's main room), and the room's recordings and live streams
 * (their ids, who started and stopped them, when; a stream's target with
 * its key: Redis holds secrets of the room already, the resume tokens). */
static void family_to_snap(const struct room *r, json_t *snap) {
  json_t *brs = json_array(), *recs = json_array(), *strs = json_array();
  for (size_t i = 0; i < r->nbreakouts; i++) {
    const struct breakout *b = &r->breakouts[i];
    json_t *as = json_array();
    for (size_t j = 0; j < b->nassigned; j++) json_array_append_new(as, json_string(b->assigned[j]));
    json_array_append_new(brs, json_pack("{s:s,s:s,s:o}", "id", b->id, "name", b->name, "as", as));
  }
  const struct room_history *hi = r->hist;
  for (size_t i = 0; hi && i < hi->nrecordings; i++) {
    const struct recording *rc = &hi->recordings[i];
    json_array_append_new(recs, json_pack("{s:s,s:s,s:s,s:I,s:I,s:s}", "id", rc->id, "by", rc->started_by, "sb",
                                          rc->stopped_by, "t0", (json_int_t)rc->started_ms, "t1",
                                          (json_int_t)rc->stopped_ms, "fmt", rc->format));
  }
  for (size_t i = 0; hi && i < hi->nstreams; i++) {
    const struct live_stream *st = &hi->streams[i];
    json_array_append_new(strs, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "id", st->id, "name", st->name,
                                          "tg", st->target ? st->target : "", "tr",
                                          st->target_redacted ? st->target_redacted : "", "by", st->started_by,
                                          "sb", st->stopped_by, "t0", (json_int_t)st->started_ms, "t1",
                                          (json_int_t)st->stopped_ms));
  }
  json_object_set_new(snap, "parent", json_string(r->parent));
  json_object_set_new(snap, "held", json_integer(r->held));
  json_object_set_new(snap, "breakouts", brs);
  json_object_set_new(snap, "recordings", recs);
  json_object_set_new(snap, "streams", strs);
}

/* Where a member's or waiter's session is connected: this instance (no
 * link: a local socket) or another one and its link there; "" for none. */
static void session_where(const void *arg, const void *session, const char **inst, const char **link) {
  const struct cluster *cl = arg;
  const struct conn *c = session;
  *inst = "", *link = "";
  if (c == NULL) return;
  if (c->proxy) {
    const struct remote *rm = c->cluster;
    *inst = rm->inst;
    *link = strchr(rm->key, '/') + 1;
  } else {
    *inst = cl->inst;
  }
}

/* The waiting room, in arrival order: claims (a waiter is admitted with
 * them), since when, and where each waiter is connected, so that a new
 * owner can admit a waiter of a dead owner's room without a reconnect. */
static json_t *waiters_to_snap(const struct room *r, snap_where_cb where, const void *arg) {
  json_t *ws = json_array();
  for (const struct waiter *w = r->wait_head; w; w = w->next) {
    const char *inst, *link;
    char cs[64];
    where(arg, w->session, &inst, &link);
    claims_to_fields(&w->claims, cs, sizeof(cs));
    json_array_append_new(ws, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:s,s:s}", "u", w->claims.sub, "n",
                                        w->claims.name, "rm", w->claims.room, "cl", cs, "exp",
                                        (json_int_t)w->claims.exp, "since", (json_int_t)w->since_ms, "inst",
                                        inst, "link", link));
  }
  return ws;
}

/* The room's policy records (a family's are kept at its main room): one
 * entry a user admitted or changed in the room, {"u", "n", "a" (admitted),
 * "br", "bs", "bv" (the standing it was first admitted with), and "r" for
 * a role change, "ps", "pv" for a permission change}; and the users turned
 * away from the waiting room. Users who left count too: a demoted
 * moderator who left comes back demoted, and a member's grant needs its
 * admission (policy_member_claims). */
static void policy_user_to_snap(const char *user, void *v, void *arg) {
  const struct policy_rec *rec = v;
  json_t *u = json_pack("{s:s,s:s,s:b,s:i,s:I,s:I}", "u", user, "n", rec->name ? rec->name : "", "a",
                        rec->admitted, "br", (int)rec->base_role, "bs", (json_int_t)rec->base_set, "bv",
                        (json_int_t)rec->base_val);
  if (u == NULL) return;
  if (rec->has_role) json_object_set_new(u, "r", json_integer(rec->role));
  if (rec->has_perms) {
    json_object_set_new(u, "ps", json_integer(rec->set));
    json_object_set_new(u, "pv", json_integer(rec->val));
  }
  json_array_append_new(arg, u);
}

static json_t *policy_to_snap(const struct room *r) {
  json_t *users = json_array(), *rejected = json_array();
  const struct room_policy *p = r->policy;
  if (p) {
    policy_each(p, policy_user_to_snap, users);
    for (size_t i = 0; i < p->rejected.nbuckets; i++)
      for (struct map_entry *e = p->rejected.buckets[i]; e; e = e->next)
        json_array_append_new(rejected, json_string(e->key));
  }
  return json_pack("{s:o,s:o}", "users", users, "rejected", rejected);
}

json_t *snap_encode(const struct room *r, snap_where_cb where, const void *arg) {
  json_t *members = json_array(), *hands = json_array(), *banned = json_array();
  for (struct participant *p = r->head; p; p = p->next) {
    const char *inst, *link;
    char sid[33], rt[65];
    where(arg, p->session, &inst, &link);
    json_array_append_new(
        members,
        json_pack("{s:s,s:s,s:i,s:I,s:I,s:i,s:I,s:I,s:s,s:s,s:I,s:i,s:i,s:i,s:s,s:s}", "u", p->user_id, "n",
                  p->name, "role", (int)p->role, "ps", (json_int_t)p->perms_set, "pv", (json_int_t)p->perms_val,
                  "orole", (int)p->origin_role, "os", (json_int_t)p->origin_set, "ov",
                  (json_int_t)p->origin_val, "sid", room_participant_session_id(p, sid), "rt", room_participant_resume_token(p, rt), "joined",
                  (json_int_t)p->joined_ms, "a", p->audio, "v", p->video, "s", p->screen, "inst", inst,
                  "link", link));
  }
  for (size_t i = 0; i < r->nhands; i++)
    json_array_append_new(hands, json_pack("{s:s,s:s,s:I}", "u", r->hands[i].user_id, "n", r->hands[i].name,
                                           "ms", (json_int_t)r->hands[i].raised_ms));
  struct map_entry *e;
  for (size_t i = 0; i < r->banned.nbuckets; i++)
    for (e = r->banned.buckets[i]; e; e = e->next) json_array_append_new(banned, json_string(e->key));
  const struct room_settings *s = &r->settings;
  json_t *snap = json_pack(
      "{s:I,s:I,s:o,s:o,s:o,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i}}", "seq", (json_int_t)r->seq, "created",
      (json_int_t)r->created_ms, "members", members, "hands", hands, "banned", banned, "settings", "locked",
      s->locked, "waiting_room", s->waiting_room, "mute_on_join", s->mute_on_join, "max", s->max_participants,
      "chat", s->chat_enabled, "reactions", s->reactions_enabled, "ssmo", s->screen_share_moderators_only);
  if (snap) family_to_snap(r, snap);
  if (snap) json_object_set_new(snap, "waiters", waiters_to_snap(r, where, arg));
  if (snap) json_object_set_new(snap, "policy", policy_to_snap(r));
  return snap;
}

void snapshot_write(struct cluster *cl, struct croom *cr) {
  struct room *r = hub_room_find(cl->h, cr->id);
  if (r == NULL) return;
  json_t *snap = snap_encode(r, session_where, cl);
  char *txt = snap ? json_dumps(snap, JSON_COMPACT) : NULL;
  json_decref(snap);
  log_debug("snapshot room=%s seq=%" PRIu64 " ok=%d", cr->id, r->seq, txt != NULL);
  if (txt == NULL) return;
  char lease[KEY_MAX], key[KEY_MAX], prefix[40];
  key_of(lease, "lease", cr->id);
  key_of(key, "snap", cr->id);
  snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
  const char *argv[] = {"EVAL", LUA_SNAP, "2", lease, key, prefix, txt};
  redis_cmd(cl, append_cb, NULL, 1, 7, argv, NULL);
  free(txt);
  cr->dirty = 0;
  cr->snap_ms = now_ms(cl);
}

/* ---- the room's analytics (ana:, anaev:, anaau:{room}) ---- */

#define ANA_MS 100          /* at most one write a room this often */
#define STR_(x) #x
#define STR(x) STR_(x)

/* KEYS lease, ana, anaev, anaau; ARGV "inst:", aggregates, "w" (whole:
 * the lists are replaced) or "a" (appended to), n, n events, audit entries */
static const char LUA_ANA[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v or string.sub(v, 1, #ARGV[1]) ~= ARGV[1] then return redis.error_reply('FENCED') end "
    "redis.call('SET', KEYS[2], ARGV[2]) "
    "if ARGV[3] == 'w' then redis.call('DEL', KEYS[3], KEYS[4]) end "
    "local n = tonumber(ARGV[4]) "
    "if n > 0 then redis.call('RPUSH', KEYS[3], unpack(ARGV, 5, 4 + n)) "
    "  redis.call('LTRIM', KEYS[3], -" STR(HISTORY_EVENTS) ", -1) end "
    "if #ARGV > 4 + n then redis.call('RPUSH', KEYS[4], unpack(ARGV, 5 + n)) "
    "  redis.call('LTRIM', KEYS[4], -" STR(HISTORY_EVENTS) ", -1) end "
    "return 1";

static void ana_room(const char *k, void *v, void *arg) {
  struct croom *cr = v;
  (void)k;
  if (cr->owned && !cr->rebuilding) analytics_write(arg, cr);
}

/* A write held back by ANA_MS is due (a poll after a timer may wait for the
 * next event or tick before the turn's check runs). */
static void ana_woken(uv_timer_t *t) { map_each(&((struct cluster *)t->data)->rooms, ana_room, t->data); }

/* Every counter of h added up: they only rise, so any change raises it. */
static uint64_t ana_sum(const struct room_history *h) {
  uint64_t s = h->sessions + h->closed_session_ms + h->peak + h->custom_events;
  for (int b = 0; b < QUALITY__COUNT; b++) s += h->quality[b];
  for (int i = 0; h->messages_by_type && i < HISTORY_MSG_TYPES; i++) s += h->messages_by_type[i];
  return s;
}

/* Appends each entry of a (a JSON array) as compact text (owned) to argv
 * from at on; returns the next free index. */
static size_t ana_texts(json_t *a, const char **argv, size_t at) {
  size_t i;
  json_t *e;
  json_array_foreach(a, i, e) {
    char *t = json_dumps(e, JSON_COMPACT);
    if (t) argv[at++] = t;
  }
  return at;
}

void analytics_write(struct cluster *cl, struct croom *cr) {
  struct room *r = hub_room_find(cl->h, cr->id);
  struct room_history *h = r ? r->hist : NULL;
  if (h == NULL) return;
  uint64_t sum = ana_sum(h);
  if (!cr->ana_full && sum == cr->ana_sum && h->events.total == cr->ana_ev && h->audit.total == cr->ana_au)
    return;
  if (now_ms(cl) - cr->ana_ms < ANA_MS) {
    /* Written by ana_woken when due: on a quiet loop the next turn's
     * check could be the tick's, up to 0.5 s away. */
    if (!uv_is_active((uv_handle_t *)&cl->ana_wake) && !cl->stopping)
      uv_timer_start(&cl->ana_wake, ana_woken, cr->ana_ms + ANA_MS - now_ms(cl), 0);
    return;
  }
  int whole = cr->ana_full;
  json_t *agg = history_agg_json(h), *ev = history_ring_tail(&h->events, whole ? 0 : cr->ana_ev),
         *au = history_ring_tail(&h->audit, whole ? 0 : cr->ana_au);
  char *aggtxt = agg ? json_dumps(agg, JSON_COMPACT) : NULL;
  char lease[KEY_MAX], ana[KEY_MAX], anaev[KEY_MAX], anaau[KEY_MAX], prefix[40], n[24];
  key_of(lease, "lease", cr->id);
  key_of(ana, "ana", cr->id);
  key_of(anaev, "anaev", cr->id);
  key_of(anaau, "anaau", cr->id);
  snprintf(prefix, sizeof(prefix), "%s:", cl->inst);
  const char *head[] = {"EVAL", LUA_ANA, "4", lease, ana, anaev, anaau, prefix, aggtxt, whole ? "w" : "a", n};
  size_t nh = sizeof(head) / sizeof(head[0]), k = nh;
  const char **argv = aggtxt && ev && au ? calloc(nh + json_array_size(ev) + json_array_size(au), sizeof(*argv)) : NULL;
  if (argv) {
    memcpy(argv, head, sizeof(head));
    k = ana_texts(ev, argv, nh);
    snprintf(n, sizeof(n), "%zu", k - nh); /* how many of the entries are events */
    k = ana_texts(au, argv, k);
    redis_cmd(cl, append_cb, NULL, 1, (int)k, argv, NULL);
    cr->ana_sum = sum;
    cr->ana_ev = h->events.total;
    cr->ana_au = h->audit.total;
    cr->ana_ms = now_ms(cl);
    cr->ana_full = 0;
  }
  for (size_t i = nh; i < k; i++) free((char *)argv[i]);
  free(aggtxt);
  free((void *)argv);
  json_decref(agg);
  json_decref(ev);
  json_decref(au);
}

void analytics_restore(struct room *room, const redisReply *agg, const redisReply *ev, const redisReply *au) {
  struct room_history *h = room->hist;
  if (h == NULL) return;
  const redisReply *lists[2] = {ev, au};
  for (int a = 0; a < 2; a++)
    for (size_t i = 0; lists[a] && lists[a]->type == REDIS_REPLY_ARRAY && i < lists[a]->elements; i++) {
      const redisReply *e = lists[a]->element[i];
      if (e->type == REDIS_REPLY_STRING) history_ring_restore(h, a, e->str, e->len);
    }
  json_t *j = agg && agg->type == REDIS_REPLY_STRING ? json_loadb(agg->str, agg->len, 0, NULL) : NULL;
  history_agg_apply(h, j);
  json_decref(j);
}

/* ---- reading it back ---- */

json_t *snap_parse(const char *txt, size_t len) {
  json_t *snap = txt && len ? json_loadb(txt, len, 0, NULL) : NULL;
  if (snap && !json_is_object(snap)) {
    json_decref(snap);
    return NULL;
  }
  return snap;
}

uint64_t snap_seq_of(const json_t *snap) { return (uint64_t)json_integer_value(json_object_get(snap, "seq")); }

static int role_valid(json_t *v) {
  return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < ROOM_ROLE__COUNT;
}

/* A member's entry m as a participant (not in a room yet), or NULL (out of
 * memory, or an entry without a valid user id or role: refused). */
static struct participant *member_from_snap(json_t *m) {
  const char *u = json_string_value(json_object_get(m, "u"));
  if (u == NULL || !id_valid(u, strlen(u)) || !role_valid(json_object_get(m, "role")) ||
      (json_object_get(m, "orole") && !role_valid(json_object_get(m, "orole"))))
    return NULL;
  struct token_claims tc;
  memset(&tc, 0, sizeof(tc));
  snprintf(tc.sub, sizeof(tc.sub), "%s", u);
  snprintf(tc.name, sizeof(tc.name), "%s", json_string_value(json_object_get(m, "n")) ?: "");
  tc.role = (enum room_role)json_integer_value(json_object_get(m, "role"));
  struct participant *p = room_participant_new(&tc, hub_now_ms());
  if (p == NULL) return NULL;
  p->role = (enum room_role)json_integer_value(json_object_get(m, "role"));
  p->perms_set = (uint32_t)json_integer_value(json_object_get(m, "ps"));
  p->perms_val = (uint32_t)json_integer_value(json_object_get(m, "pv"));
  p->origin_role = (enum room_role)json_integer_value(json_object_get(m, "orole"));
  p->origin_set = (uint32_t)json_integer_value(json_object_get(m, "os"));
  p->origin_val = (uint32_t)json_integer_value(json_object_get(m, "ov"));
  room_participant_ids_from_hex(p, json_string_value(json_object_get(m, "sid")),
                                json_string_value(json_object_get(m, "rt")));
  p->joined_ms = (uint64_t)json_integer_value(json_object_get(m, "joined"));
  p->audio = (int)json_integer_value(json_object_get(m, "a"));
  p->video = (int)json_integer_value(json_object_get(m, "v"));
  p->screen = (int)json_integer_value(json_object_get(m, "s"));
  room_participant_perms_update(p);
  return p;
}

/* v as a uint32_t in *out: 0, or -1 when it is there and not one. */
static int u32_of(json_t *v, uint32_t *out) {
  *out = 0;
  if (v == NULL) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)UINT32_MAX) return -1;
  *out = (uint32_t)json_integer_value(v);
  return 0;
}

/* One user's policy record of the snapshot into p; an entry without a
 * valid user id, with a role that does not exist or a field that is not
 * a 32-bit mask is refused (skipped). */
static void policy_user_from_snap(struct room_policy *p, json_t *m) {
  const char *u = json_string_value(json_object_get(m, "u"));
  const char *name = json_string_value(json_object_get(m, "n"));
  json_t *r = json_object_get(m, "r");
  uint32_t bs, bv, ps, pv;
  if (u == NULL || !id_valid(u, strlen(u)) || !role_valid(json_object_get(m, "br")) || (r && !role_valid(r)) ||
      u32_of(json_object_get(m, "bs"), &bs) || u32_of(json_object_get(m, "bv"), &bv) ||
      u32_of(json_object_get(m, "ps"), &ps) || u32_of(json_object_get(m, "pv"), &pv))
    return;
  struct policy_rec *rec = policy_rec_add(p, u);
  if (rec == NULL) return;
  rec->name = name && name[0] ? strndup(name, TOKEN_NAME_MAX) : NULL; /* NULL: read as "" */
  rec->admitted = json_is_true(json_object_get(m, "a"));
  rec->base_role = (uint8_t)json_integer_value(json_object_get(m, "br"));
  rec->base_set = bs;
  rec->base_val = bv & bs;
  rec->has_role = r != NULL;
  rec->role = r ? (uint8_t)json_integer_value(r) : 0;
  rec->has_perms = json_object_get(m, "ps") != NULL;
  rec->set = ps;
  rec->val = pv & ps;
}

/* The snapshot's policy, when it has one, is the room's: it replaces what
 * the new owner's own store restored when the room was made here
 * (durable_policy_restore), which may be older than the live room's. */
static void policy_from_snap(struct room *room, json_t *snap) {
  json_t *pol = json_object_get(snap, "policy"), *m;
  size_t i;
  if (!json_is_object(pol)) return;
  if (room->policy) {
    policy_users_free(room->policy);
    map_free(&room->policy->rejected);
  }
  json_t *users = json_object_get(pol, "users"), *rejected = json_object_get(pol, "rejected");
  if (json_array_size(users) + json_array_size(rejected) == 0) return;
  if (room->policy == NULL && (room->policy = calloc(1, sizeof(*room->policy))) == NULL) return;
  json_array_foreach(users, i, m) if (json_is_object(m)) policy_user_from_snap(room->policy, m);
  json_array_foreach(rejected, i, m) {
    const char *u = json_string_value(m);
    if (u && id_valid(u, strlen(u))) map_put(&room->policy->rejected, u, (void *)1);
  }
}

/* A main room's member present in the snapshot was admitted to its family
 * (policy_admitted at its join): a snapshot written before the policy was
 * in it gets that record from the member's entry (its name, the standing
 * it joined with), so that a grant for it works (policy_member_claims). */
static void member_admitted(struct room *room, json_t *snap, const struct participant *p) {
  const char *parent = json_string_value(json_object_get(snap, "parent"));
  if (json_is_object(json_object_get(snap, "policy")) || (parent && parent[0])) return;
  if (room->policy == NULL && (room->policy = calloc(1, sizeof(*room->policy))) == NULL) return;
  struct policy_rec *rec = policy_rec_get(room->policy, p->user_id);
  if (rec && rec->admitted) return;
  if (rec == NULL && (rec = policy_rec_add(room->policy, p->user_id)) == NULL) return;
  rec->admitted = 1;
  free(rec->name);
  rec->name = strcmp(p->name, p->user_id) != 0 ? strdup(p->name) : NULL; /* shown as its id: no name */
  rec->base_role = p->origin_role;
  rec->base_set = p->origin_set;
  rec->base_val = p->origin_val & p->origin_set;
}

size_t snap_apply(struct room *room, json_t *snap, uint64_t now, const struct snap_sessions *ss,
                  struct participant **away, size_t max, size_t *nlisted) {
  size_t i, naway = 0;
  json_t *m;
  *nlisted = 0;
  /* The room's creation time is the first owner's, not this takeover's
   * (GET /webrtc/rooms/{room_id} created_at). */
  json_t *created = json_object_get(snap, "created");
  if (json_is_integer(created) && json_integer_value(created) > 0)
    room->created_ms = (uint64_t)json_integer_value(created);
  json_t *s = json_object_get(snap, "settings");
  if (json_is_object(s)) {
    room->settings.locked = (int)json_integer_value(json_object_get(s, "locked"));
    room->settings.waiting_room = (int)json_integer_value(json_object_get(s, "waiting_room"));
    room->settings.mute_on_join = (int)json_integer_value(json_object_get(s, "mute_on_join"));
    room->settings.max_participants = (int)json_integer_value(json_object_get(s, "max"));
    room->settings.chat_enabled = (int)json_integer_value(json_object_get(s, "chat"));
    room->settings.reactions_enabled = (int)json_integer_value(json_object_get(s, "reactions"));
    room->settings.screen_share_moderators_only = (int)json_integer_value(json_object_get(s, "ssmo"));
  }
  policy_from_snap(room, snap);
  json_array_foreach(json_object_get(snap, "members"), i, m) {
    struct participant *p = member_from_snap(m);
    if (p == NULL) continue;
    if (room_participant_add(room, p) != 0) {
      room_participant_free(p);
      continue;
    }
    member_admitted(room, snap, p);
    void *c = ss->session(ss->arg, m);
    if (c) {
      p->session = c;
      ss->member(ss->arg, c, p);
      continue;
    }
    p->away_ms = now;
    room->naway++;
    naway++;
    if (*nlisted < max) away[(*nlisted)++] = p;
  }
  json_array_foreach(json_object_get(snap, "hands"), i, m)
    room_hand_raise(room, json_string_value(json_object_get(m, "u")) ?: "",
                    json_string_value(json_object_get(m, "n")) ?: "",
                    (uint64_t)json_integer_value(json_object_get(m, "ms")));
  json_array_foreach(json_object_get(snap, "banned"), i, m)
    if (json_string_value(m)) map_put(&room->banned, json_string_value(m), (void *)1);
  /* The waiting room: waiters still connected to a live instance wait on
   * (a host admits them here); those of the dead instance are gone. */
  json_array_foreach(json_object_get(snap, "waiters"), i, m) {
    const char *u = json_string_value(json_object_get(m, "u"));
    if (u == NULL || !id_valid(u, strlen(u)) || room_waiter_find(room, u) ||
        room_participant_find(room, u))
      continue;
    struct token_claims tc;
    memset(&tc, 0, sizeof(tc));
    snprintf(tc.sub, sizeof(tc.sub), "%s", u);
    snprintf(tc.name, sizeof(tc.name), "%s", json_string_value(json_object_get(m, "n")) ?: "");
    snprintf(tc.room, sizeof(tc.room), "%s", json_string_value(json_object_get(m, "rm")) ?: "");
    if (claims_parse(json_string_value(json_object_get(m, "cl")) ?: "", &tc) != 0) continue;
    tc.exp = (int64_t)json_integer_value(json_object_get(m, "exp"));
    void *c = ss->session(ss->arg, m);
    if (c == NULL) continue;
    struct waiter *w = room_waiter_add(room, c, &tc, (uint64_t)json_integer_value(json_object_get(m, "since")));
    ss->waiter(ss->arg, c, w);
  }
  return naway;
}
