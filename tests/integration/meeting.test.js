// A whole meeting, end to end: the host creates the room and turns the
// waiting room on, admits two users, one raises her hand, the host makes her
// moderator, she mutes the other, the host opens two breakout rooms, assigns
// both users, closes the rooms, and everyone is back in the main room with a
// consistent state. Every step is checked from each side.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const api = (srv, method, path, token, body) => h.httpRequest(srv, method, path, {
  headers: Object.assign({ Authorization: `Bearer ${token}` }, body ? { 'Content-Type': 'application/json' } : {}),
  body: body ? JSON.stringify(body) : undefined,
});

test('a whole meeting: waiting room, hand, roles, moderation, breakout rooms', async () => {
  await h.withServer({}, async (srv) => {
    const T = (sub, role) => h.mintToken(srv.secret, { sub, role, room: 'standup' });
    const hostTok = T('hana', 'host');
    const host = await h.join(srv, 'standup', 'hana', { role: 'host', room: 'standup' });
    assert.strictEqual(host.state.payload.self.role, 'host');

    // Waiting room on (REST), broadcast to the room.
    let r = await api(srv, 'POST', '/webrtc/rooms/standup/settings', hostTok, { waiting_room: true });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.settings.waiting_room, true);
    const upd = await host.next('room-settings-update');
    assert.strictEqual(upd.payload.settings.waiting_room, true);

    // Two users arrive and wait; they hear only waiting-room-join.
    const mia = await h.connect(srv, 'standup', T('mia', 'participant'));
    const ben = await h.connect(srv, 'standup', T('ben', 'participant'));
    for (const c of [mia, ben]) {
      const w = await c.next();
      assert.strictEqual(w.type, 'waiting-room-join');
      assert.strictEqual(w.payload.status, 'waiting');
    }
    const n1 = await host.next('waiting-room-join');
    const n2 = await host.next('waiting-room-join');
    assert.deepStrictEqual([n1.payload.user_id, n2.payload.user_id].sort(), ['ben', 'mia']);
    r = await api(srv, 'GET', '/webrtc/rooms/standup/waiting-room', hostTok);
    assert.deepStrictEqual(r.json.waiting.map((w) => w.user_id), ['mia', 'ben']);
    // A waiting user cannot talk to the room.
    mia.send({ type: 'chat-message', payload: { text: 'hi?' } });
    assert.strictEqual((await mia.next('error')).payload.code, 'IN_WAITING_ROOM');

    // Admit both: one over REST, one over the WebSocket.
    r = await api(srv, 'POST', '/webrtc/rooms/standup/waiting-room/mia/admit', hostTok);
    assert.strictEqual(r.status, 200, r.text);
    host.send({ type: 'waiting-room-admit', id: 'a2', payload: { user_id: 'ben' } });
    for (const c of [mia, ben]) {
      assert.strictEqual((await c.next()).type, 'waiting-room-admit');
      const st = await c.next();
      assert.strictEqual(st.type, 'room-state');
      c.state = st;
    }
    assert.deepStrictEqual(ben.state.payload.participants.map((p) => p.user_id), ['hana', 'mia', 'ben']);
    await host.next('user-joined');
    await host.next('user-joined');
    // Admitting someone no longer waiting is a clear error.
    r = await api(srv, 'POST', '/webrtc/rooms/standup/waiting-room/mia/admit', hostTok);
    assert.strictEqual(r.status, 404);
    assert.strictEqual(r.json.error.code, 'WAITING_USER_NOT_FOUND');

    // Mia raises her hand: everyone sees the queue with her at position 1.
    mia.send({ type: 'hand-raise', payload: { raised: true } });
    for (const c of [host, mia, ben]) {
      const q = await c.next('hand-raise-queue');
      assert.deepStrictEqual(q.payload.queue.map((x) => [x.user_id, x.position]), [['mia', 1]]);
    }
    mia.send({ type: 'hand-raise', id: 'dup', payload: { raised: true } });
    assert.strictEqual((await mia.next('error')).payload.code, 'HAND_ALREADY_RAISED');

    // The host makes Mia a moderator; everyone sees role-updated.
    host.send({ type: 'role-updated', payload: { user_id: 'mia', role: 'moderator' } });
    for (const c of [host, mia, ben]) {
      const ru = await c.next('role-updated');
      assert.strictEqual(ru.payload.user_id, 'mia');
      assert.strictEqual(ru.payload.role, 'moderator');
      assert.strictEqual(ru.payload.permissions.can_moderate, true);
    }
    // Ben unmutes himself; moderator Mia mutes him; she may not unmute him (he is asked).
    ben.send({ type: 'media-control', payload: { kind: 'audio', enabled: true } });
    assert.strictEqual((await host.next('media-control')).payload.enabled, true);
    mia.send({ type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'ben' } });
    for (const c of [host, ben]) {
      const m = await c.nextWhere((x) => x.type === 'media-control' && x.payload.by === 'mia');
      assert.strictEqual(m.payload.user_id, 'ben');
      assert.strictEqual(m.payload.enabled, false);
    }
    mia.send({ type: 'media-control', payload: { kind: 'audio', enabled: true, user_id: 'ben' } });
    const ask = await ben.nextWhere((x) => x.type === 'media-control' && x.payload.request === true);
    assert.strictEqual(ask.payload.by, 'mia');
    // A moderator cannot demote the host.
    mia.send({ type: 'role-updated', id: 'x', payload: { user_id: 'hana', role: 'participant' } });
    assert.strictEqual((await mia.next('error')).payload.code, 'INSUFFICIENT_RANK');

    // The host opens two breakout rooms and assigns one user to each.
    r = await api(srv, 'POST', '/webrtc/rooms/standup/breakout-rooms', hostTok, { rooms: [{ name: 'Design' }, { name: 'Ops' }] });
    assert.strictEqual(r.status, 201, r.text);
    const [design, ops] = r.json.breakout_rooms;
    assert.strictEqual(design.name, 'Design');
    r = await api(srv, 'POST', `/webrtc/rooms/standup/breakout-rooms/${design.breakout_room_id}/assign/mia`, hostTok);
    assert.strictEqual(r.status, 200, r.text);
    host.send({ type: 'breakout-room-assign', payload: { breakout_room_id: ops.breakout_room_id, user_id: 'ben' } });
    const moves = {};
    for (const [c, name] of [[mia, 'mia'], [ben, 'ben']]) {
      const a = await c.nextWhere((x) => x.type === 'breakout-room-assign' && x.payload.grant);
      moves[name] = a.payload;
    }
    assert.strictEqual(moves.mia.breakout_room_id, design.breakout_room_id);
    // Each moves with its grant (no new token) and keeps identity and role.
    const inRoom = {};
    for (const name of ['mia', 'ben']) {
      const m = moves[name];
      const c = await h.connect(srv, m.breakout_room_id, null, { via: 'none', query: `grant=${m.grant}` });
      const st = await c.next('room-state');
      assert.strictEqual(st.payload.self.user_id, name);
      assert.strictEqual(st.payload.self.role, name === 'mia' ? 'moderator' : 'participant');
      assert.strictEqual(st.payload.parent_room, 'standup');
      inRoom[name] = c;
    }
    assert.strictEqual((await h.health(srv)).rooms, 3);
    r = await api(srv, 'GET', '/webrtc/rooms/standup/participants', hostTok);
    mia.ws.close();
    ben.ws.close();
    await host.next('user-left');
    await host.next('user-left');
    // The main room lists its breakout rooms and who is where.
    r = await api(srv, 'GET', '/webrtc/rooms/standup/participants', hostTok);
    assert.deepStrictEqual(r.json.participants.map((p) => p.user_id), ['hana']);

    // Closing sends everyone back to the main room.
    for (const b of [design, ops]) {
      r = await api(srv, 'DELETE', `/webrtc/rooms/standup/breakout-rooms/${b.breakout_room_id}`, hostTok);
      assert.strictEqual(r.status, 200, r.text);
    }
    const back = {};
    for (const name of ['mia', 'ben']) {
      const c = inRoom[name];
      const bc = await c.next('breakout-room-close');
      assert.strictEqual(bc.payload.room_id, 'standup');
      await c.waitClose();
      assert.strictEqual(c.close.code, 4005);
      // The grant brings it straight back: it was admitted before (no waiting room).
      back[name] = await h.connect(srv, 'standup', null, { via: 'none', query: `grant=${bc.payload.grant}` });
    }
    const miaBack = await back.mia.next();
    assert.strictEqual(miaBack.type, 'room-state');
    assert.strictEqual(miaBack.payload.self.role, 'moderator');
    const benBack = await back.ben.next();
    assert.strictEqual(benBack.type, 'room-state');
    // Consistent state: three participants, no breakout rooms, mia moderator, hand queue kept.
    assert.deepStrictEqual(benBack.payload.participants.map((p) => [p.user_id, p.role]),
      [['hana', 'host'], ['mia', 'moderator'], ['ben', 'participant']]);
    assert.deepStrictEqual(benBack.payload.breakout_rooms, []);
    assert.deepStrictEqual(benBack.payload.hand_raise_queue.map((x) => x.user_id), ['mia']);
    assert.strictEqual((await h.health(srv)).rooms, 1);

    // The audit log has every moderation step, in order.
    r = await api(srv, 'GET', '/webrtc/rooms/standup/audit', hostTok);
    assert.strictEqual(r.status, 200, r.text);
    const actions = r.json.entries.map((e) => e.action);
    for (const a of ['settings_update', 'admit', 'role_set', 'mute', 'unmute_request', 'breakout_create', 'breakout_assign', 'breakout_close']) {
      assert.ok(actions.includes(a), `audit has ${a}: ${actions.join(',')}`);
    }
  });
});
