'use strict';
// Room settings (docs/protocol.md "Room control" / "Settings"): endpoints 15
// and 16, room-settings-update, validation of every setting, and what each
// setting does: locked, max_participants, chat_enabled, reactions_enabled,
// screen_share, mute_on_join.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, roleTok, people, ofType, allGet } = require('./feature_helpers');

const DEFAULTS = { locked: false, waiting_room: false, mute_on_join: false, max_participants: 50,
  chat_enabled: true, reactions_enabled: true };
/** The documented settings, whatever else the server adds. */
const documented = (s) => Object.fromEntries(Object.keys(DEFAULTS).map((k) => [k, s[k]]));

test('endpoints 15 and 16 and room-settings-update: defaults, changes broadcast to everyone, refusals', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'cfg', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['vic', 'viewer']]);
    const everyone = Object.values(p);
    assert.deepStrictEqual(documented(p.hana.state.payload.settings), DEFAULTS);
    let r = await h.api(srv, 'GET', '/webrtc/rooms/cfg/settings', p.vic.token);
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.room_id, 'cfg');
    assert.deepStrictEqual(documented(r.json.settings), DEFAULTS);

    r = await h.api(srv, 'POST', '/webrtc/rooms/cfg/settings', p.hana.token, { mute_on_join: true });
    assert.strictEqual(r.status, 200, r.text);
    let want = Object.assign({}, DEFAULTS, { mute_on_join: true });
    assert.strictEqual(r.json.room_id, 'cfg');
    assert.deepStrictEqual(documented(r.json.settings), want);
    for (const m of await allGet(everyone, ofType('room-settings-update'), 'update (REST)')) {
      assert.strictEqual(m.from, 'server');
      assert.deepStrictEqual(documented(m.payload.settings), want);
      assert.deepStrictEqual(m.payload.changed, { mute_on_join: true });
      assert.strictEqual(m.payload.by, 'hana');
    }
    // WebSocket, both forms; a moderator may change settings.
    p.mod.send({ type: 'room-settings-update', payload: { settings: { max_participants: 20 } } });
    want = Object.assign({}, want, { max_participants: 20 });
    for (const m of await allGet(everyone, ofType('room-settings-update'), 'update (WS settings form)')) {
      assert.deepStrictEqual(documented(m.payload.settings), want);
      assert.deepStrictEqual(m.payload.changed, { max_participants: 20 });
      assert.strictEqual(m.payload.by, 'mod');
    }
    p.hana.send({ type: 'room-settings-update', payload: { reactions_enabled: false, chat_enabled: false } });
    want = Object.assign({}, want, { reactions_enabled: false, chat_enabled: false });
    for (const m of await allGet(everyone, ofType('room-settings-update'), 'update (WS flat form)')) {
      assert.deepStrictEqual(documented(m.payload.settings), want);
      assert.deepStrictEqual(m.payload.changed, { reactions_enabled: false, chat_enabled: false });
    }
    const late = await h.join(srv, 'cfg', 'late', { role: 'participant', room: 'cfg' });
    assert.deepStrictEqual(documented(late.state.payload.settings), want, 'a newcomer sees the settings');
    everyone.push(Object.assign(late, { token: roleTok(srv, 'late', 'participant', 'cfg') }));

    // Denied: participants and viewers, over both transports; tokens of other rooms; no token.
    await h.wsRefused(p.pat, { type: 'room-settings-update', payload: { locked: true } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.vic, { type: 'room-settings-update', payload: { locked: true } }, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/cfg/settings', p.pat.token, { locked: true }), 403, 'PERMISSION_DENIED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/cfg/settings', roleTok(srv, 'hana', 'host', 'other'), { locked: true }), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/cfg/settings', null, { locked: true }), 401, 'UNAUTHORIZED');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/cfg/settings', roleTok(srv, 'pat', 'participant', 'other')), 403, 'TOKEN_ROOM_MISMATCH');
    h.assertApiError(await h.api(srv, 'GET', '/webrtc/rooms/cfg/settings', null), 401, 'UNAUTHORIZED');
    h.assertApiError(await h.api(srv, 'POST', '/webrtc/rooms/cfg/settings', p.hana.token, 'locked=1',
      { contentType: 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    for (const c of everyone) await c.expectNoneWhere(ofType('room-settings-update'), `room-settings-update at ${c.user}`);
    r = await h.api(srv, 'GET', '/webrtc/rooms/cfg/settings', p.pat.token);
    assert.deepStrictEqual(documented(r.json.settings), want, 'refusals changed nothing');
  });
});

test('every setting is validated: a wrong type, range or unknown key is INVALID_SETTINGS and changes nothing', async () => {
  await h.withServer({ args: ['--max-room-participants', '10', '--rate-settings-update', '1000000/1m'] }, async (srv) => {
    const p = await people(srv, 'val', [['hana', 'host'], ['pat', 'participant']]);
    const before = (await h.api(srv, 'GET', '/webrtc/rooms/val/settings', p.pat.token)).json.settings;
    assert.strictEqual(before.max_participants, 10, '--max-room-participants is the default max_participants');
    const bad = [
      { locked: 'yes' }, { locked: 1 }, { waiting_room: null }, { waiting_room: 'true' }, { mute_on_join: 0 },
      { chat_enabled: 'false' }, { reactions_enabled: [] }, { reactions_enabled: {} },
      { max_participants: 0 }, { max_participants: -3 }, { max_participants: 11 }, { max_participants: 2.5 },
      { max_participants: '5' }, { max_participants: true },
      { screen_share: 'everyone' }, { screen_share: true }, { screen_share: 'Moderators' },
      { colour: 'red' }, {},
      { locked: true, bogus: 1 }, { chat_enabled: false, max_participants: 0 }, { waiting_room: true, screen_share: 'none' },
    ];
    for (const patch of bad) {
      const r = await h.api(srv, 'POST', '/webrtc/rooms/val/settings', p.hana.token, patch);
      h.assertApiError(r, 400, 'INVALID_SETTINGS');
      await h.wsRefused(p.hana, { type: 'room-settings-update', payload: patch }, 'INVALID_SETTINGS');
    }
    await h.wsRefused(p.hana, { type: 'room-settings-update', payload: { settings: { locked: 'no' } } }, 'INVALID_SETTINGS');
    for (const c of [p.hana, p.pat]) await c.expectNoneWhere(ofType('room-settings-update'), `room-settings-update at ${c.user}`);
    const after = (await h.api(srv, 'GET', '/webrtc/rooms/val/settings', p.pat.token)).json.settings;
    assert.deepStrictEqual(after, before, 'nothing changed');
    // The edges are accepted.
    for (const n of [1, 10]) {
      const r = await h.api(srv, 'POST', '/webrtc/rooms/val/settings', p.hana.token, { max_participants: n });
      assert.strictEqual(r.status, 200, r.text);
      assert.strictEqual(r.json.settings.max_participants, n);
    }
  });
});

test('locked: joins below moderator get 403 ROOM_LOCKED before the upgrade; moderators still join', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'lock', [['hana', 'host'], ['pat', 'participant']]);
    p.hana.send({ type: 'room-settings-update', payload: { locked: true } });
    await allGet(Object.values(p), ofType('room-settings-update', (x) => x.settings.locked === true), 'locked');
    await h.expectRefused(srv, 'lock', roleTok(srv, 'newbie', 'participant', 'lock'), 403, 'ROOM_LOCKED');
    await h.expectRefused(srv, 'lock', roleTok(srv, 'watcher', 'viewer', 'lock'), 403, 'ROOM_LOCKED');
    await h.expectRefused(srv, 'lock', h.mintToken(srv.secret, { sub: 'plain' }), 403, 'ROOM_LOCKED', { via: 'query' });
    await p.pat.expectNoneWhere(ofType('user-joined'), 'user-joined for a refused join');
    const mod = await h.join(srv, 'lock', 'mod', { role: 'moderator', room: 'lock' });
    assert.strictEqual(mod.state.payload.self.role, 'moderator');
    assert.strictEqual(mod.state.payload.settings.locked, true);
    await p.pat.nextWhere(ofType('user-joined', (x) => x.user_id === 'mod'));
    const r = await h.api(srv, 'POST', '/webrtc/rooms/lock/settings', p.hana.token, { locked: false });
    assert.strictEqual(r.status, 200, r.text);
    const newbie = await h.join(srv, 'lock', 'newbie', { role: 'participant', room: 'lock' });
    assert.strictEqual(newbie.state.payload.settings.locked, false);
  });
});

test('max_participants: lowering it refuses the next join with 409 ROOM_FULL', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'cap', [['hana', 'host'], ['pat', 'participant']]);
    const r = await h.api(srv, 'POST', '/webrtc/rooms/cap/settings', p.hana.token, { max_participants: 2 });
    assert.strictEqual(r.status, 200, r.text);
    await p.pat.next('room-settings-update');
    await h.expectRefused(srv, 'cap', roleTok(srv, 'third', 'participant', 'cap'), 409, 'ROOM_FULL');
    await h.expectRefused(srv, 'cap', roleTok(srv, 'mod', 'moderator', 'cap'), 409, 'ROOM_FULL');
    await p.hana.expectNoneWhere(ofType('user-joined', (x) => x.user_id !== 'pat'), 'user-joined beyond max_participants');
    p.pat.ws.close();
    await p.hana.nextWhere(ofType('user-left'));
    const third = await h.join(srv, 'cap', 'third', { role: 'participant', room: 'cap' });
    assert.strictEqual(third.state.payload.settings.max_participants, 2);
  });
});

test('chat_enabled false: CHAT_DISABLED below moderator; reactions_enabled false: REACTIONS_DISABLED', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'talk', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant']]);
    const everyone = Object.values(p);
    p.hana.send({ type: 'room-settings-update', payload: { chat_enabled: false, reactions_enabled: false } });
    await allGet(everyone, ofType('room-settings-update'), 'settings');
    await h.wsRefused(p.pat, { type: 'chat-message', payload: { text: 'can I?' } }, 'CHAT_DISABLED');
    await h.wsRefused(p.pat, { type: 'chat-message', to: 'hana', payload: { text: 'privately?' } }, 'CHAT_DISABLED');
    await h.wsRefused(p.pat, { type: 'reaction', payload: { emoji: '👍' } }, 'REACTIONS_DISABLED');
    for (const c of [p.hana, p.mod]) await c.expectNoneWhere((m) => m.type === 'chat-message' || m.type === 'reaction', 'refused chat/reaction relayed');
    // Hosts and moderators may chat anyway; participants still receive it.
    p.mod.send({ type: 'chat-message', payload: { text: 'moderators only' } });
    assert.strictEqual((await p.pat.next('chat-message')).payload.text, 'moderators only');
    p.hana.send({ type: 'chat-message', payload: { text: 'host too' } });
    assert.strictEqual((await p.pat.next('chat-message')).payload.text, 'host too');

    const r = await h.api(srv, 'POST', '/webrtc/rooms/talk/settings', p.mod.token, { chat_enabled: true, reactions_enabled: true });
    assert.strictEqual(r.status, 200, r.text);
    await allGet(everyone, ofType('room-settings-update'), 'settings back on');
    p.pat.send({ type: 'chat-message', payload: { text: 'finally' } });
    assert.strictEqual((await p.hana.nextWhere(ofType('chat-message', (x) => x.text === 'finally'))).from, 'pat');
    p.pat.send({ type: 'reaction', payload: { emoji: '🎉' } });
    assert.strictEqual((await p.hana.next('reaction')).from, 'pat');
  });
});

test('screen_share "moderators": participants cannot start, active participant shares stop', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'scr', [['hana', 'host'], ['mod', 'moderator'], ['pat', 'participant'], ['pat2', 'participant']]);
    const everyone = Object.values(p);
    for (const u of ['pat', 'mod']) {
      p[u].send({ type: 'screen-share-control', payload: { action: 'start' } });
      await allGet(everyone, ofType('screen-share-control', (x) => x.user_id === u && x.sharing), `${u} shares`);
    }
    const r = await h.api(srv, 'POST', '/webrtc/rooms/scr/settings', p.hana.token, { screen_share: 'moderators' });
    assert.strictEqual(r.status, 200, r.text);
    for (const m of await allGet(everyone, ofType('screen-share-control'), 'participant share stopped')) {
      assert.strictEqual(m.payload.user_id, 'pat');
      assert.strictEqual(m.payload.sharing, false);
      assert.strictEqual(m.payload.by, 'server');
    }
    for (const m of await allGet(everyone, ofType('room-settings-update'), 'settings')) {
      assert.deepStrictEqual(m.payload.changed, { screen_share: 'moderators' });
    }
    for (const c of everyone) await c.expectNoneWhere(ofType('screen-share-control'), `another share stop at ${c.user}`);
    await h.wsRefused(p.pat2, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');
    await h.wsRefused(p.pat, { type: 'screen-share-control', payload: { action: 'start' } }, 'PERMISSION_DENIED');
    const late = await h.join(srv, 'scr', 'late', { role: 'participant', room: 'scr' });
    const media = Object.fromEntries(late.state.payload.participants.map((x) => [x.user_id, x.media.screen]));
    assert.deepStrictEqual(media, { hana: false, mod: true, pat: false, pat2: false, late: false });
    p.hana.send({ type: 'screen-share-control', payload: { action: 'start' } });
    await p.pat.nextWhere(ofType('screen-share-control', (x) => x.user_id === 'hana' && x.sharing));

    p.hana.send({ type: 'room-settings-update', payload: { screen_share: 'all' } });
    await p.pat2.next('room-settings-update');
    p.pat2.send({ type: 'screen-share-control', payload: { action: 'start' } });
    await p.hana.nextWhere(ofType('screen-share-control', (x) => x.user_id === 'pat2' && x.sharing));
  });
});

test('the screen_share setting can be read back (endpoint 15, room-settings-update, room-state)', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'scr2', [['hana', 'host']]);
    const got = {};
    let r = await h.api(srv, 'GET', '/webrtc/rooms/scr2/settings', p.hana.token);
    got.endpoint15_default = r.json.settings.screen_share;
    r = await h.api(srv, 'POST', '/webrtc/rooms/scr2/settings', p.hana.token, { screen_share: 'moderators' });
    assert.strictEqual(r.status, 200, r.text);
    got.endpoint16_answer = r.json.settings.screen_share;
    got.update_settings = (await p.hana.next('room-settings-update')).payload.settings.screen_share;
    r = await h.api(srv, 'GET', '/webrtc/rooms/scr2/settings', p.hana.token);
    got.endpoint15_after = r.json.settings.screen_share;
    const late = await h.join(srv, 'scr2', 'late', { role: 'participant', room: 'scr2' });
    got.room_state = late.state.payload.settings.screen_share;
    assert.deepStrictEqual(got, { endpoint15_default: 'all', endpoint16_answer: 'moderators',
      update_settings: 'moderators', endpoint15_after: 'moderators', room_state: 'moderators' },
    'screen_share is a setting ("settings": {all}) but is missing from every settings object');
  });
});

test('mute_on_join is told to newcomers; settings changes count against settings_update', async () => {
  await h.withServer({ args: ['--rate-settings-update', '3/1m'] }, async (srv) => {
    const p = await people(srv, 'mute', [['hana', 'host']]);
    let r = await h.api(srv, 'POST', '/webrtc/rooms/mute/settings', p.hana.token, { mute_on_join: true });
    assert.strictEqual(r.status, 200, r.text);
    const late = await h.join(srv, 'mute', 'late', { role: 'participant', room: 'mute' });
    assert.strictEqual(late.state.payload.settings.mute_on_join, true);
    p.hana.send({ type: 'room-settings-update', payload: { mute_on_join: false } });
    await late.next('room-settings-update');
    r = await h.api(srv, 'POST', '/webrtc/rooms/mute/settings', p.hana.token, { mute_on_join: true });
    assert.strictEqual(r.status, 200, r.text);
    await late.next('room-settings-update');
    r = await h.api(srv, 'POST', '/webrtc/rooms/mute/settings', p.hana.token, { mute_on_join: false });
    h.assertApiError(r, 429, 'RATE_LIMIT_EXCEEDED');
    assert.ok(r.json.error.retry_after_ms > 0, r.text);
    await h.wsRefused(p.hana, { type: 'room-settings-update', payload: { mute_on_join: false } }, 'RATE_LIMIT_EXCEEDED');
    await late.expectNoneWhere(ofType('room-settings-update'), 'a rate-limited change');
    r = await h.api(srv, 'GET', '/webrtc/rooms/mute/settings', p.hana.token);
    assert.strictEqual(r.json.settings.mute_on_join, true);
  });
});
