/* Role names and default permission sets (see perm.h). */
#include <string.h>

#include "auth/perm.h"

static const char *role_names[ROOM_ROLE__COUNT] = {
  [ROOM_ROLE_VIEWER] = "viewer",
  [ROOM_ROLE_PARTICIPANT] = "participant",
  [ROOM_ROLE_MODERATOR] = "moderator",
  [ROOM_ROLE_HOST] = "host",
};

static const char *perm_names[PERM__COUNT] = {
  "can_publish_audio", "can_publish_video", "can_share_screen", "can_chat",
  "can_share_files", "can_react", "can_raise_hand", "can_record",
  "can_stream", "can_moderate",
};

#define PERM_ALL ((1u << PERM__COUNT) - 1)
#define PERM_MEMBER (PERM_PUBLISH_AUDIO | PERM_PUBLISH_VIDEO | PERM_SHARE_SCREEN | \
                     PERM_CHAT | PERM_SHARE_FILES | PERM_REACT | PERM_RAISE_HAND)

const char *perm_role_name(enum room_role r) {
  if ((int)r < 0 || r >= ROOM_ROLE__COUNT) return "participant";
  return role_names[r];
}

int perm_role_parse(const char *s, enum room_role *out) {
  for (int i = 0; i < ROOM_ROLE__COUNT; i++) {
    if (strcmp(s, role_names[i]) == 0) {
      *out = (enum room_role)i;
      return 0;
    }
  }
  return -1;
}

uint32_t perm_role_defaults(enum room_role r) {
  switch (r) {
  case ROOM_ROLE_HOST: return PERM_ALL;
  case ROOM_ROLE_MODERATOR: return PERM_ALL;
  case ROOM_ROLE_PARTICIPANT: return PERM_MEMBER;
  case ROOM_ROLE_VIEWER: return PERM_CHAT | PERM_REACT | PERM_RAISE_HAND;
  default: return 0;
  }
}

const char *perm_name(int i) {
  return (i >= 0 && i < PERM__COUNT) ? perm_names[i] : NULL;
}

uint32_t perm_parse(const char *name) {
  for (int i = 0; i < PERM__COUNT; i++)
    if (strcmp(name, perm_names[i]) == 0) return 1u << i;
  return 0;
}
