'use strict';
// Several instances (issue 11): the waiting room survives its owner. The
// waiters are in the room's snapshot with where they are connected, so a
// new owner still has the waiters of surviving instances, and a host admits
// them there without their reconnecting.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const rs = require('./resume_helpers');
const { roleTok } = require('./feature_helpers');

const { ownerOf } = rh;

/** user connects to srv and waits (its first message is its waiting-room-join). */
async function arrive(srv, room, user) {
  const c = await h.connect(srv, room, roleTok(srv, user, 'participant', room, { name: `N-${user}` }));
  const w = await c.next();
  assert.strictEqual(w.type, 'waiting-room-join', `${user}: ${JSON.stringify(w)}`);
  c.user = user;
  return c;
}

test('kill -9 the owner: waiters on the other instances wait on and are admitted by the new owner without reconnecting', async () => {
  await rh.withCluster(3, { args: ['--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'wfail';
    const a = await h.join(A, room, 'alice', { role: 'host', room });
    assert.strictEqual(await ownerOf([A, B, C], room), A);
    const carol = await h.join(C, room, 'carol', { room }); // a member on C, in before the waiting room
    let res = await h.api(A, 'POST', `/webrtc/rooms/${room}/settings`, roleTok(A, 'alice', 'host', room), { waiting_room: true });
    assert.strictEqual(res.status, 200, res.text);
    const mod = await h.join(B, room, 'mod', { role: 'moderator', room });
    const w1 = await arrive(C, room, 'w1'); // on C
    const w2 = await arrive(B, room, 'w2'); // on B
    const w3 = await arrive(A, room, 'w3'); // on the owner, which dies
    for (const u of ['w1', 'w2', 'w3']) {
      await mod.nextWhere((m) => m.type === 'waiting-room-join' && m.payload.user_id === u && m.payload.status === 'waiting', 3000);
    }
    const modTok = roleTok(B, 'mod', 'moderator', room);
    res = await h.api(C, 'GET', `/webrtc/rooms/${room}/waiting-room`, modTok);
    assert.deepStrictEqual(res.json.waiting.map((w) => w.user_id), ['w1', 'w2', 'w3'], res.text);
    const since = res.json.waiting[0].requested_at;

    A.proc.kill('SIGKILL');
    await A.exited;
    // The new owner's first entry reached both B and C: both know who owns the room now.
    for (const c of [mod, carol]) await c.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    const owner = await ownerOf([B, C], room);
    assert.ok(owner, 'B or C owns the room now');

    // The waiting room through either instance: the live instances' waiters,
    // in their order, with their names and since when; w3's instance is gone.
    for (const S of [B, C]) {
      res = await h.api(S, 'GET', `/webrtc/rooms/${room}/waiting-room`, modTok);
      assert.strictEqual(res.status, 200, res.text);
      assert.deepStrictEqual(res.json.waiting.map((w) => [w.user_id, w.name, w.position]),
        [['w1', 'N-w1', 1], ['w2', 'N-w2', 2]], res.text);
      assert.strictEqual(res.json.waiting[0].requested_at, since);
    }
    // Admitted over WebSocket (w1, on C) and over REST through C (w2, on B).
    mod.send({ type: 'waiting-room-admit', payload: { user_id: 'w1' } });
    res = await h.api(C, 'POST', `/webrtc/rooms/${room}/waiting-room/w2/admit`, modTok);
    assert.strictEqual(res.status, 200, res.text);
    for (const w of [w1, w2]) {
      const adm = await w.nextWhere((m) => m.type === 'waiting-room-admit', 5000, `${w.user} admitted`);
      assert.strictEqual(adm.payload.user_id, w.user);
      const st = await w.next('room-state', 5000);
      assert.strictEqual(st.payload.self.user_id, w.user);
      assert.strictEqual(st.payload.self.role, 'participant');
      assert.ok(w.ws.readyState === 1, `${w.user} kept its connection`);
    }
    h.assertApiError(await h.api(B, 'POST', `/webrtc/rooms/${room}/waiting-room/w3/admit`, modTok), 404, 'WAITING_USER_NOT_FOUND');
    // Both are members now: they talk to the room through their own instances.
    w1.send({ type: 'chat-message', payload: { text: 'from w1' } });
    w2.send({ type: 'chat-message', payload: { text: 'from w2' } });
    for (const c of [mod, carol, w1, w2]) await h.waitFor(() => rh.chats(c).length >= 2, 5000, 50, `${c.user || 'mod'} got both chats`);
    assert.deepStrictEqual(rh.chats(w1), rh.chats(mod));
    assert.deepStrictEqual(rh.chats(w2), rh.chats(mod));
    assert.deepStrictEqual(rh.chats(carol), rh.chats(mod));
    void a;
  });
});
