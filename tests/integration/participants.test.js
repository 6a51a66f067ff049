'use strict';
// Participants (docs/protocol.md endpoints 3-5, participant-update with
// info): the public list, the enhanced list for moderators (permissions,
// info, network stats), enhanced info updates, and the REST access rules of
// every room-control endpoint (401 / 403 / 404 / 400).

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, adminTok, people, ofType, allGet, settle } = require('./feature_helpers');

const PARTICIPANT = { can_publish_audio: true, can_publish_video: true, can_share_screen: true, can_chat: true,
  can_share_files: true, can_react: true, can_raise_hand: true, can_record: false, can_stream: false, can_moderate: false };

test('endpoint 3: the public list for any token of the room', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'pp', [['hana', 'host', { name: 'Hana' }], ['pat', 'participant'], ['vic', 'viewer']]);
    p.pat.send({ type: 'media-control', payload: { kind: 'video', enabled: true } });
    await p.hana.nextWhere(ofType('media-control'));
    const r = await h.api(srv, 'GET', '/webrtc/rooms/pp/participants', p.vic.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.room_id, 'pp');
    assert.strictEqual(r.json.count, 3);
    assert.strictEqual(r.json.waiting, 0);
    assert.deepStrictEqual(r.json.participants.map((x) => [x.user_id, x.name, x.role]),
      [['hana', 'Hana', 'host'], ['pat', 'pat', 'participant'], ['vic', 'vic', 'viewer']]);
    for (const x of r.json.participants) {
      assert.deepStrictEqual(Object.keys(x).sort(), ['joined_at', 'media', 'name', 'role', 'user_id'], `public view: ${JSON.stringify(x)}`);
    }
    assert.deepStrictEqual(r.json.participants[1].media, { audio: false, video: true, screen: false });
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/pp/participants', null), 401, 'UNAUTHORIZED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/pp/participants', roleTok(srv, 'vic', 'viewer', 'qq')), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/qq/participants', roleTok(srv, 'vic', 'viewer', 'qq')), 404, 'ROOM_NOT_FOUND');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/bad$room/participants', h.mintToken(srv.secret, { sub: 'x' })), 400, 'INVALID_ROOM_ID');
  });
});

test('endpoint 5 and participant-update: own info, validated, merged, broadcast to everyone', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'pi', [['hana', 'host'], ['pat', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    await settle(everyone);
    const url = (u) => `/webrtc/rooms/pi/participants/${u}/info`;
    const t0 = Date.now();
    let r = await h.api(srv, 'POST', url('pat'), p.pat.token, { device_info: { browser: 'Chromium 156' }, video_quality: { sent: '720p' } });
    assert.strictEqual(r.status, 200, r.text);
    const info1 = { device_info: { browser: 'Chromium 156' }, video_quality: { sent: '720p' } };
    assert.strictEqual(r.json.participant.user_id, 'pat');
    assert.deepStrictEqual(r.json.participant.info, info1);
    assert.ok(Number.isInteger(r.json.participant.info_updated_at) && r.json.participant.info_updated_at >= t0 - 5000, r.text);
    for (const m of await allGet(everyone, ofType('participant-update'), 'info (REST)')) {
      assert.strictEqual(m.from, 'server');
      assert.deepStrictEqual(Object.keys(m.payload).sort(), ['info', 'updated_at', 'user_id']);
      assert.strictEqual(m.payload.user_id, 'pat');
      assert.deepStrictEqual(m.payload.info, info1);
      assert.ok(Number.isInteger(m.payload.updated_at));
    }
    // Merged into what was sent before.
    r = await h.api(srv, 'POST', url('pat'), p.pat.token, { client: 'web/1.2', video_quality: { sent: '1080p' } });
    assert.strictEqual(r.status, 200, r.text);
    const info2 = { device_info: { browser: 'Chromium 156' }, video_quality: { sent: '1080p' }, client: 'web/1.2' };
    assert.deepStrictEqual(r.json.participant.info, info2);
    for (const m of await allGet(everyone, ofType('participant-update'), 'info merged')) assert.deepStrictEqual(m.payload.info, info2);
    // Over the WebSocket.
    p.vic.send({ type: 'participant-update', payload: { info: { display: { width: 1920, height: 1080 } } } });
    for (const m of await allGet(everyone, ofType('participant-update'), 'info (WS)')) {
      assert.strictEqual(m.payload.user_id, 'vic');
      assert.deepStrictEqual(m.payload.info, { display: { width: 1920, height: 1080 } });
    }
    // An admin service token may describe anyone.
    const admin = adminTok(srv);
    r = await h.api(srv, 'POST', url('vic'), admin, { network_stats: { rtt_ms: 40 } });
    assert.strictEqual(r.status, 200, r.text);
    await allGet(everyone, ofType('participant-update', (x) => x.user_id === 'vic' && x.info.network_stats), 'info (admin)');

    // Someone else's info: refused, even for the host.
    h.assertApiError(await h.api(srv, 'POST', url('vic'), p.pat.token, { client: 'x' }), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', url('pat'), p.hana.token, { client: 'x' }), 403, 'PERMISSION_DENIED');
    await h.wsRefused(p.pat, { type: 'participant-update', payload: { user_id: 'vic', info: { client: 'x' } } }, 'PERMISSION_DENIED');
    // Malformed.
    const big = { device_info: { blob: 'x'.repeat(4100) } };
    for (const body of [{ colour: 'red' }, { device_info: 5 }, { client: ['a'] }, { display: null }, big, '[1,2]', '"text"', '42']) {
      h.assertApiError(await h.api(srv, 'POST', url('pat'), p.pat.token, body), 400, 'INVALID_MESSAGE');
    }
    // Over the limit once merged.
    h.assertApiError(await h.api(srv, 'POST', url('pat'), p.pat.token, { display: { blob: 'y'.repeat(4000) } }), 400, 'INVALID_MESSAGE');
    h.assertApiError(await h.api(srv, 'POST', url('pat'), p.pat.token, '{"client": '), 400, 'INVALID_JSON');
    h.assertApiError(await h.api(srv, 'POST', url('pat'), p.pat.token, 'client=x', { contentType: 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    h.assertApiError(await h.api(srv, 'POST', url('ghost'), admin, { client: 'x' }), 404, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'POST', url('outsider'), roleTok(srv, 'outsider', 'participant', 'pi'), { client: 'x' }), 404, 'USER_NOT_IN_ROOM');
    for (const payload of [{ info: 'x' }, {}, { info: { bogus: {} } }, { info: big }, { info: [] }]) {
      await h.wsRefused(p.vic, { type: 'participant-update', payload }, 'INVALID_MESSAGE');
    }
    for (const c of everyone) await c.expectNoneWhere(ofType('participant-update'), `participant-update from a refusal at ${c.user}`);
    r = await h.api(srv, 'GET', '/webrtc/rooms/pi/participants/enhanced', p.hana.token);
    assert.deepStrictEqual(r.json.participants.find((x) => x.user_id === 'pat').info, info2, 'refusals changed nothing');
  });
});

test('endpoint 4: moderators see permissions, info and the last network-stats sample; others 403', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'pe', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['vic', 'viewer']]);
    await settle(Object.values(p));
    p.pat.send({ type: 'network-stats', payload: { rtt_ms: 120, packet_loss: 0.5, jitter_ms: 8 } });
    for (const c of [p.hana, p.mod]) {
      const m = await c.next('network-stats');
      assert.strictEqual(m.from, 'pat');
    }
    await p.vic.expectNoneWhere(ofType('network-stats'), 'network-stats at a viewer');
    let r = await h.api(srv, 'POST', '/webrtc/rooms/pe/participants/pat/info', p.pat.token, { device_info: { os: 'Linux' } });
    assert.strictEqual(r.status, 200, r.text);

    for (const token of [p.hana.token, p.mod.token]) {
      r = await h.api(srv, 'GET', '/webrtc/rooms/pe/participants/enhanced', token);
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.room_id, 'pe');
      assert.deepStrictEqual(r.json.participants.map((x) => x.user_id), ['hana', 'mod', 'pat', 'vic']);
      const pat = r.json.participants.find((x) => x.user_id === 'pat');
      assert.deepStrictEqual(pat.permissions, PARTICIPANT);
      assert.deepStrictEqual(pat.info, { device_info: { os: 'Linux' } });
      assert.ok(Number.isInteger(pat.info_updated_at), JSON.stringify(pat));
      assert.strictEqual(pat.network_stats.rtt_ms, 120);
      assert.strictEqual(pat.network_stats.packet_loss, 0.5);
      assert.strictEqual(pat.network_stats.quality, 'good');
      assert.ok(Number.isInteger(pat.network_stats.ts));
      assert.strictEqual(pat.role, 'participant');
      assert.deepStrictEqual(pat.media, { audio: false, video: false, screen: false });
      const vic = r.json.participants.find((x) => x.user_id === 'vic');
      assert.deepStrictEqual(vic.info, {});
      assert.strictEqual(vic.network_stats, undefined);
      assert.strictEqual(vic.permissions.can_publish_audio, false);
    }
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/pe/participants/enhanced', p.pat.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/pe/participants/enhanced', p.vic.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/pe/participants/enhanced', roleTok(srv, 'hana', 'host', 'zz')), 403, 'TOKEN_ROOM_MISMATCH');
    // Permissions are the live ones: a participant granted can_moderate may read it.
    p.hana.send({ type: 'permission-updated', payload: { user_id: 'pat', permissions: { can_moderate: true } } });
    await p.pat.next('permission-updated');
    r = await h.api(srv, 'GET', '/webrtc/rooms/pe/participants/enhanced', p.pat.token);
    assert.strictEqual(r.status, 200, r.text);
  });
});

test('every room-control endpoint: 401 without a token, 403 for another room, 404 for an empty room, 400 for a bad user id', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'auth', [['hana', 'host'], ['pat', 'participant']]);
    await settle(Object.values(p));
    const B = 'br-000000000000';
    const endpoints = [
      ['3', 'GET', '/participants'],
      ['4', 'GET', '/participants/enhanced'],
      ['5', 'POST', '/participants/{u}/info', { client: 'x' }],
      ['remove', 'POST', '/participants/{u}/remove', { reason: 'x' }],
      ['6', 'POST', '/roles/{u}', { role: 'viewer' }],
      ['7', 'GET', '/roles/{u}'],
      ['8', 'POST', '/permissions/{u}', { permissions: { can_chat: false } }],
      ['9', 'GET', '/permissions/{u}'],
      ['15', 'GET', '/settings'],
      ['16', 'POST', '/settings', { mute_on_join: true }],
      ['17', 'POST', '/hand-raise', { raised: true }],
      ['18', 'GET', '/hand-raise/queue'],
      ['19', 'GET', '/waiting-room'],
      ['20', 'POST', '/waiting-room/{u}/admit'],
      ['21', 'POST', '/waiting-room/{u}/reject', { reason: 'x' }],
      ['22', 'POST', '/breakout-rooms', { name: 'x' }],
      ['23', 'POST', `/breakout-rooms/${B}/assign/{u}`],
      ['24', 'DELETE', `/breakout-rooms/${B}`],
      ['audit', 'GET', '/audit'],
    ];
    const call = (room, [, method, path, body], token, user = 'pat') =>
      h.api(srv, method, `/webrtc/rooms/${room}${path.replace('{u}', user)}`, token, body);
    const expired = h.mintToken(srv.secret, { sub: 'hana', role: 'host', room: 'auth', exp: h.nowS() - 10 });
    const failures = [];
    const check = async (label, r, status, code) => {
      if (r.status !== status || !r.json || !r.json.error || r.json.error.code !== code) {
        failures.push(`${label}: want ${status} ${code}, got ${r.status} ${r.text.slice(0, 120)}`);
      }
    };
    for (const e of endpoints) {
      await check(`#${e[0]} no token`, await call('auth', e, null), 401, 'UNAUTHORIZED');
      await check(`#${e[0]} garbage token`, await call('auth', e, 'not.a.jwt'), 401, 'INVALID_TOKEN');
      await check(`#${e[0]} expired token`, await call('auth', e, expired), 401, 'TOKEN_EXPIRED');
      await check(`#${e[0]} other room's token`, await call('auth', e, roleTok(srv, 'hana', 'host', 'other')), 403, 'TOKEN_ROOM_MISMATCH');
      await check(`#${e[0]} empty room`, await call('nobody-here', e, roleTok(srv, 'hana', 'host', 'nobody-here')), 404, 'ROOM_NOT_FOUND');
      await check(`#${e[0]} bad room id`, await call('bad$room', e, adminTok(srv)), 400, 'INVALID_ROOM_ID');
      if (e[2].includes('{u}')) {
        await check(`#${e[0]} bad user id`, await call('auth', e, p.hana.token, 'bad!id'), 400, 'INVALID_USER_ID');
        await check(`#${e[0]} long user id`, await call('auth', e, p.hana.token, 'u'.repeat(65)), 400, 'INVALID_USER_ID');
      }
    }
    assert.deepStrictEqual(failures, []);
    // None of it touched the live room.
    for (const c of Object.values(p)) await c.expectNoneWhere(() => true, `a message at ${c.user}`);
    const r = await h.api(srv, 'GET', '/webrtc/rooms/auth/settings', p.pat.token);
    assert.strictEqual(r.json.settings.mute_on_join, false);
  });
});
