// The SDK against the real server (no browser, no media): the room model
// follows what huddle actually sends, the methods do what they say, REST
// helpers and errors have the documented shapes, and a cut connection comes
// back. Uses the integration harness and `ws` as the WebSocket.

import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { HuddleClient, HuddleRest, HuddleError } from '../../clients/js/src/index.js';

const require = createRequire(import.meta.url);
const h = require('../integration/helpers.js');
const WebSocket = require('ws');

function client(srv, room, user, role = 'participant', extra = {}) {
  const sockets = [];
  const c = new HuddleClient(Object.assign({
    room,
    baseUrl: `http://${srv.addr}`,
    token: h.mintToken(srv.secret, { sub: user, room, role, name: user.toUpperCase() }),
    createSocket: (url) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      sockets.push(ws);
      return ws;
    },
  }, extra));
  c.sockets = sockets;
  return c;
}

const until = (fn, what) => h.waitFor(fn, 5000, 10, what);

test('the SDK against huddle', async (t) => {
  await h.withServer({}, async (srv) => {
    const room = 'sdk-live';
    const alice = client(srv, room, 'alice', 'host');
    const bob = client(srv, room, 'bob');
    const all = [alice, bob];
    try {
      await h.sub(t, 'join: both models list both, with roles and permissions', srv, async () => {
        assert.deepEqual(await alice.connect(), { status: 'joined' });
        assert.deepEqual(await bob.connect(), { status: 'joined' });
        await until(() => alice.model.participants.size === 2, 'alice sees bob');
        assert.equal(alice.model.self.role, 'host');
        assert.ok(alice.model.can('can_moderate'));
        assert.ok(!bob.model.can('can_moderate'));
        assert.equal(bob.model.participant('alice').name, 'ALICE');
        assert.ok(bob.resumeToken, 'room-state carries a resume token');
      });

      await h.sub(t, 'signaling: offer and the end-of-candidates form are relayed', srv, async () => {
        const got = [];
        alice.on('offer', (p, m) => got.push(['offer', m.from, p.sdp]));
        alice.on('ice-candidate', (p, m) => got.push(['ice-candidate', m.from, p]));
        bob.sendOffer('alice', { sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' });
        bob.sendIceCandidate('alice', null);
        await until(() => got.length === 2, 'both relayed');
        assert.equal(got[0][1], 'bob');
        assert.deepEqual(got[1], ['ice-candidate', 'bob', { candidate: '', sdpMid: null, sdpMLineIndex: null }]);
      });

      await h.sub(t, 'chat round trip, private messages and request()', srv, async () => {
        const got = [];
        alice.on('chat-message', (p, m) => got.push([m.from, p.text, p.private]));
        const echo = await bob.request('chat-message', { text: 'hi <b>there</b>' });
        assert.equal(echo.payload.text, 'hi &lt;b&gt;there&lt;/b&gt;');
        bob.sendChat('psst', { to: 'alice' });
        await until(() => got.length === 2, 'alice got both');
        assert.deepEqual(got, [['bob', 'hi &lt;b&gt;there&lt;/b&gt;', false], ['bob', 'psst', true]]);
        await assert.rejects(bob.request('chat-message', { text: '' }), (e) => e instanceof HuddleError && e.code === 'INVALID_MESSAGE');
      });

      await h.sub(t, 'media state, a moderator mute, hands and the queue', srv, async () => {
        bob.setMediaState('audio', true);
        await until(() => alice.model.participant('bob').media.audio === true, 'bob unmuted in alice\'s view');
        alice.muteParticipant('bob');
        await until(() => bob.model.participant('bob').media.audio === false && alice.model.participant('bob').media.audio === false, 'muted everywhere');
        bob.raiseHand();
        await until(() => alice.model.handQueue.length === 1 && alice.model.participant('bob').hand_raised, 'hand in the queue');
        assert.equal(alice.model.handQueue[0].user_id, 'bob');
        alice.nextSpeaker();
        await until(() => bob.model.handQueue.length === 0 && !bob.model.participant('bob').hand_raised, 'hand lowered');
      });

      await h.sub(t, 'settings, waiting room and admission', srv, async () => {
        alice.updateSettings({ waiting_room: true });
        await until(() => bob.model.settings.waiting_room === true, 'setting seen');
        const carol = client(srv, room, 'carol');
        all.push(carol);
        assert.deepEqual(await carol.connect(), { status: 'waiting' });
        await until(() => alice.model.waiting.has('carol'), 'alice sees carol waiting');
        alice.admit('carol');
        await until(() => carol.state === 'joined' && carol.model.participants.size === 3, 'carol admitted');
        await until(() => alice.model.waiting.size === 0 && bob.model.participants.has('carol'), 'everyone sees carol');
      });

      await h.sub(t, 'roles, recording, breakout rooms', srv, async () => {
        alice.setRole('bob', 'moderator');
        await until(() => bob.model.self.role === 'moderator' && bob.model.can('can_moderate'), 'bob promoted');
        alice.startRecording();
        await until(() => bob.model.recording && bob.model.recording.state === 'recording', 'recording seen');
        alice.stopRecording();
        await until(() => bob.model.recording === null, 'recording stopped');
        alice.startLiveStream('rtmp://live.example.com/app/SECRETKEY', 'main');
        await until(() => bob.model.liveStreams.length === 1, 'stream seen');
        assert.doesNotMatch(JSON.stringify(bob.model.liveStreams), /SECRETKEY/);
        alice.stopLiveStream(bob.model.liveStreams[0].stream_id);
        await until(() => bob.model.liveStreams.length === 0, 'stream stopped');
        bob.screenShareStarted();
        await until(() => alice.model.participant('bob').media.screen === true, 'screen share state');
        bob.screenShareStopped();
        await until(() => alice.model.participant('bob').media.screen === false, 'screen share stopped');
        bob.sendQualityUpdate({ quality: 'low', width: 320, height: 180 });
        await until(() => alice.model.participant('bob').quality && alice.model.participant('bob').quality.quality === 'low', 'quality seen');
        alice.createBreakouts([{ name: 'Design' }]);
        await until(() => bob.model.breakoutRooms.length === 1, 'breakout listed');
        assert.match(bob.model.breakoutRooms[0].breakout_room_id, /^br-/);
      });

      await h.sub(t, 'REST helpers and their errors', srv, async () => {
        const rest = alice.rest;
        assert.equal((await rest.participants(room)).participants.length, 3);
        assert.equal((await rest.getSettings(room)).settings.waiting_room, true);
        assert.ok(Array.isArray((await rest.handQueue(room)).queue));
        assert.ok(Array.isArray((await rest.listRecordings(room)).recordings));
        assert.ok(Array.isArray((await rest.config()).ice_servers));
        assert.equal((await new HuddleRest({ baseUrl: `http://${srv.addr}` }).health()).status, 'ok');
        await assert.rejects(all[2].rest.setRole(room, 'bob', 'viewer'),
          (e) => e instanceof HuddleError && e.code === 'PERMISSION_DENIED' && e.status === 403 && e.recovery.length > 0);
      });

      await h.sub(t, 'a removed participant gets removed, then closed', srv, async () => {
        const carol = all[2];
        const seen = [];
        carol.on('removed', () => seen.push('removed'));
        carol.on('closed', (x) => seen.push(x.reason));
        alice.removeParticipant('carol', 'test');
        await until(() => seen.length === 2, 'carol closed');
        assert.deepEqual(seen, ['removed', 'REMOVED']);
        await until(() => !alice.model.participants.has('carol'), 'gone from alice\'s view');
      });

      await h.sub(t, 'a refused join reports a code', srv, async () => {
        alice.lockRoom(true);
        await until(() => alice.model.settings.locked === true, 'locked');
        const dave = client(srv, room, 'dave');
        // ROOM_LOCKED once the validate endpoint exists; CONNECTION_FAILED until then.
        await assert.rejects(dave.connect(), (e) => e instanceof HuddleError && ['ROOM_LOCKED', 'CONNECTION_FAILED'].includes(e.code));
        assert.equal(dave.state, 'closed');
        // Unlock: a token's role is what a rejoin is judged by (bob's promotion was live only).
        // Without server-side resume a reconnect is a fresh join, judged like any other.
        alice.updateSettings({ locked: false, waiting_room: false });
        await until(() => bob.model.settings.locked === false && bob.model.settings.waiting_room === false, 'open again');
      });

      await h.sub(t, 'a cut connection comes back (resumed, or rejoined with a rebuilt model)', srv, async () => {
        const events = [];
        bob.on('reconnecting', () => events.push('reconnecting'));
        bob.on('reconnected', (x) => events.push(`reconnected:${x.resumed}`));
        bob.sockets.at(-1).terminate(); // no close frame, like a dropped network
        await until(() => events.some((e) => e.startsWith('reconnected')), 'bob back');
        assert.equal(events[0], 'reconnecting');
        assert.equal(bob.state, 'joined');
        assert.ok(bob.model.participants.has('alice'));
        const got = [];
        alice.on('chat-message', (p) => got.push(p.text));
        bob.sendChat('back');
        await until(() => got.includes('back'), 'signaling works again');
      });
    } finally {
      for (const c of all) c.leave();
    }
  });
});
