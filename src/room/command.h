/* Actions and their one description, shared by both transports: the
 * permission an action needs and the rate class it spends. The WebSocket
 * message table and the REST handlers name a command; command_authorize()
 * is the one place both check permission and rate. Parameters are parsed by
 * each adapter from its own form (a payload, a body, a path) into the
 * arguments of the room operation (op.h), which validates them once. */
#ifndef HUDDLE_ROOM_COMMAND_H
#define HUDDLE_ROOM_COMMAND_H

#include <stdint.h>

#include "room/hub.h"
#include "room/op.h"

enum command_id {
  CMD_NONE = 0,          /* no permission, no rate class beyond the transport's own budget */
  CMD_MODERATE,          /* moderator reads and actions without a budget of their own */
  CMD_CHAT,
  CMD_REACTION,
  CMD_FILE_SHARE,
  CMD_HAND_RAISE,
  CMD_ROLE_SET,
  CMD_PERMISSIONS_SET,
  CMD_SETTINGS_UPDATE,
  CMD_RECORD,
  CMD_STREAM,
  CMD_ROOM_CREATE,       /* POST /webrtc/rooms: spends room_create (who may create: the handler) */
  CMD__COUNT
};

#define COMMAND_NO_RATE (-1)

struct command {
  const char *name;
  uint32_t perm;         /* PERM_* bits the actor must hold (0: none) */
  int rate;              /* enum rate_class spent per allowed call, or COMMAND_NO_RATE */
};

const struct command *command_get(enum command_id id);

#define COMMAND_PERM 0x1   /* check the permission */
#define COMMAND_RATE 0x2   /* spend the rate class (refused: nothing spent) */

/* The one check of an action, for both transports: the permission (what
 * includes COMMAND_PERM), then the rate class (COMMAND_RATE). WebSocket
 * checks both at once; REST checks the permission first and spends the
 * budget once the request proved well-formed. Returns API_OK,
 * API_ERR_PERMISSION_DENIED, or API_ERR_RATE_LIMIT_EXCEEDED with
 * *retry_after_ms and *rate_class set (both may be NULL). */
enum api_err command_authorize(struct hub *h, enum command_id id, const struct actor *a, unsigned what,
                               int64_t *retry_after_ms, int *rate_class);

#endif
