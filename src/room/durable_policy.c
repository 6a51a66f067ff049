/* Room policy through the store (see durable_policy.h).
 *
 * The snapshot, compact JSON with sorted keys so that equal state gives
 * equal text (a write only when something changed):
 *   {"users": {"<id>": {"name", "base_role", "base_set", "base_val",
 *                       "admitted", "role"?, "set"?, "val"?}},
 *    "rejected": {"<id>": true}, "banned": {"<id>": true},
 *    "hands": [{"user_id", "name", "raised_at"}]}
 * "users" and "rejected" are the family's (kept at its main room); bans
 * and hands are the room's own. "{}" is an empty policy. Only users with a
 * change made in the room are kept (with their first admitted standing):
 * a plain join changes nothing stored, so joining costs no write, and a
 * restarted room admits everyone else afresh, by their tokens. */
#define LOG_MODULE "store"
#include "log.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auth/perm.h"
#include "room/durable_policy.h"
#include "room/hub.h"
#include "room/policy.h"
#include "room/room.h"
#include "store/store.h"

static void put_user(const char *k, void *v, void *arg) {
  const struct policy_rec *rec = v;
  if (!rec->has_role && !rec->has_perms) return;
  json_t *u = json_pack("{s:s,s:b,s:s,s:I,s:I}", "name", rec->name ? rec->name : "", "admitted", rec->admitted, "base_role",
                        perm_role_name((enum room_role)rec->base_role), "base_set", (json_int_t)rec->base_set, "base_val",
                        (json_int_t)rec->base_val);
  if (u == NULL) return;
  if (rec->has_role) json_object_set_new(u, "role", json_string(perm_role_name((enum room_role)rec->role)));
  if (rec->has_perms) {
    json_object_set_new(u, "set", json_integer(rec->set));
    json_object_set_new(u, "val", json_integer(rec->val));
  }
  json_object_set_new(arg, k, u);
}

static void put_true(const char *k, void *v, void *arg) { json_object_set_new(arg, k, json_true()); }

static char *snapshot(const struct room *r) {
  json_t *j = json_object();
  if (j == NULL) return NULL;
  if (r->policy && r->policy->count) {
    json_t *users = json_object();
    policy_each(r->policy, put_user, users);
    if (json_object_size(users)) json_object_set_new(j, "users", users);
    else json_decref(users);
  }
  if (r->policy && r->policy->rejected.count) {
    json_t *rej = json_object();
    map_each(&r->policy->rejected, put_true, rej);
    json_object_set_new(j, "rejected", rej);
  }
  if (r->banned.count) {
    json_t *ban = json_object();
    map_each(&r->banned, put_true, ban);
    json_object_set_new(j, "banned", ban);
  }
  if (r->nhands) {
    json_t *hands = json_array();
    for (size_t i = 0; i < r->nhands; i++)
      json_array_append_new(hands, json_pack("{s:s,s:s,s:I}", "user_id", r->hands[i].user_id, "name",
                                             r->hands[i].name, "raised_at", (json_int_t)r->hands[i].raised_ms));
    json_object_set_new(j, "hands", hands);
  }
  char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return text;
}

static void submit(struct hub *h, const char *room_id, char *text, uint64_t ts) {
  store_room_policy_note(h->store, room_id, text);
  struct store_rec *rec = store_rec_new(STORE_POLICY, room_id);
  if (rec == NULL) {
    free(text);
    return;
  }
  rec->ts = ts;
  rec->text = text;
  store_submit(h->store, rec, 0);
}

void durable_policy_save(struct hub *h, struct room *r) {
  if (h->store == NULL || r == NULL) return;
  char *text = snapshot(r);
  if (text == NULL) return;
  const struct store_room_meta *m = store_room_meta(h->store, r->id);
  const char *old = m && m->policy ? m->policy : "{}";
  if (strcmp(old, text) == 0) {
    free(text);
    return;
  }
  submit(h, r->id, text, hub_now_ms());
}

void durable_policy_forget(struct hub *h, struct room *r, uint64_t ts) {
  if (r == NULL) return;
  /* The room is going away: what it held must not be saved again by the
   * leaves that follow, nor come back when the id is used again. */
  if (r->policy) {
    policy_users_free(r->policy);
    map_free(&r->policy->rejected);
  }
  map_free(&r->banned);
  r->nhands = 0;
  if (h->store == NULL) return;
  const struct store_room_meta *m = store_room_meta(h->store, r->id);
  if (m == NULL || m->policy == NULL || strcmp(m->policy, "{}") == 0) return;
  char *text = strdup("{}");
  if (text) submit(h, r->id, text, ts);
}

static uint32_t u32(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_integer(v) && json_integer_value(v) >= 0 ? (uint32_t)json_integer_value(v) : 0;
}

static int role_of(json_t *o, const char *k, enum room_role *out) {
  const char *s = json_string_value(json_object_get(o, k));
  return s && perm_role_parse(s, out) == 0 ? 0 : -1;
}

static void restore_users(struct room *r, json_t *users) {
  const char *id;
  json_t *u;
  json_object_foreach(users, id, u) {
    if (!json_is_object(u) || strlen(id) > ID_MAX) continue;
    if (r->policy == NULL && (r->policy = calloc(1, sizeof(*r->policy))) == NULL) return;
    struct policy_rec *rec = policy_rec_add(r->policy, id);
    if (rec == NULL) return;
    const char *name = json_string_value(json_object_get(u, "name"));
    rec->name = name ? strndup(name, TOKEN_NAME_MAX) : NULL;
    rec->admitted = json_is_true(json_object_get(u, "admitted"));
    enum room_role role = ROOM_ROLE_PARTICIPANT;
    role_of(u, "base_role", &role);
    rec->base_role = (uint8_t)role;
    rec->base_set = u32(u, "base_set");
    rec->base_val = u32(u, "base_val") & rec->base_set;
    rec->has_role = role_of(u, "role", &role) == 0;
    if (rec->has_role) rec->role = (uint8_t)role;
    rec->has_perms = json_is_integer(json_object_get(u, "set"));
    rec->set = u32(u, "set");
    rec->val = u32(u, "val") & rec->set;
  }
}

void durable_policy_restore(struct hub *h, struct room *r) {
  if (h->store == NULL) return;
  const struct store_room_meta *m = store_room_meta(h->store, r->id);
  if (m == NULL || m->policy == NULL) return;
  json_t *j = json_loads(m->policy, 0, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return;
  }
  const char *id;
  json_t *v;
  json_t *users = json_object_get(j, "users");
  if (json_is_object(users)) restore_users(r, users);
  json_object_foreach(json_object_get(j, "rejected"), id, v) {
    if (strlen(id) > ID_MAX) continue;
    if (r->policy == NULL && (r->policy = calloc(1, sizeof(*r->policy))) == NULL) break;
    map_put(&r->policy->rejected, id, (void *)1);
  }
  json_object_foreach(json_object_get(j, "banned"), id, v) {
    if (strlen(id) <= ID_MAX) map_put(&r->banned, id, (void *)1);
  }
  uint64_t now = hub_now_ms();
  size_t i;
  json_array_foreach(json_object_get(j, "hands"), i, v) {
    const char *user = json_string_value(json_object_get(v, "user_id"));
    const char *name = json_string_value(json_object_get(v, "name"));
    json_t *at = json_object_get(v, "raised_at");
    if (user == NULL || strlen(user) > ID_MAX || room_hand_raise(r, user, name ? name : "",
                                                                 json_is_integer(at) ? (uint64_t)json_integer_value(at) : now) != 0)
      continue;
    /* Its owner is not here yet: kept for its return, not shown until then. */
    r->hands[room_hand_find(r, user)].away_ms = now;
  }
  log_info("room_policy_restored room=%s users=%zu bans=%zu hands=%zu", r->id,
           r->policy ? (size_t)r->policy->count : 0, r->banned.count, r->nhands);
  json_decref(j);
}

void durable_policy_overlay(struct hub *h, const char *room_id, struct token_claims *c) {
  const struct store_room_meta *m = h->store ? store_room_meta(h->store, room_id) : NULL;
  if (m == NULL || m->policy == NULL) return;
  json_t *j = json_loads(m->policy, 0, NULL);
  json_t *u = json_object_get(json_object_get(j, "users"), c->sub);
  enum room_role role;
  if (json_is_object(u)) {
    /* As restore_users reads it, and policy.c overlay applies it. */
    if (role_of(u, "role", &role) == 0) c->role = role;
    if (json_is_integer(json_object_get(u, "set"))) {
      c->perms_set = u32(u, "set");
      c->perms_val = u32(u, "val") & c->perms_set;
    }
  }
  json_decref(j);
}

int durable_policy_banned(struct hub *h, const char *room_id, const char *user) {
  const struct store_room_meta *m = h->store ? store_room_meta(h->store, room_id) : NULL;
  if (m == NULL || m->policy == NULL) return 0;
  json_t *j = json_loads(m->policy, 0, NULL);
  int banned = json_object_get(json_object_get(j, "banned"), user) != NULL;
  json_decref(j);
  return banned;
}
