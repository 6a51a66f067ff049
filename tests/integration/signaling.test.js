'use strict';
// Joining, room-state / user-joined / user-left, relay of offer / answer /
// ice-candidate, per-message errors, session replacement, room capacity.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const PERMS = ['can_publish_audio', 'can_publish_video', 'can_share_screen', 'can_chat',
  'can_share_files', 'can_react', 'can_raise_hand', 'can_record', 'can_stream', 'can_moderate'];

function assertParticipant(p, user) {
  assert.strictEqual(p.user_id, user);
  assert.strictEqual(typeof p.name, 'string');
  assert.strictEqual(typeof p.role, 'string');
  assert.ok(Number.isInteger(p.joined_at), `joined_at on ${JSON.stringify(p)}`);
  assert.deepStrictEqual(p.media, { audio: false, video: false, screen: false });
}

function assertError(m, code, ref) {
  assert.strictEqual(m.type, 'error', JSON.stringify(m));
  assert.strictEqual(m.from, 'server');
  assert.strictEqual(m.payload.code, code, JSON.stringify(m));
  assert.strictEqual(typeof m.payload.message, 'string');
  assert.strictEqual(typeof m.payload.recovery, 'string');
  assert.ok(Number.isInteger(m.seq), 'error carries seq');
  assert.ok(Number.isInteger(m.ts), 'error carries ts');
  if (ref !== undefined) {
    assert.strictEqual(m.payload.ref, ref, `payload.ref on ${JSON.stringify(m)}`);
    assert.strictEqual(m.ref, ref, `envelope ref on ${JSON.stringify(m)}`);
  }
}

test('two and three clients join: room-state first, user-joined to the others', async () => {
  await h.withServer({}, async (srv) => {
    const t0 = Date.now();
    const alice = await h.join(srv, 'demo', 'alice', { name: 'Alice', role: 'host' });
    const st = alice.state;
    assert.strictEqual(st.room, 'demo');
    assert.strictEqual(st.from, 'server');
    assert.ok(Number.isInteger(st.seq) && Number.isInteger(st.ts));
    assert.ok(st.ts >= t0 - 5000 && st.ts <= Date.now() + 5000, 'ts is server time in Unix ms');
    const self = st.payload.self;
    assertParticipant(self, 'alice');
    assert.strictEqual(self.name, 'Alice');
    assert.strictEqual(self.role, 'host');
    assert.ok(typeof self.session_id === 'string' && self.session_id.length >= 16, 'self.session_id');
    assert.ok(typeof self.resume_token === 'string' && self.resume_token.length >= 16, 'self.resume_token');
    for (const p of PERMS) assert.strictEqual(self.permissions[p], true, `host has ${p}`);
    assert.strictEqual(st.payload.participants.length, 1);
    assertParticipant(st.payload.participants[0], 'alice');
    assert.strictEqual(st.payload.participants[0].session_id, undefined, 'no session_id of others');
    assert.strictEqual(st.payload.participants[0].resume_token, undefined, 'no resume_token in the list');
    const s = st.payload.settings;
    assert.ok(s && typeof s === 'object', 'settings');
    assert.strictEqual(s.max_participants, 50);
    assert.strictEqual(typeof s.locked, 'boolean');
    assert.ok(Number.isInteger(st.payload.seq), 'payload.seq');
    assert.ok(Array.isArray(st.payload.ice_servers) && st.payload.ice_servers.length >= 1, 'ice_servers');
    assert.deepStrictEqual(st.payload.ice_servers[0].urls, ['stun:stun.l.google.com:19302']);
    assert.deepStrictEqual(st.payload.hand_raise_queue, []);
    assert.deepStrictEqual(st.payload.live_streams, []);
    assert.deepStrictEqual(st.payload.breakout_rooms, []);
    assert.strictEqual(st.payload.recording, null);

    const bob = await h.join(srv, 'demo', 'bob');
    assert.deepStrictEqual(bob.state.payload.participants.map((p) => p.user_id), ['alice', 'bob']);
    assert.strictEqual(bob.state.payload.self.role, 'participant');
    assert.strictEqual(bob.state.payload.self.name, 'bob', 'name defaults to sub');
    assert.strictEqual(bob.state.payload.self.permissions.can_moderate, false);
    assert.notStrictEqual(bob.state.payload.self.session_id, self.session_id);
    const j1 = await alice.next('user-joined');
    assert.strictEqual(j1.from, 'server');
    assert.strictEqual(j1.room, 'demo');
    assertParticipant(j1.payload, 'bob');
    assert.strictEqual(j1.payload.session_id, undefined);
    assert.strictEqual(j1.payload.resume_token, undefined, 'resume_token is never broadcast');
    assert.ok(j1.seq > st.seq);

    const carol = await h.join(srv, 'demo', 'carol', { role: 'viewer' });
    assert.deepStrictEqual(carol.state.payload.participants.map((p) => p.user_id), ['alice', 'bob', 'carol']);
    assert.strictEqual(carol.state.payload.self.permissions.can_publish_audio, false, 'viewer defaults');
    assert.ok(carol.state.seq >= j1.seq, 'room-state carries the current seq');
    const j2 = await alice.next('user-joined');
    assertParticipant(j2.payload, 'carol');
    assert.ok(j2.seq > j1.seq, 'seq strictly increasing');
    const j3 = await bob.next('user-joined');
    assertParticipant(j3.payload, 'carol');
    assert.strictEqual(j3.seq, j2.seq, 'one seq per room message');

    // The joiner itself gets no user-joined about itself.
    await Promise.all([alice.expectNone(100), bob.expectNone(100), carol.expectNone(100)]);
    for (const c of [alice, bob, carol]) c.assertEnvelopes();
    for (const c of [alice, bob, carol]) await c.end();
  });
});

test('offer / answer / ice-candidate reach only "to", unchanged, with from set by the server', async () => {
  await h.withServer({}, async (srv) => {
    const alice = await h.join(srv, 'relay', 'alice');
    const bob = await h.join(srv, 'relay', 'bob');
    const carol = await h.join(srv, 'relay', 'carol');
    await alice.next('user-joined');
    await alice.next('user-joined');
    await bob.next('user-joined');

    const offer = { type: 'offer', sdp: h.sdp(300, 'o1'), extra: { nested: [1, 'two', null, true] } };
    alice.send({ type: 'offer', id: 'o1', to: 'bob', from: 'carol', room: 'elsewhere', seq: 1, payload: offer });
    const got = await bob.next();
    assert.strictEqual(got.type, 'offer');
    assert.strictEqual(got.from, 'alice', 'spoofed from is overwritten with the sender');
    assert.strictEqual(got.to, 'bob');
    assert.strictEqual(got.room, 'relay');
    assert.deepStrictEqual(got.payload, offer, 'payload unchanged');
    assert.strictEqual(got.ref, undefined);

    const answer = { type: 'answer', sdp: h.sdp(200, 'a1') };
    bob.send({ type: 'answer', id: 'a1', to: 'alice', from: 'server', payload: answer });
    const ga = await alice.next();
    assert.strictEqual(ga.type, 'answer');
    assert.strictEqual(ga.from, 'bob', 'from "server" cannot be spoofed either');
    assert.strictEqual(ga.to, 'alice');
    assert.deepStrictEqual(ga.payload, answer);

    const cand = { candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host', sdpMid: '0', sdpMLineIndex: 0, usernameFragment: 'abcd' };
    alice.send({ type: 'ice-candidate', to: 'bob', payload: cand });
    const gc = await bob.next();
    assert.strictEqual(gc.type, 'ice-candidate');
    assert.strictEqual(gc.from, 'alice');
    assert.deepStrictEqual(gc.payload, cand);
    // End-of-candidates marker and null mid/index are fine too.
    const eoc = { candidate: '', sdpMid: null, sdpMLineIndex: null };
    alice.send({ type: 'ice-candidate', to: 'bob', payload: eoc });
    assert.deepStrictEqual((await bob.next('ice-candidate')).payload, eoc);
    // Unicode in the payload survives byte for byte.
    const uni = { type: 'offer', sdp: 'v=0\r\ns=\u00e9\u6f22\ud83d\ude00\r\n' };
    carol.send({ type: 'offer', to: 'alice', payload: uni });
    const gu = await alice.next('offer');
    assert.strictEqual(gu.from, 'carol');
    assert.deepStrictEqual(gu.payload, uni);

    await Promise.all([carol.expectNone(150), alice.expectNone(0), bob.expectNone(0)]);
    for (const c of [alice, bob, carol]) c.assertEnvelopes();
  });
});

test('signaling errors carry the code and ref, and nothing is relayed', async () => {
  await h.withServer({}, async (srv) => {
    const alice = await h.join(srv, 'errs', 'alice');
    const bob = await h.join(srv, 'errs', 'bob');
    await alice.next('user-joined');
    const good = { type: 'offer', sdp: h.sdp(100) };
    const cases = [
      ['unknown to', { type: 'offer', id: 'e1', to: 'nobody', payload: good }, 'TARGET_NOT_FOUND'],
      ['missing to', { type: 'offer', id: 'e2', payload: good }, 'INVALID_MESSAGE'],
      ['missing to (answer)', { type: 'answer', id: 'e2b', payload: { type: 'answer', sdp: 'v=0\r\n' } }, 'INVALID_MESSAGE'],
      ['missing to (ice)', { type: 'ice-candidate', id: 'e2c', payload: { candidate: '' } }, 'INVALID_MESSAGE'],
      ['to not a user id', { type: 'offer', id: 'e1b', to: 'bad id', payload: good }, 'INVALID_USER_ID'],
      ['to yourself', { type: 'offer', id: 'e3', to: 'alice', payload: good }, 'INVALID_MESSAGE'],
      ['sdp not v=0', { type: 'offer', id: 'e4', to: 'bob', payload: { type: 'offer', sdp: 'hello' } }, 'INVALID_SDP'],
      ['sdp missing', { type: 'offer', id: 'e5', to: 'bob', payload: { type: 'offer' } }, 'INVALID_SDP'],
      ['sdp not a string', { type: 'answer', id: 'e6', to: 'bob', payload: { sdp: 42 } }, 'INVALID_SDP'],
      ['payload.type mismatch', { type: 'offer', id: 'e7', to: 'bob', payload: { type: 'answer', sdp: 'v=0\r\n' } }, 'INVALID_SDP'],
      ['no payload', { type: 'offer', id: 'e8', to: 'bob' }, 'INVALID_SDP'],
      ['bad candidate', { type: 'ice-candidate', id: 'e9', to: 'bob', payload: { candidate: 'garbage', sdpMid: '0', sdpMLineIndex: 0 } }, 'INVALID_ICE_CANDIDATE'],
      ['candidate missing', { type: 'ice-candidate', id: 'e10', to: 'bob', payload: { sdpMid: '0' } }, 'INVALID_ICE_CANDIDATE'],
      ['sdpMLineIndex out of range', { type: 'ice-candidate', id: 'e11', to: 'bob', payload: { candidate: '', sdpMLineIndex: 70000 } }, 'INVALID_ICE_CANDIDATE'],
      ['sdpMLineIndex negative', { type: 'ice-candidate', id: 'e12', to: 'bob', payload: { candidate: '', sdpMLineIndex: -1 } }, 'INVALID_ICE_CANDIDATE'],
      ['sdpMid a number', { type: 'ice-candidate', id: 'e13', to: 'bob', payload: { candidate: '', sdpMid: 5 } }, 'INVALID_ICE_CANDIDATE'],
      ['candidate too long', { type: 'ice-candidate', id: 'e14', to: 'bob', payload: { candidate: `candidate:${'x'.repeat(1100)}` } }, 'INVALID_ICE_CANDIDATE'],
    ];
    for (const [name, msg, code] of cases) {
      alice.send(msg);
      const e = await alice.next();
      try {
        assertError(e, code, msg.id);
      } catch (err) {
        err.message = `${name}: ${err.message}`;
        throw err;
      }
    }
    // A user of another room is not a target.
    const zed = await h.join(srv, 'errs-other', 'zed');
    alice.send({ type: 'offer', id: 'x1', to: 'zed', payload: good });
    assertError(await alice.next(), 'TARGET_NOT_FOUND', 'x1');
    await zed.expectNone(100);
    await zed.end();
    // An error without an id has no ref.
    alice.send({ type: 'offer', to: 'nobody', payload: good });
    const e = await alice.next();
    assertError(e, 'TARGET_NOT_FOUND');
    assert.strictEqual(e.ref, undefined);
    assert.strictEqual(e.payload.ref, undefined);
    await bob.expectNone(150);
    // The connection lives: a valid offer still relays.
    alice.send({ type: 'offer', id: 'ok', to: 'bob', payload: good });
    assert.deepStrictEqual((await bob.next('offer')).payload, good);
    alice.assertEnvelopes();
    bob.assertEnvelopes();
  });
});

test('user-left with reason "left" on close; the room is removed when empty', async () => {
  // Without a grace period: an abrupt disconnect leaves at once (resume.test.js covers the grace period).
  await h.withServer({ args: ['--resume-grace-ms', '0'] }, async (srv) => {
    assert.strictEqual((await h.health(srv)).rooms, 0);
    const alice = await h.join(srv, 'leave', 'alice');
    const bob = await h.join(srv, 'leave', 'bob');
    const other = await h.join(srv, 'other-room', 'zed');
    await alice.next('user-joined');
    const hl = await h.health(srv);
    assert.strictEqual(hl.rooms, 2);
    assert.ok(hl.connections >= 3);

    await bob.end();
    assert.strictEqual(bob.close.code, 1000, 'normal close is echoed');
    const left = await alice.next('user-left');
    assert.deepStrictEqual(left.payload, { user_id: 'bob', reason: 'left' });
    assert.strictEqual(left.from, 'server');
    await other.expectNone(100);

    // An abrupt disconnect (no close frame) is a leave too.
    const carol = await h.join(srv, 'leave', 'carol');
    await alice.next('user-joined');
    carol.terminate();
    const left2 = await alice.next('user-left');
    assert.deepStrictEqual(left2.payload, { user_id: 'carol', reason: 'left' });

    // A rejoin after leaving is a fresh join with the current participants.
    const bob2 = await h.join(srv, 'leave', 'bob');
    assert.deepStrictEqual(bob2.state.payload.participants.map((p) => p.user_id), ['alice', 'bob']);
    await alice.next('user-joined');
    await bob2.end();
    await alice.next('user-left');

    await alice.end();
    await other.end();
    await h.waitFor(async () => (await h.health(srv)).rooms === 0, 3000, 20, 'rooms back to 0');
    alice.assertEnvelopes();
  });
});

test('the same user joining twice: the old connection gets SESSION_REPLACED and 4001', async (t) => {
  await h.withServer({}, async (srv) => {
    await h.sub(t, 'with another participant present', srv, async () => {
      const alice1 = await h.join(srv, 'dup', 'alice');
      const bob = await h.join(srv, 'dup', 'bob');
      await alice1.next('user-joined');
      const alice2 = await h.join(srv, 'dup', 'alice');
      const err = await alice1.next();
      assertError(err, 'SESSION_REPLACED');
      const closed = await alice1.waitClose();
      assert.strictEqual(closed.code, 4001);
      const l = await bob.next();
      assert.strictEqual(l.type, 'user-left');
      assert.deepStrictEqual(l.payload, { user_id: 'alice', reason: 'replaced' });
      const j = await bob.next();
      assert.strictEqual(j.type, 'user-joined');
      assert.strictEqual(j.payload.user_id, 'alice');
      assert.ok(j.seq > l.seq);
      assert.deepStrictEqual(alice2.state.payload.participants.map((p) => p.user_id).sort(), ['alice', 'bob']);
      assert.notStrictEqual(alice2.state.payload.self.session_id, alice1.state.payload.self.session_id);
      // The new connection works both ways.
      const o = { type: 'offer', sdp: 'v=0\r\n' };
      bob.send({ type: 'offer', to: 'alice', payload: o });
      assert.deepStrictEqual((await alice2.next('offer')).payload, o);
      alice2.send({ type: 'answer', to: 'bob', payload: { type: 'answer', sdp: 'v=0\r\n' } });
      assert.strictEqual((await bob.next('answer')).from, 'alice');
      await alice2.end();
      await bob.end();
      bob.assertEnvelopes();
    });
    await h.sub(t, 'alone in the room', srv, async () => {
      const a1 = await h.join(srv, 'dup2', 'alice');
      const a2 = await h.join(srv, 'dup2', 'alice');
      assertError(await a1.next(), 'SESSION_REPLACED');
      assert.strictEqual((await a1.waitClose()).code, 4001);
      assert.deepStrictEqual(a2.state.payload.participants.map((p) => p.user_id), ['alice']);
      await a2.expectNone(100);
      assert.strictEqual((await h.health(srv)).rooms, 1);
      await a2.end();
      await h.waitFor(async () => (await h.health(srv)).rooms === 0, 3000, 20, 'rooms back to 0');
    });
  });
});

test('room capacity: --max-room-participants 2 refuses the third join with 409 ROOM_FULL', async () => {
  await h.withServer({ args: ['--max-room-participants', '2'] }, async (srv) => {
    const a = await h.join(srv, 'small', 'alice');
    assert.strictEqual(a.state.payload.settings.max_participants, 2);
    const b = await h.join(srv, 'small', 'bob');
    await a.next('user-joined');
    await h.expectRefused(srv, 'small', h.mintToken(h.SECRET, { sub: 'carol' }), 409, 'ROOM_FULL');
    await h.expectRefused(srv, 'small', h.mintToken(h.SECRET, { sub: 'carol' }), 409, 'ROOM_FULL', { via: 'query' });
    // Nobody in the room heard about the refused joiner.
    await Promise.all([a.expectNone(100), b.expectNone(0)]);
    // Another room is not affected.
    const c = await h.join(srv, 'other', 'carol');
    await c.end();
    // A place frees up when someone leaves.
    await b.end();
    await a.next('user-left');
    const c2 = await h.join(srv, 'small', 'carol');
    await a.next('user-joined');
    await c2.end();
    await a.end();
  });
});
