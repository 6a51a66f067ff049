/* A room becomes this instance's: become_owner, and when the room is not
 * here yet, the rebuild from the snapshot and the whole stream (members,
 * their sessions on live instances, the waiting room, the family, the
 * room log with later erases applied), then the room goes on from the
 * stream's seq and members of dead instances enter the grace period. */
#define LOG_MODULE "cluster"
#include "log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_int.h"
#include "lib/ids.h"
#include "net/ws.h"
#include "room/durable.h"
#include "room/room.h"
#include "signal/signal.h"

/* KEYS snap, stream, bcast, ana, anaev, anaau. Returns {snapshot or '',
 * entries, live instances of the snapshot, erases: {user, ms of the
 * erase}..., analytics aggregates or '', events, audit entries}. */
static const char LUA_REBUILD[] =
    "local s = redis.call('GET', KEYS[1]) "
    "local e = redis.call('XRANGE', KEYS[2], '-', '+') "
    "local alive = {} "
    "if s then local ok, snap = pcall(cjson.decode, s) "
    "  if ok and snap.members then for _, m in ipairs(snap.members) do "
    "    if m.inst and m.inst ~= '' and redis.call('EXISTS', 'huddle:hb:' .. m.inst) == 1 then alive[#alive + 1] = m.inst end "
    "  end end "
    "  if ok and type(snap.waiters) == 'table' then for _, m in ipairs(snap.waiters) do "
    "    if m.inst and m.inst ~= '' and redis.call('EXISTS', 'huddle:hb:' .. m.inst) == 1 then alive[#alive + 1] = m.inst end "
    "  end end end "
    "local er = {} "
    "for _, b in ipairs(redis.call('XRANGE', KEYS[3], '-', '+')) do "
    "  local f = b[2] "
    "  for i = 1, #f, 2 do if f[i] == 'k' and f[i + 1] == 'erase' then "
    "    for j = 1, #f, 2 do if f[j] == 'u' then er[#er + 1] = {f[j + 1], string.match(b[1], '^(%d+)')} end end "
    "  end end "
    "end "
    "return {s or '', e, alive, er, redis.call('GET', KEYS[4]) or '', redis.call('LRANGE', KEYS[5], 0, -1), "
    "  redis.call('LRANGE', KEYS[6], 0, -1)}";

/* A takeover: the family and the recordings of the snapshot. The new owner
 * of a main room claims its breakout rooms too (rebuilt from their own
 * snapshots), so grants and the breakouts' hold on the room keep working. */
static void family_from_snap(struct cluster *cl, struct room *room, json_t *snap) {
  size_t i, j;
  json_t *m, *u;
  const char *parent = json_string_value(json_object_get(snap, "parent"));
  if (parent && parent[0]) {
    snprintf(room->parent, sizeof(room->parent), "%s", parent);
    room->held = (int)json_integer_value(json_object_get(snap, "held"));
  }
  json_array_foreach(json_object_get(snap, "breakouts"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (id == NULL || room_breakout_find(room, id)) continue;
    struct breakout *b = room_breakout_add(room, id, json_string_value(json_object_get(m, "name")) ?: "");
    if (b == NULL) continue;
    json_array_foreach(json_object_get(m, "as"), j, u)
      if (json_string_value(u)) room_breakout_assign(room, b, json_string_value(u));
    struct croom *bc = croom_get(cl, id, 1);
    if (bc == NULL) continue;
    snprintf(bc->parent, sizeof(bc->parent), "%s", room->id);
    if (!bc->owned && !bc->acquiring && !bc->rebuilding) croom_resolve(cl, bc);
  }
  struct room_history *hi = room->hist;
  json_array_foreach(json_object_get(snap, "recordings"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (hi == NULL || id == NULL || history_recording_find(hi, id)) continue;
    struct recording *rc = history_recording_start(hi, json_string_value(json_object_get(m, "by")) ?: "",
                                                   (uint64_t)json_integer_value(json_object_get(m, "t0")));
    if (rc == NULL) continue;
    snprintf(rc->id, sizeof(rc->id), "%s", id);
    snprintf(rc->stopped_by, sizeof(rc->stopped_by), "%s", json_string_value(json_object_get(m, "sb")) ?: "");
    snprintf(rc->format, sizeof(rc->format), "%s", json_string_value(json_object_get(m, "fmt")) ?: "webm");
    rc->stopped_ms = (uint64_t)json_integer_value(json_object_get(m, "t1"));
  }
  json_array_foreach(json_object_get(snap, "streams"), i, m) {
    const char *id = json_string_value(json_object_get(m, "id"));
    if (hi == NULL || id == NULL || history_stream_find(hi, id)) continue;
    struct live_stream *st = history_stream_start(
        hi, json_string_value(json_object_get(m, "name")) ?: "", json_string_value(json_object_get(m, "tg")) ?: "",
        json_string_value(json_object_get(m, "tr")) ?: "", json_string_value(json_object_get(m, "by")) ?: "",
        (uint64_t)json_integer_value(json_object_get(m, "t0")));
    if (st == NULL) continue;
    snprintf(st->id, sizeof(st->id), "%s", id);
    snprintf(st->stopped_by, sizeof(st->stopped_by), "%s", json_string_value(json_object_get(m, "sb")) ?: "");
    st->stopped_ms = (uint64_t)json_integer_value(json_object_get(m, "t1"));
  }
}

/* A breakout room claimed by its family's new owner with nothing to
 * rebuild (nobody ever joined it): it is opened again, held by its main room. */
static void family_room_ensure(struct cluster *cl, struct croom *cr) {
  if (!cr->parent[0] || hub_room_find(cl->h, cr->parent) == NULL || hub_room_find(cl->h, cr->id)) return;
  struct room *br = hub_room_create(cl->h, cr->id);
  if (br == NULL) return;
  snprintf(br->parent, sizeof(br->parent), "%s", cr->parent);
  br->held = 1;
  cr->dirty = 1;
}

/* A session of the snapshot (a member's or a waiter's entry m) on the new
 * owner: the local connection of this instance's link, or a remote session
 * of a live instance's link (its frames go through the stream as before
 * the takeover: the link is still there, now sending to this owner).
 * NULL when its instance is gone. */
static struct conn *snap_session(struct cluster *cl, struct croom *cr, const redisReply *alive, json_t *m) {
  const char *inst = json_string_value(json_object_get(m, "inst"));
  const char *link = json_string_value(json_object_get(m, "link"));
  int live = 0;
  for (size_t j = 0; inst && inst[0] && j < alive->elements; j++)
    if (alive->element[j]->type == REDIS_REPLY_STRING && strcmp(alive->element[j]->str, inst) == 0) live = 1;
  if (live && strcmp(inst, cl->inst) == 0) {
    struct link *l = link && link[0] ? map_get(&cl->links, link) : NULL;
    if (l && l->c) {
      struct conn *c = l->c;
      if (l->queue.len && l->confirmed) {
        /* Held while the room was rebuilt here (and taken back from the
         * dead owner): run once c is a member again (feeds_run). */
        if (cl->nfeeds == cl->cap_feeds) {
          size_t cap = cl->cap_feeds ? 2 * cl->cap_feeds : 8;
          struct feed *nf = realloc(cl->feeds, cap * sizeof(*nf));
          if (nf) cl->feeds = nf, cl->cap_feeds = cap;
        }
        if (cl->nfeeds < cl->cap_feeds) {
          cl->feeds[cl->nfeeds].c = c;
          cl->feeds[cl->nfeeds++].q = l->queue;
          memset(&l->queue, 0, sizeof(l->queue));
        }
      }
      link_unlink(cl, l);
      return c;
    }
  } else if (live && link && link[0]) {
    struct remote *rm = remote_new(cl, inst, link, cr->id, 0);
    if (rm == NULL) return NULL;
    /* The session may have ended after the snapshot while its instance
     * still sent to the dead owner (its "end" was lost): that instance
     * answers this with an end for a link it no longer has, and sends to
     * this owner from now on. */
    const char *fv[] = {"k", "probe", "i", cl->inst, "id", link, "room", cr->id};
    inbox_send(cl, inst, 8, fv, NULL);
    return rm->fake;
  }
  return NULL;
}

/* The messages of links made members by the rebuild, in order, as
 * links_join_local does for the others. */
static void feeds_run(struct cluster *cl) {
  for (size_t i = 0; i < cl->nfeeds; i++) {
    struct conn *c = cl->feeds[i].c;
    struct buf *q = &cl->feeds[i].q;
    size_t off = 0;
    const char *d;
    uint32_t n;
    while (!c->closing && msgq_next(q, &off, &d, &n)) gate_push(cl, c, d, n);
    buf_free(q);
  }
  cl->nfeeds = 0;
}

/* The session callbacks of snap_apply during a rebuild. */
struct rebuild {
  struct cluster *cl;
  struct croom *cr;
  const redisReply *alive;  /* LUA_REBUILD's instances of the snapshot that still beat */
};

static void *rebuild_session(void *arg, json_t *m) {
  struct rebuild *rb = arg;
  return snap_session(rb->cl, rb->cr, rb->alive, m);
}

static void rebuild_member(void *arg, void *session, struct participant *p) {
  (void)arg;
  ((struct conn *)session)->part = p;
}

static void rebuild_waiter(void *arg, void *session, struct waiter *w) {
  (void)arg;
  struct conn *c = session;
  if (w == NULL) ws_close(c, 1011, "internal error");
  else c->waiter = w;
}

struct outbuf *erases_apply(struct outbuf *b, long long ms, const redisReply *erases) {
  int drop = 0;
  for (size_t x = 0; erases && x < erases->elements && !drop && b; x++) {
    char eu[ID_MAX + 1], ems[24];
    if (reply_str(reply_at(erases->element[x], 0), eu, sizeof(eu)) != 0 ||
        reply_str(reply_at(erases->element[x], 1), ems, sizeof(ems)) != 0 || ms > strtoll(ems, NULL, 10))
      continue;
    struct outbuf *nb = durable_erase_frame(eu, b, &drop);
    if (nb) {
      outbuf_unref(b);
      b = nb;
    }
  }
  if (drop) {
    outbuf_unref(b);
    return NULL;
  }
  return b;
}

/* A new session's restore data is read (durable_room_refresh): the links
 * waiting for the room join it now. */
static void fresh_room(void *arg) {
  char *id = arg;
  struct cluster *cl = the_cluster;
  struct croom *cr = cl ? croom_get(cl, id, 0) : NULL;
  free(id);
  if (cr == NULL || !cr->rebuilding) return;
  cr->rebuilding = 0;
  family_room_ensure(cl, cr);
  links_join_local(cl, cr);
}

/* Members of the snapshot, their sessions where their instance lives, the
 * room log from the stream; then the room goes on from the stream's seq. */
static void rebuild_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct cluster *cl = the_cluster;
  if (cl == NULL) return;
  struct croom *cr = croom_get(cl, (const char *)priv, 0);
  free(priv);
  if (cr == NULL) return;
  cr->rebuilding = 0;
  redisReply *r = reply;
  struct hub *h = cl->h;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || hub_room_find(h, cr->id)) {
    if (r && r->type == REDIS_REPLY_ERROR) log_warn("rebuild_failed room=%s reason=\"%s\"", cr->id, r->str);
    links_join_local(cl, cr);
    return;
  }
  const redisReply *snapr = r->element[0], *entries = r->element[1], *alive = r->element[2];
  const redisReply *erases = r->elements > 3 && r->element[3]->type == REDIS_REPLY_ARRAY ? r->element[3] : NULL;
  json_t *snap = snapr->type == REDIS_REPLY_STRING ? snap_parse(snapr->str, snapr->len) : NULL;
  uint64_t top_seq = 0, top_sub = 0;
  if (entries->elements) {
    char id[48];
    reply_str(reply_at(entries->element[entries->elements - 1], 0), id, sizeof(id));
    stream_id_parse(id, &top_seq, &top_sub);
  }
  if (snap == NULL && entries->elements == 0) {
    /* A new session of the room. With a database the instances share,
     * what restores it (seq, settings, policy) is read again first:
     * another instance may have used the room since this one started. */
    char *id = strdup(cr->id);
    if (id && durable_room_refresh(h, cr->id, fresh_room, id) == 0) {
      cr->rebuilding = 1; /* links and forwarded calls wait, as for a rebuild */
      return;
    }
    free(id);
    family_room_ensure(cl, cr);
    links_join_local(cl, cr);
    return;
  }
  struct room *room = hub_room_create(h, cr->id);
  if (room == NULL) {
    json_decref(snap);
    links_join_local(cl, cr);
    return;
  }
  cl->st.takeovers++;
  uint64_t now = uv_now(h->loop);
  uint64_t snap_seq = snap_seq_of(snap);
  /* The room goes on from the highest seq anyone used: the stream's, the
   * snapshot's, or the one this instance's own store restored when the
   * room was made here (durable_room_open: a session of the room that
   * lived here before), so that message ids ("m" + seq) never repeat ones
   * stored. A jump past the stream's top is a gap in seq, which members
   * may see anyway (messages for others); resumes from before it replay
   * what the log holds after their last_seq. */
  if (top_seq > room->seq) room->seq = top_seq;
  if (snap_seq > room->seq) room->seq = snap_seq;
  /* Every member may be away (a room of up to --max-room-participants):
   * each is told reconnecting below. */
  size_t nmembers = json_array_size(json_object_get(snap, "members"));
  struct participant **away = nmembers ? calloc(nmembers, sizeof(*away)) : NULL;
  size_t naway;
  struct rebuild rb = {cl, cr, alive};
  struct snap_sessions ss = {rebuild_session, rebuild_member, rebuild_waiter, &rb};
  size_t put_away = snap_apply(room, snap, now, &ss, away, away ? nmembers : 0, &naway);
  h->naway += put_away;
  if (naway < put_away) log_warn("takeover_short room=%s away=%zu told=%zu reason=\"out of memory\"", cr->id, put_away, naway);
  /* The session of the room's history here began with the room, not now. */
  if (room->hist && room->hist->created_ms > room->created_ms) room->hist->created_ms = room->created_ms;
  family_from_snap(cl, room, snap);
  /* The analytics the last owner wrote (events, audit, counts); written
   * again from here on only from what comes after. */
  if (r->elements > 6) analytics_restore(room, r->element[4], r->element[5], r->element[6]);
  if (room->hist) {
    cr->ana_ev = room->hist->events.total;
    cr->ana_au = room->hist->audit.total;
  }
  /* The room log, for resumes across the takeover. */
  for (size_t j = 0; j < entries->elements; j++) {
    const redisReply *e = entries->element[j], *f = reply_at(e, 1);
    char k[4], id[48], to[ID_MAX + 1], ex[ID_MAX + 1], al[ID_MAX + 1];
    reply_field_str(f, "k", k, sizeof(k));
    if (k[0] != 'L') continue;
    reply_str(reply_at(e, 0), id, sizeof(id));
    const redisReply *fr = reply_field(f, "f");
    if (fr == NULL || fr->type != REDIS_REPLY_STRING) continue;
    struct outbuf *b = outbuf_new(fr->len);
    if (b == NULL) continue;
    memcpy(b->data, fr->str, fr->len);
    b->len = fr->len;
    /* Erases published after the entry was logged: the dead owner applied
     * them to its log, not to the stream, so they apply again here. */
    if ((b = erases_apply(b, reply_field_int(f, "ms"), erases)) == NULL) continue;
    reply_field_str(f, "to", to, sizeof(to));
    reply_field_str(f, "ex", ex, sizeof(ex));
    reply_field_str(f, "al", al, sizeof(al));
    roomlog_append(&room->log, strtoull(id, NULL, 10), now, (int)reply_field_int(f, "t"), b, to[0] ? to : NULL,
                   ex[0] ? ex : NULL, al[0] ? al : NULL, (uint32_t)reply_field_int(f, "pm"));
    outbuf_unref(b);
  }
  /* A log that does not reach back to the snapshot cannot serve resumes from before it. */
  if (room->log.n == 0 || roomlog_at(&room->log, 0)->seq > snap_seq + 1)
    if (room->log.dropped_seq < snap_seq) room->log.dropped_seq = snap_seq;
  cr->last_seq = room->seq;
  cr->sub = top_seq == room->seq ? top_sub : 0;
  log_info("takeover room=%s seq=%" PRIu64 " members=%zu away=%zu log=%zu", cr->id, room->seq, room->count,
           naway, room->log.n);
  json_decref(snap);
  /* Members whose instance is gone: the grace period starts now. */
  for (size_t j = 0; j < naway; j++) {
    json_t *pl = json_pack("{s:s,s:s}", "user_id", away[j]->user_id, "status", "reconnecting");
    hub_publish(h, room, "participant-update", "server", NULL, away[j]->user_id, pl);
    json_decref(pl);
  }
  free(away);
  cr->dirty = 1;
  feeds_run(cl);
  links_join_local(cl, cr);
}

void become_owner(struct cluster *cl, struct croom *cr) {
  cr->owned = 1;
  cr->watching = 0;
  snprintf(cr->owner, sizeof(cr->owner), "%s", cl->inst);
  if (hub_room_find(cl->h, cr->id)) {
    links_join_local(cl, cr);
    return;
  }
  /* Rebuild from the snapshot and the stream (a fresh room has neither). */
  char snap[KEY_MAX], stream[KEY_MAX], ana[KEY_MAX], anaev[KEY_MAX], anaau[KEY_MAX];
  key_of(snap, "snap", cr->id);
  key_of(stream, "stream", cr->id);
  key_of(ana, "ana", cr->id);
  key_of(anaev, "anaev", cr->id);
  key_of(anaau, "anaau", cr->id);
  /* Messages our links sent the dead owner and it never read: taken back
   * first (their replies come before the rebuild's). */
  for (struct link *l = cr->links; l; l = l->next)
    if (l->opened && l->confirmed && l->sent_to[0] && strcmp(l->sent_to, cl->inst) != 0 && !l->recovering)
      link_recover(cl, l, l->sent_to);
  const char *argv[] = {"EVAL", LUA_REBUILD, "6", snap, stream, BCAST_KEY, ana, anaev, anaau};
  cr->rebuilding = 1;
  redis_cmd(cl, rebuild_cb, strdup(cr->id), 0, 9, argv, NULL);
}
