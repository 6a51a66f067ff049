/* Breakout rooms: rooms of their own, opened and closed by a main room's
 * moderators. Assigning a user sends it a grant, a short-lived server-side
 * credential that lets it join the breakout room (and later the main room
 * again) as the same user with the same role, without a new token. The main
 * room stays open while it has breakout rooms; its room-state lists them
 * and who is assigned and present where. */
#define LOG_MODULE "breakout"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/sanitize.h"
#include "room/family.h"
#include "room/room.h"
#include "room/hub.h"
#include "room/op.h"

/* Grants are signed, single-use and carry no role: auth/grant.c, room/family.c. */
const char *op_grant_new(struct hub *h, const struct participant *p, const char *room_id, int origin) {
  (void)origin; /* the member's standing in the family applies when the grant is used */
  /* Into a breakout room: that room is the breakout; back to the main room:
   * the breakout it leaves is where p is now. */
  struct room *dest = hub_room_find(h, room_id);
  if (dest && dest->parent[0]) return family_grant_issue(h, p->user_id, room_id, dest->parent, room_id);
  return family_grant_issue(h, p->user_id, room_id, room_id, p->room ? p->room->id : room_id);
}

enum api_err op_grant_check(struct hub *h, const char *grant, const char *room_id, struct token_claims *claims,
                            int spend) {
  return family_grant_use(h, grant, room_id, claims, spend);
}

void op_grants_prune(struct hub *h) { family_grants_prune(h); }
void op_grants_free(struct hub *h) { family_grants_free(h); }

json_t *op_breakouts_json(struct hub *h, struct room *r) {
  json_t *a = json_array();
  for (size_t i = 0; i < r->nbreakouts; i++) {
    struct breakout *b = &r->breakouts[i];
    json_t *assigned = json_array(), *present = json_array();
    for (size_t j = 0; j < b->nassigned; j++) json_array_append_new(assigned, json_string(b->assigned[j]));
    struct room *br = hub_room_find(h, b->id);
    for (struct participant *p = br ? br->head : NULL; p; p = p->next)
      json_array_append_new(present, json_string(p->user_id));
    json_array_append_new(a, json_pack("{s:s,s:s,s:o,s:o}", "breakout_room_id", b->id, "name", b->name,
                                       "assigned", assigned, "participants", present));
  }
  return a;
}

static void broadcast(struct hub *h, struct room *r, const char *type, json_t *payload,
                      const char *except) {
  hub_publish(h, r, type, "server", NULL, except, payload);
}

static int open_one(struct hub *h, struct room *r, const char *name, json_t *made, const char *creator) {
  char id[ID_MAX + 1];
  do {
    char hex[13];
    if (id_random_hex(hex, 6) != 0) return -1;
    snprintf(id, sizeof(id), "br-%s", hex);
  } while (hub_room_find(h, id));
  struct room *br = hub_room_create(h, id);
  if (br == NULL) return -1;
  snprintf(br->parent, sizeof(br->parent), "%s", r->id);
  history_origin(br->hist, creator, r->id); /* history bounds: its creator's and its family's */
  br->held = 1;
  if (room_breakout_add(r, id, name) == NULL) {
    br->held = 0;
    hub_room_release(h, br);
    return -1;
  }
  json_array_append_new(made, json_pack("{s:s,s:s}", "breakout_room_id", id, "name", name));
  return 0;
}

size_t op_breakout_units(const json_t *body) {
  json_t *rooms = json_object_get(body, "rooms"), *count = json_object_get(body, "count");
  if (json_is_array(rooms)) return json_array_size(rooms);
  if (json_object_get(body, "name")) return 1;
  if (json_is_integer(count) && json_integer_value(count) >= 1 && json_integer_value(count) <= ROOM_MAX_BREAKOUTS)
    return (size_t)json_integer_value(count);
  return 0;
}

enum api_err op_breakout_create(struct hub *h, struct room *r, const struct actor *a, json_t *body,
                                json_t **out, char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (r->parent[0]) {
    snprintf(detail, dl, "breakout rooms do not nest");
    return API_ERR_INVALID_MESSAGE;
  }
  /* Names: {"rooms": [{"name": ...}, ...]}, {"name": ...} or {"count": n}. */
  json_t *names = json_array();
  json_t *rooms = json_object_get(body, "rooms"), *name = json_object_get(body, "name");
  json_t *count = json_object_get(body, "count");
  size_t i;
  json_t *v;
  if (json_is_array(rooms)) {
    json_array_foreach(rooms, i, v) json_array_append(names, json_is_object(v) ? json_object_get(v, "name") : v);
  } else if (name) {
    json_array_append(names, name);
  } else if (json_is_integer(count) && json_integer_value(count) >= 1 && json_integer_value(count) <= ROOM_MAX_BREAKOUTS) {
    for (json_int_t k = 1; k <= json_integer_value(count); k++) {
      char n[32];
      snprintf(n, sizeof(n), "Room %d", (int)(r->nbreakouts + (size_t)k));
      json_array_append_new(names, json_string(n));
    }
  }
  size_t n = json_array_size(names);
  if (n == 0) {
    json_decref(names);
    snprintf(detail, dl, "send {\"rooms\": [{\"name\": ...}]}, {\"name\": ...} or {\"count\": n}");
    return API_ERR_INVALID_MESSAGE;
  }
  if (r->nbreakouts + n > ROOM_MAX_BREAKOUTS) {
    json_decref(names);
    snprintf(detail, dl, "at most %d breakout rooms", ROOM_MAX_BREAKOUTS);
    return API_ERR_BREAKOUT_LIMIT_REACHED;
  }
  enum api_err charged = family_charge_rooms(h, a->user_id, n, detail, dl); /* breakout rooms are rooms */
  if (charged != API_OK) {
    json_decref(names);
    return charged;
  }
  char clean[ROOM_MAX_BREAKOUTS][65];
  json_array_foreach(names, i, v) {
    struct buf b = {0};
    if (!json_is_string(v) || sanitize_text(json_string_value(v), json_string_length(v), 64, &b) != API_OK ||
        b.len >= sizeof(clean[0])) {
      buf_free(&b);
      json_decref(names);
      snprintf(detail, dl, "each name is text of at most 64 characters");
      return API_ERR_INVALID_MESSAGE;
    }
    memcpy(clean[i], b.data, b.len + 1);
    buf_free(&b);
  }
  json_decref(names);
  json_t *made = json_array();
  for (i = 0; i < n; i++) {
    if (open_one(h, r, clean[i], made, a->user_id) != 0) {
      json_decref(made);
      return API_ERR_INTERNAL_ERROR;
    }
  }
  log_info("breakouts_created room=%s count=%zu by=%s", r->id, n, a->user_id);
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "breakout_create", "", json_deep_copy(made));
  json_t *ev = json_pack("{s:O,s:s}", "breakout_rooms", made, "by", a->user_id);
  broadcast(h, r, "breakout-room-create", ev, NULL);
  json_decref(ev);
  if (out) *out = made;
  else json_decref(made);
  return API_OK;
}

/* Where user is: the main room r or one of its breakout rooms. */
static struct participant *locate(struct hub *h, struct room *r, const char *user) {
  struct participant *p = room_participant_find(r, user);
  for (size_t i = 0; p == NULL && i < r->nbreakouts; i++) {
    struct room *br = hub_room_find(h, r->breakouts[i].id);
    if (br) p = room_participant_find(br, user);
  }
  return p;
}

static json_t *move_note(const char *type_room, const char *bid, const char *name, const char *grant,
                         const char *by) {
  char url[GRANT_MAX + 128];
  snprintf(url, sizeof(url), "/webrtc/ws/%s?grant=%s", type_room, grant);
  return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "breakout_room_id", bid, "name", name, "room_id",
                   type_room, "grant", grant, "url", url, "by", by);
}

enum api_err op_breakout_assign(struct hub *h, struct room *r, const struct actor *a, const char *bid,
                                const char *target, char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  struct breakout *b = bid ? room_breakout_find(r, bid) : NULL;
  if (b == NULL) return API_ERR_BREAKOUT_NOT_FOUND;
  if (target == NULL || !id_valid(target, strlen(target))) return API_ERR_INVALID_USER_ID;
  struct participant *p = locate(h, r, target);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  if (strcmp(p->user_id, a->user_id) != 0 && !a->admin && a->role != ROOM_ROLE_HOST && p->role >= a->role)
    return API_ERR_INSUFFICIENT_RANK;
  if (room_breakout_assign(r, b, target) != 0) return API_ERR_INTERNAL_ERROR;
  /* From the main room: its current role; from another breakout: the one it came with. */
  const char *grant = op_grant_new(h, p, b->id, p->room != r);
  if (grant == NULL) return API_ERR_INTERNAL_ERROR;
  log_info("breakout_assigned room=%s breakout=%s user=%s by=%s", r->id, b->id, target, a->user_id);
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "breakout_assign", target,
                             json_pack("{s:s}", "breakout_room_id", b->id));
  /* The user (wherever it is) gets the grant; the main room, the news. */
  json_t *mine = move_note(b->id, b->id, b->name, grant, a->user_id);
  hub_publish(h, p->room, "breakout-room-assign", "server", target, NULL, mine);
  json_decref(mine);
  json_t *ev = json_pack("{s:s,s:s,s:s,s:s}", "breakout_room_id", b->id, "name", b->name, "user_id", target,
                         "by", a->user_id);
  broadcast(h, r, "breakout-room-assign", ev, p->room == r ? target : NULL);
  json_decref(ev);
  return API_OK;
}

enum api_err op_breakout_close(struct hub *h, struct room *r, const struct actor *a, const char *bid,
                               char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  struct breakout *b = bid ? room_breakout_find(r, bid) : NULL;
  if (b == NULL) return API_ERR_BREAKOUT_NOT_FOUND;
  char id[ID_MAX + 1], name[65];
  snprintf(id, sizeof(id), "%s", b->id);
  snprintf(name, sizeof(name), "%s", b->name);
  room_breakout_remove(r, b);
  json_t *back = json_array();
  struct room *br = hub_room_find(h, id);
  if (br) {
    /* Everyone gets the way back first, then the room closes at once: the
     * way back is the last message each of them receives. */
    br->held = 1;
    for (struct participant *p = br->head; p; p = p->next) {
      const char *grant = op_grant_new(h, p, r->id, 1);
      json_t *note = move_note(r->id, id, name, grant ? grant : "", a->user_id);
      hub_publish(h, br, "breakout-room-close", "server", p->user_id, NULL, note);
      json_decref(note);
      json_array_append_new(back, json_string(p->user_id));
    }
    br->held = 0;
    hub_room_evict(h, br, 4005, "breakout room closed");
  }
  /* People are on their way back: keep the main room (settings, bans) a while. */
  if (json_array_size(back)) r->linger_until_ms = hub_now_ms() + 60000;
  log_info("breakout_closed room=%s breakout=%s by=%s", r->id, id, a->user_id);
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "breakout_close", "",
                             json_pack("{s:s,s:O}", "breakout_room_id", id, "returning", back));
  json_t *ev = json_pack("{s:s,s:s,s:o,s:s}", "breakout_room_id", id, "name", name, "returning", back,
                         "by", a->user_id);
  broadcast(h, r, "breakout-room-close", ev, NULL);
  json_decref(ev);
  hub_room_release(h, r);
  return API_OK;
}

