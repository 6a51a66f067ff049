/* e2ee-key-exchange and e2ee-ratchet-update: opaque to the server. The
 * payload is relayed as sent (to one user with "to", else to everyone else)
 * under a size limit; it is never parsed beyond JSON and never logged. */
#include <stdio.h>

#include "net/server.h"
#include "room/room.h"
#include "signal/signal.h"

static enum api_err relay(struct sig_ctx *ctx, const char *type, char *detail, size_t detail_len) {
  /* The limit applies to what is relayed: the client's own bytes. */
  size_t n = ctx->in->raw_payload ? ctx->in->raw_payload_len : json_dumpb(ctx->in->payload, NULL, 0, JSON_COMPACT);
  if (n == 0 || n > (size_t)ctx->hub->cfg->e2ee_max_bytes) {
    snprintf(detail, detail_len, "payload of at most %d bytes", ctx->hub->cfg->e2ee_max_bytes);
    return API_ERR_MESSAGE_TOO_LARGE;
  }
  struct room_event o = {type, ctx->self->user_id, ctx->in->to, ctx->in->to ? NULL : ctx->self->user_id,
                      NULL, 0, ctx->in->payload, NULL, ctx->in->raw_payload, ctx->in->raw_payload_len};
  return hub_send(ctx->hub, ctx->room, &o) ? API_ERR_INTERNAL_ERROR : API_OK;
}

enum api_err sig_e2ee_key_exchange(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  return relay(ctx, "e2ee-key-exchange", detail, detail_len);
}

enum api_err sig_e2ee_ratchet_update(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  return relay(ctx, "e2ee-ratchet-update", detail, detail_len);
}
