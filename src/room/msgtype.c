/* Message type ids and names (see msgtype.h). */
#include <stdlib.h>
#include <string.h>

#include "room/msgtype.h"

struct row {
  const char *name;
  int id;
};

/* Sorted by name for bsearch (test_envelope checks the order). */
static const struct row by_name[] = {
  {"analytics-event", MSG_ANALYTICS_EVENT},
  {"answer", MSG_ANSWER},
  {"breakout-room-assign", MSG_BREAKOUT_ROOM_ASSIGN},
  {"breakout-room-close", MSG_BREAKOUT_ROOM_CLOSE},
  {"breakout-room-create", MSG_BREAKOUT_ROOM_CREATE},
  {"chat-message", MSG_CHAT_MESSAGE},
  {"e2ee-key-exchange", MSG_E2EE_KEY_EXCHANGE},
  {"e2ee-ratchet-update", MSG_E2EE_RATCHET_UPDATE},
  {"error", MSG_ERROR},
  {"file-share-accept", MSG_FILE_SHARE_ACCEPT},
  {"file-share-complete", MSG_FILE_SHARE_COMPLETE},
  {"file-share-offer", MSG_FILE_SHARE_OFFER},
  {"file-share-progress", MSG_FILE_SHARE_PROGRESS},
  {"file-share-reject", MSG_FILE_SHARE_REJECT},
  {"hand-raise", MSG_HAND_RAISE},
  {"hand-raise-queue", MSG_HAND_RAISE_QUEUE},
  {"ice-candidate", MSG_ICE_CANDIDATE},
  {"live-stream-start", MSG_LIVE_STREAM_START},
  {"live-stream-stop", MSG_LIVE_STREAM_STOP},
  {"media-control", MSG_MEDIA_CONTROL},
  {"network-stats", MSG_NETWORK_STATS},
  {"offer", MSG_OFFER},
  {"participant-update", MSG_PARTICIPANT_UPDATE},
  {"permission-updated", MSG_PERMISSION_UPDATED},
  {"quality-update", MSG_QUALITY_UPDATE},
  {"reaction", MSG_REACTION},
  {"recording-control", MSG_RECORDING_CONTROL},
  {"recording-status", MSG_RECORDING_STATUS},
  {"role-updated", MSG_ROLE_UPDATED},
  {"room-settings-update", MSG_ROOM_SETTINGS_UPDATE},
  {"room-state", MSG_ROOM_STATE},
  {"screen-share-control", MSG_SCREEN_SHARE_CONTROL},
  {"user-joined", MSG_USER_JOINED},
  {"user-left", MSG_USER_LEFT},
  {"virtual-background-update", MSG_VIRTUAL_BACKGROUND_UPDATE},
  {"waiting-room-admit", MSG_WAITING_ROOM_ADMIT},
  {"waiting-room-join", MSG_WAITING_ROOM_JOIN},
  {"waiting-room-reject", MSG_WAITING_ROOM_REJECT},
};

#define NROWS (sizeof(by_name) / sizeof(by_name[0]))

static const char *const names[MSG__COUNT] = {
  [MSG_ANALYTICS_EVENT] = "analytics-event",
  [MSG_ANSWER] = "answer",
  [MSG_BREAKOUT_ROOM_ASSIGN] = "breakout-room-assign",
  [MSG_BREAKOUT_ROOM_CLOSE] = "breakout-room-close",
  [MSG_BREAKOUT_ROOM_CREATE] = "breakout-room-create",
  [MSG_CHAT_MESSAGE] = "chat-message",
  [MSG_E2EE_KEY_EXCHANGE] = "e2ee-key-exchange",
  [MSG_E2EE_RATCHET_UPDATE] = "e2ee-ratchet-update",
  [MSG_ERROR] = "error",
  [MSG_FILE_SHARE_ACCEPT] = "file-share-accept",
  [MSG_FILE_SHARE_COMPLETE] = "file-share-complete",
  [MSG_FILE_SHARE_OFFER] = "file-share-offer",
  [MSG_FILE_SHARE_PROGRESS] = "file-share-progress",
  [MSG_FILE_SHARE_REJECT] = "file-share-reject",
  [MSG_HAND_RAISE] = "hand-raise",
  [MSG_HAND_RAISE_QUEUE] = "hand-raise-queue",
  [MSG_ICE_CANDIDATE] = "ice-candidate",
  [MSG_LIVE_STREAM_START] = "live-stream-start",
  [MSG_LIVE_STREAM_STOP] = "live-stream-stop",
  [MSG_MEDIA_CONTROL] = "media-control",
  [MSG_NETWORK_STATS] = "network-stats",
  [MSG_OFFER] = "offer",
  [MSG_PARTICIPANT_UPDATE] = "participant-update",
  [MSG_PERMISSION_UPDATED] = "permission-updated",
  [MSG_QUALITY_UPDATE] = "quality-update",
  [MSG_REACTION] = "reaction",
  [MSG_RECORDING_CONTROL] = "recording-control",
  [MSG_RECORDING_STATUS] = "recording-status",
  [MSG_ROLE_UPDATED] = "role-updated",
  [MSG_ROOM_SETTINGS_UPDATE] = "room-settings-update",
  [MSG_ROOM_STATE] = "room-state",
  [MSG_SCREEN_SHARE_CONTROL] = "screen-share-control",
  [MSG_USER_JOINED] = "user-joined",
  [MSG_USER_LEFT] = "user-left",
  [MSG_VIRTUAL_BACKGROUND_UPDATE] = "virtual-background-update",
  [MSG_WAITING_ROOM_ADMIT] = "waiting-room-admit",
  [MSG_WAITING_ROOM_JOIN] = "waiting-room-join",
  [MSG_WAITING_ROOM_REJECT] = "waiting-room-reject",
};

static int cmp_row(const void *key, const void *row) {
  return strcmp(key, ((const struct row *)row)->name);
}

int msg_type_id(const char *name) {
  const struct row *r = bsearch(name, by_name, NROWS, sizeof(by_name[0]), cmp_row);
  return r ? r->id : -1;
}

const char *msg_type_name(int id) {
  if (id < 0 || id >= MSG__COUNT) return NULL;
  return names[id];
}
