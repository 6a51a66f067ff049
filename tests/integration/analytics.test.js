'use strict';
// Endpoints 10 (analytics events) and 11 (analytics summary): real figures
// from real traffic, access rules, and the summary outliving the room.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const ev = (room, q = '') => `/webrtc/rooms/${room}/analytics${q}`;
const sum = (room) => `/webrtc/rooms/${room}/analytics/summary`;

test('analytics events: join/leave/chat/reaction/quality/custom with user ids; since and limit', async (t) => {
  await h.withServer({}, async (srv) => {
    const room = 'an';
    const hostTok = f.tok(srv, { sub: 'alice', role: 'host' });
    const { alice, bob } = await f.joinAll(srv, room, [['alice', { role: 'host' }], ['bob']]);
    const tJoin = Date.now();
    bob.send({ type: 'chat-message', payload: { text: 'hello' } });
    bob.send({ type: 'chat-message', to: 'alice', payload: { text: 'psst' } });
    bob.send({ type: 'reaction', payload: { emoji: '👍' } });
    bob.send({ type: 'network-stats', payload: { rtt_ms: 500, packet_loss: 0 } });
    bob.send({ type: 'quality-update', payload: { quality: 'low' } });
    bob.send({ type: 'analytics-event', payload: { name: 'screen.opened', properties: { source: 'menu' } } });
    bob.send({ type: 'chat-message', id: 'bad', payload: { text: '   ' } }); // refused: no event
    f.assertWsError(await bob.next('error'), 'INVALID_MESSAGE', 'bad');
    for (const type of ['chat-message', 'chat-message', 'reaction', 'network-stats', 'quality-update']) await alice.next(type);
    await bob.end();
    await alice.next('user-left');
    let all;

    await h.sub(t, 'the events, oldest first, with user ids and names', srv, async () => {
      const r = await f.rest(srv, 'GET', ev(room), { token: hostTok });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.room_id, room);
      all = r.json.events;
      const brief = all.map((e) => [e.type, e.user_id, e.name]);
      assert.deepStrictEqual(brief, [
        ['join', 'alice', undefined],
        ['join', 'bob', undefined],
        ['chat', 'bob', 'room'],
        ['chat', 'bob', 'private'],
        ['reaction', 'bob', undefined],
        ['quality', 'bob', 'poor'],
        ['quality_update', 'bob', 'low'],
        ['custom', 'bob', 'screen.opened'],
        ['leave', 'bob', 'left'],
      ], JSON.stringify(all));
      assert.strictEqual(r.json.total_events, all.length);
      for (let i = 0; i < all.length; i++) {
        assert.ok(Number.isInteger(all[i].ts) && Math.abs(all[i].ts - tJoin) < 30000, `ts ${all[i].ts}`);
        if (i) assert.ok(all[i].ts >= all[i - 1].ts, 'oldest first');
      }
      assert.strictEqual(all[5].value, 500, 'quality value is the RTT');
      assert.deepStrictEqual(all[7].data, { source: 'menu' });
      assert.ok(Number.isInteger(all[8].value) && all[8].value >= 0, 'leave value is the session length');
      assert.ok(!JSON.stringify(all).includes('hello') && !JSON.stringify(all).includes('psst'), 'chat text is not kept');
    });

    await h.sub(t, 'since filters by time, limit keeps the newest', srv, async () => {
      const since = all[4].ts;
      const r = await f.rest(srv, 'GET', ev(room, `?since=${since}`), { token: hostTok });
      assert.strictEqual(r.status, 200, r.text);
      assert.deepStrictEqual(r.json.events, all.filter((e) => e.ts >= since));
      const future = await f.rest(srv, 'GET', ev(room, `?since=${Date.now() + 60000}`), { token: hostTok });
      assert.deepStrictEqual(future.json.events, []);
      const l2 = await f.rest(srv, 'GET', ev(room, '?limit=2'), { token: hostTok });
      assert.deepStrictEqual(l2.json.events, all.slice(-2), 'the newest two, oldest first');
      const l1 = await f.rest(srv, 'GET', ev(room, `?limit=1&since=${all[0].ts}`), { token: hostTok });
      assert.deepStrictEqual(l1.json.events, all.slice(-1));
      const lmax = await f.rest(srv, 'GET', ev(room, '?limit=1000'), { token: hostTok });
      assert.deepStrictEqual(lmax.json.events, all);
    });

    await h.sub(t, 'invalid limit or since -> 400', srv, async () => {
      for (const q of ['?limit=0', '?limit=1001', '?limit=abc', '?limit=-1', '?limit=5x', '?since=yesterday']) {
        f.assertRestError(await f.rest(srv, 'GET', ev(room, q), { token: hostTok }), 400, undefined, q);
      }
    });

    await h.sub(t, 'who may read: moderator and admin yes; participant 403, no token 401, other room 403, unknown room 404', srv, async () => {
      assert.strictEqual((await f.rest(srv, 'GET', ev(room), { token: f.tok(srv, { sub: 'm', role: 'moderator' }) })).status, 200);
      assert.strictEqual((await f.rest(srv, 'GET', ev(room), { token: f.adminTok(srv) })).status, 200);
      assert.strictEqual((await f.rest(srv, 'GET', ev(room), { token: f.tok(srv, { sub: 'p', perms: { can_moderate: true } }) })).status, 200);
      f.assertRestError(await f.rest(srv, 'GET', ev(room), { token: f.tok(srv, { sub: 'bob' }) }), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(srv, 'GET', ev(room), { token: f.tok(srv, { sub: 'x', role: 'host', perms: { can_moderate: false } }) }), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(srv, 'GET', ev(room)), 401, 'UNAUTHORIZED');
      f.assertRestError(await f.rest(srv, 'GET', ev(room), { token: f.tok(srv, { sub: 'alice', role: 'host', room: 'other' }) }), 403, 'TOKEN_ROOM_MISMATCH');
      f.assertRestError(await f.rest(srv, 'GET', ev('no-such-room'), { token: hostTok }), 404, 'ROOM_NOT_FOUND');
      f.assertRestError(await f.rest(srv, 'GET', ev('bad%20id'), { token: hostTok }), 400, 'INVALID_ROOM_ID');
    });
    await alice.end();
  });
});

test('analytics summary: real figures from real traffic; refused messages are not counted; it outlives the room', async (t) => {
  await h.withServer({}, async (srv) => {
    const room = 'sum';
    const hostTok = f.tok(srv, { sub: 'alice', role: 'host' });
    const t0 = Date.now();
    const { alice, bob } = await f.joinAll(srv, room, [['alice', { role: 'host' }], ['bob']]);
    const bobJoined = Date.now();
    for (let i = 0; i < 3; i++) bob.send({ type: 'chat-message', payload: { text: `chat ${i}` } });
    for (const emoji of ['👍', '🎉']) bob.send({ type: 'reaction', payload: { emoji } });
    // Refused: not counted.
    bob.send({ type: 'chat-message', id: 'r1', payload: { text: '' } });
    bob.send({ type: 'chat-message', id: 'r2', payload: { text: 'x', reply_to: 'm999' } });
    bob.send({ type: 'reaction', id: 'r3', payload: { emoji: 'hi' } });
    bob.send({ type: 'network-stats', id: 'r4', payload: { rtt_ms: -1 } });
    // Quality samples: 1 good, 1 fair, 2 poor.
    for (const s of [{ rtt_ms: 20 }, { rtt_ms: 200 }, { rtt_ms: 500 }, { packet_loss: 10 }]) bob.send({ type: 'network-stats', payload: s });
    for (const type of ['chat-message', 'chat-message', 'chat-message', 'reaction', 'reaction']) await alice.next(type);
    for (let i = 0; i < 4; i++) await alice.next('network-stats');
    for (const code of ['INVALID_MESSAGE', 'MESSAGE_NOT_FOUND', 'INVALID_REACTION', 'INVALID_STATS']) {
      assert.strictEqual((await bob.next('error')).payload.code, code);
    }
    // bob stays about 300 ms in all.
    await h.delay(Math.max(0, 300 - (Date.now() - bobJoined)));
    await bob.end();
    const bobLeft = Date.now();
    await alice.next('user-left');
    let live;

    await h.sub(t, 'live summary', srv, async () => {
      const r = await f.rest(srv, 'GET', sum(room), { token: hostTok });
      assert.strictEqual(r.status, 200, r.text);
      const s = r.json;
      live = s;
      assert.strictEqual(s.room_id, room);
      assert.strictEqual(s.live, true);
      assert.ok(Number.isInteger(s.created_at) && s.created_at >= t0 - 1000 && s.created_at <= bobJoined, `created_at ${s.created_at}`);
      assert.strictEqual(s.closed_at, undefined);
      assert.strictEqual(s.current_participants, 1);
      assert.strictEqual(s.peak_participants, 2);
      assert.strictEqual(s.total_sessions, 2);
      assert.strictEqual(s.messages_by_type['chat-message'], 3, JSON.stringify(s.messages_by_type));
      assert.strictEqual(s.messages_by_type.reaction, 2, JSON.stringify(s.messages_by_type));
      assert.strictEqual(s.messages_by_type['network-stats'], 4, JSON.stringify(s.messages_by_type));
      assert.strictEqual(s.messages_total, Object.values(s.messages_by_type).reduce((a, b) => a + b, 0));
      assert.strictEqual(s.messages_total, 9);
      assert.deepStrictEqual(s.quality_distribution, { good: 1, fair: 1, poor: 2 });
      assert.strictEqual(s.custom_events, 0);
      assert.strictEqual(s.recordings, 0);
      assert.strictEqual(s.live_streams, 0);
      // Two sessions of at least ~300 ms each (bob's closed, alice's still open).
      assert.ok(s.average_session_ms >= 250, `average_session_ms ${s.average_session_ms}`);
      assert.ok(s.average_session_ms < 30000, `average_session_ms ${s.average_session_ms}`);
      assert.ok(s.participant_minutes > 0, `participant_minutes ${s.participant_minutes}`);
      const totalMs = s.participant_minutes * 60000;
      assert.ok(Math.abs(totalMs - s.average_session_ms * s.total_sessions) <= s.total_sessions + 1,
        `participant_minutes (${s.participant_minutes}) and average_session_ms (${s.average_session_ms}) agree`);
      assert.ok(totalMs <= (Date.now() - t0) * 2 + 50, 'no more than two sessions since t0');
      assert.ok(totalMs >= (bobLeft - bobJoined) * 0.8, 'at least bob\'s session');
    });

    await h.sub(t, 'the open session keeps counting', srv, async () => {
      await h.delay(30);
      const r = await f.rest(srv, 'GET', sum(room), { token: hostTok });
      assert.ok(r.json.participant_minutes > live.participant_minutes, 'alice\'s open session grows');
    });

    await h.sub(t, 'participant token -> 403, unknown room -> 404, no token -> 401', srv, async () => {
      f.assertRestError(await f.rest(srv, 'GET', sum(room), { token: f.tok(srv, { sub: 'bob' }) }), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(srv, 'GET', sum(room), { token: f.tok(srv, { sub: 'v', role: 'viewer' }) }), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(srv, 'GET', sum('nope'), { token: hostTok }), 404, 'ROOM_NOT_FOUND');
      f.assertRestError(await f.rest(srv, 'GET', sum('nope'), { token: f.adminTok(srv) }), 404, 'ROOM_NOT_FOUND');
      f.assertRestError(await f.rest(srv, 'GET', sum(room)), 401, 'UNAUTHORIZED');
    });

    await h.sub(t, 'after the room closes: still there for an admin, live false, closed_at, figures frozen', srv, async () => {
      await alice.end();
      const admin = f.adminTok(srv);
      const s = await h.waitFor(async () => {
        const r = await f.rest(srv, 'GET', sum(room), { token: admin });
        return r.status === 200 && r.json.live === false && r.json;
      }, 3000, 25, 'the room to close');
      assert.ok(Number.isInteger(s.closed_at) && s.closed_at >= s.created_at && s.closed_at <= Date.now(), `closed_at ${s.closed_at}`);
      assert.strictEqual(s.current_participants, 0);
      assert.strictEqual(s.peak_participants, 2);
      assert.strictEqual(s.total_sessions, 2);
      assert.strictEqual(s.messages_by_type['chat-message'], 3);
      assert.strictEqual(s.messages_by_type.reaction, 2);
      assert.deepStrictEqual(s.quality_distribution, { good: 1, fair: 1, poor: 2 });
      assert.ok(s.participant_minutes >= live.participant_minutes);
      await h.delay(20);
      const again = await f.rest(srv, 'GET', sum(room), { token: admin });
      assert.strictEqual(again.json.participant_minutes, s.participant_minutes, 'no open session any more');
      const events = await f.rest(srv, 'GET', ev(room), { token: admin });
      assert.deepStrictEqual(events.json.events.slice(-1).map((e) => [e.type, e.user_id]), [['leave', 'alice']]);
      // Reopening the room continues the same history.
      const carol = await h.join(srv, room, 'carol');
      const r = await f.rest(srv, 'GET', sum(room), { token: admin });
      assert.strictEqual(r.json.live, true);
      assert.strictEqual(r.json.closed_at, undefined);
      assert.strictEqual(r.json.total_sessions, 3);
      assert.strictEqual(r.json.current_participants, 1);
      await carol.end();
    });
  });
});

test('analytics events: recording, stream and file events; the default limit is 100 and the last 1000 are kept', async () => {
  await h.withServer({}, async (srv) => {
    const room = 'an2';
    const hostTok = f.tok(srv, { sub: 'alice', role: 'host' });
    const { alice, bob } = await f.joinAll(srv, room, [['alice', { role: 'host' }], ['bob']]);
    const rec = await f.rest(srv, 'POST', `/webrtc/rooms/${room}/recordings/start`, { token: hostTok });
    const recId = rec.json.recording.recording_id;
    const st = await f.rest(srv, 'POST', `/webrtc/rooms/${room}/live-streams/start`, { token: hostTok, json: { target_url: 'rtmp://h.example.com/app/KEY' } });
    const stId = st.json.live_stream.stream_id;
    await f.rest(srv, 'POST', `/webrtc/rooms/${room}/recordings/${recId}/stop`, { token: hostTok });
    await f.rest(srv, 'POST', `/webrtc/rooms/${room}/live-streams/${stId}/stop`, { token: hostTok });
    alice.send({ type: 'file-share-offer', to: 'bob', payload: { name: 'a.pdf', size: 1234, mime_type: 'application/pdf', sha256: 'b'.repeat(64) } });
    const T = (await bob.next('file-share-offer')).payload.transfer_id;
    bob.send({ type: 'file-share-accept', to: 'alice', payload: { transfer_id: T } });
    await alice.next('file-share-accept');
    bob.send({ type: 'file-share-complete', to: 'alice', payload: { transfer_id: T } });
    await alice.next('file-share-complete');
    const r = await f.rest(srv, 'GET', ev(room), { token: hostTok });
    const brief = r.json.events.filter((e) => !['join', 'leave'].includes(e.type)).map((e) => [e.type, e.user_id, e.name, e.value]);
    assert.strictEqual(brief.length, 6, JSON.stringify(brief));
    assert.deepStrictEqual(brief[0], ['recording_start', 'alice', recId, undefined]);
    assert.deepStrictEqual(brief[1], ['stream_start', 'alice', stId, undefined]);
    assert.deepStrictEqual(brief[2].slice(0, 3), ['recording_stop', 'alice', recId]);
    assert.ok(Number.isInteger(brief[2][3]) && brief[2][3] > 0, 'recording_stop value is the duration');
    assert.deepStrictEqual(brief[3].slice(0, 3), ['stream_stop', 'alice', stId]);
    assert.deepStrictEqual(brief[4], ['file_offer', 'alice', undefined, 1234]);
    assert.deepStrictEqual(brief[5].slice(0, 2).concat([brief[5][3]]), ['file_complete', 'bob', 1234]);
    assert.ok(!r.text.includes('KEY'), 'no stream key in analytics');
    const s = await f.rest(srv, 'GET', sum(room), { token: hostTok });
    assert.strictEqual(s.json.recordings, 1);
    assert.strictEqual(s.json.live_streams, 1);

    // 1100 custom events: the default answer is the newest 100; at most 1000 are kept.
    for (let i = 0; i < 1100; i++) bob.send({ type: 'analytics-event', payload: { name: `e${i}` } });
    bob.send({ type: 'chat-message', payload: { text: 'done' } });
    await alice.next('chat-message');
    const d = await f.rest(srv, 'GET', ev(room), { token: hostTok });
    assert.strictEqual(d.json.events.length, 100, 'default limit 100');
    assert.deepStrictEqual(d.json.events.slice(-2).map((e) => e.name), ['e1099', 'room']);
    const all = await f.rest(srv, 'GET', ev(room, '?limit=1000'), { token: hostTok });
    assert.strictEqual(all.json.events.length, 1000);
    assert.strictEqual(all.json.events[0].name, 'e101', 'the oldest kept is the 1000th newest');
    assert.ok(all.json.total_events >= 1100 + 8, `total_events ${all.json.total_events} counts all`);
    const s2 = await f.rest(srv, 'GET', sum(room), { token: hostTok });
    assert.strictEqual(s2.json.custom_events, 1100, 'the summary uses the whole history');
  });
});

test('analytics: closed rooms beyond --history-rooms are forgotten (404 ROOM_NOT_FOUND)', async () => {
  await h.withServer({ args: ['--history-rooms', '1'] }, async (srv) => {
    const admin = f.adminTok(srv);
    for (const room of ['old', 'new']) {
      const c = await h.join(srv, room, 'alice');
      await c.end();
      await h.waitFor(async () => (await f.rest(srv, 'GET', sum(room), { token: admin })).json.live === false, 3000, 20, `${room} to close`);
    }
    f.assertRestError(await f.rest(srv, 'GET', sum('old'), { token: admin }), 404, 'ROOM_NOT_FOUND');
    f.assertRestError(await f.rest(srv, 'GET', ev('old'), { token: admin }), 404, 'ROOM_NOT_FOUND');
    const r = await f.rest(srv, 'GET', sum('new'), { token: admin });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.total_sessions, 1);
  });
});
