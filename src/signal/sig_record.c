/* Recording and live-stream control, shared by the REST endpoints (12-14,
 * 25-27) and the WebSocket messages recording-control, live-stream-start
 * and live-stream-stop. This is control and metadata: who started what,
 * when, for how long; capturing media is the media-plane issue. Every change
 * is broadcast so a participant always knows it is being recorded. Stream
 * targets carry a secret key: only the redacted form is ever sent or logged. */
#include <stdio.h>
#include <string.h>

#include "room/op.h"
#include "signal/signal.h"

/* ---- WebSocket handlers ---- */

static enum api_err reply(struct sig_ctx *ctx, enum api_err e, json_t *out) {
  json_decref(out);
  return e;
}

enum api_err sig_recording_control(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *action = json_object_get(ctx->in->payload, "action");
  json_t *id = json_object_get(ctx->in->payload, "recording_id");
  json_t *out = NULL;
  if (id && !json_is_null(id) && !json_is_string(id)) {
    snprintf(detail, detail_len, "payload.recording_id must be a string");
    return API_ERR_INVALID_MESSAGE;
  }
  enum api_err e;
  if (json_is_string(action) && strcmp(json_string_value(action), "start") == 0) {
    e = op_recording_start(ctx->hub, ctx->room, ctx->self->user_id, &out);
    return reply(ctx, e, out);
  }
  if (json_is_string(action) && strcmp(json_string_value(action), "stop") == 0) {
    e = op_recording_stop(ctx->hub, ctx->room, json_is_string(id) ? json_string_value(id) : NULL,
                              ctx->self->user_id, &out);
    return reply(ctx, e, out);
  }
  snprintf(detail, detail_len, "payload.action must be \"start\" or \"stop\"");
  return API_ERR_INVALID_MESSAGE;
}

enum api_err sig_live_stream_start(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *out = NULL;
  enum api_err e = op_stream_start(ctx->hub, ctx->room, ctx->self->user_id, ctx->in->payload,
                                       detail, detail_len, &out);
  return reply(ctx, e, out);
}

enum api_err sig_live_stream_stop(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *id = json_object_get(ctx->in->payload, "stream_id");
  json_t *out = NULL;
  if (!json_is_string(id)) {
    snprintf(detail, detail_len, "payload.stream_id is required");
    return API_ERR_INVALID_MESSAGE;
  }
  enum api_err e = op_stream_stop(ctx->hub, ctx->room, json_string_value(id), ctx->self->user_id, &out);
  return reply(ctx, e, out);
}
