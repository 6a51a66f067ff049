// MeshMedia's negotiation logic with fake peer connections: the polite rule,
// offers that cross (glare) converging, candidates, teardown, TURN refresh.

import test from 'node:test';
import assert from 'node:assert/strict';
import { MeshMedia, isPolite, qualityOf, summarize, Emitter } from '../../clients/js/src/index.js';
import { FakePC, tick, manualTimers } from './fakes.mjs';

/** A stand-in for HuddleClient that relays signaling to the other fake client. */
class WireClient extends Emitter {
  constructor(id) {
    super();
    this.selfId = id;
    this.state = 'joined';
    this.sent = [];
    this.peer = null;
    this.model = { participant: () => null, participants: new Map() };
    this.rest = { config: async () => ({ ice_servers: [{ urls: ['turn:t'], username: 'u2', credential: 'c2', ttl: 60 }], ttl: 60 }) };
  }
  _relay(type, payload) {
    this.sent.push({ type, payload });
    const target = this.peer;
    setImmediate(() => target.emit(type, payload, { type, from: this.selfId, payload }));
  }
  sendOffer(to, d) { this._relay('offer', { type: 'offer', sdp: d.sdp }); }
  sendAnswer(to, d) { this._relay('answer', { type: 'answer', sdp: d.sdp }); }
  sendIceCandidate(to, c) { this._relay('ice-candidate', c || { candidate: '' }); }
  setMediaState() {}
  sendNetworkStats(s) { this.sent.push({ type: 'network-stats', payload: s }); }
}

const fakeTrack = (kind) => ({ kind, enabled: true, stop() { this.stopped = true; } });

function pair(mediaOpts = {}) {
  globalThis.MediaStream = class { constructor(t = []) { this.id = `ms${Math.random()}`; this.tracks = [...t]; } getTracks() { return this.tracks; } addTrack(t) { this.tracks.push(t); } removeTrack(t) { this.tracks = this.tracks.filter((x) => x !== t); } getVideoTracks() { return this.tracks.filter((t) => t.kind === 'video'); } };
  const devices = { getUserMedia: async (c) => new MediaStream([c.audio && fakeTrack('audio'), c.video && fakeTrack('video')].filter(Boolean)) };
  const a = new WireClient('alice');
  const b = new WireClient('bob');
  a.peer = b;
  b.peer = a;
  const ma = new MeshMedia(Object.assign({ RTCPeerConnection: FakePC, mediaDevices: devices, statsIntervalMs: 0 }, mediaOpts));
  const mb = new MeshMedia({ RTCPeerConnection: FakePC, mediaDevices: devices, statsIntervalMs: 0 });
  ma.attach(a);
  mb.attach(b);
  return { a, b, ma, mb };
}

async function settle(n = 30) {
  for (let i = 0; i < n; i++) await tick();
}

test('the polite side is the lexicographically larger user id, the same on both sides', () => {
  assert.equal(isPolite('bob', 'alice'), true);
  assert.equal(isPolite('alice', 'bob'), false);
  assert.notEqual(isPolite('x1', 'x2'), isPolite('x2', 'x1'));
});

test('the impolite side makes the first offer; the polite side sends its media after answering', async () => {
  const { a, b, ma, mb } = pair();
  await ma.startLocal({ audio: true, video: true });
  await mb.startLocal({ audio: true, video: true });
  // Both learn of each other at once (a member joining): only alice (impolite) offers first.
  a.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [] }, {});
  b.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [] }, {});
  await settle();
  const pa = ma.peers.get('bob').pc;
  const pb = mb.peers.get('alice').pc;
  assert.equal(ma.peers.get('bob').polite, false);
  assert.equal(mb.peers.get('alice').polite, true);
  assert.equal(a.sent.find((m) => m.type === 'offer' || m.type === 'answer').type, 'offer', 'alice offered first');
  assert.equal(b.sent.find((m) => m.type === 'offer' || m.type === 'answer').type, 'answer', 'bob answered before offering');
  assert.ok(!pb.log.includes('rollback') && !pa.log.includes('rollback'), 'no collision at the start');
  assert.equal(pb.senders.filter((s) => s.track).length, 2, 'bob sends his media after the first exchange');
  assert.ok(b.sent.some((m) => m.type === 'offer'), 'bob renegotiated to add it');
  assert.equal(pa.signalingState, 'stable');
  assert.equal(pb.signalingState, 'stable');
  assert.ok(pa.candidates.length > 0 && pb.candidates.length > 0, 'candidates were applied on both sides');
});

test('a member without media still gets a connection (recvonly transceivers)', async () => {
  const { a, b, ma, mb } = pair();
  await mb.startLocal({ audio: true });
  a.emit('user-joined', { user_id: 'bob' }, {});
  b.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [] }, {});
  await settle();
  const pa = ma.peers.get('bob').pc;
  assert.deepEqual(pa.senders.map((s) => s.direction), ['recvonly', 'recvonly']);
  assert.equal(a.sent[0].type, 'offer');
  assert.equal(mb.peers.get('alice').pc.senders.filter((s) => s.track).length, 1);
});

test('offers that cross later converge: the impolite side ignores, the polite side rolls back', async () => {
  const { a, b, ma, mb } = pair();
  await ma.startLocal({ audio: true });
  await mb.startLocal({ audio: true });
  a.emit('user-joined', { user_id: 'bob' }, {});
  b.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [] }, {});
  await settle();
  const pa = ma.peers.get('bob').pc;
  const pb = mb.peers.get('alice').pc;
  const collisions = [];
  ma.on('collision', (e) => collisions.push(['alice', e.polite]));
  mb.on('collision', (e) => collisions.push(['bob', e.polite]));
  // Both start something at the same moment: two offers cross.
  ma._sendTrack(ma.peers.get('bob'), fakeTrack('video'), new MediaStream());
  mb._sendTrack(mb.peers.get('alice'), fakeTrack('video'), new MediaStream());
  await settle(60);
  assert.ok(pb.log.includes('rollback'), `the polite side rolled back: ${pb.log}`);
  assert.deepEqual(collisions.sort(), [['alice', false], ['bob', true]]);
  assert.ok(!pa.log.includes('rollback'), 'the impolite side kept its offer');
  assert.equal(pa.signalingState, 'stable');
  assert.equal(pb.signalingState, 'stable');
  // alice's offer was answered; bob's own addition was offered again after yielding, and answered.
  assert.deepEqual(pb.log.slice(pb.log.indexOf('rollback')), ['rollback', 'remote offer', 'local answer', 'local offer', 'remote answer'], `${pb.log}`);
  assert.ok(pa.log.join().includes('local offer,remote answer'), `alice's offer was answered: ${pa.log}`);
});

test('adding a screen share later renegotiates; a leaving member is torn down', async () => {
  const { a, b, ma, mb } = pair();
  await ma.startLocal({ audio: true });
  a.emit('user-joined', { user_id: 'bob' }, {});
  b.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [] }, {});
  await settle();
  const pa = ma.peers.get('bob').pc;
  const offersBefore = a.sent.filter((m) => m.type === 'offer').length + b.sent.filter((m) => m.type === 'offer').length;
  mb._devices.getDisplayMedia = async () => new MediaStream([Object.assign(fakeTrack('video'), { addEventListener() {} })]);
  b.updateInfo = () => {};
  b.screenShareStarted = () => { b.sharing = true; };
  await mb.startScreenShare();
  await settle();
  const offersAfter = a.sent.filter((m) => m.type === 'offer').length + b.sent.filter((m) => m.type === 'offer').length;
  assert.ok(offersAfter > offersBefore, 'a new offer for the screen track');
  assert.equal(b.sharing, true);
  assert.equal(pa.signalingState, 'stable');
  a.emit('user-left', { user_id: 'bob', reason: 'left' }, {});
  assert.equal(ma.peers.size, 0);
  assert.equal(pa.closed, true);
});

test('a resumed room-state keeps the peer connections; resynced rebuilds them', async () => {
  const { a, ma } = pair();
  a.model.participants = new Map([['alice', {}], ['bob', {}]]);
  a.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [] }, {});
  const first = ma.peers.get('bob');
  a.emit('room-state', { resumed: true, participants: [{ user_id: 'alice' }, { user_id: 'bob' }] }, {});
  assert.equal(ma.peers.get('bob'), first, 'same RTCPeerConnection after a resume');
  a.emit('resynced', a.model);
  assert.notEqual(ma.peers.get('bob'), first);
  assert.equal(first.pc.closed, true);
  assert.ok(ma.peers.get('bob').serial > first.serial);
});

test('ICE failure restarts ICE', async () => {
  const { a, ma } = pair();
  a.emit('user-joined', { user_id: 'bob' }, {});
  const peer = ma.peers.get('bob');
  const restarts = [];
  ma.on('ice-restart', (e) => restarts.push(e.userId));
  peer.pc.iceConnectionState = 'failed';
  peer.pc.oniceconnectionstatechange();
  assert.deepEqual(restarts, ['bob']);
});

test('TURN credentials are refreshed before they expire', async () => {
  const timers = manualTimers();
  const { a, ma } = pair({ timers });
  a.emit('room-state', { participants: [{ user_id: 'alice' }, { user_id: 'bob' }], ice_servers: [{ urls: ['turn:t'], username: 'u1', credential: 'c1', ttl: 100 }] }, {});
  const pc = ma.peers.get('bob').pc;
  assert.equal(pc.config.iceServers[0].username, 'u1');
  assert.deepEqual(timers.pending(), [80000], 'one refresh, at 80 % of the 100 s lifetime');
  timers.runNext();
  await tick();
  await tick();
  assert.equal(pc.config.iceServers[0].username, 'u2', 'refreshed from /webrtc/config');
  assert.deepEqual(timers.pending(), [48000], 'the next one at 80 % of the new 60 s');
  ma.close();
});

test('quality from measurements uses the server thresholds', () => {
  assert.equal(qualityOf({ rtt_ms: 50, jitter_ms: 5, packet_loss: 0 }), 'good');
  assert.equal(qualityOf({ rtt_ms: 200 }), 'fair');
  assert.equal(qualityOf({ packet_loss: 6 }), 'poor');
  const r = new Map([
    ['a', { type: 'inbound-rtp', kind: 'video', framesDecoded: 40, packetsReceived: 95, packetsLost: 5, bytesReceived: 1000, jitter: 0.01 }],
    ['b', { type: 'inbound-rtp', kind: 'audio', packetsReceived: 100, packetsLost: 0, bytesReceived: 500 }],
    ['c', { type: 'candidate-pair', nominated: true, state: 'succeeded', currentRoundTripTime: 0.2 }],
  ]);
  const m = summarize(r, null);
  assert.equal(m.frames_decoded, 40);
  assert.equal(m.audio_packets, 100);
  assert.equal(m.rtt_ms, 200);
  assert.equal(m.packet_loss, 2.5);
  assert.equal(qualityOf(m), 'fair');
});
