/* The waiting room: users below moderator wait when the room's
 * waiting_room setting is on, hearing nothing from the room; hosts and
 * moderators see them arrive and admit or reject them. */
#include <stdio.h>
#include <string.h>

#include "room/op.h"
#include "signal/signal.h"

static const char *target_field(struct sig_ctx *ctx) {
  json_t *u = json_object_get(ctx->in->payload, "user_id");
  return json_is_string(u) ? json_string_value(u) : NULL;
}

enum api_err sig_waiting_room_admit(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  return op_waiting_admit(ctx->hub, ctx->room, &a, target_field(ctx), detail, dl);
}

enum api_err sig_waiting_room_reject(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  json_t *reason = json_object_get(ctx->in->payload, "reason");
  return op_waiting_reject(ctx->hub, ctx->room, &a, target_field(ctx),
                           json_is_string(reason) ? json_string_value(reason) : NULL, detail, dl);
}
