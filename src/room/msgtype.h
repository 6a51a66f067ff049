/* Message types of the wire protocol with stable numeric ids. An id is
 * given once and never reused or renumbered (like the error table): stats,
 * analytics and the room log key on it. New types go last. Lookup by name
 * is a sorted index, checked by test_envelope. */
#ifndef HUDDLE_ROOM_MSGTYPE_H
#define HUDDLE_ROOM_MSGTYPE_H

enum msg_type {
  MSG_ANALYTICS_EVENT = 0,
  MSG_ANSWER = 1,
  MSG_BREAKOUT_ROOM_ASSIGN = 2,
  MSG_BREAKOUT_ROOM_CLOSE = 3,
  MSG_BREAKOUT_ROOM_CREATE = 4,
  MSG_CHAT_MESSAGE = 5,
  MSG_E2EE_KEY_EXCHANGE = 6,
  MSG_E2EE_RATCHET_UPDATE = 7,
  MSG_ERROR = 8,
  MSG_FILE_SHARE_ACCEPT = 9,
  MSG_FILE_SHARE_COMPLETE = 10,
  MSG_FILE_SHARE_OFFER = 11,
  MSG_FILE_SHARE_PROGRESS = 12,
  MSG_FILE_SHARE_REJECT = 13,
  MSG_HAND_RAISE = 14,
  MSG_HAND_RAISE_QUEUE = 15,
  MSG_ICE_CANDIDATE = 16,
  MSG_LIVE_STREAM_START = 17,
  MSG_LIVE_STREAM_STOP = 18,
  MSG_MEDIA_CONTROL = 19,
  MSG_NETWORK_STATS = 20,
  MSG_OFFER = 21,
  MSG_PARTICIPANT_UPDATE = 22,
  MSG_PERMISSION_UPDATED = 23,
  MSG_QUALITY_UPDATE = 24,
  MSG_REACTION = 25,
  MSG_RECORDING_CONTROL = 26,
  MSG_RECORDING_STATUS = 27,
  MSG_ROLE_UPDATED = 28,
  MSG_ROOM_SETTINGS_UPDATE = 29,
  MSG_ROOM_STATE = 30,
  MSG_SCREEN_SHARE_CONTROL = 31,
  MSG_USER_JOINED = 32,
  MSG_USER_LEFT = 33,
  MSG_VIRTUAL_BACKGROUND_UPDATE = 34,
  MSG_WAITING_ROOM_ADMIT = 35,
  MSG_WAITING_ROOM_JOIN = 36,
  MSG_WAITING_ROOM_REJECT = 37,
  MSG__COUNT
};

/* The wire name of id, or NULL if id is not a type. */
const char *msg_type_name(int id);
/* The id of a wire name, or -1. */
int msg_type_id(const char *name);

#endif
