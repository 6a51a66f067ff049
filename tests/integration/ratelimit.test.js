'use strict';
// Rate limits: every class trips at its configured count and recovers after
// waiting retry_after_ms; a refused message is not delivered, not counted and
// spends nothing; the defaults are the seed's; endpoint 31 reports the
// caller's real budget.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const OFFER = { type: 'offer', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n' };

function assertRateError(m, ref, cls) {
  f.assertWsError(m, 'RATE_LIMIT_EXCEEDED', ref);
  const ra = m.payload.retry_after_ms;
  assert.ok(Number.isInteger(ra) && ra > 0, `retry_after_ms > 0: ${JSON.stringify(m.payload)}`);
  if (cls) assert.match(String(m.payload.detail), new RegExp(cls), `detail names ${cls}`);
  return ra;
}

/** Waits retry_after_ms (plus a hair for timer rounding). */
const waitRetry = (ms) => h.delay(ms + 5);

test('chat_message 3/1s: 3 pass, the 4th is refused and not delivered; after retry_after_ms one passes', async () => {
  await h.withServer({ args: ['--rate-chat-message', '3/1s'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-chat', [['alice'], ['bob']]);
    for (let i = 1; i <= 3; i++) alice.send({ type: 'chat-message', id: `c${i}`, payload: { text: `m${i}` } });
    const seqs = [];
    for (let i = 1; i <= 3; i++) {
      const m = await bob.next();
      assert.strictEqual(m.payload.text, `m${i}`);
      seqs.push(m.seq);
      assert.strictEqual((await alice.next()).ref, `c${i}`);
    }
    alice.send({ type: 'chat-message', id: 'c4', payload: { text: 'too many' } });
    const ra = assertRateError(await alice.next(), 'c4', 'chat_message');
    assert.ok(ra <= 1000, `retry_after_ms ${ra} within the window`);
    await bob.expectNone(50);
    // Other classes are not affected, and the limit is per user.
    alice.send({ type: 'offer', to: 'bob', payload: OFFER });
    assert.strictEqual((await bob.next()).type, 'offer');
    bob.send({ type: 'chat-message', payload: { text: 'bob may' } });
    assert.strictEqual((await alice.next()).payload.text, 'bob may');
    await bob.next('chat-message');
    await waitRetry(ra);
    alice.send({ type: 'chat-message', id: 'c5', payload: { text: 'again' } });
    const m = await bob.next();
    assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
    assert.strictEqual(m.payload.text, 'again');
    assert.strictEqual((await alice.next()).ref, 'c5');
    alice.assertEnvelopes();
    bob.assertEnvelopes();
  });
});

test('reaction 3/1s: trips at 4 and recovers', async () => {
  await h.withServer({ args: ['--rate-reaction', '3/1s'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-react', [['alice'], ['bob']]);
    for (let i = 0; i < 3; i++) alice.send({ type: 'reaction', payload: { emoji: '👍' } });
    for (let i = 0; i < 3; i++) {
      assert.strictEqual((await bob.next()).type, 'reaction');
      await alice.next('reaction');
    }
    alice.send({ type: 'reaction', id: 'r4', payload: { emoji: '🎉' } });
    const ra = assertRateError(await alice.next(), 'r4', 'reaction');
    await bob.expectNone(50);
    // Chat is another class.
    alice.send({ type: 'chat-message', payload: { text: 'still chatting' } });
    assert.strictEqual((await bob.next()).type, 'chat-message');
    await alice.next('chat-message');
    await waitRetry(ra);
    alice.send({ type: 'reaction', id: 'r5', payload: { emoji: '🎉' } });
    const m = await bob.next();
    assert.deepStrictEqual([m.type, m.payload.emoji], ['reaction', '🎉']);
  });
});

test('websocket_message 3/1s applies to any type (offers, chat) and recovers', async () => {
  await h.withServer({ args: ['--rate-websocket-message', '3/1s'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-ws', [['alice'], ['bob']]);
    for (let i = 1; i <= 3; i++) alice.send({ type: 'offer', to: 'bob', payload: Object.assign({ n: i }, OFFER) });
    for (let i = 1; i <= 3; i++) assert.strictEqual((await bob.next('offer')).payload.n, i);
    alice.send({ type: 'offer', id: 'o4', to: 'bob', payload: Object.assign({ n: 4 }, OFFER) });
    const ra = assertRateError(await alice.next(), 'o4', 'websocket_message');
    alice.send({ type: 'chat-message', id: 'c', payload: { text: 'chat too' } });
    assertRateError(await alice.next(), 'c', 'websocket_message');
    await bob.expectNone(50);
    // bob has his own budget.
    bob.send({ type: 'offer', to: 'alice', payload: OFFER });
    assert.strictEqual((await alice.next()).type, 'offer');
    await waitRetry(ra);
    alice.send({ type: 'offer', id: 'o5', to: 'bob', payload: Object.assign({ n: 5 }, OFFER) });
    assert.strictEqual((await bob.next()).payload.n, 5);
  });
});

// "websocket_message ... counts every WebSocket message a client sends": a
// flood of messages the server refuses for their type must not be free.
test('websocket_message counts every message, also unknown, malformed and server-only ones', async () => {
  await h.withServer({ args: ['--rate-websocket-message', '3/1h'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-any', [['alice'], ['bob']]);
    alice.send({ type: 'no-such-type', id: 'u1' });
    f.assertWsError(await alice.next(), 'UNKNOWN_MESSAGE_TYPE', 'u1');
    alice.send({ type: 'hand-raise', id: 'u2' });
    f.assertWsError(await alice.next(), 'INVALID_MESSAGE', 'u2');
    alice.send({ type: 'room-state', id: 'u3' });
    f.assertWsError(await alice.next(), 'SERVER_ONLY_MESSAGE', 'u3');
    alice.send({ type: 'offer', id: 'o4', to: 'bob', payload: OFFER });
    const m = await alice.nextWhere(() => true, 300).catch(() => null);
    assert.ok(m, `the 4th message (an offer) should be refused; bob got ${JSON.stringify(bob.queue)}`);
    assertRateError(m, 'o4', 'websocket_message');
    await bob.expectNone(50);
  });
});

test('file_share 2/1s: the 3rd offer is refused and not delivered; recovers', async () => {
  await h.withServer({ args: ['--rate-file-share', '2/1s'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-file', [['alice'], ['bob']]);
    const offer = (id) => ({ type: 'file-share-offer', id, payload: { name: 'a.pdf', size: 10, mime_type: 'application/pdf', sha256: 'a'.repeat(64) } });
    alice.send(offer('f1'));
    alice.send(offer('f2'));
    for (let i = 0; i < 2; i++) {
      assert.strictEqual((await bob.next()).type, 'file-share-offer');
      await alice.next('file-share-offer');
    }
    alice.send(offer('f3'));
    const ra = assertRateError(await alice.next(), 'f3', 'file_share');
    assert.ok(ra <= 1000);
    await bob.expectNone(50);
    await waitRetry(ra);
    alice.send(offer('f4'));
    const m = await bob.next();
    assert.strictEqual(m.type, 'file-share-offer', JSON.stringify(m));
    assert.strictEqual((await alice.next()).ref, 'f4');
  });
});

test('room_create 2/1s: a join creating a 3rd room is refused with HTTP 429 before the upgrade; joining existing rooms is free; recovers', async () => {
  await h.withServer({ args: ['--rate-room-create', '2/1s'] }, async (srv) => {
    const a1 = await h.join(srv, 'rc1', 'alice');
    const a2 = await h.join(srv, 'rc2', 'alice');
    const err = await h.expectRefused(srv, 'rc3', f.tok(srv, { sub: 'alice' }), 429, 'RATE_LIMIT_EXCEEDED');
    // Joining rooms that exist does not create them.
    const b1 = await h.join(srv, 'rc1', 'bob');
    const b2 = await h.join(srv, 'rc2', 'bob');
    await a1.next('user-joined');
    await a2.next('user-joined');
    // Per user: carol may create.
    const c3 = await h.join(srv, 'rc-carol', 'carol');
    // Recovery: wait what the refusal said (or one emission interval, 500 ms, if it said nothing).
    const ra = err.body.error.retry_after_ms || 500;
    await waitRetry(ra);
    const a3 = await h.join(srv, 'rc3', 'alice');
    assert.strictEqual(a3.state.payload.participants.length, 1, 'alice created rc3');
    for (const c of [a1, a2, b1, b2, c3, a3]) await c.end();
  });
});

// "Rate-limit refusals add retry_after_ms and a Retry-After header."
test('room_create: the 429 refusal carries retry_after_ms and Retry-After', async () => {
  await h.withServer({ args: ['--rate-room-create', '1/1h'] }, async (srv) => {
    const a = await h.join(srv, 'only-one', 'alice');
    const err = await h.expectRefused(srv, 'second', f.tok(srv, { sub: 'alice' }), 429, 'RATE_LIMIT_EXCEEDED');
    const ra = err.body.error.retry_after_ms;
    assert.ok(Number.isInteger(ra) && ra > 0, `retry_after_ms in ${err.text}`);
    assert.ok(Number(err.headers['retry-after']) >= 1, `Retry-After header in ${JSON.stringify(err.headers)}`);
    await a.end();
  });
});

test('api_call 3/1s: the 4th REST call is 429 with Retry-After and retry_after_ms; per user, per address without a token; recovers', async () => {
  await h.withServer({ args: ['--rate-api-call', '3/1s'] }, async (srv) => {
    const alice = f.tok(srv, { sub: 'alice', role: 'host' });
    const bob = f.tok(srv, { sub: 'bob' });
    const calls = ['/webrtc/config', '/webrtc/config', '/webrtc/rooms/x/recordings'];
    for (const p of calls) {
      const r = await f.rest(srv, 'GET', p, { token: alice });
      assert.notStrictEqual(r.status, 429, `${p}: ${r.text}`);
    }
    const r4 = await f.rest(srv, 'GET', '/webrtc/config', { token: alice });
    const e = f.assertRestError(r4, 429, 'RATE_LIMIT_EXCEEDED');
    assert.ok(Number.isInteger(e.retry_after_ms) && e.retry_after_ms > 0 && e.retry_after_ms <= 1000, JSON.stringify(e));
    assert.strictEqual(r4.headers['retry-after'], String(Math.ceil(e.retry_after_ms / 1000)), 'Retry-After in whole seconds');
    // Health and the rate-limit status do not count and are not refused.
    assert.strictEqual((await f.rest(srv, 'GET', '/webrtc/health')).status, 200);
    const st = await f.rest(srv, 'GET', '/webrtc/rate-limits/api_call/status', { token: alice });
    assert.strictEqual(st.status, 200, st.text);
    assert.strictEqual(st.json.remaining, 0);
    // Another user is not affected.
    assert.strictEqual((await f.rest(srv, 'GET', '/webrtc/config', { token: bob })).status, 200);
    // Without a token: per address.
    for (let i = 0; i < 3; i++) assert.strictEqual((await f.rest(srv, 'GET', '/webrtc/config')).status, 200);
    const anon = await f.rest(srv, 'GET', '/webrtc/config');
    f.assertRestError(anon, 429, 'RATE_LIMIT_EXCEEDED');
    assert.ok(Number(anon.headers['retry-after']) >= 1);
    await waitRetry(e.retry_after_ms);
    assert.strictEqual((await f.rest(srv, 'GET', '/webrtc/config', { token: alice })).status, 200, 'recovered');
  });
});

// "Every REST call except health and the rate-limit status counts ... (per
// user with a token, per address without)": a call whose token does not verify
// has no user, so it must count against the address; otherwise forged tokens
// can be tried (and verified) without any limit.
test('api_call: calls with an invalid token are limited too (per address)', async () => {
  await h.withServer({ args: ['--rate-api-call', '2/1h'] }, async (srv) => {
    const forged = `${f.tok(srv, { sub: 'x', admin: true })}zz`;
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await f.rest(srv, 'GET', '/webrtc/stats', { token: forged })).status);
    assert.deepStrictEqual(codes, [401, 401, 429, 429], '4 calls with a budget of 2');
  });
});

// "Every REST call except health and the rate-limit status counts against
// the caller's api_call budget."
test('api_call: GET /metrics counts against the budget like any REST call', async () => {
  await h.withServer({ args: ['--rate-api-call', '2/1h'] }, async (srv) => {
    const admin = f.adminTok(srv, 'scraper');
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await f.rest(srv, 'GET', '/metrics', { token: admin })).status);
    assert.deepStrictEqual(codes, [200, 200, 429], '3 calls with a budget of 2');
  });
});

test('the default limits are the seed\'s (endpoint 31 and /webrtc/stats)', async () => {
  await h.withServer({ rateLimits: true }, async (srv) => {
    const expected = {
      websocket_message: [100, 60000],
      chat_message: [60, 60000],
      hand_raise: [5, 60000],
      reaction: [20, 60000],
      file_share: [10, 3600000],
      room_create: [10, 3600000],
      settings_update: [30, 60000],
      api_call: [300, 60000],
    };
    const token = f.tok(srv, { sub: 'dora' });
    for (const [type, [limit, windowMs]] of Object.entries(expected)) {
      const r = await f.rest(srv, 'GET', `/webrtc/rate-limits/${type}/status`, { token });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.limit_type, type);
      assert.strictEqual(r.json.user_id, 'dora');
      assert.strictEqual(r.json.limit, limit, `${type} limit`);
      assert.strictEqual(r.json.window_ms, windowMs, `${type} window_ms`);
      assert.ok(Number.isInteger(r.json.reset_ms) && r.json.reset_ms >= 0, `${type} reset_ms`);
      assert.ok(Number.isInteger(r.json.reset_at) && Math.abs(r.json.reset_at - Date.now() - r.json.reset_ms) < 5000, `${type} reset_at`);
      assert.strictEqual(r.json.remaining, limit, `${type}: a fresh budget is full`);
    }
    const s = await f.rest(srv, 'GET', '/webrtc/stats', { token: f.adminTok(srv) });
    assert.strictEqual(s.status, 200, s.text);
    for (const [type, [limit, windowMs]] of Object.entries(expected)) {
      assert.deepStrictEqual(s.json.rate_limits[type], { limit, window_ms: windowMs }, `stats rate_limits.${type}`);
    }
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rate-limits/bogus/status', { token }), 404, 'UNKNOWN_LIMIT_TYPE');
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rate-limits/Chat_Message/status', { token }), 404, 'UNKNOWN_LIMIT_TYPE');
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rate-limits/chat_message/status'), 401, 'UNAUTHORIZED');
  });
});

test('endpoint 31: the caller\'s remaining budget decreases as it sends chats; reading spends nothing; a refusal spends nothing', async () => {
  await h.withServer({ args: ['--rate-chat-message', '4/1h', '--rate-websocket-message', '50/1h'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-status', [['alice'], ['bob']]);
    const bobTok = f.tok(srv, { sub: 'bob' });
    const status = async (type, token = bobTok) => {
      const r = await f.rest(srv, 'GET', `/webrtc/rate-limits/${type}/status`, { token });
      assert.strictEqual(r.status, 200, r.text);
      return r.json;
    };
    assert.strictEqual((await status('chat_message')).remaining, 4);
    assert.strictEqual((await status('chat_message')).remaining, 4, 'reading spends nothing');
    for (let i = 1; i <= 3; i++) {
      bob.send({ type: 'chat-message', payload: { text: `n${i}` } });
      await alice.next('chat-message');
      await bob.next('chat-message');
      const s = await status('chat_message');
      assert.strictEqual(s.remaining, 4 - i, `after ${i} chat(s)`);
      assert.strictEqual(s.limit, 4);
      assert.ok(s.reset_ms > 0 && s.reset_ms <= 3600000, `reset_ms ${s.reset_ms}`);
      assert.strictEqual((await status('websocket_message')).remaining, 50 - i, 'each chat is also a WebSocket message');
    }
    // Another user's budget is untouched.
    assert.strictEqual((await status('chat_message', f.tok(srv, { sub: 'alice' }))).remaining, 4);
    bob.send({ type: 'chat-message', payload: { text: 'last' } });
    await alice.next('chat-message');
    await bob.next('chat-message');
    assert.strictEqual((await status('chat_message')).remaining, 0);
    // Refused for chat_message: the websocket_message budget is not spent either.
    bob.send({ type: 'chat-message', id: 'x', payload: { text: 'refused' } });
    assertRateError(await bob.next(), 'x', 'chat_message');
    assert.strictEqual((await status('websocket_message')).remaining, 46, 'a refused message spends nothing');
    assert.strictEqual((await status('chat_message')).remaining, 0);
    await alice.expectNone(50);
  });
});

test('a refused message is not half-applied: not delivered, takes no seq, not in analytics, counted as a rate-limit hit', async () => {
  await h.withServer({ args: ['--rate-chat-message', '2/1h'] }, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'rl-half', [['alice', { role: 'host' }], ['bob']]);
    const before = await f.metrics(srv);
    bob.send({ type: 'chat-message', payload: { text: 'one' } });
    bob.send({ type: 'chat-message', payload: { text: 'two' } });
    bob.send({ type: 'chat-message', id: 'three', payload: { text: 'three' } });
    const m1 = await alice.next();
    const m2 = await alice.next();
    assert.deepStrictEqual([m1.payload.text, m2.payload.text], ['one', 'two']);
    assertRateError(await bob.next('error'), 'three', 'chat_message');
    await alice.expectNone(100);
    // The refused message took no seq: the next room message follows m2 directly.
    bob.send({ type: 'reaction', payload: { emoji: '👍' } });
    const r = await alice.next();
    assert.strictEqual(r.type, 'reaction');
    assert.strictEqual(r.seq, m2.seq + 1, 'no seq spent on the refused message');
    const hostTok = f.tok(srv, { sub: 'alice', role: 'host' });
    const sum = await f.rest(srv, 'GET', '/webrtc/rooms/rl-half/analytics/summary', { token: hostTok });
    assert.strictEqual(sum.json.messages_by_type['chat-message'], 2, JSON.stringify(sum.json.messages_by_type));
    const evs = await f.rest(srv, 'GET', '/webrtc/rooms/rl-half/analytics', { token: hostTok });
    assert.strictEqual(evs.json.events.filter((e) => e.type === 'chat').length, 2);
    const after = await f.metrics(srv);
    assert.strictEqual(after.rate_limit_hits.chat_message - before.rate_limit_hits.chat_message, 1);
    assert.strictEqual((after.errors_by_code.RATE_LIMIT_EXCEEDED || 0) - (before.errors_by_code.RATE_LIMIT_EXCEEDED || 0), 1);
    assert.strictEqual((after.messages.out_by_type['chat-message'] || 0) - (before.messages.out_by_type['chat-message'] || 0), 4, '2 chats x 2 recipients');
  });
});

// docs/protocol.md "Rate limits": breakout rooms are rooms, each one
// room_create. With 3 an hour, the host's join that created the room spent
// one: three breakout rooms at once are one too many (refused whole, nothing
// spent), two fit, and then none is left (found in review: the check let
// the budget plus one through and ignored the last refusal).
test('room_create 3/1h: breakout rooms are counted one each, and a request for more than what is left is refused whole', async () => {
  await h.withServer({ args: ['--rate-room-create', '3/1h'] }, async (srv) => {
    const host = await h.join(srv, 'brc', 'hana', { role: 'host' });
    const tok = f.tok(srv, { sub: 'hana', role: 'host' });
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms/brc/breakout-rooms', { token: tok, json: { count: 3 } }),
      429, 'RATE_LIMIT_EXCEEDED');
    const two = await f.rest(srv, 'POST', '/webrtc/rooms/brc/breakout-rooms', { token: tok, json: { count: 2 } });
    assert.strictEqual(two.status, 201, two.text);
    const st = await f.rest(srv, 'GET', '/webrtc/rate-limits/room_create/status', { token: tok });
    assert.strictEqual(st.json.remaining, 0, st.text);
    await host.end();
  });
});
