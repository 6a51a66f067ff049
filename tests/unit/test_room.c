/* Unit tests for room/room.c: the room model (participants in join order,
 * lookup, counts, sequence numbers, permissions and JSON views). Pure data:
 * no loop, no connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "room/policy.h"
#include "room/room.h"

/* The participant keeps these as bytes (issue 16); the hex forms the protocol
 * sends, rendered into a buffer that lives to the end of the enclosing block. */
#define SESSION_ID(p) room_participant_session_id((p), (char[33]){0})
#define RESUME_TOKEN(p) room_participant_resume_token((p), (char[65]){0})

#define NOW_MS 1700000000123ULL

/* ---- Helpers ---- */

static struct token_claims claims_for(const char *sub, enum room_role role) {
  struct token_claims c;
  memset(&c, 0, sizeof(c));
  strcpy(c.sub, sub);
  c.role = role;
  c.exp = 4102444800LL;
  return c;
}

static struct participant *new_participant(const char *sub) {
  struct token_claims c = claims_for(sub, ROOM_ROLE_PARTICIPANT);
  struct participant *p = room_participant_new(&c, NOW_MS);
  assert_non_null(p);
  return p;
}

/* Adds a participant for sub to r and returns it. */
static struct participant *join(struct room *r, const char *sub) {
  struct participant *p = new_participant(sub);
  assert_int_equal(room_participant_add(r, p), 0);
  return p;
}

/* Asserts r's list holds exactly subs[0..n) in order, both directions. */
static void assert_order(const struct room *r, const char *const *subs, size_t n) {
  const struct participant *p = r->head;
  size_t i = 0;
  assert_int_equal(r->count, n);
  for (; p != NULL; p = p->next, i++) {
    assert_true(i < n);
    assert_string_equal(p->user_id, subs[i]);
    assert_ptr_equal(p->room, r);
    if (i == 0) assert_null(p->prev);
    else assert_string_equal(p->prev->user_id, subs[i - 1]);
  }
  assert_int_equal(i, n);
  if (n == 0) {
    assert_null(r->head);
    assert_null(r->tail);
  } else {
    assert_string_equal(r->tail->user_id, subs[n - 1]);
    assert_null(r->tail->next);
  }
}

static int is_lower_hex(const char *s, size_t len) {
  if (strlen(s) != len) return 0;
  for (size_t i = 0; i < len; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

/* ---- Rooms ---- */

static void new_room_is_empty(void **state) {
  struct room *r = room_new("standup", 50, NOW_MS);
  (void)state;
  assert_non_null(r);
  assert_string_equal(r->id, "standup");
  assert_int_equal(r->created_ms, NOW_MS);
  assert_int_equal(r->seq, 0);
  assert_int_equal(r->count, 0);
  assert_int_equal(r->peak, 0);
  assert_null(r->head);
  assert_null(r->tail);
  assert_null(room_participant_find(r, "alice"));
  room_free(r);
}

static void new_room_has_default_settings(void **state) {
  struct room *r = room_new("standup", 12, NOW_MS);
  (void)state;
  assert_int_equal(r->settings.max_participants, 12);
  assert_int_equal(r->settings.chat_enabled, 1);
  assert_int_equal(r->settings.reactions_enabled, 1);
  assert_int_equal(r->settings.locked, 0);
  assert_int_equal(r->settings.waiting_room, 0);
  assert_int_equal(r->settings.mute_on_join, 0);
  room_free(r);
}

static void room_free_frees_remaining_participants(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  (void)state;
  join(r, "alice");
  join(r, "bob");
  room_free(r); /* ASan reports a leak if the participants stay */
  room_free(NULL);
}

/* ---- Membership ---- */

static void add_then_find_returns_participant(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *p = new_participant("alice");
  (void)state;
  assert_int_equal(room_participant_add(r, p), 0);
  assert_ptr_equal(room_participant_find(r, "alice"), p);
  assert_ptr_equal(p->room, r);
  assert_int_equal(r->count, 1);
  room_free(r);
}

static void find_is_exact_and_case_sensitive(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  (void)state;
  join(r, "alice");
  assert_null(room_participant_find(r, "Alice"));
  assert_null(room_participant_find(r, "alic"));
  assert_null(room_participant_find(r, "alice "));
  room_free(r);
}

static void remove_unlinks_without_freeing(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *p = join(r, "alice");
  (void)state;
  room_participant_remove(r, p);
  assert_null(room_participant_find(r, "alice"));
  assert_int_equal(r->count, 0);
  assert_null(p->room);
  assert_null(p->prev);
  assert_null(p->next);
  assert_null(r->head);
  assert_null(r->tail);
  assert_string_equal(p->user_id, "alice"); /* still ours to free */
  room_participant_free(p);
  room_free(r);
}

static void removed_user_can_join_again(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *p = join(r, "alice"), *again;
  (void)state;
  room_participant_remove(r, p);
  room_participant_free(p);
  again = join(r, "alice");
  assert_ptr_equal(room_participant_find(r, "alice"), again);
  room_free(r);
}

static void remove_ignores_participant_of_other_room(void **state) {
  struct room *r1 = room_new("r1", 50, NOW_MS), *r2 = room_new("r2", 50, NOW_MS);
  struct participant *p = join(r1, "alice");
  static const char *const want[] = {"alice"};
  (void)state;
  room_participant_remove(r2, p);
  assert_order(r1, want, 1);
  assert_ptr_equal(room_participant_find(r1, "alice"), p);
  assert_int_equal(r2->count, 0);
  room_free(r1);
  room_free(r2);
}

static void add_preserves_join_order(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  static const char *const want[] = {"carol", "alice", "bob", "dave"};
  (void)state;
  for (size_t i = 0; i < 4; i++) join(r, want[i]);
  assert_order(r, want, 4);
  room_free(r);
}

static void remove_middle_keeps_order_of_rest(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *b;
  static const char *const want[] = {"a", "c"};
  (void)state;
  join(r, "a");
  b = join(r, "b");
  join(r, "c");
  room_participant_remove(r, b);
  room_participant_free(b);
  assert_order(r, want, 2);
  room_free(r);
}

static void remove_head_and_tail_update_ends(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *a, *c;
  static const char *const want[] = {"b"};
  (void)state;
  a = join(r, "a");
  join(r, "b");
  c = join(r, "c");
  room_participant_remove(r, a);
  room_participant_remove(r, c);
  room_participant_free(a);
  room_participant_free(c);
  assert_order(r, want, 1);
  room_free(r);
}

static void rejoin_goes_to_end_of_list(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *a;
  static const char *const want[] = {"b", "c", "a"};
  (void)state;
  a = join(r, "a");
  join(r, "b");
  join(r, "c");
  room_participant_remove(r, a);
  room_participant_free(a);
  join(r, "a");
  assert_order(r, want, 3);
  room_free(r);
}

/* The member index (chained through the participants, grown past 16, 32,
 * ...): every member is found, removed ones are not, and they come back. */
static void member_index_finds_many_and_forgets_removed(void **state) {
  struct room *r = room_new("big", 0, NOW_MS);
  struct participant *ps[300];
  char id[16];
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    ps[i] = join(r, id);
  }
  assert_true(r->nmbuckets >= 300);
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    assert_ptr_equal(room_participant_find(r, id), ps[i]);
  }
  for (int i = 0; i < 300; i += 3) room_participant_remove(r, ps[i]);
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    assert_ptr_equal(room_participant_find(r, id), i % 3 ? ps[i] : NULL);
  }
  for (int i = 0; i < 300; i += 3) {
    assert_int_equal(room_participant_add(r, ps[i]), 0);
    assert_int_equal(room_participant_add(r, ps[i]), -1); /* once */
  }
  assert_int_equal(r->count, 300);
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    assert_ptr_equal(room_participant_find(r, id), ps[i]);
  }
  assert_null(room_participant_find(r, "user-300"));
  room_free(r);
  (void)state;
}

static void add_refuses_duplicate_user(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *first = join(r, "alice"), *dup = new_participant("alice");
  static const char *const want[] = {"alice"};
  (void)state;
  assert_int_equal(room_participant_add(r, dup), -1);
  assert_ptr_equal(room_participant_find(r, "alice"), first);
  assert_null(dup->room);
  assert_int_equal(r->peak, 1);
  assert_order(r, want, 1);
  room_participant_free(dup);
  room_free(r);
}

static void count_and_peak_track_membership(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  struct participant *a, *b;
  (void)state;
  a = join(r, "a");
  b = join(r, "b");
  join(r, "c");
  assert_int_equal(r->count, 3);
  assert_int_equal(r->peak, 3);
  room_participant_remove(r, a);
  room_participant_remove(r, b);
  room_participant_free(a);
  room_participant_free(b);
  assert_int_equal(r->count, 1);
  assert_int_equal(r->peak, 3);
  join(r, "d");
  assert_int_equal(r->count, 2);
  assert_int_equal(r->peak, 3);
  join(r, "e");
  join(r, "f");
  assert_int_equal(r->count, 4);
  assert_int_equal(r->peak, 4);
  room_free(r);
}

static void many_participants_are_all_found(void **state) {
  struct room *r = room_new("r", 1000, NOW_MS);
  char sub[16];
  (void)state;
  for (int i = 0; i < 500; i++) {
    snprintf(sub, sizeof(sub), "user-%d", i);
    join(r, sub);
  }
  assert_int_equal(r->count, 500);
  for (int i = 0; i < 500; i++) {
    struct participant *p;
    snprintf(sub, sizeof(sub), "user-%d", i);
    p = room_participant_find(r, sub);
    assert_non_null(p);
    assert_string_equal(p->user_id, sub);
  }
  room_free(r);
}

/* ---- Sequence numbers ---- */

static void seq_next_starts_at_one_and_increments(void **state) {
  struct room *r = room_new("r", 50, NOW_MS);
  (void)state;
  assert_int_equal(room_seq_next(r), 1);
  assert_int_equal(room_seq_next(r), 2);
  assert_int_equal(room_seq_next(r), 3);
  assert_int_equal(r->seq, 3);
  room_free(r);
}

static void seq_is_per_room(void **state) {
  struct room *r1 = room_new("r1", 50, NOW_MS), *r2 = room_new("r2", 50, NOW_MS);
  (void)state;
  room_seq_next(r1);
  room_seq_next(r1);
  assert_int_equal(room_seq_next(r2), 1);
  assert_int_equal(room_seq_next(r1), 3);
  room_free(r1);
  room_free(r2);
}

/* ---- Participants ---- */

static void participant_new_copies_claims(void **state) {
  struct token_claims c = claims_for("alice_01", ROOM_ROLE_MODERATOR);
  struct participant *p;
  (void)state;
  strcpy(c.name, "Alice \xc3\x85ngstr\xc3\xb6m");
  p = room_participant_new(&c, NOW_MS);
  assert_non_null(p);
  assert_string_equal(p->user_id, "alice_01");
  assert_string_equal(p->name, "Alice \xc3\x85ngstr\xc3\xb6m");
  assert_int_equal(p->role, ROOM_ROLE_MODERATOR);
  assert_int_equal(p->joined_ms, NOW_MS);
  assert_null(p->room);
  assert_null(p->session);
  assert_int_equal(p->audio, 0);
  assert_int_equal(p->video, 0);
  assert_int_equal(p->screen, 0);
  room_participant_free(p);
}

static void participant_name_defaults_to_user_id(void **state) {
  struct participant *p = new_participant("bob");
  (void)state;
  assert_string_equal(p->name, "bob");
  room_participant_free(p);
}

static void participant_gets_fresh_session_and_resume_token(void **state) {
  struct participant *a = new_participant("alice"), *b = new_participant("alice");
  (void)state;
  assert_true(is_lower_hex(SESSION_ID(a), 32));
  assert_true(is_lower_hex(RESUME_TOKEN(a), 64));
  assert_string_not_equal(SESSION_ID(a), SESSION_ID(b));
  assert_string_not_equal(RESUME_TOKEN(a), RESUME_TOKEN(b));
  room_participant_free(a);
  room_participant_free(b);
}

/* ---- Permissions ---- */

static uint32_t perms_of(enum room_role role, uint32_t set, uint32_t val) {
  struct token_claims c = claims_for("u", role);
  struct participant *p;
  uint32_t perms;
  c.perms_set = set;
  c.perms_val = val;
  p = room_participant_new(&c, NOW_MS);
  assert_non_null(p);
  perms = p->perms;
  room_participant_free(p);
  return perms;
}

static void perms_are_role_defaults_without_overrides(void **state) {
  (void)state;
  for (int role = 0; role < ROOM_ROLE__COUNT; role++)
    assert_int_equal(perms_of((enum room_role)role, 0, 0),
                     perm_role_defaults((enum room_role)role));
}

static void perms_of_participant_exclude_record_and_moderate(void **state) {
  uint32_t p = perms_of(ROOM_ROLE_PARTICIPANT, 0, 0);
  (void)state;
  assert_true(p & PERM_PUBLISH_AUDIO);
  assert_true(p & PERM_CHAT);
  assert_false(p & PERM_RECORD);
  assert_false(p & PERM_MODERATE);
}

static void perms_of_host_include_everything(void **state) {
  (void)state;
  assert_int_equal(perms_of(ROOM_ROLE_HOST, 0, 0), (1u << PERM__COUNT) - 1);
}

static void token_override_grants_permission(void **state) {
  uint32_t p = perms_of(ROOM_ROLE_PARTICIPANT, PERM_RECORD, PERM_RECORD);
  (void)state;
  assert_int_equal(p, perm_role_defaults(ROOM_ROLE_PARTICIPANT) | PERM_RECORD);
}

static void token_override_revokes_permission(void **state) {
  uint32_t p = perms_of(ROOM_ROLE_HOST, PERM_CHAT | PERM_STREAM, 0);
  (void)state;
  assert_int_equal(p, perm_role_defaults(ROOM_ROLE_HOST) & ~(PERM_CHAT | PERM_STREAM));
}

static void token_overrides_grant_and_revoke_together(void **state) {
  uint32_t p = perms_of(ROOM_ROLE_VIEWER, PERM_PUBLISH_AUDIO | PERM_CHAT, PERM_PUBLISH_AUDIO);
  (void)state;
  assert_true(p & PERM_PUBLISH_AUDIO);
  assert_false(p & PERM_CHAT);
  assert_true(p & PERM_REACT); /* untouched default */
  assert_false(p & PERM_PUBLISH_VIDEO);
}

static void override_values_outside_set_are_ignored(void **state) {
  (void)state;
  assert_int_equal(perms_of(ROOM_ROLE_PARTICIPANT, 0, PERM_MODERATE | PERM_RECORD),
                   perm_role_defaults(ROOM_ROLE_PARTICIPANT));
}

static void override_setting_default_value_changes_nothing(void **state) {
  (void)state;
  assert_int_equal(perms_of(ROOM_ROLE_PARTICIPANT, PERM_CHAT, PERM_CHAT),
                   perm_role_defaults(ROOM_ROLE_PARTICIPANT));
}

/* ---- JSON views ---- */

static void participant_json_has_public_fields(void **state) {
  struct token_claims c = claims_for("alice", ROOM_ROLE_HOST);
  struct participant *p;
  json_t *j, *media;
  (void)state;
  strcpy(c.name, "Alice A.");
  p = room_participant_new(&c, NOW_MS);
  p->audio = 1;
  p->screen = 1;
  j = room_participant_json(p);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "user_id")), "alice");
  assert_string_equal(json_string_value(json_object_get(j, "name")), "Alice A.");
  assert_string_equal(json_string_value(json_object_get(j, "role")), "host");
  assert_true(json_is_integer(json_object_get(j, "joined_at")));
  assert_int_equal(json_integer_value(json_object_get(j, "joined_at")), (json_int_t)NOW_MS);
  media = json_object_get(j, "media");
  assert_true(json_is_object(media));
  assert_true(json_is_true(json_object_get(media, "audio")));
  assert_true(json_is_false(json_object_get(media, "video")));
  assert_true(json_is_true(json_object_get(media, "screen")));
  assert_int_equal(json_object_size(media), 3);
  assert_int_equal(json_object_size(j), 5);
  json_decref(j);
  room_participant_free(p);
}

/* The policy records' own index (issue 16): each record holds its user id;
 * many are found, a re-add replaces, removed ones are gone, and a walk sees
 * each once. */
static void count_rec(const char *user, void *rec, void *arg) {
  assert_string_equal(((struct policy_rec *)rec)->user, user);
  (*(int *)arg)++;
}

static void policy_index_finds_many_and_forgets_removed(void **state) {
  struct room_policy p;
  char id[16];
  (void)state;
  memset(&p, 0, sizeof(p));
  assert_null(policy_rec_get(&p, "nobody"));
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    struct policy_rec *rec = policy_rec_add(&p, id);
    assert_non_null(rec);
    rec->set = (uint32_t)i;
  }
  assert_int_equal(p.count, 300);
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    struct policy_rec *rec = policy_rec_get(&p, id);
    assert_non_null(rec);
    assert_int_equal(rec->set, i);
  }
  struct policy_rec *again = policy_rec_add(&p, "user-7");
  assert_non_null(again);
  assert_int_equal(again->set, 0); /* a fresh record replaced the old one */
  assert_int_equal(p.count, 300);
  for (int i = 0; i < 300; i += 3) {
    snprintf(id, sizeof(id), "user-%d", i);
    policy_rec_del(&p, id);
  }
  policy_rec_del(&p, "nobody");
  assert_int_equal(p.count, 200);
  for (int i = 0; i < 300; i++) {
    snprintf(id, sizeof(id), "user-%d", i);
    if (i % 3) assert_non_null(policy_rec_get(&p, id));
    else assert_null(policy_rec_get(&p, id));
  }
  int seen = 0;
  policy_each(&p, count_rec, &seen);
  assert_int_equal(seen, 200);
  policy_users_free(&p);
  assert_int_equal(p.count, 0);
  assert_null(policy_rec_get(&p, "user-1"));
}

/* A cluster snapshot carries the session id and resume token as hex; they
 * come back as the same hex, and a malformed one is never resumable. */
static void participant_ids_round_trip_as_hex(void **state) {
  struct participant *a = new_participant("alice"), *b = new_participant("alice");
  (void)state;
  assert_int_equal(room_participant_ids_from_hex(b, SESSION_ID(a), RESUME_TOKEN(a)), 0);
  assert_string_equal(SESSION_ID(b), SESSION_ID(a));
  assert_string_equal(RESUME_TOKEN(b), RESUME_TOKEN(a));
  assert_true(room_participant_resume_token_is(b, RESUME_TOKEN(a)));
  assert_false(room_participant_resume_token_is(b, ""));
  assert_int_equal(room_participant_ids_from_hex(b, "xyz", ""), 0);
  assert_true(is_lower_hex(SESSION_ID(b), 32));
  assert_false(room_participant_resume_token_is(b, ""));
  assert_false(room_participant_resume_token_is(b, RESUME_TOKEN(a)));
  room_participant_free(a);
  room_participant_free(b);
}

static void participant_json_omits_secrets(void **state) {
  struct participant *p = new_participant("alice");
  json_t *j = room_participant_json(p);
  char *s = json_dumps(j, JSON_COMPACT);
  (void)state;
  assert_non_null(s);
  assert_null(strstr(s, RESUME_TOKEN(p)));
  assert_null(strstr(s, SESSION_ID(p)));
  assert_null(json_object_get(j, "perms"));
  free(s);
  json_decref(j);
  room_participant_free(p);
}

static void participant_json_names_each_role(void **state) {
  static const char *const names[] = {"viewer", "participant", "moderator", "host"};
  (void)state;
  for (int role = 0; role < ROOM_ROLE__COUNT; role++) {
    struct token_claims c = claims_for("u", (enum room_role)role);
    struct participant *p = room_participant_new(&c, NOW_MS);
    json_t *j = room_participant_json(p);
    assert_string_equal(json_string_value(json_object_get(j, "role")), names[role]);
    json_decref(j);
    room_participant_free(p);
  }
}

static void perms_json_lists_every_permission_as_bool(void **state) {
  json_t *j = room_perms_json(PERM_CHAT | PERM_MODERATE);
  (void)state;
  assert_int_equal(json_object_size(j), PERM__COUNT);
  for (int i = 0; i < PERM__COUNT; i++) {
    json_t *v = json_object_get(j, perm_name(i));
    assert_true(json_is_boolean(v));
    assert_int_equal(json_is_true(v), ((1u << i) & (PERM_CHAT | PERM_MODERATE)) != 0);
  }
  assert_true(json_is_true(json_object_get(j, "can_chat")));
  assert_true(json_is_true(json_object_get(j, "can_moderate")));
  assert_true(json_is_false(json_object_get(j, "can_record")));
  json_decref(j);
}

static void settings_json_has_defaults(void **state) {
  struct room *r = room_new("r", 25, NOW_MS);
  json_t *j = room_settings_json(r);
  (void)state;
  assert_non_null(j);
  assert_true(json_is_integer(json_object_get(j, "max_participants")));
  assert_int_equal(json_integer_value(json_object_get(j, "max_participants")), 25);
  assert_true(json_is_true(json_object_get(j, "chat_enabled")));
  assert_true(json_is_true(json_object_get(j, "reactions_enabled")));
  assert_true(json_is_false(json_object_get(j, "locked")));
  assert_true(json_is_false(json_object_get(j, "waiting_room")));
  assert_true(json_is_false(json_object_get(j, "mute_on_join")));
  assert_string_equal(json_string_value(json_object_get(j, "screen_share")), "all");
  assert_int_equal(json_object_size(j), 7);
  json_decref(j);
  room_free(r);
}

static void settings_json_reflects_changes(void **state) {
  struct room *r = room_new("r", 25, NOW_MS);
  json_t *j;
  (void)state;
  r->settings.locked = 1;
  r->settings.chat_enabled = 0;
  r->settings.max_participants = 3;
  j = room_settings_json(r);
  assert_true(json_is_true(json_object_get(j, "locked")));
  assert_true(json_is_false(json_object_get(j, "chat_enabled")));
  assert_int_equal(json_integer_value(json_object_get(j, "max_participants")), 3);
  json_decref(j);
  room_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(new_room_is_empty),
    cmocka_unit_test(new_room_has_default_settings),
    cmocka_unit_test(room_free_frees_remaining_participants),
    cmocka_unit_test(add_then_find_returns_participant),
    cmocka_unit_test(find_is_exact_and_case_sensitive),
    cmocka_unit_test(remove_unlinks_without_freeing),
    cmocka_unit_test(removed_user_can_join_again),
    cmocka_unit_test(remove_ignores_participant_of_other_room),
    cmocka_unit_test(add_preserves_join_order),
    cmocka_unit_test(remove_middle_keeps_order_of_rest),
    cmocka_unit_test(remove_head_and_tail_update_ends),
    cmocka_unit_test(rejoin_goes_to_end_of_list),
    cmocka_unit_test(add_refuses_duplicate_user),
    cmocka_unit_test(member_index_finds_many_and_forgets_removed),
    cmocka_unit_test(policy_index_finds_many_and_forgets_removed),
    cmocka_unit_test(participant_ids_round_trip_as_hex),
    cmocka_unit_test(count_and_peak_track_membership),
    cmocka_unit_test(many_participants_are_all_found),
    cmocka_unit_test(seq_next_starts_at_one_and_increments),
    cmocka_unit_test(seq_is_per_room),
    cmocka_unit_test(participant_new_copies_claims),
    cmocka_unit_test(participant_name_defaults_to_user_id),
    cmocka_unit_test(participant_gets_fresh_session_and_resume_token),
    cmocka_unit_test(perms_are_role_defaults_without_overrides),
    cmocka_unit_test(perms_of_participant_exclude_record_and_moderate),
    cmocka_unit_test(perms_of_host_include_everything),
    cmocka_unit_test(token_override_grants_permission),
    cmocka_unit_test(token_override_revokes_permission),
    cmocka_unit_test(token_overrides_grant_and_revoke_together),
    cmocka_unit_test(override_values_outside_set_are_ignored),
    cmocka_unit_test(override_setting_default_value_changes_nothing),
    cmocka_unit_test(participant_json_has_public_fields),
    cmocka_unit_test(participant_json_omits_secrets),
    cmocka_unit_test(participant_json_names_each_role),
    cmocka_unit_test(perms_json_lists_every_permission_as_bool),
    cmocka_unit_test(settings_json_has_defaults),
    cmocka_unit_test(settings_json_reflects_changes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
