'use strict';
// The hand-raise queue (docs/protocol.md hand-raise / hand-raise-queue,
// endpoints 17 and 18): FIFO positions, duplicates, lowering own and others',
// the queue broadcast on every change, a hand surviving its owner's
// reconnect, and "next speaker".

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, people, ofType, allGet, settle } = require('./feature_helpers');

const handMsgs = (m) => m.type === 'hand-raise' || m.type === 'hand-raise-queue';
const ids = (queue) => queue.map((x) => [x.user_id, x.position]);

/** Each client gets hand-raise (checked by want) and then hand-raise-queue; resolves the queues. */
async function change(cs, want, queue) {
  for (const c of cs) {
    const hr = await c.nextWhere(ofType('hand-raise'), 2000, `hand-raise at ${c.user}`);
    assert.strictEqual(hr.from, 'server');
    assert.deepStrictEqual(hr.payload, want, `hand-raise at ${c.user}`);
    const q = await c.nextWhere(ofType('hand-raise-queue'), 2000, `hand-raise-queue at ${c.user}`);
    assert.ok(c.all.indexOf(hr) < c.all.indexOf(q), 'hand-raise comes before the queue');
    assert.deepStrictEqual(ids(q.payload.queue), queue, `queue at ${c.user}`);
    for (const e of q.payload.queue) {
      assert.strictEqual(typeof e.name, 'string');
      assert.ok(Number.isInteger(e.raised_at), `raised_at on ${JSON.stringify(e)}`);
    }
  }
}

test('FIFO queue across three users, broadcast on every change, duplicates and lowering', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'hq', [['hana', 'host'], ['mod', 'moderator'], ['mod2', 'moderator'],
      ['a', 'participant', { name: 'Ann' }], ['b', 'participant'], ['c', 'viewer'], ['mute', 'participant', { perms: { can_raise_hand: false } }]]);
    const everyone = Object.values(p);
    const queue = [];
    for (const u of ['a', 'b', 'c']) {
      p[u].send({ type: 'hand-raise', payload: { raised: true } });
      queue.push([u, queue.length + 1]);
      await change(everyone, { user_id: u, raised: true, by: u, position: queue.length }, queue);
    }
    let r = await h.api(srv, 'GET', '/webrtc/rooms/hq/hand-raise/queue', p.b.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.room_id, 'hq');
    assert.deepStrictEqual(ids(r.json.queue), [['a', 1], ['b', 2], ['c', 3]]);
    assert.strictEqual(r.json.queue[0].name, 'Ann');

    // Refusals: nothing is broadcast.
    await h.wsRefused(p.a, { type: 'hand-raise', payload: { raised: true } }, 'HAND_ALREADY_RAISED');
    await h.wsRefused(p.hana, { type: 'hand-raise', payload: { raised: false } }, 'HAND_NOT_RAISED');
    await h.wsRefused(p.b, { type: 'hand-raise', payload: { raised: false, user_id: 'a' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.b, { type: 'hand-raise', payload: { raised: true, user_id: 'hana' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.hana, { type: 'hand-raise', payload: { raised: true, user_id: 'mod' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.b, { type: 'hand-raise', payload: { action: 'next' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.mute, { type: 'hand-raise', payload: { raised: true } }, 'PERMISSION_DENIED');
    p.mod2.send({ type: 'hand-raise', payload: { raised: true } });
    queue.push(['mod2', 4]);
    await change(everyone, { user_id: 'mod2', raised: true, by: 'mod2', position: 4 }, queue);
    await h.wsRefused(p.mod, { type: 'hand-raise', payload: { raised: false, user_id: 'mod2' } }, 'INSUFFICIENT_RANK');
    for (const payload of [{ raised: 'yes' }, {}, { raised: 1 }, { raised: false, user_id: 5 }, { action: 'skip' }]) {
      await h.wsRefused(p.mod, { type: 'hand-raise', payload }, 'INVALID_MESSAGE');
    }
    await h.wsRefused(p.mod, { type: 'hand-raise', payload: { raised: false, user_id: 'ghost' } }, 'USER_NOT_IN_ROOM');
    await h.wsRefused(p.a, { type: 'hand-raise-queue', payload: { queue: [] } }, 'SERVER_ONLY_MESSAGE');
    for (const c of everyone) await c.expectNoneWhere(handMsgs, `hand message from a refusal at ${c.user}`);

    // Lowering: own, then someone else's by a moderator.
    p.b.send({ type: 'hand-raise', payload: { raised: false } });
    await change(everyone, { user_id: 'b', raised: false, by: 'b' }, [['a', 1], ['c', 2], ['mod2', 3]]);
    await h.wsRefused(p.b, { type: 'hand-raise', payload: { raised: false } }, 'HAND_NOT_RAISED');
    p.mod.send({ type: 'hand-raise', payload: { raised: false, user_id: 'c' } });
    await change(everyone, { user_id: 'c', raised: false, by: 'mod' }, [['a', 1], ['mod2', 2]]);
    // Raising again goes to the back.
    p.b.send({ type: 'hand-raise', payload: { raised: true } });
    await change(everyone, { user_id: 'b', raised: true, by: 'b', position: 3 }, [['a', 1], ['mod2', 2], ['b', 3]]);
    const late = await h.join(srv, 'hq', 'late', { room: 'hq' });
    assert.deepStrictEqual(ids(late.state.payload.hand_raise_queue), [['a', 1], ['mod2', 2], ['b', 3]]);
  });
});

test('a raised hand survives its owner\'s reconnect: hidden while away, same place on return', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'hr', [['hana', 'host'], ['a', 'participant'], ['b', 'participant']]);
    for (const u of ['a', 'b']) {
      p[u].send({ type: 'hand-raise', payload: { raised: true } });
      await allGet([p.hana], ofType('hand-raise-queue', (x) => x.queue.some((e) => e.user_id === u)), `${u} raised`);
    }
    await settle(Object.values(p));
    p.a.ws.close();
    for (const c of [p.hana, p.b]) {
      await c.nextWhere(ofType('user-left', (x) => x.user_id === 'a'));
      const q = await c.nextWhere(ofType('hand-raise-queue', (x) => !x.queue.some((e) => e.user_id === 'a')), 2000, 'queue without a');
      assert.deepStrictEqual(ids(q.payload.queue), [['b', 1]]);
    }
    let r = await h.api(srv, 'GET', '/webrtc/rooms/hr/hand-raise/queue', p.b.token);
    assert.deepStrictEqual(ids(r.json.queue), [['b', 1]], 'hidden while away');

    const a = await h.join(srv, 'hr', 'a', { role: 'participant', room: 'hr' });
    assert.deepStrictEqual(ids(a.state.payload.hand_raise_queue), [['a', 1], ['b', 2]]);
    for (const c of [p.hana, p.b]) {
      const q = await c.nextWhere(ofType('hand-raise-queue', (x) => x.queue.some((e) => e.user_id === 'a')), 2000, `queue with a at ${c.user}`);
      assert.deepStrictEqual(ids(q.payload.queue), [['a', 1], ['b', 2]]);
    }
    r = await h.api(srv, 'GET', '/webrtc/rooms/hr/hand-raise/queue', p.b.token);
    assert.deepStrictEqual(ids(r.json.queue), [['a', 1], ['b', 2]]);
    await h.wsRefused(a, { type: 'hand-raise', payload: { raised: true } }, 'HAND_ALREADY_RAISED');
    a.send({ type: 'hand-raise', payload: { raised: false } });
    const q = await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1));
    assert.deepStrictEqual(ids(q.payload.queue), [['b', 1]]);
  });
});

test('next speaker: lowers the first hand, grants a viewer audio, asks only that user to unmute', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'nx', [['hana', 'host'], ['vic', 'viewer'], ['pat', 'participant'], ['obs', 'participant']]);
    const everyone = Object.values(p);
    for (const u of ['vic', 'pat']) {
      p[u].send({ type: 'hand-raise', payload: { raised: true } });
      await allGet(everyone, ofType('hand-raise-queue', (x) => x.queue.some((e) => e.user_id === u)), `${u} raised`);
    }
    await settle(everyone);
    await h.wsRefused(p.pat, { type: 'hand-raise', payload: { action: 'next' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.vic, { type: 'media-control', payload: { kind: 'audio', enabled: true } }, 'PERMISSION_DENIED');

    p.hana.send({ type: 'hand-raise', payload: { action: 'next' } });
    await change(everyone, { user_id: 'vic', raised: false, by: 'hana', reason: 'next_speaker' }, [['pat', 1]]);
    for (const m of await allGet(everyone, ofType('permission-updated'), 'audio granted')) {
      assert.strictEqual(m.payload.user_id, 'vic');
      assert.strictEqual(m.payload.permissions.can_publish_audio, true);
      assert.strictEqual(m.payload.permissions.can_publish_video, false);
      assert.strictEqual(m.payload.overrides.can_publish_audio, true);
      assert.strictEqual(m.payload.by, 'hana');
    }
    const ask = await p.vic.next('media-control');
    assert.strictEqual(ask.to, 'vic');
    assert.strictEqual(ask.payload.user_id, 'vic');
    assert.strictEqual(ask.payload.kind, 'audio');
    assert.strictEqual(ask.payload.enabled, true);
    assert.strictEqual(ask.payload.request, true);
    assert.strictEqual(ask.payload.by, 'hana');
    for (const c of [p.hana, p.pat, p.obs]) await c.expectNoneWhere(ofType('media-control'), `the unmute request at ${c.user}`);
    let r = await h.api(srv, 'GET', '/webrtc/rooms/nx/permissions/vic', p.obs.token);
    assert.strictEqual(r.json.permissions.can_publish_audio, true);
    // The viewer may now unmute.
    p.vic.send({ type: 'media-control', payload: { kind: 'audio', enabled: true } });
    await allGet(everyone, ofType('media-control', (x) => x.user_id === 'vic' && x.enabled && !x.request), 'vic unmuted');

    // Next over REST: pat already may publish audio, so no permission change.
    r = await h.api(srv, 'POST', '/webrtc/rooms/nx/hand-raise', p.hana.token, { action: 'next' });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json.queue, []);
    assert.strictEqual(r.json.next_speaker, 'pat');
    await change(everyone, { user_id: 'pat', raised: false, by: 'hana', reason: 'next_speaker' }, []);
    assert.strictEqual((await p.pat.next('media-control')).payload.request, true);
    for (const c of everyone) await c.expectNoneWhere((m) => m.type === 'permission-updated' || m.type === 'media-control', `extra message at ${c.user}`);
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/nx/hand-raise', p.pat.token, { action: 'next' }), 403, 'PERMISSION_DENIED');
    // Nobody left: a clear 4xx, nothing broadcast.
    r = await h.api(srv, 'POST', '/webrtc/rooms/nx/hand-raise', p.hana.token, { action: 'next' });
    assert.ok(r.status >= 400 && r.status < 500 && r.json && r.json.error, `next with an empty queue: ${r.text}`);
    for (const c of everyone) await c.expectNoneWhere(handMsgs, `hand message at ${c.user}`);
  });
});

test('endpoints 17 and 18: raise and lower over REST, same rules and broadcasts', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'hx', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    const url = '/webrtc/rooms/hx/hand-raise';
    let r = await h.api(srv, 'GET', `${url}/queue`, p.vic.token);
    assert.deepStrictEqual(r.json, { room_id: 'hx', queue: [] });

    r = await h.api(srv, 'POST', url, p.pat.token, { raised: true });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(ids(r.json.queue), [['pat', 1]]);
    await change(everyone, { user_id: 'pat', raised: true, by: 'pat', position: 1 }, [['pat', 1]]);
    r = await h.api(srv, 'POST', url, p.vic.token, { raised: true });
    assert.deepStrictEqual(ids(r.json.queue), [['pat', 1], ['vic', 2]]);
    await change(everyone, { user_id: 'vic', raised: true, by: 'vic', position: 2 }, [['pat', 1], ['vic', 2]]);

    h.assertApiError(await h.api(srv, 'POST', url, p.pat.token, { raised: true }), 409, 'HAND_ALREADY_RAISED');
    h.assertApiError(await h.api(srv, 'POST', url, p.vic.token, { raised: false, user_id: 'pat' }), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', url, p.pat.token, { action: 'next' }), 403, 'PERMISSION_DENIED');
    for (const body of [{ raised: 1 }, {}, { raised: 'true' }, { raised: false, user_id: ['pat'] }, '[true]']) {
      h.assertApiError(await h.api(srv, 'POST', url, p.pat.token, body), 400, 'INVALID_MESSAGE');
    }
    h.assertApiError(await h.api(srv, 'POST', url, p.pat.token, '{"raised": tru'), 400, 'INVALID_JSON');
    // A token for the room whose user is not in it has no hand to raise.
    h.assertApiError(await h.api(srv, 'POST', url, roleTok(srv, 'outsider', 'participant', 'hx'), { raised: true }), 404, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'GET', `${url}/queue`, roleTok(srv, 'pat', 'participant', 'elsewhere')), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'GET', `${url}/queue`, null), 401, 'UNAUTHORIZED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/empty-room/hand-raise/queue', roleTok(srv, 'x', 'participant', 'empty-room')), 404, 'ROOM_NOT_FOUND');
    for (const c of everyone) await c.expectNoneWhere(handMsgs, `hand message from a refusal at ${c.user}`);

    r = await h.api(srv, 'POST', url, p.mod.token, { raised: false, user_id: 'pat' });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(ids(r.json.queue), [['vic', 1]]);
    await change(everyone, { user_id: 'pat', raised: false, by: 'mod' }, [['vic', 1]]);
    h.assertApiError(await h.api(srv, 'POST', url, p.pat.token, { raised: false }), 409, 'HAND_NOT_RAISED');
    r = await h.api(srv, 'POST', url, p.vic.token, { raised: false });
    assert.deepStrictEqual(r.json.queue, []);
    await change(everyone, { user_id: 'vic', raised: false, by: 'vic' }, []);
  });
});

test('hand raises count against the hand_raise budget, over both transports', async () => {
  await h.withServer({ args: ['--rate-hand-raise', '2/1m'] }, async (srv) => {
    const p = await people(srv, 'hl', [['hana', 'host'], ['pat', 'participant']]);
    p.pat.send({ type: 'hand-raise', payload: { raised: true } });
    await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1));
    const r = await h.api(srv, 'POST', '/webrtc/rooms/hl/hand-raise', p.pat.token, { raised: false });
    assert.strictEqual(r.status, 200, r.text);
    await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 0));
    await settle([p.hana]);
    const e = await h.wsRefused(p.pat, { type: 'hand-raise', payload: { raised: true } }, 'RATE_LIMIT_EXCEEDED');
    assert.ok(e.payload.retry_after_ms > 0);
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/hl/hand-raise', p.pat.token, { raised: true }), 429, 'RATE_LIMIT_EXCEEDED');
    await p.hana.expectNoneWhere(handMsgs, 'a rate-limited raise');
  });
});
