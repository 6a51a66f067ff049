'use strict';
// Issue 13 (hardening): one regression test per room-control defect a hostile
// participant could use. Each test names the defect number it keeps closed.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, tok, people, ofType, assertRestError, assertWsError } = require('./feature_helpers');

/** Joins room with a grant; resolves the client after its room-state. */
async function withGrant(srv, room, grant, user) {
  const c = await h.connect(srv, room, null, { via: 'none', query: `grant=${grant}` });
  const st = await c.next();
  assert.strictEqual(st.type, 'room-state', `${user} joins ${room} with its grant: ${JSON.stringify(st).slice(0, 300)}`);
  c.state = st;
  c.user = `${user}@${room}`;
  return c;
}

/** Connects with token and takes room-state. */
async function enter(srv, room, token, user) {
  const c = await h.connect(srv, room, token);
  const st = await c.next();
  assert.strictEqual(st.type, 'room-state', `${user} gets room-state: ${JSON.stringify(st).slice(0, 300)}`);
  c.state = st;
  c.user = user;
  return c;
}

async function createBreakout(srv, room, token, name = 'A') {
  const r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/breakout-rooms`, token, { name });
  assert.strictEqual(r.status, 201, r.text);
  return r.json.breakout_rooms[0].breakout_room_id;
}

/** Assigns user to bid over REST and returns the grant user's client c receives. */
async function assign(srv, room, bid, user, token, c) {
  const r = await h.api(srv, 'POST', `/webrtc/rooms/${room}/breakout-rooms/${bid}/assign/${user}`, token);
  assert.strictEqual(r.status, 200, r.text);
  const m = await c.nextWhere(ofType('breakout-room-assign', (x) => x.grant !== undefined), 2000, `grant for ${user}`);
  return m.payload.grant;
}

test('defect 1: role and permission changes made in the room survive reconnecting, replacing and REST', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd1', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['vic', 'participant']]);
    p.hana.send({ type: 'role-updated', payload: { user_id: 'mod', role: 'viewer' } });
    await p.mod.nextWhere(ofType('role-updated', (x) => x.user_id === 'mod' && x.role === 'viewer'));
    p.hana.send({ type: 'permission-updated', payload: { user_id: 'pat', permissions: { can_chat: false, can_publish_audio: false } } });
    await p.pat.nextWhere(ofType('permission-updated', (x) => x.user_id === 'pat'));

    // Reconnecting with the old token: still a viewer, still without chat and audio.
    await p.mod.end();
    await p.pat.end();
    const mod2 = await enter(srv, 'd1', p.mod.token, 'mod');
    assert.strictEqual(mod2.state.payload.self.role, 'viewer', 'the demoted moderator reconnects as a viewer');
    mod2.send({ type: 'participant-update', id: 'rm', payload: { action: 'remove', user_id: 'vic' } });
    assertWsError(await mod2.nextWhere(ofType('error')), 'PERMISSION_DENIED', 'rm');
    const pat2 = await enter(srv, 'd1', p.pat.token, 'pat');
    assert.strictEqual(pat2.state.payload.self.permissions.can_chat, false, 'can_chat stays revoked');
    assert.strictEqual(pat2.state.payload.self.permissions.can_publish_audio, false, 'can_publish_audio stays revoked');
    pat2.send({ type: 'chat-message', id: 'c1', payload: { text: 'hi' } });
    assertWsError(await pat2.nextWhere(ofType('error')), 'PERMISSION_DENIED', 'c1');

    // A second connection replacing the first keeps the changes too.
    const mod3 = await enter(srv, 'd1', p.mod.token, 'mod');
    assert.strictEqual(mod3.state.payload.self.role, 'viewer');

    // Over REST, out of the room: the token's role no longer speaks.
    await mod3.end();
    await h.delay(50);
    assertRestError(await h.api(srv, 'POST', '/webrtc/rooms/d1/participants/vic/remove', p.mod.token, {}), 403, 'PERMISSION_DENIED', 'demoted moderator over REST');
    assertRestError(await h.api(srv, 'GET', '/webrtc/rooms/d1/participants/enhanced', p.mod.token), 403, 'PERMISSION_DENIED');
    const r = await h.api(srv, 'GET', '/webrtc/rooms/d1/participants', p.vic.token);
    assert.ok(r.json.participants.some((x) => x.user_id === 'vic'), 'vic was not removed');
  });
});

test('defect 1 on the room core: with no grace period the member is gone, and the policy still speaks for it', async () => {
  await h.withServer({ args: RATES_OFF.concat(['--resume-grace-ms', '0']) }, async (srv) => {
    const p = await people(srv, 'd1g', [['hana', 'host'], ['mod', 'moderator'], ['vic', 'participant']]);
    p.hana.send({ type: 'role-updated', payload: { user_id: 'mod', role: 'viewer' } });
    await p.mod.nextWhere(ofType('role-updated', (x) => x.user_id === 'mod' && x.role === 'viewer'));
    await p.mod.end();
    await p.hana.nextWhere(ofType('user-left', (x) => x.user_id === 'mod'));
    const list = await h.api(srv, 'GET', '/webrtc/rooms/d1g/participants', p.vic.token);
    assert.ok(!list.json.participants.some((x) => x.user_id === 'mod'), 'mod left the room (no grace period)');
    // REST by a non-member: the in-room demotion outranks the token.
    assertRestError(await h.api(srv, 'POST', '/webrtc/rooms/d1g/participants/vic/remove', p.mod.token, {}), 403, 'PERMISSION_DENIED', 'non-member over REST');
    // Rejoin after leaving: a viewer again.
    const back = await enter(srv, 'd1g', p.mod.token, 'mod');
    assert.strictEqual(back.state.payload.self.role, 'viewer', 'rejoins as it was made in the room');
  });
});

test('defect 5: a host replacing its own session stays host; nobody else is handed host', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    // hana's token says moderator: she is host only because she came first.
    const p = await people(srv, 'd5', [['hana', 'moderator'], ['pat', 'participant']]);
    assert.strictEqual(p.hana.state.payload.self.role, 'host');
    const tab2 = await enter(srv, 'd5', p.hana.token, 'hana');
    assert.strictEqual(tab2.state.payload.self.role, 'host', 'the second tab keeps host');
    assertWsError(await p.hana.nextWhere(ofType('error')), 'SESSION_REPLACED');
    await p.pat.nextWhere(ofType('user-joined', (x) => x.user_id === 'hana'));
    const roles = p.pat.all.filter((m) => m.type === 'role-updated');
    assert.deepStrictEqual(roles, [], 'no host hand-off on a replacement');
    const r = await h.api(srv, 'GET', '/webrtc/rooms/d5/roles/pat', p.hana.token);
    assert.deepStrictEqual(r.json, { user_id: 'pat', role: 'participant' });
    const r2 = await h.api(srv, 'GET', '/webrtc/rooms/d5/roles/hana', p.hana.token);
    assert.deepStrictEqual(r2.json, { user_id: 'hana', role: 'host' });
  });
});

test('defect 2: a ban covers the breakout rooms: direct joins, REST reads and earlier grants', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd2', [['hana', 'host']]);
    const vicTok = tok(srv, { sub: 'vic', role: 'participant' }); // not bound to a room
    const vic = await enter(srv, 'd2', vicTok, 'vic');
    const A = await createBreakout(srv, 'd2', p.hana.token);
    const grant = await assign(srv, 'd2', A, 'vic', p.hana.token, vic);
    p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'vic', reason: 'spam' } });
    await vic.waitClose();
    await h.expectRefused(srv, A, vicTok, 403, 'USER_BANNED');
    await h.expectRefused(srv, A, null, 403, 'USER_BANNED', { via: 'none', query: `grant=${grant}` });
    for (const path of ['participants', 'settings', 'hand-raise/queue', 'recordings', 'live-streams']) {
      assertRestError(await h.api(srv, 'GET', `/webrtc/rooms/${A}/${path}`, vicTok), 403, 'USER_BANNED', path);
    }
  });
});

test('defect 3: grants are single-use, carry no role, die with their breakout room and respect the main room', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd3', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    const A = await createBreakout(srv, 'd3', p.hana.token, 'A');
    const B = await createBreakout(srv, 'd3', p.hana.token, 'B');

    // Single use.
    const patGrant = await assign(srv, 'd3', A, 'pat', p.hana.token, p.pat);
    // The validate endpoint only peeks: twice 200, and the grant still opens the room once.
    for (let i = 0; i < 2; i++) {
      const v = await h.httpGet(srv, `/webrtc/rooms/${A}/validate?grant=${patGrant}`);
      assert.strictEqual(v.status, 200, v.text);
      assert.strictEqual(JSON.parse(v.text).user_id, 'pat');
    }
    const patA = await withGrant(srv, A, patGrant, 'pat');
    await patA.end();
    await h.expectRefused(srv, A, null, 401, 'INVALID_TOKEN', { via: 'none', query: `grant=${patGrant}` });
    const spent = await h.httpGet(srv, `/webrtc/rooms/${A}/validate?grant=${patGrant}`);
    assertRestError(spent, 401, 'INVALID_TOKEN');

    // No role inside: demoted after the assignment, mod enters as a viewer and returns as one.
    const modGrant = await assign(srv, 'd3', A, 'mod', p.hana.token, p.mod);
    p.hana.send({ type: 'role-updated', payload: { user_id: 'mod', role: 'viewer' } });
    await p.mod.nextWhere(ofType('role-updated', (x) => x.user_id === 'mod'));
    const modA = await withGrant(srv, A, modGrant, 'mod');
    assert.strictEqual(modA.state.payload.self.role, 'viewer', 'the current role applies, not the one at assignment');
    let r = await h.api(srv, 'DELETE', `/webrtc/rooms/d3/breakout-rooms/${A}`, p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    const bye = await modA.next('breakout-room-close');
    await p.mod.end();
    const back = await withGrant(srv, 'd3', bye.payload.grant, 'mod');
    assert.strictEqual(back.state.payload.self.role, 'viewer', 'returns below its own token, as it was made');

    // Dies with its breakout room, and never re-creates it.
    const roomsBefore = (await h.health(srv)).rooms;
    const late = await assign(srv, 'd3', B, 'pat', p.hana.token, p.pat);
    r = await h.api(srv, 'DELETE', `/webrtc/rooms/d3/breakout-rooms/${B}`, p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    await h.expectRefused(srv, B, null, 401, 'INVALID_TOKEN', { via: 'none', query: `grant=${late}` });
    assert.strictEqual((await h.health(srv)).rooms, roomsBefore - 1, 'the closed breakout room stays closed');

    // The main room's lock and waiting room: no way around them through a breakout room.
    const C = await createBreakout(srv, 'd3', p.hana.token, 'C');
    r = await h.api(srv, 'POST', '/webrtc/rooms/d3/settings', p.hana.token, { locked: true, waiting_room: true });
    assert.strictEqual(r.status, 200, r.text);
    const sneak = tok(srv, { sub: 'sneak', role: 'participant' });
    await h.expectRefused(srv, 'd3', sneak, 403, 'ROOM_LOCKED');
    await h.expectRefused(srv, C, sneak, 403, 'PERMISSION_DENIED');
  });
});

test('defect 7: breakout rooms spend room_create, and an empty family closes', async () => {
  await h.withServer({ args: RATES_OFF.concat(['--rate-room-create', '1/1h']) }, async (srv) => {
    const p = await people(srv, 'd7', [['hana', 'host']]);
    p.hana.send({ type: 'breakout-room-create', id: 'b', payload: { count: 20 } });
    const e = await p.hana.nextWhere(ofType('error'));
    assertWsError(e, 'RATE_LIMIT_EXCEEDED', 'b');
    assert.strictEqual((await h.health(srv)).rooms, 1, 'no breakout room opened past the limit');
  });
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd7b', [['hana', 'host']]);
    p.hana.send({ type: 'breakout-room-create', payload: { count: 3 } });
    await p.hana.nextWhere(ofType('breakout-room-create'));
    assert.strictEqual((await h.health(srv)).rooms, 4);
    await p.hana.end();
    await h.waitFor(async () => (await h.health(srv)).rooms === 0, 3000, 20, 'the empty family closes');
  });
});

test('defect 9: waiting and rejected users read nothing of the room over REST', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd9', [['hana', 'host']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/d9/settings', p.hana.token, { waiting_room: true });
    assert.strictEqual(r.status, 200, r.text);
    const wTok = roleTok(srv, 'w1', 'participant', 'd9');
    const w1 = await h.connect(srv, 'd9', wTok);
    assert.strictEqual((await w1.next()).type, 'waiting-room-join');
    const paths = ['participants', 'settings', 'hand-raise/queue', 'recordings', 'live-streams', 'roles/hana', 'permissions/hana'];
    for (const path of paths) {
      const res = await h.api(srv, 'GET', `/webrtc/rooms/d9/${path}`, wTok);
      assertRestError(res, 403, 'IN_WAITING_ROOM', `waiting: ${path}`);
    }
    // Someone who would have to wait reads nothing either.
    const other = roleTok(srv, 'w2', 'participant', 'd9');
    assertRestError(await h.api(srv, 'GET', '/webrtc/rooms/d9/participants', other), 403, 'IN_WAITING_ROOM');
    r = await h.api(srv, 'POST', '/webrtc/rooms/d9/waiting-room/w1/reject', p.hana.token, {});
    assert.strictEqual(r.status, 200, r.text);
    await w1.waitClose();
    r = await h.api(srv, 'POST', '/webrtc/rooms/d9/settings', p.hana.token, { waiting_room: false });
    assert.strictEqual(r.status, 200, r.text);
    for (const path of paths) {
      const res = await h.api(srv, 'GET', `/webrtc/rooms/d9/${path}`, wTok);
      assertRestError(res, 403, 'PERMISSION_DENIED', `rejected: ${path}`);
    }
  });
});
