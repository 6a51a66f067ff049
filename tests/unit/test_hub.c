/* Unit tests for the room domain (room/hub.c, members.c, op_*.c, command.c,
 * roomlog.c) without any socket: the hub runs on an idle loop, the in-process
 * bus delivers to a recorder, and sessions are plain tokens whose sends and
 * closes are recorded too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "bus/bus.h"
#include "config.h"
#include "room/command.h"
#include "room/hub.h"
#include "room/op.h"
#include "room/roomlog.h"

/* The participant keeps these as bytes (issue 16); the hex forms the protocol
 * sends, rendered into a buffer that lives to the end of the enclosing block. */
#define SESSION_ID(p) room_participant_session_id((p), (char[33]){0})
#define RESUME_TOKEN(p) room_participant_resume_token((p), (char[65]){0})

/* ---- a recording world ---- */

#define MAX_SEEN 256

struct seen {
  char to[ID_MAX + 1];          /* the bus message's target, "" for the room */
  char except[ID_MAX + 1];
  uint32_t only_perm;
  uint64_t seq;
  json_t *msg;                  /* the decoded envelope */
};

struct session {
  const char *name;
  struct participant *member;   /* what attach said */
  int closed;                   /* close code, 0 while open */
  json_t *sent[32];             /* non-room messages (room-state, waiting-room-*) */
  size_t nsent;
};

struct world {
  uv_loop_t loop;
  struct config cfg;
  struct hub hub;
  struct seen seen[MAX_SEEN];
  size_t nseen;
};

static json_t *decode_frame(const struct outbuf *b) {
  size_t off = (b->data[1] & 0x7f) == 126 ? 4 : 2;
  json_t *j = json_loadb((const char *)b->data + off, b->len - off, 0, NULL);
  assert_non_null(j);
  return j;
}

static void on_deliver(void *arg, const struct bus_msg *m) {
  struct world *w = arg;
  assert_true(w->nseen < MAX_SEEN);
  struct seen *s = &w->seen[w->nseen++];
  snprintf(s->to, sizeof(s->to), "%s", m->to ? m->to : "");
  snprintf(s->except, sizeof(s->except), "%s", m->except ? m->except : "");
  s->only_perm = m->only_perm;
  s->seq = m->seq;
  s->msg = decode_frame(m->frame);
}

static void on_send(void *data, void *session, struct outbuf *frame) {
  struct session *s = session;
  assert_true(s->nsent < 32);
  s->sent[s->nsent++] = decode_frame(frame);
  outbuf_unref(frame);
}

static void on_attach(void *data, void *session, struct participant *p) { ((struct session *)session)->member = p; }

static void on_close(void *data, void *session, int code, const char *reason) {
  struct session *s = session;
  s->closed = code;
  s->member = NULL;
}

static int setup(void **state) {
  struct world *w = calloc(1, sizeof(*w));
  char *argv[] = {"huddle", NULL};
  char err[256];
  int help = 0;
  assert_int_equal(uv_loop_init(&w->loop), 0);
  assert_int_equal(config_load(&w->cfg, 1, argv, 1, &help, err, sizeof(err)), 0);
  free(w->cfg.rate[RATE_CHAT_MESSAGE]);
  w->cfg.rate[RATE_CHAT_MESSAGE] = strdup("2/1m");
  assert_int_equal(hub_init(&w->hub, &w->loop, &w->cfg, err, sizeof(err)), 0);
  struct hub_session_ops ops = {on_send, on_attach, on_close, w};
  w->hub.sessions = ops;
  assert_int_equal(bus_local_new(&w->hub.bus, on_deliver, w), 0);
  *state = w;
  return 0;
}

static void forget_seen(struct world *w) {
  for (size_t i = 0; i < w->nseen; i++) json_decref(w->seen[i].msg);
  w->nseen = 0;
}

static void session_free(struct session *s) {
  for (size_t i = 0; i < s->nsent; i++) json_decref(s->sent[i]);
  s->nsent = 0;
}

static int teardown(void **state) {
  struct world *w = *state;
  forget_seen(w);
  hub_free(&w->hub);
  config_free(&w->cfg);
  assert_int_equal(uv_loop_close(&w->loop), 0);
  free(w);
  return 0;
}

static struct token_claims claims_for(const char *sub, enum room_role role) {
  struct token_claims c;
  memset(&c, 0, sizeof(c));
  snprintf(c.sub, sizeof(c.sub), "%s", sub);
  c.role = role;
  c.exp = 4102444800LL;
  return c;
}

static struct participant *join(struct world *w, struct room *r, struct session *s, enum room_role role) {
  struct token_claims c = claims_for(s->name, role);
  struct participant *p = hub_member_join(&w->hub, r, &c, s);
  assert_non_null(p);
  assert_ptr_equal(s->member, p);
  return p;
}

/* The last message of type seen on the bus, or NULL. */
static struct seen *last_of(struct world *w, const char *type) {
  for (size_t i = w->nseen; i > 0; i--)
    if (strcmp(json_string_value(json_object_get(w->seen[i - 1].msg, "type")), type) == 0) return &w->seen[i - 1];
  return NULL;
}

static const char *pstr(const struct seen *s, const char *key) {
  return json_string_value(json_object_get(json_object_get(s->msg, "payload"), key));
}

/* ---- members ---- */

static void join_sends_state_then_user_joined(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r1");
  struct session a = {.name = "alice"}, b = {.name = "bob"};
  join(w, r, &a, ROOM_ROLE_MODERATOR);
  join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  assert_int_equal(a.nsent, 1);
  assert_string_equal(json_string_value(json_object_get(a.sent[0], "type")), "room-state");
  json_t *self = json_object_get(json_object_get(a.sent[0], "payload"), "self");
  assert_string_equal(json_string_value(json_object_get(self, "role")), "host"); /* first moderator hosts */
  struct seen *j = last_of(w, "user-joined");
  assert_non_null(j);
  assert_string_equal(pstr(j, "user_id"), "bob");
  assert_string_equal(j->except, "bob");
  assert_int_equal(r->count, 2);
  session_free(&a);
  session_free(&b);
}

static void away_member_keeps_seat_and_resumes(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r2");
  struct session a = {.name = "alice"}, b = {.name = "bob"}, b2 = {.name = "bob"};
  join(w, r, &a, ROOM_ROLE_HOST);
  struct participant *pb = join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  char token[65];
  snprintf(token, sizeof(token), "%s", RESUME_TOKEN(pb));
  hub_member_away(&w->hub, pb);
  struct seen *s = last_of(w, "participant-update");
  assert_non_null(s);
  assert_string_equal(pstr(s, "status"), "reconnecting");
  assert_int_equal(r->count, 2);
  assert_int_equal(w->hub.naway, 1);
  uint64_t after = r->seq;
  json_t *chat = json_pack("{s:s}", "text", "hi");
  hub_publish(&w->hub, r, "chat-message", "alice", NULL, NULL, chat);
  json_decref(chat);
  /* The log holds what bob missed, addressed to him. */
  size_t i = roomlog_find_after(&r->log, after);
  assert_int_equal(i, r->log.n - 1);
  assert_true(roomlog_entry_for(roomlog_at(&r->log, i), "bob", pb->perms));
  hub_member_back(&w->hub, pb, &b2, 1);
  assert_ptr_equal(b2.member, pb);
  assert_int_equal(w->hub.naway, 0);
  assert_string_not_equal(RESUME_TOKEN(pb), token); /* single use */
  assert_string_equal(pstr(last_of(w, "participant-update"), "status"), "connected");
  json_t *st = json_object_get(b2.sent[b2.nsent - 1], "payload");
  assert_true(json_is_true(json_object_get(st, "resumed")));
  session_free(&a);
  session_free(&b);
  session_free(&b2);
}

static void grace_expiry_leaves_and_remembers_the_token(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r3");
  struct session a = {.name = "alice"}, b = {.name = "bob"};
  join(w, r, &a, ROOM_ROLE_HOST);
  struct participant *pb = join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  char token[65];
  snprintf(token, sizeof(token), "%s", RESUME_TOKEN(pb));
  hub_member_away(&w->hub, pb);
  pb->away_ms = 1; /* long ago */
  hub_members_expire(&w->hub);
  struct seen *l = last_of(w, "user-left");
  assert_non_null(l);
  assert_string_equal(pstr(l, "user_id"), "bob");
  assert_string_equal(pstr(l, "reason"), "timeout");
  assert_null(room_participant_find(r, "bob"));
  assert_true(hub_expired_has(&w->hub, "r3", "bob", token));
  assert_false(hub_expired_has(&w->hub, "r3", "bob", "nope"));
  session_free(&a);
  session_free(&b);
}

/* ---- operations ---- */

static void role_set_checks_rank_and_broadcasts(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r4");
  struct session a = {.name = "alice"}, m = {.name = "mod"}, b = {.name = "bob"};
  struct participant *pa = join(w, r, &a, ROOM_ROLE_HOST);
  struct participant *pm = join(w, r, &m, ROOM_ROLE_MODERATOR);
  join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  char detail[128] = "";
  struct actor am = op_actor_of(pm);
  /* A moderator cannot demote the host, nor make anyone host. */
  assert_int_equal(op_role_set(&w->hub, r, &am, "alice", "viewer", detail, sizeof(detail)), API_ERR_INSUFFICIENT_RANK);
  assert_int_equal(op_role_set(&w->hub, r, &am, "bob", "host", detail, sizeof(detail)), API_ERR_INSUFFICIENT_RANK);
  assert_int_equal(op_role_set(&w->hub, r, &am, "bob", "emperor", detail, sizeof(detail)), API_ERR_INVALID_ROLE);
  struct actor aa = op_actor_of(pa);
  assert_int_equal(op_role_set(&w->hub, r, &aa, "bob", "viewer", detail, sizeof(detail)), API_OK);
  struct seen *s = last_of(w, "role-updated");
  assert_string_equal(pstr(s, "role"), "viewer");
  assert_string_equal(pstr(s, "previous_role"), "participant");
  assert_string_equal(s->to, "");
  /* The last host cannot step down. */
  assert_int_equal(op_role_set(&w->hub, r, &aa, "alice", "participant", detail, sizeof(detail)),
                   API_ERR_INSUFFICIENT_RANK);
  session_free(&a);
  session_free(&m);
  session_free(&b);
}

static void remove_closes_the_session_and_bans(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r5");
  struct session a = {.name = "alice"}, b = {.name = "bob"};
  struct participant *pa = join(w, r, &a, ROOM_ROLE_HOST);
  join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  char detail[128] = "";
  struct actor aa = op_actor_of(pa);
  assert_int_equal(op_remove(&w->hub, r, &aa, "bob", "spam", detail, sizeof(detail)), API_OK);
  assert_int_equal(b.closed, 4003);
  assert_null(room_participant_find(r, "bob"));
  struct seen *note = last_of(w, "participant-update");
  assert_string_equal(note->to, "bob");
  assert_string_equal(pstr(note, "action"), "removed");
  assert_string_equal(pstr(last_of(w, "user-left"), "reason"), "removed");
  struct token_claims c = claims_for("bob", ROOM_ROLE_PARTICIPANT);
  assert_int_equal(hub_admission_check(&w->hub, "r5", &c, 0, NULL), API_ERR_USER_BANNED);
  session_free(&a);
  session_free(&b);
}

static void settings_update_is_all_or_nothing(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r6");
  struct session a = {.name = "alice"};
  struct participant *pa = join(w, r, &a, ROOM_ROLE_HOST);
  char detail[128] = "";
  struct actor aa = op_actor_of(pa);
  json_t *bad = json_pack("{s:b,s:s}", "locked", 1, "max_participants", "many");
  assert_int_equal(op_settings_update(&w->hub, r, &aa, bad, detail, sizeof(detail)), API_ERR_INVALID_SETTINGS);
  assert_int_equal(r->settings.locked, 0);
  json_t *good = json_pack("{s:b}", "locked", 1);
  assert_int_equal(op_settings_update(&w->hub, r, &aa, good, detail, sizeof(detail)), API_OK);
  assert_int_equal(r->settings.locked, 1);
  struct token_claims c = claims_for("zed", ROOM_ROLE_PARTICIPANT);
  assert_int_equal(hub_admission_check(&w->hub, "r6", &c, 0, NULL), API_ERR_ROOM_LOCKED);
  json_decref(bad);
  json_decref(good);
  session_free(&a);
}

static void waiting_room_admit_attaches_the_session(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r7");
  struct session a = {.name = "alice"}, b = {.name = "bob"};
  struct participant *pa = join(w, r, &a, ROOM_ROLE_HOST);
  struct token_claims c = claims_for("bob", ROOM_ROLE_PARTICIPANT);
  struct waiter *wt = hub_waiter_enter(&w->hub, r, &c, &b);
  assert_non_null(wt);
  assert_string_equal(json_string_value(json_object_get(b.sent[0], "type")), "waiting-room-join");
  struct seen *s = last_of(w, "waiting-room-join");
  assert_int_equal(s->only_perm, PERM_MODERATE); /* moderators only */
  char detail[128] = "";
  struct actor aa = op_actor_of(pa);
  assert_int_equal(op_waiting_admit(&w->hub, r, &aa, "bob", detail, sizeof(detail)), API_OK);
  assert_non_null(b.member);
  assert_string_equal(b.member->user_id, "bob");
  assert_int_equal(r->nwaiting, 0);
  session_free(&a);
  session_free(&b);
}

static void command_checks_permission_then_budget(void **state) {
  struct world *w = *state;
  struct actor viewer = {"v", ROOM_ROLE_VIEWER, perm_role_defaults(ROOM_ROLE_VIEWER), 0};
  struct actor part = {"p", ROOM_ROLE_PARTICIPANT, perm_role_defaults(ROOM_ROLE_PARTICIPANT), 0};
  int64_t retry = 0;
  int rc = -1;
  assert_int_equal(command_authorize(&w->hub, CMD_SETTINGS_UPDATE, &part, COMMAND_PERM | COMMAND_RATE, &retry, &rc),
                   API_ERR_PERMISSION_DENIED);
  /* chat_message is 2/1m here: two pass, the third is refused. */
  assert_int_equal(command_authorize(&w->hub, CMD_CHAT, &part, COMMAND_PERM | COMMAND_RATE, &retry, &rc), API_OK);
  assert_int_equal(command_authorize(&w->hub, CMD_CHAT, &part, COMMAND_PERM | COMMAND_RATE, &retry, &rc), API_OK);
  assert_int_equal(command_authorize(&w->hub, CMD_CHAT, &part, COMMAND_PERM | COMMAND_RATE, &retry, &rc),
                   API_ERR_RATE_LIMIT_EXCEEDED);
  assert_int_equal(rc, RATE_CHAT_MESSAGE);
  assert_true(retry > 0);
  /* A permission check alone spends nothing. */
  assert_int_equal(command_authorize(&w->hub, CMD_CHAT, &part, COMMAND_PERM, NULL, NULL), API_OK);
  (void)viewer;
}

/* A sender's own copy: the envelope keeps the offer's `to` (none: the
 * room), delivery and replay go to the sender only. */
static void send_only_delivers_to_one_member_keeping_the_envelope(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "r9");
  struct session a = {.name = "alice"}, b = {.name = "bob"};
  join(w, r, &a, ROOM_ROLE_HOST);
  struct participant *pb = join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  json_t *p = json_pack("{s:s}", "upload_url", "/u");
  struct room_event e = {"file-share-offer", "alice", NULL, NULL, NULL, 0, p, "f1", NULL, 0};
  assert_int_equal(hub_send_only(&w->hub, r, &e, "alice"), 0);
  json_decref(p);
  struct seen *s = last_of(w, "file-share-offer");
  assert_non_null(s);
  assert_string_equal(s->to, "alice");
  assert_null(json_object_get(s->msg, "to"));
  assert_string_equal(json_string_value(json_object_get(s->msg, "ref")), "f1");
  assert_int_equal((int)s->seq, (int)r->seq);
  const struct roomlog_entry *le = roomlog_at(&r->log, r->log.n - 1);
  assert_true(roomlog_entry_for(le, "alice", 0));
  assert_false(roomlog_entry_for(le, "bob", pb->perms));
  session_free(&a);
  session_free(&b);
}

/* ---- the room log ---- */

static void roomlog_bounds_count_and_reports_gaps(void **state) {
  struct roomlog l;
  roomlog_init(&l, 4, 1 << 20, 1000);
  struct outbuf *b = outbuf_new(8);
  for (uint64_t seq = 1; seq <= 6; seq++)
    assert_int_equal(roomlog_append(&l, seq, 100, MSG_CHAT_MESSAGE, b, NULL, NULL, NULL, 0), 0);
  assert_int_equal(l.n, 4);
  assert_int_equal(roomlog_at(&l, 0)->seq, 3);
  assert_false(roomlog_covers(&l, 1)); /* 2 is gone */
  assert_true(roomlog_covers(&l, 2));
  assert_int_equal(roomlog_find_after(&l, 4), 2);
  assert_int_equal(roomlog_find_after(&l, 6), 4);
  roomlog_trim(&l, 100 + 1001); /* everything is older than max_age_ms */
  assert_int_equal(l.n, 0);
  assert_false(roomlog_covers(&l, 5));
  roomlog_free(&l);
  outbuf_unref(b);
  (void)state;
}

/* Bytes bound the log as well as entries: large frames push the oldest out. */
static void roomlog_bounds_bytes(void **state) {
  struct roomlog l;
  roomlog_init(&l, 100, 100, 1000);
  struct outbuf *b = outbuf_new(40);
  b->len = 40;
  for (uint64_t seq = 1; seq <= 5; seq++)
    assert_int_equal(roomlog_append(&l, seq, 100, MSG_OFFER, b, "bob", NULL, NULL, 0), 0);
  assert_int_equal(l.n, 2); /* 80 of 100 bytes: a third would be 120 */
  assert_int_equal(l.bytes, 80);
  assert_int_equal(roomlog_at(&l, 0)->seq, 4);
  assert_false(roomlog_covers(&l, 2)); /* a resume from before 4 is a gap */
  assert_true(roomlog_covers(&l, 3));
  struct outbuf *big = outbuf_new(500);
  big->len = 500; /* larger than the bound: held alone */
  assert_int_equal(roomlog_append(&l, 6, 100, MSG_OFFER, big, "bob", NULL, NULL, 0), 0);
  assert_int_equal(l.n, 1);
  assert_int_equal(l.bytes, 500);
  roomlog_free(&l);
  outbuf_unref(b);
  outbuf_unref(big);
  (void)state;
}

static void roomlog_filters_recipients(void **state) {
  struct roomlog l;
  roomlog_init(&l, 8, 1 << 20, 1000);
  struct outbuf *b = outbuf_new(8);
  roomlog_append(&l, 1, 1, MSG_OFFER, b, "bob", NULL, "alice", 0);
  roomlog_append(&l, 2, 1, MSG_USER_JOINED, b, NULL, "bob", NULL, 0);
  roomlog_append(&l, 3, 1, MSG_WAITING_ROOM_JOIN, b, NULL, NULL, NULL, PERM_MODERATE);
  assert_true(roomlog_entry_for(roomlog_at(&l, 0), "bob", 0));
  assert_true(roomlog_entry_for(roomlog_at(&l, 0), "alice", 0)); /* the sender's echo */
  assert_false(roomlog_entry_for(roomlog_at(&l, 0), "carol", 0));
  assert_false(roomlog_entry_for(roomlog_at(&l, 1), "bob", 0));
  assert_true(roomlog_entry_for(roomlog_at(&l, 1), "carol", 0));
  assert_false(roomlog_entry_for(roomlog_at(&l, 2), "carol", PERM_CHAT));
  assert_true(roomlog_entry_for(roomlog_at(&l, 2), "mod", PERM_MODERATE | PERM_CHAT));
  roomlog_free(&l);
  outbuf_unref(b);
  (void)state;
}

/* The seen message with seq, or NULL. */
static struct seen *seen_seq(struct world *w, uint64_t seq) {
  for (size_t i = 0; i < w->nseen; i++)
    if (w->seen[i].seq == seq) return &w->seen[i];
  return NULL;
}

/* Joins keep their user-joined entries compact (no frame) and render them
 * again as what was delivered; a join whose payload carries more (quality)
 * keeps its frame. Memory per idle connection, issue 16. */
static void user_joined_entries_are_compact_and_render_as_sent(void **state) {
  struct world *w = *state;
  struct room *r = hub_room_create(&w->hub, "rc");
  struct session a = {.name = "alice"}, b = {.name = "bob"}, b2 = {.name = "bob"};
  join(w, r, &a, ROOM_ROLE_HOST);
  struct participant *pb = join(w, r, &b, ROOM_ROLE_PARTICIPANT);
  struct session c = {.name = "carol"};
  struct token_claims cc = claims_for("carol", ROOM_ROLE_MODERATOR);
  snprintf(cc.name, sizeof(cc.name), "%s", "Carol \"C\" \xc3\xa9");
  assert_non_null(hub_member_join(&w->hub, r, &cc, &c));
  pb->audio = 1;
  struct participant_extra *pbx = room_participant_extra(pb); /* quality lives there (issue 16) */
  assert_non_null(pbx);
  snprintf(pbx->quality, sizeof(pbx->quality), "%s", "good");
  hub_member_back(&w->hub, pb, &b2, 0); /* a new session: user-left, then user-joined with quality */
  size_t joined = 0, framed = 0;
  for (size_t i = 0; i < r->log.n; i++) {
    const struct roomlog_entry *e = roomlog_at(&r->log, i);
    if (e->type != MSG_USER_JOINED) continue;
    joined++;
    struct seen *s = seen_seq(w, e->seq);
    assert_non_null(s);
    if (e->frame) framed++;
    else assert_non_null(json_object_get(json_object_get(s->msg, "payload"), "user_id"));
    struct outbuf *f = hub_log_frame(r, e);
    assert_non_null(f);
    json_t *j = decode_frame(f);
    assert_true(json_equal(j, s->msg));
    json_decref(j);
    outbuf_unref(f);
  }
  assert_int_equal(joined, 4);
  assert_int_equal(framed, 1); /* the one with quality */
  assert_int_equal(r->log.n, 5);
  session_free(&c);
  session_free(&a);
  session_free(&b);
  session_free(&b2);
}

/* Compacting an entry keeps its recipients and its place in the byte bound. */
static void roomlog_compact_keeps_recipients_and_counts_bytes(void **state) {
  struct roomlog l;
  roomlog_init(&l, 8, 1 << 20, 1000);
  struct outbuf *b = outbuf_ws_frame(1, "{\"x\":1234567890}", 16);
  roomlog_append(&l, 1, 1, MSG_USER_JOINED, b, NULL, "bob", NULL, 0);
  roomlog_append(&l, 2, 1, MSG_USER_JOINED, b, NULL, NULL, NULL, PERM_MODERATE);
  size_t before = l.bytes, len = 0;
  assert_null(roomlog_entry_data(roomlog_at(&l, 0), &len));
  assert_int_equal(roomlog_compact(&l, 0, "abc", 4), 0);
  assert_int_equal(roomlog_compact(&l, 1, "defgh", 6), 0);
  assert_int_equal(roomlog_compact(&l, 1, "x", 2), -1); /* already compact */
  assert_int_equal(l.bytes, before - 2 * b->len + 4 + 6);
  assert_null(roomlog_at(&l, 0)->frame);
  assert_memory_equal(roomlog_entry_data(roomlog_at(&l, 0), &len), "abc", 4);
  assert_int_equal(len, 4);
  assert_memory_equal(roomlog_entry_data(roomlog_at(&l, 1), &len), "defgh", 6);
  assert_false(roomlog_entry_for(roomlog_at(&l, 0), "bob", 0));
  assert_true(roomlog_entry_for(roomlog_at(&l, 0), "carol", 0));
  assert_false(roomlog_entry_for(roomlog_at(&l, 1), "carol", 0));
  assert_true(roomlog_entry_for(roomlog_at(&l, 1), "mod", PERM_MODERATE));
  roomlog_trim(&l, 2000);
  assert_int_equal(l.n, 0);
  assert_int_equal(l.bytes, 0);
  roomlog_free(&l);
  outbuf_unref(b);
  (void)state;
}

/* The analytics and audit rings: strings sized to fit (long ones cut as
 * before), data kept as JSON text, the sink sees what the ring holds, and
 * a full ring overwrites its oldest. */
static int sunk_n;
static char sunk_type[32], sunk_user[ID_MAX + 1];
static void on_sink(void *arg, struct room_history *h, int audit, const struct analytics_event *e) {
  sunk_n++;
  snprintf(sunk_type, sizeof(sunk_type), "%s", e->type);
  snprintf(sunk_user, sizeof(sunk_user), "%s", e->user_id);
  (void)arg, (void)h, (void)audit;
}

static void history_rings_keep_what_they_held(void **state) {
  struct room_history *h = calloc(1, sizeof(*h));
  char long_id[100];
  memset(long_id, 'u', sizeof(long_id) - 1);
  long_id[sizeof(long_id) - 1] = '\0';
  history_sink_set(on_sink, NULL);
  history_event(h, 10, "join", "alice", NULL, 0, NULL);
  assert_int_equal(sunk_n, 1);
  assert_string_equal(sunk_type, "join");
  assert_string_equal(sunk_user, "alice");
  history_event(h, 11, "a-type-longer-than-twenty-three", long_id, "thumbs", -5, json_pack("{s:i,s:s}", "k", 1, "s", "v\u00e9"));
  history_audit(h, 12, "mod", "mute", "bob", NULL);
  history_sink_set(NULL, NULL);
  json_t *ev = history_ring_json(&h->events, 0, 10, 0);
  assert_int_equal(json_array_size(ev), 2);
  json_t *e0 = json_array_get(ev, 0), *e1 = json_array_get(ev, 1);
  assert_int_equal(json_integer_value(json_object_get(e0, "ts")), 10);
  assert_null(json_object_get(e0, "name"));
  assert_null(json_object_get(e0, "data"));
  assert_string_equal(json_string_value(json_object_get(e1, "type")), "a-type-longer-than-twen"); /* 23 bytes */
  assert_int_equal(strlen(json_string_value(json_object_get(e1, "user_id"))), ID_MAX);
  assert_string_equal(json_string_value(json_object_get(e1, "name")), "thumbs");
  assert_int_equal(json_integer_value(json_object_get(e1, "value")), -5);
  json_t *want = json_pack("{s:i,s:s}", "k", 1, "s", "v\u00e9");
  assert_true(json_equal(json_object_get(e1, "data"), want));
  json_decref(want);
  json_decref(ev);
  json_t *au = history_ring_json(&h->audit, 0, 10, 1);
  assert_int_equal(json_array_size(au), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(au, 0), "action")), "mute");
  assert_string_equal(json_string_value(json_object_get(json_array_get(au, 0), "actor")), "mod");
  assert_string_equal(json_string_value(json_object_get(json_array_get(au, 0), "target")), "bob");
  json_decref(au);
  /* Past HISTORY_EVENTS the oldest go; total counts everything. */
  for (int i = 0; i < HISTORY_EVENTS + 5; i++) {
    char u[16];
    snprintf(u, sizeof(u), "u%d", i);
    history_event(h, 100 + (uint64_t)i, "chat", u, NULL, 0, NULL);
  }
  assert_int_equal(h->events.count, HISTORY_EVENTS);
  assert_int_equal(h->events.total, HISTORY_EVENTS + 7);
  json_t *last = history_ring_json(&h->events, 0, 2, 0);
  assert_int_equal(json_array_size(last), 2);
  char want_u[16];
  snprintf(want_u, sizeof(want_u), "u%d", HISTORY_EVENTS + 4);
  assert_string_equal(json_string_value(json_object_get(json_array_get(last, 1), "user_id")), want_u);
  json_decref(last);
  json_t *oldest = history_ring_json(&h->events, 0, HISTORY_EVENTS, 0);
  assert_string_equal(json_string_value(json_object_get(json_array_get(oldest, 0), "user_id")), "u5");
  json_decref(oldest);
  assert_true(history_bytes(h) > HISTORY_EVENTS * (sizeof(void *) + 3));
  struct history_registry reg;
  memset(&reg, 0, sizeof(reg));
  assert_int_equal(map_put(&reg.rooms, "x", h), 0);
  history_registry_free(&reg); /* frees h and its rings */
  (void)state;
}

/* What an owner hands the next one (cluster snapshot.c): the counts and
 * the rings' tails go to JSON and back into a fresh history, without the
 * sink; tails start where asked (ring ordinals), bad entries are refused. */
static void history_hands_over_counts_and_rings(void **state) {
  struct room_history *h = calloc(1, sizeof(*h)), *n = calloc(1, sizeof(*n));
  h->sessions = 7;
  h->closed_session_ms = 123456;
  h->peak = 4;
  h->quality[2] = 3;
  h->custom_events = 2;
  history_count_message(h, 5);
  history_count_message(h, 5);
  history_count_message(h, 9);
  history_event(h, 10, "join", "alice", NULL, 0, NULL);
  history_event(h, 11, "custom", "bob", "clicked", -3, json_pack("{s:i}", "k", 1));
  history_event(h, 12, "chat", "bob", NULL, 0, NULL);
  history_audit(h, 13, "alice", "mute", "bob", json_pack("{s:b}", "on", 1));
  json_t *tail = history_ring_tail(&h->events, 1); /* from the second event on */
  assert_int_equal(json_array_size(tail), 2);
  assert_string_equal(json_string_value(json_array_get(json_array_get(tail, 0), 1)), "custom");
  json_decref(tail);
  json_t *all = history_ring_tail(&h->events, 0), *au = history_ring_tail(&h->audit, 0);
  json_t *agg = history_agg_json(h);
  history_sink_set(on_sink, NULL);
  int before = sunk_n;
  size_t i;
  json_t *e;
  json_array_foreach(all, i, e) {
    char *t = json_dumps(e, JSON_COMPACT);
    assert_int_equal(history_ring_restore(n, 0, t, strlen(t)), 0);
    free(t);
  }
  char *t = json_dumps(json_array_get(au, 0), JSON_COMPACT);
  assert_int_equal(history_ring_restore(n, 1, t, strlen(t)), 0);
  free(t);
  assert_int_equal(history_ring_restore(n, 0, "[1,2]", 5), -1);
  assert_int_equal(history_ring_restore(n, 0, "nope", 4), -1);
  assert_int_equal(sunk_n, before); /* the store is not told again */
  history_sink_set(NULL, NULL);
  history_agg_apply(n, agg);
  assert_int_equal(n->sessions, 7);
  assert_int_equal(n->closed_session_ms, 123456);
  assert_int_equal(n->peak, 4);
  assert_int_equal(n->quality[2], 3);
  assert_int_equal(n->custom_events, 2);
  assert_int_equal(history_messages(n, 5), 2);
  assert_int_equal(history_messages(n, 9), 1);
  assert_int_equal(n->events.total, 3);
  assert_int_equal(n->audit.total, 1);
  json_t *a = history_ring_json(&h->events, 0, 10, 0), *b = history_ring_json(&n->events, 0, 10, 0);
  assert_true(json_equal(a, b));
  json_decref(a);
  json_decref(b);
  a = history_ring_json(&h->audit, 0, 10, 1);
  b = history_ring_json(&n->audit, 0, 10, 1);
  assert_true(json_equal(a, b));
  json_decref(a);
  json_decref(b);
  json_decref(all);
  json_decref(au);
  json_decref(agg);
  struct history_registry reg;
  memset(&reg, 0, sizeof(reg));
  assert_int_equal(map_put(&reg.rooms, "x", h), 0);
  assert_int_equal(map_put(&reg.rooms, "y", n), 0);
  history_registry_free(&reg);
  (void)state;
}

/* Erase of one user in memory: its own events lose user and data; another
 * user's event keeps its data even when a value there is the erased id (it
 * is that user's, as the store leaves it); an audit entry whose details
 * name the user loses them. */
static void history_erase_touches_only_the_users_own_fields(void **state) {
  struct history_registry reg;
  memset(&reg, 0, sizeof(reg));
  struct room_history *h = history_get_or_create(&reg, "er", 1);
  assert_non_null(h);
  history_event(h, 10, "custom", "dora", "mine", 0, json_pack("{s:s}", "k", "v"));
  history_event(h, 11, "custom", "bob", "about", 0, json_pack("{s:s}", "who", "dora"));
  history_event(h, 12, "chat", "dora", "room", 0, NULL);
  history_audit(h, 13, "hana", "role_change", "bob", json_pack("{s:s}", "by", "dora"));
  history_erase_user(&reg, "dora");
  json_t *ev = history_ring_json(&h->events, 0, 10, 0);
  assert_int_equal(json_array_size(ev), 3);
  json_t *e0 = json_array_get(ev, 0), *e1 = json_array_get(ev, 1), *e2 = json_array_get(ev, 2);
  assert_string_equal(json_string_value(json_object_get(e0, "user_id")), HISTORY_ANONYMOUS);
  assert_null(json_object_get(e0, "data"));
  assert_string_equal(json_string_value(json_object_get(e1, "user_id")), "bob");
  assert_string_equal(json_string_value(json_object_get(json_object_get(e1, "data"), "who")), "dora");
  assert_string_equal(json_string_value(json_object_get(e2, "user_id")), HISTORY_ANONYMOUS);
  assert_string_equal(json_string_value(json_object_get(e2, "name")), "room");
  json_decref(ev);
  json_t *au = history_ring_json(&h->audit, 0, 10, 1);
  assert_int_equal(json_array_size(au), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(au, 0), "target")), "bob");
  assert_null(json_object_get(json_array_get(au, 0), "details"));
  json_decref(au);
  history_registry_free(&reg);
  (void)state;
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(history_erase_touches_only_the_users_own_fields),
    cmocka_unit_test_setup_teardown(user_joined_entries_are_compact_and_render_as_sent, setup, teardown),
    cmocka_unit_test(roomlog_compact_keeps_recipients_and_counts_bytes),
    cmocka_unit_test(history_rings_keep_what_they_held),
    cmocka_unit_test(history_hands_over_counts_and_rings),
    cmocka_unit_test_setup_teardown(join_sends_state_then_user_joined, setup, teardown),
    cmocka_unit_test_setup_teardown(away_member_keeps_seat_and_resumes, setup, teardown),
    cmocka_unit_test_setup_teardown(grace_expiry_leaves_and_remembers_the_token, setup, teardown),
    cmocka_unit_test_setup_teardown(role_set_checks_rank_and_broadcasts, setup, teardown),
    cmocka_unit_test_setup_teardown(remove_closes_the_session_and_bans, setup, teardown),
    cmocka_unit_test_setup_teardown(settings_update_is_all_or_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(waiting_room_admit_attaches_the_session, setup, teardown),
    cmocka_unit_test_setup_teardown(command_checks_permission_then_budget, setup, teardown),
    cmocka_unit_test_setup_teardown(send_only_delivers_to_one_member_keeping_the_envelope, setup, teardown),
    cmocka_unit_test(roomlog_bounds_count_and_reports_gaps),
    cmocka_unit_test(roomlog_bounds_bytes),
    cmocka_unit_test(roomlog_filters_recipients),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
