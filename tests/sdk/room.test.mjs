// RoomModel: server messages in, observable state out.

import test from 'node:test';
import assert from 'node:assert/strict';
import { RoomModel } from '../../clients/js/src/index.js';
import { roomState } from './fakes.mjs';

const env = (type, payload, extra = {}) => Object.assign({ type, room: 'r1', from: 'server', seq: 1, ts: 1, payload }, extra);

function model() {
  const m = new RoomModel();
  const changes = [];
  m.on('change', (msg) => changes.push(msg.type));
  m.apply(roomState({ user_id: 'hana', name: 'Hana', role: 'host' }, [{ user_id: 'ben', name: 'Ben', role: 'participant', media: { audio: true, video: true, screen: false } }], {
    payload: {
      settings: { locked: false, waiting_room: true, mute_on_join: false },
      hand_raise_queue: [{ user_id: 'ben', name: 'Ben', position: 1 }],
      waiting_room: [{ user_id: 'mia', name: 'Mia', role: 'participant', position: 1 }],
      recording: { recording_id: 'rec1', state: 'recording' },
      live_streams: [{ stream_id: 's1', name: 'main', state: 'live' }],
      breakout_rooms: [{ breakout_room_id: 'br-1', name: 'A', assigned: [] }],
    },
  }));
  return { m, changes };
}

test('room-state builds the whole view', () => {
  const { m, changes } = model();
  assert.deepEqual(changes, ['room-state']);
  assert.equal(m.status, 'joined');
  assert.equal(m.selfId, 'hana');
  assert.ok(m.can('can_moderate'));
  assert.ok(!m.can('can_fly'));
  assert.deepEqual([...m.participants.keys()], ['hana', 'ben']);
  assert.deepEqual(m.participant('ben').media, { audio: true, video: true, screen: false });
  assert.deepEqual(m.participant('hana').media, { audio: false, video: false, screen: false });
  assert.equal(m.participant('ben').hand_raised, true);
  assert.deepEqual([...m.waiting.keys()], ['mia']);
  assert.equal(m.recording.recording_id, 'rec1');
  assert.equal(m.liveStreams.length, 1);
  assert.equal(m.breakoutRooms[0].name, 'A');
  assert.equal(m.settings.waiting_room, true);
});

test('joins, leaves, reconnecting status and info updates', () => {
  const { m } = model();
  m.apply(env('user-joined', { user_id: 'mia', name: 'Mia', role: 'participant', media: { audio: false, video: true, screen: false } }));
  assert.deepEqual([...m.participants.keys()], ['hana', 'ben', 'mia']);
  assert.equal(m.waiting.has('mia'), false, 'joining leaves the waiting list');
  m.apply(env('participant-update', { user_id: 'ben', status: 'reconnecting' }));
  assert.equal(m.participant('ben').status, 'reconnecting');
  m.apply(env('participant-update', { user_id: 'ben', status: 'connected' }));
  assert.equal(m.participant('ben').status, 'connected');
  m.apply(env('participant-update', { user_id: 'ben', info: { device_info: { os: 'x' } } }));
  m.apply(env('participant-update', { user_id: 'ben', info: { client: { screen_stream: 's' } } }));
  assert.deepEqual(m.participant('ben').info, { device_info: { os: 'x' }, client: { screen_stream: 's' } });
  m.apply(env('user-left', { user_id: 'mia', reason: 'left' }));
  assert.equal(m.participant('mia'), null);
  m.apply(env('participant-update', { user_id: 'ben', action: 'removed', reason: 'spam', by: 'hana' }));
  assert.equal(m.participant('ben'), null);
});

test('media, screen share, roles and permissions', () => {
  const { m } = model();
  m.apply(env('media-control', { user_id: 'ben', kind: 'audio', enabled: false, by: 'hana' }));
  assert.equal(m.participant('ben').media.audio, false);
  m.apply(env('media-control', { user_id: 'ben', kind: 'audio', enabled: true, request: true, by: 'hana' }));
  assert.equal(m.participant('ben').media.audio, false, 'an unmute request changes nothing');
  m.apply(env('media-control', { user_id: 'hana', kind: 'video', enabled: true }));
  m.apply(env('media-control', { all: true, kind: 'video', enabled: false, user_ids: ['ben', 'hana'], by: 'hana' }));
  assert.equal(m.participant('ben').media.video, false);
  assert.equal(m.self.media.video, false);
  m.apply(env('screen-share-control', { user_id: 'ben', sharing: true }));
  assert.equal(m.participant('ben').media.screen, true);
  m.apply(env('role-updated', { user_id: 'hana', role: 'moderator', previous_role: 'host', permissions: { can_moderate: true, can_record: false } }));
  assert.equal(m.self.role, 'moderator');
  assert.equal(m.can('can_record'), false);
  m.apply(env('permission-updated', { user_id: 'ben', permissions: { can_chat: false }, overrides: { can_chat: false } }));
  assert.deepEqual(m.participant('ben').permissions, { can_chat: false });
});

test('settings, hands, waiting room, breakouts, recording, streams', () => {
  const { m, changes } = model();
  m.apply(env('room-settings-update', { settings: { locked: true, waiting_room: true }, changed: { locked: true } }));
  assert.equal(m.settings.locked, true);
  m.apply(env('hand-raise-queue', { queue: [] }));
  assert.equal(m.participant('ben').hand_raised, false);
  m.apply(env('hand-raise', { user_id: 'hana', raised: true }));
  assert.equal(m.participant('hana').hand_raised, true);
  m.apply(env('waiting-room-join', { user_id: 'zoe', name: 'Zoe', status: 'waiting' }));
  assert.deepEqual([...m.waiting.keys()], ['mia', 'zoe']);
  m.apply(env('waiting-room-join', { user_id: 'zoe', status: 'left' }));
  m.apply(env('waiting-room-admit', { user_id: 'mia', status: 'admitted', by: 'hana' }));
  assert.equal(m.waiting.size, 0);
  m.apply(env('breakout-room-create', { breakout_rooms: [{ breakout_room_id: 'br-2', name: 'B' }] }));
  m.apply(env('breakout-room-assign', { breakout_room_id: 'br-2', user_id: 'ben', name: 'B' }));
  assert.deepEqual(m.breakoutRooms.map((b) => [b.breakout_room_id, b.assigned]), [['br-1', []], ['br-2', ['ben']]]);
  m.apply(env('breakout-room-close', { breakout_room_id: 'br-1', returning: [] }));
  assert.deepEqual(m.breakoutRooms.map((b) => b.breakout_room_id), ['br-2']);
  m.apply(env('recording-status', { recording_id: 'rec1', state: 'stopped' }));
  assert.equal(m.recording, null);
  m.apply(env('live-stream-stop', { stream_id: 's1', state: 'stopped' }));
  assert.deepEqual(m.liveStreams, []);
  m.apply(env('quality-update', { quality: 'low' }, { from: 'ben' }));
  assert.deepEqual(m.participant('ben').quality, { quality: 'low' });
  assert.equal(m.apply(env('chat-message', { text: 'hi' })), false, 'chat is not room state');
  assert.ok(changes.length >= 12);
});

test('the waiting user: waiting, then rejected', () => {
  const m = new RoomModel();
  m.apply(env('waiting-room-join', { status: 'waiting', position: 2 }));
  assert.equal(m.status, 'waiting');
  assert.equal(m.waitingPosition, 2);
  m.apply(env('waiting-room-reject', { user_id: 'me', status: 'rejected', reason: 'no' }));
  assert.equal(m.status, 'left');
});
