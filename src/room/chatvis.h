/* Who could see which recent chat message: private messages are visible to
 * their sender and recipient only, so a reply (reply_to) may only name a
 * message its author could see, and the answer to one that it could not is
 * the same as for a message that does not exist. */
#ifndef HUDDLE_ROOM_CHATVIS_H
#define HUDDLE_ROOM_CHATVIS_H

#include <stdint.h>

struct room;

/* Records that the chat message with seq was private between from and to. */
void chatvis_private(struct room *r, uint64_t seq, const char *from, const char *to);
/* 1 if user could see recent chat message seq (the caller checked it is
 * a recent chat message). */
int chatvis_visible(const struct room *r, uint64_t seq, const char *user);
void chatvis_free(struct room *r);

#endif
