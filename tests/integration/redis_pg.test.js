'use strict';
// Several instances sharing one PostgreSQL (README "Several instances"):
// what one instance stored for a room is what another instance starts the
// room from when the room opens there next (its seq, so message ids never
// repeat; its settings; its policy: roles, bans), and the chat history,
// audit log and analytics read the same through every instance.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const { RATES_OFF } = require('./feature_helpers');

const { ownerOf, outcome } = rh;

test('a room used on A opens on B with what A stored: seq past A\'s message ids, settings, bans; history through both', async () => {
  await rh.withCluster(2, { args: RATES_OFF.concat(rh.sharedPg('rpg_reopen')) }, async (r, [A, B]) => {
    const room = 'pgre';
    const host = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const hana = await h.join(A, room, 'hana', { role: 'host' });
    assert.strictEqual(await ownerOf([A, B], room), A);
    const bob = await h.join(A, room, 'bob');
    const firstIds = [];
    for (const t of ['a1', 'a2', 'a3']) {
      hana.send({ type: 'chat-message', id: t, payload: { text: t } });
      firstIds.push((await hana.nextWhere((m) => m.type === 'chat-message' && m.ref === t, 3000)).payload.message_id);
    }
    const set = await h.api(A, 'POST', `/webrtc/rooms/${room}/settings`, host, { chat_enabled: true, reactions_enabled: false });
    assert.strictEqual(set.status, 200, set.text);
    const rm = await h.api(A, 'POST', `/webrtc/rooms/${room}/participants/bob/remove`, host, { reason: 'x' });
    assert.strictEqual(rm.status, 200, rm.text);
    await bob.waitClose(3000);
    hana.ws.close(1000);
    await h.waitFor(async () => (await ownerOf([A, B], room)) === null, 5000, 50, 'the room released');

    // The room again, opened through B.
    const hana2 = await h.join(B, room, 'hana', { role: 'host' });
    assert.strictEqual(await ownerOf([A, B], room), B);
    assert.strictEqual(hana2.state.payload.settings.reactions_enabled, false, JSON.stringify(hana2.state.payload.settings));
    hana2.send({ type: 'chat-message', id: 'b1', payload: { text: 'b1' } });
    const b1 = await hana2.nextWhere((m) => m.ref === 'b1', 3000);
    assert.strictEqual(b1.type, 'chat-message', JSON.stringify(b1));
    assert.ok(!firstIds.includes(b1.payload.message_id), `message id ${b1.payload.message_id} repeats one of ${firstIds}`);
    const got = await outcome(B, room, h.mintToken(h.SECRET, { sub: 'bob' }));
    assert.strictEqual(got, 'USER_BANNED', 'bob, removed on A, is refused on B');
    for (const S of [A, B]) {
      const hist = await h.api(S, 'GET', `/webrtc/rooms/${room}/chat?limit=100`, host);
      assert.strictEqual(hist.status, 200, hist.text);
      assert.deepStrictEqual(hist.json.messages.map((m) => m.text), ['a1', 'a2', 'a3', 'b1'], hist.text);
    }
  });
});

test('POST /webrtc/rooms through B for a room A used: created with what A stored (its ban holds, ids go on)', async () => {
  await rh.withCluster(2, { args: RATES_OFF.concat(rh.sharedPg('rpg_create')) }, async (r, [A, B]) => {
    const room = 'pgcr';
    const host = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const admin = h.mintToken(h.SECRET, { sub: 'ops', admin: true });
    const hana = await h.join(A, room, 'hana', { role: 'host' });
    const bob = await h.join(A, room, 'bob');
    hana.send({ type: 'chat-message', id: 'a1', payload: { text: 'a1' } });
    const a1 = await hana.nextWhere((m) => m.type === 'chat-message' && m.ref === 'a1', 3000);
    const rm = await h.api(A, 'POST', `/webrtc/rooms/${room}/participants/bob/remove`, host, { reason: 'x' });
    assert.strictEqual(rm.status, 200, rm.text);
    await bob.waitClose(3000);
    hana.ws.close(1000);
    await h.waitFor(async () => (await ownerOf([A, B], room)) === null, 5000, 50, 'the room released');
    const mk = await h.api(B, 'POST', '/webrtc/rooms', admin, { room_id: room });
    assert.strictEqual(mk.status, 201, mk.text);
    assert.strictEqual(await ownerOf([A, B], room), B);
    const got = await outcome(B, room, h.mintToken(h.SECRET, { sub: 'bob' }));
    assert.strictEqual(got, 'USER_BANNED', 'bob, removed on A, is refused in the room created on B');
    const hana2 = await h.join(B, room, 'hana', { role: 'host' });
    hana2.send({ type: 'chat-message', id: 'b1', payload: { text: 'b1' } });
    const b1 = await hana2.nextWhere((m) => m.ref === 'b1', 3000);
    assert.strictEqual(b1.type, 'chat-message', JSON.stringify(b1));
    assert.notStrictEqual(b1.payload.message_id, a1.payload.message_id);
  });
});
