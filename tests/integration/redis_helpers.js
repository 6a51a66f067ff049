'use strict';
// Helpers for the several-instance tests (redis*.test.js): a throwaway
// redis-server on a free loopback port in a temp dir, and huddle instances
// sharing it (--redis-url). Not a test file itself.

const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const h = require('./helpers');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, h.HOST, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts redis-server; resolves {port, url, stop(), start()} (start again on the same port). */
async function startRedis(extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-redis-'));
  const port = await freePort();
  const r = { port, dir, url: `redis://${h.HOST}:${port}`, proc: null };
  r.start = async () => {
    r.proc = spawn('redis-server', ['--port', String(port), '--bind', h.HOST, '--dir', dir, '--save', '',
      '--appendonly', 'no', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    r.proc.stdout.on('data', (d) => { out += d; });
    r.exited = new Promise((resolve) => r.proc.on('exit', resolve));
    await h.waitFor(() => /Ready to accept connections/.test(out), 5000, 20, `redis-server ready on ${port}`);
  };
  r.stop = async () => {
    if (!r.proc) return;
    const p = r.proc;
    r.proc = null;
    p.kill('SIGKILL');
    await r.exited;
  };
  r.cleanup = async () => {
    await r.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  await r.start();
  return r;
}

/** Starts n huddle instances on Redis r (same JWT secret). */
async function startInstances(r, n, opts = {}) {
  const list = [];
  for (let i = 0; i < n; i++) {
    list.push(await h.startServer(Object.assign({}, opts, { args: ['--redis-url', r.url, ...(opts.args || [])] })));
  }
  for (const s of list) await waitRedisUp(s);
  return list;
}

async function clusterHealth(srv) {
  const res = await h.httpRequest(srv, 'GET', '/webrtc/health');
  return JSON.parse(res.text);
}

/** The instance of list that owns room (its health lists it), or null. */
async function ownerOf(list, room) {
  for (const S of list) {
    const b = await clusterHealth(S);
    if (b.components.cluster.owned_rooms.includes(room)) return S;
  }
  return null;
}

async function waitRedisUp(srv, timeoutMs = 5000) {
  await h.waitFor(async () => {
    const b = await clusterHealth(srv);
    return b.components.cluster && b.components.cluster.redis === 'ok';
  }, timeoutMs, 50, `instance on ${srv.port} connected to Redis`);
}

/** Runs fn(redis, instances) with n instances; stops everything afterwards. */
async function withCluster(n, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  const r = await startRedis(opts.redisArgs || []);
  if (opts.redisUrl) r.url = opts.redisUrl(r);
  let list = [];
  let failed = false;
  try {
    list = await startInstances(r, n, opts);
    await fn(r, list);
    // Instances the test did not kill stop cleanly (sanitizer builds: no leak, no error).
    h.closeAllClients();
    await Promise.all(list.filter((s) => !s.exit).map((s) => s.stopAndAssert()));
  } catch (e) {
    failed = true;
    for (const s of list) h.decorateError(e, s);
    throw e;
  } finally {
    h.closeAllClients();
    for (const s of list) {
      if (failed || !s.exit) {
        try { await s.stop({ signal: 'SIGKILL' }); } catch (_) { /* gone */ }
      }
      try { s.cleanup(); } catch (_) { /* ignore */ }
    }
    await r.cleanup();
  }
}

/** The chat texts c received, in order. */
function chats(c) {
  return c.all.filter((m) => m.type === 'chat-message').map((m) => `${m.seq}:${m.payload.text}`);
}

/**
 * Arguments that point instances at one new PostgreSQL database on the test
 * command's throwaway cluster (scripts/with-postgres.sh): several instances
 * are meant to share one (README "Several instances").
 */
let pgDbs = 0;
function sharedPg(prefix) {
  const port = process.env.HUDDLE_TEST_PG_PORT;
  assert.ok(port, 'HUDDLE_TEST_PG_PORT: run under scripts/with-postgres.sh (scripts/test.sh does)');
  const name = `${prefix}_${process.pid}_${++pgDbs}_${Date.now() % 100000}`;
  execFileSync('psql', ['-q', '-h', '127.0.0.1', '-p', port, '-U', 'huddle', '-d', 'postgres', '-c', `CREATE DATABASE ${name}`],
    { stdio: 'ignore' });
  return ['--database-url', `postgres://huddle@127.0.0.1:${port}/${name}`];
}

/** Connects with token to room on srv; resolves {c, first} (first: room-state, waiting-room-join or error). */
async function arrive(srv, room, token, opts = {}) {
  const c = await h.connect(srv, room, token, Object.assign({ timeoutMs: 5000 }, opts));
  const first = await c.next(undefined, 5000);
  return { c, first };
}

/**
 * What a join of token through srv comes to: 'room-state' (or the first
 * message's type), or the refusal's code: an HTTP refusal, or an error then
 * close after the upgrade (a room owned by another instance).
 */
async function outcome(srv, room, token, opts) {
  try {
    const { first } = await arrive(srv, room, token, opts);
    return first.type === 'error' ? first.payload.code : first.type;
  } catch (e) {
    return e instanceof h.HttpRefusal && e.body && e.body.error ? e.body.error.code : String(e);
  }
}

module.exports = { startRedis, startInstances, withCluster, clusterHealth, ownerOf, waitRedisUp, chats, freePort, sharedPg,
  arrive, outcome };
