/* offer / answer / ice-candidate: validated, then relayed only to "to" with
 * "from" set by the server. The payload is relayed as the client sent it.
 * The checks read the payload's members from in->member (SIG_SPANS): spans
 * of the client's bytes, or values of a tree when the message was decoded
 * with one; a string may hold escapes (lib/jscan.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/sdp.h"
#include "room/room.h"
#include "signal/signal.h"

#define SDP_MAX (256 * 1024)
#define CANDIDATE_MAX 1024

/* 1 if string v's value is exactly lit. */
static int str_is(const struct jscan_value *v, const char *lit) {
  char buf[16];
  size_t n = strlen(lit);
  if (v->kind != JSCAN_STRING || n > sizeof(buf)) return 0;
  if (!v->escaped) return v->len == n && memcmp(v->p, lit, n) == 0;
  return v->len <= 6 * n && jscan_string_len(v) == n && jscan_prefix(v, buf, n) == n && memcmp(buf, lit, n) == 0;
}

/* 1 if string v's value starts with lit. */
static int str_starts(const struct jscan_value *v, const char *lit) {
  char buf[16];
  size_t n = strlen(lit);
  if (!v->escaped) return v->len >= n && memcmp(v->p, lit, n) == 0;
  return n <= sizeof(buf) && jscan_prefix(v, buf, n) == n && memcmp(buf, lit, n) == 0;
}

/* Length of string v's value, counted only when the bytes exceed max (a
 * value is never longer than its bytes). */
static size_t str_len_past(const struct jscan_value *v, size_t max) {
  return v->len <= max ? v->len : jscan_string_len(v);
}

static enum api_err check_sdp(const struct sig_ctx *ctx, const char *want_type, char *detail,
                              size_t detail_len) {
  const struct jscan_value *sdp = &ctx->in->member[SIG_M_SDP], *type = &ctx->in->member[SIG_M_TYPE];
  /* NUL cannot occur: both decoders refuse \u0000 (INVALID_JSON). */
  if (sdp->kind != JSCAN_STRING || !str_starts(sdp, "v=0") || str_len_past(sdp, SDP_MAX) > SDP_MAX) {
    snprintf(detail, detail_len, "payload.sdp must be a session description starting with v=0");
    return API_ERR_INVALID_SDP;
  }
  if (type->kind != JSCAN_ABSENT && !str_is(type, want_type)) {
    snprintf(detail, detail_len, "payload.type must be \"%s\"", want_type);
    return API_ERR_INVALID_SDP;
  }
  return API_OK;
}

/* A participant without publish permissions may negotiate to receive only. */
static enum api_err check_publish(const struct sig_ctx *ctx, char *detail, size_t detail_len) {
  uint32_t perms = ctx->self->perms;
  /* Holding every publish permission, whatever the SDP says is allowed:
   * there is nothing to read. */
  if ((perms & PERM_PUBLISH_AUDIO) && (perms & (PERM_PUBLISH_VIDEO | PERM_SHARE_SCREEN))) return API_OK;
  const struct jscan_value *sdp = &ctx->in->member[SIG_M_SDP];
  struct sdp_sending snd; /* read the way libwebrtc reads it: guard/sdp.c */
  if (sdp->escaped && !(sdp->escaped & JSCAN_ESC_OTHER)) {
    sdp_sending_json(sdp->p, sdp->len, &snd); /* only \r\n escapes: read as written */
  } else if (sdp->escaped) {
    char *text = malloc(sdp->len);
    if (text == NULL) return API_ERR_INTERNAL_ERROR;
    sdp_sending(text, jscan_unescape(sdp, text), &snd);
    free(text);
  } else {
    sdp_sending(sdp->p, sdp->len, &snd);
  }
  int audio = snd.audio, video = snd.video;
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
  const struct jscan_value *cand = &ctx->in->member[SIG_M_CANDIDATE];
  const struct jscan_value *mid = &ctx->in->member[SIG_M_SDP_MID];
  const struct jscan_value *idx = &ctx->in->member[SIG_M_SDP_MLINE_INDEX];
  /* null (or no payload): onicecandidate's end of gathering. A payload
   * decoded without a tree is never empty (envelope_decode_spans). */
  if (cand->kind == JSCAN_NULL || (ctx->in->payload && json_object_size(ctx->in->payload) == 0))
    return sig_rtc_end_of_candidates(ctx);
  /* "" is the end-of-candidates marker browsers send. */
  if (cand->kind != JSCAN_STRING || str_len_past(cand, CANDIDATE_MAX) > CANDIDATE_MAX ||
      (cand->len > 0 && !str_starts(cand, "candidate:"))) {
    snprintf(detail, detail_len, "payload.candidate must be an ICE candidate line (or \"\")");
    return API_ERR_INVALID_ICE_CANDIDATE;
  }
  if (mid->kind != JSCAN_ABSENT && mid->kind != JSCAN_NULL &&
      (mid->kind != JSCAN_STRING || str_len_past(mid, 64) > 64)) {
    snprintf(detail, detail_len, "payload.sdpMid must be a string or null");
    return API_ERR_INVALID_ICE_CANDIDATE;
  }
  if (idx->kind != JSCAN_ABSENT && idx->kind != JSCAN_NULL &&
      (idx->kind != JSCAN_INTEGER || idx->integer < 0 || idx->integer > 65535)) {
    snprintf(detail, detail_len, "payload.sdpMLineIndex must be an integer from 0 to 65535 or null");
    return API_ERR_INVALID_ICE_CANDIDATE;
  }
  return relay(ctx, "ice-candidate");
}
