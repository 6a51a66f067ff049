/* The error taxonomy: every code huddle puts on the wire, in one table.
 * Each code has an HTTP status, a message and a recovery suggestion.
 * New codes go last and are never renumbered; docs/protocol.md lists them all. */
#ifndef HUDDLE_GUARD_ERRORS_H
#define HUDDLE_GUARD_ERRORS_H

enum api_err {
  API_OK = 0,
  /* authentication */
  API_ERR_UNAUTHORIZED,
  API_ERR_INVALID_TOKEN,
  API_ERR_TOKEN_EXPIRED,
  API_ERR_TOKEN_NOT_YET_VALID,
  API_ERR_TOKEN_ROOM_MISMATCH,
  API_ERR_FORBIDDEN,
  API_ERR_PERMISSION_DENIED,
  /* rate limiting */
  API_ERR_RATE_LIMIT_EXCEEDED,
  API_ERR_TOO_MANY_MESSAGES,
  API_ERR_TOO_MANY_CONNECTIONS,
  /* capacity */
  API_ERR_ROOM_FULL,
  API_ERR_MAX_PARTICIPANTS_REACHED,
  API_ERR_SERVER_FULL,
  /* room state */
  API_ERR_ROOM_NOT_FOUND,
  API_ERR_ROOM_LOCKED,
  API_ERR_ROOM_CLOSED,
  API_ERR_INVALID_ROOM_ID,
  /* participant */
  API_ERR_USER_NOT_IN_ROOM,
  API_ERR_USER_BANNED,
  API_ERR_INVALID_USER_ID,
  API_ERR_TARGET_NOT_FOUND,
  API_ERR_SESSION_REPLACED,
  /* media and signaling */
  API_ERR_INVALID_SDP,
  API_ERR_ICE_CANDIDATE_FAILED,
  API_ERR_INVALID_ICE_CANDIDATE,
  /* messages and requests */
  API_ERR_INVALID_JSON,
  API_ERR_DUPLICATE_KEY,
  API_ERR_JSON_TOO_DEEP,
  API_ERR_JSON_TOO_LARGE,
  API_ERR_INVALID_MESSAGE,
  API_ERR_UNKNOWN_MESSAGE_TYPE,
  API_ERR_SERVER_ONLY_MESSAGE,
  API_ERR_MESSAGE_TOO_LARGE,
  API_ERR_NOT_IMPLEMENTED,
  API_ERR_BAD_REQUEST,
  API_ERR_NOT_FOUND,
  API_ERR_METHOD_NOT_ALLOWED,
  API_ERR_PAYLOAD_TOO_LARGE,
  API_ERR_HEADERS_TOO_LARGE,
  API_ERR_REQUEST_TIMEOUT,
  API_ERR_UNSUPPORTED_MEDIA_TYPE,
  API_ERR_UPGRADE_REQUIRED,
  /* chat, files, recording, streaming (used by later issues) */
  API_ERR_CHAT_DISABLED,
  API_ERR_MESSAGE_TOO_LONG,
  API_ERR_FILE_TOO_LARGE,
  API_ERR_FILE_TYPE_NOT_ALLOWED,
  API_ERR_RECORDING_ALREADY_ACTIVE,
  API_ERR_RECORDING_NOT_FOUND,
  API_ERR_STREAM_NOT_FOUND,
  API_ERR_INVALID_STREAM_TARGET,
  /* server */
  API_ERR_INTERNAL_ERROR,
  API_ERR_SERVICE_UNAVAILABLE,
  API_ERR_SHUTTING_DOWN,
  /* added with chat, files, recording, streaming, analytics */
  API_ERR_REACTIONS_DISABLED,
  API_ERR_INVALID_REACTION,
  API_ERR_MESSAGE_NOT_FOUND,
  API_ERR_TRANSFER_NOT_FOUND,
  API_ERR_TRANSFER_STATE,
  API_ERR_INVALID_FILE_NAME,
  API_ERR_RECORDING_NOT_ACTIVE,
  API_ERR_STREAM_LIMIT_REACHED,
  API_ERR_STREAM_NOT_ACTIVE,
  API_ERR_INVALID_STATS,
  API_ERR_UNKNOWN_LIMIT_TYPE,
  /* added with room control */
  API_ERR_INVALID_ROLE,
  API_ERR_INVALID_SETTINGS,
  API_ERR_HAND_ALREADY_RAISED,
  API_ERR_HAND_NOT_RAISED,
  API_ERR_IN_WAITING_ROOM,
  API_ERR_WAITING_USER_NOT_FOUND,
  API_ERR_BREAKOUT_NOT_FOUND,
  API_ERR_BREAKOUT_LIMIT_REACHED,
  API_ERR_INSUFFICIENT_RANK,
  /* added with reconnection */
  API_ERR_RESUME_EXPIRED,
  API_ERR_RESUME_GAP,
  API_ERR_RESUME_INVALID,
  /* added with room management */
  API_ERR_ROOM_ALREADY_EXISTS,
  API_ERR_PEER_ANSWER_REFUSED,
  API_ERR__COUNT
};

struct api_err_info {
  const char *code;     /* SCREAMING_SNAKE_CASE wire code */
  int status;           /* HTTP status for REST and upgrade refusals */
  const char *message;  /* what happened, for people */
  const char *recovery; /* what the client should do next */
};

/* Returns the table row for e; an out-of-range e yields INTERNAL_ERROR. */
const struct api_err_info *api_err_info(enum api_err e);
const char *api_err_code(enum api_err e);
int api_err_status(enum api_err e);

#endif
