/* The command table (see command.h). */
#include "auth/perm.h"
#include "room/command.h"

static const struct command commands[CMD__COUNT] = {
  [CMD_NONE] = {"none", 0, COMMAND_NO_RATE},
  [CMD_MODERATE] = {"moderate", PERM_MODERATE, COMMAND_NO_RATE},
  [CMD_CHAT] = {"chat", PERM_CHAT, RATE_CHAT_MESSAGE},
  [CMD_REACTION] = {"reaction", PERM_REACT, RATE_REACTION},
  [CMD_FILE_SHARE] = {"file_share", PERM_SHARE_FILES, RATE_FILE_SHARE},
  [CMD_HAND_RAISE] = {"hand_raise", PERM_RAISE_HAND, RATE_HAND_RAISE},
  [CMD_ROLE_SET] = {"role_set", PERM_MODERATE, RATE_SETTINGS_UPDATE},
  [CMD_PERMISSIONS_SET] = {"permissions_set", PERM_MODERATE, RATE_SETTINGS_UPDATE},
  [CMD_SETTINGS_UPDATE] = {"settings_update", PERM_MODERATE, RATE_SETTINGS_UPDATE},
  [CMD_RECORD] = {"record", PERM_RECORD, COMMAND_NO_RATE},
  [CMD_STREAM] = {"stream", PERM_STREAM, COMMAND_NO_RATE},
  [CMD_ROOM_CREATE] = {"room_create", 0, RATE_ROOM_CREATE},
};

const struct command *command_get(enum command_id id) {
  return (int)id >= 0 && id < CMD__COUNT ? &commands[id] : &commands[CMD_NONE];
}

enum api_err command_authorize(struct hub *h, enum command_id id, const struct actor *a, unsigned what,
                               int64_t *retry_after_ms, int *rate_class) {
  const struct command *c = command_get(id);
  if ((what & COMMAND_PERM) && c->perm && !a->admin && (a->perms & c->perm) != c->perm)
    return API_ERR_PERMISSION_DENIED;
  if (!(what & COMMAND_RATE) || c->rate == COMMAND_NO_RATE) return API_OK;
  struct ratelimit_result rr;
  hub_rate_check(h, a->user_id, (enum rate_class)c->rate, &rr);
  if (rr.allowed) return API_OK;
  h->stats.ratelimit_hits[c->rate]++;
  if (retry_after_ms) *retry_after_ms = (int64_t)rr.retry_after_ms;
  if (rate_class) *rate_class = c->rate;
  return API_ERR_RATE_LIMIT_EXCEEDED;
}
