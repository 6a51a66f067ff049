/* Recording and live-stream control, shared by the REST endpoints (12-14,
 * 25-27) and the WebSocket messages recording-control, live-stream-start
 * and live-stream-stop. This is control and metadata: who started what,
 * when, for how long; capturing media is the media-plane issue. Every change
 * is broadcast so a participant always knows it is being recorded. Stream
 * targets carry a secret key: only the redacted form is ever sent or logged. */
#define LOG_MODULE "record"
#include "log.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "guard/redact.h"
#include "guard/sanitize.h"
#include "room/room.h"
#include "room/hub.h"
#include "room/op.h"

#define TARGET_MAX 1024

static void broadcast(struct hub *h, struct room *r, const char *type, json_t *payload) {
  hub_publish(h, r, type, "server", NULL, NULL, payload);
}

enum api_err op_recording_start(struct hub *h, struct room *r, const char *by, json_t **out) {
  if (r->hist == NULL) return API_ERR_INTERNAL_ERROR;
  if (history_recording_active(r->hist)) return API_ERR_RECORDING_ALREADY_ACTIVE;
  uint64_t now = hub_now_ms();
  struct recording *rec = history_recording_start(r->hist, by, now);
  if (rec == NULL) return API_ERR_INTERNAL_ERROR;
  log_info("recording_started room=%s recording=%s by=%s", r->id, rec->id, by);
  history_event(r->hist, now, "recording_start", by, rec->id, 0, NULL);
  *out = history_recording_json(rec, now);
  broadcast(h, r, "recording-status", *out);
  return API_OK;
}

static void recording_stop(struct room_history *h, struct recording *rec, const char *by, uint64_t now) {
  rec->stopped_ms = now > rec->started_ms ? now : rec->started_ms + 1;
  snprintf(rec->stopped_by, sizeof(rec->stopped_by), "%s", by);
  history_event(h, now, "recording_stop", by, rec->id, (int64_t)(rec->stopped_ms - rec->started_ms), NULL);
}

enum api_err op_recording_stop(struct hub *h, struct room *r, const char *id, const char *by,
                                   json_t **out) {
  if (r->hist == NULL) return API_ERR_INTERNAL_ERROR;
  struct recording *rec = id ? history_recording_find(r->hist, id) : history_recording_active(r->hist);
  if (rec == NULL) return id ? API_ERR_RECORDING_NOT_FOUND : API_ERR_RECORDING_NOT_ACTIVE;
  if (rec->stopped_ms) return API_ERR_RECORDING_NOT_ACTIVE;
  uint64_t now = hub_now_ms();
  recording_stop(r->hist, rec, by, now);
  log_info("recording_stopped room=%s recording=%s by=%s", r->id, rec->id, by);
  *out = history_recording_json(rec, now);
  broadcast(h, r, "recording-status", *out);
  return API_OK;
}

/* Checks an rtmp:// or rtmps:// URL with a host and at least app/key in its
 * path, and writes the redacted form: the last path segment (the key) and
 * any query string masked. Returns 0 or -1. */
static int stream_target(const char *url, size_t len, char *redacted, size_t red_len) {
  size_t scheme;
  if (len >= 7 && strncasecmp(url, "rtmp://", 7) == 0) scheme = 7;
  else if (len >= 8 && strncasecmp(url, "rtmps://", 8) == 0) scheme = 8;
  else return -1;
  if (len > TARGET_MAX) return -1;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '"' || url[i] == '\'' ||
        url[i] == '\\' || url[i] == '<' || url[i] == '>')
      return -1;
  const char *host = url + scheme, *end = url + len;
  const char *slash = memchr(host, '/', (size_t)(end - host));
  if (slash == NULL || slash == host) return -1;
  for (const char *p = host; p < slash; p++) {
    if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
      return -1; /* no user:password@ in a target */
  }
  /* Masked by structure: key, query, fragment (guard/redact.c). */
  return redact_stream_target(url, len, redacted, red_len);
}

enum api_err op_stream_start(struct hub *h, struct room *r, const char *by, json_t *body,
                                 char *detail, size_t detail_len, json_t **out) {
  if (r->hist == NULL) return API_ERR_INTERNAL_ERROR;
  json_t *target = json_object_get(body, "target_url"), *name = json_object_get(body, "name");
  char redacted[TARGET_MAX + 16];
  if (!json_is_string(target) ||
      stream_target(json_string_value(target), json_string_length(target), redacted, sizeof(redacted)) != 0) {
    snprintf(detail, detail_len, "target_url must be rtmp://host[:port]/app/stream-key or rtmps://...");
    return API_ERR_INVALID_STREAM_TARGET;
  }
  char clean_name[256] = "live";
  if (name && !json_is_null(name)) {
    struct buf b = {0};
    if (!json_is_string(name) ||
        sanitize_text(json_string_value(name), json_string_length(name), 64, &b) != API_OK ||
        b.len >= sizeof(clean_name)) {
      buf_free(&b);
      snprintf(detail, detail_len, "name must be text of at most 64 characters");
      return API_ERR_INVALID_MESSAGE;
    }
    memcpy(clean_name, b.data, b.len + 1);
    buf_free(&b);
  }
  if (history_streams_active(r->hist) >= HISTORY_MAX_ACTIVE_STREAMS) {
    snprintf(detail, detail_len, "at most %d live streams at once", HISTORY_MAX_ACTIVE_STREAMS);
    return API_ERR_STREAM_LIMIT_REACHED;
  }
  uint64_t now = hub_now_ms();
  struct live_stream *st = history_stream_start(r->hist, clean_name, json_string_value(target),
                                                redacted, by, now);
  if (st == NULL) return API_ERR_INTERNAL_ERROR;
  log_info("stream_started room=%s stream=%s by=%s", r->id, st->id, by);
  history_event(r->hist, now, "stream_start", by, st->id, 0, NULL);
  *out = history_stream_json(st, now);
  broadcast(h, r, "live-stream-start", *out);
  return API_OK;
}

static void stream_stop(struct room_history *h, struct live_stream *st, const char *by, uint64_t now) {
  st->stopped_ms = now > st->started_ms ? now : st->started_ms + 1;
  snprintf(st->stopped_by, sizeof(st->stopped_by), "%s", by);
  history_event(h, now, "stream_stop", by, st->id, (int64_t)(st->stopped_ms - st->started_ms), NULL);
}

enum api_err op_stream_stop(struct hub *h, struct room *r, const char *id, const char *by,
                                json_t **out) {
  if (r->hist == NULL) return API_ERR_INTERNAL_ERROR;
  struct live_stream *st = history_stream_find(r->hist, id);
  if (st == NULL) return API_ERR_STREAM_NOT_FOUND;
  if (st->stopped_ms) return API_ERR_STREAM_NOT_ACTIVE;
  uint64_t now = hub_now_ms();
  stream_stop(r->hist, st, by, now);
  log_info("stream_stopped room=%s stream=%s by=%s", r->id, st->id, by);
  *out = history_stream_json(st, now);
  broadcast(h, r, "live-stream-stop", *out);
  return API_OK;
}

void op_media_stop_all(struct hub *h, struct room_history *hist) {
  uint64_t now = hub_now_ms();
  struct recording *rec = history_recording_active(hist);
  if (rec) recording_stop(hist, rec, "server", now);
  for (size_t i = 0; i < hist->nstreams; i++)
    if (hist->streams[i].stopped_ms == 0) stream_stop(hist, &hist->streams[i], "server", now);
}

