/* The room model (see room.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room/chatvis.h"
#include "room/policy.h"
#include "room/room.h"

struct room *room_new(const char *id, int max_participants, uint64_t now_ms) {
  struct room *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  snprintf(r->id, sizeof(r->id), "%s", id);
  r->created_ms = now_ms;
  r->settings.max_participants = max_participants;
  r->settings.chat_enabled = 1;
  r->settings.reactions_enabled = 1;
  roomlog_init(&r->log, 4096, 1 << 20, 300000); /* the owner sets the configured bounds */
  return r;
}

static void transfer_free(struct transfer *t) {
  free(t->parties);
  free(t);
}

static void free_transfer(const char *k, void *v, void *arg) { transfer_free(v); }

void room_free(struct room *r) {
  if (r == NULL) return;
  while (r->wait_head) room_waiter_remove(r, r->wait_head);
  map_free(&r->banned);
  policy_free(r);
  chatvis_free(r);
  free(r->hands);
  free(r->chat_recent);
  while (r->nbreakouts) room_breakout_remove(r, &r->breakouts[r->nbreakouts - 1]);
  free(r->breakouts);
  map_each(&r->transfers, free_transfer, NULL);
  map_free(&r->transfers);
  struct participant *p = r->head;
  while (p) {
    struct participant *next = p->next;
    room_participant_free(p);
    p = next;
  }
  free(r->mbuckets);
  roomlog_free(&r->log);
  free(r);
}

struct participant *room_participant_new(const struct token_claims *claims, uint64_t now_ms) {
  /* A token without a name: the name is the user id, stored once. */
  size_t ul = strnlen(claims->sub, ID_MAX), nl = claims->name[0] ? strnlen(claims->name, TOKEN_NAME_MAX) + 1 : 0;
  struct participant *p = calloc(1, offsetof(struct participant, tail) + ul + 1 + nl);
  if (p == NULL) return NULL;
  memcpy(p->tail, claims->sub, ul);
  p->user_id = p->tail;
  p->name = p->tail;
  if (nl) {
    memcpy(p->tail + ul + 1, claims->name, nl - 1);
    p->name = p->tail + ul + 1;
  }
  p->role = claims->role;
  p->perms_set = claims->perms_set;
  p->perms_val = claims->perms_val & claims->perms_set;
  p->origin_role = p->role;
  p->origin_set = p->perms_set;
  p->origin_val = p->perms_val;
  room_participant_perms_update(p);
  p->joined_ms = now_ms;
  if (id_random_bytes(p->session_id, sizeof(p->session_id)) != 0 ||
      id_random_bytes(p->resume_token, sizeof(p->resume_token)) != 0) {
    free(p);
    return NULL;
  }
  return p;
}

int room_participant_resume_token_renew(struct participant *p) {
  return id_random_bytes(p->resume_token, sizeof(p->resume_token));
}

int room_participant_session_id_renew(struct participant *p) {
  return id_random_bytes(p->session_id, sizeof(p->session_id));
}

const char *room_participant_session_id(const struct participant *p, char out[33]) {
  return id_hex(p->session_id, sizeof(p->session_id), out);
}

const char *room_participant_resume_token(const struct participant *p, char out[65]) {
  return id_hex(p->resume_token, sizeof(p->resume_token), out);
}

int room_participant_resume_token_is(const struct participant *p, const char *token) {
  char mine[65];
  room_participant_resume_token(p, mine);
  size_t la = strlen(mine), lb = strlen(token);
  unsigned char d = la != lb;
  for (size_t i = 0; i < la && i < lb; i++) d |= (unsigned char)(mine[i] ^ token[i]);
  return d == 0;
}

int room_participant_ids_from_hex(struct participant *p, const char *session_id, const char *resume_token) {
  if (id_unhex(session_id, p->session_id, sizeof(p->session_id)) != 0 &&
      id_random_bytes(p->session_id, sizeof(p->session_id)) != 0)
    return -1;
  if (id_unhex(resume_token, p->resume_token, sizeof(p->resume_token)) != 0 &&
      id_random_bytes(p->resume_token, sizeof(p->resume_token)) != 0)
    return -1;
  return 0;
}

void room_participant_perms_update(struct participant *p) {
  p->perms = (perm_role_defaults(p->role) & ~p->perms_set) | (p->perms_val & p->perms_set);
}

struct participant *room_first_with_role(struct room *r, enum room_role role) {
  for (struct participant *p = r->head; p; p = p->next)
    if (p->role == role) return p;
  return NULL;
}

int room_idle(const struct room *r, uint64_t now_ms) {
  return r->count == 0 && r->nwaiting == 0 && r->nbreakouts == 0 && !r->held &&
         now_ms >= r->linger_until_ms;
}

struct waiter *room_waiter_add(struct room *r, void *session, const struct token_claims *claims,
                               uint64_t now_ms) {
  struct waiter *w = calloc(1, sizeof(*w));
  if (w == NULL) return NULL;
  w->room = r;
  w->session = session;
  w->claims = *claims;
  w->since_ms = now_ms;
  w->prev = r->wait_tail;
  if (r->wait_tail) r->wait_tail->next = w;
  else r->wait_head = w;
  r->wait_tail = w;
  r->nwaiting++;
  return w;
}

struct waiter *room_waiter_find(struct room *r, const char *user_id) {
  for (struct waiter *w = r->wait_head; w; w = w->next)
    if (strcmp(w->claims.sub, user_id) == 0) return w;
  return NULL;
}

void room_waiter_remove(struct room *r, struct waiter *w) {
  if (w->prev) w->prev->next = w->next;
  else r->wait_head = w->next;
  if (w->next) w->next->prev = w->prev;
  else r->wait_tail = w->prev;
  r->nwaiting--;
  free(w);
}

int room_hand_find(const struct room *r, const char *user_id) {
  for (size_t i = 0; i < r->nhands; i++)
    if (strcmp(r->hands[i].user_id, user_id) == 0) return (int)i;
  return -1;
}

int room_hand_raise(struct room *r, const char *user_id, const char *name, uint64_t now_ms) {
  int i = room_hand_find(r, user_id);
  if (i >= 0) {
    r->hands[i].away_ms = 0;
    return 1;
  }
  if (r->nhands == r->cap_hands) {
    size_t cap = r->cap_hands ? r->cap_hands * 2 : 8;
    struct hand *h = realloc(r->hands, cap * sizeof(*h));
    if (h == NULL) return -1;
    r->hands = h;
    r->cap_hands = cap;
  }
  struct hand *h = &r->hands[r->nhands++];
  memset(h, 0, sizeof(*h));
  snprintf(h->user_id, sizeof(h->user_id), "%s", user_id);
  snprintf(h->name, sizeof(h->name), "%s", name);
  h->raised_ms = now_ms;
  return 0;
}

int room_hand_lower(struct room *r, const char *user_id) {
  int i = room_hand_find(r, user_id);
  if (i < 0) return 0;
  memmove(&r->hands[i], &r->hands[i + 1], (r->nhands - (size_t)i - 1) * sizeof(r->hands[0]));
  r->nhands--;
  return 1;
}

void room_hands_expire(struct room *r, uint64_t now_ms, uint64_t grace_ms) {
  size_t k = 0;
  for (size_t i = 0; i < r->nhands; i++) {
    if (r->hands[i].away_ms && now_ms - r->hands[i].away_ms > grace_ms) continue;
    r->hands[k++] = r->hands[i];
  }
  r->nhands = k;
}

json_t *room_hands_json(const struct room *r) {
  json_t *a = json_array();
  int pos = 0;
  for (size_t i = 0; i < r->nhands; i++) {
    if (r->hands[i].away_ms) continue; /* kept for its owner's return, not shown */
    json_array_append_new(a, json_pack("{s:s,s:s,s:I,s:i}", "user_id", r->hands[i].user_id, "name",
                                       r->hands[i].name, "raised_at",
                                       (json_int_t)r->hands[i].raised_ms, "position", ++pos));
  }
  return a;
}

struct breakout *room_breakout_find(struct room *r, const char *id) {
  for (size_t i = 0; i < r->nbreakouts; i++)
    if (strcmp(r->breakouts[i].id, id) == 0) return &r->breakouts[i];
  return NULL;
}

struct breakout *room_breakout_add(struct room *r, const char *id, const char *name) {
  if (r->nbreakouts >= ROOM_MAX_BREAKOUTS) return NULL;
  struct breakout *b = realloc(r->breakouts, (r->nbreakouts + 1) * sizeof(*b));
  if (b == NULL) return NULL;
  r->breakouts = b;
  b = &r->breakouts[r->nbreakouts++];
  memset(b, 0, sizeof(*b));
  snprintf(b->id, sizeof(b->id), "%s", id);
  snprintf(b->name, sizeof(b->name), "%s", name);
  return b;
}

void room_breakout_remove(struct room *r, struct breakout *b) {
  free(b->assigned);
  size_t i = (size_t)(b - r->breakouts);
  memmove(&r->breakouts[i], &r->breakouts[i + 1], (r->nbreakouts - i - 1) * sizeof(*b));
  r->nbreakouts--;
}

struct breakout *room_breakout_of(struct room *r, const char *user_id) {
  for (size_t i = 0; i < r->nbreakouts; i++)
    for (size_t j = 0; j < r->breakouts[i].nassigned; j++)
      if (strcmp(r->breakouts[i].assigned[j], user_id) == 0) return &r->breakouts[i];
  return NULL;
}

int room_breakout_assign(struct room *r, struct breakout *b, const char *user_id) {
  struct breakout *old = room_breakout_of(r, user_id);
  if (old == b) return 0;
  if (old) {
    for (size_t j = 0; j < old->nassigned; j++) {
      if (strcmp(old->assigned[j], user_id) == 0) {
        memmove(&old->assigned[j], &old->assigned[j + 1], (old->nassigned - j - 1) * sizeof(old->assigned[0]));
        old->nassigned--;
        break;
      }
    }
  }
  char (*a)[ID_MAX + 1] = realloc(b->assigned, (b->nassigned + 1) * sizeof(*a));
  if (a == NULL) return -1;
  b->assigned = a;
  snprintf(b->assigned[b->nassigned++], ID_MAX + 1, "%s", user_id);
  return 0;
}

void room_participant_free(struct participant *p) {
  if (p == NULL) return;
  if (p->extra) {
    json_decref(p->extra->info);
    json_decref(p->extra->net_stats);
    json_decref(p->extra->background);
    free(p->extra);
  }
  free(p);
}

struct participant_extra *room_participant_extra(struct participant *p) {
  if (p->extra == NULL) p->extra = calloc(1, sizeof(*p->extra));
  return p->extra;
}

void room_chat_remember(struct room *r, uint64_t seq) {
  if (r->chat_recent == NULL && (r->chat_recent = calloc(ROOM_CHAT_RECENT, sizeof(uint64_t))) == NULL)
    return; /* a reply to it is then refused as unknown */
  r->chat_recent[r->chat_head] = seq;
  r->chat_head = (r->chat_head + 1) % ROOM_CHAT_RECENT;
}

int room_chat_known(const struct room *r, uint64_t seq) {
  if (seq == 0 || r->chat_recent == NULL) return 0;
  for (size_t i = 0; i < ROOM_CHAT_RECENT; i++)
    if (r->chat_recent[i] == seq) return 1;
  return 0;
}

struct transfer *room_transfer_new(struct room *r, const char *sender, const char *to,
                                   uint64_t now_ms) {
  if (r->transfers.count >= ROOM_MAX_TRANSFERS) return NULL;
  struct transfer *t = calloc(1, sizeof(*t));
  if (t == NULL) return NULL;
  t->id[0] = 'f';
  if (id_random_hex(t->id + 1, 15) != 0 || map_put(&r->transfers, t->id, t) != 0) {
    free(t);
    return NULL;
  }
  snprintf(t->sender, sizeof(t->sender), "%s", sender);
  snprintf(t->to, sizeof(t->to), "%s", to ? to : "");
  t->created_ms = now_ms;
  return t;
}

struct transfer *room_transfer_find(struct room *r, const char *id) {
  return map_get(&r->transfers, id);
}

void room_transfer_remove(struct room *r, struct transfer *t) {
  map_del(&r->transfers, t->id);
  transfer_free(t);
}

struct drop { const char *user; struct transfer *hits[ROOM_MAX_TRANSFERS]; size_t n; };

static void collect_sender(const char *k, void *v, void *arg) {
  struct drop *d = arg;
  struct transfer *t = v;
  if (strcmp(t->sender, d->user) == 0 && d->n < ROOM_MAX_TRANSFERS) d->hits[d->n++] = t;
}

void room_transfers_drop_user(struct room *r, const char *user_id) {
  struct drop d = {user_id, {0}, 0};
  map_each(&r->transfers, collect_sender, &d);
  for (size_t i = 0; i < d.n; i++) room_transfer_remove(r, d.hits[i]);
}

struct transfer_party *room_transfer_party(struct transfer *t, const char *user_id, int create) {
  for (size_t i = 0; i < t->nparties; i++)
    if (strcmp(t->parties[i].user_id, user_id) == 0) return &t->parties[i];
  if (!create) return NULL;
  struct transfer_party *p = realloc(t->parties, (t->nparties + 1) * sizeof(*p));
  if (p == NULL) return NULL;
  t->parties = p;
  p = &t->parties[t->nparties++];
  memset(p, 0, sizeof(*p));
  snprintf(p->user_id, sizeof(p->user_id), "%s", user_id);
  return p;
}

struct participant *room_participant_find(struct room *r, const char *user_id) {
  if (r->nmbuckets == 0) return NULL;
  for (struct participant *p = r->mbuckets[(size_t)map_hash(user_id) & (r->nmbuckets - 1)]; p; p = p->hnext)
    if (strcmp(p->user_id, user_id) == 0) return p;
  return NULL;
}

/* Doubles the member index (16 chains at first), at load factor 1. */
static int index_grow(struct room *r) {
  size_t n = r->nmbuckets ? r->nmbuckets * 2 : 16;
  struct participant **b = calloc(n, sizeof(*b));
  if (b == NULL) return -1;
  for (size_t i = 0; i < r->nmbuckets; i++) {
    for (struct participant *p = r->mbuckets[i], *next; p; p = next) {
      next = p->hnext;
      size_t j = (size_t)map_hash(p->user_id) & (n - 1);
      p->hnext = b[j];
      b[j] = p;
    }
  }
  free(r->mbuckets);
  r->mbuckets = b;
  r->nmbuckets = n;
  return 0;
}

int room_participant_add(struct room *r, struct participant *p) {
  if (room_participant_find(r, p->user_id) != NULL) return -1;
  if (r->count >= r->nmbuckets && index_grow(r) != 0) return -1;
  size_t i = (size_t)map_hash(p->user_id) & (r->nmbuckets - 1);
  p->hnext = r->mbuckets[i];
  r->mbuckets[i] = p;
  p->room = r;
  p->prev = r->tail;
  p->next = NULL;
  if (r->tail) r->tail->next = p;
  else r->head = p;
  r->tail = p;
  r->count++;
  if (r->count > r->peak) r->peak = r->count;
  return 0;
}

void room_participant_remove(struct room *r, struct participant *p) {
  if (p->room != r) return;
  for (struct participant **pp = &r->mbuckets[(size_t)map_hash(p->user_id) & (r->nmbuckets - 1)]; *pp; pp = &(*pp)->hnext) {
    if (*pp == p) {
      *pp = p->hnext;
      break;
    }
  }
  p->hnext = NULL;
  if (p->prev) p->prev->next = p->next;
  else r->head = p->next;
  if (p->next) p->next->prev = p->prev;
  else r->tail = p->prev;
  p->prev = p->next = NULL;
  p->room = NULL;
  r->count--;
}

json_t *room_perms_json(uint32_t perms) {
  json_t *o = json_object();
  for (int i = 0; i < PERM__COUNT; i++)
    json_object_set_new(o, perm_name(i), json_boolean(perms & (1u << i)));
  return o;
}

json_t *room_participant_json(const struct participant *p) {
  json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:{s:b,s:b,s:b}}", "user_id", p->user_id, "name", p->name,
                        "role", perm_role_name(p->role), "joined_at", (json_int_t)p->joined_ms,
                        "media", "audio", p->audio, "video", p->video, "screen", p->screen);
  if (o && p->extra && p->extra->quality[0]) json_object_set_new(o, "quality", json_string(p->extra->quality));
  if (o && p->extra && p->extra->background) json_object_set(o, "virtual_background", p->extra->background);
  return o;
}

json_t *room_settings_json(const struct room *r) {
  const struct room_settings *s = &r->settings;
  return json_pack("{s:b,s:b,s:b,s:i,s:b,s:s,s:b}", "locked", s->locked, "waiting_room",
                   s->waiting_room, "mute_on_join", s->mute_on_join, "max_participants",
                   s->max_participants, "chat_enabled", s->chat_enabled, "screen_share",
                   s->screen_share_moderators_only ? "moderators" : "all", "reactions_enabled",
                   s->reactions_enabled);
}
