/* Roles, permissions, settings, removal and enhanced participant info:
 * the room-control operations shared by REST (api/room_control.c) and the
 * WebSocket messages role-updated, permission-updated, room-settings-update
 * and participant-update. Every change is enforced here, broadcast, and
 * written to the room's audit log. */
#define LOG_MODULE "control"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "guard/sanitize.h"
#include "room/room.h"
#include "room/hub.h"
#include "room/op.h"
#include "room/policy.h"

#define INFO_MAX_BYTES 4096

struct actor op_actor_of(const struct participant *p) {
  struct actor a = {p->user_id, p->role, p->perms, 0};
  return a;
}

int op_outranks(const struct actor *a, const struct participant *target) {
  if (a->admin) return 1;
  if (!(a->perms & PERM_MODERATE)) return 0;
  return a->role == ROOM_ROLE_HOST || a->role > target->role;
}

static void audit(struct room *r, const struct actor *a, const char *action, const char *target,
                  json_t *details) {
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, action, target, details);
  else json_decref(details);
}

static void broadcast(struct hub *h, struct room *r, const char *type, json_t *payload) {
  hub_publish(h, r, type, "server", NULL, NULL, payload);
}

/* Finds target in r, checking the actor may act on them. */
static enum api_err target_of(struct room *r, const struct actor *a, const char *target,
                              struct participant **out) {
  if (target == NULL || !id_valid(target, strlen(target))) return API_ERR_INVALID_USER_ID;
  *out = room_participant_find(r, target);
  if (*out == NULL) return API_ERR_USER_NOT_IN_ROOM;
  if (!(a->perms & PERM_MODERATE) && !a->admin) return API_ERR_PERMISSION_DENIED;
  if (strcmp(target, a->user_id) != 0 && !op_outranks(a, *out)) return API_ERR_INSUFFICIENT_RANK;
  return API_OK;
}

/* Stops what p may no longer do after a permission change, and says so. */
static void enforce(struct hub *h, struct room *r, struct participant *p) {
  struct { uint8_t *state; uint32_t perm; const char *type, *kind; } rules[] = {
    {&p->audio, PERM_PUBLISH_AUDIO, "media-control", "audio"},
    {&p->video, PERM_PUBLISH_VIDEO, "media-control", "video"},
    {&p->screen, PERM_SHARE_SCREEN, "screen-share-control", NULL},
  };
  for (size_t i = 0; i < 3; i++) {
    if (!*rules[i].state || (p->perms & rules[i].perm)) continue;
    *rules[i].state = 0;
    json_t *out = rules[i].kind
        ? json_pack("{s:s,s:s,s:b,s:s,s:s}", "user_id", p->user_id, "kind", rules[i].kind, "enabled", 0,
                    "by", "server", "reason", "permission_revoked")
        : json_pack("{s:s,s:b,s:s,s:s}", "user_id", p->user_id, "sharing", 0, "by", "server",
                    "reason", "permission_revoked");
    broadcast(h, r, rules[i].type, out);
    json_decref(out);
  }
}

enum api_err op_role_set(struct hub *h, struct room *r, const struct actor *a, const char *target,
                         const char *role, char *detail, size_t dl) {
  enum room_role nr;
  if (role == NULL || perm_role_parse(role, &nr) != 0) return API_ERR_INVALID_ROLE;
  struct participant *p;
  enum api_err e = target_of(r, a, target, &p);
  if (e != API_OK) return e;
  if (!a->admin && nr > a->role) {
    snprintf(detail, dl, "you cannot give a role above your own");
    return API_ERR_INSUFFICIENT_RANK;
  }
  if (!a->admin && strcmp(p->user_id, a->user_id) == 0 && nr > p->role) return API_ERR_INSUFFICIENT_RANK;
  if (p->role == ROOM_ROLE_HOST && nr != ROOM_ROLE_HOST) {
    int hosts = 0;
    for (struct participant *q = r->head; q; q = q->next) hosts += q->role == ROOM_ROLE_HOST;
    if (hosts == 1) {
      snprintf(detail, dl, "the room would have no host: make someone else host first");
      return API_ERR_INSUFFICIENT_RANK;
    }
  }
  enum room_role old = p->role;
  p->role = nr;
  room_participant_perms_update(p);
  policy_note_role(h, r, p->user_id, nr); /* sticks to the user in this room */
  enforce(h, r, p);
  log_info("role_set room=%s user=%s role=%s by=%s", r->id, p->user_id, role, a->user_id);
  audit(r, a, "role_set", p->user_id, json_pack("{s:s,s:s}", "from", perm_role_name(old), "to", role));
  json_t *out = json_pack("{s:s,s:s,s:s,s:o,s:s}", "user_id", p->user_id, "role", perm_role_name(nr),
                          "previous_role", perm_role_name(old), "permissions", room_perms_json(p->perms),
                          "by", a->user_id);
  broadcast(h, r, "role-updated", out);
  json_decref(out);
  return API_OK;
}

enum api_err op_perms_set(struct hub *h, struct room *r, const struct actor *a, const char *target,
                          json_t *perms, char *detail, size_t dl) {
  if (!json_is_object(perms) || json_object_size(perms) == 0) {
    snprintf(detail, dl, "permissions must be an object such as {\"can_chat\": false}");
    return API_ERR_INVALID_MESSAGE;
  }
  struct participant *p;
  enum api_err e = target_of(r, a, target, &p);
  if (e != API_OK) return e;
  uint32_t set = 0, val = 0;
  const char *k;
  json_t *v;
  json_object_foreach(perms, k, v) {
    uint32_t bit = perm_parse(k);
    if (bit == 0 || !json_is_boolean(v)) {
      snprintf(detail, dl, "'%.40s' is not a permission with a boolean value", k);
      return API_ERR_INVALID_MESSAGE;
    }
    /* Nobody grants more than they hold. */
    if (json_is_true(v) && !a->admin && !(a->perms & bit)) {
      snprintf(detail, dl, "you do not hold %s", k);
      return API_ERR_INSUFFICIENT_RANK;
    }
    set |= bit;
    if (json_is_true(v)) val |= bit;
  }
  p->perms_set |= set;
  p->perms_val = (p->perms_val & ~set) | val;
  room_participant_perms_update(p);
  policy_note_perms(h, r, p->user_id, p->perms_set, p->perms_val); /* sticks to the user in this room */
  enforce(h, r, p);
  audit(r, a, "permissions_set", p->user_id, json_deep_copy(perms));
  json_t *ov = json_object();
  for (int i = 0; i < PERM__COUNT; i++)
    if (p->perms_set & (1u << i)) json_object_set_new(ov, perm_name(i), json_boolean(p->perms_val & (1u << i)));
  json_t *out = json_pack("{s:s,s:o,s:o,s:s}", "user_id", p->user_id, "permissions",
                          room_perms_json(p->perms), "overrides", ov, "by", a->user_id);
  broadcast(h, r, "permission-updated", out);
  json_decref(out);
  return API_OK;
}

enum api_err op_settings_update(struct hub *h, struct room *r, const struct actor *a, json_t *patch,
                                char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (!json_is_object(patch) || json_object_size(patch) == 0) {
    snprintf(detail, dl, "send an object of settings to change");
    return API_ERR_INVALID_SETTINGS;
  }
  /* Check everything first: a refused update changes nothing. */
  struct room_settings ns = r->settings;
  const char *k;
  json_t *v;
  json_object_foreach(patch, k, v) {
    int *flag = strcmp(k, "locked") == 0 ? &ns.locked
              : strcmp(k, "waiting_room") == 0 ? &ns.waiting_room
              : strcmp(k, "mute_on_join") == 0 ? &ns.mute_on_join
              : strcmp(k, "chat_enabled") == 0 ? &ns.chat_enabled
              : strcmp(k, "reactions_enabled") == 0 ? &ns.reactions_enabled : NULL;
    if (flag) {
      if (!json_is_boolean(v)) goto bad;
      *flag = json_is_true(v);
    } else if (strcmp(k, "max_participants") == 0) {
      if (!json_is_integer(v) || json_integer_value(v) < 1 ||
          json_integer_value(v) > h->cfg->max_room_participants) goto bad;
      ns.max_participants = (int)json_integer_value(v);
    } else if (strcmp(k, "screen_share") == 0) {
      if (!json_is_string(v)) goto bad;
      if (strcmp(json_string_value(v), "all") == 0) ns.screen_share_moderators_only = 0;
      else if (strcmp(json_string_value(v), "moderators") == 0) ns.screen_share_moderators_only = 1;
      else goto bad;
    } else {
      goto bad;
    }
  }
  r->settings = ns;
  /* Screens shared by those who may no longer share stop now. */
  if (ns.screen_share_moderators_only) {
    for (struct participant *p = r->head; p; p = p->next) {
      if (!p->screen || (p->perms & PERM_MODERATE)) continue;
      p->screen = 0;
      json_t *out = json_pack("{s:s,s:b,s:s,s:s}", "user_id", p->user_id, "sharing", 0, "by", "server",
                              "reason", "moderators_only");
      broadcast(h, r, "screen-share-control", out);
      json_decref(out);
    }
  }
  audit(r, a, "settings_update", "", json_deep_copy(patch));
  json_t *out = json_pack("{s:o,s:O,s:s}", "settings", room_settings_json(r), "changed", patch, "by", a->user_id);
  broadcast(h, r, "room-settings-update", out);
  json_decref(out);
  return API_OK;
bad:
  snprintf(detail, dl, "'%.40s' is not a setting or has a wrong value", k);
  return API_ERR_INVALID_SETTINGS;
}

enum api_err op_remove(struct hub *h, struct room *r, const struct actor *a, const char *target,
                       const char *reason, char *detail, size_t dl) {
  struct participant *p;
  enum api_err e = target_of(r, a, target, &p);
  if (e != API_OK) return e;
  if (strcmp(p->user_id, a->user_id) == 0) {
    snprintf(detail, dl, "you cannot remove yourself; leave instead");
    return API_ERR_INVALID_MESSAGE;
  }
  char user[ID_MAX + 1];
  snprintf(user, sizeof(user), "%s", p->user_id);
  struct buf why = {0};
  if (reason && *reason && sanitize_text(reason, strlen(reason), 200, &why) != API_OK) {
    buf_free(&why);
    snprintf(detail, dl, "reason must be text of at most 200 characters");
    return API_ERR_INVALID_MESSAGE;
  }
  reason = why.data ? why.data : "";
  map_put(&r->banned, user, (void *)1);
  audit(r, a, "remove", user, json_pack("{s:s}", "reason", reason));
  log_info("removed room=%s user=%s by=%s", r->id, user, a->user_id);
  json_t *note = json_pack("{s:s,s:s,s:s,s:s}", "user_id", user, "action", "removed", "reason",
                           reason ? reason : "", "by", a->user_id);
  hub_publish(h, r, "participant-update", "server", user, NULL, note);
  json_decref(note);
  r->held++; /* the room outlives the removal even if it empties */
  void *session = p->session;
  p->session = NULL;
  if (session) h->sessions.close(h->sessions.data, session, 4003, "removed from the room");
  hub_member_leave(h, p, "removed");
  r->held--;
  buf_free(&why);
  hub_room_release(h, r);
  return API_OK;
}

static int info_ok(json_t *info, char *detail, size_t dl) {
  static const char *keys[] = {"video_quality", "network_stats", "device_info", "display", "client"};
  if (!json_is_object(info)) {
    snprintf(detail, dl, "info must be an object");
    return 0;
  }
  const char *k;
  json_t *v;
  json_object_foreach(info, k, v) {
    size_t i;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) if (strcmp(k, keys[i]) == 0) break;
    if (i == sizeof(keys) / sizeof(keys[0])) {
      snprintf(detail, dl, "unknown info field '%.40s' (video_quality, network_stats, device_info, display, client)", k);
      return 0;
    }
    if (!json_is_object(v) && !json_is_string(v)) {
      snprintf(detail, dl, "info.%s must be an object or a string", k);
      return 0;
    }
  }
  size_t n = json_dumpb(info, NULL, 0, JSON_COMPACT);
  if (n > INFO_MAX_BYTES) {
    snprintf(detail, dl, "info must be at most %d bytes of JSON", INFO_MAX_BYTES);
    return 0;
  }
  return 1;
}

enum api_err op_info_update(struct hub *h, struct room *r, const struct actor *a, const char *target,
                            json_t *info, char *detail, size_t dl) {
  struct participant *p = room_participant_find(r, target);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  /* Users describe themselves; admin service tokens may describe anyone. */
  if (strcmp(target, a->user_id) != 0 && !a->admin) return API_ERR_PERMISSION_DENIED;
  if (!info_ok(info, detail, dl)) return API_ERR_INVALID_MESSAGE;
  struct participant_extra *x = room_participant_extra(p);
  if (x == NULL) return API_ERR_INTERNAL_ERROR;
  json_t *merged = x->info ? json_deep_copy(x->info) : json_object();
  json_object_update(merged, info);
  if (json_dumpb(merged, NULL, 0, JSON_COMPACT) > INFO_MAX_BYTES) {
    json_decref(merged);
    snprintf(detail, dl, "info must be at most %d bytes of JSON", INFO_MAX_BYTES);
    return API_ERR_INVALID_MESSAGE;
  }
  json_decref(x->info);
  x->info = merged;
  x->info_ms = hub_now_ms();
  json_t *out = json_pack("{s:s,s:O,s:I}", "user_id", p->user_id, "info", x->info, "updated_at",
                          (json_int_t)x->info_ms);
  broadcast(h, r, "participant-update", out);
  json_decref(out);
  return API_OK;
}

json_t *op_participant_full_json(const struct participant *p) {
  json_t *o = room_participant_json(p);
  json_object_set_new(o, "permissions", room_perms_json(p->perms));
  const struct participant_extra *x = p->extra;
  json_object_set_new(o, "info", x && x->info ? json_deep_copy(x->info) : json_object());
  if (x && x->net_stats) json_object_set(o, "network_stats", x->net_stats);
  if (x && x->info_ms) json_object_set_new(o, "info_updated_at", json_integer((json_int_t)x->info_ms));
  return o;
}

