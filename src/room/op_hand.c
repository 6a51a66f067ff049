/* hand-raise and hand-raise-queue: a FIFO queue owned by the server
 * (positions, not client timestamps), without duplicates, broadcast on
 * every change. "Next speaker" lowers the first hand and grants it the
 * right to unmute in one step. */
#define LOG_MODULE "hand"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "room/room.h"
#include "room/hub.h"
#include "room/durable_policy.h"
#include "room/op.h"

static void publish_change(struct hub *h, struct room *r, const char *user, int raised,
                           const char *by, const char *reason) {
  json_t *ev = json_pack("{s:s,s:b,s:s}", "user_id", user, "raised", raised, "by", by);
  if (reason) json_object_set_new(ev, "reason", json_string(reason));
  int i = room_hand_find(r, user);
  if (raised && i >= 0) json_object_set_new(ev, "position", json_integer(i + 1));
  hub_publish(h, r, "hand-raise", "server", NULL, NULL, ev);
  json_decref(ev);
  json_t *q = json_pack("{s:o}", "queue", room_hands_json(r));
  hub_publish(h, r, "hand-raise-queue", "server", NULL, NULL, q);
  json_decref(q);
}

enum api_err op_hand(struct hub *h, struct room *r, const struct actor *a, const char *target,
                     int raise, char *detail, size_t dl) {
  struct participant *p = room_participant_find(r, target ? target : a->user_id);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  int self = strcmp(p->user_id, a->user_id) == 0;
  if (!self) {
    if (raise) {
      snprintf(detail, dl, "only the user raises their hand");
      return API_ERR_PERMISSION_DENIED;
    }
    if (!op_outranks(a, p))
      return (a->perms & PERM_MODERATE) ? API_ERR_INSUFFICIENT_RANK : API_ERR_PERMISSION_DENIED;
  }
  if (raise) {
    if (!(p->perms & PERM_RAISE_HAND)) return API_ERR_PERMISSION_DENIED;
    int rc = room_hand_raise(r, p->user_id, p->name, hub_now_ms());
    if (rc < 0) return API_ERR_INTERNAL_ERROR;
    if (rc == 1) return API_ERR_HAND_ALREADY_RAISED;
  } else if (!room_hand_lower(r, p->user_id)) {
    return API_ERR_HAND_NOT_RAISED;
  }
  if (!self && r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "lower_hand", p->user_id, NULL);
  durable_policy_save(h, r); /* the queue comes back after a restart */
  publish_change(h, r, p->user_id, raise, a->user_id, NULL);
  return API_OK;
}

enum api_err op_hand_next(struct hub *h, struct room *r, const struct actor *a, json_t **out,
                          char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  struct participant *p = NULL;
  for (size_t i = 0; i < r->nhands && p == NULL; i++)
    if (!r->hands[i].away_ms) p = room_participant_find(r, r->hands[i].user_id);
  if (p == NULL) {
    snprintf(detail, dl, "no hand is raised");
    return API_ERR_HAND_NOT_RAISED;
  }
  char user[ID_MAX + 1];
  snprintf(user, sizeof(user), "%s", p->user_id);
  room_hand_lower(r, user);
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "next_speaker", user, NULL);
  /* Grant the floor: the right to unmute, then ask the speaker to unmute. */
  if (!(p->perms & PERM_PUBLISH_AUDIO)) {
    p->perms_set |= PERM_PUBLISH_AUDIO;
    p->perms_val |= PERM_PUBLISH_AUDIO;
    room_participant_perms_update(p);
    json_t *pu = json_pack("{s:s,s:o,s:{s:b},s:s,s:s}", "user_id", user, "permissions",
                           room_perms_json(p->perms), "overrides", "can_publish_audio", 1, "by", a->user_id,
                           "reason", "next_speaker");
    hub_publish(h, r, "permission-updated", "server", NULL, NULL, pu);
    json_decref(pu);
  }
  publish_change(h, r, user, 0, a->user_id, "next_speaker");
  json_t *ask = json_pack("{s:s,s:s,s:b,s:b,s:s,s:s}", "user_id", user, "kind", "audio", "enabled", 1,
                          "request", 1, "by", a->user_id, "reason", "next_speaker");
  hub_publish(h, r, "media-control", "server", user, NULL, ask);
  json_decref(ask);
  if (out) *out = json_pack("{s:s}", "user_id", user);
  return API_OK;
}

