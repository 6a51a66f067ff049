/* Endpoints 12-14 (recordings) and 25-27 (live streams): control and
 * metadata over REST, the same operations the WebSocket messages
 * recording-control and live-stream-start/stop perform (signal/sig_record.c). */
#include <string.h>

#include "api/api.h"
#include "net/server.h"
#include "room/room.h"
#include "room/op.h"

static int live_room(struct api_req *r, enum command_id cmd, struct api_room *ar) {
  if (api_room_access(r, cmd, ar) != 0) return -1;
  if (ar->room == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, "nobody is in this room");
    return -1;
  }
  return 0;
}

static void reply_result(struct api_req *r, enum api_err e, int status, const char *key, json_t *out) {
  if (e != API_OK) {
    json_decref(out);
    api_reply_error(r, e, NULL);
    return;
  }
  api_reply_json(r, status, json_pack("{s:o}", key, out));
}

/* POST /webrtc/rooms/{room_id}/recordings/start */
void api_recordings_start(struct api_req *r) {
  struct api_room ar;
  if (live_room(r, CMD_RECORD, &ar) != 0) return;
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  json_decref(body); /* no options yet: layout and format come with real recording */
  json_t *out = NULL;
  enum api_err e = op_recording_start(r->hub, ar.room, r->claims.sub, &out);
  reply_result(r, e, 201, "recording", out);
}

/* What differs between stopping a recording and stopping a stream. */
struct stopper {
  enum command_id cmd;
  const char *param, *key;
  enum api_err not_found, not_active;
  int (*known)(struct room_history *h, const char *id);
  enum api_err (*stop)(struct hub *h, struct room *r, const char *id, const char *by, json_t **out);
};

static int recording_known(struct room_history *h, const char *id) {
  return history_recording_find(h, id) != NULL;
}

static int stream_known(struct room_history *h, const char *id) {
  return history_stream_find(h, id) != NULL;
}

static void stop_one(struct api_req *r, const struct stopper *k) {
  struct api_room ar;
  char id[40];
  if (api_room_access(r, k->cmd, &ar) != 0) return;
  if (api_param(r, k->param, id, sizeof(id)) < 0) {
    api_reply_error(r, k->not_found, NULL);
    return;
  }
  if (ar.room == NULL) {
    /* Unknown room; or it closed, and what ran in it stopped with it. */
    enum api_err e = ar.hist == NULL ? API_ERR_ROOM_NOT_FOUND
                   : k->known(ar.hist, id) ? k->not_active : k->not_found;
    api_reply_error(r, e, NULL);
    return;
  }
  json_t *out = NULL;
  enum api_err e = k->stop(r->hub, ar.room, id, r->claims.sub, &out);
  reply_result(r, e, 200, k->key, out);
}

/* POST /webrtc/rooms/{room_id}/recordings/{recording_id}/stop */
void api_recordings_stop(struct api_req *r) {
  static const struct stopper k = {CMD_RECORD, "recording_id", "recording", API_ERR_RECORDING_NOT_FOUND,
                                   API_ERR_RECORDING_NOT_ACTIVE, recording_known, op_recording_stop};
  stop_one(r, &k);
}

/* GET /webrtc/rooms/{room_id}/recordings */
void api_recordings_list(struct api_req *r) {
  struct api_room ar;
  if (api_room_access(r, CMD_NONE, &ar) != 0) return;
  if (ar.hist == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return;
  }
  uint64_t now = server_now_ms();
  json_t *list = json_array();
  for (size_t i = 0; i < ar.hist->nrecordings; i++)
    json_array_append_new(list, history_recording_json(&ar.hist->recordings[i], now));
  struct recording *active = history_recording_active(ar.hist);
  api_reply_json(r, 200, json_pack("{s:s,s:o,s:s?}", "room_id", ar.id, "recordings", list, "active",
                                   active ? active->id : NULL));
}

/* POST /webrtc/rooms/{room_id}/live-streams/start  {"target_url": "rtmp://...", "name": "..."} */
void api_live_streams_start(struct api_req *r) {
  struct api_room ar;
  if (live_room(r, CMD_STREAM, &ar) != 0) return;
  json_t *body = api_body_object(r);
  if (body == NULL) return;
  json_t *out = NULL;
  char detail[200] = "";
  enum api_err e = op_stream_start(r->hub, ar.room, r->claims.sub, body, detail, sizeof(detail), &out);
  json_decref(body);
  if (e != API_OK) {
    api_reply_error(r, e, detail);
    return;
  }
  reply_result(r, e, 201, "live_stream", out);
}

/* POST /webrtc/rooms/{room_id}/live-streams/{stream_id}/stop */
void api_live_streams_stop(struct api_req *r) {
  static const struct stopper k = {CMD_STREAM, "stream_id", "live_stream", API_ERR_STREAM_NOT_FOUND,
                                   API_ERR_STREAM_NOT_ACTIVE, stream_known, op_stream_stop};
  stop_one(r, &k);
}

/* GET /webrtc/rooms/{room_id}/live-streams */
void api_live_streams_list(struct api_req *r) {
  struct api_room ar;
  if (api_room_access(r, CMD_NONE, &ar) != 0) return;
  if (ar.hist == NULL) {
    api_reply_error(r, API_ERR_ROOM_NOT_FOUND, NULL);
    return;
  }
  uint64_t now = server_now_ms();
  json_t *list = json_array();
  for (size_t i = 0; i < ar.hist->nstreams; i++)
    json_array_append_new(list, history_stream_json(&ar.hist->streams[i], now));
  api_reply_json(r, 200, json_pack("{s:s,s:o,s:I}", "room_id", ar.id, "live_streams", list,
                                   "active", (json_int_t)history_streams_active(ar.hist)));
}
