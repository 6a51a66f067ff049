/* chat-message and reaction. Chat text is sanitized once here and the
 * sanitized text is what every recipient gets; the server names each
 * message ("m" + its room seq) so replies and resumes can refer to it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/sanitize.h"
#include "net/server.h"
#include "room/durable.h"
#include "room/chatvis.h"
#include "room/room.h"
#include "signal/signal.h"

#define REACTION_MAX_BYTES 64

/* Parses "m<seq>"; returns seq or 0. */
static uint64_t message_seq(const char *id) {
  if (id == NULL || id[0] != 'm' || id[1] < '1' || id[1] > '9' || strlen(id) > 21) return 0;
  char *end;
  unsigned long long v = strtoull(id + 1, &end, 10);
  return *end ? 0 : (uint64_t)v;
}

enum api_err sig_chat_message(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  struct room *r = ctx->room;
  json_t *p = ctx->in->payload;
  if (!r->settings.chat_enabled && !(ctx->self->perms & PERM_MODERATE)) return API_ERR_CHAT_DISABLED;
  json_t *text = json_object_get(p, "text");
  json_t *reply = json_object_get(p, "reply_to");
  if (!json_is_string(text)) {
    snprintf(detail, detail_len, "payload.text must be a string");
    return API_ERR_INVALID_MESSAGE;
  }
  if (reply && !json_is_null(reply)) {
    if (!json_is_string(reply) || !room_chat_known(r, message_seq(json_string_value(reply))) ||
        !chatvis_visible(r, message_seq(json_string_value(reply)), ctx->self->user_id))
      return API_ERR_MESSAGE_NOT_FOUND; /* one answer for unknown and not yours to see */
  } else {
    reply = NULL;
  }
  struct buf clean = {0};
  enum api_err e = sanitize_text(json_string_value(text), json_string_length(text),
                                 (size_t)ctx->hub->cfg->chat_max_chars, &clean);
  if (e != API_OK) {
    buf_free(&clean);
    if (e == API_ERR_MESSAGE_TOO_LONG)
      snprintf(detail, detail_len, "at most %d characters", ctx->hub->cfg->chat_max_chars);
    else
      snprintf(detail, detail_len, "payload.text is empty or not text");
    return e;
  }
  /* signal_send assigns the next seq; the id names it. */
  uint64_t seq = r->seq + 1;
  char id[24];
  snprintf(id, sizeof(id), "m%" PRIu64, seq);
  json_t *out = json_pack("{s:s,s:s%,s:s,s:b}", "message_id", id, "text", clean.data, clean.len,
                          "sender_name", ctx->self->name, "private", ctx->in->to != NULL);
  buf_free(&clean);
  if (out == NULL) return API_ERR_INTERNAL_ERROR;
  if (reply) json_object_set(out, "reply_to", reply);
  struct room_event o = {"chat-message", ctx->self->user_id, ctx->in->to, NULL,
                      ctx->in->to ? ctx->self->user_id : NULL, 0, out, ctx->in->id, NULL, 0};
  /* Through the store: delivered once stored (or now, when relaxed). */
  enum api_err se = durable_chat(ctx->hub, ctx->room, &o, seq);
  json_decref(out);
  if (se != API_OK) return se;
  room_chat_remember(r, seq);
  if (ctx->in->to) chatvis_private(r, seq, ctx->self->user_id, ctx->in->to);
  if (r->hist) history_event(r->hist, hub_now_ms(), "chat", ctx->self->user_id,
                             ctx->in->to ? "private" : "room", 0, NULL);
  return API_OK;
}

enum api_err sig_reaction(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  struct room *r = ctx->room;
  if (!r->settings.reactions_enabled) return API_ERR_REACTIONS_DISABLED;
  json_t *emoji = json_object_get(ctx->in->payload, "emoji");
  if (!json_is_string(emoji) ||
      sanitize_reaction(json_string_value(emoji), json_string_length(emoji), REACTION_MAX_BYTES) != API_OK) {
    snprintf(detail, detail_len, "payload.emoji must be a single emoji");
    return API_ERR_INVALID_REACTION;
  }
  json_t *out = json_pack("{s:O}", "emoji", emoji);
  struct room_event o = {"reaction", ctx->self->user_id, NULL, NULL, NULL, 0, out, ctx->in->id, NULL, 0};
  int rc = hub_send(ctx->hub, ctx->room, &o);
  json_decref(out);
  if (rc != 0) return API_ERR_INTERNAL_ERROR;
  if (r->hist) history_event(r->hist, hub_now_ms(), "reaction", ctx->self->user_id,
                             NULL, 0, NULL);
  return API_OK;
}
