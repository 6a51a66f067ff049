/* Room policy (see policy.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room/durable_policy.h"
#include "room/policy.h"
#include "room/room.h"
#include "room/hub.h"

struct room *policy_root(struct hub *h, struct room *r) {
  if (r == NULL || r->parent[0] == '\0') return r;
  return hub_room_find(h, r->parent);
}

static struct room_policy *pol(struct room *root, int create) {
  if (root == NULL) return NULL;
  if (root->policy == NULL && create) root->policy = calloc(1, sizeof(*root->policy));
  return root->policy;
}

/* ---- the records' index: a chained hash table keyed by the id inside ---- */

static void rec_free(struct policy_rec *rec) {
  if (rec == NULL) return;
  free(rec->name);
  free(rec);
}

struct policy_rec *policy_rec_get(const struct room_policy *p, const char *user) {
  if (p == NULL || p->nbuckets == 0) return NULL;
  for (struct policy_rec *rec = p->buckets[(uint32_t)map_hash(user) & (p->nbuckets - 1)]; rec; rec = rec->next)
    if (strcmp(rec->user, user) == 0) return rec;
  return NULL;
}

void policy_rec_del(struct room_policy *p, const char *user) {
  if (p == NULL || p->nbuckets == 0) return;
  for (struct policy_rec **pp = &p->buckets[(uint32_t)map_hash(user) & (p->nbuckets - 1)]; *pp; pp = &(*pp)->next) {
    if (strcmp((*pp)->user, user) == 0) {
      struct policy_rec *rec = *pp;
      *pp = rec->next;
      p->count--;
      rec_free(rec);
      return;
    }
  }
}

/* Doubles the index (8 chains at first), at load factor 2: chains of one or
 * two records cost a compare more, and the buckets are half the bytes a
 * member (6.4 in rooms of 20, against 12.8 at load factor 1). */
static int index_grow(struct room_policy *p) {
  uint32_t n = p->nbuckets ? p->nbuckets * 2 : 8;
  struct policy_rec **b = calloc(n, sizeof(*b));
  if (b == NULL) return -1;
  for (uint32_t i = 0; i < p->nbuckets; i++) {
    for (struct policy_rec *rec = p->buckets[i], *next; rec; rec = next) {
      next = rec->next;
      uint32_t j = (uint32_t)map_hash(rec->user) & (n - 1);
      rec->next = b[j];
      b[j] = rec;
    }
  }
  free(p->buckets);
  p->buckets = b;
  p->nbuckets = n;
  return 0;
}

struct policy_rec *policy_rec_add(struct room_policy *p, const char *user) {
  policy_rec_del(p, user);
  if (p->count >= 2 * p->nbuckets && index_grow(p) != 0) return NULL;
  size_t len = strlen(user);
  struct policy_rec *rec = calloc(1, offsetof(struct policy_rec, user) + len + 1);
  if (rec == NULL) return NULL;
  memcpy(rec->user, user, len + 1);
  uint32_t i = (uint32_t)map_hash(user) & (p->nbuckets - 1);
  rec->next = p->buckets[i];
  p->buckets[i] = rec;
  p->count++;
  return rec;
}

void policy_each(const struct room_policy *p, void (*fn)(const char *user, void *rec, void *arg), void *arg) {
  if (p == NULL) return;
  for (uint32_t i = 0; i < p->nbuckets; i++)
    for (struct policy_rec *rec = p->buckets[i]; rec; rec = rec->next) fn(rec->user, rec, arg);
}

void policy_users_free(struct room_policy *p) {
  if (p == NULL) return;
  for (uint32_t i = 0; i < p->nbuckets; i++) {
    for (struct policy_rec *rec = p->buckets[i], *next; rec; rec = next) {
      next = rec->next;
      rec_free(rec);
    }
  }
  free(p->buckets);
  p->buckets = NULL;
  p->nbuckets = p->count = 0;
}

static struct policy_rec *rec_of(struct hub *h, struct room *r, const char *user, int create) {
  struct room_policy *p = pol(policy_root(h, r), create);
  if (p == NULL) return NULL;
  struct policy_rec *rec = policy_rec_get(p, user);
  if (rec == NULL && create) rec = policy_rec_add(p, user);
  return rec;
}

const struct policy_rec *policy_find(struct hub *h, const char *room_id, const char *user) {
  return rec_of(h, hub_room_find(h, room_id), user, 0);
}

void policy_admitted(struct hub *h, struct room *r, const struct token_claims *c) {
  struct policy_rec *rec = rec_of(h, r, c->sub, 1);
  if (rec == NULL || rec->admitted) return;
  rec->admitted = 1;
  free(rec->name);
  rec->name = c->name[0] ? strdup(c->name) : NULL; /* NULL on failure: read as "" */
  rec->base_role = (uint8_t)c->role;
  rec->base_set = c->perms_set;
  rec->base_val = c->perms_val & c->perms_set;
  struct room_policy *p = pol(policy_root(h, r), 0);
  if (p) map_del(&p->rejected, c->sub);
}

void policy_note_role(struct hub *h, struct room *r, const char *user, enum room_role role) {
  struct policy_rec *rec = rec_of(h, r, user, 1);
  if (rec == NULL) return;
  rec->has_role = 1;
  rec->role = (uint8_t)role;
}

void policy_note_perms(struct hub *h, struct room *r, const char *user, uint32_t set, uint32_t val) {
  struct policy_rec *rec = rec_of(h, r, user, 1);
  if (rec == NULL) return;
  rec->has_perms = 1;
  rec->set = set;
  rec->val = val & set;
}

void policy_note_rejected(struct hub *h, struct room *r, const char *user, int rejected) {
  struct room_policy *p = pol(policy_root(h, r), rejected);
  if (p == NULL) return;
  if (rejected) map_put(&p->rejected, user, (void *)1);
  else map_del(&p->rejected, user);
}

static void overlay(const struct policy_rec *rec, struct token_claims *c) {
  if (rec->has_role) c->role = (enum room_role)rec->role;
  if (rec->has_perms) {
    c->perms_set = rec->set;
    c->perms_val = rec->val;
  }
}

void policy_apply(struct hub *h, const char *room_id, struct token_claims *c) {
  if (c->admin) return;
  const struct policy_rec *rec = policy_find(h, room_id, c->sub);
  if (rec) overlay(rec, c);
  else if (hub_room_find(h, room_id) == NULL) durable_policy_overlay(h, room_id, c); /* restored when it opens */
}

int policy_member_claims(struct hub *h, const char *room_id, const char *user, struct token_claims *out) {
  const struct policy_rec *rec = policy_find(h, room_id, user);
  if (rec == NULL || !rec->admitted) return -1;
  memset(out, 0, sizeof(*out));
  snprintf(out->sub, sizeof(out->sub), "%s", user);
  snprintf(out->name, sizeof(out->name), "%s", rec->name ? rec->name : "");
  snprintf(out->room, sizeof(out->room), "%s", room_id);
  out->role = (enum room_role)rec->base_role;
  out->perms_set = rec->base_set;
  out->perms_val = rec->base_val;
  overlay(rec, out);
  return 0;
}

int policy_banned(struct hub *h, const char *room_id, const char *user) {
  struct room *r = hub_room_find(h, room_id);
  if (r == NULL) return durable_policy_banned(h, room_id, user); /* restored when it opens */
  if (map_get(&r->banned, user)) return 1;
  struct room *root = policy_root(h, r);
  return root && root != r && map_get(&root->banned, user) != NULL;
}

enum api_err policy_rest_gate(struct hub *h, struct room *r, const struct token_claims *c, int member,
                              const char **detail) {
  *detail = NULL;
  if (c->admin || r == NULL) return API_OK;
  if (policy_banned(h, r->id, c->sub)) return API_ERR_USER_BANNED;
  if (member) return API_OK;
  if (room_waiter_find(r, c->sub)) return API_ERR_IN_WAITING_ROOM;
  struct room_policy *p = pol(policy_root(h, r), 0);
  if (p && map_get(&p->rejected, c->sub)) {
    *detail = "you were turned away from the waiting room";
    return API_ERR_PERMISSION_DENIED;
  }
  /* Someone who would have to wait to join does not read the room either. */
  const struct policy_rec *rec = rec_of(h, r, c->sub, 0);
  struct token_claims eff = *c;
  if (rec) overlay(rec, &eff);
  if (r->settings.waiting_room && eff.role < ROOM_ROLE_MODERATOR && !(rec && rec->admitted)) {
    *detail = "join the room and wait to be admitted";
    return API_ERR_IN_WAITING_ROOM;
  }
  return API_OK;
}

enum api_err policy_breakout_entry(struct hub *h, const char *room_id, const struct token_claims *c) {
  struct room *r = hub_room_find(h, room_id);
  if (r == NULL || r->parent[0] == '\0' || c->admin || c->role >= ROOM_ROLE_MODERATOR) return API_OK;
  return API_ERR_PERMISSION_DENIED;
}

void policy_free(struct room *r) {
  if (r->policy == NULL) return;
  policy_users_free(r->policy);
  map_free(&r->policy->rejected);
  free(r->policy);
  r->policy = NULL;
}
