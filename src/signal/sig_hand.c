/* hand-raise and hand-raise-queue: a FIFO queue owned by the server
 * (positions, not client timestamps), without duplicates, broadcast on
 * every change. "Next speaker" lowers the first hand and grants it the
 * right to unmute in one step. */
#include <stdio.h>
#include <string.h>

#include "room/op.h"
#include "signal/signal.h"

enum api_err sig_hand_raise(struct sig_ctx *ctx, char *detail, size_t dl) {
  json_t *pl = ctx->in->payload;
  json_t *action = json_object_get(pl, "action"), *raised = json_object_get(pl, "raised");
  json_t *user = json_object_get(pl, "user_id");
  struct actor a = op_actor_of(ctx->self);
  if (json_is_string(action) && strcmp(json_string_value(action), "next") == 0)
    return op_hand_next(ctx->hub, ctx->room, &a, NULL, detail, dl);
  if (!json_is_boolean(raised) || (user && !json_is_string(user))) {
    snprintf(detail, dl, "send {\"raised\": true|false, \"user_id\"?: id} or {\"action\": \"next\"}");
    return API_ERR_INVALID_MESSAGE;
  }
  return op_hand(ctx->hub, ctx->room, &a, user ? json_string_value(user) : NULL, json_is_true(raised),
                 detail, dl);
}
