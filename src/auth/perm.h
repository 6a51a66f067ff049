/* Roles and permissions: the four roles, the permission names, and each
 * role's default permission set. Enforcement lives with the handlers; this
 * module only answers "what may this role do" and parses the names. */
#ifndef HUDDLE_AUTH_PERM_H
#define HUDDLE_AUTH_PERM_H

#include <stdint.h>

/* Ordered: a higher value outranks a lower one. */
enum room_role {
  ROOM_ROLE_VIEWER = 0,
  ROOM_ROLE_PARTICIPANT,
  ROOM_ROLE_MODERATOR,
  ROOM_ROLE_HOST,
  ROOM_ROLE__COUNT
};

enum perm_bit {
  PERM_PUBLISH_AUDIO = 1u << 0,
  PERM_PUBLISH_VIDEO = 1u << 1,
  PERM_SHARE_SCREEN = 1u << 2,
  PERM_CHAT = 1u << 3,
  PERM_SHARE_FILES = 1u << 4,
  PERM_REACT = 1u << 5,
  PERM_RAISE_HAND = 1u << 6,
  PERM_RECORD = 1u << 7,
  PERM_STREAM = 1u << 8,
  PERM_MODERATE = 1u << 9,
};
#define PERM__COUNT 10

/* Returns "host", "moderator", "participant" or "viewer". */
const char *perm_role_name(enum room_role r);
/* Parses a role name; returns 0 and sets *out, or -1 if unknown. */
int perm_role_parse(const char *s, enum room_role *out);
/* The default permission bits of role r. */
uint32_t perm_role_defaults(enum room_role r);
/* Wire name of permission i (0 <= i < PERM__COUNT), e.g. "can_chat". */
const char *perm_name(int i);
/* Returns the bit for a wire name, or 0 if the name is unknown. */
uint32_t perm_parse(const char *name);

#endif
