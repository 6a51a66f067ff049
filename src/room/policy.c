/* Room policy (see policy.h). */
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

static struct policy_rec *rec_of(struct hub *h, struct room *r, const char *user, int create) {
  struct room_policy *p = pol(policy_root(h, r), create);
  if (p == NULL) return NULL;
  struct policy_rec *rec = map_get(&p->users, user);
  if (rec == NULL && create) {
    rec = calloc(1, sizeof(*rec));
    if (rec == NULL) return NULL;
    if (map_put(&p->users, user, rec) != 0) {
      free(rec);
      return NULL;
    }
  }
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
  rec->base_role = c->role;
  rec->base_set = c->perms_set;
  rec->base_val = c->perms_val & c->perms_set;
  struct room_policy *p = pol(policy_root(h, r), 0);
  if (p) map_del(&p->rejected, c->sub);
}

void policy_note_role(struct hub *h, struct room *r, const char *user, enum room_role role) {
  struct policy_rec *rec = rec_of(h, r, user, 1);
  if (rec == NULL) return;
  rec->has_role = 1;
  rec->role = role;
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
  if (rec->has_role) c->role = rec->role;
  if (rec->has_perms) {
    c->perms_set = rec->set;
    c->perms_val = rec->val;
  }
}

void policy_apply(struct hub *h, const char *room_id, struct token_claims *c) {
  if (c->admin) return;
  const struct policy_rec *rec = policy_find(h, room_id, c->sub);
  if (rec) overlay(rec, c);
}

int policy_member_claims(struct hub *h, const char *room_id, const char *user, struct token_claims *out) {
  const struct policy_rec *rec = policy_find(h, room_id, user);
  if (rec == NULL || !rec->admitted) return -1;
  memset(out, 0, sizeof(*out));
  snprintf(out->sub, sizeof(out->sub), "%s", user);
  snprintf(out->name, sizeof(out->name), "%s", rec->name ? rec->name : "");
  snprintf(out->room, sizeof(out->room), "%s", room_id);
  out->role = rec->base_role;
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

void policy_rec_free(struct policy_rec *rec) {
  if (rec == NULL) return;
  free(rec->name);
  free(rec);
}

static void free_rec(const char *k, void *v, void *arg) { policy_rec_free(v); }

void policy_free(struct room *r) {
  if (r->policy == NULL) return;
  map_each(&r->policy->users, free_rec, NULL);
  map_free(&r->policy->users);
  map_free(&r->policy->rejected);
  free(r->policy);
  r->policy = NULL;
}
