'use strict';
// Roles and permissions (docs/protocol.md "Room control"): the default
// permission sets, token overrides, role-updated / permission-updated and
// endpoints 6-9, rank rules, the live effect of a change, viewers and SDP
// directions, the first-joiner rule and the host hand-off.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, adminTok, people, ofType, allGet } = require('./feature_helpers');

const PERMS = ['can_publish_audio', 'can_publish_video', 'can_share_screen', 'can_chat',
  'can_share_files', 'can_react', 'can_raise_hand', 'can_record', 'can_stream', 'can_moderate'];
const only = (...yes) => Object.fromEntries(PERMS.map((p) => [p, yes.includes(p)]));
const DEFAULTS = {
  host: only(...PERMS),
  moderator: only(...PERMS),
  participant: only('can_publish_audio', 'can_publish_video', 'can_share_screen', 'can_chat',
    'can_share_files', 'can_react', 'can_raise_hand'),
  viewer: only('can_chat', 'can_react', 'can_raise_hand'),
};

// SDP with an audio and/or video section and an explicit direction (or none).
function sdpOf(sections) {
  let s = 'v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
  sections.forEach(([kind, dir], i) => {
    s += `m=${kind} 9 UDP/TLS/RTP/SAVPF ${kind === 'audio' ? 111 : 96}\r\nc=IN IP4 0.0.0.0\r\na=mid:${i}\r\n`;
    if (dir) s += `a=${dir}\r\n`;
    s += kind === 'audio' ? 'a=rtpmap:111 opus/48000/2\r\n' : 'a=rtpmap:96 VP8/90000\r\n';
  });
  return s;
}

test('default permission sets per role, token perms override, endpoints 7 and 9', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'perm', [
      ['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['vic', 'viewer'],
      ['ovr', 'participant', { perms: { can_share_screen: false, can_record: true } }],
      ['dflt', undefined],
    ]);
    for (const [user, role] of [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['vic', 'viewer'], ['dflt', 'participant']]) {
      const self = p[user].state.payload.self;
      assert.strictEqual(self.role, role, `${user} role`);
      assert.deepStrictEqual(self.permissions, DEFAULTS[role], `${user} (${role}) default permissions`);
    }
    const want = Object.assign({}, DEFAULTS.participant, { can_share_screen: false, can_record: true });
    assert.deepStrictEqual(p.ovr.state.payload.self.permissions, want, 'token perms override the role defaults');

    // 9: any token for the room reads permissions (a viewer here), with the overrides.
    let r = await h.api(srv, 'GET', '/webrtc/rooms/perm/permissions/ovr', p.vic.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { user_id: 'ovr', role: 'participant', permissions: want,
      overrides: { can_share_screen: false, can_record: true } });
    r = await h.api(srv, 'GET', '/webrtc/rooms/perm/permissions/vic', p.pat.token);
    assert.deepStrictEqual(r.json.permissions, DEFAULTS.viewer);
    assert.deepStrictEqual(r.json.overrides, {});
    // 7
    for (const [user, role] of [['hana', 'host'], ['mod', 'moderator'], ['vic', 'viewer']]) {
      r = await h.api(srv, 'GET', `/webrtc/rooms/perm/roles/${user}`, p.pat.token);
      assert.strictEqual(r.status, 200, r.text);
      assert.deepStrictEqual(r.json, { user_id: user, role });
    }
    // Denials and malformed requests.
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/perm/roles/ghost', p.pat.token), 404, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/perm/permissions/ghost', p.pat.token), 404, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/perm/roles/bad!id', p.pat.token), 400, 'INVALID_USER_ID');
    h.assertApiError(await h.api(srv, 'GET', `/webrtc/rooms/perm/permissions/${'u'.repeat(65)}`, p.pat.token), 400, 'INVALID_USER_ID');
    const other = roleTok(srv, 'pat', 'host', 'elsewhere');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/perm/roles/pat', other), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/perm/permissions/pat', other), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/perm/permissions/pat', null), 401, 'UNAUTHORIZED');
  });
});

test('role-updated over the WebSocket and endpoint 6: broadcast to everyone, malformed, denied', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'roles', [['hana', 'host'], ['mia', 'participant'], ['ben', 'participant'], ['pat', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);

    p.hana.send({ type: 'role-updated', payload: { user_id: 'mia', role: 'moderator' } });
    for (const m of await allGet(everyone, ofType('role-updated'), 'role-updated')) {
      assert.strictEqual(m.from, 'server');
      assert.deepStrictEqual(m.payload, { user_id: 'mia', role: 'moderator', previous_role: 'participant',
        permissions: DEFAULTS.moderator, by: 'hana' });
    }

    let r = await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/ben', p.hana.token, { role: 'viewer' });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { user_id: 'ben', role: 'viewer', permissions: DEFAULTS.viewer });
    for (const m of await allGet(everyone, ofType('role-updated'), 'role-updated (REST)')) {
      assert.deepStrictEqual(m.payload, { user_id: 'ben', role: 'viewer', previous_role: 'participant',
        permissions: DEFAULTS.viewer, by: 'hana' });
    }
    r = await h.api(srv, 'GET', '/webrtc/rooms/roles/roles/ben', p.pat.token);
    assert.deepStrictEqual(r.json, { user_id: 'ben', role: 'viewer' });
    r = await h.api(srv, 'GET', '/webrtc/rooms/roles/permissions/ben', p.pat.token);
    assert.deepStrictEqual(r.json.permissions, DEFAULTS.viewer);

    // Malformed.
    await h.wsRefused(p.hana, { type: 'role-updated', payload: { user_id: 'pat', role: 'admin' } }, 'INVALID_ROLE');
    await h.wsRefused(p.hana, { type: 'role-updated', payload: { user_id: 'pat', role: 3 } }, 'INVALID_ROLE');
    await h.wsRefused(p.hana, { type: 'role-updated', payload: { role: 'moderator' } }, ['INVALID_MESSAGE', 'INVALID_USER_ID']);
    await h.wsRefused(p.hana, { type: 'role-updated', payload: { user_id: 'ghost', role: 'moderator' } }, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/pat', p.hana.token, { role: 'superuser' }), 400, 'INVALID_ROLE');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/pat', p.hana.token, {}), 400, 'INVALID_ROLE');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/pat', p.hana.token, '["moderator"]'), 400, 'INVALID_MESSAGE');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/pat', p.hana.token, '{"role": '), 400, 'INVALID_JSON');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/pat', p.hana.token, 'role=moderator',
      { contentType: 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/ghost', p.hana.token, { role: 'moderator' }), 404, 'USER_NOT_IN_ROOM');
    // Denied: a participant (and a viewer) cannot change roles.
    await h.wsRefused(p.pat, { type: 'role-updated', payload: { user_id: 'vic', role: 'participant' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.vic, { type: 'role-updated', payload: { user_id: 'vic', role: 'participant' } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/roles/roles/vic', p.pat.token, { role: 'participant' }), 403, 'PERMISSION_DENIED');
    // None of the refusals changed anything or was broadcast.
    for (const c of everyone) await c.expectNoneWhere(ofType('role-updated'), `role-updated at ${c.user}`);
    r = await h.api(srv, 'GET', '/webrtc/rooms/roles/roles/vic', p.pat.token);
    assert.deepStrictEqual(r.json, { user_id: 'vic', role: 'viewer' });
    r = await h.api(srv, 'GET', '/webrtc/rooms/roles/roles/pat', p.pat.token);
    assert.deepStrictEqual(r.json, { user_id: 'pat', role: 'participant' });
  });
});

test('ranks: a moderator cannot make hosts, demote the host or act on a moderator; the last host stays', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rank', [['hana', 'host'], ['mod1', 'moderator'], ['mod2', 'moderator'], ['pat', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    await h.wsRefused(p.mod1, { type: 'role-updated', payload: { user_id: 'pat', role: 'host' } }, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod1, { type: 'role-updated', payload: { user_id: 'mod1', role: 'host' } }, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod1, { type: 'role-updated', payload: { user_id: 'hana', role: 'participant' } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rank/roles/hana', p.mod1.token, { role: 'moderator' }), 403, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod1, { type: 'role-updated', payload: { user_id: 'mod2', role: 'participant' } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rank/roles/mod2', p.mod1.token, { role: 'viewer' }), 403, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod1, { type: 'permission-updated', payload: { user_id: 'mod2', permissions: { can_chat: false } } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rank/permissions/hana', p.mod1.token, { permissions: { can_chat: false } }), 403, 'INSUFFICIENT_RANK');
    // The last host cannot step down.
    await h.wsRefused(p.hana, { type: 'role-updated', payload: { user_id: 'hana', role: 'moderator' } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rank/roles/hana', p.hana.token, { role: 'participant' }), 403, 'INSUFFICIENT_RANK');
    for (const c of everyone) await c.expectNoneWhere(ofType('role-updated'), `role-updated at ${c.user}`);
    for (const [u, role] of [['hana', 'host'], ['mod2', 'moderator'], ['pat', 'participant']]) {
      const r = await h.api(srv, 'GET', `/webrtc/rooms/rank/roles/${u}`, p.vic.token);
      assert.deepStrictEqual(r.json, { user_id: u, role }, 'refusals changed nothing');
    }

    // What a moderator may do: act below its rank, up to its own role.
    p.mod1.send({ type: 'role-updated', payload: { user_id: 'vic', role: 'participant' } });
    for (const m of await allGet(everyone, ofType('role-updated'), 'role-updated vic')) {
      assert.strictEqual(m.payload.user_id, 'vic');
      assert.strictEqual(m.payload.role, 'participant');
      assert.strictEqual(m.payload.by, 'mod1');
    }
    const r = await h.api(srv, 'POST', '/webrtc/rooms/rank/roles/pat', p.mod1.token, { role: 'moderator' });
    assert.strictEqual(r.status, 200, r.text);
    await allGet(everyone, ofType('role-updated', (x) => x.user_id === 'pat' && x.role === 'moderator'), 'role-updated pat');

    // With a second host, the first may step down.
    p.hana.send({ type: 'role-updated', payload: { user_id: 'mod2', role: 'host' } });
    await allGet(everyone, ofType('role-updated', (x) => x.user_id === 'mod2' && x.role === 'host'), 'mod2 host');
    p.hana.send({ type: 'role-updated', payload: { user_id: 'hana', role: 'moderator' } });
    for (const m of await allGet(everyone, ofType('role-updated', (x) => x.user_id === 'hana'), 'hana steps down')) {
      assert.strictEqual(m.payload.role, 'moderator');
      assert.strictEqual(m.payload.previous_role, 'host');
      assert.deepStrictEqual(m.payload.permissions, DEFAULTS.moderator);
    }
  });
});

test('permission-updated and endpoint 8: broadcast, overrides, live, nobody grants what it lacks', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'perms', [
      ['hana', 'host'], ['mod', 'moderator', { perms: { can_stream: false } }], ['mod2', 'moderator'],
      ['pat', 'participant'], ['pat2', 'participant'],
    ]);
    const everyone = Object.values(p);
    p.hana.send({ type: 'permission-updated', payload: { user_id: 'pat', permissions: { can_chat: false } } });
    const noChat = Object.assign({}, DEFAULTS.participant, { can_chat: false });
    for (const m of await allGet(everyone, ofType('permission-updated'), 'permission-updated')) {
      assert.strictEqual(m.from, 'server');
      assert.deepStrictEqual(m.payload, { user_id: 'pat', permissions: noChat, overrides: { can_chat: false }, by: 'hana' });
    }
    // Live: pat can no longer chat.
    await h.wsRefused(p.pat, { type: 'chat-message', payload: { text: 'hi' } }, 'PERMISSION_DENIED');

    let r = await h.api(srv, 'POST', '/webrtc/rooms/perms/permissions/pat', p.hana.token,
      { permissions: { can_chat: true, can_record: true } });
    assert.strictEqual(r.status, 200, r.text);
    const want = Object.assign({}, DEFAULTS.participant, { can_record: true });
    const view = { user_id: 'pat', role: 'participant', permissions: want, overrides: { can_chat: true, can_record: true } };
    assert.deepStrictEqual(r.json, view);
    for (const m of await allGet(everyone, ofType('permission-updated'), 'permission-updated (REST)')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', permissions: want, overrides: { can_chat: true, can_record: true }, by: 'hana' });
    }
    r = await h.api(srv, 'GET', '/webrtc/rooms/perms/permissions/pat', p.pat2.token);
    assert.deepStrictEqual(r.json, view);
    p.pat.send({ type: 'chat-message', payload: { text: 'back' } });
    await p.pat.next('chat-message');

    // A moderator grants what it holds, revokes freely, but never grants what it lacks.
    r = await h.api(srv, 'POST', '/webrtc/rooms/perms/permissions/pat2', p.mod.token, { permissions: { can_record: true, can_react: false } });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.permissions.can_record, true);
    assert.strictEqual(r.json.permissions.can_react, false);
    await allGet(everyone, ofType('permission-updated', (x) => x.user_id === 'pat2' && x.by === 'mod'), 'by mod');
    await h.wsRefused(p.mod, { type: 'permission-updated', payload: { user_id: 'pat2', permissions: { can_stream: true } } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/perms/permissions/pat2', p.mod.token,
      { permissions: { can_stream: true } }), 403, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod, { type: 'permission-updated', payload: { user_id: 'mod2', permissions: { can_react: false } } }, 'INSUFFICIENT_RANK');
    // A participant (even holding can_record now) cannot change permissions.
    await h.wsRefused(p.pat, { type: 'permission-updated', payload: { user_id: 'pat2', permissions: { can_chat: false } } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/perms/permissions/pat2', p.pat.token,
      { permissions: { can_chat: false } }), 403, 'PERMISSION_DENIED');
    // Malformed: unknown name, non-boolean, empty, not an object; a bad entry changes nothing.
    for (const perms of [{ can_fly: true }, { can_chat: 'no' }, {}, ['can_chat'], { can_chat: false, can_fly: true }]) {
      await h.wsRefused(p.hana, { type: 'permission-updated', payload: { user_id: 'pat2', permissions: perms } }, 'INVALID_MESSAGE');
      h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/perms/permissions/pat2', p.hana.token, { permissions: perms }), 400, 'INVALID_MESSAGE');
    }
    await h.wsRefused(p.hana, { type: 'permission-updated', payload: { user_id: 'ghost', permissions: { can_chat: false } } }, 'USER_NOT_IN_ROOM');
    for (const c of everyone) await c.expectNoneWhere(ofType('permission-updated'), `permission-updated at ${c.user}`);
    r = await h.api(srv, 'GET', '/webrtc/rooms/perms/permissions/pat2', p.pat2.token);
    assert.strictEqual(r.json.permissions.can_chat, true, 'the refused batch changed nothing');
    assert.deepStrictEqual(r.json.overrides, { can_record: true, can_react: false });
  });
});

test('live effect: revoking screen share stops it, revoking audio mutes, demotion to viewer stops video', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'live', [['hana', 'host'], ['pat', 'participant'], ['obs', 'participant']]);
    const everyone = Object.values(p);
    p.pat.send({ type: 'screen-share-control', payload: { action: 'start' } });
    for (const m of await allGet(everyone, ofType('screen-share-control'), 'share start')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', sharing: true, by: 'pat' });
    }
    for (const kind of ['audio', 'video']) {
      p.pat.send({ type: 'media-control', payload: { kind, enabled: true } });
      for (const m of await allGet(everyone, ofType('media-control'), `${kind} on`)) {
        assert.deepStrictEqual(m.payload, { user_id: 'pat', kind, enabled: true, by: 'pat' });
      }
    }

    const r = await h.api(srv, 'POST', '/webrtc/rooms/live/permissions/pat', p.hana.token, { permissions: { can_share_screen: false } });
    assert.strictEqual(r.status, 200, r.text);
    for (const m of await allGet(everyone, ofType('screen-share-control'), 'share stopped')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', sharing: false, by: 'server', reason: 'permission_revoked' });
    }
    await allGet(everyone, ofType('permission-updated'), 'permission-updated');
    await h.wsRefused(p.pat, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');

    p.hana.send({ type: 'permission-updated', payload: { user_id: 'pat', permissions: { can_publish_audio: false } } });
    for (const m of await allGet(everyone, ofType('media-control'), 'audio muted')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', kind: 'audio', enabled: false, by: 'server', reason: 'permission_revoked' });
    }
    await allGet(everyone, ofType('permission-updated'), 'permission-updated');
    await h.wsRefused(p.pat, { type: 'media-control', payload: { kind: 'audio', enabled: true } }, 'PERMISSION_DENIED');
    for (const c of everyone) await c.expectNoneWhere(ofType('media-control'), `media-control at ${c.user}`);

    // A newcomer sees the state: video still on, audio and screen off.
    const late = await h.join(srv, 'live', 'late', { role: 'participant', room: 'live' });
    const pat = late.state.payload.participants.find((x) => x.user_id === 'pat');
    assert.deepStrictEqual(pat.media, { audio: false, video: true, screen: false });

    // Demotion to viewer stops what a viewer may not publish.
    p.hana.send({ type: 'role-updated', payload: { user_id: 'pat', role: 'viewer' } });
    for (const m of await allGet(everyone, ofType('media-control'), 'video stopped')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', kind: 'video', enabled: false, by: 'server', reason: 'permission_revoked' });
    }
    await allGet(everyone, ofType('role-updated'), 'role-updated');
  });
});

test('a viewer cannot unmute or send media in SDP; recvonly negotiates; granted audio may be sent', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'view', [['hana', 'host'], ['vic', 'viewer']]);
    await h.wsRefused(p.vic, { type: 'media-control', payload: { kind: 'audio', enabled: true } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.vic, { type: 'media-control', payload: { kind: 'video', enabled: true } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.vic, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');
    // Muting itself is always allowed.
    p.vic.send({ type: 'media-control', payload: { kind: 'audio', enabled: false } });
    assert.deepStrictEqual((await p.hana.next('media-control')).payload, { user_id: 'vic', kind: 'audio', enabled: false, by: 'vic' });

    const refusedSdp = [
      [['audio', 'sendrecv']],
      [['audio', 'recvonly'], ['video', 'sendonly']],
      [['audio', null]], // no direction: sendrecv
    ];
    for (const sections of refusedSdp) {
      await h.wsRefused(p.vic, { type: 'offer', to: 'hana', payload: { type: 'offer', sdp: sdpOf(sections) } }, 'PERMISSION_DENIED');
    }
    await h.wsRefused(p.vic, { type: 'answer', to: 'hana', payload: { type: 'answer', sdp: sdpOf([['video', 'sendrecv']]) } }, 'PERMISSION_DENIED');
    await p.hana.expectNoneWhere((m) => m.type === 'offer' || m.type === 'answer', 'relayed refused SDP');

    const ok = sdpOf([['audio', 'recvonly'], ['video', 'recvonly']]);
    p.vic.send({ type: 'offer', to: 'hana', payload: { type: 'offer', sdp: ok } });
    const o = await p.hana.next('offer');
    assert.strictEqual(o.from, 'vic');
    assert.strictEqual(o.payload.sdp, ok);
    p.vic.send({ type: 'answer', to: 'hana', payload: { type: 'answer', sdp: sdpOf([['audio', 'inactive']]) } });
    assert.strictEqual((await p.hana.next('answer')).from, 'vic');

    // Once granted can_publish_audio the viewer may unmute and send audio (not video).
    p.hana.send({ type: 'permission-updated', payload: { user_id: 'vic', permissions: { can_publish_audio: true } } });
    await p.vic.next('permission-updated');
    p.vic.send({ type: 'media-control', payload: { kind: 'audio', enabled: true } });
    assert.strictEqual((await p.hana.nextWhere(ofType('media-control', (x) => x.enabled))).payload.user_id, 'vic');
    const audio = sdpOf([['audio', 'sendrecv'], ['video', 'recvonly']]);
    p.vic.send({ type: 'offer', to: 'hana', payload: { type: 'offer', sdp: audio } });
    assert.strictEqual((await p.hana.next('offer')).payload.sdp, audio);
    await h.wsRefused(p.vic, { type: 'offer', to: 'hana', payload: { type: 'offer', sdp: sdpOf([['video', 'sendrecv']]) } }, 'PERMISSION_DENIED');
  });
});

test('first joiner: a moderator token in a room without a host becomes host; participants never do', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const a = await people(srv, 'fj1', [['mo', 'moderator'], ['mo2', 'moderator']]);
    assert.strictEqual(a.mo.state.payload.self.role, 'host');
    assert.deepStrictEqual(a.mo.state.payload.self.permissions, DEFAULTS.host);
    assert.strictEqual(a.mo2.state.payload.self.role, 'moderator', 'a second moderator stays moderator');
    assert.deepStrictEqual(a.mo2.state.payload.participants.map((x) => [x.user_id, x.role]), [['mo', 'host'], ['mo2', 'moderator']]);

    const b = await people(srv, 'fj2', [['pa', 'participant'], ['vi', 'viewer']]);
    assert.strictEqual(b.pa.state.payload.self.role, 'participant', 'a participant token joining first stays participant');
    assert.strictEqual(b.vi.state.payload.self.role, 'viewer');
    // A moderator arriving in a room that has no host becomes its host.
    const c = await people(srv, 'fj2', [['mo3', 'moderator']]);
    assert.strictEqual(c.mo3.state.payload.self.role, 'host');
    const j = await b.pa.nextWhere(ofType('user-joined', (x) => x.user_id === 'mo3'));
    assert.strictEqual(j.payload.role, 'host');
    const admin = adminTok(srv);
    const r = await h.api(srv, 'GET', '/webrtc/rooms/fj2/audit', admin);
    assert.strictEqual(r.status, 200, r.text);
    assert.ok(r.json.entries.some((e) => e.action === 'auto_host' && e.target === 'mo3' && e.actor === 'server'),
      `audit auto_host: ${r.text}`);
  });
});

test('host hand-off: longest-present moderator, else participant, never a viewer', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'ho', [['hana', 'host'], ['pat', 'participant'], ['m1', 'moderator'], ['vic', 'viewer'], ['m2', 'moderator']]);
    const steps = [['hana', 'm1'], ['m1', 'm2'], ['m2', 'pat']];
    const previous = [];
    let left = Object.values(p);
    for (const [leaver, heir] of steps) {
      p[leaver].ws.close();
      left = left.filter((c) => c.user !== leaver);
      for (const c of left) {
        const ul = await c.nextWhere(ofType('user-left'), 2000, `user-left at ${c.user}`);
        assert.strictEqual(ul.payload.user_id, leaver);
        const m = await c.nextWhere(ofType('role-updated'), 2000, `hand-off at ${c.user}`);
        assert.strictEqual(m.from, 'server');
        assert.strictEqual(m.payload.user_id, heir);
        assert.strictEqual(m.payload.role, 'host');
        assert.strictEqual(m.payload.by, 'server');
        assert.strictEqual(m.payload.reason, 'host_left');
        assert.deepStrictEqual(m.payload.permissions, DEFAULTS.host);
        if (c === left[0]) previous.push([heir, m.payload.previous_role]);
      }
    }
    // The heir acts as host at once.
    let r = await h.api(srv, 'POST', '/webrtc/rooms/ho/settings', p.pat.token, { mute_on_join: true });
    assert.strictEqual(r.status, 200, r.text);
    p.pat.ws.close();
    await p.vic.nextWhere(ofType('user-left'));
    await p.vic.expectNoneWhere(ofType('role-updated'), 'a viewer promoted to host');
    r = await h.api(srv, 'GET', '/webrtc/rooms/ho/roles/vic', p.vic.token);
    assert.deepStrictEqual(r.json, { user_id: 'vic', role: 'viewer' });
    const admin = adminTok(srv);
    r = await h.api(srv, 'GET', '/webrtc/rooms/ho/audit', admin);
    assert.deepStrictEqual(r.json.entries.filter((e) => e.action === 'host_handoff').map((e) => [e.actor, e.target]),
      [['server', 'm1'], ['server', 'm2'], ['server', 'pat']]);
    // "Host hand-offs arrive the same way" as role-updated: with previous_role too.
    assert.deepStrictEqual(previous, [['m1', 'moderator'], ['m2', 'moderator'], ['pat', 'participant']],
      'previous_role on hand-off role-updated');
  });
});
