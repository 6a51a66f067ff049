/* offer / answer / ice-candidate: validated, then relayed only to "to" with
 * "from" set by the server. The payload is relayed as the client sent it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room/room.h"
#include "signal/signal.h"

#define SDP_MAX (256 * 1024)
#define CANDIDATE_MAX 1024

static enum api_err check_sdp(const struct sig_ctx *ctx, const char *want_type, char *detail,
                              size_t detail_len) {
  json_t *sdp = json_object_get(ctx->in->payload, "sdp");
  json_t *type = json_object_get(ctx->in->payload, "type");
  if (!json_is_string(sdp) || json_string_length(sdp) < 3 || json_string_length(sdp) > SDP_MAX ||
      strncmp(json_string_value(sdp), "v=0", 3) != 0) {
    snprintf(detail, detail_len, "payload.sdp must be a session description starting with v=0");
    return API_ERR_INVALID_SDP;
  }
  if (type && (!json_is_string(type) || strcmp(json_string_value(type), want_type) != 0)) {
    snprintf(detail, detail_len, "payload.type must be \"%s\"", want_type);
    return API_ERR_INVALID_SDP;
  }
  return API_OK;
}

/* Finds which media kinds a session description would send: an m= section
 * of audio or video with a non-zero port whose direction (its own a= line,
 * else the session's, else sendrecv) is sendrecv or sendonly. */
static void sdp_sends(const char *sdp, int *audio, int *video) {
  enum { NONE, AUDIO, VIDEO, OTHER } kind = NONE;
  int session_send = 1, sec_dir = -1, sec_port = 0;
  *audio = *video = 0;
  const char *p = sdp;
  for (int last = 0; !last;) {
    const char *eol = strpbrk(p, "\r\n");
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    last = eol == NULL;
    int is_m = len >= 2 && p[0] == 'm' && p[1] == '=';
    if (is_m || last) {
      /* Close the section before this m= line (or at the end). */
      int sends = sec_dir >= 0 ? sec_dir : session_send;
      if (sends && sec_port != 0 && kind == AUDIO) *audio = 1;
      if (sends && sec_port != 0 && kind == VIDEO) *video = 1;
    }
    if (is_m) {
      kind = strncmp(p + 2, "audio ", 6) == 0 ? AUDIO : strncmp(p + 2, "video ", 6) == 0 ? VIDEO : OTHER;
      const char *sp = memchr(p, ' ', len);
      sec_port = sp ? atoi(sp + 1) : 0;
      sec_dir = -1;
      if (last) {
        int sends = session_send;
        if (sends && sec_port != 0 && kind == AUDIO) *audio = 1;
        if (sends && sec_port != 0 && kind == VIDEO) *video = 1;
      }
    } else if (len == 10 && strncmp(p, "a=", 2) == 0) {
      int dir = strncmp(p, "a=sendrecv", 10) == 0 || strncmp(p, "a=sendonly", 10) == 0 ? 1
              : strncmp(p, "a=recvonly", 10) == 0 || strncmp(p, "a=inactive", 10) == 0 ? 0 : -1;
      if (dir >= 0 && kind == NONE) session_send = dir;
      else if (dir >= 0) sec_dir = dir;
      if (last && kind != NONE && dir >= 0) {
        if (dir && sec_port != 0 && kind == AUDIO) *audio = 1;
        if (dir && sec_port != 0 && kind == VIDEO) *video = 1;
      }
    }
    if (!last) p = eol + 1;
  }
}

/* A participant without publish permissions may negotiate to receive only. */
static enum api_err check_publish(const struct sig_ctx *ctx, char *detail, size_t detail_len) {
  int audio, video;
  sdp_sends(json_string_value(json_object_get(ctx->in->payload, "sdp")), &audio, &video);
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
