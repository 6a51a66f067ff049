/* Additions to offer / answer / ice-candidate (sig_rtc.c), kept apart so
 * that the SDP checks there can change independently: the end of ICE
 * gathering sent as null, and telling an offerer that its peer's answer was
 * refused. */
#include <stdio.h>

#include "room/hub.h"
#include "room/room.h"
#include "signal/signal.h"

enum api_err sig_rtc_end_of_candidates(struct sig_ctx *ctx) {
  /* What RTCPeerConnection.addIceCandidate takes as end-of-candidates. */
  const struct jscan_value *mid = &ctx->in->member[SIG_M_SDP_MID], *idx = &ctx->in->member[SIG_M_SDP_MLINE_INDEX];
  json_t *out = json_pack("{s:s}", "candidate", "");
  if (out == NULL) return API_ERR_INTERNAL_ERROR;
  if (mid->kind == JSCAN_STRING && jscan_string_len(mid) <= 64) {
    char buf[64];
    json_object_set_new(out, "sdpMid", json_stringn(buf, jscan_unescape(mid, buf)));
  }
  if (idx->kind == JSCAN_INTEGER && idx->integer >= 0 && idx->integer <= 65535)
    json_object_set_new(out, "sdpMLineIndex", json_integer(idx->integer));
  struct room_event o = {"ice-candidate", ctx->self->user_id, ctx->in->to, NULL, NULL, 0, out, NULL, NULL, 0};
  int rc = hub_send(ctx->hub, ctx->room, &o);
  json_decref(out);
  return rc ? API_ERR_INTERNAL_ERROR : API_OK;
}

void sig_rtc_answer_refused(struct sig_ctx *ctx, enum api_err why, const char *detail) {
  struct participant *offerer = ctx->in->to ? room_participant_find(ctx->room, ctx->in->to) : NULL;
  /* An offerer away (its session dropped) hears nothing: it offers again on resume. */
  if (offerer == NULL || offerer->session == NULL) return;
  char d[320];
  snprintf(d, sizeof(d), "the answer from '%s' was refused with %s%s%s", ctx->self->user_id, api_err_code(why),
           detail && *detail ? ": " : "", detail ? detail : "");
  signal_error(offerer->session, API_ERR_PEER_ANSWER_REFUSED, NULL, d, 0);
}
