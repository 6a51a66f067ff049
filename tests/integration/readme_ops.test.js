// The README tells a newcomer and an operator what the server really does:
// ranges of bounded options, the quick start's facts, the operations
// section; and two behaviours the docs promise (one 429 detail form, the
// config ttl).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers');
const f = require('./feature_helpers');

const root = path.resolve(__dirname, '../..');
const README = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

test('README and --help give the range of every bounded option, as config.c enforces it', () => {
  const src = fs.readFileSync(path.join(root, 'src/config.c'), 'utf8');
  const ints = [...src.matchAll(/\{"([a-z0-9-]+)", "HUDDLE_\w+", I\(\w+\), "[^"]*", (-?\d+), (-?\d+),/g)];
  assert.ok(ints.length >= 20, `found ${ints.length} integer options`);
  const help = h.runHuddle(['--help']).stdout;
  for (const [, name, min, max] of ints) {
    const range = `Range: ${min} to ${max}.`;
    const row = README.split('\n').find((l) => l.startsWith(`| \`--${name}\` `));
    assert.ok(row && row.includes(range), `README row of --${name} says ${range}`);
    const at = help.indexOf(`  --${name} `);
    assert.ok(at >= 0 && help.slice(at, help.indexOf('\n  --', at + 3)).includes(range), `--help of --${name} says ${range}`);
    // And the server refuses one past the range with the range in the message.
    // (an unknown option after it: should the value pass, nothing starts)
    const r = h.runHuddle([`--${name}`, String(Number(max) + 1), '--no-such-option']);
    assert.match(r.stderr, new RegExp(`${name}: expected an integer from ${min} to ${max}`));
  }
});

test('README quick start: a WebSocket client, any folder, token lifetime, STUN default and how to turn it off', () => {
  const qs = README.slice(README.indexOf('## Quick start'), README.indexOf('## Configuration'));
  assert.match(qs, /npx wscat -c/);
  assert.match(qs, /any folder/);
  assert.match(qs, /scripts\/token\.sh/);
  assert.match(qs, /one hour/);
  assert.match(qs, /stun:stun\.l\.google\.com:19302/);
  assert.match(qs, /--stun-urls ''/);
  assert.ok(fs.statSync(path.join(root, 'scripts/token.sh')).mode & 0o111, 'scripts/token.sh is executable');
  const ops = README.slice(README.indexOf('## Operations'));
  for (const part of ['### Install', '### Configure', '### Upgrade', '### Back up', '### Logs', '### Health checks', '### Metrics']) {
    assert.ok(ops.includes(part), `operations section has ${part}`);
  }
  assert.match(ops, /credentials: /, 'a Prometheus scrape configuration');
  // What a restart keeps of a pre-created room (persistence landed): the open room goes, its stored state comes back.
  assert.match(ops, /pre-created\s+room does not outlive a restart/);
  assert.match(ops, /settings, in-room roles, bans and hand queue come back/);
});

test('the default token lifetime is what the README says; --stun-urls "" removes Google STUN', async () => {
  const dataDir = h.freshDataDir();
  try {
    await h.withServer({ dataDir, secret: null, args: ['--stun-urls', ''] }, async (srv) => {
      const r = h.runHuddle(['token', '--user', 'alice', '--data-dir', dataDir]);
      assert.strictEqual(r.status, 0, r.stderr);
      const claims = JSON.parse(Buffer.from(r.stdout.trim().split('.')[1], 'base64url').toString());
      assert.ok(Math.abs(claims.exp - claims.iat - 3600) <= 1, 'one hour');
      const cfg = await f.rest(srv, 'GET', '/webrtc/config', { token: r.stdout.trim() });
      assert.deepStrictEqual(cfg.json, { ice_servers: [], ttl: 0 }, 'no STUN, no TURN: no credentials, ttl 0');
    });
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('GET /webrtc/config: ttl is 0 without TURN even with a token', async () => {
  await h.withServer(async (srv) => {
    const r = await f.rest(srv, 'GET', '/webrtc/config', { token: f.tok(srv, { sub: 'alice' }) });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.ttl, 0);
    assert.deepStrictEqual(r.json.ice_servers, [{ urls: ['stun:stun.l.google.com:19302'] }]);
  });
});

test('REST and WebSocket rate-limit details have one form: "limit <class>: N per W ms"', async () => {
  await h.withServer({ rateLimits: true, args: ['--rate-api-call', '2/1m', '--rate-chat-message', '1/1m'] }, async (srv) => {
    const token = f.tok(srv, { sub: 'alice' });
    let last;
    for (let i = 0; i < 3; i++) last = await f.rest(srv, 'GET', '/webrtc/config', { token });
    const e = f.assertRestError(last, 429, 'RATE_LIMIT_EXCEEDED');
    assert.strictEqual(e.detail, 'limit api_call: 2 per 60000 ms');
    const c = await h.join(srv, 'rl', 'bob');
    c.send({ type: 'chat-message', payload: { text: 'one' } });
    await c.next('chat-message');
    const w = await h.wsRefused(c, { type: 'chat-message', payload: { text: 'two' } }, 'RATE_LIMIT_EXCEEDED');
    assert.strictEqual(w.payload.detail, 'limit chat_message: 1 per 60000 ms');
    await c.end();
  });
});
