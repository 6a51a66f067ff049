/* network-stats, quality-update, analytics-event, virtual-background-update:
 * per-participant state that is validated, kept, shared with whoever needs
 * it, and folded into the room's analytics. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "net/server.h"
#include "room/room.h"
#include "signal/signal.h"

#define ANALYTICS_PROPS_MAX 2048

struct stat_field { const char *name; double max; };

/* Every field network-stats accepts, with its range (minimum 0). */
static const struct stat_field stat_fields[] = {
  {"rtt_ms", 60000}, {"jitter_ms", 60000}, {"packet_loss", 100}, {"bitrate_kbps", 10000000},
  {"available_bitrate_kbps", 10000000}, {"fps", 240}, {"width", 16384}, {"height", 16384},
};

static double num(json_t *o, const char *k, double dflt) {
  json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

/* The quality bucket of a sample: the thresholds of common practice for
 * interactive audio/video (loss above 5 % or RTT above 400 ms is poor). */
static enum quality_bucket bucket(json_t *stats) {
  double loss = num(stats, "packet_loss", 0), rtt = num(stats, "rtt_ms", 0), jit = num(stats, "jitter_ms", 0);
  if (loss > 5 || rtt > 400 || jit > 100) return QUALITY_POOR;
  if (loss > 1 || rtt > 150 || jit > 30) return QUALITY_FAIR;
  return QUALITY_GOOD;
}

static const char *bucket_names[QUALITY__COUNT] = {"good", "fair", "poor"};

const char *sig_quality_name(int b) { return b >= 0 && b < QUALITY__COUNT ? bucket_names[b] : "unknown"; }

enum api_err sig_network_stats(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *p = ctx->in->payload;
  const char *k;
  json_t *v;
  size_t known = 0;
  json_object_foreach(p, k, v) {
    size_t i;
    for (i = 0; i < sizeof(stat_fields) / sizeof(stat_fields[0]); i++)
      if (strcmp(k, stat_fields[i].name) == 0) break;
    if (i == sizeof(stat_fields) / sizeof(stat_fields[0])) {
      snprintf(detail, detail_len, "unknown field '%.40s'", k);
      return API_ERR_INVALID_STATS;
    }
    double d = json_is_number(v) ? json_number_value(v) : -1;
    if (!json_is_number(v) || !isfinite(d) || d < 0 || d > stat_fields[i].max) {
      snprintf(detail, detail_len, "%s must be a number from 0 to %.0f", k, stat_fields[i].max);
      return API_ERR_INVALID_STATS;
    }
    known++;
  }
  if (known == 0) {
    snprintf(detail, detail_len, "send at least one of rtt_ms, jitter_ms, packet_loss, bitrate_kbps, fps");
    return API_ERR_INVALID_STATS;
  }
  enum quality_bucket b = bucket(p);
  struct participant_extra *x = room_participant_extra(ctx->self);
  json_t *kept = x ? json_deep_copy(p) : NULL;
  if (kept == NULL) return API_ERR_INTERNAL_ERROR;
  json_object_set_new(kept, "quality", json_string(bucket_names[b]));
  json_object_set_new(kept, "ts", json_integer((json_int_t)hub_now_ms()));
  json_decref(x->net_stats);
  x->net_stats = kept;
  struct room_history *h = ctx->room->hist;
  if (h) {
    h->quality[b]++;
    history_event(h, hub_now_ms(), "quality", ctx->self->user_id, bucket_names[b],
                  (int64_t)num(p, "rtt_ms", 0), NULL);
  }
  /* Hosts and moderators watch the room's network; others need not. */
  struct room_event o = {"network-stats", ctx->self->user_id, NULL, ctx->self->user_id, NULL,
                      PERM_MODERATE, kept, NULL, NULL, 0};
  return hub_send(ctx->hub, ctx->room, &o) ? API_ERR_INTERNAL_ERROR : API_OK;
}

enum api_err sig_quality_update(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *p = ctx->in->payload;
  json_t *q = json_object_get(p, "quality");
  static const char *levels[] = {"low", "medium", "high", "auto"};
  size_t i = 0;
  if (json_is_string(q))
    for (; i < 4; i++) if (strcmp(json_string_value(q), levels[i]) == 0) break;
  if (!json_is_string(q) || i == 4) {
    snprintf(detail, detail_len, "payload.quality must be low, medium, high or auto");
    return API_ERR_INVALID_STATS;
  }
  json_t *out = json_pack("{s:s}", "quality", levels[i]);
  static const struct stat_field limits[] = {{"max_bitrate_kbps", 10000000}, {"width", 16384},
                                             {"height", 16384}, {"fps", 240}};
  for (size_t j = 0; j < 4; j++) {
    json_t *v = json_object_get(p, limits[j].name);
    if (v == NULL) continue;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)limits[j].max) {
      json_decref(out);
      snprintf(detail, detail_len, "%s must be an integer from 0 to %.0f", limits[j].name, limits[j].max);
      return API_ERR_INVALID_STATS;
    }
    json_object_set(out, limits[j].name, v);
  }
  struct participant_extra *x = room_participant_extra(ctx->self);
  if (x == NULL) {
    json_decref(out);
    return API_ERR_INTERNAL_ERROR;
  }
  snprintf(x->quality, sizeof(x->quality), "%s", levels[i]);
  if (ctx->room->hist)
    history_event(ctx->room->hist, hub_now_ms(), "quality_update", ctx->self->user_id, levels[i], 0, NULL);
  int rc = hub_publish(ctx->hub, ctx->room, "quality-update", ctx->self->user_id, NULL, ctx->self->user_id, out);
  json_decref(out);
  return rc ? API_ERR_INTERNAL_ERROR : API_OK;
}

static int event_name_ok(const char *s, size_t len) {
  if (len == 0 || len > 64) return 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-')) return 0;
  }
  return 1;
}

enum api_err sig_analytics_event(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *name = json_object_get(ctx->in->payload, "name");
  json_t *props = json_object_get(ctx->in->payload, "properties");
  if (!json_is_string(name) || !event_name_ok(json_string_value(name), json_string_length(name))) {
    snprintf(detail, detail_len, "payload.name must be 1-64 of [a-z0-9_.-]");
    return API_ERR_INVALID_MESSAGE;
  }
  if (props && !json_is_null(props)) {
    size_t n = json_dumpb(props, NULL, 0, JSON_COMPACT);
    if (!json_is_object(props) || n > ANALYTICS_PROPS_MAX) {
      snprintf(detail, detail_len, "payload.properties must be an object of at most %d bytes", ANALYTICS_PROPS_MAX);
      return API_ERR_INVALID_MESSAGE;
    }
  } else {
    props = NULL;
  }
  if (ctx->room->hist) {
    ctx->room->hist->custom_events++;
    history_event(ctx->room->hist, hub_now_ms(), "custom", ctx->self->user_id,
                  json_string_value(name), 0, props ? json_deep_copy(props) : NULL);
  }
  return API_OK;
}

enum api_err sig_virtual_background_update(struct sig_ctx *ctx, char *detail, size_t detail_len) {
  json_t *p = ctx->in->payload;
  json_t *type = json_object_get(p, "type");
  const char *t = json_is_string(type) ? json_string_value(type) : "";
  json_t *out;
  if (strcmp(t, "none") == 0) {
    out = json_pack("{s:s}", "type", "none");
  } else if (strcmp(t, "blur") == 0) {
    json_t *radius = json_object_get(p, "blur_radius");
    json_int_t r = radius ? (json_is_integer(radius) ? json_integer_value(radius) : -1) : 10;
    if (r < 1 || r > 100) {
      snprintf(detail, detail_len, "blur_radius must be an integer from 1 to 100");
      return API_ERR_INVALID_MESSAGE;
    }
    out = json_pack("{s:s,s:I}", "type", "blur", "blur_radius", r);
  } else if (strcmp(t, "image") == 0) {
    json_t *id = json_object_get(p, "image_id");
    if (!json_is_string(id) || !id_valid(json_string_value(id), json_string_length(id))) {
      snprintf(detail, detail_len, "image_id must be an id of 1-64 [A-Za-z0-9_.-]");
      return API_ERR_INVALID_MESSAGE;
    }
    out = json_pack("{s:s,s:O}", "type", "image", "image_id", id);
  } else {
    snprintf(detail, detail_len, "payload.type must be none, blur or image");
    return API_ERR_INVALID_MESSAGE;
  }
  struct participant_extra *x = room_participant_extra(ctx->self);
  if (x == NULL) {
    json_decref(out);
    return API_ERR_INTERNAL_ERROR;
  }
  json_decref(x->background);
  x->background = out;
  return hub_publish(ctx->hub, ctx->room, "virtual-background-update", ctx->self->user_id, NULL,
                        ctx->self->user_id, out) ? API_ERR_INTERNAL_ERROR : API_OK;
}
