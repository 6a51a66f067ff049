/* The room model (see room.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "room/room.h"

struct room *room_new(const char *id, int max_participants, uint64_t now_ms) {
  struct room *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  snprintf(r->id, sizeof(r->id), "%s", id);
  r->created_ms = now_ms;
  r->settings.max_participants = max_participants;
  r->settings.chat_enabled = 1;
  r->settings.reactions_enabled = 1;
  return r;
}

void room_free(struct room *r) {
  if (r == NULL) return;
  struct participant *p = r->head;
  while (p) {
    struct participant *next = p->next;
    room_participant_free(p);
    p = next;
  }
  map_free(&r->members);
  free(r);
}

struct participant *room_participant_new(const struct token_claims *claims, uint64_t now_ms) {
  struct participant *p = calloc(1, sizeof(*p));
  if (p == NULL) return NULL;
  snprintf(p->user_id, sizeof(p->user_id), "%s", claims->sub);
  snprintf(p->name, sizeof(p->name), "%s", claims->name[0] ? claims->name : claims->sub);
  p->role = claims->role;
  p->perms = (perm_role_defaults(claims->role) & ~claims->perms_set) |
             (claims->perms_val & claims->perms_set);
  p->joined_ms = now_ms;
  if (id_random_hex(p->session_id, 16) != 0 || id_random_hex(p->resume_token, 32) != 0) {
    free(p);
    return NULL;
  }
  return p;
}

void room_participant_free(struct participant *p) { free(p); }

struct participant *room_participant_find(struct room *r, const char *user_id) {
  return map_get(&r->members, user_id);
}

int room_participant_add(struct room *r, struct participant *p) {
  if (map_get(&r->members, p->user_id) != NULL) return -1;
  if (map_put(&r->members, p->user_id, p) != 0) return -1;
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
  map_del(&r->members, p->user_id);
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
  return json_pack("{s:s,s:s,s:s,s:I,s:{s:b,s:b,s:b}}", "user_id", p->user_id, "name", p->name,
                   "role", perm_role_name(p->role), "joined_at", (json_int_t)p->joined_ms,
                   "media", "audio", p->audio, "video", p->video, "screen", p->screen);
}

json_t *room_settings_json(const struct room *r) {
  const struct room_settings *s = &r->settings;
  return json_pack("{s:b,s:b,s:b,s:i,s:b,s:b}", "locked", s->locked, "waiting_room",
                   s->waiting_room, "mute_on_join", s->mute_on_join, "max_participants",
                   s->max_participants, "chat_enabled", s->chat_enabled, "reactions_enabled",
                   s->reactions_enabled);
}
