/* Members and waiters: admission, joining, the grace period of a dropped
 * session, leaving, and the room-state snapshot (see hub.h). */
#define LOG_MODULE "room"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/turn.h"
#include "lib/envelope.h"
#include "room/durable.h"
#include "room/hub.h"
#include "room/op.h"
#include "room/policy.h"

#define HAND_GRACE_MS 30000 /* a raised hand survives its owner's rejoin */

static enum api_err admission(struct hub *h, const char *room_id, const struct token_claims *claims,
                              int admitted, int64_t *retry_after_ms, int spend);

enum api_err hub_admission_check(struct hub *h, const char *room_id, const struct token_claims *claims,
                                 int admitted, int64_t *retry_after_ms) {
  return admission(h, room_id, claims, admitted, retry_after_ms, 1);
}

enum api_err hub_admission_peek(struct hub *h, const char *room_id, const struct token_claims *claims,
                                int admitted, int64_t *retry_after_ms) {
  return admission(h, room_id, claims, admitted, retry_after_ms, 0);
}

static enum api_err admission(struct hub *h, const char *room_id, const struct token_claims *claims,
                              int admitted, int64_t *retry_after_ms, int spend) {
  if (claims->room[0] && strcmp(claims->room, room_id) != 0) return API_ERR_TOKEN_ROOM_MISMATCH;
  struct room *r = hub_room_find(h, room_id);
  int staff = claims->admin || claims->role >= ROOM_ROLE_MODERATOR;
  if (policy_banned(h, room_id, claims->sub)) return API_ERR_USER_BANNED; /* the family's bans too */
  if (admitted) return API_OK; /* a grant: moving between a room and its breakouts */
  enum api_err be = policy_breakout_entry(h, room_id, claims);
  if (be != API_OK) return be;
  if (r && r->settings.locked && !staff && room_participant_find(r, claims->sub) == NULL)
    return API_ERR_ROOM_LOCKED;
  /* Waiting users do not take a seat until admitted (the check repeats then). */
  int will_wait = r && r->settings.waiting_room && !staff;
  if (r && !will_wait && (int)r->count >= r->settings.max_participants &&
      room_participant_find(r, claims->sub) == NULL)
    return API_ERR_ROOM_FULL;
  if (r == NULL) {
    /* Creating a room counts against room_create, whoever joins it first. */
    struct ratelimit_result rr;
    if (spend) hub_rate_check(h, claims->sub, RATE_ROOM_CREATE, &rr);
    else hub_rate_peek(h, claims->sub, RATE_ROOM_CREATE, &rr);
    if (!rr.allowed) {
      if (spend) h->stats.ratelimit_hits[RATE_ROOM_CREATE]++;
      if (retry_after_ms) *retry_after_ms = (int64_t)rr.retry_after_ms;
      return API_ERR_RATE_LIMIT_EXCEEDED;
    }
  }
  return API_OK;
}

static json_t *active_media(struct room *r, uint64_t now, json_t **streams) {
  *streams = json_array();
  if (r->hist == NULL) return json_null();
  for (size_t i = 0; i < r->hist->nstreams; i++)
    if (r->hist->streams[i].stopped_ms == 0)
      json_array_append_new(*streams, history_stream_json(&r->hist->streams[i], now));
  struct recording *rec = history_recording_active(r->hist);
  return rec ? history_recording_json(rec, now) : json_null();
}

json_t *hub_room_state(struct hub *h, struct room *r, struct participant *self, int resumed) {
  json_t *parts = json_array();
  for (struct participant *p = r->head; p; p = p->next)
    json_array_append_new(parts, room_participant_json(p));
  json_t *me = room_participant_json(self);
  char sid[33], rt[65];
  json_object_set_new(me, "session_id", json_string(room_participant_session_id(self, sid)));
  json_object_set_new(me, "resume_token", json_string(room_participant_resume_token(self, rt)));
  json_object_set_new(me, "permissions", room_perms_json(self->perms));
  json_t *streams;
  json_t *rec = active_media(r, hub_now_ms(), &streams);
  json_t *ice = turn_ice_servers(h->cfg, self->user_id, (int64_t)(hub_now_ms() / 1000));
  json_t *st = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I}", "self", me, "participants", parts,
                         "settings", room_settings_json(r), "hand_raise_queue", room_hands_json(r),
                         "recording", rec, "live_streams", streams, "breakout_rooms",
                         op_breakouts_json(h, r), "ice_servers", ice, "seq", (json_int_t)durable_published_seq(h, r));
  if (st) json_object_set_new(st, "resumed", json_boolean(resumed));
  if (st && r->parent[0]) json_object_set_new(st, "parent_room", json_string(r->parent));
  if (st && (self->perms & PERM_MODERATE)) json_object_set_new(st, "waiting_room", op_waiting_json(r));
  return st;
}

/* room-state to p's session: a snapshot at the room's current seq, not a log
 * entry (replaying a snapshot would be wrong; a resumer gets a fresh one). */
static void send_state(struct hub *h, struct room *r, struct participant *p, int resumed) {
  json_t *state = hub_room_state(h, r, p, resumed);
  hub_send_session(h, p->session, r, "room-state", state, NULL);
  json_decref(state);
}

/* Gives role host to the longest-present moderator, else participant, when
 * the room has none: a room is never left without someone who moderates. */
static void host_handoff(struct hub *h, struct room *r, const char *why) {
  /* Breakout rooms keep the roles people bring; the main room's host rules. */
  if (r->parent[0] || room_first_with_role(r, ROOM_ROLE_HOST)) return;
  struct participant *p = room_first_with_role(r, ROOM_ROLE_MODERATOR);
  if (p == NULL) p = room_first_with_role(r, ROOM_ROLE_PARTICIPANT);
  if (p == NULL) return;
  enum room_role was = p->role;
  p->role = ROOM_ROLE_HOST;
  room_participant_perms_update(p);
  log_info("host_handoff room=%s user=%s reason=%s", r->id, p->user_id, why);
  if (r->hist) history_audit(r->hist, hub_now_ms(), "server", "host_handoff", p->user_id,
                             json_pack("{s:s}", "reason", why));
  json_t *out = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "user_id", p->user_id, "role", "host",
                          "previous_role", perm_role_name(was), "permissions", room_perms_json(p->perms),
                          "by", "server", "reason", why);
  hub_publish(h, r, "role-updated", "server", NULL, NULL, out);
  json_decref(out);
}

static void publish_hands(struct hub *h, struct room *r) {
  json_t *q = json_pack("{s:o}", "queue", room_hands_json(r));
  hub_publish(h, r, "hand-raise-queue", "server", NULL, NULL, q);
  json_decref(q);
}

/* ---- user-joined entries of the room log, kept compact ----
 * Every join logs a user-joined frame for resumes (~270 bytes at 19,900
 * idle members in rooms of 20, the largest item per member after the
 * connection). What renders it again is much smaller: the envelope's ts,
 * and the member's name, role, joined_at and media at that time; its user
 * id is the entry's except. Stored unaligned (the log packs it after the
 * recipient ids): read and written with memcpy. */
struct joined_rec {
  uint64_t joined_ms;
  uint32_t ts_after;                  /* the envelope's ts - joined_ms */
  uint8_t role;                       /* enum room_role */
  uint8_t bits;                       /* JOINED_AUDIO, ... */
  char name[];                        /* NUL-terminated; absent with JOINED_NAME_IS_ID */
};

#define JOINED_AUDIO 1
#define JOINED_VIDEO 2
#define JOINED_SCREEN 4
#define JOINED_NAME_IS_ID 8           /* the name is the user id (a token without a name) */
#define JOINED_REC_MIN offsetof(struct joined_rec, name)

/* jr: its fixed fields (aligned); name: its name, NULL if JOINED_NAME_IS_ID. */
static struct outbuf *joined_render(const struct room *r, uint64_t seq, const char *user_id,
                                    const struct joined_rec *jr, const char *name) {
  struct participant p;
  memset(&p, 0, sizeof(p));
  p.user_id = user_id;
  p.name = jr->bits & JOINED_NAME_IS_ID ? user_id : name;
  p.role = (enum room_role)jr->role;
  p.joined_ms = jr->joined_ms;
  p.audio = !!(jr->bits & JOINED_AUDIO);
  p.video = !!(jr->bits & JOINED_VIDEO);
  p.screen = !!(jr->bits & JOINED_SCREEN);
  json_t *payload = room_participant_json(&p);
  if (payload == NULL) return NULL;
  struct outbuf *b = envelope_encode("user-joined", r->id, "server", NULL, seq, jr->joined_ms + jr->ts_after,
                                     payload, NULL);
  json_decref(payload);
  return b;
}

/* The envelope's ts in a frame envelope_encode made: the first ,"ts": (a
 * string's quotes are escaped, so this is a key, and it precedes the
 * payload); 0 if absent. */
static uint64_t frame_ts(const struct outbuf *b) {
  if (b->len < 2) return 0;
  size_t plen = b->data[1] & 127, off = plen == 126 ? 4 : plen == 127 ? 10 : 2;
  static const char key[] = ",\"ts\":";
  for (size_t i = off; i + sizeof(key) - 1 < b->len; i++) {
    if (memcmp(b->data + i, key, sizeof(key) - 1) != 0) continue;
    uint64_t v = 0;
    for (i += sizeof(key) - 1; i < b->len && b->data[i] >= '0' && b->data[i] <= '9'; i++)
      v = v * 10 + (uint64_t)(b->data[i] - '0');
    return v;
  }
  return 0;
}

/* Makes the user-joined of p that was just logged compact, when its data
 * renders exactly the frame that was sent (else it keeps the frame: a
 * member with quality or a virtual background, a join held behind a chat
 * being stored, an envelope encoded differently). */
static void log_compact_joined(struct room *r, const struct participant *p) {
  struct roomlog *l = &r->log;
  if (l->n == 0 || (p->extra && (p->extra->quality[0] || p->extra->background))) return;
  size_t i = l->n - 1;
  const struct roomlog_entry *e = roomlog_at(l, i);
  if (e->seq != r->seq || e->type != MSG_USER_JOINED || e->frame == NULL) return;
  uint64_t ts = frame_ts(e->frame);
  if (ts < p->joined_ms || ts - p->joined_ms > UINT32_MAX) return;
  struct joined_rec jr = {p->joined_ms, (uint32_t)(ts - p->joined_ms), (uint8_t)p->role,
                          (uint8_t)((p->audio ? JOINED_AUDIO : 0) | (p->video ? JOINED_VIDEO : 0) |
                                    (p->screen ? JOINED_SCREEN : 0))};
  int name_is_id = strcmp(p->name, p->user_id) == 0;
  if (name_is_id) jr.bits |= JOINED_NAME_IS_ID;
  size_t nl = name_is_id ? 0 : strlen(p->name) + 1;
  char data[JOINED_REC_MIN + TOKEN_NAME_MAX + 1];
  if (nl > sizeof(data) - JOINED_REC_MIN) return;
  memcpy(data, &jr, JOINED_REC_MIN);
  memcpy(data + JOINED_REC_MIN, p->name, nl);
  struct outbuf *b = joined_render(r, e->seq, p->user_id, &jr, p->name);
  if (b && b->len == e->frame->len && memcmp(b->data, e->frame->data, b->len) == 0)
    roomlog_compact(l, i, data, JOINED_REC_MIN + nl);
  outbuf_unref(b);
}

struct outbuf *hub_log_frame(const struct room *r, const struct roomlog_entry *e) {
  if (e->frame) return outbuf_ref(e->frame);
  size_t len;
  const char *data = roomlog_entry_data(e, &len);
  if (data == NULL || e->type != MSG_USER_JOINED || len < JOINED_REC_MIN) return NULL;
  struct joined_rec jr;
  memcpy(&jr, data, JOINED_REC_MIN);
  const char *name = data + JOINED_REC_MIN;
  if (!(jr.bits & JOINED_NAME_IS_ID) && (len == JOINED_REC_MIN || data[len - 1] != '\0')) return NULL;
  const char *user_id = e->ids + strlen(e->ids) + 1; /* except */
  return joined_render(r, e->seq, user_id, &jr, name);
}

struct participant *hub_member_join(struct hub *h, struct room *r, const struct token_claims *claims,
                                    void *session) {
  uint64_t now = hub_now_ms();
  struct participant *p = room_participant_new(claims, now);
  if (p == NULL || room_participant_add(r, p) != 0) {
    room_participant_free(p);
    h->sessions.close(h->sessions.data, session, 1011, "internal error");
    hub_room_release(h, r);
    return NULL;
  }
  p->session = session;
  h->sessions.attach(h->sessions.data, session, p);
  policy_admitted(h, r, claims);
  /* The first moderator-capable joiner of a room without a host hosts it. */
  int promoted = 0;
  if (p->role == ROOM_ROLE_MODERATOR && !r->parent[0] && room_first_with_role(r, ROOM_ROLE_HOST) == NULL) {
    p->role = ROOM_ROLE_HOST;
    room_participant_perms_update(p);
    promoted = 1;
    if (r->hist) history_audit(r->hist, now, "server", "auto_host", p->user_id, NULL);
  }
  int hand_back = room_hand_find(r, p->user_id) >= 0;
  if (hand_back) r->hands[room_hand_find(r, p->user_id)].away_ms = 0;
  if (r->hist) {
    r->hist->sessions++;
    if (r->count > r->hist->peak) r->hist->peak = r->count;
    history_event(r->hist, now, "join", p->user_id, NULL, 0, NULL);
  }
  log_info("joined room=%s user=%s role=%s participants=%zu%s", r->id, p->user_id,
           perm_role_name(p->role), r->count, promoted ? " auto_host=1" : "");
  send_state(h, r, p, 0);
  json_t *joined = room_participant_json(p);
  hub_publish(h, r, "user-joined", "server", NULL, p->user_id, joined);
  json_decref(joined);
  log_compact_joined(r, p);
  if (hand_back) publish_hands(h, r);
  return p;
}

static void status_update(struct hub *h, struct room *r, const char *user, const char *status) {
  json_t *pu = json_pack("{s:s,s:s}", "user_id", user, "status", status);
  hub_publish(h, r, "participant-update", "server", NULL, user, pu);
  json_decref(pu);
}

void hub_member_away(struct hub *h, struct participant *p) {
  struct room *r = p->room;
  p->session = NULL;
  p->away_ms = uv_now(h->loop);
  r->naway++;
  h->naway++;
  log_info("away room=%s user=%s grace_ms=%d", r->id, p->user_id, h->cfg->resume_grace_ms);
  status_update(h, r, p->user_id, "reconnecting");
}

static void not_away(struct hub *h, struct participant *p) {
  if (p->away_ms == 0) return;
  p->away_ms = 0;
  p->room->naway--;
  h->naway--;
}

void hub_member_back(struct hub *h, struct participant *p, void *session, int resumed) {
  struct room *r = p->room;
  int was_away = p->away_ms != 0;
  not_away(h, p);
  if (room_participant_resume_token_renew(p) != 0 || (!resumed && room_participant_session_id_renew(p) != 0)) {
    h->sessions.close(h->sessions.data, session, 1011, "internal error");
    hub_member_away(h, p);
    return;
  }
  p->session = session;
  h->sessions.attach(h->sessions.data, session, p);
  if (resumed) {
    log_info("resumed room=%s user=%s seq=%llu", r->id, p->user_id, (unsigned long long)r->seq);
    send_state(h, r, p, 1);
    if (was_away) status_update(h, r, p->user_id, "connected");
    return;
  }
  /* A new session of a member: the others drop its old peer connection. */
  log_info("session_replaced room=%s user=%s away=%d", r->id, p->user_id, was_away);
  send_state(h, r, p, 0);
  json_t *left = json_pack("{s:s,s:s}", "user_id", p->user_id, "reason", "replaced");
  hub_publish(h, r, "user-left", "server", NULL, p->user_id, left);
  json_decref(left);
  json_t *joined = room_participant_json(p);
  hub_publish(h, r, "user-joined", "server", NULL, p->user_id, joined);
  json_decref(joined);
  log_compact_joined(r, p);
}

void hub_member_leave(struct hub *h, struct participant *p, const char *reason) {
  struct room *r = p->room;
  uint64_t now = hub_now_ms();
  if (reason == NULL) reason = "left";
  not_away(h, p);
  p->session = NULL;
  room_participant_remove(r, p);
  room_transfers_drop_user(r, p->user_id);
  /* A raised hand waits for its owner's return (HAND_GRACE_MS). */
  int had_hand = room_hand_find(r, p->user_id) >= 0;
  if (had_hand) r->hands[room_hand_find(r, p->user_id)].away_ms = now;
  room_hands_expire(r, now, HAND_GRACE_MS);
  if (r->hist) {
    uint64_t len = now > p->joined_ms ? now - p->joined_ms : 0;
    r->hist->closed_session_ms += len;
    history_event(r->hist, now, "leave", p->user_id, reason, (int64_t)len, NULL);
  }
  log_info("left room=%s user=%s reason=%s participants=%zu", r->id, p->user_id, reason, r->count);
  if (r->count > 0) {
    json_t *left = json_pack("{s:s,s:s}", "user_id", p->user_id, "reason", reason);
    hub_publish(h, r, "user-left", "server", NULL, NULL, left);
    json_decref(left);
    if (had_hand) publish_hands(h, r);
    if (p->role == ROOM_ROLE_HOST) host_handoff(h, r, "host_left");
  }
  room_participant_free(p);
  hub_room_release(h, r);
}

struct away_scan { struct room *rooms[64]; size_t n; };

static void collect_away(const char *k, void *v, void *arg) {
  struct away_scan *as = arg;
  struct room *r = v;
  if (r->naway && as->n < 64) as->rooms[as->n++] = r;
}

void hub_members_expire(struct hub *h) {
  if (h->naway == 0) return;
  struct away_scan as = {{0}, 0};
  map_each(&h->rooms, collect_away, &as);
  uint64_t now = uv_now(h->loop), grace = (uint64_t)h->cfg->resume_grace_ms;
  for (size_t i = 0; i < as.n; i++) {
    struct room *r = as.rooms[i];
    r->held++;
    for (struct participant *p = r->head, *next; p; p = next) {
      next = p->next;
      if (p->away_ms == 0 || p->away_ms + grace > now) continue;
      hub_expired_add(h, r, p);
      hub_member_leave(h, p, "timeout");
    }
    r->held--;
    hub_room_release(h, r);
  }
}

struct waiter *hub_waiter_enter(struct hub *h, struct room *r, const struct token_claims *claims,
                                void *session) {
  uint64_t now = hub_now_ms();
  struct waiter *w = room_waiter_add(r, session, claims, now);
  if (w == NULL) {
    h->sessions.close(h->sessions.data, session, 1011, "internal error");
    return NULL;
  }
  log_info("waiting room=%s user=%s waiting=%zu", r->id, claims->sub, r->nwaiting);
  /* The waiting user hears only this, until admitted or rejected. */
  json_t *mine = json_pack("{s:s,s:i}", "status", "waiting", "position", (int)r->nwaiting);
  hub_send_session(h, session, r, "waiting-room-join", mine, NULL);
  json_decref(mine);
  json_t *note = json_pack("{s:s,s:s,s:s,s:I}", "user_id", claims->sub, "name",
                           claims->name[0] ? claims->name : claims->sub, "status", "waiting",
                           "requested_at", (json_int_t)now);
  struct room_event e = {"waiting-room-join", "server", NULL, NULL, NULL, PERM_MODERATE, note, NULL, NULL, 0};
  hub_send(h, r, &e);
  json_decref(note);
  return w;
}

void hub_waiter_leave(struct hub *h, struct waiter *w, const char *reason) {
  struct room *r = w->room;
  char user[ID_MAX + 1];
  snprintf(user, sizeof(user), "%s", w->claims.sub);
  room_waiter_remove(r, w);
  log_info("waiting_left room=%s user=%s reason=%s", r->id, user, reason ? reason : "left");
  json_t *note = json_pack("{s:s,s:s}", "user_id", user, "status", "left");
  struct room_event e = {"waiting-room-join", "server", NULL, NULL, NULL, PERM_MODERATE, note, NULL, NULL, 0};
  if (r->count) hub_send(h, r, &e);
  json_decref(note);
  hub_room_release(h, r);
}
