/* media-control and screen-share-control: each participant's audio, video
 * and screen state, changed by the participant within its permissions, or
 * by a moderator who outranks it. A moderator mutes but never unmutes
 * someone else: the user is asked instead. */
#define LOG_MODULE "media"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "room/room.h"
#include "room/hub.h"
#include "room/op.h"

static void broadcast(struct hub *h, struct room *r, const char *type, json_t *payload) {
  hub_publish(h, r, type, "server", NULL, NULL, payload);
}

static uint8_t *media_state(struct participant *p, const char *kind, uint32_t *perm) {
  if (strcmp(kind, "audio") == 0) {
    *perm = PERM_PUBLISH_AUDIO;
    return &p->audio;
  }
  if (strcmp(kind, "video") == 0) {
    *perm = PERM_PUBLISH_VIDEO;
    return &p->video;
  }
  return NULL;
}

enum api_err op_media(struct hub *h, struct room *r, const struct actor *a, const char *target,
                      const char *kind, int enabled, char *detail, size_t dl) {
  struct participant *p = room_participant_find(r, target ? target : a->user_id);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  uint32_t perm = 0;
  uint8_t *state = kind ? media_state(p, kind, &perm) : NULL;
  if (state == NULL) {
    snprintf(detail, dl, "kind must be audio or video");
    return API_ERR_INVALID_MESSAGE;
  }
  int self = strcmp(p->user_id, a->user_id) == 0;
  if (!self && !op_outranks(a, p))
    return (a->perms & PERM_MODERATE) ? API_ERR_INSUFFICIENT_RANK : API_ERR_PERMISSION_DENIED;
  if (self && enabled && !(p->perms & perm)) {
    snprintf(detail, dl, "you may not publish %s", kind);
    return API_ERR_PERMISSION_DENIED;
  }
  if (!self && enabled) {
    /* Ask, do not force: the user decides to unmute. */
    json_t *ask = json_pack("{s:s,s:s,s:b,s:b,s:s}", "user_id", p->user_id, "kind", kind, "enabled", 1,
                            "request", 1, "by", a->user_id);
    hub_publish(h, r, "media-control", "server", p->user_id, NULL, ask);
    json_decref(ask);
    if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "unmute_request", p->user_id,
                               json_pack("{s:s}", "kind", kind));
    return API_OK;
  }
  *state = enabled;
  if (!self && r->hist)
    history_audit(r->hist, hub_now_ms(), a->user_id, "mute", p->user_id, json_pack("{s:s}", "kind", kind));
  json_t *out = json_pack("{s:s,s:s,s:b,s:s}", "user_id", p->user_id, "kind", kind, "enabled", enabled,
                          "by", a->user_id);
  broadcast(h, r, "media-control", out);
  json_decref(out);
  return API_OK;
}

enum api_err op_mute_all(struct hub *h, struct room *r, const struct actor *a, const char *kind,
                         char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (kind == NULL || (strcmp(kind, "audio") != 0 && strcmp(kind, "video") != 0)) {
    snprintf(detail, dl, "kind must be audio or video");
    return API_ERR_INVALID_MESSAGE;
  }
  json_t *who = json_array();
  for (struct participant *p = r->head; p; p = p->next) {
    uint32_t perm;
    uint8_t *state = media_state(p, kind, &perm);
    if (strcmp(p->user_id, a->user_id) == 0 || !op_outranks(a, p)) continue;
    if (*state) json_array_append_new(who, json_string(p->user_id));
    *state = 0;
  }
  if (r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "mute_all", "",
                             json_pack("{s:s,s:O}", "kind", kind, "user_ids", who));
  json_t *out = json_pack("{s:b,s:s,s:b,s:o,s:s}", "all", 1, "kind", kind, "enabled", 0, "user_ids", who,
                          "by", a->user_id);
  broadcast(h, r, "media-control", out);
  json_decref(out);
  return API_OK;
}

enum api_err op_screen(struct hub *h, struct room *r, const struct actor *a, const char *target,
                       int start, char *detail, size_t dl) {
  struct participant *p = room_participant_find(r, target ? target : a->user_id);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  int self = strcmp(p->user_id, a->user_id) == 0;
  if (!self) {
    if (start) {
      snprintf(detail, dl, "only the user starts sharing their screen");
      return API_ERR_PERMISSION_DENIED;
    }
    if (!op_outranks(a, p))
      return (a->perms & PERM_MODERATE) ? API_ERR_INSUFFICIENT_RANK : API_ERR_PERMISSION_DENIED;
  } else if (start && (!(p->perms & PERM_SHARE_SCREEN) ||
                       (r->settings.screen_share_moderators_only && !(p->perms & PERM_MODERATE)))) {
    snprintf(detail, dl, r->settings.screen_share_moderators_only && (p->perms & PERM_SHARE_SCREEN)
                             ? "only moderators share screens in this room" : "you may not share your screen");
    return API_ERR_PERMISSION_DENIED;
  }
  p->screen = start;
  if (!self && r->hist) history_audit(r->hist, hub_now_ms(), a->user_id, "stop_screen_share", p->user_id, NULL);
  json_t *out = json_pack("{s:s,s:b,s:s}", "user_id", p->user_id, "sharing", start, "by", a->user_id);
  broadcast(h, r, "screen-share-control", out);
  json_decref(out);
  return API_OK;
}

