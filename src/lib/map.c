/* String-keyed hash map (see map.h). FNV-1a, doubling at load factor 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/map.h"

uint64_t map_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void *map_get(const struct map *m, const char *key) {
  if (m->nbuckets == 0) return NULL;
  for (struct map_entry *e = m->buckets[map_hash(key) & (m->nbuckets - 1)]; e; e = e->next)
    if (strcmp(e->key, key) == 0) return e->value;
  return NULL;
}

const char *map_key(const struct map *m, const char *key) {
  if (m->nbuckets == 0) return NULL;
  for (struct map_entry *e = m->buckets[map_hash(key) & (m->nbuckets - 1)]; e; e = e->next)
    if (strcmp(e->key, key) == 0) return e->key;
  return NULL;
}

static int grow(struct map *m) {
  size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
  struct map_entry **b = calloc(n, sizeof(*b));
  if (b == NULL) return -1;
  for (size_t i = 0; i < m->nbuckets; i++) {
    struct map_entry *e = m->buckets[i];
    while (e) {
      struct map_entry *next = e->next;
      size_t j = map_hash(e->key) & (n - 1);
      e->next = b[j];
      b[j] = e;
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = b;
  m->nbuckets = n;
  return 0;
}

int map_put(struct map *m, const char *key, void *value) {
  if (m->nbuckets) {
    for (struct map_entry *e = m->buckets[map_hash(key) & (m->nbuckets - 1)]; e; e = e->next) {
      if (strcmp(e->key, key) == 0) {
        e->value = value;
        return 0;
      }
    }
  }
  if (m->count >= m->nbuckets && grow(m) != 0) return -1;
  size_t klen = strlen(key);
  struct map_entry *e = malloc(sizeof(*e) + klen + 1);
  if (e == NULL) return -1;
  memcpy(e->key, key, klen + 1);
  e->value = value;
  size_t i = map_hash(key) & (m->nbuckets - 1);
  e->next = m->buckets[i];
  m->buckets[i] = e;
  m->count++;
  return 0;
}

void *map_del(struct map *m, const char *key) {
  if (m->nbuckets == 0) return NULL;
  struct map_entry **pp = &m->buckets[map_hash(key) & (m->nbuckets - 1)];
  for (; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->key, key) == 0) {
      struct map_entry *e = *pp;
      void *v = e->value;
      *pp = e->next;
      free(e);
      m->count--;
      return v;
    }
  }
  return NULL;
}

void map_each(const struct map *m, void (*fn)(const char *, void *, void *), void *arg) {
  for (size_t i = 0; i < m->nbuckets; i++)
    for (struct map_entry *e = m->buckets[i]; e; e = e->next) fn(e->key, e->value, arg);
}

void map_free(struct map *m) {
  for (size_t i = 0; i < m->nbuckets; i++) {
    struct map_entry *e = m->buckets[i];
    while (e) {
      struct map_entry *next = e->next;
      free(e);
      e = next;
    }
  }
  free(m->buckets);
  m->buckets = NULL;
  m->nbuckets = m->count = 0;
}
