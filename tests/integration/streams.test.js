'use strict';
// Live streams: endpoints 25-27 and live-stream-start / live-stream-stop.
// The stream key (last path segment) and the query string are secrets: they
// must appear nowhere, not in responses, broadcasts, lists or the log.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const base = (room) => `/webrtc/rooms/${room}/live-streams`;

function assertStream(s, { state, target, name, by }) {
  assert.ok(s && typeof s === 'object', JSON.stringify(s));
  assert.match(s.stream_id, /^s[0-9a-zA-Z]{8,}$/);
  assert.strictEqual(s.state, state, JSON.stringify(s));
  if (target) assert.strictEqual(s.target, target);
  if (name) assert.strictEqual(s.name, name);
  if (by) assert.strictEqual(s.started_by, by);
  assert.ok(Number.isInteger(s.started_at), 'started_at');
  assert.ok(Number.isInteger(s.duration_ms) && s.duration_ms >= 0, 'duration_ms');
  if (state === 'stopped') {
    assert.ok(Number.isInteger(s.stopped_at) && s.stopped_at >= s.started_at);
    assert.strictEqual(typeof s.stopped_by, 'string');
  }
}

/** Asserts that none of the secrets occurs in text. */
function noSecret(text, secrets, where) {
  for (const sec of secrets) {
    assert.ok(!String(text).includes(sec), `secret ${sec} found in ${where}: ${String(text).slice(0, 600)}`);
  }
}

test('live streams over REST: start redacted, limit of 3, stop, lists, permissions; the key appears nowhere', async (t) => {
  const SECRETS = ['SECRETKEY', 'K2SECRET', 'QSECRET', 'K3SECRET', 'K4SECRET', 'LEAKPW', 'LEAKKEY'];
  const srv = await h.withServer({}, async (s0) => {
    const room = 'bcast';
    const hostTok = f.tok(s0, { sub: 'alice', role: 'host' });
    const bobTok = f.tok(s0, { sub: 'bob' });
    const { alice, bob, vic } = await f.joinAll(s0, room, [['alice', { role: 'host' }], ['bob'], ['vic', { role: 'viewer' }]]);
    const everyone = [alice, bob, vic];
    const s = (name, fn) => h.sub(t, name, s0, fn);
    const seen = []; // every response and message text, checked for secrets at the end
    const start = async (json, token = hostTok) => {
      const r = await f.rest(s0, 'POST', `${base(room)}/start`, { token, json });
      seen.push(r.text);
      return r;
    };
    const ids = [];

    await s('start with rtmp://host/app/SECRETKEY -> 201, target redacted, everyone told', async () => {
      const r = await start({ target_url: 'rtmp://live.example.com/app/SECRETKEY', name: 'main' });
      assert.strictEqual(r.status, 201, r.text);
      assertStream(r.json.live_stream, { state: 'live', target: 'rtmp://live.example.com/app/****', name: 'main', by: 'alice' });
      ids.push(r.json.live_stream.stream_id);
      const got = await Promise.all(everyone.map((c) => c.next()));
      for (const m of got) {
        seen.push(JSON.stringify(m));
        assert.strictEqual(m.type, 'live-stream-start', JSON.stringify(m));
        assert.strictEqual(m.from, 'server');
        assertStream(m.payload, { state: 'live', target: 'rtmp://live.example.com/app/****', name: 'main', by: 'alice' });
        assert.strictEqual(m.payload.stream_id, ids[0]);
      }
    });

    await s('rtmps with a port and a query string: key and query redacted; name defaults to "live"', async () => {
      const r = await start({ target_url: 'rtmps://a.example.com:443/live2/K2SECRET?auth=QSECRET', name: 'backup' });
      assert.strictEqual(r.status, 201, r.text);
      assert.strictEqual(r.json.live_stream.target, 'rtmps://a.example.com:443/live2/****?****');
      ids.push(r.json.live_stream.stream_id);
      const r3 = await start({ target_url: 'rtmp://b.example.com/app/sub/K3SECRET' });
      assert.strictEqual(r3.status, 201, r3.text);
      assertStream(r3.json.live_stream, { state: 'live', target: 'rtmp://b.example.com/app/sub/****', name: 'live' });
      ids.push(r3.json.live_stream.stream_id);
      for (let i = 0; i < 2; i++) for (const c of everyone) seen.push(JSON.stringify(await c.next('live-stream-start')));
    });

    await s('a 4th concurrent stream -> 409 STREAM_LIMIT_REACHED, nothing broadcast', async () => {
      f.assertRestError(await start({ target_url: 'rtmp://c.example.com/app/K4SECRET' }), 409, 'STREAM_LIMIT_REACHED');
      await f.expectNoneAll(everyone, 100);
    });

    await s('any room token lists them, redacted, with the active count', async () => {
      for (const token of [bobTok, hostTok, f.tok(s0, { sub: 'vic', role: 'viewer' })]) {
        const r = await f.rest(s0, 'GET', base(room), { token });
        seen.push(r.text);
        assert.strictEqual(r.status, 200, r.text);
        assert.strictEqual(r.json.room_id, room);
        assert.strictEqual(r.json.active, 3);
        assert.deepStrictEqual(r.json.live_streams.map((x) => x.stream_id), ids);
        assert.deepStrictEqual(r.json.live_streams.map((x) => x.target), [
          'rtmp://live.example.com/app/****', 'rtmps://a.example.com:443/live2/****?****', 'rtmp://b.example.com/app/sub/****']);
      }
    });

    await s('a newcomer\'s room-state lists the live streams, redacted', async () => {
      const carol = await h.join(s0, room, 'carol');
      for (const c of everyone) await c.next('user-joined');
      seen.push(JSON.stringify(carol.state));
      assert.deepStrictEqual(carol.state.payload.live_streams.map((x) => x.stream_id), ids);
      for (const x of carol.state.payload.live_streams) assertStream(x, { state: 'live' });
      everyone.push(carol);
    });

    await s('a participant -> 403 PERMISSION_DENIED (start and stop)', async () => {
      f.assertRestError(await start({ target_url: 'rtmp://c.example.com/app/K4SECRET' }, bobTok), 403, 'PERMISSION_DENIED');
      f.assertRestError(await f.rest(s0, 'POST', `${base(room)}/${ids[0]}/stop`, { token: bobTok }), 403, 'PERMISSION_DENIED');
      await f.expectNoneAll(everyone, 50);
    });

    await s('stop -> 200 stopped and live-stream-stop to everyone; again -> 409; unknown -> 404', async () => {
      const r = await f.rest(s0, 'POST', `${base(room)}/${ids[0]}/stop`, { token: hostTok });
      seen.push(r.text);
      assert.strictEqual(r.status, 200, r.text);
      assertStream(r.json.live_stream, { state: 'stopped', target: 'rtmp://live.example.com/app/****' });
      assert.strictEqual(r.json.live_stream.stopped_by, 'alice');
      const got = await Promise.all(everyone.map((c) => c.next()));
      for (const m of got) {
        seen.push(JSON.stringify(m));
        assert.strictEqual(m.type, 'live-stream-stop', JSON.stringify(m));
        assert.strictEqual(m.from, 'server');
        assert.strictEqual(m.payload.stream_id, ids[0]);
        assertStream(m.payload, { state: 'stopped' });
      }
      f.assertRestError(await f.rest(s0, 'POST', `${base(room)}/${ids[0]}/stop`, { token: hostTok }), 409, 'STREAM_NOT_ACTIVE');
      f.assertRestError(await f.rest(s0, 'POST', `${base(room)}/s00000000000000000000/stop`, { token: hostTok }), 404, 'STREAM_NOT_FOUND');
      await f.expectNoneAll(everyone, 50);
      // With one stopped, a new one fits.
      const r4 = await start({ target_url: 'rtmp://c.example.com/app/K4SECRET' });
      assert.strictEqual(r4.status, 201, r4.text);
      for (const c of everyone) seen.push(JSON.stringify(await c.next('live-stream-start')));
      const l = await f.rest(s0, 'GET', base(room), { token: bobTok });
      seen.push(l.text);
      assert.strictEqual(l.json.active, 3);
      assert.deepStrictEqual(l.json.live_streams.map((x) => x.state), ['stopped', 'live', 'live', 'live']);
    });

    const badTargets = [
      ['http:// scheme', 'http://x/a/b'],
      ['no key: rtmp://host', 'rtmp://host'],
      ['no key: rtmp://host/', 'rtmp://host/'],
      ['only an app: rtmp://host/app', 'rtmp://host/app'],
      ['user and password', 'rtmp://user:LEAKPW@host/app/LEAKKEY'],
      ['a space in the key', 'rtmp://host/app/LEAK KEY'],
      ['a space in the host', 'rtmp://ho st/app/key'],
      ['a double quote', 'rtmp://host/app/"key"'],
      ['a single quote', "rtmp://host/app/it's"],
      ['no host', 'rtmp:///app/key'],
      ['javascript:', 'javascript:alert(1)//rtmp://h/a/k'],
      ['empty', ''],
      ['over 1024 bytes', `rtmp://host/app/${'k'.repeat(1100)}`],
    ];
    for (const [name, target] of badTargets) {
      await s(`invalid target (${name}) -> 400 INVALID_STREAM_TARGET`, async () => {
        f.assertRestError(await start({ target_url: target }), 400, 'INVALID_STREAM_TARGET', name);
      });
    }
    await s('target_url missing or not a string -> 400 INVALID_STREAM_TARGET', async () => {
      f.assertRestError(await start({}), 400, 'INVALID_STREAM_TARGET');
      f.assertRestError(await start({ target_url: 42 }), 400, 'INVALID_STREAM_TARGET');
    });

    await s('Content-Type text/plain -> 415 UNSUPPORTED_MEDIA_TYPE; malformed JSON -> 400 INVALID_JSON', async () => {
      const body = JSON.stringify({ target_url: 'rtmp://h.example.com/app/LEAKKEY' });
      const r1 = await f.rest(s0, 'POST', `${base(room)}/start`, { token: hostTok, body, contentType: 'text/plain' });
      f.assertRestError(r1, 415, 'UNSUPPORTED_MEDIA_TYPE');
      const r2 = await f.rest(s0, 'POST', `${base(room)}/start`, { token: hostTok, body: '{"target_url": "rtmp://h/app/LEAKKEY",', contentType: 'application/json' });
      f.assertRestError(r2, 400, 'INVALID_JSON');
      const r3 = await f.rest(s0, 'POST', `${base(room)}/start`, { token: hostTok, body: '["rtmp://h/app/LEAKKEY"]', contentType: 'application/json' });
      f.assertRestError(r3, 400, undefined, 'a JSON array body');
      const r4 = await f.rest(s0, 'POST', `${base(room)}/start`, { token: hostTok, body, contentType: 'application/json; charset=utf-8' });
      f.assertRestError(r4, 409, 'STREAM_LIMIT_REACHED', 'application/json with a charset is JSON');
      seen.push(r1.text, r2.text, r3.text, r4.text);
      await f.expectNoneAll(everyone, 50);
    });

    for (const text of seen) noSecret(text, SECRETS, 'a response or message');
    for (const c of everyone) for (const m of c.all) noSecret(JSON.stringify(m), SECRETS, `a message to ${c.user}`);
  });
  noSecret(srv.stderr, SECRETS, 'the server log');
  noSecret(srv.stdout, SECRETS, 'the server stdout');
});

test('live-stream-start / live-stream-stop over WebSocket', async (t) => {
  const SECRETS = ['WSKEY1', 'WSKEY2', 'WSKEY3', 'WSKEY4', 'WSBAD'];
  const srv = await h.withServer({}, async (s0) => {
    const { alice, mod, bob } = await f.joinAll(s0, 'wsls', [['alice', { role: 'host' }], ['mod', { role: 'moderator' }], ['bob']]);
    const everyone = [alice, mod, bob];
    const s = (name, fn) => h.sub(t, name, s0, fn);
    let id;

    await s('start: everyone, the sender included, receives live-stream-start from server, redacted', async () => {
      alice.send({ type: 'live-stream-start', id: 'l1', payload: { target_url: 'rtmp://yt.example.com/live2/WSKEY1', name: 'YouTube' } });
      const got = await Promise.all(everyone.map((c) => c.next()));
      id = got[0].payload.stream_id;
      for (const m of got) {
        assert.strictEqual(m.type, 'live-stream-start', JSON.stringify(m));
        assert.strictEqual(m.from, 'server');
        assertStream(m.payload, { state: 'live', target: 'rtmp://yt.example.com/live2/****', name: 'YouTube', by: 'alice' });
        assert.strictEqual(m.payload.stream_id, id);
      }
    });

    await s('errors: bad target, no permission, limit, bad stop payloads', async () => {
      alice.send({ type: 'live-stream-start', id: 'b1', payload: { target_url: 'http://x/a/WSBAD' } });
      await f.expectWsError(alice, 'INVALID_STREAM_TARGET', 'b1');
      alice.send({ type: 'live-stream-start', id: 'b2', payload: {} });
      await f.expectWsError(alice, 'INVALID_STREAM_TARGET', 'b2');
      bob.send({ type: 'live-stream-start', id: 'b3', payload: { target_url: 'rtmp://h.example.com/app/WSBAD' } });
      await f.expectWsError(bob, 'PERMISSION_DENIED', 'b3');
      bob.send({ type: 'live-stream-stop', id: 'b4', payload: { stream_id: id } });
      await f.expectWsError(bob, 'PERMISSION_DENIED', 'b4');
      alice.send({ type: 'live-stream-stop', id: 'b5', payload: {} });
      await f.expectWsError(alice, 'INVALID_MESSAGE', 'b5');
      alice.send({ type: 'live-stream-stop', id: 'b6', payload: { stream_id: 7 } });
      await f.expectWsError(alice, 'INVALID_MESSAGE', 'b6');
      alice.send({ type: 'live-stream-stop', id: 'b7', payload: { stream_id: 'snope' } });
      await f.expectWsError(alice, 'STREAM_NOT_FOUND', 'b7');
      await f.expectNoneAll(everyone, 50);
      mod.send({ type: 'live-stream-start', payload: { target_url: 'rtmp://h.example.com/app/WSKEY2' } });
      mod.send({ type: 'live-stream-start', payload: { target_url: 'rtmp://h.example.com/app/WSKEY3' } });
      for (let i = 0; i < 2; i++) for (const c of everyone) await c.next('live-stream-start');
      mod.send({ type: 'live-stream-start', id: 'b8', payload: { target_url: 'rtmp://h.example.com/app/WSKEY4' } });
      await f.expectWsError(mod, 'STREAM_LIMIT_REACHED', 'b8');
      await f.expectNoneAll(everyone, 50);
    });

    await s('stop: everyone receives live-stream-stop; stopping again -> STREAM_NOT_ACTIVE', async () => {
      mod.send({ type: 'live-stream-stop', id: 's1', payload: { stream_id: id } });
      const got = await Promise.all(everyone.map((c) => c.next()));
      for (const m of got) {
        assert.strictEqual(m.type, 'live-stream-stop', JSON.stringify(m));
        assert.strictEqual(m.from, 'server');
        assertStream(m.payload, { state: 'stopped', target: 'rtmp://yt.example.com/live2/****' });
        assert.strictEqual(m.payload.stopped_by, 'mod');
      }
      alice.send({ type: 'live-stream-stop', id: 's2', payload: { stream_id: id } });
      await f.expectWsError(alice, 'STREAM_NOT_ACTIVE', 's2');
      const l = await f.rest(s0, 'GET', base('wsls'), { token: f.tok(s0, { sub: 'bob' }) });
      assert.strictEqual(l.json.active, 2);
      assert.strictEqual(l.json.live_streams[0].state, 'stopped');
    });
    for (const c of everyone) {
      c.assertEnvelopes();
      for (const m of c.all) noSecret(JSON.stringify(m), SECRETS, `a message to ${c.user}`);
    }
  });
  noSecret(srv.stderr, SECRETS, 'the server log');
});

test('live streams: room not live, unknown room, token of another room, the room emptying stops them', async () => {
  await h.withServer({}, async (srv) => {
    const admin = f.adminTok(srv);
    const hostTok = f.tok(srv, { sub: 'boss', role: 'host' });
    const body = { target_url: 'rtmp://h.example.com/app/key' };
    f.assertRestError(await f.rest(srv, 'POST', `${base('nobody')}/start`, { token: hostTok, json: body }), 404, 'ROOM_NOT_FOUND');
    f.assertRestError(await f.rest(srv, 'GET', base('nobody'), { token: admin }), 404, 'ROOM_NOT_FOUND');
    f.assertRestError(await f.rest(srv, 'POST', `${base('x')}/start`, { json: body }), 401, 'UNAUTHORIZED');

    const alice = await h.join(srv, 'ls', 'alice', { role: 'host' });
    const other = f.tok(srv, { sub: 'boss', role: 'host', room: 'elsewhere' });
    f.assertRestError(await f.rest(srv, 'POST', `${base('ls')}/start`, { token: other, json: body }), 403, 'TOKEN_ROOM_MISMATCH');
    f.assertRestError(await f.rest(srv, 'GET', base('ls'), { token: other }), 403, 'TOKEN_ROOM_MISMATCH');
    const r = await f.rest(srv, 'POST', `${base('ls')}/start`, { token: admin, json: body });
    assert.strictEqual(r.status, 201, r.text);
    assert.strictEqual(r.json.live_stream.started_by, 'ops');
    await alice.next('live-stream-start');
    await alice.end();
    const l = await h.waitFor(async () => {
      const x = await f.rest(srv, 'GET', base('ls'), { token: admin });
      return x.status === 200 && x.json.active === 0 && x.json;
    }, 3000, 25, 'the stream to stop when the room empties');
    assert.strictEqual(l.live_streams[0].state, 'stopped');
    assert.strictEqual(l.live_streams[0].stopped_by, 'server');
    f.assertRestError(await f.rest(srv, 'POST', `${base('ls')}/${r.json.live_stream.stream_id}/stop`, { token: admin }), 409, 'STREAM_NOT_ACTIVE');
  });
});
