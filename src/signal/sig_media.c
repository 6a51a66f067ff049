/* media-control and screen-share-control: each participant's audio, video
 * and screen state, changed by the participant within its permissions, or
 * by a moderator who outranks it. A moderator mutes but never unmutes
 * someone else: the user is asked instead. */
#include <stdio.h>
#include <string.h>

#include "room/op.h"
#include "signal/signal.h"

enum api_err sig_media_control(struct sig_ctx *ctx, char *detail, size_t dl) {
  json_t *pl = ctx->in->payload;
  json_t *kind = json_object_get(pl, "kind"), *en = json_object_get(pl, "enabled");
  json_t *user = json_object_get(pl, "user_id"), *all = json_object_get(pl, "all");
  struct actor a = op_actor_of(ctx->self);
  if (!json_is_boolean(en) || !json_is_string(kind) || (user && !json_is_string(user))) {
    snprintf(detail, dl, "send {\"kind\": \"audio\"|\"video\", \"enabled\": bool, \"user_id\"?: id, \"all\"?: true}");
    return API_ERR_INVALID_MESSAGE;
  }
  if (json_is_true(all)) {
    if (json_is_true(en)) {
      snprintf(detail, dl, "nobody unmutes everyone: all works with enabled false");
      return API_ERR_INVALID_MESSAGE;
    }
    return op_mute_all(ctx->hub, ctx->room, &a, json_string_value(kind), detail, dl);
  }
  return op_media(ctx->hub, ctx->room, &a, user ? json_string_value(user) : NULL, json_string_value(kind),
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
  struct actor a = op_actor_of(ctx->self);
  return op_screen(ctx->hub, ctx->room, &a, user ? json_string_value(user) : NULL,
                   strcmp(act, "start") == 0, detail, dl);
}
