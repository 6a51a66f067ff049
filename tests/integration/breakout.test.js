'use strict';
// Breakout rooms (docs/protocol.md breakout-room-create / -assign / -close,
// endpoints 22-24): creation and its limits, assignment with a grant that
// only the assigned user sees, joining with grants (identity, role and
// overrides carried over), the main room listing and outliving its breakout
// rooms, and closing with the way back.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, people, ofType, allGet, settle } = require('./feature_helpers');

const BR_ID = /^br-[0-9a-f]{12}$/;

/** Joins room with a grant; resolves the client after its room-state. */
async function withGrant(srv, room, grant, user) {
  const c = await h.connect(srv, room, null, { via: 'none', query: `grant=${grant}` });
  const st = await c.next();
  assert.strictEqual(st.type, 'room-state', `${user} joins ${room} with its grant: ${JSON.stringify(st).slice(0, 300)}`);
  c.state = st;
  c.user = `${user}@${room}`;
  return c;
}

/** The personal breakout-room-assign (with the grant) at c. */
async function myAssign(c, bid, by) {
  const m = await c.nextWhere(ofType('breakout-room-assign', (x) => x.grant !== undefined), 2000, `assignment at ${c.user}`);
  assert.strictEqual(m.from, 'server');
  assert.strictEqual(m.payload.breakout_room_id, bid);
  assert.strictEqual(m.payload.room_id, bid);
  assert.strictEqual(m.payload.by, by);
  assert.strictEqual(typeof m.payload.name, 'string');
  assert.match(m.payload.grant, /^[A-Za-z0-9_-]{16,}$/);
  assert.strictEqual(m.payload.url, `/webrtc/ws/${bid}?grant=${m.payload.grant}`);
  return m;
}

test('create: both forms, names sanitized, everyone in the main room told, at most 20, denied, malformed', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'bo', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    const everyone = Object.values(p);
    p.hana.send({ type: 'breakout-room-create', payload: { rooms: [{ name: 'Design' }, { name: '<b>Ops</b>\u202e' }] } });
    const got = await allGet(everyone, ofType('breakout-room-create'), 'create');
    for (const m of got) {
      assert.strictEqual(m.from, 'server');
      assert.strictEqual(m.payload.by, 'hana');
      assert.deepStrictEqual(m.payload.breakout_rooms, got[0].payload.breakout_rooms);
    }
    const [design, ops] = got[0].payload.breakout_rooms;
    assert.match(design.breakout_room_id, BR_ID);
    assert.match(ops.breakout_room_id, BR_ID);
    assert.notStrictEqual(design.breakout_room_id, ops.breakout_room_id);
    assert.strictEqual(design.name, 'Design');
    assert.match(ops.name, /Ops/);
    assert.ok(!/[<>\u202e]/.test(ops.name), `name sanitized: ${JSON.stringify(ops.name)}`);

    let r = await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.mod.token, { name: 'Solo' });
    assert.strictEqual(r.status, 201, r.text);
    assert.strictEqual(r.json.room_id, 'bo');
    assert.strictEqual(r.json.breakout_rooms.length, 1);
    assert.strictEqual(r.json.breakout_rooms[0].name, 'Solo');
    for (const m of await allGet(everyone, ofType('breakout-room-create'), 'create (REST)')) {
      assert.deepStrictEqual(m.payload, { breakout_rooms: r.json.breakout_rooms, by: 'mod' });
    }
    r = await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.hana.token, { count: 2 });
    assert.strictEqual(r.status, 201, r.text);
    assert.strictEqual(r.json.breakout_rooms.length, 2);
    for (const b of r.json.breakout_rooms) {
      assert.match(b.breakout_room_id, BR_ID);
      assert.ok(typeof b.name === 'string' && b.name.length > 0);
    }
    await allGet(everyone, ofType('breakout-room-create'), 'create (count)');
    assert.strictEqual((await h.health(srv)).rooms, 6, 'breakout rooms are rooms of their own');

    // Denied, malformed and over the limit: nothing created, nothing broadcast.
    await h.wsRefused(p.pat, { type: 'breakout-room-create', payload: { name: 'mine' } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.pat.token, { name: 'mine' }), 403, 'PERMISSION_DENIED');
    for (const body of [{ rooms: [] }, { rooms: [{ name: 5 }] }, { name: 'x'.repeat(65) }, {}, { count: 0 }, { count: 'two' }, { rooms: 'A' }]) {
      await h.wsRefused(p.hana, { type: 'breakout-room-create', payload: body }, 'INVALID_MESSAGE');
      h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.hana.token, body), 400, 'INVALID_MESSAGE');
    }
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.hana.token, { count: 16 }), 409, 'BREAKOUT_LIMIT_REACHED');
    for (const c of everyone) await c.expectNoneWhere(ofType('breakout-room-create'), `breakout-room-create from a refusal at ${c.user}`);
    assert.strictEqual((await h.health(srv)).rooms, 6, 'a refused batch opens nothing');
    r = await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.hana.token, { count: 15 });
    assert.strictEqual(r.status, 201, r.text);
    await h.wsRefused(p.hana, { type: 'breakout-room-create', payload: { name: 'one more' } }, 'BREAKOUT_LIMIT_REACHED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/bo/breakout-rooms', p.mod.token, { rooms: [{ name: 'again' }] }), 409, 'BREAKOUT_LIMIT_REACHED');
    const late = await h.join(srv, 'bo', 'late', { role: 'participant', room: 'bo' });
    assert.strictEqual(late.state.payload.breakout_rooms.length, 20);
    assert.ok(late.state.payload.breakout_rooms.every((b) => BR_ID.test(b.breakout_room_id) &&
      Array.isArray(b.assigned) && Array.isArray(b.participants)), JSON.stringify(late.state.payload.breakout_rooms[0]));
    assert.strictEqual((await h.health(srv)).rooms, 21);
  });
});

test('assign: the grant reaches only the assigned user; grants carry identity, role and overrides', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'ba', [['hana', 'host'], ['mod', 'moderator', { name: 'Mo', perms: { can_share_screen: false } }],
      ['mod2', 'moderator'], ['pat', 'participant', { name: 'Pat Q' }], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/ba/breakout-rooms', p.hana.token, { rooms: [{ name: 'A' }, { name: 'B' }] });
    assert.strictEqual(r.status, 201, r.text);
    const [A, B] = r.json.breakout_rooms.map((b) => b.breakout_room_id);
    await settle(everyone);

    // Denied, unknown, malformed.
    await h.wsRefused(p.pat, { type: 'breakout-room-assign', payload: { breakout_room_id: A, user_id: 'vic' } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/ba/breakout-rooms/${A}/assign/vic`, p.pat.token), 403, 'PERMISSION_DENIED');
    await h.wsRefused(p.mod, { type: 'breakout-room-assign', payload: { breakout_room_id: A, user_id: 'mod2' } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/ba/breakout-rooms/${A}/assign/hana`, p.mod.token), 403, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.hana, { type: 'breakout-room-assign', payload: { breakout_room_id: 'br-000000000000', user_id: 'vic' } }, 'BREAKOUT_NOT_FOUND');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/ba/breakout-rooms/br-000000000000/assign/vic', p.hana.token), 404, 'BREAKOUT_NOT_FOUND');
    h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/ba/breakout-rooms/${A}/assign/ghost`, p.hana.token), 404, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'POST', `/webrtc/rooms/ba/breakout-rooms/${A}/assign/bad!id`, p.hana.token), 400, 'INVALID_USER_ID');
    await h.wsRefused(p.hana, { type: 'breakout-room-assign', payload: { user_id: 'vic' } }, ['BREAKOUT_NOT_FOUND', 'INVALID_MESSAGE']);
    await h.wsRefused(p.hana, { type: 'breakout-room-assign', payload: { breakout_room_id: A, user_id: 7 } }, ['INVALID_USER_ID', 'INVALID_MESSAGE']);
    for (const c of everyone) await c.expectNoneWhere(ofType('breakout-room-assign'), `breakout-room-assign from a refusal at ${c.user}`);

    // WebSocket assignment: pat alone gets the grant; the main room gets the news without it.
    p.hana.send({ type: 'breakout-room-assign', payload: { breakout_room_id: A, user_id: 'pat' } });
    const patMove = await myAssign(p.pat, A, 'hana');
    assert.strictEqual(patMove.to, 'pat');
    assert.strictEqual(patMove.payload.name, 'A');
    for (const c of everyone.filter((x) => x !== p.pat)) {
      const m = await c.nextWhere(ofType('breakout-room-assign'), 2000, `news at ${c.user}`);
      assert.deepStrictEqual(m.payload, { breakout_room_id: A, name: 'A', user_id: 'pat', by: 'hana' });
    }
    // REST assignment (by the host, of a moderator).
    r = await h.api(srv, 'POST', `/webrtc/rooms/ba/breakout-rooms/${A}/assign/mod`, p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { breakout_room_id: A, user_id: 'mod' });
    const modMove = await myAssign(p.mod, A, 'hana');
    for (const c of everyone.filter((x) => x !== p.mod)) {
      await c.nextWhere(ofType('breakout-room-assign', (x) => x.user_id === 'mod' && x.grant === undefined), 2000, `news at ${c.user}`);
    }
    for (const c of everyone) {
      await c.sync();
      const seen = JSON.stringify(c.all);
      if (c !== p.pat) assert.ok(!seen.includes(patMove.payload.grant), `pat's grant leaked to ${c.user}`);
      if (c !== p.mod) assert.ok(!seen.includes(modMove.payload.grant), `mod's grant leaked to ${c.user}`);
    }

    // Grants are checked like tokens.
    await h.expectRefused(srv, A, null, 401, 'INVALID_TOKEN', { via: 'none', query: `grant=${'0'.repeat(64)}` });
    await h.expectRefused(srv, A, null, 401, 'INVALID_TOKEN', { via: 'none', query: 'grant=expired-or-made-up' });
    await h.expectRefused(srv, B, null, 403, 'TOKEN_ROOM_MISMATCH', { via: 'none', query: `grant=${patMove.payload.grant}` });
    await h.expectRefused(srv, 'ba', null, 403, 'TOKEN_ROOM_MISMATCH', { via: 'none', query: `grant=${patMove.payload.grant}` });

    // Moving: same user, name, role and overrides; a moderator is not made host there.
    const patA = await withGrant(srv, A, patMove.payload.grant, 'pat');
    let self = patA.state.payload.self;
    assert.deepStrictEqual([self.user_id, self.name, self.role], ['pat', 'Pat Q', 'participant']);
    assert.strictEqual(patA.state.payload.parent_room, 'ba');
    const modA = await withGrant(srv, A, modMove.payload.grant, 'mod');
    self = modA.state.payload.self;
    assert.deepStrictEqual([self.user_id, self.name, self.role], ['mod', 'Mo', 'moderator']);
    assert.strictEqual(self.permissions.can_share_screen, false, 'the permission override carries over');
    assert.strictEqual(self.permissions.can_moderate, true);
    assert.strictEqual((await patA.next('user-joined')).payload.user_id, 'mod');
    await h.wsRefused(modA, { type: 'breakout-room-create', payload: { name: 'nested' } }, 'INVALID_MESSAGE');
    await h.wsRefused(modA, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');

    // The main room lists its breakout rooms, who is assigned and who is there.
    const obs = await h.join(srv, 'ba', 'obs', { role: 'participant', room: 'ba' });
    const list = Object.fromEntries(obs.state.payload.breakout_rooms.map((b) => [b.breakout_room_id, b]));
    assert.deepStrictEqual(list[A], { breakout_room_id: A, name: 'A', assigned: ['pat', 'mod'], participants: ['pat', 'mod'] });
    assert.deepStrictEqual(list[B], { breakout_room_id: B, name: 'B', assigned: [], participants: [] });

    // Reassigning someone who is in a breakout room reaches it there.
    p.pat.ws.close();
    await p.hana.nextWhere(ofType('user-left', (x) => x.user_id === 'pat'));
    await settle([p.hana, patA, modA]);
    r = await h.api(srv, 'POST', `/webrtc/rooms/ba/breakout-rooms/${B}/assign/pat`, p.mod2.token);
    assert.strictEqual(r.status, 200, r.text);
    const again = await myAssign(patA, B, 'mod2');
    assert.strictEqual(again.payload.name, 'B');
    const news = await p.hana.nextWhere(ofType('breakout-room-assign'));
    assert.deepStrictEqual(news.payload, { breakout_room_id: B, name: 'B', user_id: 'pat', by: 'mod2' });
    await modA.sync();
    assert.ok(!JSON.stringify(modA.all).includes(again.payload.grant), 'the grant is not shown to the breakout room');
    patA.ws.close();
    const patB = await withGrant(srv, B, again.payload.grant, 'pat');
    assert.strictEqual(patB.state.payload.self.role, 'participant');

    // Closing B over the WebSocket.
    await h.wsRefused(p.vic, { type: 'breakout-room-close', payload: { breakout_room_id: B } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.hana, { type: 'breakout-room-close', payload: {} }, ['BREAKOUT_NOT_FOUND', 'INVALID_MESSAGE']);
    await h.wsRefused(p.hana, { type: 'breakout-room-close', payload: { breakout_room_id: 'br-ffffffffffff' } }, 'BREAKOUT_NOT_FOUND');
    await settle([p.hana, p.vic]);
    p.hana.send({ type: 'breakout-room-close', payload: { breakout_room_id: B } });
    const bye = await patB.next('breakout-room-close');
    assert.strictEqual(bye.to, 'pat');
    assert.strictEqual(bye.payload.room_id, 'ba');
    assert.strictEqual(bye.payload.breakout_room_id, B);
    assert.strictEqual(bye.payload.url, `/webrtc/ws/ba?grant=${bye.payload.grant}`);
    await patB.waitClose();
    assert.strictEqual(patB.close.code, 4005);
    for (const c of [p.hana, p.vic]) {
      const m = await c.nextWhere(ofType('breakout-room-close'), 2000, `close news at ${c.user}`);
      assert.deepStrictEqual(m.payload, { breakout_room_id: B, name: 'B', returning: ['pat'], by: 'hana' });
    }
    assert.ok(!JSON.stringify(p.vic.all).includes(bye.payload.grant), 'the way back is not shown to the main room');
  });
});

test('the main room outlives its members while breakout rooms are open; closing sends everyone back past the waiting room', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'bc', [['hana', 'host'], ['pat', 'participant'], ['vic', 'viewer']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/bc/settings', p.hana.token, { waiting_room: true });
    assert.strictEqual(r.status, 200, r.text);
    r = await h.api(srv, 'POST', '/webrtc/rooms/bc/breakout-rooms', p.hana.token, { name: 'Everyone' });
    const A = r.json.breakout_rooms[0].breakout_room_id;
    const inA = {};
    for (const u of ['pat', 'vic', 'hana']) {
      r = await h.api(srv, 'POST', `/webrtc/rooms/bc/breakout-rooms/${A}/assign/${u}`, p.hana.token);
      assert.strictEqual(r.status, 200, r.text);
      const m = await myAssign(p[u], A, 'hana');
      inA[u] = await withGrant(srv, A, m.payload.grant, u);
      p[u].ws.close();
      await p[u].waitClose();
    }
    assert.strictEqual(inA.hana.state.payload.self.role, 'host');
    assert.strictEqual(inA.vic.state.payload.self.role, 'viewer');
    // Nobody is in the main room, yet it is open.
    await h.waitFor(async () => (await h.api(srv, 'GET', '/webrtc/rooms/bc/participants', p.hana.token)).json.count === 0, 2000, 50, 'main room empty');
    r = await h.api(srv, 'GET', '/webrtc/rooms/bc/participants', p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json.participants, []);
    assert.strictEqual((await h.health(srv)).rooms, 2);
    r = await h.api(srv, 'GET', '/webrtc/rooms/bc/settings', p.hana.token);
    assert.strictEqual(r.json.settings.waiting_room, true, 'the main room kept its settings');
    const mod = await h.join(srv, 'bc', 'mod', { role: 'moderator', room: 'bc' });
    mod.user = 'mod';
    assert.deepStrictEqual(mod.state.payload.breakout_rooms,
      [{ breakout_room_id: A, name: 'Everyone', assigned: ['pat', 'vic', 'hana'], participants: ['pat', 'vic', 'hana'] }]);

    h.assertApiError(await h.api(srv, 'DELETE', `/webrtc/rooms/bc/breakout-rooms/${A}`, p.pat.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'DELETE', '/webrtc/rooms/bc/breakout-rooms/br-123456789abc', p.hana.token), 404, 'BREAKOUT_NOT_FOUND');
    h.assertApiError(await h.api(srv, 'DELETE', `/webrtc/rooms/bc/breakout-rooms/${A}`, roleTok(srv, 'hana', 'host', A)), 403, 'TOKEN_ROOM_MISMATCH');
    for (const c of Object.values(inA)) await c.expectNoneWhere(ofType('breakout-room-close'), `close at ${c.user}`);

    r = await h.api(srv, 'DELETE', `/webrtc/rooms/bc/breakout-rooms/${A}`, p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { breakout_room_id: A, status: 'closed' });
    const back = {};
    const trailing = {};
    for (const [u, c] of Object.entries(inA)) {
      const m = await c.next('breakout-room-close');
      assert.deepStrictEqual(Object.keys(m.payload).sort(), ['breakout_room_id', 'by', 'grant', 'name', 'room_id', 'url']);
      assert.strictEqual(m.payload.breakout_room_id, A);
      assert.strictEqual(m.payload.name, 'Everyone');
      assert.strictEqual(m.payload.room_id, 'bc');
      assert.strictEqual(m.payload.by, 'hana');
      await c.waitClose();
      assert.strictEqual(c.close.code, 4005, `${u} closed with 4005`);
      // "4005: the breakout room was closed (the last message carries the way back)".
      trailing[u] = c.all.slice(c.all.indexOf(m) + 1).map((x) => `${x.type}(${x.payload.user_id || ''})`);
      back[u] = m.payload.grant;
    }
    const news = await mod.next('breakout-room-close');
    assert.deepStrictEqual(news.payload.returning.slice().sort(), ['hana', 'pat', 'vic']);
    assert.strictEqual(news.payload.by, 'hana');
    assert.ok(!JSON.stringify(mod.all).includes(back.pat), 'the grants are not shown to the main room');
    assert.strictEqual((await h.health(srv)).rooms, 1);
    h.assertApiError(await h.api(srv, 'DELETE', `/webrtc/rooms/bc/breakout-rooms/${A}`, p.hana.token), 404, 'BREAKOUT_NOT_FOUND');


    // The way back skips the waiting room, and roles are kept.
    for (const u of ['pat', 'vic', 'hana']) {
      const c = await withGrant(srv, 'bc', back[u], u);
      assert.strictEqual(c.state.payload.self.user_id, u);
      assert.strictEqual(c.state.payload.self.role, { pat: 'participant', vic: 'viewer', hana: 'host' }[u]);
      assert.strictEqual(c.state.payload.parent_room, undefined);
      assert.deepStrictEqual(c.state.payload.breakout_rooms, []);
      await mod.nextWhere(ofType('user-joined', (x) => x.user_id === u));
    }
    await mod.expectNoneWhere(ofType('waiting-room-join'), 'a returning user in the waiting room');
    // Checked last so that a failure here does not hide the rest.
    assert.deepStrictEqual(trailing, { pat: [], vic: [], hana: [] }, 'nothing follows breakout-room-close before the 4005 close');
  });
});

test('a host hand-off inside a breakout room does not make anyone host of the main room', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'bh', [['hana', 'host'], ['pat', 'participant']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/bh/breakout-rooms', p.hana.token, { name: 'A' });
    const A = r.json.breakout_rooms[0].breakout_room_id;
    const inA = {};
    for (const u of ['hana', 'pat']) {
      r = await h.api(srv, 'POST', `/webrtc/rooms/bh/breakout-rooms/${A}/assign/${u}`, p.hana.token);
      assert.strictEqual(r.status, 200, r.text);
      inA[u] = await withGrant(srv, A, (await myAssign(p[u], A, 'hana')).payload.grant, u);
    }
    p.pat.ws.close();
    await p.hana.nextWhere(ofType('user-left'));
    // The host leaves the breakout room (it is still in the main room).
    inA.hana.ws.close();
    await inA.pat.nextWhere(ofType('user-left'));
    r = await h.api(srv, 'DELETE', `/webrtc/rooms/bh/breakout-rooms/${A}`, p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    const bye = await inA.pat.next('breakout-room-close');
    const back = await withGrant(srv, 'bh', bye.payload.grant, 'pat');
    assert.strictEqual(back.state.payload.self.role, 'participant',
      `pat was a participant in the main room and returns as ${back.state.payload.self.role}`);
    r = await h.api(srv, 'GET', '/webrtc/rooms/bh/roles/pat', p.hana.token);
    assert.deepStrictEqual(r.json, { user_id: 'pat', role: 'participant' });
  });
});
