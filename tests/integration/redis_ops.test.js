'use strict';
// Several instances (issue 11) with main's operator surface (issue 15):
// /metrics of an instance passes promtool; validate, GET and DELETE of a room
// answer the same through any instance; a room made with POST /webrtc/rooms
// on one instance is the room members of another join.

const test = require('node:test');
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');
const f = require('./feature_helpers');
const rh = require('./redis_helpers');

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const admin = () => h.mintToken(h.SECRET, { sub: 'ops', admin: true });

test('cluster /metrics on the owner and on another instance: promtool check metrics finds nothing', async (t) => {
  if (!have('promtool')) {
    t.skip('promtool not installed (scripts/deps.sh test installs prometheus)');
    return;
  }
  await rh.withCluster(2, async (r, [A, B]) => {
    const a = await h.join(A, 'prom', 'alice', { role: 'host' });
    const b = await h.join(B, 'prom', 'bob');
    b.send({ type: 'chat-message', payload: { text: 'hi' } });
    await a.next('chat-message', 3000);
    for (const S of [A, B]) {
      const m = await h.api(S, 'GET', '/metrics', admin());
      assert.strictEqual(m.status, 200, m.text);
      assert.match(m.text, /^huddle_cluster_owned_rooms \d+$/m);
      const lint = spawnSync('promtool', ['check', 'metrics'], { input: m.text, encoding: 'utf8' });
      assert.strictEqual(lint.status, 0, `promtool: ${lint.stdout}${lint.stderr}`);
      assert.strictEqual(`${lint.stdout}${lint.stderr}`.trim(), '', 'no finding');
    }
    await a.end();
    await b.end();
  });
});

test('validate, GET and DELETE of a room owned by A, called on B; a room made on A is joined through B', async () => {
  await rh.withCluster(2, { args: f.RATES_OFF }, async (r, [A, B]) => {
    const host = await h.join(A, 'ops', 'hana', { role: 'host' });
    const bob = await h.join(B, 'ops', 'bob');
    await host.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'bob', 3000);
    // validate on B sees A's room state: the lock set through A's socket.
    host.send({ type: 'room-settings-update', payload: { settings: { locked: true } } });
    await host.next('room-settings-update', 3000);
    const wes = h.mintToken(h.SECRET, { sub: 'wes' });
    const onB = await h.api(B, 'GET', '/webrtc/rooms/ops/validate', wes);
    const onA = await h.api(A, 'GET', '/webrtc/rooms/ops/validate', wes);
    f.assertRestError(onB, 403, 'ROOM_LOCKED');
    assert.deepStrictEqual(onB.json, onA.json, 'validate answers the same on any instance');
    // GET of the room on B counts the members of both instances.
    const one = await h.api(B, 'GET', '/webrtc/rooms/ops', admin());
    assert.strictEqual(one.status, 200, one.text);
    assert.strictEqual(one.json.room.participants, 2, one.text);
    // DELETE on B closes the room everywhere with 4006.
    const del = await h.api(B, 'DELETE', '/webrtc/rooms/ops', admin());
    assert.strictEqual(del.status, 200, del.text);
    assert.strictEqual(del.json.closed, true);
    for (const c of [host, bob]) {
      f.assertWsError(await c.nextWhere((m) => m.type === 'error', 3000, 'ROOM_CLOSED'), 'ROOM_CLOSED');
      assert.strictEqual((await c.waitClose()).code, 4006);
    }
    f.assertRestError(await h.api(A, 'GET', '/webrtc/rooms/ops', admin()), 404, 'ROOM_NOT_FOUND');

    // POST /webrtc/rooms on A (with settings): a member joining through B is in that room.
    const mk = await h.api(A, 'POST', '/webrtc/rooms', admin(), { room_id: 'made', settings: { chat_enabled: false } });
    assert.strictEqual(mk.status, 201, mk.text);
    await h.waitFor(async () => (await rh.clusterHealth(A)).components.cluster.owned_rooms.includes('made'),
      3000, 50, 'A owns the room it made');
    const pat = await h.join(B, 'made', 'pat');
    const st = await h.api(B, 'GET', '/webrtc/rooms/made/settings', h.mintToken(h.SECRET, { sub: 'pat' }));
    assert.strictEqual(st.status, 200, st.text);
    assert.strictEqual(st.json.settings ? st.json.settings.chat_enabled : st.json.chat_enabled, false, st.text);
    await pat.end();
  });
});
