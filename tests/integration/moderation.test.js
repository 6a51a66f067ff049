'use strict';
// Moderation (docs/protocol.md "Room control", media-control,
// screen-share-control, participant-update removal): muting and unmute
// requests, mute all, stopping a screen share, removal and bans, media state
// in room-state, and the audit log endpoint.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, adminTok, people, ofType, allGet } = require('./feature_helpers');

async function mediaOf(srv, room, token) {
  const r = await h.api(srv, 'GET', `/webrtc/rooms/${room}/participants`, token);
  assert.strictEqual(r.status, 200, r.text);
  return Object.fromEntries(r.json.participants.map((p) => [p.user_id, p.media]));
}

test('media-control: own changes and moderator mutes reach everyone; an unmute is only a request to the target', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'mc', [['hana', 'host'], ['mod', 'moderator'], ['mod2', 'moderator'],
      ['pat', 'participant'], ['quin', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    const others = (...not) => everyone.filter((c) => !not.includes(c.user));

    p.pat.send({ type: 'media-control', payload: { kind: 'audio', enabled: true } });
    for (const m of await allGet(everyone, ofType('media-control'), 'pat unmutes')) {
      assert.strictEqual(m.from, 'server');
      assert.deepStrictEqual(m.payload, { user_id: 'pat', kind: 'audio', enabled: true, by: 'pat' });
    }
    p.quin.send({ type: 'media-control', payload: { kind: 'video', enabled: true } });
    await allGet(everyone, ofType('media-control', (x) => x.user_id === 'quin' && x.kind === 'video' && x.enabled), 'quin video');
    p.quin.send({ type: 'screen-share-control', payload: { action: 'start' } });
    await allGet(everyone, ofType('screen-share-control', (x) => x.user_id === 'quin' && x.sharing), 'quin shares');

    // Media state is tracked: a newcomer's room-state has it.
    const late = await h.join(srv, 'mc', 'late', { role: 'participant', room: 'mc' });
    const media = Object.fromEntries(late.state.payload.participants.map((x) => [x.user_id, x.media]));
    assert.deepStrictEqual(media.pat, { audio: true, video: false, screen: false });
    assert.deepStrictEqual(media.quin, { audio: false, video: true, screen: true });
    assert.deepStrictEqual(media.hana, { audio: false, video: false, screen: false });
    late.user = 'late';
    everyone.push(late);

    // A moderator mutes pat: everyone hears it.
    p.mod.send({ type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'pat' } });
    for (const m of await allGet(everyone, ofType('media-control'), 'mod mutes pat')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', kind: 'audio', enabled: false, by: 'mod' });
    }
    // ... but cannot unmute: pat alone gets a request, and stays muted.
    p.mod.send({ type: 'media-control', payload: { kind: 'audio', enabled: true, user_id: 'pat' } });
    const ask = await p.pat.next('media-control');
    assert.strictEqual(ask.to, 'pat');
    assert.deepStrictEqual(ask.payload, { user_id: 'pat', kind: 'audio', enabled: true, request: true, by: 'mod' });
    for (const c of others('pat')) await c.expectNoneWhere(ofType('media-control'), `unmute request seen by ${c.user}`);
    assert.strictEqual((await mediaOf(srv, 'mc', p.pat.token)).pat.audio, false, 'a request does not unmute');
    // The host mutes quin's video; everyone hears.
    p.hana.send({ type: 'media-control', payload: { kind: 'video', enabled: false, user_id: 'quin' } });
    await allGet(everyone, ofType('media-control', (x) => x.user_id === 'quin' && !x.enabled && x.by === 'hana'), 'hana mutes quin');

    // Denied.
    await h.wsRefused(p.pat, { type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'quin' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.vic, { type: 'media-control', payload: { kind: 'audio', enabled: true, user_id: 'pat' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.mod, { type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'hana' } }, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod, { type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'mod2' } }, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod, { type: 'media-control', payload: { kind: 'audio', enabled: true, user_id: 'mod2' } }, 'INSUFFICIENT_RANK');
    // Malformed.
    for (const payload of [{ kind: 'smell', enabled: false }, { kind: 'audio', enabled: 'yes' }, { kind: 'audio' },
      { enabled: false }, { kind: 'audio', enabled: false, user_id: 5 }, { kind: 'audio', enabled: true, all: true },
      { kind: 'screen', enabled: false }]) {
      await h.wsRefused(p.hana, { type: 'media-control', payload }, 'INVALID_MESSAGE');
    }
    await h.wsRefused(p.hana, { type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'ghost' } }, 'USER_NOT_IN_ROOM');
    for (const c of everyone) await c.expectNoneWhere(ofType('media-control'), `media-control from a refusal at ${c.user}`);
    const now = await mediaOf(srv, 'mc', p.hana.token);
    assert.deepStrictEqual(now.hana, { audio: false, video: false, screen: false });
    assert.deepStrictEqual(now.mod2, { audio: false, video: false, screen: false });
    assert.deepStrictEqual(now.quin, { audio: false, video: false, screen: true });
  });
});

test('mute all mutes everyone the actor outranks, and nobody else', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'ma', [['hana', 'host'], ['mod', 'moderator'], ['mod2', 'moderator'], ['pat', 'participant'], ['quin', 'participant']]);
    const everyone = Object.values(p);
    for (const c of everyone) {
      c.send({ type: 'media-control', payload: { kind: 'audio', enabled: true } });
      await allGet(everyone, ofType('media-control', (x) => x.user_id === c.user), `${c.user} unmutes`);
    }
    await h.wsRefused(p.pat, { type: 'media-control', payload: { kind: 'audio', enabled: false, all: true } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.mod, { type: 'media-control', payload: { kind: 'screen', enabled: false, all: true } }, 'INVALID_MESSAGE');
    for (const c of everyone) await c.expectNoneWhere(ofType('media-control'), `media-control at ${c.user}`);

    p.mod.send({ type: 'media-control', payload: { kind: 'audio', enabled: false, all: true } });
    for (const m of await allGet(everyone, ofType('media-control'), 'mute all (mod)')) {
      assert.strictEqual(m.payload.all, true);
      assert.strictEqual(m.payload.kind, 'audio');
      assert.strictEqual(m.payload.enabled, false);
      assert.strictEqual(m.payload.by, 'mod');
      assert.deepStrictEqual([...m.payload.user_ids].sort(), ['pat', 'quin']);
    }
    let media = await mediaOf(srv, 'ma', p.hana.token);
    assert.deepStrictEqual(Object.fromEntries(Object.entries(media).map(([u, m]) => [u, m.audio])),
      { hana: true, mod: true, mod2: true, pat: false, quin: false });

    p.hana.send({ type: 'media-control', payload: { kind: 'audio', enabled: false, all: true } });
    for (const m of await allGet(everyone, ofType('media-control'), 'mute all (host)')) {
      assert.deepStrictEqual([...m.payload.user_ids].sort(), ['mod', 'mod2']);
    }
    media = await mediaOf(srv, 'ma', p.hana.token);
    assert.deepStrictEqual(Object.fromEntries(Object.entries(media).map(([u, m]) => [u, m.audio])),
      { hana: true, mod: false, mod2: false, pat: false, quin: false });
  });
});

test('screen-share-control: own start and stop, a moderator stops someone\'s share, nobody starts someone else\'s', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'ss', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['quin', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    p.pat.send({ type: 'screen-share-control', payload: { action: 'start' } });
    for (const m of await allGet(everyone, ofType('screen-share-control'), 'pat starts')) {
      assert.strictEqual(m.from, 'server');
      assert.deepStrictEqual(m.payload, { user_id: 'pat', sharing: true, by: 'pat' });
    }
    p.hana.send({ type: 'screen-share-control', payload: { action: 'start' } });
    await allGet(everyone, ofType('screen-share-control', (x) => x.user_id === 'hana'), 'hana starts');

    await h.wsRefused(p.quin, { type: 'screen-share-control', payload: { action: 'stop', user_id: 'pat' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.mod, { type: 'screen-share-control', payload: { action: 'start', user_id: 'quin' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.hana, { type: 'screen-share-control', payload: { action: 'start', user_id: 'quin' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.mod, { type: 'screen-share-control', payload: { action: 'stop', user_id: 'hana' } }, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.vic, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');
    for (const payload of [{ action: 'pause' }, {}, { action: 'STOP' }, { action: 'stop', user_id: 7 }, { action: true }]) {
      await h.wsRefused(p.mod, { type: 'screen-share-control', payload }, 'INVALID_MESSAGE');
    }
    await h.wsRefused(p.mod, { type: 'screen-share-control', payload: { action: 'stop', user_id: 'ghost' } }, 'USER_NOT_IN_ROOM');
    for (const c of everyone) await c.expectNoneWhere(ofType('screen-share-control'), `screen-share-control from a refusal at ${c.user}`);

    p.mod.send({ type: 'screen-share-control', payload: { action: 'stop', user_id: 'pat' } });
    for (const m of await allGet(everyone, ofType('screen-share-control'), 'mod stops pat')) {
      assert.deepStrictEqual(m.payload, { user_id: 'pat', sharing: false, by: 'mod' });
    }
    p.hana.send({ type: 'screen-share-control', payload: { action: 'stop' } });
    for (const m of await allGet(everyone, ofType('screen-share-control'), 'hana stops')) {
      assert.deepStrictEqual(m.payload, { user_id: 'hana', sharing: false, by: 'hana' });
    }
    const media = await mediaOf(srv, 'ss', p.vic.token);
    assert.ok(Object.values(media).every((m) => m.screen === false), JSON.stringify(media));
  });
});

test('removal: participant-update to the target only, close 4003, user-left removed, then USER_BANNED', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rm', [['hana', 'host'], ['mod', 'moderator'], ['mod2', 'moderator'], ['pat', 'participant'], ['quin', 'participant'], ['zed', 'participant']]);
    const stay = () => Object.values(p).filter((c) => !c.close && !['pat', 'quin'].includes(c.user));

    // Denied and malformed first (nothing happens).
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/zed/remove', p.quin.token, { reason: 'x' }), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/hana/remove', p.mod.token, { reason: 'x' }), 403, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/mod2/remove', p.mod.token, {}), 403, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.quin, { type: 'participant-update', payload: { action: 'remove', user_id: 'zed' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.mod, { type: 'participant-update', payload: { action: 'remove', user_id: 'mod2' } }, 'INSUFFICIENT_RANK');
    await h.wsRefused(p.mod, { type: 'participant-update', payload: { action: 'remove', user_id: 'hana', reason: 'coup' } }, 'INSUFFICIENT_RANK');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/zed/remove', p.hana.token, { reason: 'r'.repeat(201) }), 400, 'INVALID_MESSAGE');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/zed/remove', p.hana.token, '{"reason":'), 400, 'INVALID_JSON');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/zed/remove', p.hana.token, '"spam"'), 400, 'INVALID_MESSAGE');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/ghost/remove', p.hana.token, {}), 404, 'USER_NOT_IN_ROOM');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/bad!id/remove', p.hana.token, {}), 400, 'INVALID_USER_ID');
    await h.wsRefused(p.hana, { type: 'participant-update', payload: { action: 'remove', user_id: 'zed', reason: 'r'.repeat(201) } }, 'INVALID_MESSAGE');
    for (const c of Object.values(p)) {
      await c.expectNoneWhere((m) => m.type === 'participant-update' || m.type === 'user-left', `a refused removal seen by ${c.user}`);
    }

    // REST, by a moderator.
    let r = await h.api(srv, 'POST', '/webrtc/rooms/rm/participants/pat/remove', p.mod.token, { reason: 'spam <b>links</b>' });
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(r.json, { user_id: 'pat', status: 'removed' });
    const note = await p.pat.next('participant-update');
    assert.strictEqual(note.payload.user_id, 'pat');
    assert.strictEqual(note.payload.action, 'removed');
    assert.strictEqual(note.payload.by, 'mod');
    assert.match(note.payload.reason, /spam/);
    assert.ok(!note.payload.reason.includes('<b>'), `reason is sanitized: ${note.payload.reason}`);
    await p.pat.waitClose();
    assert.strictEqual(p.pat.close.code, 4003);
    assert.strictEqual(p.pat.all[p.pat.all.length - 1], note, 'the notice is the last message before the close');
    for (const c of [...stay(), p.quin]) {
      const ul = await c.nextWhere(ofType('user-left'), 2000, `user-left at ${c.user}`);
      assert.deepStrictEqual(ul.payload, { user_id: 'pat', reason: 'removed' });
      await c.expectNoneWhere(ofType('participant-update'), `the removal notice at ${c.user}`);
    }
    await h.expectRefused(srv, 'rm', p.pat.token, 403, 'USER_BANNED');
    await h.expectRefused(srv, 'rm', roleTok(srv, 'pat', 'moderator', 'rm'), 403, 'USER_BANNED');

    // WebSocket, by the host.
    p.hana.send({ type: 'participant-update', payload: { action: 'remove', user_id: 'quin', reason: 'bye' } });
    const n2 = await p.quin.next('participant-update');
    assert.deepStrictEqual(n2.payload, { user_id: 'quin', action: 'removed', reason: 'bye', by: 'hana' });
    await p.quin.waitClose();
    assert.strictEqual(p.quin.close.code, 4003);
    assert.strictEqual(p.quin.all[p.quin.all.length - 1], n2, 'the notice is the last message before the close');
    for (const c of stay()) {
      assert.deepStrictEqual((await c.nextWhere(ofType('user-left'))).payload, { user_id: 'quin', reason: 'removed' });
      await c.expectNoneWhere(ofType('participant-update'), `the removal notice at ${c.user}`);
    }
    await h.expectRefused(srv, 'rm', p.quin.token, 403, 'USER_BANNED');
    r = await h.api(srv, 'GET', '/webrtc/rooms/rm/participants', p.zed.token);
    assert.deepStrictEqual(r.json.participants.map((x) => x.user_id), ['hana', 'mod', 'mod2', 'zed']);
  });
});

test('audit log: actor, action and target of every moderation step; host and admin only', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'aud', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['quin', 'participant'], ['vic', 'viewer']]);
    const base = '/webrtc/rooms/aud';
    const ok = async (method, path, body, token = p.hana.token, status = 200) => {
      const r = await h.api(srv, method, `${base}${path}`, token, body);
      assert.strictEqual(r.status, status, `${method} ${path}: ${r.text}`);
      return r.json;
    };
    await ok('POST', '/settings', { waiting_room: true });
    const w1 = await h.connect(srv, 'aud', roleTok(srv, 'w1', 'participant', 'aud'));
    await w1.next('waiting-room-join');
    const w2 = await h.connect(srv, 'aud', roleTok(srv, 'w2', 'participant', 'aud'));
    await w2.next('waiting-room-join');
    await ok('POST', '/waiting-room/w1/admit');
    await w1.next('room-state');
    await ok('POST', '/waiting-room/w2/reject', { reason: 'not today' });
    p.hana.send({ type: 'media-control', payload: { kind: 'audio', enabled: false, user_id: 'pat' } });
    p.hana.send({ type: 'media-control', payload: { kind: 'audio', enabled: true, user_id: 'pat' } });
    p.hana.send({ type: 'media-control', payload: { kind: 'video', enabled: false, all: true } });
    await p.pat.nextWhere(ofType('media-control', (x) => x.all));
    p.quin.send({ type: 'screen-share-control', payload: { action: 'start' } });
    await p.hana.nextWhere(ofType('screen-share-control'));
    p.mod.send({ type: 'screen-share-control', payload: { action: 'stop', user_id: 'quin' } });
    await p.hana.nextWhere(ofType('screen-share-control', (x) => x.by === 'mod'));
    await ok('POST', '/roles/quin', { role: 'moderator' });
    await ok('POST', '/permissions/pat', { permissions: { can_chat: false } });
    p.pat.send({ type: 'hand-raise', payload: { raised: true } });
    await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1));
    p.mod.send({ type: 'hand-raise', payload: { raised: false, user_id: 'pat' } });
    await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 0));
    p.vic.send({ type: 'hand-raise', payload: { raised: true } });
    await p.hana.nextWhere(ofType('hand-raise-queue', (x) => x.queue.length === 1));
    await ok('POST', '/hand-raise', { action: 'next' });
    await ok('POST', '/participants/w1/remove', { reason: 'testing' });
    const made = await ok('POST', '/breakout-rooms', { rooms: [{ name: 'A' }] }, p.hana.token, 201);
    const bid = made.breakout_rooms[0].breakout_room_id;
    await ok('POST', `/breakout-rooms/${bid}/assign/pat`, undefined, p.mod.token);
    await ok('DELETE', `/breakout-rooms/${bid}`);

    const r = await h.api(srv, 'GET', `${base}/audit`, p.hana.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.room_id, 'aud');
    const entries = r.json.entries;
    assert.ok(Number.isInteger(r.json.total) && r.json.total >= entries.length, r.text);
    for (const e of entries) {
      assert.ok(Number.isInteger(e.ts), `ts on ${JSON.stringify(e)}`);
      assert.strictEqual(typeof e.actor, 'string');
      assert.strictEqual(typeof e.action, 'string');
    }
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i].ts >= entries[i - 1].ts, 'oldest first');
    const find = (action, actor, target) => {
      const e = entries.find((x) => x.action === action && x.actor === actor && (target === undefined || x.target === target));
      assert.ok(e, `audit has ${action} by ${actor}${target ? ` on ${target}` : ''}: ${JSON.stringify(entries.map((x) => [x.action, x.actor, x.target]))}`);
      return e;
    };
    assert.deepStrictEqual(find('settings_update', 'hana').details, { waiting_room: true });
    find('admit', 'hana', 'w1');
    assert.strictEqual(find('reject', 'hana', 'w2').details.reason, 'not today');
    find('mute', 'hana', 'pat');
    find('unmute_request', 'hana', 'pat');
    find('mute_all', 'hana');
    find('stop_screen_share', 'mod', 'quin');
    assert.deepStrictEqual(find('role_set', 'hana', 'quin').details, { from: 'participant', to: 'moderator' });
    assert.deepStrictEqual(find('permissions_set', 'hana', 'pat').details, { can_chat: false });
    find('lower_hand', 'mod', 'pat');
    find('next_speaker', 'hana', 'vic');
    assert.strictEqual(find('remove', 'hana', 'w1').details.reason, 'testing');
    find('breakout_create', 'hana');
    find('breakout_assign', 'mod', 'pat');
    find('breakout_close', 'hana');
    // Own actions are not moderation: pat's and vic's hands, quin's own share.
    assert.ok(!entries.some((e) => ['pat', 'vic', 'quin', 'w1', 'w2'].includes(e.actor)), 'only moderators act');

    // Limit, admin, denials.
    let q = await h.api(srv, 'GET', `${base}/audit?limit=2`, p.hana.token);
    assert.deepStrictEqual(q.json.entries, entries.slice(-2));
    q = await h.api(srv, 'GET', `${base}/audit`, adminTok(srv));
    assert.strictEqual(q.status, 200, q.text);
    assert.strictEqual(q.json.entries.length, entries.length);
    h.assertApiError(await h.api(srv, 'GET', `${base}/audit?limit=0`, p.hana.token), 400);
    h.assertApiError(await h.api(srv, 'GET', `${base}/audit`, p.mod.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'GET', `${base}/audit`, p.pat.token), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'GET', `${base}/audit`, roleTok(srv, 'hana', 'host', 'other')), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'GET', `${base}/audit`, null), 401, 'UNAUTHORIZED');
  });
});

test('a removed user cannot go on acting on the room over REST with its token (security; the doc is silent)', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rb', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/rb/participants/mod/remove', p.hana.token, { reason: 'abuse' });
    assert.strictEqual(r.status, 200, r.text);
    await p.mod.waitClose();
    assert.strictEqual(p.mod.close.code, 4003);
    await h.expectRefused(srv, 'rb', p.mod.token, 403, 'USER_BANNED');
    const got = {};
    r = await h.api(srv, 'POST', '/webrtc/rooms/rb/participants/pat/remove', p.mod.token, { reason: 'revenge' });
    got.remove = r.status;
    r = await h.api(srv, 'POST', '/webrtc/rooms/rb/settings', p.mod.token, { locked: true });
    got.settings = r.status;
    r = await h.api(srv, 'GET', '/webrtc/rooms/rb/participants/enhanced', p.mod.token);
    got.enhanced = r.status;
    assert.deepStrictEqual(got, { remove: 403, settings: 403, enhanced: 403 },
      'the removed moderator still moderates the room it was removed from');
  });
});
