'use strict';
// Helpers for the reconnection tests (resume.test.js, resume_load.test.js):
// drop a connection without a close frame, reconnect with resume_token and
// last_seq, and read what a client received. Built on helpers.js; not a test
// file itself. The contract they test: ../shared/protocol.md "Connection
// lifecycle" and "Resume", and CONTRACTS.md "Reconnection".

const assert = require('node:assert');
const h = require('./helpers');

/**
 * Destroys c's TCP socket: no close frame is sent, as when a network drops.
 * Resolves once the client side has seen the close (code 1006 locally).
 */
async function cut(c) {
  const sock = c.ws._socket;
  assert.ok(sock, `cut: ${c.user || 'client'} has no socket (not open?)`);
  sock.destroy();
  await c.waitClose(2000);
}

/** The highest seq among everything c has received: what a client sends as last_seq. */
function lastSeq(c) {
  let max = -1;
  for (const m of c.all) if (m && Number.isInteger(m.seq) && m.seq > max) max = m.seq;
  assert.ok(max >= 0, `lastSeq: ${c.user || 'client'} has received no message with a seq`);
  return max;
}

/**
 * Opens /webrtc/ws/<room> with resume_token and last_seq in the query. The JWT goes in
 * the query too (the browser form) unless via is 'header'. A null/undefined resumeToken
 * or lastSeq leaves that parameter out.
 */
function connectResume(srv, room, token, resumeToken, lastSeqValue, { via = 'query', timeoutMs } = {}) {
  const q = [];
  if (resumeToken !== undefined && resumeToken !== null) q.push(`resume_token=${encodeURIComponent(resumeToken)}`);
  if (lastSeqValue !== undefined && lastSeqValue !== null) q.push(`last_seq=${encodeURIComponent(String(lastSeqValue))}`);
  return h.connect(srv, room, token, { via, query: q.join('&'), timeoutMs });
}

/**
 * Reconnects with resume_token and last_seq and reads every message up to and including
 * the first room-state. Resolves {c, before, state}: before holds what came before
 * room-state (on success: the replay). c.state, c.user and c.token are set.
 * opts: user (for messages), via ('query' | 'header'), timeoutMs (per message, 5000).
 */
async function joinResume(srv, room, token, resumeToken, lastSeqValue, opts = {}) {
  const c = await connectResume(srv, room, token, resumeToken, lastSeqValue, opts);
  c.user = opts.user;
  c.token = token;
  const before = [];
  for (;;) {
    const m = await c.next(undefined, opts.timeoutMs || 5000);
    if (m.type === 'room-state') {
      c.state = m;
      return { c, before, state: m };
    }
    before.push(m);
  }
}

/** A token for user in the server's secret (no room claim unless given). */
function tokenFor(srv, user, claims = {}) {
  return h.mintToken(srv.secret || h.SECRET, Object.assign({ sub: user }, claims));
}

/** Is m a message about user's presence: participant-update with a status, user-left, user-joined? */
function isPresenceOf(m, user) {
  if (!m || !m.payload || m.payload.user_id !== user) return false;
  if (m.type === 'user-left' || m.type === 'user-joined') return true;
  return m.type === 'participant-update' && Object.prototype.hasOwnProperty.call(m.payload, 'status');
}

/** Is m a participant-update with a status (reconnecting / connected) about user? */
function isStatusOf(m, user) {
  return isPresenceOf(m, user) && m.type === 'participant-update';
}

/** The presence messages about user among msgs (default: everything c received). */
function presenceOf(c, user, msgs = c.all) {
  return msgs.filter((m) => isPresenceOf(m, user));
}

/** The next presence message about user at c (others stay queued). */
function nextPresence(c, user, timeoutMs = 3000) {
  return c.nextWhere((m) => isPresenceOf(m, user), timeoutMs,
    `a presence message (participant-update status / user-left / user-joined) about ${user} at ${c.user}`);
}

/** A compact "seq:type(from->to)" list for failure messages. */
function brief(msgs) {
  return msgs.map((m) => `${m.seq}:${m.type}(${m.from}${m.to ? `->${m.to}` : ''}` +
    `${m.type === 'chat-message' && m.payload ? ` ${JSON.stringify(m.payload.text)}` : ''})`).join(' ');
}

/** m without the envelope's ref (an echo to the sender carries the sender's ref). */
function stripRef(m) {
  const o = Object.assign({}, m);
  delete o.ref;
  return o;
}

/** Asserts m is an error with code and no ref (resume failures answer no client message). */
function assertResumeError(m, code, what) {
  const ctx = `${what}: ${JSON.stringify(m).slice(0, 500)}`;
  assert.strictEqual(m.type, 'error', `${what}: expected an error ${code} first, got ${JSON.stringify(m).slice(0, 500)}`);
  assert.strictEqual(m.from, 'server', ctx);
  assert.ok(m.payload && typeof m.payload === 'object', ctx);
  assert.strictEqual(m.payload.code, code, ctx);
  assert.strictEqual(typeof m.payload.message, 'string', ctx);
  assert.strictEqual(typeof m.payload.recovery, 'string', ctx);
  assert.strictEqual(m.ref, undefined, `no envelope ref on a resume failure: ${ctx}`);
  assert.strictEqual(m.payload.ref, undefined, `no payload ref on a resume failure: ${ctx}`);
  return m;
}

module.exports = {
  cut,
  lastSeq,
  connectResume,
  joinResume,
  tokenFor,
  isPresenceOf,
  isStatusOf,
  presenceOf,
  nextPresence,
  brief,
  stripRef,
  assertResumeError,
};
