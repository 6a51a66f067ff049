'use strict';
// Several instances (issue 11): an owner killed with SIGKILL, and Redis
// stopped for 10 s mid-meeting.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const rs = require('./resume_helpers');

const { ownerOf } = rh;

test('kill -9 the owner: another instance takes over, the others carry on, its members resume elsewhere', async () => {
  await rh.withCluster(3, { args: ['--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'fail', 'alice', { role: 'host' });
    const b = await h.join(B, 'fail', 'bob');
    const c = await h.join(C, 'fail', 'carol');
    assert.strictEqual(await ownerOf([A, B, C], 'fail'), A, 'the first joiner\'s instance owns the room');
    await b.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);
    a.send({ type: 'chat-message', payload: { text: 'one' } });
    b.send({ type: 'chat-message', payload: { text: 'two' } });
    await h.waitFor(() => rh.chats(c).length >= 2 && rh.chats(a).length >= 2, 3000);
    const aLast = rs.lastSeq(a);
    const aRt = a.state.payload.self.resume_token;

    A.proc.kill('SIGKILL');
    await A.exited;
    // Bob and carol learn that alice is away (the new owner's grace period).
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    await c.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    const owner = await ownerOf([B, C], 'fail');
    assert.ok(owner, 'B or C owns the room now');
    // The meeting carries on between B and C.
    b.send({ type: 'chat-message', payload: { text: 'three' } });
    c.send({ type: 'chat-message', payload: { text: 'four' } });
    await h.waitFor(() => rh.chats(b).length >= 4 && rh.chats(c).length >= 4, 5000);
    assert.deepStrictEqual(rh.chats(b), rh.chats(c), 'bob and carol see the same order after the takeover');
    const seqs = rh.chats(b).map((s) => Number(s.split(':')[0]));
    assert.ok(seqs[2] > seqs[1], `seq goes on rising across the takeover: ${seqs}`);

    // Alice (her instance is gone) resumes on C and gets exactly what she missed.
    const tokA = rs.tokenFor(B, 'alice', { role: 'host' });
    const { before, state } = await rs.joinResume(C, 'fail', tokA, aRt, aLast, { user: 'alice' });
    assert.strictEqual(state.payload.resumed, true, JSON.stringify(state).slice(0, 400));
    const missed = before.filter((m) => m.type === 'chat-message').map((m) => m.payload.text);
    assert.deepStrictEqual(missed, ['three', 'four']);
    assert.strictEqual(state.payload.self.role, 'host', 'alice keeps her role across the takeover');
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'connected', 5000);
    const hb = await rh.clusterHealth(owner);
    assert.strictEqual(hb.components.cluster.takeovers, 1, JSON.stringify(hb.components.cluster));
  });
});

test('a paused owner loses the room: after SIGCONT it is fenced, steps down, and its members resume elsewhere', async () => {
  await rh.withCluster(3, async (r, [A, B, C]) => {
    const a = await h.join(A, 'pause', 'alice');
    const b = await h.join(B, 'pause', 'bob');
    const c = await h.join(C, 'pause', 'carol');
    await b.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'pause'), A);
    A.proc.kill('SIGSTOP');
    try {
      await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
      b.send({ type: 'chat-message', payload: { text: 'while A sleeps' } });
      await c.nextWhere((m) => m.type === 'chat-message', 3000);
    } finally {
      A.proc.kill('SIGCONT');
    }
    // The old owner finds its lease gone: it closes its members (1012) instead of acting on.
    const closed = await a.waitClose(10000);
    assert.strictEqual(closed.code, 1012, JSON.stringify(closed));
    assert.ok(!(await rh.clusterHealth(A)).components.cluster.owned_rooms.includes('pause'));
    const { state } = await rs.joinResume(C, 'pause', rs.tokenFor(C, 'alice'), a.state.payload.self.resume_token,
      rs.lastSeq(a), { user: 'alice' });
    assert.strictEqual(state.payload.resumed, true, JSON.stringify(state).slice(0, 300));
    b.send({ type: 'chat-message', payload: { text: 'all here' } });
    for (const cl of [b, c]) await cl.nextWhere((m) => m.type === 'chat-message' && m.payload.text === 'all here', 3000);
    assert.deepStrictEqual(rh.chats(b), rh.chats(c));
  });
});

test('kill -9 an instance that does not own the room: its members leave after the grace period', async () => {
  await rh.withCluster(3, { args: ['--resume-grace-ms', '1500'] }, async (r, [A, B, C]) => {
    const a = await h.join(A, 'ghost', 'alice');
    await h.join(B, 'ghost', 'bob');
    const c = await h.join(C, 'ghost', 'carol');
    await a.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);
    B.proc.kill('SIGKILL');
    await B.exited;
    // B's connection to the owner is gone only when the owner hears of it:
    // the client side TCP is dead, but the owner's session for bob lives on B.
    const left = await a.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'bob', 15000);
    assert.ok(['timeout', 'left'].includes(left.payload.reason), JSON.stringify(left));
    await c.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'bob', 3000);
  });
});

test('Redis stopped for 10 s mid-meeting: health says degraded, then the meeting carries on, nothing lost', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const a = await h.join(A, 'outage', 'alice');
    const b = await h.join(B, 'outage', 'bob');
    await a.nextWhere((m) => m.type === 'user-joined', 3000);
    a.send({ type: 'chat-message', payload: { text: 'before' } });
    await b.nextWhere((m) => m.type === 'chat-message', 3000);
    await r.stop();
    await h.waitFor(async () => (await rh.clusterHealth(B)).status === 'degraded', 5000, 100, 'B degraded');
    const hb = await rh.clusterHealth(A);
    assert.strictEqual(hb.status, 'degraded');
    assert.strictEqual(hb.components.cluster.redis, 'unavailable');
    // During the outage: alice and bob both speak.
    a.send({ type: 'chat-message', payload: { text: 'during-a' } });
    b.send({ type: 'chat-message', payload: { text: 'during-b' } });
    await h.delay(10000);
    await r.start();
    await rh.waitRedisUp(A, 10000);
    await rh.waitRedisUp(B, 10000);
    a.send({ type: 'chat-message', payload: { text: 'after' } });
    for (const cl of [a, b]) {
      await h.waitFor(() => rh.chats(cl).length >= 4, 10000, 50, `${cl.user} got 4 chats: ${rh.chats(cl)}`);
    }
    assert.deepStrictEqual(rh.chats(a), rh.chats(b), 'the same sequence on both instances');
    assert.deepStrictEqual(rh.chats(a).map((s) => s.split(':')[1]).sort(), ['after', 'before', 'during-a', 'during-b']);
    assert.strictEqual((await rh.clusterHealth(A)).status, 'ok');
  });
});

test('kill -9 the owner, and a member of another instance leaves before the takeover: no ghost on the new owner', async () => {
  await rh.withCluster(3, { args: ['--resume-grace-ms', '1500'] }, async (r, [A, B, C]) => {
    await h.join(A, 'ghost2', 'alice');
    const b = await h.join(B, 'ghost2', 'bob');
    const c = await h.join(C, 'ghost2', 'carol');
    await b.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'carol', 3000);
    assert.strictEqual(await ownerOf([A, B, C], 'ghost2'), A);
    A.proc.kill('SIGKILL');
    await A.exited;
    // Carol leaves at once: C still sends her end to A, whose inbox nobody reads any more.
    await c.end();
    // B takes the room over from the snapshot (carol in it, connected through C, which lives).
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    assert.strictEqual(await ownerOf([B, C], 'ghost2'), B);
    // Carol's session is not kept alive by the snapshot: she goes like alice, after the grace period.
    const gone = await b.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'carol', 10000);
    assert.ok(['timeout', 'left'].includes(gone.payload.reason), JSON.stringify(gone));
    await b.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'alice', 10000);
    const p = await h.api(C, 'GET', '/webrtc/rooms/ghost2/participants', h.mintToken(h.SECRET, { sub: 'bob', room: 'ghost2' }));
    assert.strictEqual(p.status, 200, p.text);
    assert.deepStrictEqual((p.json.participants || p.json).map((x) => x.user_id), ['bob'], p.text);
  });
});
