'use strict';
// Hostile review of several instances (issue 11): rules about who may do
// what across a takeover (kill -9 of a room's owner). Issue 11: "Room state
// that must survive the owner (members, roles, overrides, settings, hand
// queue, waiting room, breakout rooms, recordings) is snapshotted so that a
// new owner can rebuild it". Tests marked FAILS (defect) fail on the code
// they were written against because the code is wrong.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');
const rs = require('./resume_helpers');
const { roleTok, ofType, RATES_OFF } = require('./feature_helpers');

const { ownerOf, arrive, outcome } = rh;

/**
 * Room owned by A with alice in it (A's only member), hana (host) on B and
 * the given extra members; kills A and waits until a survivor owns the room.
 * Resolves the new owner and the other survivor.
 */
async function killOwner([A, B, C], room, watchers) {
  assert.strictEqual(await ownerOf([A, B, C], room), A);
  A.proc.kill('SIGKILL');
  await A.exited;
  for (const w of watchers) {
    await w.nextWhere((m) => rs.isStatusOf(m, 'alice') && m.payload.status === 'reconnecting', 10000, 'alice reconnecting (takeover)');
  }
  const N = await ownerOf([B, C], room);
  assert.ok(N, 'B or C owns the room now');
  return { N, O: N === B ? C : B };
}

// docs/protocol.md "Room endpoints: who may call them": a role change made
// in the room "sticks to that user id for the life of the room family, on
// every path (a new WebSocket join, ...)"; the room lives on through a
// takeover (issue 11: roles survive the owner). The snapshot carries the
// room's policy records (struct room_policy: in-room role and permission
// changes of users who left, admissions, rejections) and the rebuild
// restores them: a moderator demoted before the takeover who left rejoins
// the new owner demoted.
test('a moderator demoted before a takeover rejoins the new owner demoted', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'tdemote';
    const alice = await h.join(A, room, 'alice', { room }); // A owns the room
    const hana = await h.join(B, room, 'hana', { role: 'host', room });
    const mtok = roleTok(A, 'mia', 'moderator', room);
    const mia = (await arrive(C, room, mtok)).c;
    await hana.nextWhere(ofType('user-joined', (p) => p.user_id === 'mia'), 3000);
    const res = await h.api(B, 'POST', `/webrtc/rooms/${room}/roles/mia`, roleTok(A, 'hana', 'host', room), { role: 'participant' });
    assert.strictEqual(res.status, 200, res.text);
    await mia.nextWhere(ofType('role-updated', (p) => p.user_id === 'mia'), 3000);
    mia.ws.close(1000);
    await hana.nextWhere(ofType('user-left', (p) => p.user_id === 'mia'), 3000);
    // Control, before the takeover: through the owner the demotion holds.
    const before = await arrive(A, room, mtok);
    assert.strictEqual(before.first.type, 'room-state', JSON.stringify(before.first).slice(0, 200));
    assert.strictEqual(before.first.payload.self.role, 'participant', 'demoted, on the owner');
    before.c.ws.close(1000);
    await hana.nextWhere(ofType('user-left', (p) => p.user_id === 'mia'), 3000);
    await h.waitFor(async () => {
      const p = await h.api(B, 'GET', `/webrtc/rooms/${room}/participants`, roleTok(A, 'hana', 'host', room));
      return p.status === 200 && !p.json.participants.some((x) => x.user_id === 'mia');
    }, 3000, 50, 'mia gone (snapshot written)');
    const { N } = await killOwner([A, B, C], room, [hana]);
    // Through the new owner itself (its local path runs policy_apply there).
    const after = await arrive(N, room, mtok);
    assert.strictEqual(after.first.type, 'room-state', JSON.stringify(after.first).slice(0, 200));
    assert.strictEqual(after.first.payload.self.role, 'participant',
      `mia was demoted in this room before its owner died; she came back as ${after.first.payload.self.role}`);
    void alice;
  });
});

// docs/protocol.md "breakout-room-assign": a grant is "only for members:
// the user must have been admitted to the family before"; ADR 0006 says a
// takeover keeps "breakout rooms (the family)". After a takeover a member
// present all along (on a surviving instance) is assigned to a breakout
// room by the new owner and moves with its fresh grant: the grant check
// (room/family.c family_grant_use -> policy_member_claims) finds the
// record of the member's admission, which the snapshot carries.
test('after a takeover, a member present all along moves into a breakout room with its new grant', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'tbrk';
    const alice = await h.join(A, room, 'alice'); // A owns the room
    const hana = await h.join(B, room, 'hana', { role: 'host' });
    const bob = await h.join(C, room, 'bob');
    await hana.nextWhere(ofType('user-joined', (p) => p.user_id === 'bob'), 3000);
    await killOwner([A, B, C], room, [hana, bob]);
    const tok = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const made = await h.api(B, 'POST', `/webrtc/rooms/${room}/breakout-rooms`, tok, { rooms: [{ name: 'Side' }] });
    assert.strictEqual(made.status, 201, made.text);
    const bid = made.json.breakout_rooms[0].breakout_room_id;
    // Control: carol, who joins after the takeover (admitted by the new owner), moves with her grant.
    const carol = await h.join(C, room, 'carol');
    const ac = await h.api(C, 'POST', `/webrtc/rooms/${room}/breakout-rooms/${bid}/assign/carol`, tok);
    assert.strictEqual(ac.status, 200, ac.text);
    const mc = await carol.nextWhere(ofType('breakout-room-assign', (p) => p.grant !== undefined), 5000, 'carol\'s grant');
    const cm = await arrive(C, bid, null, { via: 'none', query: `grant=${mc.payload.grant}` });
    assert.strictEqual(cm.first.type, 'room-state', `carol's move: ${JSON.stringify(cm.first).slice(0, 300)}`);
    const as = await h.api(C, 'POST', `/webrtc/rooms/${room}/breakout-rooms/${bid}/assign/bob`, tok);
    assert.strictEqual(as.status, 200, as.text);
    const m = await bob.nextWhere(ofType('breakout-room-assign', (p) => p.grant !== undefined), 5000, 'bob\'s grant');
    const { first } = await arrive(C, bid, null, { via: 'none', query: `grant=${m.payload.grant}` });
    assert.strictEqual(first.type, 'room-state', `bob's move with his fresh grant: ${JSON.stringify(first).slice(0, 300)}`);
    assert.strictEqual(first.payload.self.user_id, 'bob');
    void alice;
  });
});

// Passes: bans, lock and capacity survive a takeover: a removed member stays
// out through every instance (also resuming with its last resume_token), and
// the new owner keeps the lock and max_participants.
test('bans, lock and capacity survive a takeover, through every instance', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'tban';
    const alice = await h.join(A, room, 'alice', { room }); // A owns the room
    const hana = await h.join(B, room, 'hana', { role: 'host', room });
    const btok = roleTok(A, 'bob', 'participant', room);
    const bob = (await arrive(C, room, btok)).c;
    await hana.nextWhere(ofType('user-joined', (p) => p.user_id === 'bob'), 3000);
    const rt = bob.all.find((m) => m.type === 'room-state').payload.self.resume_token;
    const last = rs.lastSeq(bob);
    const htok = roleTok(A, 'hana', 'host', room);
    assert.strictEqual((await h.api(C, 'POST', `/webrtc/rooms/${room}/participants/bob/remove`, htok, { reason: 'x' })).status, 200);
    assert.strictEqual((await bob.waitClose(3000)).code, 4003);
    const set = await h.api(B, 'POST', `/webrtc/rooms/${room}/settings`, htok, { max_participants: 3 });
    assert.strictEqual(set.status, 200, set.text);
    await hana.nextWhere(ofType('room-settings-update'), 3000);
    await killOwner([A, B, C], room, [hana]);
    for (const S of [B, C]) {
      assert.strictEqual(await outcome(S, room, btok), 'USER_BANNED', `rejoin through ${S.port}`);
    }
    for (const S of [B, C]) {
      let got;
      try {
        const rc = await rs.connectResume(S, room, btok, rt, last);
        const m = await rc.next(undefined, 5000);
        got = m.type === 'error' ? m.payload.code : m.type;
      } catch (e) {
        got = e instanceof h.HttpRefusal && e.body ? e.body.error.code : String(e);
      }
      assert.strictEqual(got, 'USER_BANNED', `resume with the old token through ${S.port}`);
    }
    h.assertApiError(await h.api(C, 'GET', `/webrtc/rooms/${room}/participants`, btok), 403, 'USER_BANNED');
    // Capacity 3: hana and alice (away) hold two seats; one more gets in, the next is refused.
    assert.strictEqual(await outcome(C, room, roleTok(A, 'cy', 'participant', room)), 'room-state');
    for (const S of [B, C]) assert.strictEqual(await outcome(S, room, roleTok(A, 'dee', 'participant', room)), 'ROOM_FULL');
    const lock = await h.api(C, 'POST', `/webrtc/rooms/${room}/settings`, htok, { locked: true, max_participants: 10 });
    assert.strictEqual(lock.status, 200, lock.text);
    for (const S of [B, C]) assert.strictEqual(await outcome(S, room, roleTok(A, 'eve', 'participant', room)), 'ROOM_LOCKED');
    void alice;
  });
});

// FAILS (defect). Issue 11: "losing an instance costs its own connections a
// reconnect and nothing else"; docs/protocol.md "GET
// /webrtc/rooms/{room_id}/chat" serves a live room's chat history. Chat sent
// and acknowledged (durable: stored before delivery) before the owner was
// killed is gone from the history the new owner serves (one SQLite file per
// instance, the default: the new owner's file never saw it, and the rebuild
// loads the room log for resumes only), through every instance, while a
// resume replay across the takeover still has it.
test('chat acknowledged before a takeover is in the room\'s chat history after it (one shared PostgreSQL)', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000', ...rh.sharedPg('hc_hist')] }, async (r, [A, B, C]) => {
    const room = 'thist';
    const alice = await h.join(A, room, 'alice'); // A owns the room
    const hana = await h.join(B, room, 'hana', { role: 'host' });
    for (const text of ['one', 'two']) {
      hana.send({ type: 'chat-message', id: text, payload: { text } });
      await hana.nextWhere((m) => m.type === 'chat-message' && m.ref === text, 3000);
    }
    const tok = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const before = await h.api(C, 'GET', `/webrtc/rooms/${room}/chat`, tok);
    assert.deepStrictEqual(before.json.messages.map((m) => m.text).sort(), ['one', 'two'], before.text);
    await killOwner([A, B, C], room, [hana]);
    hana.send({ type: 'chat-message', id: 'three', payload: { text: 'three' } });
    await hana.nextWhere((m) => m.type === 'chat-message' && m.ref === 'three', 5000);
    for (const S of [B, C]) {
      const after = await h.api(S, 'GET', `/webrtc/rooms/${room}/chat`, tok);
      assert.strictEqual(after.status, 200, after.text);
      assert.deepStrictEqual(after.json.messages.map((m) => m.text).sort(), ['one', 'three', 'two'],
        `history through ${S.port} after the takeover: ${after.text}`);
    }
    void alice;
  });
});

// README "Persistence": when a room is opened again with the same id "its
// chat history (message ids continue past the stored ones)";
// --chat-durability durable: "a chat message is delivered and acknowledged
// only once committed to the database". Room 'ids' lived on B first (its
// chat stored in B's file, ids m2..m9) and ended; it opens again on A, and
// A is killed: B takes it over. B's own store restores the room's seq (9)
// when the rebuild makes the room, and the rebuild goes on from the highest
// of that, the stream's and the snapshot's (takeover.c rebuild_cb): B's
// next chats get ids past every stored one, and are in the history.
test('chat acknowledged after a takeover gets a new message id and is in the history', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'ids';
    const tok = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const first = await h.join(B, room, 'hana', { role: 'host' }); // the room's first session, on B
    for (let i = 0; i < 8; i++) {
      first.send({ type: 'chat-message', id: `x${i}`, payload: { text: `first-${i}` } });
      await first.nextWhere((m) => m.ref === `x${i}` && m.type === 'chat-message', 3000);
    }
    const oldIds = first.all.filter((m) => m.type === 'chat-message').map((m) => m.payload.message_id);
    first.ws.close(1000);
    await first.waitClose();
    await h.waitFor(async () => (await ownerOf([A, B, C], room)) === null, 5000, 50, 'the first session released');
    const alice = await h.join(A, room, 'alice'); // the second session, owned by A
    const hana = await h.join(B, room, 'hana', { role: 'host' });
    await killOwner([A, B, C], room, [hana]);
    const newIds = [];
    for (let i = 0; i < 3; i++) {
      hana.send({ type: 'chat-message', id: `y${i}`, payload: { text: `second-${i}` } });
      const m = await hana.nextWhere((x) => x.ref === `y${i}`, 5000);
      assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
      newIds.push(m.payload.message_id);
    }
    assert.deepStrictEqual(newIds.filter((id) => oldIds.includes(id)), [],
      `message ids after the takeover repeat stored ones: new ${newIds}, stored ${oldIds}`);
    const hist = await h.api(C, 'GET', `/webrtc/rooms/${room}/chat?limit=100`, tok);
    assert.strictEqual(hist.status, 200, hist.text);
    const texts = hist.json.messages.map((m) => m.text);
    for (let i = 0; i < 3; i++) assert.ok(texts.includes(`second-${i}`), `acknowledged second-${i} is in the history: ${texts}`);
    void alice;
  });
});

// docs/protocol.md "Envelope" (seq: "strictly increasing numbers with
// gaps") and "Resume". When the new owner's own store holds a higher seq for
// the room (an earlier session of it lived there), the rebuild goes on from
// that one, past the stream's top: members everywhere see one jump in seq,
// never a number twice. A member who resumes through another instance with
// the last seq it had before the takeover gets, across the jump, exactly
// the messages its old connection got after it, in order, and no error.
test('after a takeover the seq goes on past the new owner\'s stored ids: a resume through another instance crosses the jump', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'idsjump';
    const tok = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const first = await h.join(B, room, 'hana', { role: 'host' }); // the room's first session, on B
    for (let i = 0; i < 8; i++) {
      first.send({ type: 'chat-message', id: `x${i}`, payload: { text: `first-${i}` } });
      await first.nextWhere((m) => m.ref === `x${i}` && m.type === 'chat-message', 3000);
    }
    const stored = rs.lastSeq(first);
    first.ws.close(1000);
    await first.waitClose();
    await h.waitFor(async () => (await ownerOf([A, B, C], room)) === null, 5000, 50, 'the first session released');
    const alice = await h.join(A, room, 'alice'); // the second session, owned by A
    const hana = await h.join(B, room, 'hana', { role: 'host' });
    const rt = hana.state.payload.self.resume_token;
    const last = rs.lastSeq(hana);
    assert.ok(last < stored, `the second session's seq ${last} is below the stored ${stored}`);
    const { N } = await killOwner([A, B, C], room, [hana]);
    assert.strictEqual(N, B, 'B (the only survivor with a member) owns the room');
    hana.send({ type: 'chat-message', id: 'after', payload: { text: 'after' } });
    const echo = await hana.nextWhere((m) => m.ref === 'after', 5000);
    assert.strictEqual(echo.type, 'chat-message', JSON.stringify(echo));
    assert.ok(echo.seq > stored, `seq ${echo.seq} after the takeover is past the stored ${stored}`);
    assert.strictEqual(echo.payload.message_id, `m${echo.seq}`);
    const got = hana.all.filter((m) => m.type !== 'room-state' && m.type !== 'error' && m.seq > last);
    for (let i = 1; i < got.length; i++) assert.ok(got[i].seq > got[i - 1].seq, `in order: ${got.map((m) => m.seq)}`);
    const { before, state } = await rs.joinResume(C, room, tok, rt, last);
    assert.strictEqual(state.payload.resumed, true, JSON.stringify(before).slice(0, 300));
    assert.deepStrictEqual(before.map((m) => [m.type, m.seq]), got.map((m) => [m.type, m.seq]),
      'the replay through C is what the old connection got after its last seq');
    void alice;
  });
});

// docs/protocol.md "Room endpoints: who may call them": a role change
// "sticks to that user id for the life of the room family". A change made
// in a breakout room is recorded at the family's main room, so the main
// room's snapshot is written again with it (cluster/owner.c redis_publish):
// after a takeover of the family the member, back in the main room through
// another instance, is what it was made in the breakout room.
test('a demotion made in a breakout room survives a takeover of the family', async () => {
  await rh.withCluster(3, { args: [...RATES_OFF, '--resume-grace-ms', '20000'] }, async (r, [A, B, C]) => {
    const room = 'tfam';
    const alice = await h.join(A, room, 'alice'); // A owns the family
    const hana = await h.join(B, room, 'hana', { role: 'host' });
    const btok = h.mintToken(h.SECRET, { sub: 'bob' });
    const bob = (await arrive(C, room, btok)).c;
    await hana.nextWhere(ofType('user-joined', (p) => p.user_id === 'bob'), 3000);
    const tok = h.mintToken(h.SECRET, { sub: 'hana', role: 'host' });
    const made = await h.api(B, 'POST', `/webrtc/rooms/${room}/breakout-rooms`, tok, { rooms: [{ name: 'Side' }] });
    assert.strictEqual(made.status, 201, made.text);
    const bid = made.json.breakout_rooms[0].breakout_room_id;
    assert.strictEqual((await h.api(B, 'POST', `/webrtc/rooms/${room}/breakout-rooms/${bid}/assign/bob`, tok)).status, 200);
    const g = (await bob.nextWhere(ofType('breakout-room-assign', (p) => p.grant !== undefined), 5000)).payload.grant;
    bob.ws.close(1000);
    await hana.nextWhere(ofType('user-left', (p) => p.user_id === 'bob'), 3000);
    const side = await arrive(C, bid, null, { via: 'none', query: `grant=${g}` });
    assert.strictEqual(side.first.type, 'room-state', JSON.stringify(side.first).slice(0, 300));
    const dem = await h.api(B, 'POST', `/webrtc/rooms/${bid}/roles/bob`, tok, { role: 'viewer' });
    assert.strictEqual(dem.status, 200, dem.text);
    await side.c.nextWhere(ofType('role-updated', (p) => p.user_id === 'bob'), 3000);
    side.c.ws.close(1000);
    await side.c.waitClose(3000);
    // A call the owner answers after the demotion: its snapshots of that loop turn were sent before.
    assert.strictEqual((await h.api(B, 'GET', `/webrtc/rooms/${room}/participants`, tok)).status, 200);
    const { N, O } = await killOwner([A, B, C], room, [hana]);
    for (const S of [O, N]) {
      const back = await arrive(S, room, btok);
      assert.strictEqual(back.first.type, 'room-state', JSON.stringify(back.first).slice(0, 300));
      assert.strictEqual(back.first.payload.self.role, 'viewer', `bob back through ${S === N ? 'the new owner' : 'the other instance'}`);
      back.c.ws.close(1000);
      await hana.nextWhere(ofType('user-left', (p) => p.user_id === 'bob'), 3000);
    }
    void alice;
  });
});
