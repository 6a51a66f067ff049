/* A string-keyed hash map with chaining, for rooms, participants and
 * per-address counters. Keys are copied; values are borrowed pointers. */
#ifndef HUDDLE_LIB_MAP_H
#define HUDDLE_LIB_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map_entry {
  struct map_entry *next;
  void *value;
  char key[];
};

struct map {
  struct map_entry **buckets; /* owned */
  size_t nbuckets;            /* power of two, or 0 before the first put */
  size_t count;
};

void *map_get(const struct map *m, const char *key);
/* Sets key to value (replacing). Returns 0, or -1 on allocation failure. */
int map_put(struct map *m, const char *key, void *value);
/* The map's own copy of key (valid until key is removed), or NULL. */
const char *map_key(const struct map *m, const char *key);
/* The string hash the map uses (FNV-1a, 64 bits), for intrusive indexes
 * keyed by an id inside their records (room members, policy records). */
uint64_t map_hash(const char *s);
/* Removes key; returns its value or NULL. */
void *map_del(struct map *m, const char *key);
/* Calls fn for each entry; fn must not modify the map. */
void map_each(const struct map *m, void (*fn)(const char *key, void *value, void *arg), void *arg);
void map_free(struct map *m);

#endif
