'use strict';
// The waiting room (docs/protocol.md waiting-room-join / -admit / -reject,
// endpoints 19-21): what a waiting user hears (only its own
// waiting-room-join), what moderators hear, admission and rejection over
// both transports, capacity, and who may skip it.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, people, ofType, allGet, settle } = require('./feature_helpers');

const waitingMsgs = (m) => /^waiting-room-/.test(m.type);

/** Opens a room with waiting_room on; returns people. */
async function waitingRoom(srv, room, specs) {
  const p = await people(srv, room, specs);
  const r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/settings`, p.hana.token, { waiting_room: true });
  assert.strictEqual(r.status, 200, r.text);
  await settle(Object.values(p));
  return p;
}

/** Connects user (a participant token unless role given) and takes its waiting-room-join. */
async function arrive(srv, room, user, position, claims = {}) {
  const token = roleTok(srv, user, claims.role || 'participant', room, claims);
  const c = await h.connect(srv, room, token);
  const w = await c.next();
  assert.strictEqual(w.type, 'waiting-room-join', `${user} hears waiting-room-join first: ${JSON.stringify(w)}`);
  assert.strictEqual(w.from, 'server');
  assert.deepStrictEqual(w.payload, { status: 'waiting', position });
  c.user = user;
  c.token = token;
  return c;
}

test('a waiting user hears only its waiting-room-join; hosts and moderators are told; the room is not', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await waitingRoom(srv, 'wr', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    const staff = [p.hana, p.mod];
    const t0 = Date.now();
    const w1 = await arrive(srv, 'wr', 'w1', 1, { name: 'Wendy' });
    const w2 = await arrive(srv, 'wr', 'w2', 2, { role: 'viewer' });
    for (const c of staff) {
      const a = await c.nextWhere(ofType('waiting-room-join'), 2000, `w1 at ${c.user}`);
      assert.strictEqual(a.from, 'server');
      assert.strictEqual(a.payload.user_id, 'w1');
      assert.strictEqual(a.payload.name, 'Wendy');
      assert.strictEqual(a.payload.status, 'waiting');
      assert.ok(Number.isInteger(a.payload.requested_at) && a.payload.requested_at >= t0 - 5000, JSON.stringify(a.payload));
      const b = await c.nextWhere(ofType('waiting-room-join'), 2000, `w2 at ${c.user}`);
      assert.strictEqual(b.payload.user_id, 'w2');
    }
    await p.pat.expectNoneWhere((m) => waitingMsgs(m) || m.type === 'user-joined', 'waiting news at a participant');

    // A waiting user cannot talk to the room (nothing reaches it either).
    for (const msg of [{ type: 'chat-message', payload: { text: 'let me in' } }, { type: 'hand-raise', payload: { raised: true } },
      { type: 'waiting-room-admit', payload: { user_id: 'w1' } }]) {
      w1.send(msg);
      assert.strictEqual((await w1.next('error')).payload.code, 'IN_WAITING_ROOM');
    }
    // The room goes on; the waiting users hear none of it.
    p.hana.send({ type: 'chat-message', payload: { text: 'room talk' } });
    p.hana.send({ type: 'role-updated', payload: { user_id: 'pat', role: 'viewer' } });
    p.hana.send({ type: 'room-settings-update', payload: { mute_on_join: true } });
    p.pat.send({ type: 'media-control', payload: { kind: 'audio', enabled: false } });
    await p.pat.nextWhere(ofType('media-control'));
    const mod2 = await h.join(srv, 'wr', 'mod2', { role: 'moderator', room: 'wr' }); // skips the waiting room
    mod2.user = 'mod2';
    assert.strictEqual(mod2.state.payload.self.role, 'moderator');
    assert.deepStrictEqual(mod2.state.payload.waiting_room.map((w) => [w.user_id, w.position]), [['w1', 1], ['w2', 2]]);
    const host2 = await h.join(srv, 'wr', 'host2', { role: 'host', room: 'wr' });
    assert.strictEqual(host2.state.type, 'room-state');
    for (const w of [w1, w2]) {
      await w.sync();
      assert.deepStrictEqual(w.all.filter((m) => m.type !== 'error').map((m) => m.type), ['waiting-room-join'],
        `${w.user} heard only its waiting-room-join`);
    }
    await arrive(srv, 'wr', 'late', 3); // participant tokens still wait

    // Endpoint 19 and the counts.
    let r = await h.api(srv, 'GET', '/webrtc/rooms/wr/waiting-room', p.mod.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.room_id, 'wr');
    assert.strictEqual(r.json.enabled, true);
    assert.deepStrictEqual(r.json.waiting.slice(0, 2).map((w) => [w.user_id, w.name, w.role, w.position]),
      [['w1', 'Wendy', 'participant', 1], ['w2', 'w2', 'viewer', 2]]);
    for (const w of r.json.waiting) assert.ok(Number.isInteger(w.requested_at));
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/wr/waiting-room', roleTok(srv, 'pat', 'participant', 'wr')), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/wr/waiting-room', w1.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/wr/waiting-room', roleTok(srv, 'mod', 'moderator', 'zz')), 403, 'TOKEN_ROOM_MISMATCH');
    await h.wsRefused(p.hana, { type: 'waiting-room-join', payload: { user_id: 'w1' } }, 'SERVER_ONLY_MESSAGE');

    // A waiting user leaving: moderators hear status left, participants nothing.
    await settle([p.hana, p.mod, mod2]);
    w2.ws.close();
    for (const c of [p.hana, p.mod, mod2]) {
      const m = await c.nextWhere(ofType('waiting-room-join', (x) => x.status === 'left'), 2000, `left at ${c.user}`);
      assert.deepStrictEqual(m.payload, { user_id: 'w2', status: 'left' });
    }
    await p.hana.expectNoneWhere(ofType('user-left'), 'user-left for a waiting user');
    r = await h.api(srv, 'GET', '/webrtc/rooms/wr/waiting-room', p.hana.token);
    assert.ok(!r.json.waiting.some((w) => w.user_id === 'w2'), r.text);
  });
});

test('admit (endpoint 20 and waiting-room-admit): admit notice, then room-state; the room sees user-joined', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await waitingRoom(srv, 'wa', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    const room = Object.values(p);
    const w1 = await arrive(srv, 'wa', 'w1', 1);
    const w2 = await arrive(srv, 'wa', 'w2', 2);
    const w3 = await arrive(srv, 'wa', 'w3', 3);
    await settle(room);

    // Denied and malformed first.
    await h.wsRefused(p.pat, { type: 'waiting-room-admit', payload: { user_id: 'w1' } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wa/waiting-room/w1/admit', p.pat.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wa/waiting-room/w1/admit', w1.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wa/waiting-room/bad!id/admit', p.hana.token), 400, 'INVALID_USER_ID');
    await h.wsRefused(p.hana, { type: 'waiting-room-admit', payload: { user_id: 5 } }, ['INVALID_MESSAGE', 'INVALID_USER_ID']);
    await h.wsRefused(p.hana, { type: 'waiting-room-admit', payload: {} }, ['INVALID_MESSAGE', 'INVALID_USER_ID']);
    await h.wsRefused(p.hana, { type: 'waiting-room-admit', payload: { user_id: 'pat' } }, 'WAITING_USER_NOT_FOUND');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wa/waiting-room/ghost/admit', p.hana.token), 404, 'WAITING_USER_NOT_FOUND');
    for (const c of [w1, w2, w3]) await c.expectNoneWhere(() => true, `a message to ${c.user}`);
    for (const c of room) await c.expectNoneWhere((m) => m.type === 'user-joined' || waitingMsgs(m), `admission news at ${c.user}`);

    let r = await h.api(srv, 'POST', '/webrtc/rooms/wa/waiting-room/w1/admit', p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { user_id: 'w1', status: 'admitted' });
    let m = await w1.next();
    assert.strictEqual(m.type, 'waiting-room-admit');
    assert.deepStrictEqual(m.payload, { user_id: 'w1', status: 'admitted', by: 'hana' });
    m = await w1.next();
    assert.strictEqual(m.type, 'room-state');
    assert.strictEqual(m.payload.self.user_id, 'w1');
    assert.strictEqual(m.payload.self.role, 'participant');
    assert.deepStrictEqual(m.payload.participants.map((x) => x.user_id), ['hana', 'mod', 'pat', 'w1']);
    for (const j of await allGet(room, ofType('user-joined'), 'user-joined w1')) assert.strictEqual(j.payload.user_id, 'w1');
    await p.pat.expectNoneWhere(waitingMsgs, 'waiting-room messages at a participant');
    await w2.expectNoneWhere(() => true, 'news of w1 at w2');

    p.mod.send({ type: 'waiting-room-admit', payload: { user_id: 'w2' } });
    m = await w2.next();
    assert.deepStrictEqual([m.type, m.payload], ['waiting-room-admit', { user_id: 'w2', status: 'admitted', by: 'mod' }]);
    assert.strictEqual((await w2.next()).type, 'room-state');
    for (const c of [...room, w1]) await c.nextWhere(ofType('user-joined', (x) => x.user_id === 'w2'), 2000, `w2 joined at ${c.user}`);

    // Already admitted: not waiting any more.
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wa/waiting-room/w1/admit', p.hana.token), 404, 'WAITING_USER_NOT_FOUND');
    await h.wsRefused(p.mod, { type: 'waiting-room-admit', payload: { user_id: 'w2' } }, 'WAITING_USER_NOT_FOUND');
    r = await h.api(srv, 'GET', '/webrtc/rooms/wa/waiting-room', p.hana.token);
    assert.deepStrictEqual(r.json.waiting.map((w) => [w.user_id, w.position]), [['w3', 1]]);
    r = await h.api(srv, 'GET', '/webrtc/rooms/wa/participants', p.pat.token);
    assert.strictEqual(r.json.count, 5);
    assert.strictEqual(r.json.waiting, 1);
    // Admitted users are full members.
    w1.send({ type: 'chat-message', payload: { text: 'thanks' } });
    assert.strictEqual((await p.pat.next('chat-message')).from, 'w1');
  });
});

test('reject (endpoint 21 and waiting-room-reject): reject notice, then close 4004', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await waitingRoom(srv, 'wj', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    const w1 = await arrive(srv, 'wj', 'w1', 1);
    const w2 = await arrive(srv, 'wj', 'w2', 2);
    const w3 = await arrive(srv, 'wj', 'w3', 3);
    await settle([p.hana, p.mod]);

    await h.wsRefused(p.pat, { type: 'waiting-room-reject', payload: { user_id: 'w1' } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wj/waiting-room/w1/reject', p.pat.token, {}), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wj/waiting-room/w1/reject', p.hana.token, '{"reason": '), 400, 'INVALID_JSON');
    h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/wj/waiting-room/${'x'.repeat(65)}/reject`, p.hana.token, {}), 400, 'INVALID_USER_ID');
    await h.wsRefused(p.hana, { type: 'waiting-room-reject', payload: { reason: 'who?' } }, ['INVALID_MESSAGE', 'INVALID_USER_ID']);
    await h.wsRefused(p.hana, { type: 'waiting-room-reject', payload: { user_id: 'pat' } }, 'WAITING_USER_NOT_FOUND');
    for (const c of [w1, w2, w3]) await c.expectNoneWhere(() => true, `a message to ${c.user}`);

    let r = await h.api(srv, 'POST', '/webrtc/rooms/wj/waiting-room/w1/reject', p.hana.token, { reason: 'Full <today>' });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { user_id: 'w1', status: 'rejected' });
    let m = await w1.next();
    assert.strictEqual(m.type, 'waiting-room-reject');
    assert.strictEqual(m.payload.user_id, 'w1');
    assert.strictEqual(m.payload.status, 'rejected');
    assert.strictEqual(m.payload.by, 'hana');
    assert.match(m.payload.reason, /^Full /);
    assert.ok(!m.payload.reason.includes('<'), `reason sanitized: ${m.payload.reason}`);
    await w1.waitClose();
    assert.strictEqual(w1.close.code, 4004);
    assert.deepStrictEqual(w1.all.map((x) => x.type), ['waiting-room-join', 'waiting-room-reject']);

    p.mod.send({ type: 'waiting-room-reject', payload: { user_id: 'w2', reason: 'no' } });
    m = await w2.next();
    assert.deepStrictEqual([m.type, m.payload], ['waiting-room-reject', { user_id: 'w2', status: 'rejected', reason: 'no', by: 'mod' }]);
    await w2.waitClose();
    assert.strictEqual(w2.close.code, 4004);

    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wj/waiting-room/w1/reject', p.hana.token, {}), 404, 'WAITING_USER_NOT_FOUND');
    await h.wsRefused(p.hana, { type: 'waiting-room-reject', payload: { user_id: 'w2' } }, 'WAITING_USER_NOT_FOUND');
    await p.pat.expectNoneWhere((m2) => waitingMsgs(m2) || m2.type === 'user-left' || m2.type === 'user-joined', 'rejections at a participant');
    await w3.expectNoneWhere(() => true, 'news of the others at w3');
    r = await h.api(srv, 'GET', '/webrtc/rooms/wj/waiting-room', p.mod.token);
    assert.deepStrictEqual(r.json.waiting.map((w) => [w.user_id, w.position]), [['w3', 1]]);
  });
});

test('waiting users do not take a seat until admitted; admission checks ROOM_FULL', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await waitingRoom(srv, 'wc', [['hana', 'host'], ['pat', 'participant']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/wc/settings', p.hana.token, { max_participants: 2 });
    assert.strictEqual(r.status, 200, r.text);
    const w1 = await arrive(srv, 'wc', 'w1', 1);
    const w2 = await arrive(srv, 'wc', 'w2', 2);
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wc/waiting-room/w1/admit', p.hana.token), 409, 'ROOM_FULL');
    await h.wsRefused(p.hana, { type: 'waiting-room-admit', payload: { user_id: 'w1' } }, 'ROOM_FULL');
    await w1.expectNoneWhere(() => true, 'a message to w1');
    // Staff do not wait, so they meet the limit at the door.
    await h.expectRefused(srv, 'wc', roleTok(srv, 'mod', 'moderator', 'wc'), 409, 'ROOM_FULL');
    r = await h.api(srv, 'GET', '/webrtc/rooms/wc/waiting-room', p.hana.token);
    assert.deepStrictEqual(r.json.waiting.map((w) => w.user_id), ['w1', 'w2'], 'still waiting');

    r = await h.api(srv, 'POST', '/webrtc/rooms/wc/settings', p.hana.token, { max_participants: 3 });
    assert.strictEqual(r.status, 200, r.text);
    r = await h.api(srv, 'POST', '/webrtc/rooms/wc/waiting-room/w1/admit', p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual((await w1.next()).type, 'waiting-room-admit');
    assert.strictEqual((await w1.next()).type, 'room-state');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/wc/waiting-room/w2/admit', p.hana.token), 409, 'ROOM_FULL');
    p.pat.ws.close();
    await p.hana.nextWhere(ofType('user-left'));
    r = await h.api(srv, 'POST', '/webrtc/rooms/wc/waiting-room/w2/admit', p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual((await w2.next()).type, 'waiting-room-admit');
    assert.strictEqual((await w2.next()).type, 'room-state');
  });
});

test('IN_WAITING_ROOM refusals carry the ref of the refused message', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    await waitingRoom(srv, 'wref', [['hana', 'host']]);
    const w = await arrive(srv, 'wref', 'w', 1);
    w.send({ type: 'chat-message', id: 'c42', payload: { text: 'hello?' } });
    const e = await w.next('error');
    assert.strictEqual(e.payload.code, 'IN_WAITING_ROOM');
    assert.deepStrictEqual({ payload_ref: e.payload.ref, ref: e.ref, room: e.room },
      { payload_ref: 'c42', ref: 'c42', room: 'wref' }, `error envelope: ${JSON.stringify(e)}`);
  });
});
