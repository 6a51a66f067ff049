/* Unit tests for the parts of src/cluster that need no Redis and no loop:
 * the wire formats (wire.c: stream ids, lease values, claims fields, message
 * queues, keep-alive answers, the Redis URL, backoff), the fields of an
 * inbox entry, the snapshot written and read back (snapshot.c), the
 * rebuild's application of erases to logged entries (takeover.c), and the
 * growable list the sweeps collect into (wire.c), and the pure parts of
 * files forwarding (the files URL, the advertised address, the forwarded
 * head). Replies
 * are built by hand as hiredis would hand them over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cluster/cluster_int.h"
#include "lib/outbuf.h"
#include "net/http.h"
#include "room/policy.h"
#include "room/room.h"
#include "store/store_schema.h"

/* ---- replies as hiredis builds them ---- */

static redisReply *rstr(const char *s) {
  redisReply *r = calloc(1, sizeof(*r));
  assert_non_null(r);
  r->type = REDIS_REPLY_STRING;
  r->str = strdup(s);
  r->len = strlen(s);
  return r;
}

/* An array of n replies (taken). */
static redisReply *rarr(size_t n, ...) {
  redisReply *r = calloc(1, sizeof(*r));
  assert_non_null(r);
  r->type = REDIS_REPLY_ARRAY;
  r->elements = n;
  r->element = calloc(n ? n : 1, sizeof(redisReply *));
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) r->element[i] = va_arg(ap, redisReply *);
  va_end(ap);
  return r;
}

static void rfree(redisReply *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->elements; i++) rfree(r->element[i]);
  free(r->element);
  free(r->str);
  free(r);
}

/* ---- wire.c ---- */

/* The sweeps' list: every entry of a map, however many (the fixed arrays
 * it replaces stopped at 256 or 1,024), in the map's order. */
static void ptrvec_collects_every_entry(void **state) {
  (void)state;
  enum { N = 5000 };
  static int vals[N];
  struct map m = {0};
  char key[16];
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    assert_int_equal(map_put(&m, key, &vals[i]), 0);
  }
  struct ptrvec pv;
  memset(&pv, 0, sizeof(pv));
  map_each(&m, ptrvec_push, &pv);
  assert_int_equal(pv.n, N);
  assert_int_equal(pv.missed, 0);
  assert_true(pv.cap >= pv.n);
  static unsigned char seen[N];
  memset(seen, 0, sizeof(seen));
  for (size_t i = 0; i < pv.n; i++) {
    int *v = pv.v[i];
    assert_true(v >= vals && v < vals + N);
    assert_int_equal(seen[v - vals], 0);
    seen[v - vals] = 1;
  }
  ptrvec_free(&pv);
  assert_null(pv.v);
  assert_int_equal(pv.n, 0);
  assert_int_equal(pv.cap, 0);
  map_each(&m, ptrvec_push, &pv); /* reusable after a free */
  assert_int_equal(pv.n, N);
  ptrvec_free(&pv);
  map_free(&m);
}


static void stream_ids_round_trip(void **state) {
  (void)state;
  char id[48];
  uint64_t a = 7, b = 7;
  stream_id_format(id, sizeof(id), 42, 0);
  assert_string_equal(id, "42-0"); /* the room-log entry of seq 42 */
  assert_int_equal(stream_id_parse(id, &a, &b), 0);
  assert_int_equal(a, 42);
  assert_int_equal(b, 0);
  stream_id_format(id, sizeof(id), UINT64_MAX, 3);
  assert_string_equal(id, "18446744073709551615-3");
  assert_int_equal(stream_id_parse(id, &a, &b), 0);
  assert_true(a == UINT64_MAX);
  assert_int_equal(b, 3);
  /* The MINID one past a read entry, as inbox_mark_read makes it. */
  assert_int_equal(stream_id_parse("1733490000123-7", &a, &b), 0);
  stream_id_format(id, sizeof(id), a, b + 1);
  assert_string_equal(id, "1733490000123-8");
}

static void stream_ids_refused_untouched(void **state) {
  (void)state;
  const char *bad[] = {"", "42", "42-", "-1", "a-b", "1-2x", "1--2", " 1-2", "1-2-3", "18446744073709551616-0",
                       "1-18446744073709551616"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint64_t a = 11, b = 12;
    assert_int_equal(stream_id_parse(bad[i], &a, &b), -1);
    assert_int_equal(a, 11);
    assert_int_equal(b, 12);
  }
  uint64_t a = 0, b = 0;
  assert_int_equal(stream_id_parse(NULL, &a, &b), -1);
}

static void lease_values_parse(void **state) {
  (void)state;
  char owner[32];
  uint64_t fence = 99;
  assert_int_equal(lease_parse("a1b2c3d4e5f6:17", owner, sizeof(owner), &fence), 0);
  assert_string_equal(owner, "a1b2c3d4e5f6");
  assert_int_equal(fence, 17);
  /* The fence is after the last colon. */
  assert_int_equal(lease_parse("a:b:5", owner, sizeof(owner), &fence), 0);
  assert_string_equal(owner, "a:b");
  assert_int_equal(fence, 5);
  assert_int_equal(lease_parse("nocolon", owner, sizeof(owner), &fence), -1);
  assert_string_equal(owner, "");
  assert_int_equal(fence, 0);
  assert_int_equal(lease_parse("x:1", NULL, 0, &fence), 0); /* the fence alone, as acquire_cb takes it */
  assert_int_equal(fence, 1);
}

/* The fenced scripts' test: a lease is ours only when it starts "inst:". */
static void lease_held_by_exact_instance(void **state) {
  (void)state;
  assert_true(lease_held_by("abc:5", "abc"));
  assert_false(lease_held_by("abcd:5", "abc"));
  assert_false(lease_held_by("abc:5", "abcd"));
  assert_false(lease_held_by("ab:5", "abc"));
  assert_false(lease_held_by("abc", "abc"));
  assert_false(lease_held_by("", "abc"));
  assert_false(lease_held_by(":5", ""));
}

static void claims_fields_round_trip(void **state) {
  (void)state;
  struct token_claims in, out;
  memset(&in, 0, sizeof(in));
  memset(&out, 0, sizeof(out));
  in.role = ROOM_ROLE_MODERATOR;
  in.perms_set = 0x30;
  in.perms_val = 0x10;
  in.admin = 1;
  char cs[64];
  claims_to_fields(&in, cs, sizeof(cs));
  snprintf(out.sub, sizeof(out.sub), "kept");
  assert_int_equal(claims_parse(cs, &out), 0);
  assert_int_equal(out.role, ROOM_ROLE_MODERATOR);
  assert_int_equal(out.perms_set, 0x30);
  assert_int_equal(out.perms_val, 0x10);
  assert_int_equal(out.admin, 1);
  assert_string_equal(out.sub, "kept"); /* the other claims are left alone */
}

static void claims_fields_refused_as_viewer(void **state) {
  (void)state;
  const char *bad[] = {"", "x", "3,1,1", "99,0,0,0", "-1,0,0,0", "4,0,0,0"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct token_claims tc;
    memset(&tc, 0, sizeof(tc));
    tc.role = ROOM_ROLE_HOST;
    assert_int_equal(claims_parse(bad[i], &tc), -1);
    assert_int_equal(tc.role, ROOM_ROLE_VIEWER);
  }
}

static void msgq_keeps_order_and_bounds(void **state) {
  (void)state;
  struct buf q = {0};
  const char *d;
  uint32_t n;
  size_t off = 0;
  assert_int_equal(msgq_next(&q, &off, &d, &n), 0); /* empty */
  assert_int_equal(msgq_push(&q, "first", 5), 0);
  assert_int_equal(msgq_push(&q, "", 0), 0);
  assert_int_equal(msgq_push(&q, "{\"type\":\"chat-message\"}", 23), 0);
  assert_int_equal(msgq_next(&q, &off, &d, &n), 1);
  assert_int_equal(n, 5);
  assert_memory_equal(d, "first", 5);
  assert_int_equal(msgq_next(&q, &off, &d, &n), 1);
  assert_int_equal(n, 0);
  assert_int_equal(msgq_next(&q, &off, &d, &n), 1);
  assert_int_equal(n, 23);
  assert_memory_equal(d, "{\"type\":\"chat-message\"}", 23);
  assert_int_equal(msgq_next(&q, &off, &d, &n), 0);
  assert_int_equal(off, q.len);
  /* A tail whose length says more than is there is never read past. */
  uint32_t big = 100;
  buf_append(&q, &big, 4);
  buf_append(&q, "abc", 3);
  assert_int_equal(msgq_next(&q, &off, &d, &n), 0);
  buf_append(&q, "de", 2); /* a length without all of its 4 bytes */
  size_t off2 = q.len - 2;
  assert_int_equal(msgq_next(&q, &off2, &d, &n), 0);
  buf_free(&q);
}

static void answer_keeps_reads_the_head_only(void **state) {
  (void)state;
  const char *keep = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
                     "Content-Length: 2\r\n\r\n{}";
  const char *close = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
  const char *in_body = "HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n\r\nConnection: keep-alive\r\n..";
  const char *lower = "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\n\r\n";
  assert_true(answer_keeps(keep, strlen(keep)));
  assert_false(answer_keeps(close, strlen(close)));
  assert_false(answer_keeps(in_body, strlen(in_body)));
  assert_false(answer_keeps(lower, strlen(lower))); /* http_reply's own spelling only */
  assert_false(answer_keeps(keep, 20));             /* cut before the header */
  assert_false(answer_keeps("", 0));
}

static void redis_url_forms(void **state) {
  (void)state;
  struct redis_url u;
  char err[128];
  assert_int_equal(redis_url_parse(&u, "redis://127.0.0.1", err, sizeof(err)), 0);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 6379);
  assert_string_equal(u.user, "");
  assert_string_equal(u.pass, "");
  assert_int_equal(u.db, 0);
  assert_int_equal(redis_url_parse(&u, "redis://:s3cret@redis.local:7000/3", err, sizeof(err)), 0);
  assert_string_equal(u.host, "redis.local");
  assert_int_equal(u.port, 7000);
  assert_string_equal(u.user, "");
  assert_string_equal(u.pass, "s3cret");
  assert_int_equal(u.db, 3);
  assert_int_equal(redis_url_parse(&u, "redis://huddle:p@ss:w@h", err, sizeof(err)), 0);
  assert_string_equal(u.user, "huddle"); /* the host is after the last '@' */
  assert_string_equal(u.pass, "p@ss:w");
  assert_string_equal(u.host, "h");
  assert_int_equal(redis_url_parse(&u, "redis://onlypass@h/0", err, sizeof(err)), 0);
  assert_string_equal(u.pass, "onlypass");
  assert_int_equal(u.db, 0);
}

static void redis_url_refused(void **state) {
  (void)state;
  struct redis_url u;
  char err[128];
  const char *bad[] = {"http://h", "redis://", "redis://:6379", "redis://h:0", "redis://h:65536", "redis://h:x",
                       "redis://h/", "redis://h/-1", "redis://h/1x", "redis://h:6379x", "rediss://h"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    assert_int_equal(redis_url_parse(&u, bad[i], err, sizeof(err)), -1);
    assert_true(strstr(err, "redis") != NULL); /* says what was wrong */
  }
}

static void backoff_doubles_to_the_cap(void **state) {
  (void)state;
  int ms = BACKOFF_MIN_MS;
  const int want[] = {200, 400, 800, 1600, BACKOFF_MAX_MS, BACKOFF_MAX_MS};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    ms = backoff_next(ms);
    assert_int_equal(ms, want[i]);
  }
}

/* ---- an inbox entry's fields ---- */

static void open_entry_claims(void **state) {
  (void)state;
  redisReply *f = rarr(12, rstr("k"), rstr("open"), rstr("u"), rstr("alice"), rstr("n"), rstr("Alice A."),
                       rstr("rm"), rstr("r1"), rstr("cl"), rstr("3,16,0,1"), rstr("adm"), rstr("1"));
  struct token_claims tc;
  claims_from_fields(f, &tc);
  assert_string_equal(tc.sub, "alice");
  assert_string_equal(tc.name, "Alice A.");
  assert_string_equal(tc.room, "r1");
  assert_int_equal(tc.role, ROOM_ROLE_HOST);
  assert_int_equal(tc.perms_set, 16);
  assert_int_equal(tc.admin, 1);
  assert_int_equal(reply_field_int(f, "adm"), 1);
  assert_int_equal(reply_field_int(f, "missing"), 0);
  assert_null(reply_field(f, "open")); /* values are not names */
  char k[4];
  assert_int_equal(reply_field_str(f, "k", k, sizeof(k)), 0);
  assert_string_equal(k, "ope"); /* cut to the buffer */
  rfree(f);
  redisReply *s = rstr("not an array");
  assert_null(reply_field(s, "k"));
  assert_null(reply_at(s, 0));
  rfree(s);
}

/* ---- the snapshot ---- */

struct where_map {
  const void *session;
  const char *inst, *link;
};

static struct where_map places[8];

static void test_where(const void *arg, const void *session, const char **inst, const char **link) {
  (void)arg;
  *inst = "", *link = "";
  for (size_t i = 0; i < 8; i++)
    if (session && places[i].session == session) *inst = places[i].inst, *link = places[i].link;
}

struct applied {
  int tokens[8];          /* sessions handed out: their addresses are the tokens */
  size_t ntokens;
  const char *live;       /* the instance that still beats */
  struct participant *members[8];
  struct waiter *waiters[8];
  size_t nmembers, nwaiters;
};

static void *test_session(void *arg, json_t *m) {
  struct applied *a = arg;
  const char *inst = json_string_value(json_object_get(m, "inst"));
  if (inst == NULL || strcmp(inst, a->live) != 0) return NULL;
  assert_true(a->ntokens < 8);
  return &a->tokens[a->ntokens++];
}

static void test_member(void *arg, void *session, struct participant *p) {
  struct applied *a = arg;
  assert_ptr_equal(p->session, session);
  a->members[a->nmembers++] = p;
}

static void test_waiter(void *arg, void *session, struct waiter *w) {
  struct applied *a = arg;
  assert_non_null(w);
  assert_ptr_equal(w->session, session);
  a->waiters[a->nwaiters++] = w;
}

static struct participant *member(struct room *r, const char *user, const char *name, enum room_role role) {
  struct token_claims tc;
  memset(&tc, 0, sizeof(tc));
  snprintf(tc.sub, sizeof(tc.sub), "%s", user);
  snprintf(tc.name, sizeof(tc.name), "%s", name);
  tc.role = role;
  struct participant *p = room_participant_new(&tc, 1000);
  assert_non_null(p);
  p->role = role;
  p->origin_role = role;
  assert_int_equal(room_participant_add(r, p), 0);
  return p;
}

static json_t *round_trip(const struct room *r) {
  json_t *snap = snap_encode(r, test_where, NULL);
  assert_non_null(snap);
  char *txt = json_dumps(snap, JSON_COMPACT);
  json_decref(snap);
  assert_non_null(txt);
  json_t *back = snap_parse(txt, strlen(txt));
  free(txt);
  assert_non_null(back);
  return back;
}

static void snapshot_round_trip(void **state) {
  (void)state;
  memset(places, 0, sizeof(places));
  struct room *r = room_new("r1", 50, 1000);
  assert_non_null(r);
  int s_alice, s_bob, s_carol, s_wait1, s_wait2;
  struct participant *alice = member(r, "alice", "Alice", ROOM_ROLE_HOST);
  struct participant *bob = member(r, "bob", "Bob", ROOM_ROLE_PARTICIPANT);
  struct participant *carol = member(r, "carol", "carol", ROOM_ROLE_VIEWER);
  alice->session = &s_alice, bob->session = &s_bob, carol->session = &s_carol;
  places[0] = (struct where_map){&s_alice, "inst-a", ""};     /* local to the dead owner */
  places[1] = (struct where_map){&s_bob, "inst-b", "7"};      /* a link of a live instance */
  places[2] = (struct where_map){&s_carol, "inst-a", ""};
  places[3] = (struct where_map){&s_wait1, "inst-b", "9"};
  places[4] = (struct where_map){&s_wait2, "inst-a", ""};
  bob->perms_set = 0x4;
  bob->perms_val = 0x4;
  bob->origin_role = ROOM_ROLE_VIEWER;
  bob->origin_set = 0x2;
  bob->audio = 1, bob->screen = 1;
  bob->joined_ms = 123456;
  room_participant_perms_update(bob);
  r->seq = 77;
  r->settings.locked = 1;
  r->settings.waiting_room = 1;
  r->settings.max_participants = 12;
  r->settings.chat_enabled = 0;
  r->settings.screen_share_moderators_only = 1;
  assert_int_equal(room_hand_raise(r, "bob", "Bob", 5000), 0);
  assert_int_equal(room_hand_raise(r, "carol", "carol", 6000), 0);
  map_put(&r->banned, "mallory", (void *)1);
  struct token_claims wc;
  memset(&wc, 0, sizeof(wc));
  snprintf(wc.sub, sizeof(wc.sub), "dave");
  snprintf(wc.name, sizeof(wc.name), "Dave");
  snprintf(wc.room, sizeof(wc.room), "r1");
  wc.role = ROOM_ROLE_MODERATOR;
  wc.perms_set = 8;
  wc.exp = 4102444800LL;
  assert_non_null(room_waiter_add(r, &s_wait1, &wc, 7000));
  snprintf(wc.sub, sizeof(wc.sub), "erin");
  assert_non_null(room_waiter_add(r, &s_wait2, &wc, 8000));
  char bob_sid[33], bob_rt[65];
  room_participant_session_id(bob, bob_sid);
  room_participant_resume_token(bob, bob_rt);

  json_t *snap = round_trip(r);
  assert_int_equal(snap_seq_of(snap), 77);
  struct room *n = room_new("r1", 50, 2000);
  struct applied a = {.live = "inst-b"};
  struct snap_sessions ss = {test_session, test_member, test_waiter, &a};
  struct participant *away[8];
  size_t listed = 0;
  size_t naway = snap_apply(n, snap, 9000, &ss, away, 1, &listed);
  json_decref(snap);

  /* Members in join order, the one of the live instance with its session. */
  assert_int_equal(n->count, 3);
  assert_int_equal(naway, 2);
  assert_int_equal(n->naway, 2);
  assert_int_equal(listed, 1); /* at most max listed */
  assert_string_equal(away[0]->user_id, "alice");
  assert_int_equal(away[0]->away_ms, 9000);
  assert_int_equal(a.nmembers, 1);
  struct participant *nb = room_participant_find(n, "bob");
  assert_ptr_equal(a.members[0], nb);
  assert_int_equal(nb->away_ms, 0);
  assert_string_equal(nb->name, "Bob");
  assert_int_equal(nb->role, ROOM_ROLE_PARTICIPANT);
  assert_int_equal(nb->perms_set, 0x4);
  assert_int_equal(nb->perms_val, 0x4);
  assert_int_equal(nb->perms, bob->perms);
  assert_int_equal(nb->origin_role, ROOM_ROLE_VIEWER);
  assert_int_equal(nb->origin_set, 0x2);
  assert_int_equal(nb->audio, 1);
  assert_int_equal(nb->video, 0);
  assert_int_equal(nb->screen, 1);
  assert_int_equal(nb->joined_ms, 123456);
  assert_string_equal(room_participant_session_id(nb, (char[33]){0}), bob_sid);
  assert_true(room_participant_resume_token_is(nb, bob_rt)); /* resumes across the takeover */
  assert_int_equal(room_participant_find(n, "alice")->role, ROOM_ROLE_HOST);
  assert_int_equal(room_participant_find(n, "carol")->away_ms, 9000);
  assert_string_equal(n->head->user_id, "alice");
  assert_string_equal(n->head->next->user_id, "bob");
  /* Settings, hands in order, bans. */
  assert_int_equal(n->settings.locked, 1);
  assert_int_equal(n->settings.waiting_room, 1);
  assert_int_equal(n->settings.max_participants, 12);
  assert_int_equal(n->settings.chat_enabled, 0);
  assert_int_equal(n->settings.reactions_enabled, r->settings.reactions_enabled);
  assert_int_equal(n->settings.screen_share_moderators_only, 1);
  assert_int_equal(n->nhands, 2);
  assert_string_equal(n->hands[0].user_id, "bob");
  assert_int_equal(n->hands[0].raised_ms, 5000);
  assert_string_equal(n->hands[1].user_id, "carol");
  assert_non_null(map_get(&n->banned, "mallory"));
  /* The waiter of the live instance waits on, with its claims; the other is gone. */
  assert_int_equal(a.nwaiters, 1);
  assert_ptr_equal(n->wait_head, a.waiters[0]);
  assert_null(n->wait_head->next);
  const struct waiter *w = n->wait_head;
  assert_string_equal(w->claims.sub, "dave");
  assert_string_equal(w->claims.name, "Dave");
  assert_string_equal(w->claims.room, "r1");
  assert_int_equal(w->claims.role, ROOM_ROLE_MODERATOR);
  assert_int_equal(w->claims.perms_set, 8);
  assert_true(w->claims.exp == 4102444800LL);
  assert_int_equal(w->since_ms, 7000);
  room_free(n);
  room_free(r);
}

/* A takeover keeps the room's creation time: a new owner's room was made
 * now, the snapshot says when the first owner made it. A snapshot without
 * one (or a bad one) leaves the new room's. */
static void snapshot_keeps_creation_time(void **state) {
  (void)state;
  memset(places, 0, sizeof(places));
  struct room *r = room_new("r3", 50, 1000);
  assert_non_null(r);
  json_t *snap = round_trip(r);
  struct room *n = room_new("r3", 50, 90000);
  struct applied a = {.live = "inst-b"};
  struct snap_sessions ss = {test_session, test_member, test_waiter, &a};
  struct participant *away[1];
  size_t listed = 0;
  snap_apply(n, snap, 90000, &ss, away, 1, &listed);
  assert_int_equal(n->created_ms, 1000);
  room_free(n);
  json_object_set_new(snap, "created", json_string("soon"));
  n = room_new("r3", 50, 90000);
  snap_apply(n, snap, 90000, &ss, away, 1, &listed);
  assert_int_equal(n->created_ms, 90000);
  room_free(n);
  json_object_del(snap, "created");
  n = room_new("r3", 50, 90000);
  snap_apply(n, snap, 90000, &ss, away, 1, &listed);
  assert_int_equal(n->created_ms, 90000);
  room_free(n);
  json_decref(snap);
  room_free(r);
}

/* Where each session is, as written. */
static void snapshot_says_where_sessions_are(void **state) {
  (void)state;
  memset(places, 0, sizeof(places));
  struct room *r = room_new("r2", 50, 1000);
  int s1;
  struct participant *p = member(r, "alice", "Alice", ROOM_ROLE_HOST);
  member(r, "bob", "Bob", ROOM_ROLE_PARTICIPANT); /* away: no session */
  p->session = &s1;
  places[0] = (struct where_map){&s1, "inst-x", "42"};
  json_t *snap = round_trip(r);
  json_t *ms = json_object_get(snap, "members");
  assert_int_equal(json_array_size(ms), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 0), "inst")), "inst-x");
  assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 0), "link")), "42");
  assert_string_equal(json_string_value(json_object_get(json_array_get(ms, 1), "inst")), "");
  json_decref(snap);
  room_free(r);
}

static void malformed_snapshot_refused_cleanly(void **state) {
  (void)state;
  assert_null(snap_parse("not json", 8));
  assert_null(snap_parse("[1,2]", 5));
  assert_null(snap_parse("\"members\"", 9));
  assert_null(snap_parse("", 0));
  assert_null(snap_parse(NULL, 0));
  assert_int_equal(snap_seq_of(NULL), 0);
  json_t *odd = snap_parse("{\"seq\":\"x\"}", 11);
  assert_int_equal(snap_seq_of(odd), 0);
  json_decref(odd);
  const char *txt =
      "{\"seq\":\"x\",\"settings\":\"locked\",\"members\":[{\"u\":5},{\"n\":\"no id\"},\"str\","
      "{\"u\":\"has space\",\"role\":1},{\"u\":\"big\",\"role\":99},{\"u\":\"neg\",\"role\":-1},"
      "{\"u\":\"bado\",\"role\":1,\"orole\":7},{\"u\":\"fine\",\"role\":1,\"inst\":\"live\"},"
      "{\"u\":\"fine\",\"role\":3}],"
      "\"hands\":7,\"banned\":[1,\"b\"],"
      "\"waiters\":[{\"u\":\"\"},{\"u\":\"w1\",\"cl\":\"99,0,0,0\",\"inst\":\"live\"},"
      "{\"u\":\"w2\",\"inst\":\"live\"},{\"u\":\"fine\",\"cl\":\"1,0,0,0\",\"inst\":\"live\"}]}";
  json_t *snap = snap_parse(txt, strlen(txt));
  assert_non_null(snap);
  struct room *n = room_new("r3", 50, 1000);
  struct room_settings before = n->settings;
  struct applied a = {.live = "live"};
  struct snap_sessions ss = {test_session, test_member, test_waiter, &a};
  struct participant *away[8];
  size_t listed;
  assert_int_equal(snap_apply(n, snap, 5000, &ss, away, 8, &listed), 0);
  json_decref(snap);
  /* One member: the only entry with a valid id and role (the second "fine" is a duplicate). */
  assert_int_equal(n->count, 1);
  assert_non_null(room_participant_find(n, "fine"));
  assert_int_equal(room_participant_find(n, "fine")->role, ROOM_ROLE_PARTICIPANT);
  assert_int_equal(a.nmembers, 1);
  assert_memory_equal(&n->settings, &before, sizeof(before)); /* not an object: left as they were */
  assert_int_equal(n->nhands, 0);
  assert_null(map_get(&n->banned, "1"));
  assert_non_null(map_get(&n->banned, "b"));
  /* Waiters: no id, a role that does not exist, no claims, already a member: none. */
  assert_int_equal(a.nwaiters, 0);
  assert_null(n->wait_head);
  assert_int_equal(a.ntokens, 1); /* no session was asked for a refused entry */
  room_free(n);
}

/* ---- the room's policy in the snapshot ---- */

static struct policy_rec *prec(struct room *r, const char *user) {
  if (r->policy == NULL) r->policy = calloc(1, sizeof(*r->policy));
  assert_non_null(r->policy);
  struct policy_rec *rec = policy_rec_add(r->policy, user);
  assert_non_null(rec);
  return rec;
}

static struct room *applied_room(json_t *snap, struct room *n) {
  struct applied a = {.live = "none"};
  struct snap_sessions ss = {test_session, test_member, test_waiter, &a};
  struct participant *away[8];
  size_t listed;
  snap_apply(n, snap, 5000, &ss, away, 8, &listed);
  return n;
}

/* The records of users admitted or changed in the room, present or gone,
 * and the rejections, come back as they were, and replace what the new
 * owner's own store restored (older than the live room's). */
static void snapshot_carries_the_policy(void **state) {
  (void)state;
  memset(places, 0, sizeof(places));
  struct room *r = room_new("pol", 50, 1000);
  assert_non_null(r);
  member(r, "bob", "Bob", ROOM_ROLE_PARTICIPANT);
  struct policy_rec *rec = prec(r, "bob"); /* present all along: admitted, nothing changed */
  rec->admitted = 1, rec->name = strdup("Bob"), rec->base_role = ROOM_ROLE_PARTICIPANT;
  rec->base_set = 0x6, rec->base_val = 0x2;
  rec = prec(r, "mia"); /* a moderator demoted who left, her sharing taken away */
  rec->admitted = 1, rec->name = strdup("Mia"), rec->base_role = ROOM_ROLE_MODERATOR;
  rec->has_role = 1, rec->role = ROOM_ROLE_PARTICIPANT;
  rec->has_perms = 1, rec->set = 0x10, rec->val = 0;
  rec = prec(r, "zed"); /* changed, never admitted, no name */
  rec->has_perms = 1, rec->set = 0xffffffffu, rec->val = 0x80000001u;
  map_put(&r->policy->rejected, "troll", (void *)1);
  json_t *snap = round_trip(r);

  struct room *n = room_new("pol", 50, 2000);
  rec = prec(n, "mia"); /* what the new owner's store said: mia a host */
  rec->has_role = 1, rec->role = ROOM_ROLE_HOST;
  prec(n, "stale")->has_role = 1;
  map_put(&n->policy->rejected, "bob", (void *)1);
  applied_room(snap, n);
  json_decref(snap);
  assert_int_equal(n->policy->count, 3);
  assert_null(policy_rec_get(n->policy, "stale"));
  const struct policy_rec *b = policy_rec_get(n->policy, "bob");
  assert_non_null(b);
  assert_true(b->admitted);
  assert_string_equal(b->name, "Bob");
  assert_int_equal(b->base_role, ROOM_ROLE_PARTICIPANT);
  assert_int_equal(b->base_set, 0x6);
  assert_int_equal(b->base_val, 0x2);
  assert_false(b->has_role);
  assert_false(b->has_perms);
  const struct policy_rec *m = policy_rec_get(n->policy, "mia");
  assert_non_null(m);
  assert_true(m->admitted);
  assert_string_equal(m->name, "Mia");
  assert_int_equal(m->base_role, ROOM_ROLE_MODERATOR);
  assert_true(m->has_role);
  assert_int_equal(m->role, ROOM_ROLE_PARTICIPANT);
  assert_true(m->has_perms);
  assert_int_equal(m->set, 0x10);
  assert_int_equal(m->val, 0);
  const struct policy_rec *z = policy_rec_get(n->policy, "zed");
  assert_non_null(z);
  assert_false(z->admitted);
  assert_null(z->name);
  assert_false(z->has_role);
  assert_true(z->set == 0xffffffffu && z->val == 0x80000001u);
  assert_non_null(map_get(&n->policy->rejected, "troll"));
  assert_null(map_get(&n->policy->rejected, "bob"));
  assert_int_equal(n->policy->rejected.count, 1);
  room_free(n);

  /* An empty policy empties what the store restored. */
  room_free(r);
  r = room_new("pol", 50, 1000);
  snap = round_trip(r);
  n = room_new("pol", 50, 2000);
  prec(n, "stale")->has_role = 1;
  map_put(&n->policy->rejected, "bob", (void *)1);
  applied_room(snap, n);
  json_decref(snap);
  assert_int_equal(n->policy->count, 0);
  assert_int_equal(n->policy->rejected.count, 0);
  room_free(n);
  room_free(r);
}

/* Entries without a valid id, with a role that does not exist, or with a
 * mask that is not 32 bits, are refused one by one; a policy that is not
 * an object changes nothing. */
static void snapshot_policy_refuses_bad_entries(void **state) {
  (void)state;
  const char *txt =
      "{\"policy\":{\"users\":[7,{\"u\":5,\"br\":1},{\"n\":\"no id\",\"br\":1},{\"u\":\"has space\",\"br\":1},"
      "{\"u\":\"nobr\"},{\"u\":\"bigbr\",\"br\":99},{\"u\":\"negbr\",\"br\":-1},{\"u\":\"badr\",\"br\":1,\"r\":\"host\"},"
      "{\"u\":\"bigr\",\"br\":1,\"r\":4},{\"u\":\"strbs\",\"br\":1,\"bs\":\"1\"},"
      "{\"u\":\"bigbs\",\"br\":1,\"bs\":4294967296},{\"u\":\"negps\",\"br\":1,\"ps\":-1},"
      "{\"u\":\"nullpv\",\"br\":1,\"ps\":1,\"pv\":null},"
      "{\"u\":\"ok\",\"br\":2,\"bs\":4294967295,\"bv\":3,\"a\":true,\"n\":5,\"ps\":1,\"pv\":255}],"
      "\"rejected\":[1,\"\",\"a b\",\"gone\",{\"u\":\"x\"}]}}";
  json_t *snap = snap_parse(txt, strlen(txt));
  assert_non_null(snap);
  struct room *n = applied_room(snap, room_new("bad", 50, 1000));
  json_decref(snap);
  assert_non_null(n->policy);
  assert_int_equal(n->policy->count, 1);
  const struct policy_rec *ok = policy_rec_get(n->policy, "ok");
  assert_non_null(ok);
  assert_int_equal(ok->base_role, 2);
  assert_true(ok->base_set == 0xffffffffu);
  assert_int_equal(ok->base_val, 3);
  assert_true(ok->admitted);
  assert_null(ok->name); /* not a string: no name */
  assert_true(ok->has_perms);
  assert_int_equal(ok->set, 1);
  assert_int_equal(ok->val, 1); /* only the bits it sets */
  assert_int_equal(n->policy->rejected.count, 1);
  assert_non_null(map_get(&n->policy->rejected, "gone"));
  room_free(n);
  /* Users and rejected not arrays, or the policy not an object. */
  const char *odd[] = {"{\"policy\":{\"users\":{\"u\":\"a\",\"br\":1},\"rejected\":\"b\"}}", "{\"policy\":[1]}",
                       "{\"policy\":\"x\"}"};
  for (size_t i = 0; i < 3; i++) {
    snap = snap_parse(odd[i], strlen(odd[i]));
    assert_non_null(snap);
    n = room_new("bad", 50, 1000);
    assert_non_null(prec(n, "kept"));
    applied_room(snap, n);
    json_decref(snap);
    assert_int_equal(n->policy->count, i == 0 ? 0 : 1); /* an object replaces, anything else keeps */
    room_free(n);
  }
}

/* A snapshot written without the policy: each member of a main room is
 * admitted with the standing it joined with (a grant for it works); in a
 * breakout room the family's records are its main room's, so none. */
static void snapshot_without_policy_admits_members(void **state) {
  (void)state;
  memset(places, 0, sizeof(places));
  struct room *r = room_new("old", 50, 1000);
  struct participant *bob = member(r, "bob", "Bob", ROOM_ROLE_PARTICIPANT);
  bob->origin_role = ROOM_ROLE_VIEWER, bob->origin_set = 0x5, bob->origin_val = 0x7;
  struct token_claims tc;
  memset(&tc, 0, sizeof(tc));
  snprintf(tc.sub, sizeof(tc.sub), "anon");
  struct participant *anon = room_participant_new(&tc, 1000); /* no name */
  assert_non_null(anon);
  assert_int_equal(room_participant_add(r, anon), 0);
  json_t *snap = round_trip(r);
  json_object_del(snap, "policy");
  struct room *n = room_new("old", 50, 2000);
  prec(n, "bob")->has_role = 1; /* a change the store restored, before the admission */
  applied_room(snap, n);
  const struct policy_rec *b = policy_rec_get(n->policy, "bob");
  assert_non_null(b);
  assert_true(b->admitted);
  assert_true(b->has_role); /* kept */
  assert_string_equal(b->name, "Bob");
  assert_int_equal(b->base_role, ROOM_ROLE_VIEWER);
  assert_int_equal(b->base_set, 0x5);
  assert_int_equal(b->base_val, 0x5);
  const struct policy_rec *an = policy_rec_get(n->policy, "anon");
  assert_non_null(an);
  assert_true(an->admitted);
  assert_null(an->name);
  room_free(n);
  json_object_set_new(snap, "parent", json_string("main"));
  n = applied_room(snap, room_new("old", 50, 2000));
  assert_true(n->policy == NULL || n->policy->count == 0);
  room_free(n);
  json_decref(snap);
  room_free(r);
}

/* ---- the rebuild's erases ---- */

static struct outbuf *frame_of(const char *json) { return outbuf_ws_frame(0x1, json, strlen(json)); }

static json_t *json_of(const struct outbuf *b) {
  size_t off = (b->data[1] & 0x7f) == 126 ? 4 : 2;
  json_t *j = json_loadb((const char *)b->data + off, b->len - off, 0, NULL);
  assert_non_null(j);
  return j;
}

static void erases_apply_to_entries_logged_before(void **state) {
  (void)state;
  const char *chat = "{\"type\":\"chat-message\",\"from\":\"bob\",\"seq\":3,"
                     "\"payload\":{\"text\":\"my address is ...\",\"sender_name\":\"Bob\"}}";
  const char *joined = "{\"type\":\"user-joined\",\"from\":\"server\",\"seq\":2,\"payload\":{\"user_id\":\"bob\"}}";
  const char *other = "{\"type\":\"chat-message\",\"from\":\"alice\",\"seq\":4,\"payload\":{\"text\":\"hi\"}}";
  /* {user, ms of the erase}, as LUA_REBUILD returns them. */
  redisReply *erases = rarr(2, rarr(2, rstr("zed"), rstr("500")), rarr(2, rstr("bob"), rstr("2000")));

  /* The user's own chat, logged before the erase: a tombstone. */
  struct outbuf *b = erases_apply(frame_of(chat), 1000, erases);
  assert_non_null(b);
  json_t *j = json_of(b);
  json_t *p = json_object_get(j, "payload");
  assert_string_equal(json_string_value(json_object_get(p, "text")), STORE_TOMBSTONE);
  assert_string_equal(json_string_value(json_object_get(p, "sender_name")), "");
  assert_true(json_is_true(json_object_get(p, "erased")));
  assert_int_equal(json_integer_value(json_object_get(j, "seq")), 3);
  json_decref(j);
  outbuf_unref(b);
  /* Another entry naming the user: dropped. */
  assert_null(erases_apply(frame_of(joined), 1000, erases));
  /* At the erase's own ms it still applies; after it, the entry is newer than the erase. */
  assert_null(erases_apply(frame_of(joined), 2000, erases));
  struct outbuf *later = frame_of(chat);
  assert_ptr_equal(erases_apply(later, 2001, erases), later);
  outbuf_unref(later);
  /* Not naming the user: kept as it is. */
  struct outbuf *kept = frame_of(other);
  assert_ptr_equal(erases_apply(kept, 1000, erases), kept);
  outbuf_unref(kept);
  /* No erases. */
  kept = frame_of(chat);
  assert_ptr_equal(erases_apply(kept, 1000, NULL), kept);
  outbuf_unref(kept);
  /* A malformed erase (no ms) is passed over. */
  redisReply *bad = rarr(1, rarr(1, rstr("bob")));
  kept = frame_of(chat);
  assert_ptr_equal(erases_apply(kept, 1000, bad), kept);
  outbuf_unref(kept);
  rfree(bad);
  rfree(erases);
}

/* ---- shared files on any instance (wire.c) ---- */

static int url_room(const char *url, char *room) { return files_url_room(url, strlen(url), room, ID_MAX + 1); }

static void files_urls_name_their_room(void **state) {
  (void)state;
  char room[ID_MAX + 1];
  assert_int_equal(url_room("/webrtc/rooms/demo/files", room), 1);
  assert_string_equal(room, "demo");
  assert_int_equal(url_room("/webrtc/rooms/demo/files/", room), 1);
  assert_int_equal(url_room("/webrtc/rooms/a-b_c/files/f123?x=1", room), 1);
  assert_string_equal(room, "a-b_c");
  assert_int_equal(url_room("/webrtc/rooms/demo/files?x", room), 1);
  /* The absolute-form names the same room (api_dispatch serves it). */
  assert_int_equal(url_room("http://10.0.0.5:8080/webrtc/rooms/abs/files/f1?x=1", room), 1);
  assert_string_equal(room, "abs");
  assert_int_equal(url_room("https://h/webrtc/rooms/abs2/files", room), 1);
  assert_string_equal(room, "abs2");
  assert_int_equal(url_room("http://h/webrtc/rooms/abs/filesx", room), 0);
  assert_int_equal(url_room("http://h", room), 0);
  assert_int_equal(url_room("*", room), 0);
  /* Not files: other room endpoints, look-alikes, bad ids. */
  assert_int_equal(url_room("/webrtc/rooms/demo", room), 0);
  assert_int_equal(url_room("/webrtc/rooms/demo/filesx", room), 0);
  assert_int_equal(url_room("/webrtc/rooms/demo/participants", room), 0);
  assert_int_equal(url_room("/webrtc/rooms//files", room), 0);
  assert_int_equal(url_room("/webrtc/rooms/de mo/files", room), 0);
  assert_int_equal(url_room("/webrtc/rooms/files", room), 0);
  char longid[ID_MAX + 40];
  memset(longid, 'a', ID_MAX + 1);
  longid[ID_MAX + 1] = '\0';
  char url[ID_MAX + 80];
  snprintf(url, sizeof(url), "/webrtc/rooms/%s/files", longid);
  assert_int_equal(url_room(url, room), 0);
}

static void advertised_address_forms(void **state) {
  (void)state;
  struct sockaddr_storage sa;
  char out[80];
  assert_int_equal(addr_parse("10.0.0.5:8080", &sa), 0);
  assert_int_equal(sa.ss_family, AF_INET);
  assert_int_equal(addr_parse("[::1]:8080", &sa), 0);
  assert_int_equal(sa.ss_family, AF_INET6);
  assert_int_equal(addr_parse("::1:8080", &sa), 0); /* the server's own "bound" form */
  assert_int_equal(sa.ss_family, AF_INET6);
  assert_int_equal(addr_parse("host.example:8080", &sa), -1); /* IP literals only */
  assert_int_equal(addr_parse("10.0.0.5", &sa), -1);
  assert_int_equal(addr_parse("10.0.0.5:0", &sa), -1);
  assert_int_equal(addr_parse("10.0.0.5:70000", &sa), -1);
  assert_int_equal(addr_parse(":8080", &sa), -1);
  assert_int_equal(addr_parse("-", &sa), -1); /* a heartbeat without an address */
  /* The flag wins; a concrete listen address is the default; a wildcard is none. */
  assert_int_equal(addr_advertised("10.1.2.3:9000", "0.0.0.0:8080", out, sizeof(out)), 0);
  assert_string_equal(out, "10.1.2.3:9000");
  assert_int_equal(addr_advertised(NULL, "127.0.0.1:8080", out, sizeof(out)), 0);
  assert_string_equal(out, "127.0.0.1:8080");
  assert_int_equal(addr_advertised("", "0.0.0.0:8080", out, sizeof(out)), 0);
  assert_string_equal(out, "");
  assert_int_equal(addr_advertised(NULL, ":::8080", out, sizeof(out)), 0);
  assert_string_equal(out, "");
  assert_int_equal(addr_advertised("nope", "127.0.0.1:8080", out, sizeof(out)), -1);
  assert_string_equal(out, "");
}

static void forwarded_head_carries_what_the_owner_reads(void **state) {
  (void)state;
  struct buf b = {0};
  struct fwd_hdr hd[] = {{"Authorization", "Bearer t.o.k", 12}, {"Range", "", 0}, {"Upload-Offset", "10", 2}};
  assert_int_equal(fwd_head_build(&b, "PATCH", "/webrtc/rooms/r/files/f1", 24, hd, 3, "inst1", "10.0.0.9",
                                  FWD_BODY_LENGTH, 42), 0);
  assert_int_equal(buf_append(&b, "", 1), 0);
  assert_string_equal(b.data, "PATCH /webrtc/rooms/r/files/f1 HTTP/1.1\r\nHost: huddle\r\nConnection: close\r\n"
                              "Authorization: Bearer t.o.k\r\nUpload-Offset: 10\r\n"
                              "X-Huddle-Forwarded: inst1\r\nX-Forwarded-For: 10.0.0.9\r\nContent-Length: 42\r\n\r\n");
  buf_free(&b);
  assert_int_equal(fwd_head_build(&b, "GET", "/x", 2, NULL, 0, "i", "1.2.3.4", FWD_BODY_NONE, 0), 0);
  assert_int_equal(buf_append(&b, "", 1), 0);
  assert_non_null(strstr(b.data, "X-Forwarded-For: 1.2.3.4\r\n\r\n"));
  buf_free(&b);
  assert_int_equal(fwd_head_build(&b, "PATCH", "/x", 2, NULL, 0, "i", "1.2.3.4", FWD_BODY_CHUNKED, 0), 0);
  assert_int_equal(buf_append(&b, "", 1), 0);
  assert_non_null(strstr(b.data, "Transfer-Encoding: chunked\r\n\r\n"));
  buf_free(&b);
  /* The owner allows a forwarded head HTTP_FORWARD_HEAD_EXTRA bytes over
   * --max-header-bytes: that covers what the forward adds to the smallest
   * head a client can send (no Host; the longest instance id and client
   * address). */
  char inst[sizeof(((struct cluster *)0)->inst)];
  memset(inst, 'i', sizeof(inst) - 1);
  inst[sizeof(inst) - 1] = '\0';
  static const char ip6[] = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"; /* 45: INET6_ADDRSTRLEN - 1 */
  static const char client[] = "PATCH /x HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: 1\r\n\r\n";
  struct fwd_hdr auth[] = {{"Authorization", "Bearer t", 8}};
  assert_int_equal(fwd_head_build(&b, "PATCH", "/x", 2, auth, 1, inst, ip6, FWD_BODY_LENGTH, 1), 0);
  assert_true(b.len <= sizeof(client) - 1 + HTTP_FORWARD_HEAD_EXTRA);
  assert_true(b.len > sizeof(client) - 1 + 100); /* the allowance is needed */
  buf_free(&b);
  /* A value that would split the head is never sent. */
  struct fwd_hdr bad[] = {{"Range", "bytes=0-1\r\nX-Evil: 1", 20}};
  assert_int_equal(fwd_head_build(&b, "GET", "/x", 2, bad, 1, "i", "1.2.3.4", FWD_BODY_NONE, 0), -1);
  buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(ptrvec_collects_every_entry),
    cmocka_unit_test(stream_ids_round_trip),
    cmocka_unit_test(stream_ids_refused_untouched),
    cmocka_unit_test(lease_values_parse),
    cmocka_unit_test(lease_held_by_exact_instance),
    cmocka_unit_test(claims_fields_round_trip),
    cmocka_unit_test(claims_fields_refused_as_viewer),
    cmocka_unit_test(msgq_keeps_order_and_bounds),
    cmocka_unit_test(answer_keeps_reads_the_head_only),
    cmocka_unit_test(redis_url_forms),
    cmocka_unit_test(redis_url_refused),
    cmocka_unit_test(backoff_doubles_to_the_cap),
    cmocka_unit_test(open_entry_claims),
    cmocka_unit_test(snapshot_round_trip),
    cmocka_unit_test(snapshot_keeps_creation_time),
    cmocka_unit_test(snapshot_says_where_sessions_are),
    cmocka_unit_test(malformed_snapshot_refused_cleanly),
    cmocka_unit_test(snapshot_carries_the_policy),
    cmocka_unit_test(snapshot_policy_refuses_bad_entries),
    cmocka_unit_test(snapshot_without_policy_admits_members),
    cmocka_unit_test(erases_apply_to_entries_logged_before),
    cmocka_unit_test(files_urls_name_their_room),
    cmocka_unit_test(advertised_address_forms),
    cmocka_unit_test(forwarded_head_carries_what_the_owner_reads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
