/* The room log: per room, the last messages delivered to its members, as
 * (seq, recipient filter, encoded frame), bounded by count and age. A member
 * that resumes gets the entries after its last_seq that were addressed to it
 * (docs/internals/roomlog.md). Pure data: no I/O, no clock of its own. */
#ifndef HUDDLE_ROOM_ROOMLOG_H
#define HUDDLE_ROOM_ROOMLOG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/ids.h"
#include "lib/outbuf.h"

struct roomlog_entry {
  uint64_t seq;
  uint64_t ts_ms;                 /* when it was appended */
  struct outbuf *frame;           /* one ref, owned by the log; NULL for a compact entry */
  uint32_t only_perm;             /* 0, or only members holding these PERM_* bits */
  int type;                       /* enum msg_type */
  /* The recipient filter, owned: "to\0except\0also\0", or NULL when all
   * three are empty (most entries). to "": every member; except "": nobody
   * left out; also "": no second recipient. Read through roomlog_entry_for.
   * A compact entry keeps its data here too, after the three strings
   * (roomlog_compact). */
  char *ids;
};

struct roomlog {
  struct roomlog_entry *ring;     /* owned; cap slots, n used from head */
  size_t cap, head, n;
  size_t max;                     /* most entries kept */
  size_t bytes, max_bytes;        /* frame bytes held, and most kept */
  uint64_t max_age_ms;            /* entries older than this are dropped */
  uint64_t dropped_seq;           /* highest seq no longer held (0: none dropped) */
};

void roomlog_init(struct roomlog *l, size_t max, size_t max_bytes, uint64_t max_age_ms);
/* Appends an entry; takes its own ref on frame. to/except/also may be NULL.
 * Drops the oldest entries past the bounds. Returns 0, or -1 on allocation
 * failure (the log then no longer covers seq: resumes across it fail with a
 * gap, never with a silent hole). */
int roomlog_append(struct roomlog *l, uint64_t seq, uint64_t now_ms, int type, struct outbuf *frame,
                   const char *to, const char *except, const char *also, uint32_t only_perm);
/* Makes entry i (from the oldest) compact: it keeps len bytes of data (at
 * most 65535) from which its owner renders the frame again at a resume,
 * instead of the frame itself, and counts len bytes against max_bytes.
 * NOTE: for the entries every join adds (user-joined: ~270 bytes of frame
 * against ~40 of data, docs/performance.md). The caller checks that the
 * data renders the same bytes. Returns 0, or -1 (entry unchanged). */
int roomlog_compact(struct roomlog *l, size_t i, const void *data, size_t len);
/* A compact entry's data and its length, or NULL for an entry with a frame. */
const void *roomlog_entry_data(const struct roomlog_entry *e, size_t *len);
/* Drops entries older than max_age_ms at now_ms. */
void roomlog_trim(struct roomlog *l, uint64_t now_ms);
/* 1 if every entry with seq > after_seq is still held. */
int roomlog_covers(const struct roomlog *l, uint64_t after_seq);
/* 1 if e is addressed to user_id holding perms. */
int roomlog_entry_for(const struct roomlog_entry *e, const char *user_id, uint32_t perms);
/* The i-th entry from the oldest (i < l->n). */
const struct roomlog_entry *roomlog_at(const struct roomlog *l, size_t i);
/* Index of the first entry with seq > after_seq (l->n if none). */
size_t roomlog_find_after(const struct roomlog *l, uint64_t after_seq);
/* Goes through the entries oldest first: fn returns a new frame to hold
 * instead (its ref passes to the log) or NULL to keep the entry as it is,
 * and sets *drop to remove the entry (a user's erase, durable.c). */
typedef struct outbuf *(*roomlog_edit_cb)(void *arg, const struct roomlog_entry *e, int *drop);
void roomlog_edit(struct roomlog *l, roomlog_edit_cb fn, void *arg);
void roomlog_free(struct roomlog *l);

#endif
