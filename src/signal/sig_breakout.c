/* Breakout rooms: rooms of their own, opened and closed by a main room's
 * moderators. Assigning a user sends it a grant, a short-lived server-side
 * credential that lets it join the breakout room (and later the main room
 * again) as the same user with the same role, without a new token. The main
 * room stays open while it has breakout rooms; its room-state lists them
 * and who is assigned and present where. */
#include <stdio.h>
#include <string.h>

#include "room/op.h"
#include "signal/signal.h"

enum api_err sig_breakout_room_create(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  return op_breakout_create(ctx->hub, ctx->room, &a, ctx->in->payload, NULL, detail, dl);
}

enum api_err sig_breakout_room_assign(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  json_t *bid = json_object_get(ctx->in->payload, "breakout_room_id");
  json_t *user = json_object_get(ctx->in->payload, "user_id");
  return op_breakout_assign(ctx->hub, ctx->room, &a, json_is_string(bid) ? json_string_value(bid) : NULL,
                            json_is_string(user) ? json_string_value(user) : NULL, detail, dl);
}

enum api_err sig_breakout_room_close(struct sig_ctx *ctx, char *detail, size_t dl) {
  struct actor a = op_actor_of(ctx->self);
  json_t *bid = json_object_get(ctx->in->payload, "breakout_room_id");
  return op_breakout_close(ctx->hub, ctx->room, &a, json_is_string(bid) ? json_string_value(bid) : NULL,
                           detail, dl);
}
