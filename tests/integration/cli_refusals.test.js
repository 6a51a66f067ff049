// `huddle token` finds the server's own secret and never makes one; refusals
// say which check failed in our own words; ICE end-of-candidates; a refused
// answer reaches the offerer; a failed listen exits cleanly.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');
const f = require('./feature_helpers');

function runIn(cwd, args, env = {}) {
  return spawnSync(h.BIN, args, { cwd, env: h.childEnv(env), encoding: 'utf8', timeout: 10000 });
}

test('huddle token run from another folder creates no secret and says where it looked', () => {
  const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-cwd-'));
  try {
    const r = runIn(elsewhere, ['token', '--user', 'alice']);
    assert.notStrictEqual(r.status, 0, 'no secret: refused');
    assert.strictEqual(r.stdout, '');
    assert.ok(!fs.existsSync(path.join(elsewhere, 'data')), 'nothing created in the current folder');
    assert.match(r.stderr, /never creates/);
    assert.ok(r.stderr.includes(path.join(fs.realpathSync(elsewhere), 'data', 'jwt.secret')) ||
      r.stderr.includes(path.join(elsewhere, 'data', 'jwt.secret')), r.stderr);
    assert.match(r.stderr, /HUDDLE_JWT_SECRET/);
    assert.match(r.stderr, /config/);
  } finally {
    fs.rmSync(elsewhere, { recursive: true, force: true });
  }
});

test('huddle token --help prints its own usage; optional flags are shown optional', () => {
  const r = h.runHuddle(['token', '--help']);
  assert.strictEqual(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: huddle token --user U \[--room R\] \[--role ROLE\]/);
  assert.match(r.stdout, /--ttl S .*default 3600/);
  assert.doesNotMatch(r.stdout, /--listen/, 'not the server help');
  const main = h.runHuddle(['--help']);
  assert.match(main.stdout, /huddle token --user U \[--room R\]/);
  assert.match(main.stdout, /--turn-ttl[\s\S]*?Range: 60 to 604800\./);
});

test('huddle token honours --config, and --jwt-alg HS384 / HS512 mints what a pinned server accepts', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-conf-'));
  const secret = 'config-file-secret-0123456789-0123456789-abc';
  for (const alg of ['HS384', 'HS512']) {
    const conf = path.join(dir, `huddle-${alg}.conf`);
    fs.writeFileSync(conf, `data-dir = ${path.join(dir, 'data')}\njwt-secret = ${secret}\njwt-alg = ${alg}\n`);
    await h.withServer({ secret: null, args: ['--config', conf] }, async (srv) => {
      const elsewhere = os.tmpdir();
      const r = runIn(elsewhere, ['token', '--user', 'alice', '--config', conf]);
      assert.strictEqual(r.status, 0, r.stderr);
      const token = r.stdout.trim();
      const header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
      assert.strictEqual(header.alg, alg);
      const c = await h.connect(srv, 'cfgroom', token);
      assert.strictEqual((await c.next()).type, 'room-state');
      await c.end();
      // An HS256 token is refused by the pinned server, and the detail says why.
      const e = await h.expectRefused(srv, 'cfgroom', h.mintToken(secret, { sub: 'bob' }), 401, 'INVALID_TOKEN');
      assert.match(e.body.error.detail, /header/);
    });
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('JSON errors are in our words, not jansson internals', async () => {
  await h.withServer(async (srv) => {
    const c = await h.join(srv, 'nul', 'alice');
    c.send('{"type": "chat-message", "payload": {"text": "a\\u0000b"}}');
    const e = await c.next('error');
    assert.strictEqual(e.payload.code, 'INVALID_JSON');
    assert.doesNotMatch(e.payload.detail, /JSON_ALLOW_NUL|jansson/);
    assert.match(e.payload.detail, /NUL/);
    const r = await f.rest(srv, 'POST', '/webrtc/rooms', { token: f.adminTok(srv), body: '{"room_id": "a\\u0000"}', contentType: 'application/json' });
    const err = f.assertRestError(r, 400, 'INVALID_JSON');
    assert.doesNotMatch(err.detail, /JSON_ALLOW_NUL/);
    c.send('{"type": "chat-message", "payload": {"text": bad}}');
    const e2 = await c.next('error');
    assert.match(e2.payload.detail, /^invalid JSON syntax at line 1 column \d+$/);
    await c.end();
  });
});

test('ICE: a null candidate is relayed as end-of-candidates; the recovery hint shows the shape', async () => {
  await h.withServer(async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'ice', [['alice'], ['bob']]);
    alice.send({ type: 'ice-candidate', to: 'bob', payload: { candidate: null, sdpMid: '0', sdpMLineIndex: 0 } });
    const m1 = await bob.next('ice-candidate');
    assert.deepStrictEqual(m1.payload, { candidate: '', sdpMid: '0', sdpMLineIndex: 0 });
    assert.strictEqual(m1.from, 'alice');
    alice.send({ type: 'ice-candidate', to: 'bob', payload: null });
    const m2 = await bob.next('ice-candidate');
    assert.deepStrictEqual(m2.payload, { candidate: '' });
    const bad = await h.wsRefused(alice, { type: 'ice-candidate', to: 'bob', payload: { candidate: 42 } }, 'INVALID_ICE_CANDIDATE');
    assert.match(bad.payload.recovery, /\{"candidate": "candidate:\.\.\.", "sdpMid": "0", "sdpMLineIndex": 0\}/);
    assert.match(bad.payload.recovery, /null/);
    await alice.end();
    await bob.end();
  });
});

test('a refused answer (viewer answering with media) is reported to the offerer too', async () => {
  await h.withServer(async (srv) => {
    const { alice, vic } = await f.joinAll(srv, 'ans', [['alice'], ['vic', { role: 'viewer' }]]);
    alice.send({ type: 'offer', to: 'vic', payload: { type: 'offer', sdp: 'v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n' } });
    await vic.next('offer');
    const sdp = 'v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n';
    await h.wsRefused(vic, { type: 'answer', to: 'alice', payload: { type: 'answer', sdp } }, 'PERMISSION_DENIED');
    const told = await alice.next('error');
    f.assertWsError(told, 'PEER_ANSWER_REFUSED');
    assert.match(told.payload.detail, /'vic'/);
    assert.strictEqual(told.ref, undefined);
    await alice.end();
    await vic.end();
  });
});

test('a failed listen exits non-zero with its reason and no shutdown lines', async () => {
  const blocker = net.createServer();
  await new Promise((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = blocker.address().port;
  const dataDir = h.freshDataDir();
  try {
    const r = h.runHuddle(['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--jwt-secret', h.SECRET]);
    assert.strictEqual(r.status, 1, r.stderr);
    assert.match(r.stderr, /startup_failed reason="listen on 127\.0\.0\.1:\d+: address already in use/);
    assert.doesNotMatch(r.stderr, /shutdown_begin|stopped|signal_received/);
  } finally {
    blocker.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
