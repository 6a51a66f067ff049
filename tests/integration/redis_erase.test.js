'use strict';
// An erase with several instances (--redis-url), then a takeover (found in
// review): the owner's erase rewrites its own room log (src/room/durable.c
// erase_room_log), but the room's Redis stream, from which a new owner
// rebuilds the room log (cluster.c rebuild_cb), still holds the erased
// user's frames. The rebuild applies the erases of the broadcast stream
// to the entries logged before them, so a resume replay on the new owner
// shows neither the erased chat text nor the display name.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const rs = require('./resume_helpers');
const f = require('./feature_helpers');

const SECRET_TEXT = 'dora secret words';
const SECRET_NAME = 'Dora Hidden';

const { ownerOf } = rh;

test('an erase on the owner does not come back in resume replays after a takeover', async () => {
  await rh.withCluster(3, { args: ['--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'erc';
    const a = await h.join(A, room, 'alice', { role: 'host' });
    assert.strictEqual(await ownerOf([A, B, C], room), A, 'the first joiner\'s instance owns the room');
    const b = await h.join(B, room, 'bob');
    const carl = await h.join(B, room, 'carl'); // stays connected through the takeover
    // bob drops (away on the owner) and will resume after the takeover.
    const last = rs.lastSeq(b);
    const rt = b.state.payload.self.resume_token;
    await rs.cut(b);
    await a.nextWhere((m) => rs.isStatusOf(m, 'bob'), 3000, 'bob reconnecting');
    const d = await h.join(C, room, 'dora', { name: SECRET_NAME });
    d.send({ type: 'chat-message', id: 'd1', payload: { text: SECRET_TEXT } });
    await a.nextWhere((m) => m.type === 'chat-message' && m.payload.text === SECRET_TEXT, 5000);
    // Erased on the owner: dora is closed, and a resume there would replay a tombstone.
    const res = await f.rest(A, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(A) });
    assert.strictEqual(res.status, 200, res.text);
    await d.waitClose(5000);
    await a.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'dora', 5000);

    A.proc.kill('SIGKILL');
    await A.exited;
    await carl.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    assert.ok(await ownerOf([B, C], room), 'B or C owns the room now');
    const { before, state } = await rs.joinResume(C, room, rs.tokenFor(C, 'bob'), rt, last, { user: 'bob', timeoutMs: 10000 });
    assert.strictEqual(state.payload.resumed, true, JSON.stringify(state).slice(0, 400));
    const text = JSON.stringify(before);
    assert.ok(!text.includes(SECRET_TEXT), `the replay on the new owner shows the erased chat text: ${rs.brief(before)}`);
    assert.ok(!text.includes(SECRET_NAME), `the replay on the new owner shows the erased display name: ${rs.brief(before)}`);
    const tomb = before.find((m) => m.type === 'chat-message' && m.from === 'dora');
    assert.ok(tomb && tomb.payload.erased === true, `the erased chat is replayed as its tombstone: ${rs.brief(before)}`);
  });
});

// With one SQLite file per instance (the default data dir of each), the
// rows of a room live in its owner's file: an erase answered by another
// instance is applied by every instance to its own file too.
test('an erase answered by one instance tombstones the chat stored by another (one SQLite file each)', async () => {
  await rh.withCluster(2, {}, async (r, [A, B]) => {
    const room = 'ers';
    const host = await h.join(B, room, 'hana', { role: 'host' });
    assert.strictEqual(await ownerOf([A, B], room), B, 'the first joiner\'s instance owns the room');
    const d = await h.join(A, room, 'dora', { name: SECRET_NAME });
    d.send({ type: 'chat-message', id: 'd1', payload: { text: SECRET_TEXT } });
    await host.nextWhere((m) => m.type === 'chat-message' && m.payload.text === SECRET_TEXT, 5000);
    host.send({ type: 'chat-message', id: 'h1', payload: { text: 'hana stays' } });
    await host.nextWhere((m) => m.ref === 'h1', 5000);
    const admin = f.adminTok(A);
    const path = `/webrtc/rooms/${room}/chat?limit=10`;
    let hist = await f.rest(B, 'GET', path, { token: admin });
    assert.ok(hist.text.includes(SECRET_TEXT), `stored on the owner first: ${hist.text}`);
    const e = await f.rest(A, 'POST', '/webrtc/admin/users/dora/erase', { token: admin, timeoutMs: 15000 });
    assert.strictEqual(e.status, 200, e.text);
    for (const S of [B, A]) { // the owner's file, and the same through the other instance
      hist = await h.waitFor(async () => {
        const x = await f.rest(S, 'GET', path, { token: admin });
        return x.status === 200 && !x.text.includes(SECRET_TEXT) ? x : null;
      }, 5000, 50, `the stored chat tombstoned, asked on ${S === A ? 'A' : 'B'}`);
      const texts = hist.json.messages.map((m) => m.text);
      assert.deepStrictEqual(texts, ['[message removed]', 'hana stays'], hist.text);
      assert.ok(!hist.text.includes(SECRET_NAME), hist.text);
    }
  });
});

// The owner writes the room's analytics events to Redis for a next owner
// (ADR 0006, "Analytics"): an erase rewrites them there too, so a takeover
// does not bring the erased user's events back under their id.
test('an erase on the owner, then a takeover: the room\'s analytics events name the user "anonymous"', async () => {
  await rh.withCluster(2, { args: f.RATES_OFF.concat(['--resume-grace-ms', '20000']) }, async (r, [A, B]) => {
    const room = 'era';
    const a = await h.join(A, room, 'alice', { role: 'host' });
    assert.strictEqual(await ownerOf([A, B], room), A);
    const b = await h.join(B, room, 'bob');
    const d = await h.join(B, room, 'dora', { name: SECRET_NAME });
    d.send({ type: 'chat-message', id: 'd1', payload: { text: SECRET_TEXT } });
    await a.nextWhere((m) => m.type === 'chat-message' && m.payload.text === SECRET_TEXT, 5000);
    await h.delay(300); // written to Redis with dora's id
    const res = await f.rest(B, 'POST', '/webrtc/admin/users/dora/erase', { token: f.adminTok(B) });
    assert.strictEqual(res.status, 200, res.text);
    await d.waitClose(5000);
    await a.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'dora', 5000);
    const host = h.mintToken(h.SECRET, { sub: 'alice', role: 'host' });
    const ev0 = (await h.api(B, 'GET', `/webrtc/rooms/${room}/analytics?limit=1000`, host)).json;
    assert.ok(!JSON.stringify(ev0).includes('dora'), JSON.stringify(ev0));
    await h.delay(300);

    A.proc.kill('SIGKILL');
    await A.exited;
    await b.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000);
    assert.strictEqual(await ownerOf([B], room), B);
    const ev = (await h.api(B, 'GET', `/webrtc/rooms/${room}/analytics?limit=1000`, host)).json;
    assert.ok(ev.events.some((e) => e.type === 'chat' && e.user_id === 'anonymous'), JSON.stringify(ev));
    assert.ok(!JSON.stringify(ev).includes('dora'), `the erased user is back in the events: ${JSON.stringify(ev)}`);
  });
});
