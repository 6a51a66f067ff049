/* The reader connection: one XREAD BLOCK over this instance's inbox, the
 * broadcast stream and the streams of rooms owned elsewhere that have
 * local links; the inbox trimmed up to what was read before a batch with
 * messages or REST calls runs; each inbox entry handed to its handler. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"

/* What another instance sent this one. */
static void inbox_entry(struct cluster *cl, const redisReply *f) {
  char k[16], inst[32], id[24], room[ID_MAX + 1], key[64];
  reply_field_str(f, "k", k, sizeof(k));
  reply_field_str(f, "i", inst, sizeof(inst));
  reply_field_str(f, "id", id, sizeof(id));
  reply_field_str(f, "room", room, sizeof(room));
  snprintf(key, sizeof(key), "%s/%s", inst, id);
  if (strcmp(k, "open") == 0) owner_open(cl, f, inst, id, room, key);
  else if (strcmp(k, "moved") == 0) link_moved(cl, inst, id);
  else if (strcmp(k, "probe") == 0) link_probe(cl, inst, id, room);
  else if (strcmp(k, "msg") == 0) owner_msg(cl, f, key);
  else if (strcmp(k, "end") == 0) owner_end(cl, f, key);
  else if (strcmp(k, "http") == 0) owner_http(cl, f, inst, id, room);
  else if (strcmp(k, "resp") == 0) fw_answer(cl, id, f);
}

struct watch_list { const char **argv; size_t n, cap; char (*keys)[KEY_MAX]; };

static void collect_watch(const char *k, void *v, void *arg) {
  struct croom *cr = v;
  struct watch_list *wl = arg;
  if (!cr->watching || cr->owned || wl->n >= wl->cap) return;
  key_of(wl->keys[wl->n], "stream", cr->id);
  wl->argv[wl->n++] = (const char *)cr;
}

/* Before this instance runs REST calls forwarded to it, it trims its inbox
 * up to the last entry it read (XTRIM MINID one past it): what is still in
 * the inbox was never read. The trim goes on the command connection ahead
 * of everything running the calls sends, so a call whose entry is still
 * there had no effect in Redis either. Another instance whose call waits
 * on a dead owner can then tell (LUA_FWD_CHECK) whether sending it to the
 * new owner is safe. Only batches with a REST call pay the command. */
static void inbox_mark_read(struct cluster *cl, const redisReply *entries) {
  int calls = 0;
  char last[48] = "";
  for (size_t j = 0; entries && j < entries->elements; j++) {
    const redisReply *e = entries->element[j];
    char k[8] = "";
    reply_str(reply_at(e, 0), last, sizeof(last));
    reply_field_str(reply_at(e, 1), "k", k, sizeof(k));
    if (strcmp(k, "http") == 0 || strcmp(k, "msg") == 0) calls = 1;
  }
  uint64_t ms, sq;
  if (!calls || stream_id_parse(last, &ms, &sq) != 0) return;
  char key[KEY_MAX], minid[48];
  key_of(key, "inbox", cl->inst);
  stream_id_format(minid, sizeof(minid), ms, sq + 1);
  const char *argv[] = {"XTRIM", key, "MINID", minid};
  redis_cmd(cl, NULL, NULL, 1, 4, argv, NULL);
}

static void reader_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  if (cl == NULL) return;
  cl->reading = 0;
  redisReply *r = reply;
  if (r == NULL) return; /* disconnected: the reconnect restarts the reader */
  if (r->type == REDIS_REPLY_ERROR) {
    log_warn("xread_failed reason=\"%s\"", r->str);
  } else if (r->type == REDIS_REPLY_ARRAY) {
    char inbox[KEY_MAX];
    key_of(inbox, "inbox", cl->inst);
    for (size_t i = 0; i < r->elements; i++) {
      const redisReply *s = r->element[i];
      char name[KEY_MAX];
      reply_str(reply_at(s, 0), name, sizeof(name));
      const redisReply *entries = reply_at(s, 1);
      int is_inbox = strcmp(name, inbox) == 0;
      struct croom *cr = NULL;
      if (is_inbox) inbox_mark_read(cl, entries);
      if (strcmp(name, BCAST_KEY) == 0) {
        for (size_t j = 0; entries && j < entries->elements; j++) {
          const redisReply *e = entries->element[j];
          reply_str(reply_at(e, 0), cl->bcast_pos, sizeof(cl->bcast_pos));
          bcast_entry(cl, reply_at(e, 1));
        }
        continue;
      }
      if (!is_inbox && strncmp(name, "huddle:stream:", 14) == 0) cr = croom_get(cl, name + 14, 0);
      for (size_t j = 0; entries && j < entries->elements; j++) {
        const redisReply *e = entries->element[j];
        char id[48];
        reply_str(reply_at(e, 0), id, sizeof(id));
        if (is_inbox) {
          snprintf(cl->inbox_pos, sizeof(cl->inbox_pos), "%s", id);
          inbox_entry(cl, reply_at(e, 1));
        } else if (cr) {
          snprintf(cr->pos, sizeof(cr->pos), "%s", id);
          if (!cr->owned) stream_entry(cl, cr, reply_at(e, 1));
          cr = croom_get(cl, name + 14, 0); /* an entry may have ended the last link */
          if (cr == NULL) break;
        }
      }
    }
  }
  reader_issue(cl);
}

void reader_issue(struct cluster *cl) {
  if (!cl->rd_up || cl->reading || cl->stopping) return;
  size_t cap = cl->rooms.count + 1;
  const char **rooms = calloc(cap, sizeof(char *));
  char (*keys)[KEY_MAX] = calloc(cap, KEY_MAX);
  struct watch_list wl = {rooms, 0, cap, keys};
  size_t argc = 0, nk;
  const char **argv = NULL;
  size_t *lens = NULL;
  if (rooms == NULL || keys == NULL) goto out;
  map_each(&cl->rooms, collect_watch, &wl);
  nk = wl.n + 1 + (cl->bcast_pos[0] != '\0');
  argv = calloc(6 + 2 * nk, sizeof(char *));
  lens = calloc(6 + 2 * nk, sizeof(size_t));
  if (argv == NULL || lens == NULL) goto out;
  char inbox[KEY_MAX];
  key_of(inbox, "inbox", cl->inst);
  argv[argc++] = "XREAD";
  argv[argc++] = "COUNT";
  argv[argc++] = "1000";
  argv[argc++] = "BLOCK";
  argv[argc++] = "2000";
  argv[argc++] = "STREAMS";
  argv[argc++] = inbox;
  if (cl->bcast_pos[0]) argv[argc++] = BCAST_KEY;
  for (size_t i = 0; i < wl.n; i++) argv[argc++] = keys[i];
  argv[argc++] = cl->inbox_pos;
  if (cl->bcast_pos[0]) argv[argc++] = cl->bcast_pos;
  for (size_t i = 0; i < wl.n; i++) argv[argc++] = ((const struct croom *)rooms[i])->pos;
  for (size_t i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
  if (redisAsyncCommandArgv(cl->rd, reader_cb, NULL, (int)argc, argv, lens) == REDIS_OK) {
    cl->reading = 1;
    cl->read_issued = now_ms(cl);
  }
out:
  free(argv);
  free(lens);
  free(rooms);
  free(keys);
}

/* The reader blocks in XREAD: a wake entry in our own inbox makes it come
 * back and read the new set of streams. */
void reader_wake(struct cluster *cl) {
  const char *fv[] = {"k", "wake"};
  inbox_send(cl, cl->inst, 2, fv, NULL);
}
