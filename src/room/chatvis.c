/* Chat visibility (see chatvis.h). A ring of the last ROOM_CHAT_RECENT
 * private messages: any private message still among the room's recent chat
 * messages is in it. */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "room/chatvis.h"
#include "room/room.h"

struct chat_private {
  uint64_t seq;
  char from[ID_MAX + 1], to[ID_MAX + 1];
};

struct chat_vis {
  struct chat_private ring[ROOM_CHAT_RECENT];
  size_t head;
};

void chatvis_private(struct room *r, uint64_t seq, const char *from, const char *to) {
  if (r->chat_vis == NULL && (r->chat_vis = calloc(1, sizeof(*r->chat_vis))) == NULL) return;
  struct chat_private *e = &r->chat_vis->ring[r->chat_vis->head];
  e->seq = seq;
  snprintf(e->from, sizeof(e->from), "%s", from);
  snprintf(e->to, sizeof(e->to), "%s", to);
  r->chat_vis->head = (r->chat_vis->head + 1) % ROOM_CHAT_RECENT;
}

int chatvis_visible(const struct room *r, uint64_t seq, const char *user) {
  if (r->chat_vis == NULL) return 1;
  for (size_t i = 0; i < ROOM_CHAT_RECENT; i++) {
    const struct chat_private *e = &r->chat_vis->ring[i];
    if (e->seq == seq) return strcmp(e->from, user) == 0 || strcmp(e->to, user) == 0;
  }
  return 1;
}

void chatvis_free(struct room *r) {
  free(r->chat_vis);
  r->chat_vis = NULL;
}
