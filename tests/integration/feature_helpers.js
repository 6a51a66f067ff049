'use strict';
// Helpers shared by the feature tests (chat, reactions, files, recordings,
// live streams, stats, analytics, rate limits, metrics) and the room-control
// tests (roles, settings, moderation, hand, waiting, breakout, participants).
// Built on helpers.js; not a test file itself (node --test picks up *.test.js
// only).

const assert = require('node:assert');
const h = require('./helpers');

/** A token signed with the server's secret. */
function tok(srv, claims) {
  return h.mintToken(srv.secret || h.SECRET, claims);
}

/** An admin service token. */
function adminTok(srv, sub = 'ops') {
  return tok(srv, { sub, admin: true });
}

/**
 * A REST call. opts: token (Bearer), json (object, sent as application/json),
 * body (raw string) with contentType, headers. Resolves {status, headers, text, json}.
 */
function rest(srv, method, path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  let body;
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] = opts.contentType || 'application/json';
  } else if (opts.body !== undefined) {
    body = opts.body;
    if (opts.contentType) headers['Content-Type'] = opts.contentType;
  }
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  return h.httpRequest(srv, method, path, { headers, body });
}

/** Asserts a REST error: status, JSON error body with code, message and recovery. */
function assertRestError(res, status, code, what = '') {
  const ctx = `${what ? `${what}: ` : ''}HTTP ${res.status} ${res.text.slice(0, 400)}`;
  assert.strictEqual(res.status, status, ctx);
  assert.ok(res.json && res.json.error, `JSON error body: ${ctx}`);
  if (code) assert.strictEqual(res.json.error.code, code, ctx);
  assert.strictEqual(typeof res.json.error.message, 'string', ctx);
  assert.strictEqual(typeof res.json.error.recovery, 'string', ctx);
  assert.match(String(res.headers['content-type']), /application\/json/, ctx);
  return res.json.error;
}

/** Asserts a WebSocket error message with code (and ref when given). */
function assertWsError(m, code, ref, what = '') {
  const ctx = `${what ? `${what}: ` : ''}${JSON.stringify(m).slice(0, 500)}`;
  assert.strictEqual(m.type, 'error', ctx);
  assert.strictEqual(m.from, 'server', ctx);
  assert.strictEqual(m.payload.code, code, ctx);
  assert.strictEqual(typeof m.payload.message, 'string', ctx);
  assert.strictEqual(typeof m.payload.recovery, 'string', ctx);
  if (ref !== undefined) {
    assert.strictEqual(m.ref, ref, `envelope ref: ${ctx}`);
    assert.strictEqual(m.payload.ref, ref, `payload ref: ${ctx}`);
  }
  return m;
}

/** Takes the very next message of c and asserts it is the error code. */
async function expectWsError(c, code, ref, what) {
  const m = await c.next();
  return assertWsError(m, code, ref, what);
}

/**
 * Joins users [user, claims] one after the other into room and drains the
 * user-joined messages, so every queue is empty afterwards. Returns the clients
 * as an object keyed by user id (and .list in join order).
 */
async function joinAll(srv, room, specs) {
  const list = [];
  for (const [user, claims] of specs) {
    const c = await h.join(srv, room, user, claims || {});
    for (const prev of list) {
      const j = await prev.next('user-joined');
      assert.strictEqual(j.payload.user_id, user);
    }
    list.push(c);
  }
  const out = { list };
  for (const c of list) out[c.user] = c;
  return out;
}

/** Asserts that none of the clients receives anything within ms. */
async function expectNoneAll(clients, ms = 150) {
  await Promise.all(clients.map((c) => c.expectNone(ms)));
}

// ---------------------------------------------------------------- room control

// startServer leaves the settings_update and hand_raise budgets at their defaults (30/min,
// 5/min); the room-control tests pass these args when they are not about rate limits.
const RATES_OFF = Object.freeze(['--rate-settings-update', '1000000/1m', '--rate-hand-raise', '1000000/1m']);

/** A token for sub with role in room; extra claims (overrides, name...) are merged in. */
function roleTok(srv, sub, role, room, extra = {}) {
  return tok(srv, Object.assign({ sub, role, room }, extra));
}

/**
 * Joins [user, role, extraClaims] in order into room and takes each one's
 * room-state (kept as .state); returns {user: client} with .user and .token set.
 * Later joins are left in the queues of the earlier ones (unlike joinAll).
 */
async function people(srv, room, specs) {
  const out = {};
  for (const [user, role, extra] of specs) {
    const token = roleTok(srv, user, role, room, extra);
    const c = await h.connect(srv, room, token);
    const st = await c.next();
    assert.strictEqual(st.type, 'room-state', `${user} gets room-state first: ${JSON.stringify(st).slice(0, 200)}`);
    c.state = st;
    c.user = user;
    c.token = token;
    out[user] = c;
  }
  return out;
}

/** A nextWhere predicate: a message of type whose payload (and message) pass pred. */
const ofType = (type, pred = () => true) => (m) => m.type === type && pred(m.payload, m);

/** Every client in cs receives a message matching pred; resolves them in order. */
const allGet = (cs, pred, what) => Promise.all(cs.map((c) => c.nextWhere(pred, 2000, `${what} at ${c.user}`)));

/** Waits until everything sent to cs so far has arrived, then forgets it. */
async function settle(cs) {
  for (const c of cs) {
    await c.sync();
    c.queue.length = 0;
  }
}

// ---------------------------------------------------------------- metrics

/** GET /webrtc/webrtc-metrics with an admin token; returns the JSON. */
async function metrics(srv) {
  const r = await rest(srv, 'GET', '/webrtc/webrtc-metrics', { token: adminTok(srv, 'metrics-reader') });
  assert.strictEqual(r.status, 200, r.text);
  return r.json;
}

/**
 * Text that libmagic calls text/plain, of exactly n bytes, unlike any other
 * (random letters every 97 bytes: no two alike, nothing compresses away);
 * each line starts with seed and a space when seed is given.
 */
function textBytes(n, seed) {
  const crypto = require('node:crypto');
  const line = Buffer.from(`${seed === undefined ? '' : `${seed} `}the quick brown fox jumps over the lazy dog 0123456789\n`);
  const b = Buffer.alloc(n);
  for (let o = 0; o < n; o += line.length) line.copy(b, o, 0, Math.min(line.length, n - o));
  const rnd = crypto.randomBytes(Math.floor(n / 97));
  for (let i = 0; i < rnd.length; i++) b[i * 97] = 97 + (rnd[i] % 26);
  return b;
}

/**
 * alice shares data (text/plain) in room, where bob is too, and uploads it
 * in one tus PATCH; resolves {url, id, atok, btok, alice, bob} once the
 * file is ready to download.
 */
async function shareFile(srv, room, data, name = 'f.txt') {
  const crypto = require('node:crypto');
  const { alice, bob } = await joinAll(srv, room, [['alice'], ['bob']]);
  const atok = tok(srv, { sub: 'alice', room });
  const btok = tok(srv, { sub: 'bob', room });
  const ref = `o${crypto.randomBytes(4).toString('hex')}`;
  const sha256 = crypto.createHash('sha256').update(data).digest('hex');
  alice.send({ type: 'file-share-offer', id: ref, payload: { name, size: data.length, mime_type: 'text/plain', sha256 } });
  const echo = await alice.nextWhere((x) => x.ref === ref, 3000, 'offer echo');
  const url = echo.payload.upload_url;
  const p = await rest(srv, 'PATCH', url, {
    token: atok, body: data,
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
  });
  assert.strictEqual(p.status, 204, p.text);
  await alice.next('file-share-complete', 20000);
  return { url, id: url.split('/').pop(), atok, btok, alice, bob };
}

module.exports = {
  shareFile,
  textBytes,
  tok,
  adminTok,
  rest,
  assertRestError,
  assertWsError,
  expectWsError,
  joinAll,
  expectNoneAll,
  metrics,
  RATES_OFF,
  roleTok,
  people,
  ofType,
  allGet,
  settle,
};
