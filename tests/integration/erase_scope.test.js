'use strict';
// The in-memory erase's scope (src/room/durable.c erase_frame/json_names),
// found in review: a logged frame is left out of resume replays only when
// a field that holds user ids names the erased user. Before, any string
// equal to the id counted, the envelope's own "room" and the payload's
// role values included, so a user whose id is also a room's id (a
// personal room) or a role name ("host") took other members' messages out
// of the replay with it. docs/protocol.md ("Erase").

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');
const rh = require('./resume_helpers');

const { RATES_OFF, roleTok, people, ofType } = f;

test('erasing a user whose id is the room id keeps the other members\' chat in resume replays', async () => {
  // carol's personal room is called "carol"; hana and bob are in it too.
  const room = 'carol';
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['bob', 'participant'], ['carol', 'participant']]);
    const last = rh.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    await rh.cut(p.bob);
    await p.hana.nextWhere((m) => rh.isStatusOf(m, 'bob'), 3000, 'bob reconnecting');
    // hana speaks while bob is away: bob's resume must replay it.
    p.hana.send({ type: 'chat-message', id: 'h1', payload: { text: 'hana says hello' } });
    await p.hana.nextWhere((m) => m.type === 'chat-message' && m.ref === 'h1');
    const r = await f.rest(srv, 'POST', '/webrtc/admin/users/carol/erase', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    await p.carol.waitClose();
    await p.hana.nextWhere(ofType('user-left', (x) => x.user_id === 'carol'));
    const { before, state } = await rh.joinResume(srv, room, roleTok(srv, 'bob', 'participant', room), rt, last,
      { user: 'bob' });
    assert.strictEqual(state.payload.resumed, true, 'bob resumed');
    assert.ok(before.some((m) => m.type === 'chat-message' && m.from === 'hana' && m.payload.text === 'hana says hello'),
      `hana's chat (which does not name carol) is replayed to bob: ${rh.brief(before)}`);
  });
});

test('erasing a user whose id is a role name keeps the other members\' joins in resume replays', async () => {
  // A user called "host" (a valid id) joins as a plain participant; carl,
  // a host, joins after bob dropped. Erasing "host" must not drop carl's
  // user-joined, whose payload says "role":"host".
  const room = 'erzrole';
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, room, [['hana', 'host'], ['bob', 'participant'], ['host', 'participant']]);
    const last = rh.lastSeq(p.bob);
    const rt = p.bob.state.payload.self.resume_token;
    await rh.cut(p.bob);
    await p.hana.nextWhere((m) => rh.isStatusOf(m, 'bob'), 3000, 'bob reconnecting');
    await people(srv, room, [['carl', 'host']]);
    await p.hana.nextWhere(ofType('user-joined', (x) => x.user_id === 'carl'));
    const r = await f.rest(srv, 'POST', '/webrtc/admin/users/host/erase', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 200, r.text);
    await p.host.waitClose();
    const { before } = await rh.joinResume(srv, room, roleTok(srv, 'bob', 'participant', room), rt, last,
      { user: 'bob' });
    assert.ok(before.some((m) => m.type === 'user-joined' && m.payload.user_id === 'carl'),
      `carl's join (which does not name the user "host") is replayed to bob: ${rh.brief(before)}`);
  });
});

test('the id "server" cannot be erased: it is every server message\'s sender', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const r = await f.rest(srv, 'POST', '/webrtc/admin/users/server/erase', { token: f.adminTok(srv) });
    assert.strictEqual(r.status, 400, r.text);
    assert.strictEqual(r.json.error.code, 'BAD_REQUEST');
  });
});
