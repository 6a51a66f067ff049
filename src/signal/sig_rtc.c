/* offer / answer / ice-candidate: validated, then relayed only to "to" with
 * "from" set by the server. The payload is relayed as the client sent it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/sdp.h"
#include "room/room.h"
#include "signal/signal.h"

#define SDP_MAX (256 * 1024)
#define CANDIDATE_MAX 1024

static enum api_err check_sdp(const struct sig_ctx *ctx, const char *want_type, char *detail,
                              size_t detail_len) {
  json_t *sdp = json_object_get(ctx->in->payload, "sdp");
  json_t *type = json_object_get(ctx->in->payload, "type");
  if (!json_is_string(sdp) || json_string_length(sdp) < 3 || json_string_length(sdp) > SDP_MAX ||
      strncmp(json_string_value(sdp), "v=0", 3) != 0 ||
      memchr(json_string_value(sdp), '\0', json_string_length(sdp)) != NULL) {
    snprintf(detail, detail_len, "payload.sdp must be a session description starting with v=0");
    return API_ERR_INVALID_SDP;
  }
  if (type && (!json_is_string(type) || strcmp(json_string_value(type), want_type) != 0)) {
    snprintf(detail, detail_len, "payload.type must be \"%s\"", want_type);
    return API_ERR_INVALID_SDP;
  }
  return API_OK;
}

/* A participant without publish permissions may negotiate to receive only. */
static enum api_err check_publish(const struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *sdp = json_object_get(ctx->in->payload, "sdp");
  struct sdp_sending snd; /* read the way libwebrtc reads it: guard/sdp.c */
  sdp_sending(json_string_value(sdp), json_string_length(sdp), &snd);
  int audio = snd.audio, video = snd.video;
  uint32_t perms = ctx->self->perms;
  if ((audio && !(perms & PERM_PUBLISH_AUDIO)) ||
      (video && !(perms & (PERM_PUBLISH_VIDEO | PERM_SHARE_SCREEN)))) {
    snprintf(detail, detail_len, "you may not send %s: offer or answer with recvonly", audio && !(perms & PERM_PUBLISH_AUDIO) ? "audio" : "video");
    return API_ERR_PERMISSION_DENIED;
  }
  return API_OK;
}

static enum api_err relay(struct sig_ctx *ctx, const char *type) {
  /* The payload goes out as the client's own bytes: validated, not rewritten. */
  struct room_event o = {type, ctx->self->user_id, ctx->in->to, NULL, NULL, 0, ctx->in->payload, NULL,
                      ctx->in->raw_payload, ctx->in->raw_payload_len};
  return hub_send(ctx->hub, ctx->room, &o) ? API_ERR_INTERNAL_ERROR : API_OK;
}

enum api_err sig_offer(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  enum api_err e = check_sdp(ctx, "offer", detail, detail_len);
  if (e == API_OK) e = check_publish(ctx, detail, detail_len);
  return e != API_OK ? e : relay(ctx, "offer");
}

enum api_err sig_answer(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  enum api_err e = check_sdp(ctx, "answer", detail, detail_len);
  if (e == API_OK) e = check_publish(ctx, detail, detail_len);
  /* A publish refusal: the offerer must not wait forever for this answer. */
  if (e == API_ERR_PERMISSION_DENIED) sig_rtc_answer_refused(ctx, e, detail);
  return e != API_OK ? e : relay(ctx, "answer");
}

enum api_err sig_ice_candidate(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *p = ctx->in->payload;
  json_t *cand = json_object_get(p, "candidate");
  json_t *mid = json_object_get(p, "sdpMid");
  json_t *idx = json_object_get(p, "sdpMLineIndex");
  /* null (or no payload): onicecandidate's end of gathering. */
  if (json_is_null(cand) || json_object_size(p) == 0) return sig_rtc_end_of_candidates(ctx);
  /* "" is the end-of-candidates marker browsers send. */
  if (!json_is_string(cand) || json_string_length(cand) > CANDIDATE_MAX ||
      (json_string_length(cand) > 0 && strncmp(json_string_value(cand), "candidate:", 10) != 0)) {
    snprintf(detail, detail_len, "payload.candidate must be an ICE candidate line (or \"\")");
    return API_ERR_INVALID_ICE_CANDIDATE;
  }
  if (mid && !json_is_null(mid) && (!json_is_string(mid) || json_string_length(mid) > 64)) {
    snprintf(detail, detail_len, "payload.sdpMid must be a string or null");
    return API_ERR_INVALID_ICE_CANDIDATE;
  }
  if (idx && !json_is_null(idx) &&
      (!json_is_integer(idx) || json_integer_value(idx) < 0 || json_integer_value(idx) > 65535)) {
    snprintf(detail, detail_len, "payload.sdpMLineIndex must be an integer from 0 to 65535 or null");
    return API_ERR_INVALID_ICE_CANDIDATE;
  }
  return relay(ctx, "ice-candidate");
}
