'use strict';
// GET /webrtc/config (STUN, TURN REST credentials), GET /webrtc/health, the
// per-address connection limit, the zero-configuration token flow and --help.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');

const TURN_ARGS = ['--turn-urls', 'turn:127.0.0.1:3478', '--turn-secret', 's3cret', '--turn-ttl', '600'];

function assertTurn(entry, user, ttl) {
  assert.ok(entry, 'a TURN entry');
  assert.deepStrictEqual(entry.urls, ['turn:127.0.0.1:3478']);
  const m = /^(\d+):(.+)$/.exec(entry.username);
  assert.ok(m, `username <expiry>:<sub>, got ${entry.username}`);
  assert.strictEqual(m[2], user);
  const expiry = Number(m[1]);
  const want = h.nowS() + ttl;
  assert.ok(Math.abs(expiry - want) <= 5, `expiry ${expiry} is about now+${ttl} (${want})`);
  const cred = crypto.createHmac('sha1', 's3cret').update(entry.username).digest('base64');
  assert.strictEqual(entry.credential, cred, 'credential = base64(HMAC-SHA1(secret, username))');
  assert.strictEqual(entry.ttl, ttl);
}

test('GET /webrtc/config', async (t) => {
  await h.withServer({ args: TURN_ARGS }, async (srv) => {
    await h.sub(t, 'without a token: STUN only, no TURN entries', srv, async () => {
      const r = await h.httpGet(srv, '/webrtc/config');
      assert.strictEqual(r.status, 200);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.ok(Array.isArray(r.json.ice_servers) && r.json.ice_servers.length >= 1);
      for (const s of r.json.ice_servers) {
        const urls = [].concat(s.urls);
        for (const u of urls) assert.match(u, /^stuns?:/, `only STUN without a token, got ${u}`);
        assert.strictEqual(s.username, undefined);
        assert.strictEqual(s.credential, undefined);
      }
      assert.deepStrictEqual(r.json.ice_servers[0].urls, ['stun:stun.l.google.com:19302']);
      assert.ok(!r.text.includes('turn:'), 'no TURN URL at all');
    });
    await h.sub(t, 'with a valid token: TURN credentials in the TURN REST form', srv, async () => {
      const tok = h.mintToken(h.SECRET, { sub: 'alice' });
      const r = await h.httpGet(srv, '/webrtc/config', { headers: { Authorization: `Bearer ${tok}` } });
      assert.strictEqual(r.status, 200, r.text);
      const turn = r.json.ice_servers.find((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)));
      assertTurn(turn, 'alice', 600);
      assert.strictEqual(r.json.ttl, 600);
      assert.ok(r.json.ice_servers.some((s) => [].concat(s.urls).some((u) => u.startsWith('stun:'))), 'STUN too');
    });
    await h.sub(t, 'with an invalid token: 401', srv, async () => {
      const r = await h.httpGet(srv, '/webrtc/config', { headers: { Authorization: 'Bearer nope.nope.nope' } });
      assert.strictEqual(r.status, 401);
      assert.strictEqual(r.json.error.code, 'INVALID_TOKEN');
      assert.ok(!r.text.includes('turn:'));
      const wrong = h.mintToken('some-other-secret-that-is-long-enough-000', { sub: 'alice' });
      const r2 = await h.httpGet(srv, '/webrtc/config', { headers: { Authorization: `Bearer ${wrong}` } });
      assert.strictEqual(r2.status, 401);
    });
    await h.sub(t, 'room-state carries the same ICE servers, TURN included', srv, async () => {
      const c = await h.join(srv, 'ice', 'bob');
      const turn = c.state.payload.ice_servers.find((s) => [].concat(s.urls).some((u) => u.startsWith('turn:')));
      assertTurn(turn, 'bob', 600);
      await c.end();
    });
  });
});

test('GET /webrtc/config with a custom --stun-urls list, and TURN URLs without a secret', async () => {
  await h.withServer({ args: ['--stun-urls', 'stun:a.example:3478, stun:b.example:3478', '--turn-urls', 'turn:127.0.0.1:3478'] }, async (srv) => {
    const tok = h.mintToken(h.SECRET, { sub: 'alice' });
    const r = await h.httpGet(srv, '/webrtc/config', { headers: { Authorization: `Bearer ${tok}` } });
    assert.strictEqual(r.status, 200);
    assert.deepStrictEqual(r.json.ice_servers[0].urls, ['stun:a.example:3478', 'stun:b.example:3478']);
    assert.ok(!r.json.ice_servers.some((s) => s.credential), 'no credentials without a TURN secret');
  });
});

test('GET /webrtc/health', async () => {
  await h.withServer({}, async (srv) => {
    const r = await h.httpGet(srv, '/webrtc/health');
    assert.strictEqual(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    const b = r.json;
    assert.strictEqual(b.status, 'ok');
    assert.strictEqual(typeof b.version, 'string');
    assert.ok(Number.isInteger(b.uptime_s) && b.uptime_s >= 0);
    for (const k of ['event_loop', 'store', 'bus']) {
      assert.ok(b.components && b.components[k], `components.${k}`);
      assert.strictEqual(b.components[k].status, 'ok', `components.${k}.status`);
    }
    assert.strictEqual(typeof b.components.event_loop.lag_ms, 'number');
    assert.strictEqual(b.components.event_loop.max_lag_ms, 500);
    assert.strictEqual(b.components.store.backend, 'sqlite');
    assert.strictEqual(b.components.bus.backend, 'local');
    assert.strictEqual(b.rooms, 0);
    assert.ok(Number.isInteger(b.connections) && b.connections >= 1, 'counts this request');
    // HEAD answers like GET without a body.
    const hd = await h.rawRequest(srv, 'HEAD /webrtc/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.match(hd.text, /^HTTP\/1\.1 200 /);
    assert.ok(hd.text.endsWith('\r\n\r\n'), `no body after a HEAD response: ${JSON.stringify(hd.text)}`);
    // With participants.
    const a = await h.join(srv, 'hh', 'alice');
    const b2 = await h.health(srv);
    assert.strictEqual(b2.rooms, 1);
    assert.ok(b2.connections >= 2);
    await a.end();
    await h.waitFor(async () => (await h.health(srv)).rooms === 0, 3000, 20, 'rooms back to 0');
  });
});

test('per-address limit: --max-connections-per-ip 3, the 4th gets 429 TOO_MANY_CONNECTIONS', async () => {
  await h.withServer({ args: ['--max-connections-per-ip', '3'] }, async (srv) => {
    const socks = [];
    for (let i = 0; i < 3; i++) socks.push(await h.rawConnect(srv));
    // Make sure the server has accepted the three (a request on the first is answered).
    await socks[0].write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    const first = await socks[0].response();
    assert.strictEqual(first.status, 200);
    assert.strictEqual(first.json.connections, 3);
    const r = await h.rawRequest(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.strictEqual(r.responses.length, 1, `4th connection: ${JSON.stringify(r.text)}`);
    assert.strictEqual(r.responses[0].status, 429);
    assert.strictEqual(r.responses[0].json.error.code, 'TOO_MANY_CONNECTIONS');
    assert.ok(r.closed, 'the refused connection is closed');
    // A WebSocket upgrade is refused the same way.
    await h.expectRefused(srv, 'ip', h.mintToken(h.SECRET, { sub: 'alice' }), 429, 'TOO_MANY_CONNECTIONS');
    // The others still work.
    await socks[1].write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.strictEqual((await socks[1].response()).status, 200);
    // Closing one frees a place.
    socks[2].destroy();
    await h.waitFor(async () => (await h.httpGet(srv, '/webrtc/health')).status === 200, 3000, 20, 'a free place');
    for (const s of socks) s.destroy();
  });
});

test('overall limit: --max-connections 3, the 4th gets 503 SERVER_FULL', async () => {
  await h.withServer({ args: ['--max-connections', '3'] }, async (srv) => {
    const socks = [];
    for (let i = 0; i < 3; i++) socks.push(await h.rawConnect(srv));
    await socks[0].write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.strictEqual((await socks[0].response()).json.connections, 3);
    const r = await h.rawRequest(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.strictEqual(r.responses.length, 1, `4th connection: ${JSON.stringify(r.text)}`);
    assert.strictEqual(r.responses[0].status, 503);
    assert.strictEqual(r.responses[0].json.error.code, 'SERVER_FULL');
    assert.ok(r.closed);
    for (const s of socks) s.destroy();
    await h.waitFor(async () => (await h.httpGet(srv, '/webrtc/health')).status === 200, 3000, 20, 'a free place');
  });
});

test('zero configuration: generated secret, `huddle token`, join; nothing secret in the logs', async () => {
  const dataDir = h.freshDataDir();
  const secretPath = path.join(dataDir, 'jwt.secret');
  let token = null;
  let secret = null;
  const srv = await h.withServer({ secret: null, dataDir }, async (s) => {
    const st = fs.statSync(secretPath);
    assert.ok(st.isFile(), 'jwt.secret exists');
    assert.strictEqual(st.mode & 0o777, 0o600, `jwt.secret mode ${(st.mode & 0o777).toString(8)}`);
    secret = fs.readFileSync(secretPath, 'utf8').trim();
    assert.ok(secret.length >= 32, 'a secret of 32+ bytes');

    const r = h.runHuddle(['token', '--room', 'demo', '--user', 'alice', '--role', 'host', '--data-dir', dataDir]);
    assert.strictEqual(r.status, 0, `huddle token exit ${r.status}: ${r.stderr}`);
    token = r.stdout.trim();
    assert.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'stdout is one JWT');
    assert.ok(!r.stderr.includes(token), 'huddle token stderr does not echo the token');
    assert.ok(!r.stderr.includes(secret), 'huddle token stderr does not show the secret');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64').toString());
    assert.strictEqual(claims.sub, 'alice');
    assert.strictEqual(claims.room, 'demo');
    assert.strictEqual(claims.role, 'host');
    assert.ok(Math.abs(claims.exp - (h.nowS() + 3600)) <= 10, 'default ttl 3600');

    // Join with it, by header and by query.
    const c = await h.connect(s, 'demo', token, { via: 'query' });
    const state = await c.next();
    assert.strictEqual(state.type, 'room-state');
    assert.strictEqual(state.payload.self.user_id, 'alice');
    assert.strictEqual(state.payload.self.role, 'host');
    await c.end();
    const c2 = await h.connect(s, 'demo', token);
    assert.strictEqual((await c2.next()).type, 'room-state');
    await c2.end();
    // Bound to its room.
    await h.expectRefused(s, 'elsewhere', token, 403, 'TOKEN_ROOM_MISMATCH', { via: 'query' });
    // Our test secret is not the server's.
    await h.expectRefused(s, 'demo', h.mintToken(h.SECRET, { sub: 'alice' }), 401, 'INVALID_TOKEN');
  });
  for (const [what, text] of [['server stderr', srv.stderr], ['server stdout', srv.stdout]]) {
    assert.ok(!text.includes(token), `${what} contains the token`);
    assert.ok(!text.includes(token.split('.')[2]), `${what} contains the token's signature`);
    assert.ok(!text.includes(secret), `${what} contains the secret`);
    assert.ok(!text.includes('token='), `${what} contains "token="`);
  }

  // The secret persists: a restarted server with the same data dir takes the token.
  await h.withServer({ secret: null, dataDir }, async (s) => {
    assert.strictEqual(fs.readFileSync(secretPath, 'utf8').trim(), secret, 'secret unchanged');
    const c = await h.connect(s, 'demo', token);
    assert.strictEqual((await c.next()).type, 'room-state');
    await c.end();
    assert.ok(!s.stderr.includes(secret) && !s.stderr.includes(token) && !s.stderr.includes('token='));
  });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('huddle token refuses bad input', () => {
  const dataDir = h.freshDataDir();
  const bad = [
    ['token', '--room', 'demo', '--data-dir', dataDir], // no --user
    ['token', '--user', 'bad id', '--data-dir', dataDir],
    ['token', '--user', 'alice', '--room', 'bad room', '--data-dir', dataDir],
    ['token', '--user', 'alice', '--role', 'king', '--data-dir', dataDir],
    ['token', '--user', 'alice', '--ttl', '0', '--data-dir', dataDir],
  ];
  for (const args of bad) {
    const r = h.runHuddle(args);
    assert.notStrictEqual(r.status, 0, `huddle ${args.join(' ')} should fail`);
    assert.strictEqual(r.stdout, '', 'no token printed');
    assert.ok(r.stderr.length > 0, 'an explanation on stderr');
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('huddle --help mentions every HUDDLE_* variable', () => {
  const r = h.runHuddle(['--help']);
  assert.strictEqual(r.status, 0, r.stderr);
  const help = r.stdout;
  const expected = new Set([
    'HUDDLE_LISTEN', 'HUDDLE_DATA_DIR', 'HUDDLE_CONFIG', 'HUDDLE_LOG_LEVEL', 'HUDDLE_JWT_SECRET',
    'HUDDLE_JWT_ALG', 'HUDDLE_JWT_PUBLIC_KEY', 'HUDDLE_STUN_URLS', 'HUDDLE_TURN_URLS',
    'HUDDLE_TURN_SECRET', 'HUDDLE_TURN_TTL', 'HUDDLE_MAX_ROOM_PARTICIPANTS', 'HUDDLE_MAX_CONNECTIONS',
    'HUDDLE_MAX_CONNECTIONS_PER_IP', 'HUDDLE_MAX_HEADER_BYTES', 'HUDDLE_MAX_BODY_BYTES',
    'HUDDLE_MAX_WS_MESSAGE', 'HUDDLE_MAX_WS_FRAGMENTS', 'HUDDLE_MAX_SEND_QUEUE', 'HUDDLE_JSON_MAX_DEPTH',
    'HUDDLE_JSON_MAX_VALUES', 'HUDDLE_HEADER_TIMEOUT_MS', 'HUDDLE_IDLE_TIMEOUT_MS',
    'HUDDLE_PING_INTERVAL_MS', 'HUDDLE_SHUTDOWN_TIMEOUT_MS', 'HUDDLE_MAX_LAG_MS',
  ]);
  // Plus every HUDDLE_* name the server's source reads (string literals), when the source is here.
  const src = path.resolve(__dirname, '../../src');
  const walk = (d) => {
    let out = [];
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) out = out.concat(walk(p));
      else if (/\.[ch]$/.test(e.name)) out.push(p);
    }
    return out;
  };
  if (fs.existsSync(src)) {
    for (const f of walk(src)) {
      for (const m of fs.readFileSync(f, 'utf8').matchAll(/"(HUDDLE_[A-Z0-9_]+)"/g)) expected.add(m[1]);
    }
  }
  const missing = [...expected].filter((v) => !new RegExp(`\\b${v}\\b`).test(help));
  assert.deepStrictEqual(missing, [], `--help does not mention ${missing.join(', ')}`);
  // And every variable --help names is a real option (the flag is listed next to it).
  for (const m of help.matchAll(/--([a-z0-9-]+)\s+(HUDDLE_[A-Z0-9_]+)/g)) {
    assert.strictEqual(m[2], `HUDDLE_${m[1].toUpperCase().replace(/-/g, '_')}`, `flag --${m[1]} pairs with ${m[2]}`);
  }
});

test('environment variables configure the server (HUDDLE_MAX_ROOM_PARTICIPANTS)', async () => {
  await h.withServer({ env: { HUDDLE_MAX_ROOM_PARTICIPANTS: '1' } }, async (srv) => {
    const a = await h.join(srv, 'env', 'alice');
    assert.strictEqual(a.state.payload.settings.max_participants, 1);
    await h.expectRefused(srv, 'env', h.mintToken(h.SECRET, { sub: 'bob' }), 409, 'ROOM_FULL');
    await a.end();
  });
});
