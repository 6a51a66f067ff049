/* chat-message and reaction. Chat text is sanitized once here and the
 * sanitized text is what every recipient gets; the server names each
 * message ("m" + its room seq) so replies and resumes can refer to it. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/sanitize.h"
#include "lib/jwrite.h"
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

/* A string member's value: its bytes when written without escapes, else
 * unescaped into buf when it fits (cap bytes) or into *heap (freed by the
 * caller). Not NUL-terminated. NULL on allocation failure. */
static const char *member_str(const struct jscan_value *v, char *buf, size_t cap, char **heap, size_t *len) {
  if (!v->escaped) {
    *len = v->len;
    return v->p;
  }
  char *o = v->len <= cap ? buf : (*heap = malloc(v->len));
  if (o == NULL) return NULL;
  *len = jscan_unescape(v, o);
  return o;
}

int sig_chat_payload(struct buf *out, const char *id, const char *text, size_t text_len, const char *name,
                     int private, const char *reply) {
  size_t nlen = strlen(name), rlen = reply ? strlen(reply) : 0, idlen = strlen(id);
  size_t max = JWRITE_STRING_MAX(idlen) + JWRITE_STRING_MAX(text_len) + JWRITE_STRING_MAX(nlen) +
               JWRITE_STRING_MAX(rlen) + 80;
  buf_reset(out);
  if (buf_reserve(out, max) != 0) return -1;
  char *o = out->data;
  memcpy(o, "{\"message_id\":", 14), o += 14;
  o = jwrite_string(o, id, idlen);
  memcpy(o, ",\"text\":", 8), o += 8;
  o = jwrite_string(o, text, text_len);
  memcpy(o, ",\"sender_name\":", 15), o += 15;
  o = jwrite_string(o, name, nlen);
  if (private) memcpy(o, ",\"private\":true", 15), o += 15;
  else memcpy(o, ",\"private\":false", 16), o += 16;
  if (reply) {
    memcpy(o, ",\"reply_to\":", 12), o += 12;
    o = jwrite_string(o, reply, rlen);
  }
  *o++ = '}';
  out->len = (size_t)(o - out->data);
  out->data[out->len] = '\0';
  return 0;
}

/* The payload comes as spans (in->member, signal.c decodes chat-message
 * without a jansson tree when it can) and the event goes out as JSON text
 * written here (envelope_encode_raw), byte for byte what the tree and
 * json_dumpb made before. */
enum api_err sig_chat_message(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  struct room *r = ctx->room;
  const struct jscan_value *tv = &ctx->in->member[SIG_M_TEXT], *rv = &ctx->in->member[SIG_M_REPLY_TO];
  if (!r->settings.chat_enabled && !(ctx->self->perms & PERM_MODERATE)) return API_ERR_CHAT_DISABLED;
  if (tv->kind != JSCAN_STRING) {
    snprintf(detail, detail_len, "payload.text must be a string");
    return API_ERR_INVALID_MESSAGE;
  }
  char reply_buf[32];
  const char *reply = NULL;
  if (rv->kind != JSCAN_ABSENT && rv->kind != JSCAN_NULL) {
    /* A message id ("m" + at most 20 digits) is never longer than 21 bytes. */
    uint64_t rs = 0;
    if (rv->kind == JSCAN_STRING && jscan_string_len(rv) < sizeof(reply_buf)) {
      size_t n = jscan_unescape(rv, reply_buf);
      reply_buf[n] = '\0';
      if (strlen(reply_buf) == n) rs = message_seq(reply_buf);
    }
    if (!room_chat_known(r, rs) || !chatvis_visible(r, rs, ctx->self->user_id))
      return API_ERR_MESSAGE_NOT_FOUND; /* one answer for unknown and not yours to see */
    reply = reply_buf;
  }
  char text_buf[1024], *text_heap = NULL;
  size_t text_len;
  const char *text = member_str(tv, text_buf, sizeof(text_buf), &text_heap, &text_len);
  if (text == NULL) return API_ERR_INTERNAL_ERROR;
  struct buf clean = {0};
  enum api_err e = sanitize_text(text, text_len, (size_t)ctx->hub->cfg->chat_max_chars, &clean);
  free(text_heap);
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
  id[0] = 'm';
  *jwrite_u64(id + 1, seq) = '\0';
  struct buf out = {0};
  if (sig_chat_payload(&out, id, clean.data, clean.len, ctx->self->name, ctx->in->to != NULL, reply) != 0) {
    buf_free(&clean);
    buf_free(&out);
    return API_ERR_INTERNAL_ERROR;
  }
  struct room_event o = {"chat-message", ctx->self->user_id, ctx->in->to, NULL,
                         ctx->in->to ? ctx->self->user_id : NULL, 0, NULL, ctx->in->id, out.data, out.len};
  /* One clock reading for the stored message and its analytics event, which
   * the store derives from the message (ADR 0020). */
  uint64_t now = hub_now_ms();
  const struct durable_chat_msg m = {id, clean.data, clean.len, ctx->self->name, reply, now};
  /* Through the store: delivered once stored (or now, when relaxed). */
  enum api_err se = durable_chat(ctx->hub, ctx->room, &o, seq, &m);
  buf_free(&clean);
  buf_free(&out);
  if (se != API_OK) return se;
  room_chat_remember(r, seq);
  if (ctx->in->to) chatvis_private(r, seq, ctx->self->user_id, ctx->in->to);
  if (r->hist) history_event(r->hist, now, "chat", ctx->self->user_id,
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
