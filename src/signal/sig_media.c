/* media-control and screen-share-control: each participant's audio, video
 * and screen state, changed by the participant within its permissions, or
 * by a moderator who outranks it. A moderator mutes but never unmutes
 * someone else: the user is asked instead. */
#define LOG_MODULE "media"
#include "log.h"

#include <stdio.h>
#include <string.h>

#include "net/server.h"
#include "room/room.h"
#include "signal/signal.h"

static void broadcast(struct server *s, struct room *r, const char *type, json_t *payload) {
  struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
  signal_publish(&ctx, type, "server", NULL, NULL, payload);
}

static int *media_state(struct participant *p, const char *kind, uint32_t *perm) {
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

enum api_err op_media(struct server *s, struct room *r, const struct actor *a, const char *target,
                      const char *kind, int enabled, char *detail, size_t dl) {
  struct participant *p = room_participant_find(r, target ? target : a->user_id);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  uint32_t perm = 0;
  int *state = kind ? media_state(p, kind, &perm) : NULL;
  if (state == NULL) {
    snprintf(detail, dl, "kind must be audio or video");
    return API_ERR_INVALID_MESSAGE;
  }
  int self = strcmp(p->user_id, a->user_id) == 0;
  if (!self && !signal_outranks(a, p))
    return (a->perms & PERM_MODERATE) ? API_ERR_INSUFFICIENT_RANK : API_ERR_PERMISSION_DENIED;
  if (self && enabled && !(p->perms & perm)) {
    snprintf(detail, dl, "you may not publish %s", kind);
    return API_ERR_PERMISSION_DENIED;
  }
  if (!self && enabled) {
    /* Ask, do not force: the user decides to unmute. */
    struct sig_ctx ctx = {s, NULL, NULL, r, NULL};
    json_t *ask = json_pack("{s:s,s:s,s:b,s:b,s:s}", "user_id", p->user_id, "kind", kind, "enabled", 1,
                            "request", 1, "by", a->user_id);
    signal_publish(&ctx, "media-control", "server", p->user_id, NULL, ask);
    json_decref(ask);
    if (r->hist) history_audit(r->hist, server_now_ms(), a->user_id, "unmute_request", p->user_id,
                               json_pack("{s:s}", "kind", kind));
    return API_OK;
  }
  *state = enabled;
  if (!self && r->hist)
    history_audit(r->hist, server_now_ms(), a->user_id, "mute", p->user_id, json_pack("{s:s}", "kind", kind));
  json_t *out = json_pack("{s:s,s:s,s:b,s:s}", "user_id", p->user_id, "kind", kind, "enabled", enabled,
                          "by", a->user_id);
  broadcast(s, r, "media-control", out);
  json_decref(out);
  return API_OK;
}

enum api_err op_mute_all(struct server *s, struct room *r, const struct actor *a, const char *kind,
                         char *detail, size_t dl) {
  if (!a->admin && !(a->perms & PERM_MODERATE)) return API_ERR_PERMISSION_DENIED;
  if (kind == NULL || (strcmp(kind, "audio") != 0 && strcmp(kind, "video") != 0)) {
    snprintf(detail, dl, "kind must be audio or video");
    return API_ERR_INVALID_MESSAGE;
  }
  json_t *who = json_array();
  for (struct participant *p = r->head; p; p = p->next) {
    uint32_t perm;
    int *state = media_state(p, kind, &perm);
    if (strcmp(p->user_id, a->user_id) == 0 || !signal_outranks(a, p)) continue;
    if (*state) json_array_append_new(who, json_string(p->user_id));
    *state = 0;
  }
  if (r->hist) history_audit(r->hist, server_now_ms(), a->user_id, "mute_all", "",
                             json_pack("{s:s,s:O}", "kind", kind, "user_ids", who));
  json_t *out = json_pack("{s:b,s:s,s:b,s:o,s:s}", "all", 1, "kind", kind, "enabled", 0, "user_ids", who,
                          "by", a->user_id);
  broadcast(s, r, "media-control", out);
  json_decref(out);
  return API_OK;
}

enum api_err op_screen(struct server *s, struct room *r, const struct actor *a, const char *target,
                       int start, char *detail, size_t dl) {
  struct participant *p = room_participant_find(r, target ? target : a->user_id);
  if (p == NULL) return API_ERR_USER_NOT_IN_ROOM;
  int self = strcmp(p->user_id, a->user_id) == 0;
  if (!self) {
    if (start) {
      snprintf(detail, dl, "only the user starts sharing their screen");
      return API_ERR_PERMISSION_DENIED;
    }
    if (!signal_outranks(a, p))
      return (a->perms & PERM_MODERATE) ? API_ERR_INSUFFICIENT_RANK : API_ERR_PERMISSION_DENIED;
  } else if (start && (!(p->perms & PERM_SHARE_SCREEN) ||
                       (r->settings.screen_share_moderators_only && !(p->perms & PERM_MODERATE)))) {
    snprintf(detail, dl, r->settings.screen_share_moderators_only && (p->perms & PERM_SHARE_SCREEN)
                             ? "only moderators share screens in this room" : "you may not share your screen");
    return API_ERR_PERMISSION_DENIED;
  }
  p->screen = start;
  if (!self && r->hist) history_audit(r->hist, server_now_ms(), a->user_id, "stop_screen_share", p->user_id, NULL);
  json_t *out = json_pack("{s:s,s:b,s:s}", "user_id", p->user_id, "sharing", start, "by", a->user_id);
  broadcast(s, r, "screen-share-control", out);
  json_decref(out);
  return API_OK;
}

enum api_err sig_media_control(struct sig_ctx *ctx, char *detail, size_t dl) {
  json_t *pl = ctx->in->payload;
  json_t *kind = json_object_get(pl, "kind"), *en = json_object_get(pl, "enabled");
  json_t *user = json_object_get(pl, "user_id"), *all = json_object_get(pl, "all");
  struct actor a = signal_actor_of(ctx->self);
  if (!json_is_boolean(en) || !json_is_string(kind) || (user && !json_is_string(user))) {
    snprintf(detail, dl, "send {\"kind\": \"audio\"|\"video\", \"enabled\": bool, \"user_id\"?: id, \"all\"?: true}");
    return API_ERR_INVALID_MESSAGE;
  }
  if (json_is_true(all)) {
    if (json_is_true(en)) {
      snprintf(detail, dl, "nobody unmutes everyone: all works with enabled false");
      return API_ERR_INVALID_MESSAGE;
    }
    return op_mute_all(ctx->srv, ctx->room, &a, json_string_value(kind), detail, dl);
  }
  return op_media(ctx->srv, ctx->room, &a, user ? json_string_value(user) : NULL, json_string_value(kind),
                  json_is_true(en), detail, dl);
}

enum api_err sig_screen_share_control(struct sig_ctx *ctx, char *detail, size_t dl) {
  json_t *action = json_object_get(ctx->in->payload, "action");
  json_t *user = json_object_get(ctx->in->payload, "user_id");
  const char *act = json_is_string(action) ? json_string_value(action) : "";
  if ((strcmp(act, "start") != 0 && strcmp(act, "stop") != 0) || (user && !json_is_string(user))) {
    snprintf(detail, dl, "send {\"action\": \"start\"|\"stop\", \"user_id\"?: id}");
    return API_ERR_INVALID_MESSAGE;
  }
  struct actor a = signal_actor_of(ctx->self);
  return op_screen(ctx->srv, ctx->room, &a, user ? json_string_value(user) : NULL,
                   strcmp(act, "start") == 0, detail, dl);
}
