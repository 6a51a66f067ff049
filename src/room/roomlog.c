/* The room log (see roomlog.h): a ring that grows up to max entries. */
#include <stdlib.h>
#include <string.h>

#include "room/roomlog.h"

#define FIRST_CAP 16

void roomlog_init(struct roomlog *l, size_t max, size_t max_bytes, uint64_t max_age_ms) {
  memset(l, 0, sizeof(*l));
  l->max = max ? max : 1;
  l->max_bytes = max_bytes;
  l->max_age_ms = max_age_ms;
}

static struct roomlog_entry *slot(const struct roomlog *l, size_t i) {
  return &l->ring[(l->head + i) % l->cap];
}

/* Where a compact entry's length and data start in ids: after three strings. */
static const char *data_at(const char *ids) {
  for (int i = 0; i < 3; i++) ids += strlen(ids) + 1;
  return ids;
}

const void *roomlog_entry_data(const struct roomlog_entry *e, size_t *len) {
  if (e->frame || e->ids == NULL) return NULL;
  const char *d = data_at(e->ids);
  uint16_t n;
  memcpy(&n, d, sizeof(n));
  *len = n;
  return d + sizeof(n);
}

/* Bytes e counts against max_bytes. */
static size_t entry_bytes(const struct roomlog_entry *e) {
  size_t n = 0;
  if (e->frame) return e->frame->len;
  roomlog_entry_data(e, &n);
  return n;
}

static void drop_oldest(struct roomlog *l) {
  struct roomlog_entry *e = slot(l, 0);
  l->dropped_seq = e->seq;
  l->bytes -= entry_bytes(e);
  outbuf_unref(e->frame);
  e->frame = NULL;
  free(e->ids);
  e->ids = NULL;
  l->head = (l->head + 1) % l->cap;
  l->n--;
}

/* Grows the ring by half (up to max), keeping entries in order: every room
 * has one, so its slack is part of each member's cost (doubling left a
 * quarter of the slots empty on average, growing by half a sixth). */
static int grow(struct roomlog *l) {
  size_t cap = l->cap ? l->cap + l->cap / 2 : FIRST_CAP;
  if (cap > l->max) cap = l->max;
  struct roomlog_entry *ring = malloc(cap * sizeof(*ring));
  if (ring == NULL) return -1;
  for (size_t i = 0; i < l->n; i++) ring[i] = *slot(l, i);
  free(l->ring);
  l->ring = ring;
  l->cap = cap;
  l->head = 0;
  return 0;
}

/* "to\0except\0also\0" in one allocation with extra bytes after it, or
 * NULL when all are empty and extra is 0 (*failed set when it could not be
 * allocated). */
static char *pack_ids(const char *to, const char *except, const char *also, size_t extra, int *failed) {
  const char *v[3] = {to, except, also};
  size_t n[3], total = 0;
  for (int i = 0; i < 3; i++) total += n[i] = v[i] ? strnlen(v[i], ID_MAX) : 0;
  *failed = 0;
  if (total == 0 && extra == 0) return NULL;
  char *p = malloc(total + 3 + extra), *w = p;
  if (p == NULL) return *failed = 1, NULL;
  for (int i = 0; i < 3; i++) {
    memcpy(w, n[i] ? v[i] : "", n[i]);
    w[n[i]] = '\0';
    w += n[i] + 1;
  }
  return p;
}

int roomlog_append(struct roomlog *l, uint64_t seq, uint64_t now_ms, int type, struct outbuf *frame,
                   const char *to, const char *except, const char *also, uint32_t only_perm) {
  roomlog_trim(l, now_ms);
  if (l->n == l->cap && l->cap < l->max && grow(l) != 0) {
    l->dropped_seq = seq; /* a hole: resumes from before seq report a gap */
    return -1;
  }
  int failed;
  char *ids = pack_ids(to, except, also, 0, &failed);
  if (failed) {
    l->dropped_seq = seq;
    return -1;
  }
  if (l->n == l->cap) drop_oldest(l);
  /* Bytes too: a room relaying large SDPs must not hold minutes of them. */
  while (l->n && l->bytes + frame->len > l->max_bytes) drop_oldest(l);
  struct roomlog_entry *e = slot(l, l->n);
  e->seq = seq;
  e->ts_ms = now_ms;
  e->frame = outbuf_ref(frame);
  e->only_perm = only_perm;
  e->type = type;
  e->ids = ids;
  l->bytes += frame->len;
  l->n++;
  return 0;
}

int roomlog_compact(struct roomlog *l, size_t i, const void *data, size_t len) {
  if (i >= l->n || len > UINT16_MAX) return -1;
  struct roomlog_entry *e = slot(l, i);
  if (e->frame == NULL) return -1;
  const char *to = "", *except = "", *also = "";
  if (e->ids) {
    to = e->ids;
    except = to + strlen(to) + 1;
    also = except + strlen(except) + 1;
  }
  int failed;
  uint16_t n = (uint16_t)len;
  char *ids = pack_ids(to, except, also, sizeof(n) + len, &failed);
  if (ids == NULL) return -1;
  char *d = (char *)data_at(ids);
  memcpy(d, &n, sizeof(n));
  memcpy(d + sizeof(n), data, len);
  l->bytes -= e->frame->len;
  l->bytes += len;
  outbuf_unref(e->frame);
  e->frame = NULL;
  free(e->ids);
  e->ids = ids;
  return 0;
}

void roomlog_trim(struct roomlog *l, uint64_t now_ms) {
  while (l->n && slot(l, 0)->ts_ms + l->max_age_ms < now_ms) drop_oldest(l);
}

int roomlog_covers(const struct roomlog *l, uint64_t after_seq) {
  return l->dropped_seq <= after_seq;
}

int roomlog_entry_for(const struct roomlog_entry *e, const char *user_id, uint32_t perms) {
  if (e->ids) {
    const char *to = e->ids, *except = to + strlen(to) + 1, *also = except + strlen(except) + 1;
    if (to[0]) return strcmp(to, user_id) == 0 || (also[0] && strcmp(also, user_id) == 0);
    if (except[0] && strcmp(except, user_id) == 0) return 0;
  }
  return (perms & e->only_perm) == e->only_perm;
}

const struct roomlog_entry *roomlog_at(const struct roomlog *l, size_t i) { return slot(l, i); }

size_t roomlog_find_after(const struct roomlog *l, uint64_t after_seq) {
  size_t lo = 0, hi = l->n; /* seqs increase along the ring: binary search */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (slot(l, mid)->seq <= after_seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

void roomlog_free(struct roomlog *l) {
  while (l->n) drop_oldest(l);
  free(l->ring);
  memset(l, 0, sizeof(*l));
}

void roomlog_edit(struct roomlog *l, roomlog_edit_cb fn, void *arg) {
  size_t w = 0, n = l->n;
  for (size_t i = 0; i < n; i++) {
    struct roomlog_entry e = *slot(l, i);
    int drop = 0;
    struct outbuf *frame = fn(arg, &e, &drop);
    if (drop) {
      l->bytes -= entry_bytes(&e);
      outbuf_unref(e.frame);
      free(e.ids);
      outbuf_unref(frame);
      continue;
    }
    if (frame) {
      l->bytes = l->bytes - entry_bytes(&e) + frame->len;
      outbuf_unref(e.frame);
      e.frame = frame;
    }
    *slot(l, w++) = e;
  }
  l->n = w;
}
