// Rooms managed ahead of time (POST/GET/DELETE /webrtc/rooms) and the
// validate endpoint that tells a client why an upgrade would be refused.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

test('a host pre-creates a room with settings; they hold before anyone joins; room_create is spent', async () => {
  await h.withServer({ rateLimits: true, args: ['--rate-room-create', '2/1h'] }, async (srv) => {
    const host = f.roleTok(srv, 'hana', 'host', 'standup');
    const r = await f.rest(srv, 'POST', '/webrtc/rooms', {
      token: host, json: { room_id: 'standup', settings: { locked: true, max_participants: 3, screen_share: 'moderators' } },
    });
    assert.strictEqual(r.status, 201, r.text);
    assert.strictEqual(r.json.room.room_id, 'standup');
    assert.strictEqual(r.json.room.participants, 0);
    assert.strictEqual(r.json.room.settings.locked, true);
    assert.strictEqual(r.json.room.settings.max_participants, 3);
    assert.strictEqual(r.json.room.settings.screen_share, 'moderators');
    assert.ok(r.json.room.empty_until > Date.now() + 200 * 1000, 'default empty timeout is 300 s');
    // The settings are the room's: a participant is refused by the lock, the host gets in.
    await h.expectRefused(srv, 'standup', f.roleTok(srv, 'pat', 'participant', 'standup'), 403, 'ROOM_LOCKED');
    const c = await h.join(srv, 'standup', 'hana', { role: 'host', room: 'standup' });
    assert.strictEqual(c.state.payload.settings.locked, true);
    await c.end();
    // A second create of an open room is refused; bad input is refused with the taxonomy.
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms', { token: f.adminTok(srv), json: { room_id: 'standup' } }),
      409, 'ROOM_ALREADY_EXISTS');
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms', { token: f.adminTok(srv), json: { room_id: 'a b' } }),
      400, 'INVALID_ROOM_ID');
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms', { token: f.adminTok(srv), json: { room_id: 'x', settings: { loud: 1 } } }),
      400, 'INVALID_SETTINGS');
    assert.strictEqual((await f.rest(srv, 'GET', '/webrtc/rooms/x', { token: f.adminTok(srv) })).status, 404,
      'a refused create leaves no room');
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms', { token: f.roleTok(srv, 'pat', 'participant'), json: { room_id: 'y' } }),
      403, 'FORBIDDEN');
    f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms', { token: host, json: { room_id: 'other' } }),
      403, 'TOKEN_ROOM_MISMATCH');
    // room_create: 2 per hour for hana; the first create spent one, the join of the open room none.
    const h2 = f.roleTok(srv, 'hana', 'host');
    assert.strictEqual((await f.rest(srv, 'POST', '/webrtc/rooms', { token: h2, json: { room_id: 'second' } })).status, 201);
    const lim = f.assertRestError(await f.rest(srv, 'POST', '/webrtc/rooms', { token: h2, json: { room_id: 'third' } }),
      429, 'RATE_LIMIT_EXCEEDED');
    assert.match(lim.detail, /room_create/);
  });
});

test('GET /webrtc/rooms lists live counts (admin); GET one; pre-created rooms survive the sweep until their empty timeout', async () => {
  await h.withServer(async (srv) => {
    const admin = f.adminTok(srv);
    assert.strictEqual((await f.rest(srv, 'POST', '/webrtc/rooms', { token: admin, json: { room_id: 'early', empty_timeout: 60 } })).status, 201);
    assert.strictEqual((await f.rest(srv, 'POST', '/webrtc/rooms', { token: admin, json: { room_id: 'brief', empty_timeout: 1 } })).status, 201);
    const { alice } = await f.joinAll(srv, 'live', [['alice'], ['bob']]);
    let list = await f.rest(srv, 'GET', '/webrtc/rooms', { token: admin });
    assert.strictEqual(list.status, 200, list.text);
    const byId = Object.fromEntries(list.json.rooms.map((x) => [x.room_id, x]));
    assert.strictEqual(byId.live.participants, 2);
    assert.strictEqual(byId.early.participants, 0);
    assert.strictEqual(list.json.count, list.json.rooms.length);
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rooms', { token: f.tok(srv, { sub: 'alice' }) }), 403, 'FORBIDDEN');
    const one = await f.rest(srv, 'GET', '/webrtc/rooms/live', { token: f.tok(srv, { sub: 'alice', room: 'live' }) });
    assert.strictEqual(one.status, 200, one.text);
    assert.strictEqual(one.json.room.participants, 2);
    await h.delay(1200);
    // Reading runs the idle sweep: 'brief' is past its timeout, 'early' is not.
    list = await f.rest(srv, 'GET', '/webrtc/rooms', { token: admin });
    const ids = list.json.rooms.map((x) => x.room_id).sort();
    assert.deepStrictEqual(ids, ['early', 'live']);
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rooms/brief', { token: admin }), 404, 'ROOM_NOT_FOUND');
    await alice.end();
  });
});

test('DELETE /webrtc/rooms/{id}: members and waiting users get ROOM_CLOSED then close 4006; history stays', async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    const admin = f.adminTok(srv);
    const ppl = await f.people(srv, 'doomed', [['hana', 'host'], ['pat', 'participant']]);
    await f.settle([ppl.hana, ppl.pat]);
    ppl.hana.send({ type: 'room-settings-update', payload: { settings: { waiting_room: true } } });
    await ppl.hana.next('room-settings-update');
    const w = await h.connect(srv, 'doomed', f.roleTok(srv, 'wes', 'participant', 'doomed'));
    assert.strictEqual((await w.next()).type, 'waiting-room-join');
    // A participant may not close the room.
    f.assertRestError(await f.rest(srv, 'DELETE', '/webrtc/rooms/doomed', { token: ppl.pat.token }), 403, 'FORBIDDEN');
    const r = await f.rest(srv, 'DELETE', '/webrtc/rooms/doomed', { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.closed, true);
    assert.strictEqual(r.json.disconnected, 3);
    for (const c of [ppl.hana, ppl.pat, w]) {
      const e = await c.nextWhere((m) => m.type === 'error', 2000, 'ROOM_CLOSED');
      f.assertWsError(e, 'ROOM_CLOSED');
      assert.match(e.payload.detail, /closed by ops/);
      const cl = await c.waitClose();
      assert.strictEqual(cl.code, 4006);
      assert.strictEqual(cl.reason, 'room closed');
    }
    f.assertRestError(await f.rest(srv, 'GET', '/webrtc/rooms/doomed', { token: admin }), 404, 'ROOM_NOT_FOUND');
    // The history is kept: the audit log names the deletion.
    const audit = await f.rest(srv, 'GET', '/webrtc/rooms/doomed/audit', { token: admin });
    assert.strictEqual(audit.status, 200, audit.text);
    assert.ok(JSON.stringify(audit.json).includes('room_delete'), audit.text);
    f.assertRestError(await f.rest(srv, 'DELETE', '/webrtc/rooms/doomed', { token: admin }), 404, 'ROOM_NOT_FOUND');
    // The id is free again.
    const again = await h.join(srv, 'doomed', 'pat');
    assert.strictEqual(again.state.payload.participants.length, 1);
    await again.end();
  });
});

test('the host closes its room with breakout rooms open: members inside the breakout room are told and disconnected too', async () => {
  await h.withServer({ args: f.RATES_OFF }, async (srv) => {
    const ppl = await f.people(srv, 'main', [['hana', 'host'], ['pat', 'participant'], ['sam', 'participant']]);
    await f.settle(Object.values(ppl));
    const b = await f.rest(srv, 'POST', '/webrtc/rooms/main/breakout-rooms', { token: ppl.hana.token, json: { rooms: [{ name: 'one' }] } });
    assert.strictEqual(b.status, 201, b.text);
    const bid = b.json.breakout_rooms[0].breakout_room_id;
    const a = await f.rest(srv, 'POST', `/webrtc/rooms/main/breakout-rooms/${bid}/assign/pat`, { token: ppl.hana.token });
    assert.strictEqual(a.status, 200, a.text);
    const move = await ppl.pat.nextWhere(f.ofType('breakout-room-assign', (x) => x.grant !== undefined), 2000, 'grant');
    const inBr = await h.connect(srv, bid, null, { via: 'none', query: `grant=${move.payload.grant}` });
    assert.strictEqual((await inBr.next()).type, 'room-state');
    const list = await f.rest(srv, 'GET', '/webrtc/rooms', { token: f.adminTok(srv) });
    const br = list.json.rooms.find((x) => x.room_id === bid);
    assert.strictEqual(br.parent_room, 'main');
    assert.strictEqual(br.participants, 1);
    const r = await f.rest(srv, 'DELETE', '/webrtc/rooms/main', { token: ppl.hana.token });
    assert.strictEqual(r.status, 200, r.text);
    for (const c of [ppl.hana, ppl.sam, inBr]) {
      f.assertWsError(await c.nextWhere((m) => m.type === 'error', 2000, 'ROOM_CLOSED'), 'ROOM_CLOSED');
      assert.strictEqual((await c.waitClose()).code, 4006);
    }
    const after = await f.rest(srv, 'GET', '/webrtc/rooms', { token: f.adminTok(srv) });
    assert.deepStrictEqual(after.json.rooms, [], after.text);
  });
});

test('validate: 200 with role and waiting_room when admitted; otherwise the upgrade\'s own refusal; no side effects', async () => {
  await h.withServer({ rateLimits: true, args: ['--rate-room-create', '1/1h', '--rate-settings-update', '100/1m'] }, async (srv) => {
    const v = (room, token, via = 'query') => (via === 'query'
      ? h.httpGet(srv, `/webrtc/rooms/${room}/validate?token=${encodeURIComponent(token)}`)
      : f.rest(srv, 'GET', `/webrtc/rooms/${room}/validate`, { token }));
    const pat = f.tok(srv, { sub: 'pat' });
    // No room yet: admitted (it would create it), and validating spends no room_create.
    for (let i = 0; i < 3; i++) {
      const ok = await v('fresh', pat);
      assert.strictEqual(ok.status, 200, ok.text);
      assert.deepStrictEqual(ok.json, { ok: true, room_id: 'fresh', user_id: 'pat', role: 'participant', waiting_room: false });
    }
    assert.strictEqual((await f.rest(srv, 'GET', '/webrtc/rooms', { token: f.adminTok(srv) })).json.count, 0, 'validate creates nothing');
    const c = await h.join(srv, 'fresh', 'pat'); // the one room_create of the hour
    // Now pat's budget is spent: validating another new room says so, like the upgrade.
    const lim = f.assertRestError(await v('other', pat), 429, 'RATE_LIMIT_EXCEEDED');
    assert.match(lim.detail, /room_create/);
    await h.expectRefused(srv, 'other', pat, 429, 'RATE_LIMIT_EXCEEDED');
    // Waiting room and lock, seen through the validate endpoint with a Bearer header.
    const host = await h.join(srv, 'fresh', 'hana', { role: 'host' });
    host.send({ type: 'room-settings-update', payload: { settings: { waiting_room: true } } });
    await host.next('room-settings-update');
    const w = await v('fresh', f.tok(srv, { sub: 'wes' }), 'header');
    assert.strictEqual(w.status, 200, w.text);
    assert.strictEqual(w.json.waiting_room, true);
    assert.strictEqual((await v('fresh', f.tok(srv, { sub: 'mo', role: 'moderator' }))).json.waiting_room, false);
    host.send({ type: 'room-settings-update', payload: { settings: { locked: true } } });
    await host.next('room-settings-update');
    const locked = await v('fresh', f.tok(srv, { sub: 'wes' }));
    const up = await h.expectRefused(srv, 'fresh', f.tok(srv, { sub: 'wes' }), 403, 'ROOM_LOCKED');
    assert.strictEqual(locked.status, up.status);
    assert.deepStrictEqual(locked.json, up.body, 'validate answers exactly what the upgrade answered');
    // Token refusals carry the check that failed, never the secret.
    const exp = f.assertRestError(await v('fresh', f.tok(srv, { sub: 'x', exp: h.nowS() - 5 })), 401, 'TOKEN_EXPIRED');
    assert.match(exp.detail, /expired/);
    const nbf = f.assertRestError(await v('fresh', f.tok(srv, { sub: 'x', nbf: h.nowS() + 600 })), 401, 'TOKEN_NOT_YET_VALID');
    assert.match(nbf.detail, /not yet valid/);
    const sig = f.assertRestError(await v('fresh', h.mintToken('another-secret-of-at-least-32-bytes-xx', { sub: 'x' })), 401, 'INVALID_TOKEN');
    assert.match(sig.detail, /signature/);
    assert.ok(!sig.detail.includes(h.SECRET));
    const room = f.assertRestError(await v('fresh', f.tok(srv, { sub: 'x', room: 'elsewhere' })), 403, 'TOKEN_ROOM_MISMATCH');
    assert.match(room.detail, /room binding/);
    const upRoom = await h.expectRefused(srv, 'fresh', f.tok(srv, { sub: 'x', room: 'elsewhere' }), 403, 'TOKEN_ROOM_MISMATCH');
    assert.match(upRoom.body.error.detail, /room binding/);
    f.assertRestError(await h.httpGet(srv, '/webrtc/rooms/fresh/validate'), 401, 'UNAUTHORIZED');
    f.assertRestError(await v('bad%20id', pat), 400, 'INVALID_ROOM_ID');
    await c.end();
    await host.end();
  });
});
