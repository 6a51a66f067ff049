// HuddleClient with a fake transport: joining, the message methods, refusals
// explained through the validate endpoint, and reconnection with resume.

import test from 'node:test';
import assert from 'node:assert/strict';
import { HuddleClient, HuddleError, CLIENT_MESSAGE_TYPES, SERVER_MESSAGE_TYPES } from '../../clients/js/src/index.js';
import { fakeTransport, fakeFetch, manualTimers, roomState, tick } from './fakes.mjs';

function setup(opts = {}) {
  const transport = fakeTransport();
  const timers = manualTimers();
  const fetch = opts.fetch || fakeFetch();
  const media = { attached: null, closed: 0, attach(c) { this.attached = c; }, close() { this.closed++; } };
  const client = new HuddleClient(Object.assign({
    room: 'r1', token: 'tok', baseUrl: 'http://h.test:8080', createSocket: transport.create,
    timers, fetch, random: () => 0.5, media,
  }, opts.client || {}));
  const events = [];
  for (const ev of ['joined', 'waiting', 'reconnecting', 'reconnected', 'resynced', 'failed', 'closed', 'error', 'resume-failed']) {
    client.on(ev, (x) => events.push([ev, x]));
  }
  return { client, transport, timers, fetch, media, events };
}

async function joined(opts) {
  const s = setup(opts);
  const p = s.client.connect();
  await tick();
  s.transport.last.open();
  s.transport.last.deliver(roomState('alice', ['bob'], { seq: 4 }));
  assert.deepEqual(await p, { status: 'joined' });
  return s;
}

test('connect: the upgrade URL carries the token; room-state resolves and fills the model', async () => {
  const s = await joined();
  const url = new URL(s.transport.sockets[0].url);
  assert.equal(url.protocol, 'ws:');
  assert.equal(url.pathname, '/webrtc/ws/r1');
  assert.equal(url.searchParams.get('token'), 'tok');
  assert.equal(url.searchParams.get('resume_token'), null);
  assert.equal(s.client.state, 'joined');
  assert.equal(s.client.selfId, 'alice');
  assert.deepEqual([...s.client.model.participants.keys()], ['alice', 'bob']);
  assert.equal(s.client.lastSeq, 4);
  assert.equal(s.client.resumeToken, 'rt-alice-1');
  assert.equal(s.media.attached, s.client);
  assert.equal(s.events[0][0], 'joined');
});

test('every server message type is emitted as an event with payload and envelope', async () => {
  const s = await joined();
  const seen = [];
  for (const t of SERVER_MESSAGE_TYPES) s.client.on(t, (p, m) => seen.push([t, p, m]));
  let seq = 5;
  for (const t of SERVER_MESSAGE_TYPES) {
    if (t === 'room-state') continue;
    const payload = t === 'error' ? { code: 'INVALID_MESSAGE', message: 'm', recovery: 'r' } : { x: t };
    s.transport.last.deliver({ type: t, room: 'r1', from: 'bob', seq: seq++, ts: 2, payload });
  }
  const types = seen.map((x) => x[0]);
  assert.deepEqual(types.filter((t) => t !== 'error'), SERVER_MESSAGE_TYPES.filter((t) => t !== 'room-state' && t !== 'error'));
  const err = s.events.find((e) => e[0] === 'error');
  assert.ok(err[1] instanceof HuddleError);
  assert.equal(err[1].code, 'INVALID_MESSAGE');
  assert.equal(err[1].recovery, 'r');
});

test('every client message type has a method that sends it', async () => {
  const s = await joined();
  const calls = [
    ['sendOffer', ['bob', { sdp: 'v=0 o' }], 'offer', { type: 'offer', sdp: 'v=0 o' }, 'bob'],
    ['sendAnswer', ['bob', { sdp: 'v=0 a' }], 'answer', { type: 'answer', sdp: 'v=0 a' }, 'bob'],
    ['sendIceCandidate', ['bob', { candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 }], 'ice-candidate', { candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: 0 }, 'bob'],
    ['sendIceCandidate', ['bob', null], 'ice-candidate', { candidate: '', sdpMid: null, sdpMLineIndex: null }, 'bob'],
    ['setMediaState', ['audio', true], 'media-control', { kind: 'audio', enabled: true }],
    ['muteParticipant', ['bob'], 'media-control', { kind: 'audio', enabled: false, user_id: 'bob' }],
    ['requestUnmute', ['bob', 'video'], 'media-control', { kind: 'video', enabled: true, user_id: 'bob' }],
    ['muteAll', [], 'media-control', { kind: 'audio', enabled: false, all: true }],
    ['screenShareStarted', [], 'screen-share-control', { action: 'start' }],
    ['screenShareStopped', [], 'screen-share-control', { action: 'stop' }],
    ['stopScreenShareOf', ['bob'], 'screen-share-control', { action: 'stop', user_id: 'bob' }],
    ['sendChat', ['hi', { to: 'bob', replyTo: 'm3' }], 'chat-message', { text: 'hi', reply_to: 'm3' }, 'bob'],
    ['react', ['👍'], 'reaction', { emoji: '👍' }],
    ['raiseHand', [], 'hand-raise', { raised: true }],
    ['lowerHand', [], 'hand-raise', { raised: false }],
    ['lowerHand', ['bob'], 'hand-raise', { raised: false, user_id: 'bob' }],
    ['nextSpeaker', [], 'hand-raise', { action: 'next' }],
    ['setRole', ['bob', 'moderator'], 'role-updated', { user_id: 'bob', role: 'moderator' }],
    ['setPermissions', ['bob', { can_chat: false }], 'permission-updated', { user_id: 'bob', permissions: { can_chat: false } }],
    ['updateSettings', [{ mute_on_join: true }], 'room-settings-update', { mute_on_join: true }],
    ['lockRoom', [], 'room-settings-update', { locked: true }],
    ['removeParticipant', ['bob', 'spam'], 'participant-update', { action: 'remove', user_id: 'bob', reason: 'spam' }],
    ['updateInfo', [{ device_info: { os: 'x' } }], 'participant-update', { info: { device_info: { os: 'x' } } }],
    ['admit', ['carol'], 'waiting-room-admit', { user_id: 'carol' }],
    ['reject', ['carol', 'no'], 'waiting-room-reject', { user_id: 'carol', reason: 'no' }],
    ['createBreakouts', [[{ name: 'A' }]], 'breakout-room-create', { rooms: [{ name: 'A' }] }],
    ['assignBreakout', ['br-1', 'bob'], 'breakout-room-assign', { breakout_room_id: 'br-1', user_id: 'bob' }],
    ['closeBreakout', ['br-1'], 'breakout-room-close', { breakout_room_id: 'br-1' }],
    ['startRecording', [], 'recording-control', { action: 'start' }],
    ['stopRecording', ['rec1'], 'recording-control', { action: 'stop', recording_id: 'rec1' }],
    ['startLiveStream', ['rtmp://h/app/key', 'main'], 'live-stream-start', { target_url: 'rtmp://h/app/key', name: 'main' }],
    ['stopLiveStream', ['s1'], 'live-stream-stop', { stream_id: 's1' }],
    ['offerFile', [{ name: 'a.pdf', size: 1, mime_type: 'application/pdf', sha256: 'x' }, 'bob'], 'file-share-offer', { name: 'a.pdf', size: 1, mime_type: 'application/pdf', sha256: 'x' }, 'bob'],
    ['acceptFile', ['bob', 't1'], 'file-share-accept', { transfer_id: 't1' }, 'bob'],
    ['rejectFile', ['bob', 't1', 'no'], 'file-share-reject', { transfer_id: 't1', reason: 'no' }, 'bob'],
    ['fileProgress', ['bob', 't1', 10], 'file-share-progress', { transfer_id: 't1', bytes_transferred: 10 }, 'bob'],
    ['fileComplete', ['bob', 't1', 'h'], 'file-share-complete', { transfer_id: 't1', sha256: 'h' }, 'bob'],
    ['sendNetworkStats', [{ rtt_ms: 5 }], 'network-stats', { rtt_ms: 5 }],
    ['sendQualityUpdate', [{ quality: 'low' }], 'quality-update', { quality: 'low' }],
    ['trackEvent', ['x.y', { a: 1 }], 'analytics-event', { name: 'x.y', properties: { a: 1 } }],
    ['setVirtualBackground', [{ type: 'blur', blur_radius: 3 }], 'virtual-background-update', { type: 'blur', blur_radius: 3 }],
    ['sendE2eeKey', [{ key_id: 1 }, 'bob'], 'e2ee-key-exchange', { key_id: 1 }, 'bob'],
    ['sendE2eeRatchet', [{ epoch: 2 }], 'e2ee-ratchet-update', { epoch: 2 }],
  ];
  const ws = s.transport.last;
  const covered = new Set();
  for (const [method, args, type, payload, to] of calls) {
    ws.sent = [];
    const id = s.client[method](...args);
    assert.equal(ws.sent.length, 1, method);
    const m = ws.sent[0];
    assert.equal(m.type, type, method);
    assert.deepEqual(m.payload, payload, method);
    assert.equal(m.to, to, method);
    assert.equal(m.id, id, `${method} returns the message id`);
    covered.add(type);
  }
  assert.deepEqual([...covered].sort(), [...CLIENT_MESSAGE_TYPES].sort(), 'a method for every client message type');
});

test('request() resolves with the echo carrying its ref and rejects with the error carrying it', async () => {
  const s = await joined();
  const ws = s.transport.last;
  const p1 = s.client.request('chat-message', { text: 'hi' });
  const id1 = ws.sent.at(-1).id;
  ws.deliver({ type: 'chat-message', from: 'alice', seq: 9, payload: { text: 'hi', message_id: 'm9' }, ref: id1 });
  assert.equal((await p1).payload.message_id, 'm9');
  const p2 = s.client.request('chat-message', { text: '' });
  const id2 = ws.sent.at(-1).id;
  ws.deliver({ type: 'error', from: 'server', seq: 9, payload: { code: 'INVALID_MESSAGE', message: 'empty', recovery: 'say something', ref: id2 }, ref: id2 });
  await assert.rejects(p2, (e) => e instanceof HuddleError && e.code === 'INVALID_MESSAGE' && e.ref === id2);
});

test('a refused upgrade is explained through the validate endpoint', async () => {
  const fetch = fakeFetch({ '/validate': [409, { error: { code: 'ROOM_FULL', message: 'full', recovery: 'later' } }] });
  const s = setup({ fetch });
  const p = s.client.connect();
  await tick();
  s.transport.last.drop(1006);
  await assert.rejects(p, (e) => e.code === 'ROOM_FULL' && e.status === 409 && e.recovery === 'later');
  const call = fetch.calls[0];
  assert.equal(new URL(call.url).pathname, '/webrtc/rooms/r1/validate');
  assert.equal(call.init.headers.Authorization, 'Bearer tok');
  assert.equal(s.client.state, 'closed');
});

test('without a validate endpoint (404) the refusal is CONNECTION_FAILED', async () => {
  const s = setup();
  const p = s.client.connect();
  await tick();
  s.transport.last.drop(1006);
  await assert.rejects(p, (e) => e.code === 'CONNECTION_FAILED');
});

test('waiting room: connect resolves "waiting", then admission emits joined', async () => {
  const s = setup();
  const p = s.client.connect();
  await tick();
  const ws = s.transport.last;
  ws.open();
  ws.deliver({ type: 'waiting-room-join', from: 'server', seq: 3, payload: { status: 'waiting', position: 1 } });
  assert.deepEqual(await p, { status: 'waiting' });
  assert.equal(s.client.state, 'waiting');
  assert.equal(s.client.model.waitingPosition, 1);
  ws.deliver({ type: 'waiting-room-admit', from: 'server', seq: 5, payload: { user_id: 'alice', status: 'admitted', by: 'h' } });
  ws.deliver(roomState('alice', ['h'], { seq: 5 }));
  assert.equal(s.client.state, 'joined');
  assert.deepEqual(s.events.map((e) => e[0]), ['waiting', 'joined']);
});

test('a cut connection resumes with resume_token and last_seq; replayed duplicates are dropped; peers survive', async () => {
  const s = await joined();
  const ws1 = s.transport.last;
  ws1.deliver({ type: 'chat-message', from: 'bob', seq: 7, payload: { text: 'a', message_id: 'm7' } });
  const chats = [];
  s.client.on('chat-message', (p) => chats.push(p.message_id));
  ws1.drop(1006);
  assert.equal(s.client.state, 'reconnecting');
  assert.deepEqual(s.events.at(-1), ['reconnecting', { attempt: 1, delayMs: 375, code: 1006 }]);
  // Messages sent while reconnecting wait for the resume.
  s.client.sendChat('queued');
  s.timers.runNext();
  await tick();
  const ws2 = s.transport.last;
  assert.notEqual(ws2, ws1);
  assert.equal(ws2.query.resume_token, 'rt-alice-1');
  assert.equal(ws2.query.last_seq, '7');
  assert.equal(ws2.query.token, 'tok');
  ws2.open();
  ws2.deliver({ type: 'chat-message', from: 'bob', seq: 7, payload: { text: 'a', message_id: 'm7' } }); // a duplicate
  ws2.deliver({ type: 'chat-message', from: 'bob', seq: 8, payload: { text: 'b', message_id: 'm8' } });
  assert.deepEqual(ws2.sent, []);
  ws2.deliver(roomState('alice', ['bob'], { seq: 8, rt: 2, payload: { resumed: true } }));
  assert.deepEqual(chats, ['m8']);
  assert.equal(s.client.state, 'joined');
  assert.equal(s.client.resumeToken, 'rt-alice-2');
  assert.equal(s.client.lastSeq, 8);
  assert.deepEqual(s.events.slice(-1), [['reconnected', { resumed: true }]]);
  assert.ok(!s.events.some((e) => e[0] === 'resynced'));
  assert.equal(s.media.closed, 0, 'the media engine (and its peer connections) is untouched');
  assert.deepEqual(ws2.sent.map((m) => m.payload.text), ['queued']);
});

test('a failed resume is a fresh join: resume-failed, then reconnected and resynced from room-state', async () => {
  const s = await joined();
  s.transport.last.drop(1001);
  s.timers.runNext();
  await tick();
  const ws2 = s.transport.last;
  ws2.open();
  ws2.deliver({ type: 'error', from: 'server', seq: 0, payload: { code: 'RESUME_EXPIRED', message: 'late', recovery: '' } });
  ws2.deliver(roomState('alice', ['carol'], { seq: 0, rt: 3, payload: { resumed: false } }));
  const names = s.events.map((e) => e[0]);
  assert.deepEqual(names.slice(-3), ['resume-failed', 'reconnected', 'resynced']);
  assert.ok(!names.includes('error'), 'RESUME_* is not reported as an error');
  assert.equal(s.client.lastSeq, 0, 'seq restarts with the fresh room-state');
  assert.deepEqual([...s.client.model.participants.keys()], ['alice', 'carol']);
});

test('backoff grows with jitter, is capped, and gives up with RECONNECT_FAILED', async () => {
  const s = await joined({ client: { reconnect: { baseMs: 100, maxMs: 800, maxAttempts: 6, maxElapsedMs: 1e9 } } });
  s.transport.last.drop(1006);
  const delays = [];
  for (let i = 0; i < 6; i++) {
    delays.push(s.events.at(-1)[1].delayMs);
    s.timers.runNext();
    await tick();
    s.transport.last.drop(1006); // refused again (validate: no endpoint, so transient)
    await tick();
    await tick();
  }
  // random() = 0.5: delay = 3/4 of min(maxMs, baseMs * 2^n)
  assert.deepEqual(delays, [75, 150, 300, 600, 600, 600]);
  assert.equal(s.client.state, 'failed');
  assert.equal(s.events.at(-1)[0], 'failed');
  assert.equal(s.events.at(-1)[1].code, 'RECONNECT_FAILED');
});

test('a refusal that will not change (validate says TOKEN_EXPIRED) ends reconnection at once', async () => {
  const fetch = fakeFetch({ '/validate': [401, { error: { code: 'TOKEN_EXPIRED', message: 'old', recovery: 'new token' } }] });
  const s = await joined({ fetch });
  s.transport.last.drop(1006);
  s.timers.runNext();
  await tick();
  s.transport.last.drop(1006); // the upgrade is refused
  await tick();
  await tick();
  assert.equal(s.client.state, 'failed');
  assert.equal(s.events.at(-1)[1].code, 'TOKEN_EXPIRED');
});

test('a token function is called again for each attempt', async () => {
  let n = 0;
  const s = await joined({ client: { token: () => `t${++n}` } });
  s.transport.last.drop(1006);
  s.timers.runNext();
  await tick();
  assert.equal(s.transport.sockets[0].query.token, 't1');
  assert.equal(s.transport.last.query.token, 't2');
});

test('removal, session replacement and rejection close for good', async () => {
  for (const [code, reason] of [[4003, 'REMOVED'], [4001, 'SESSION_REPLACED'], [4004, 'WAITING_ROOM_REJECTED'], [4005, 'BREAKOUT_CLOSED']]) {
    const s = await joined();
    s.transport.last.drop(code, 'x');
    assert.equal(s.client.state, 'closed');
    assert.deepEqual(s.events.at(-1), ['closed', { code, reason, detail: 'x' }]);
    assert.deepEqual(s.timers.pending(), [], `no reconnect after ${code}`);
    assert.equal(s.media.closed, 1);
  }
});

test('an erase of the user (4007) closes for good, no automatic rejoin', async () => {
  const s = await joined();
  s.transport.last.drop(4007, 'erased');
  assert.equal(s.client.state, 'closed');
  assert.deepEqual(s.events.at(-1), ['closed', { code: 4007, reason: 'ERASED', detail: 'erased' }]);
  assert.deepEqual(s.timers.pending(), [], 'no reconnect after 4007');
});

test('a room closed by DELETE (4006) closes for good: the room is gone, no automatic rejoin', async () => {
  const s = await joined();
  s.transport.last.drop(4006, 'room closed');
  assert.equal(s.client.state, 'closed');
  assert.deepEqual(s.events.at(-1), ['closed', { code: 4006, reason: 'ROOM_CLOSED', detail: 'room closed' }]);
  assert.deepEqual(s.timers.pending(), [], 'no reconnect after 4006');
});

test('leave() closes with 1000 and does not reconnect', async () => {
  const s = await joined();
  const ws = s.transport.last;
  s.client.leave();
  assert.deepEqual(ws.closedWith, { code: 1000, reason: 'bye' });
  assert.equal(s.client.state, 'closed');
  assert.throws(() => s.client.sendChat('late'), (e) => e.code === 'NOT_CONNECTED');
});

test('moveTo() joins another room with a grant', async () => {
  const s = await joined();
  const p = s.client.moveTo({ room_id: 'br-1', grant: 'g1' });
  await tick();
  const ws = s.transport.last;
  assert.equal(new URL(ws.url).pathname, '/webrtc/ws/br-1');
  assert.equal(ws.query.grant, 'g1');
  assert.equal(ws.query.token, undefined);
  ws.open();
  ws.deliver(roomState('alice', [], { room: 'br-1', payload: { parent_room: 'r1' } }));
  assert.deepEqual(await p, { status: 'joined' });
  assert.equal(s.client.model.parentRoom, 'r1');
});

test('signaling refused by the rate limit is sent again after retry_after_ms', async () => {
  const s = await joined();
  const ws = s.transport.last;
  const limited = [];
  s.client.on('rate-limited', (x) => limited.push(x));
  const id = s.client.sendIceCandidate('bob', { candidate: 'candidate:1 1 udp 1 127.0.0.1 9 typ host', sdpMid: '0', sdpMLineIndex: 0 });
  ws.deliver({ type: 'error', from: 'server', seq: 5, payload: { code: 'RATE_LIMIT_EXCEEDED', message: 'm', recovery: 'r', ref: id, retry_after_ms: 700 }, ref: id });
  assert.deepEqual(limited, [{ ref: id, retryAfterMs: 700 }]);
  assert.ok(!s.events.some((e) => e[0] === 'error'), 'not an error for the app');
  assert.deepEqual(s.timers.pending(), [700]);
  s.timers.runNext();
  assert.equal(ws.sent.length, 2);
  assert.deepEqual(ws.sent[1], ws.sent[0], 'the same message, same id');
  // A chat message over its limit is the app's to handle.
  const cid = s.client.sendChat('x');
  ws.deliver({ type: 'error', from: 'server', seq: 6, payload: { code: 'RATE_LIMIT_EXCEEDED', message: 'm', recovery: 'r', ref: cid, retry_after_ms: 700 }, ref: cid });
  assert.equal(s.events.at(-1)[0], 'error');
});

test('connect() gives up with TIMEOUT when the room never answers', async () => {
  const s = setup({ client: { joinTimeoutMs: 5000 } });
  const p = s.client.connect();
  await tick();
  s.transport.last.open(); // upgraded, but no room-state follows
  assert.deepEqual(s.timers.pending(), [5000]);
  s.timers.runNext();
  await assert.rejects(p, (e) => e.code === 'TIMEOUT');
  assert.equal(s.client.state, 'closed');
  assert.deepEqual(s.transport.last.closedWith, { code: 1000, reason: 'timeout' });
});
