'use strict';
// Recording control: endpoints 12-14 and recording-control / recording-status.
// Who may start and stop, what everyone in the room is told, what the list
// and room-state show, and what happens when the room empties.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const base = (room) => `/webrtc/rooms/${room}/recordings`;

function assertRecording(r, { state, started_by: by }) {
  assert.ok(r && typeof r === 'object', `recording object: ${JSON.stringify(r)}`);
  assert.match(r.recording_id, /^r[0-9a-zA-Z]{8,}$/);
  assert.strictEqual(r.state, state, JSON.stringify(r));
  if (by) assert.strictEqual(r.started_by, by);
  assert.ok(Number.isInteger(r.started_at) && Math.abs(r.started_at - Date.now()) < 60000, `started_at ${r.started_at}`);
  assert.ok(Number.isInteger(r.duration_ms) && r.duration_ms >= 0, `duration_ms ${r.duration_ms}`);
  assert.strictEqual(r.format, 'webm');
  if (state === 'stopped') {
    assert.ok(Number.isInteger(r.stopped_at) && r.stopped_at >= r.started_at, `stopped_at ${r.stopped_at}`);
    assert.strictEqual(r.duration_ms, r.stopped_at - r.started_at, 'duration is stopped_at - started_at');
    assert.strictEqual(typeof r.stopped_by, 'string');
  } else {
    assert.strictEqual(r.stopped_at, undefined);
    assert.strictEqual(r.stopped_by, undefined);
  }
}

async function expectStatus(clients, id, state) {
  const got = await Promise.all(clients.map((c) => c.next()));
  for (const m of got) {
    assert.strictEqual(m.type, 'recording-status', JSON.stringify(m));
    assert.strictEqual(m.from, 'server');
    assert.strictEqual(m.payload.recording_id, id);
    assertRecording(m.payload, { state });
  }
  for (const m of got) assert.strictEqual(m.seq, got[0].seq, 'one broadcast');
  return got[0].payload;
}

test('recordings over REST: start, conflicts, permissions, list, room-state, stop', async (t) => {
  await h.withServer({}, async (srv) => {
    const room = 'rec';
    const hostTok = f.tok(srv, { sub: 'alice', room, role: 'host' });
    const bobTok = f.tok(srv, { sub: 'bob', room });
    const vicTok = f.tok(srv, { sub: 'vic', room, role: 'viewer' });
    const { alice, bob, vic } = await f.joinAll(srv, room, [
      ['alice', { room, role: 'host' }], ['bob', { room }], ['vic', { room, role: 'viewer' }]]);
    const everyone = [alice, bob, vic];
    const s = (name, fn) => h.sub(t, name, srv, fn);
    let rec;

    await s('host starts: 201 and every participant, the viewer too, receives recording-status', async () => {
      const r = await f.rest(srv, 'POST', `${base(room)}/start`, { token: hostTok });
      assert.strictEqual(r.status, 201, r.text);
      assert.match(String(r.headers['content-type']), /application\/json/);
      rec = r.json.recording;
      assertRecording(rec, { state: 'recording', started_by: 'alice' });
      const st = await expectStatus(everyone, rec.recording_id, 'recording');
      assert.strictEqual(st.started_by, 'alice');
      assert.strictEqual(st.started_at, rec.started_at);
    });

    await s('a second start -> 409 RECORDING_ALREADY_ACTIVE, nothing broadcast', async () => {
      const r = await f.rest(srv, 'POST', `${base(room)}/start`, { token: hostTok, json: {} });
      f.assertRestError(r, 409, 'RECORDING_ALREADY_ACTIVE');
      await f.expectNoneAll(everyone, 100);
    });

    await s('a participant (no can_record) -> 403 PERMISSION_DENIED over REST, start and stop', async () => {
      f.assertRestError(await f.rest(srv, 'POST', `${base(room)}/start`, { token: bobTok }), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(srv, 'POST', `${base(room)}/${rec.recording_id}/stop`, { token: bobTok }), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(srv, 'POST', `${base(room)}/${rec.recording_id}/stop`, { token: vicTok }), 403, 'PERMISSION_DENIED');
      await f.expectNoneAll(everyone, 50);
    });

    await s('a participant -> PERMISSION_DENIED over WebSocket recording-control', async () => {
      bob.send({ type: 'recording-control', id: 'b1', payload: { action: 'stop', recording_id: rec.recording_id } });
      await f.expectWsError(bob, 'PERMISSION_DENIED', 'b1');
      vic.send({ type: 'recording-control', id: 'v1', payload: { action: 'start' } });
      await f.expectWsError(vic, 'PERMISSION_DENIED', 'v1');
      await f.expectNoneAll(everyone, 50);
    });

    await s('any room token lists it: state recording and "active"', async () => {
      for (const token of [bobTok, vicTok, hostTok]) {
        const r = await f.rest(srv, 'GET', base(room), { token });
        assert.strictEqual(r.status, 200, r.text);
        assert.strictEqual(r.json.room_id, room);
        assert.strictEqual(r.json.active, rec.recording_id);
        assert.strictEqual(r.json.recordings.length, 1);
        assertRecording(r.json.recordings[0], { state: 'recording', started_by: 'alice' });
        assert.strictEqual(r.json.recordings[0].recording_id, rec.recording_id);
      }
    });

    await s('a newcomer\'s room-state has the recording in progress', async () => {
      const carol = await h.join(srv, room, 'carol', { room });
      for (const c of everyone) await c.next('user-joined');
      const r = carol.state.payload.recording;
      assert.ok(r, 'room-state.recording is non-null');
      assertRecording(r, { state: 'recording', started_by: 'alice' });
      assert.strictEqual(r.recording_id, rec.recording_id);
      everyone.push(carol);
    });

    await s('stop -> 200 stopped with duration, stopped_by, broadcast to everyone', async () => {
      const r = await f.rest(srv, 'POST', `${base(room)}/${rec.recording_id}/stop`, { token: hostTok });
      assert.strictEqual(r.status, 200, r.text);
      assertRecording(r.json.recording, { state: 'stopped', started_by: 'alice' });
      assert.strictEqual(r.json.recording.stopped_by, 'alice');
      assert.strictEqual(r.json.recording.recording_id, rec.recording_id);
      const st = await expectStatus(everyone, rec.recording_id, 'stopped');
      assert.strictEqual(st.stopped_by, 'alice');
      assert.strictEqual(st.stopped_at, r.json.recording.stopped_at);
    });

    await s('stop again -> 409 RECORDING_NOT_ACTIVE; unknown id -> 404 RECORDING_NOT_FOUND', async () => {
      f.assertRestError(await f.rest(srv, 'POST', `${base(room)}/${rec.recording_id}/stop`, { token: hostTok }), 409, 'RECORDING_NOT_ACTIVE');
      f.assertRestError(await f.rest(srv, 'POST', `${base(room)}/rdeadbeefdeadbeefdeadbeefdeadbe/stop`, { token: hostTok }), 404, 'RECORDING_NOT_FOUND');
      f.assertRestError(await f.rest(srv, 'POST', `${base(room)}/nope/stop`, { token: hostTok }), 404, 'RECORDING_NOT_FOUND');
      await f.expectNoneAll(everyone, 50);
    });

    await s('the list shows it stopped and no active recording; a new one can start', async () => {
      const r = await f.rest(srv, 'GET', base(room), { token: bobTok });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.active, null);
      assertRecording(r.json.recordings[0], { state: 'stopped' });
      const r2 = await f.rest(srv, 'POST', `${base(room)}/start`, { token: hostTok });
      assert.strictEqual(r2.status, 201, r2.text);
      await expectStatus(everyone, r2.json.recording.recording_id, 'recording');
      const l = await f.rest(srv, 'GET', base(room), { token: hostTok });
      assert.deepStrictEqual(l.json.recordings.map((x) => x.state), ['stopped', 'recording'], 'oldest first');
      assert.strictEqual(l.json.active, r2.json.recording.recording_id);
    });
    for (const c of everyone) c.assertEnvelopes();
  });
});

test('recording-control over WebSocket: start / stop paths and errors', async (t) => {
  await h.withServer({}, async (srv) => {
    const { mod, alice, bob } = await f.joinAll(srv, 'wsrec', [['mod', { role: 'moderator' }], ['alice', { role: 'host' }], ['bob']]);
    const everyone = [mod, alice, bob];
    const s = (name, fn) => h.sub(t, name, srv, fn);
    let id;

    await s('a moderator starts: everyone, the sender included, receives recording-status', async () => {
      mod.send({ type: 'recording-control', id: 'r1', payload: { action: 'start' } });
      const got = await Promise.all(everyone.map((c) => c.next()));
      id = got[0].payload.recording_id;
      for (const m of got) {
        assert.strictEqual(m.type, 'recording-status', JSON.stringify(m));
        assert.strictEqual(m.from, 'server');
        assert.strictEqual(m.payload.recording_id, id);
        assertRecording(m.payload, { state: 'recording', started_by: 'mod' });
      }
      const l = await f.rest(srv, 'GET', base('wsrec'), { token: f.tok(srv, { sub: 'bob' }) });
      assert.strictEqual(l.json.active, id, 'REST sees the recording started over WebSocket');
    });

    await s('start again -> RECORDING_ALREADY_ACTIVE', async () => {
      alice.send({ type: 'recording-control', id: 'r2', payload: { action: 'start' } });
      await f.expectWsError(alice, 'RECORDING_ALREADY_ACTIVE', 'r2');
      await f.expectNoneAll(everyone, 50);
    });

    const bad = [
      ['action "pause"', { action: 'pause' }],
      ['action missing', {}],
      ['action a number', { action: 1 }],
      ['action in upper case', { action: 'START' }],
      ['recording_id a number', { action: 'stop', recording_id: 5 }],
    ];
    for (const [name, payload] of bad) {
      await s(`bad payload: ${name} -> INVALID_MESSAGE`, async () => {
        alice.send({ type: 'recording-control', id: 'bad', payload });
        await f.expectWsError(alice, 'INVALID_MESSAGE', 'bad', name);
        await f.expectNoneAll(everyone, 30);
      });
    }

    await s('stop with an unknown id -> RECORDING_NOT_FOUND', async () => {
      alice.send({ type: 'recording-control', id: 'r3', payload: { action: 'stop', recording_id: 'rnope' } });
      await f.expectWsError(alice, 'RECORDING_NOT_FOUND', 'r3');
    });

    await s('stop without recording_id stops the active one; everyone receives it', async () => {
      alice.send({ type: 'recording-control', id: 'r4', payload: { action: 'stop' } });
      const st = await expectStatus(everyone, id, 'stopped');
      assert.strictEqual(st.stopped_by, 'alice');
      assert.strictEqual(st.started_by, 'mod');
    });

    await s('stop again -> RECORDING_NOT_ACTIVE (with and without id)', async () => {
      alice.send({ type: 'recording-control', id: 'r5', payload: { action: 'stop' } });
      await f.expectWsError(alice, 'RECORDING_NOT_ACTIVE', 'r5');
      mod.send({ type: 'recording-control', id: 'r6', payload: { action: 'stop', recording_id: id } });
      await f.expectWsError(mod, 'RECORDING_NOT_ACTIVE', 'r6');
      await f.expectNoneAll(everyone, 50);
    });

    await s('start and stop by id over WebSocket; REST sees the same recordings', async () => {
      alice.send({ type: 'recording-control', payload: { action: 'start' } });
      const [m] = await Promise.all(everyone.map((c) => c.next('recording-status')));
      const id2 = m.payload.recording_id;
      assert.notStrictEqual(id2, id);
      bob.send({ type: 'recording-control', id: 'pb', payload: { action: 'stop', recording_id: id2 } });
      await f.expectWsError(bob, 'PERMISSION_DENIED', 'pb');
      mod.send({ type: 'recording-control', payload: { action: 'stop', recording_id: id2 } });
      const st = await expectStatus(everyone, id2, 'stopped');
      assert.strictEqual(st.stopped_by, 'mod');
      const l = await f.rest(srv, 'GET', base('wsrec'), { token: f.tok(srv, { sub: 'bob' }) });
      assert.deepStrictEqual(l.json.recordings.map((x) => [x.recording_id, x.state]), [[id, 'stopped'], [id2, 'stopped']]);
    });
    for (const c of everyone) c.assertEnvelopes();
  });
});

// "Unknown rooms (never opened since the server started ...) are ROOM_NOT_FOUND (404)."
test('recordings: stop in a room that was never opened -> 404 ROOM_NOT_FOUND', async () => {
  await h.withServer({}, async (srv) => {
    const r = await f.rest(srv, 'POST', `${base('never-opened')}/r0123456789abcdef/stop`, { token: f.adminTok(srv) });
    f.assertRestError(r, 404, 'ROOM_NOT_FOUND');
  });
});

test('recordings: empty or unknown room, token bound to another room, no token, and the room emptying', async () => {
  await h.withServer({}, async (srv) => {
    const hostTok = f.tok(srv, { sub: 'boss', role: 'host' }); // not in the room, no room claim
    const admin = f.adminTok(srv);

    // Nobody in the room: it is not live.
    f.assertRestError(await f.rest(srv, 'POST', `${base('empty')}/start`, { token: hostTok }), 404, 'ROOM_NOT_FOUND');
    f.assertRestError(await f.rest(srv, 'POST', `${base('empty')}/start`, { token: admin }), 404, 'ROOM_NOT_FOUND');
    f.assertRestError(await f.rest(srv, 'GET', base('empty'), { token: admin }), 404, 'ROOM_NOT_FOUND');
    f.assertRestError(await f.rest(srv, 'GET', base('empty'), { token: hostTok }), 404, 'ROOM_NOT_FOUND');
    // No token.
    f.assertRestError(await f.rest(srv, 'POST', `${base('live')}/start`), 401, 'UNAUTHORIZED');
    f.assertRestError(await f.rest(srv, 'GET', base('live')), 401, 'UNAUTHORIZED');

    const { alice, bob } = await f.joinAll(srv, 'live', [['alice'], ['bob']]);
    // A token bound to another room.
    const other = f.tok(srv, { sub: 'boss', role: 'host', room: 'other' });
    f.assertRestError(await f.rest(srv, 'POST', `${base('live')}/start`, { token: other }), 403, 'TOKEN_ROOM_MISMATCH');
    f.assertRestError(await f.rest(srv, 'GET', base('live'), { token: other }), 403, 'TOKEN_ROOM_MISMATCH');
    await f.expectNoneAll([alice, bob], 50);

    // A host token of someone not in the room may start (the token's role decides).
    const r = await f.rest(srv, 'POST', `${base('live')}/start`, { token: hostTok });
    assert.strictEqual(r.status, 201, r.text);
    const id = r.json.recording.recording_id;
    assert.strictEqual(r.json.recording.started_by, 'boss');
    for (const c of [alice, bob]) assert.strictEqual((await c.next('recording-status')).payload.recording_id, id);
    // perms can take can_record away from a host token.
    const noRec = f.tok(srv, { sub: 'boss2', role: 'host', perms: { can_record: false } });
    f.assertRestError(await f.rest(srv, 'POST', `${base('live')}/${id}/stop`, { token: noRec }), 403, 'PERMISSION_DENIED');

    // Everyone leaves: the recording stops, by "server".
    await alice.end();
    await bob.end();
    const list = await h.waitFor(async () => {
      const l = await f.rest(srv, 'GET', base('live'), { token: admin });
      return l.status === 200 && l.json.recordings[0].state === 'stopped' && l.json;
    }, 3000, 25, 'the recording to stop when the room empties');
    assert.strictEqual(list.active, null);
    assertRecording(list.recordings[0], { state: 'stopped', started_by: 'boss' });
    assert.strictEqual(list.recordings[0].stopped_by, 'server');
    // Stopping it now: not active. Starting: the room is not live.
    f.assertRestError(await f.rest(srv, 'POST', `${base('live')}/${id}/stop`, { token: admin }), 409, 'RECORDING_NOT_ACTIVE');
    f.assertRestError(await f.rest(srv, 'POST', `${base('live')}/start`, { token: admin }), 404, 'ROOM_NOT_FOUND');
    // A room token (not admin) may still list the closed room's recordings.
    const l2 = await f.rest(srv, 'GET', base('live'), { token: f.tok(srv, { sub: 'alice' }) });
    assert.strictEqual(l2.status, 200, l2.text);
    assert.strictEqual(l2.json.recordings[0].stopped_by, 'server');
  });
});
