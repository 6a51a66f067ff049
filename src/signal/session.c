/* Sessions: one WebSocket delivering to one member (or waiter) of a room.
 * Joining, resuming from the room log, replacing a session, and the grace
 * period of a dropped one. The member itself is the room's (room/members.c);
 * a session is only how it is reached: conn->part / conn->waiter here, an
 * opaque pointer (the conn) to the room. */
#define LOG_MODULE "signal"
#include "log.h"

#include <string.h>

#include "net/ws.h"
#include "signal/signal.h"

/* ---- the session callbacks the room calls ---- */

static void session_send(void *data, void *session, struct outbuf *frame) { ws_send(session, frame); }

static void session_attach(void *data, void *session, struct participant *p) {
  struct conn *c = session;
  c->waiter = NULL;
  c->part = p;
}

static void session_close(void *data, void *session, int code, const char *reason) {
  struct conn *c = session;
  c->part = NULL;
  c->waiter = NULL;
  ws_close(c, code, reason);
}

void signal_sessions_register(struct hub *h) {
  h->sessions.send = session_send;
  h->sessions.attach = session_attach;
  h->sessions.close = session_close;
  h->sessions.data = h;
}

/* ---- joining and resuming ---- */

/* An error that belongs to room r, to a connection not attached yet. */
static void room_error(struct hub *h, struct conn *c, struct room *r, enum api_err e) {
  const struct api_err_info *info = api_err_info(e);
  json_t *p = json_pack("{s:s,s:s,s:s}", "code", info->code, "message", info->message,
                        "recovery", info->recovery);
  h->stats.errors_by_code[e]++;
  h->stats.out_by_type[MSG_ERROR]++;
  hub_send_session(h, c, r, "error", p, NULL);
  json_decref(p);
}

/* Constant-time comparison of two resume tokens. */
/* What a resume request gets: API_OK (resume p), or why not. */
static enum api_err resume_check(struct hub *h, struct room *r, struct participant *p,
                                 const struct token_claims *claims, const char *token, uint64_t last_seq) {
  if (p && room_participant_resume_token_is(p, token)) {
    if (last_seq == UINT64_MAX || last_seq > r->seq) return API_ERR_RESUME_INVALID;
    if (!roomlog_covers(&r->log, last_seq)) return API_ERR_RESUME_GAP;
    return API_OK;
  }
  return hub_expired_has(h, r->id, claims->sub, token) ? API_ERR_RESUME_EXPIRED : API_ERR_RESUME_INVALID;
}

/* Detaches p's live connection, if any: SESSION_REPLACED, then 4001. */
static void replace_old(struct participant *p) {
  struct conn *oc = p->session;
  if (oc == NULL) return;
  signal_error(oc, API_ERR_SESSION_REPLACED, NULL, NULL, 0);
  p->session = NULL;
  session_close(NULL, oc, 4001, "session replaced");
}

/* Writes the log entries after last_seq that were addressed to p. */
static void replay(struct hub *h, struct conn *c, struct room *r, struct participant *p, uint64_t last_seq) {
  size_t n = 0;
  for (size_t i = roomlog_find_after(&r->log, last_seq); i < r->log.n; i++) {
    const struct roomlog_entry *e = roomlog_at(&r->log, i);
    if (!roomlog_entry_for(e, p->user_id, p->perms)) continue;
    if (e->type >= 0 && e->type < HUB_STATS_TYPES) h->stats.out_by_type[e->type]++;
    struct outbuf *f = hub_log_frame(r, e);
    if (f == NULL) { /* out of memory: skipped, and said in the log */
      log_warn("replay_failed room=%s user=%s seq=%llu", r->id, p->user_id, (unsigned long long)e->seq);
      continue;
    }
    ws_send(c, f);
    n++;
  }
  log_info("replayed room=%s user=%s last_seq=%llu messages=%zu", r->id, p->user_id,
           (unsigned long long)last_seq, n);
}

/* A waiter of the same user is replaced by the new connection. */
static void replace_waiter(struct hub *h, struct room *r, struct waiter *w) {
  struct conn *oc = w->session;
  r->held++; /* keep the room while its only waiter is replaced */
  signal_error(oc, API_ERR_SESSION_REPLACED, NULL, NULL, 0);
  oc->waiter = NULL;
  hub_waiter_leave(h, w, "replaced");
  ws_close(oc, 4001, "session replaced");
  r->held--;
}

void signal_join(struct conn *c, const char *room_id, const struct token_claims *claims, int admitted,
                 const char *resume_token, uint64_t last_seq) {
  struct hub *h = signal_hub(c);
  struct room *r = hub_room_find(h, room_id);
  if (r == NULL && (r = hub_room_create(h, room_id)) != NULL)
    history_origin(r->hist, claims->sub, NULL); /* history bounds count it against its creator */
  if (r == NULL) {
    ws_close(c, 1011, "internal error");
    return;
  }
  struct participant *p = room_participant_find(r, claims->sub);
  if (resume_token) {
    enum api_err e = resume_check(h, r, p, claims, resume_token, last_seq);
    if (e == API_OK) {
      replace_old(p);
      replay(h, c, r, p, last_seq);
      hub_member_back(h, p, c, 1);
      return;
    }
    log_info("resume_refused room=%s user=%s code=%s", r->id, claims->sub, api_err_code(e));
    room_error(h, c, r, e);
  }
  /* A member already in the room keeps its seat, role and hand. */
  if (p) {
    replace_old(p);
    hub_member_back(h, p, c, 0);
    return;
  }
  struct waiter *oldw = room_waiter_find(r, claims->sub);
  if (oldw) replace_waiter(h, r, oldw);
  int staff = claims->admin || claims->role >= ROOM_ROLE_MODERATOR;
  if (r->settings.waiting_room && !staff && !admitted) c->waiter = hub_waiter_enter(h, r, claims, c);
  else hub_member_join(h, r, claims, c);
}

/* ---- leaving ---- */

void signal_on_end(struct conn *c, enum conn_end why, int code) {
  struct hub *h = signal_hub(c);
  if (c->waiter) {
    struct waiter *w = c->waiter;
    c->waiter = NULL;
    hub_waiter_leave(h, w, "left");
    return;
  }
  struct participant *p = c->part;
  if (p == NULL) return;
  c->part = NULL;
  if (h->cfg->resume_grace_ms > 0 && !c->srv->shutting_down &&
      (why == CONN_END_CUT || why == CONN_END_TIMEOUT || (why == CONN_END_CLOSE && code == 1001))) {
    hub_member_away(h, p);
    return;
  }
  hub_member_leave(h, p, why == CONN_END_TIMEOUT ? "timeout" : "left");
}
