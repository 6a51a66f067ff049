/* file-share-*: signaling for a file transfer. The server validates the
 * offer (name, type allow-list, dangerous types, size, sha256), names the
 * transfer, reserves its upload and sends the offer (src/files: the bytes
 * go to the server with tus and are checked there), and relays
 * accept/reject/progress/complete only between the offer's sender and a
 * receiver. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "files/files.h"
#include "guard/filecheck.h"
#include "guard/sanitize.h"
#include "net/server.h"
#include "room/room.h"
#include "signal/signal.h"

static int sha256_hex(const char *s, size_t len, char out[65]) {
  if (len != 64) return -1;
  for (size_t i = 0; i < 64; i++) {
    if (!isxdigit((unsigned char)s[i])) return -1;
    out[i] = (char)tolower((unsigned char)s[i]);
  }
  out[64] = '\0';
  return 0;
}

enum api_err sig_file_share_offer(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *p = ctx->in->payload;
  json_t *name = json_object_get(p, "name"), *size = json_object_get(p, "size");
  json_t *mime = json_object_get(p, "mime_type"), *sha = json_object_get(p, "sha256");
  char clean[256], hash[65];
  if (!json_is_string(name) ||
      sanitize_filename(json_string_value(name), json_string_length(name), clean, sizeof(clean)) != API_OK)
    return API_ERR_INVALID_FILE_NAME;
  if (!json_is_integer(size) || json_integer_value(size) <= 0) {
    snprintf(detail, detail_len, "payload.size must be a positive integer (bytes)");
    return API_ERR_INVALID_MESSAGE;
  }
  if (!json_is_string(mime) || json_string_length(mime) == 0 || json_string_length(mime) > 127) {
    snprintf(detail, detail_len, "payload.mime_type must be a MIME type");
    return API_ERR_INVALID_MESSAGE;
  }
  if (!json_is_string(sha) || sha256_hex(json_string_value(sha), json_string_length(sha), hash) != 0) {
    snprintf(detail, detail_len, "payload.sha256 must be 64 hexadecimal characters");
    return API_ERR_INVALID_MESSAGE;
  }
  uint64_t max = (uint64_t)ctx->hub->cfg->file_max_mb * 1024 * 1024;
  enum api_err e = filecheck_offer(clean, json_string_value(mime), (uint64_t)json_integer_value(size), max);
  if (e != API_OK) {
    if (e == API_ERR_FILE_TOO_LARGE)
      snprintf(detail, detail_len, "at most %d MiB", ctx->hub->cfg->file_max_mb);
    return e;
  }
  struct transfer *t = room_transfer_new(ctx->room, ctx->self->user_id, ctx->in->to, hub_now_ms());
  if (t == NULL) {
    snprintf(detail, detail_len, "too many open transfers in this room");
    return API_ERR_RATE_LIMIT_EXCEEDED;
  }
  snprintf(t->name, sizeof(t->name), "%s", clean);
  snprintf(t->mime, sizeof(t->mime), "%s", json_string_value(mime));
  memcpy(t->sha256, hash, sizeof(t->sha256));
  t->size = (uint64_t)json_integer_value(size);
  /* Reserves the upload and sends the offer; the sender's own copy carries
   * the transfer id and the upload URL (src/files). */
  e = files_offer_publish(ctx->hub, ctx->room, t, ctx->in->id, detail, detail_len);
  if (e != API_OK) {
    room_transfer_remove(ctx->room, t);
    return e;
  }
  if (ctx->room->hist)
    history_event(ctx->room->hist, hub_now_ms(), "file_offer", ctx->self->user_id, NULL,
                  (int64_t)t->size, NULL);
  return API_OK;
}

/* Finds the transfer named in the payload and checks that self and `to` are
 * its two parties: the sender and one receiver. Sets *party to the
 * receiver's entry (created for accept/reject when create is set). */
static enum api_err parties(struct sig_ctx *ctx, int create, struct transfer **tp,
                            struct transfer_party **party, char *detail, size_t detail_len) {
  json_t *id = json_object_get(ctx->in->payload, "transfer_id");
  if (!json_is_string(id)) {
    snprintf(detail, detail_len, "payload.transfer_id is required");
    return API_ERR_INVALID_MESSAGE;
  }
  struct transfer *t = room_transfer_find(ctx->room, json_string_value(id));
  if (t == NULL) return API_ERR_TRANSFER_NOT_FOUND;
  const char *self = ctx->self->user_id, *to = ctx->in->to;
  const char *receiver;
  if (strcmp(self, t->sender) == 0) receiver = to;           /* sender -> receiver */
  else if (strcmp(to, t->sender) == 0) receiver = self;      /* receiver -> sender */
  else {
    snprintf(detail, detail_len, "a transfer's messages go between its sender and a receiver");
    return API_ERR_TRANSFER_STATE;
  }
  if (t->to[0] && strcmp(receiver, t->to) != 0) {
    snprintf(detail, detail_len, "this offer was made to another user");
    return API_ERR_TRANSFER_STATE;
  }
  *party = room_transfer_party(t, receiver, create && receiver == self);
  if (*party == NULL && create && receiver == self) return API_ERR_INTERNAL_ERROR;
  *tp = t;
  return API_OK;
}

static enum api_err answer(struct sig_ctx *ctx, const char *type, enum transfer_state to_state,
                           char *detail, size_t detail_len) {
  struct transfer *t;
  struct transfer_party *pt;
  enum api_err e = parties(ctx, 1, &t, &pt, detail, detail_len);
  if (e != API_OK) return e;
  if (strcmp(ctx->self->user_id, t->sender) == 0 || pt->state != XFER_OFFERED) {
    snprintf(detail, detail_len, "only a receiver answers an offer, once");
    return API_ERR_TRANSFER_STATE;
  }
  json_t *out = json_pack("{s:s}", "transfer_id", t->id);
  json_t *reason = json_object_get(ctx->in->payload, "reason");
  if (to_state == XFER_REJECTED && json_is_string(reason)) {
    struct buf clean = {0};
    if (sanitize_text(json_string_value(reason), json_string_length(reason), 200, &clean) == API_OK)
      json_object_set_new(out, "reason", json_stringn(clean.data, clean.len));
    buf_free(&clean);
  }
  pt->state = to_state;
  int rc = hub_publish(ctx->hub, ctx->room, type, ctx->self->user_id, t->sender, NULL, out);
  json_decref(out);
  /* A directed offer ends with its only receiver's refusal. */
  if (to_state == XFER_REJECTED && t->to[0]) {
    files_declined(ctx->hub, t->id); /* its upload has nobody to go to */
    room_transfer_remove(ctx->room, t);
  }
  return rc ? API_ERR_INTERNAL_ERROR : API_OK;
}

enum api_err sig_file_share_accept(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  return answer(ctx, "file-share-accept", XFER_ACCEPTED, detail, detail_len);
}

enum api_err sig_file_share_reject(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  return answer(ctx, "file-share-reject", XFER_REJECTED, detail, detail_len);
}

enum api_err sig_file_share_progress(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  struct transfer *t;
  struct transfer_party *pt;
  enum api_err e = parties(ctx, 0, &t, &pt, detail, detail_len);
  if (e != API_OK) return e;
  if (pt == NULL || pt->state != XFER_ACCEPTED) {
    snprintf(detail, detail_len, "progress is reported only on an accepted transfer");
    return API_ERR_TRANSFER_STATE;
  }
  json_t *bytes = json_object_get(ctx->in->payload, "bytes_transferred");
  if (!json_is_integer(bytes) || json_integer_value(bytes) < 0 ||
      (uint64_t)json_integer_value(bytes) > t->size) {
    snprintf(detail, detail_len, "payload.bytes_transferred must be an integer from 0 to %llu",
             (unsigned long long)t->size);
    return API_ERR_INVALID_MESSAGE;
  }
  pt->bytes = (uint64_t)json_integer_value(bytes);
  json_t *out = json_pack("{s:s,s:I,s:I,s:f}", "transfer_id", t->id, "bytes_transferred",
                          (json_int_t)pt->bytes, "size", (json_int_t)t->size, "percent",
                          100.0 * (double)pt->bytes / (double)t->size);
  int rc = hub_publish(ctx->hub, ctx->room, "file-share-progress", ctx->self->user_id, ctx->in->to, NULL, out);
  json_decref(out);
  return rc ? API_ERR_INTERNAL_ERROR : API_OK;
}

enum api_err sig_file_share_complete(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  struct transfer *t;
  struct transfer_party *pt;
  enum api_err e = parties(ctx, 0, &t, &pt, detail, detail_len);
  if (e != API_OK) return e;
  if (pt == NULL || pt->state != XFER_ACCEPTED) {
    snprintf(detail, detail_len, "only an accepted transfer completes, once");
    return API_ERR_TRANSFER_STATE;
  }
  json_t *out = json_pack("{s:s,s:I}", "transfer_id", t->id, "size", (json_int_t)t->size);
  json_t *sha = json_object_get(ctx->in->payload, "sha256");
  char hash[65];
  if (sha) {
    if (!json_is_string(sha) || sha256_hex(json_string_value(sha), json_string_length(sha), hash) != 0) {
      json_decref(out);
      snprintf(detail, detail_len, "payload.sha256 must be 64 hexadecimal characters");
      return API_ERR_INVALID_MESSAGE;
    }
    json_object_set_new(out, "verified", json_boolean(strcmp(hash, t->sha256) == 0));
  }
  pt->state = XFER_COMPLETE;
  pt->bytes = t->size;
  int rc = hub_publish(ctx->hub, ctx->room, "file-share-complete", ctx->self->user_id, ctx->in->to, NULL, out);
  json_decref(out);
  if (ctx->room->hist)
    history_event(ctx->room->hist, hub_now_ms(), "file_complete", pt->user_id, NULL,
                  (int64_t)t->size, NULL);
  if (t->to[0]) room_transfer_remove(ctx->room, t); /* a directed offer is done */
  return rc ? API_ERR_INTERNAL_ERROR : API_OK;
}
