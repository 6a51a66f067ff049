'use strict';
// Shared helpers for huddle's integration tests: start/stop the real binary,
// mint tokens, talk WebSocket (ws) and raw HTTP (net) to it.
//
// Only node built-ins and `ws`. Must run on Node 18 and Node 20.

const assert = require('node:assert');
const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');

const BIN = process.env.HUDDLE_BIN || path.resolve(__dirname, '../../build/huddle');
const SECRET = 'integration-test-secret-0123456789-abcdefghij'; // 45 bytes
const HOST = '127.0.0.1';

// ---------------------------------------------------------------- utilities

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls fn() until it returns a truthy value (or resolves to one). */
async function waitFor(fn, timeoutMs = 3000, intervalMs = 20, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
        (last instanceof Error ? `: ${last.message}` : ''));
    }
    await delay(intervalMs);
  }
}

/** Rejects with a clear message if p does not settle within ms. */
function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Environment for a child huddle process: sanitizer options and no stray HUDDLE_* settings. */
function childEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('HUDDLE_')) env[k] = v;
  }
  if (!env.ASAN_OPTIONS) env.ASAN_OPTIONS = 'detect_leaks=1:abort_on_error=0:exitcode=23';
  if (!env.UBSAN_OPTIONS) env.UBSAN_OPTIONS = 'halt_on_error=1:print_stacktrace=1:exitcode=24';
  return Object.assign(env, extra);
}

function freshDataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-it-'));
}

// ---------------------------------------------------------------- server

const TAIL_CHARS = 12000;

class Server {
  constructor(proc, dataDir, secret) {
    this.proc = proc;
    this.pid = proc.pid;
    this.dataDir = dataDir;
    this.secret = secret;
    this.port = 0;
    this.stderr = '';
    this.stdout = '';
    this.exit = null; // {code, signal} once exited
    this.exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
    this._logWaiters = [];
    proc.stderr.setEncoding('utf8');
    proc.stdout.setEncoding('utf8');
    proc.stderr.on('data', (d) => {
      this.stderr += d;
      this._logWaiters = this._logWaiters.filter((w) => !w.check());
    });
    proc.stdout.on('data', (d) => { this.stdout += d; });
  }

  get addr() { return `${HOST}:${this.port}`; }

  wsUrl(room, query) {
    return `ws://${this.addr}/webrtc/ws/${room}${query ? `?${query}` : ''}`;
  }

  /** Resolves with the match when the server's stderr matches re (already or later). */
  waitForLog(re, timeoutMs = 3000) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const m = this.stderr.match(re);
          if (m) {
            clearTimeout(w.timer);
            resolve(m);
            return true;
          }
          return false;
        },
      };
      if (w.check()) return;
      w.timer = setTimeout(() => {
        this._logWaiters = this._logWaiters.filter((x) => x !== w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for log ${re}`));
      }, timeoutMs);
      if (w.timer.unref) w.timer.unref();
      this._logWaiters.push(w);
    });
  }

  /** VmRSS of the server process in kB (Linux). */
  rssKb() {
    const s = fs.readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const m = s.match(/^VmRSS:\s+(\d+)\s+kB/m);
    assert.ok(m, 'VmRSS in /proc/<pid>/status');
    return Number(m[1]);
  }

  /** Removes the data directory if startServer created it. */
  cleanup() {
    if (this.ownDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
  }

  stderrTail(n = TAIL_CHARS) {
    return this.stderr.length > n ? `...${this.stderr.slice(-n)}` : this.stderr;
  }

  /** Sends sig (SIGTERM) and resolves {code, signal, ms}. Kills with SIGKILL after timeoutMs. */
  async stop({ signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
    const t0 = Date.now();
    if (!this.exit) {
      try { this.proc.kill(signal); } catch (_) { /* already gone */ }
      let timer;
      const killed = await Promise.race([
        this.exited.then(() => false),
        new Promise((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
      ]);
      clearTimeout(timer);
      if (killed) {
        try { this.proc.kill('SIGKILL'); } catch (_) { /* gone */ }
        await this.exited;
        return { code: null, signal: 'SIGKILL', ms: Date.now() - t0, hung: true };
      }
    }
    await this._drained;
    return { code: this.exit.code, signal: this.exit.signal, ms: Date.now() - t0, hung: false };
  }

  /** stop() and assert a clean exit (code 0, no signal): sanitizer reports make it non-zero. */
  async stopAndAssert(opts) {
    const r = await this.stop(opts);
    assert.ok(!r.hung, `server did not exit within ${(opts && opts.timeoutMs) || 5000} ms of SIGTERM`);
    assert.strictEqual(r.signal, null, `server was killed by ${r.signal}`);
    assert.strictEqual(r.code, 0, `server exit code ${r.code} (23 = ASan/LSan, 24 = UBSan)`);
    return r;
  }
}

/**
 * Spawns huddle with --listen 127.0.0.1:0 --data-dir <fresh> --jwt-secret SECRET --log-level debug.
 * opts.args: extra arguments; opts.env: extra environment; opts.dataDir: reuse a directory;
 * opts.secret: a different secret, or null to omit --jwt-secret (generated secret).
 */
async function startServer(opts = {}) {
  const dataDir = opts.dataDir || freshDataDir();
  const secret = opts.secret === undefined ? SECRET : opts.secret;
  const args = ['--listen', `${HOST}:0`, '--data-dir', dataDir, '--log-level', opts.logLevel || 'debug'];
  if (secret !== null) args.push('--jwt-secret', secret);
  // The seed's rate limits (100 WebSocket messages a minute...) would trip in
  // tests that are about something else; tests of rate limiting pass
  // opts.rateLimits: true (the defaults) or their own --rate-* flags.
  if (!opts.rateLimits) {
    args.push('--rate-websocket-message', '1000000/1m', '--rate-room-create', '1000000/1m',
      '--rate-api-call', '1000000/1m', '--rate-chat-message', '1000000/1m',
      '--rate-reaction', '1000000/1m', '--rate-file-share', '1000000/1m');
  }
  args.push(...(opts.args || []));
  // A binary being relinked right now (EACCES/ETXTBSY) is retried for a few seconds.
  const deadline = Date.now() + 8000;
  for (;;) {
    try {
      return await spawnServer(args, dataDir, secret, opts);
    } catch (e) {
      if (!(e && (e.code === 'EACCES' || e.code === 'ETXTBSY')) || Date.now() > deadline) throw e;
      await delay(200);
    }
  }
}

async function spawnServer(args, dataDir, secret, opts) {
  const proc = spawn(BIN, args, { env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = new Server(proc, dataDir, secret);
  srv.ownDataDir = !opts.dataDir;
  srv._drained = new Promise((resolve) => {
    let open = 2;
    const done = () => { if (--open === 0) resolve(); };
    proc.stderr.on('end', done);
    proc.stdout.on('end', done);
  });
  let timer;
  try {
    const m = await new Promise((resolve, reject) => {
      proc.on('error', reject);
      srv.exited.then((e) => reject(new Error(
        `huddle exited before listening (code ${e.code}, signal ${e.signal})\n${srv.stderr}`)));
      timer = setTimeout(() => reject(new Error(
        `huddle did not log "listening" within 10 s (bin ${BIN})\n${srv.stderr}`)), 10000);
      srv.waitForLog(/listening addr=127\.0\.0\.1:(\d+)/, 10500).then(resolve, () => {});
    });
    srv.port = Number(m[1]);
  } catch (e) {
    try { proc.kill('SIGKILL'); } catch (_) { /* gone */ }
    throw e;
  } finally {
    clearTimeout(timer);
  }
  assert.ok(srv.port > 0 && srv.port < 65536);
  return srv;
}

function decorateError(err, srv) {
  const tail = `\n----- huddle stderr (pid ${srv.pid}, port ${srv.port}, data dir ${srv.dataDir}) -----\n${srv.stderrTail()}\n----- end stderr -----`;
  try {
    if (err && typeof err === 'object') err.message = `${err.message}${tail}`;
  } catch (_) {
    process.stderr.write(tail);
  }
  return err;
}

/**
 * Runs fn(srv) against a fresh server; stops it afterwards and asserts exit code 0.
 * On any failure the server's stderr is appended to the error.
 */
async function withServer(opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  const srv = await startServer(opts);
  let failure = null;
  try {
    await fn(srv);
  } catch (e) {
    failure = e;
  }
  let stopErr = null;
  try {
    closeAllClients();
    await srv.stopAndAssert(opts.stop);
  } catch (e) {
    stopErr = e;
  }
  if (failure) throw decorateError(failure, srv);
  if (stopErr) throw decorateError(stopErr, srv);
  srv.cleanup(); // kept on failure, for a look at it
  return srv;
}

/** A subtest whose failure carries the server's stderr. */
function sub(t, name, srv, fn) {
  return t.test(name, async (st) => {
    try {
      await fn(st);
    } catch (e) {
      throw decorateError(e, srv);
    }
  });
}

// ---------------------------------------------------------------- tokens

const b64u = (buf) => Buffer.from(buf).toString('base64')
  .replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

/** Signs header.payload (both strings, already JSON) with HMAC; returns the compact JWS. */
function signRaw(secret, headerJson, payloadJson, hash = 'sha256') {
  const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
  const sig = crypto.createHmac(hash, secret).update(input).digest();
  return `${input}.${b64u(sig)}`;
}

const nowS = () => Math.floor(Date.now() / 1000);

/** HS256 JWT with exp = now + 3600 unless claims say otherwise (exp: undefined removes it). */
function mintToken(secret, claims = {}, { alg = 'HS256', header } = {}) {
  const c = Object.assign({ exp: nowS() + 3600, iat: nowS() }, claims);
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  const h = header || { alg, typ: 'JWT' };
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg] || 'sha256';
  return signRaw(secret, JSON.stringify(h), JSON.stringify(c), hash);
}

/** Unsigned token ("alg": "none"), empty signature segment unless sig given. */
function noneToken(claims = {}, sig = '') {
  const c = Object.assign({ exp: nowS() + 3600 }, claims);
  return `${b64u(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64u(JSON.stringify(c))}.${sig}`;
}

// ---------------------------------------------------------------- WebSocket client

const openClients = new Set();

class Client {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.all = []; // every message, in arrival order
    this.waiters = [];
    this.pings = 0;
    this.close = null; // {code, reason}
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.close = { code, reason: reason.toString() };
        openClients.delete(this);
        resolve(this.close);
        this._wake();
      });
    });
    ws.on('message', (data, isBinary) => {
      let m;
      if (isBinary) {
        m = { __binary: true, data };
      } else {
        const text = data.toString();
        try { m = JSON.parse(text); } catch (_) { m = { __unparsable: text }; }
      }
      this.all.push(m);
      this.queue.push(m);
      this._wake();
    });
    ws.on('ping', () => { this.pings++; });
    ws.on('error', (e) => { this.lastError = e; });
    openClients.add(this);
  }

  _wake() {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** The next message (of type, if given; others stay queued). */
  next(type, timeoutMs = 2000) {
    return this.nextWhere(type ? (m) => m.type === type : null, timeoutMs, type);
  }

  /** The first queued or arriving message for which pred(m) is true (others stay queued). */
  async nextWhere(pred, timeoutMs = 2000, what) {
    const label = what || (pred ? 'a matching message' : 'a message');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = pred ? this.queue.findIndex(pred) : 0;
      if (i >= 0 && i < this.queue.length) return this.queue.splice(i, 1)[0];
      const queued = JSON.stringify(this.queue).slice(0, 500);
      if (this.close) {
        throw new Error(`connection closed (${this.close.code} ${this.close.reason}) while waiting for ${label}; queued: ${queued}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${label} within ${timeoutMs} ms; queued: ${queued}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Asserts that no message is queued and none arrives within ms. */
  async expectNone(ms = 150) {
    assert.deepStrictEqual(this.queue, [], 'unexpected queued message(s)');
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.waiters.push(() => { if (this.queue.length) { clearTimeout(timer); resolve(); } });
    });
    assert.deepStrictEqual(this.queue, [], 'unexpected message(s) arrived');
  }

  send(msg, opts) {
    this.ws.send(typeof msg === 'string' || Buffer.isBuffer(msg) ? msg : JSON.stringify(msg), opts);
  }

  waitClose(timeoutMs = 3000) {
    return withTimeout(this.closed, timeoutMs, 'WebSocket close');
  }

  async end(timeoutMs = 3000) {
    if (!this.close) {
      if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
      try {
        await this.waitClose(timeoutMs);
      } catch (e) {
        this.ws.terminate();
        throw e;
      }
    }
    return this.close;
  }

  terminate() {
    this.ws.terminate();
  }

  /**
   * A ping round trip: resolves once the server has answered a ping sent now. The server
   * writes frames to a connection in order, so everything it sent this client before it
   * read the ping has arrived (and is queued) when this resolves.
   */
  sync(timeoutMs = 2000) {
    const data = crypto.randomBytes(8);
    let onPong;
    return withTimeout(new Promise((resolve) => {
      onPong = (d) => { if (Buffer.compare(d, data) === 0) resolve(); };
      this.ws.on('pong', onPong);
      this.ws.ping(data);
    }), timeoutMs, 'pong (sync)').finally(() => this.ws.off('pong', onPong));
  }

  /** After sync(), asserts that no queued message matches pred (what names it in the failure). */
  async expectNoneWhere(pred, what = 'matching message') {
    await this.sync();
    const hits = this.queue.filter(pred);
    assert.deepStrictEqual(hits, [], `unexpected ${what}`);
  }

  /**
   * Checks the envelope of every message received so far: type, integer seq and ts;
   * room messages (not room-state or error) have a seq greater than anything seen before;
   * room-state and error never go below the last room message.
   */
  assertEnvelopes() {
    let max = -1;
    let lastRoom = -1;
    const now = Date.now();
    for (const m of this.all) {
      assert.ok(!m.__binary && !m.__unparsable, `non-JSON message ${JSON.stringify(m)}`);
      assert.strictEqual(typeof m.type, 'string', `type on ${JSON.stringify(m)}`);
      assert.ok(Number.isInteger(m.seq) && m.seq >= 0, `integer seq on ${JSON.stringify(m)}`);
      assert.ok(Number.isInteger(m.ts), `integer ts on ${JSON.stringify(m)}`);
      assert.ok(Math.abs(m.ts - now) < 120000, `ts ${m.ts} is Unix ms near now (${now})`);
      assert.strictEqual(typeof m.from, 'string', `from on ${JSON.stringify(m)}`);
      assert.ok(m.payload && typeof m.payload === 'object', `payload object on ${JSON.stringify(m)}`);
      if (m.type === 'room-state' || m.type === 'error') {
        assert.ok(m.seq >= lastRoom, `${m.type} seq ${m.seq} below last room message seq ${lastRoom}`);
      } else {
        assert.ok(m.seq > max, `${m.type} seq ${m.seq} not greater than ${max} (seen: ${this.all.map((x) => `${x.type}:${x.seq}`).join(' ')})`);
        lastRoom = m.seq;
      }
      if (m.seq > max) max = m.seq;
    }
  }
}

/** Error thrown when the server refuses the upgrade with an HTTP response. */
class HttpRefusal extends Error {
  constructor(status, headers, text) {
    super(`upgrade refused with HTTP ${status}: ${text.slice(0, 300)}`);
    this.status = status;
    this.headers = headers;
    this.text = text;
    try { this.body = JSON.parse(text); } catch (_) { this.body = null; }
  }
}

/**
 * Connects to /webrtc/ws/<room> with token via 'header' (default), 'query' or 'none'.
 * Resolves with a Client after the upgrade; rejects with HttpRefusal (status, body) on an
 * HTTP refusal, or the socket error.
 */
function connect(srv, room, token, { via = 'header', headers = {}, query, timeoutMs = 3000 } = {}) {
  const port = typeof srv === 'number' ? srv : srv.port;
  const h = Object.assign({}, headers);
  let q = query || '';
  if (token != null && via === 'header') h.Authorization = `Bearer ${token}`;
  if (token != null && via === 'query') q = `${q ? `${q}&` : ''}token=${encodeURIComponent(token)}`;
  const url = `ws://${HOST}:${port}/webrtc/ws/${room}${q ? `?${q}` : ''}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: h, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    const client = new Client(ws);
    let settled = false;
    const fail = (e) => {
      if (settled) return;
      settled = true;
      openClients.delete(client);
      reject(e);
    };
    ws.on('open', () => {
      if (settled) return;
      settled = true;
      resolve(client);
    });
    ws.on('unexpected-response', (req, res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        fail(new HttpRefusal(res.statusCode, res.headers, Buffer.concat(chunks).toString()));
        req.destroy();
      });
      res.on('error', fail);
    });
    ws.on('error', fail);
  });
}

/** Asserts that connecting is refused before the upgrade with status and error code. */
async function expectRefused(srv, room, token, status, code, opts) {
  let err;
  try {
    const c = await connect(srv, room, token, opts);
    c.terminate();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected HTTP ${status} ${code}, but the upgrade succeeded`);
  assert.ok(err instanceof HttpRefusal, `expected an HTTP refusal, got ${err && err.stack}`);
  assert.strictEqual(err.status, status, `status for ${code}: ${err.text}`);
  assert.ok(err.body && err.body.error, `JSON error body: ${err.text}`);
  if (code) assert.strictEqual(err.body.error.code, code, `error code: ${err.text}`);
  assert.strictEqual(typeof err.body.error.message, 'string');
  assert.strictEqual(typeof err.body.error.recovery, 'string');
  assert.match(String(err.headers['content-type']), /application\/json/);
  return err;
}

/** Connects and takes the room-state (which must be the first message). */
async function join(srv, room, user, claims = {}, opts = {}) {
  const token = mintToken((typeof srv === 'object' && srv.secret) || SECRET, Object.assign({ sub: user }, claims));
  const c = await connect(srv, room, token, opts);
  const st = await c.next(undefined, opts.timeoutMs || 3000);
  assert.strictEqual(st.type, 'room-state', `first message is room-state, got ${JSON.stringify(st).slice(0, 300)}`);
  c.state = st;
  c.user = user;
  return c;
}

function closeAllClients() {
  for (const c of openClients) {
    try { c.ws.terminate(); } catch (_) { /* ignore */ }
  }
  openClients.clear();
}

// ---------------------------------------------------------------- HTTP

/** GET/POST over http.request (no agent reuse). Resolves {status, headers, text, json}. */
function httpRequest(srv, method, urlPath, { headers = {}, body, timeoutMs = 3000 } = {}) {
  const port = typeof srv === 'number' ? srv : srv.port;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: HOST, port, method, path: urlPath, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (d) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json = null;
        try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`HTTP ${method} ${urlPath} timed out`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const httpGet = (srv, p, opts) => httpRequest(srv, 'GET', p, opts);

/**
 * A REST call with 'Authorization: Bearer <token>' (none when token is null). body: an
 * object (sent as JSON with Content-Type application/json) or a string (sent as is, with
 * opts.contentType or application/json).
 */
function api(srv, method, urlPath, token, body, { contentType, headers = {} } = {}) {
  const hd = Object.assign({}, headers);
  if (token) hd.Authorization = `Bearer ${token}`;
  let data;
  if (body !== undefined) {
    data = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    hd['Content-Type'] = contentType || 'application/json';
  }
  return httpRequest(srv, method, urlPath, { headers: hd, body: data });
}

/** Asserts a REST error answer: status and error code (body {error: {code, message, recovery}}). */
function assertApiError(r, status, code) {
  assert.strictEqual(r.status, status, `HTTP status (want ${status} ${code}): ${r.text}`);
  assert.ok(r.json && r.json.error, `JSON error body: ${r.text}`);
  if (code) assert.strictEqual(r.json.error.code, code, `error code: ${r.text}`);
  assert.strictEqual(typeof r.json.error.message, 'string');
  assert.strictEqual(typeof r.json.error.recovery, 'string');
  return r.json.error;
}

let wsRefId = 0;
/**
 * Sends msg (an object; an id is added) on c and resolves the error that answers it,
 * asserting its code (a string, or an array of acceptable codes).
 */
async function wsRefused(c, msg, code, timeoutMs = 2000) {
  const id = `t${++wsRefId}`;
  c.send(Object.assign({}, msg, { id }));
  const e = await c.nextWhere((m) => m.type === 'error' && m.ref === id, timeoutMs, `error for ${msg.type} (${id})`);
  const codes = Array.isArray(code) ? code : [code];
  assert.ok(codes.includes(e.payload.code), `${msg.type} refused with ${codes.join('|')}, got ${JSON.stringify(e.payload)}`);
  assert.strictEqual(e.payload.ref, id);
  return e;
}

async function health(srv) {
  const r = await httpGet(srv, '/webrtc/health');
  assert.ok(r.json, `health JSON: ${r.text}`);
  return r.json;
}

/**
 * Parses as many complete HTTP/1.x responses as buf holds.
 * Returns {responses: [{version, status, reason, headers, body, text, json, end}], rest}.
 */
function parseResponses(buf) {
  const responses = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const head = buf.slice(off, end).toString('latin1');
    const lines = head.split('\r\n');
    const m = lines[0].match(/^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/);
    if (!m) throw new Error(`bad status line: ${JSON.stringify(lines[0])}`);
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      const k = l.slice(0, i).trim().toLowerCase();
      const v = l.slice(i + 1).trim();
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    }
    const len = headers['content-length'] === undefined ? 0 : Number(headers['content-length']);
    if (buf.length < end + 4 + len) break;
    const body = buf.slice(end + 4, end + 4 + len);
    const text = body.toString();
    let json = null;
    try { json = JSON.parse(text); } catch (_) { /* not JSON */ }
    off = end + 4 + len;
    responses.push({ version: m[1], status: Number(m[2]), reason: m[3], headers, body, text, json, end: off });
  }
  return { responses, rest: buf.slice(off) };
}

/** A raw TCP connection to the server with helpers to read whole HTTP responses. */
class RawConn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.closedFlag = false;
    this.waiters = [];
    this.error = null;
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._wake(); });
    sock.on('end', () => { this.ended = true; this._wake(); });
    sock.on('close', () => { this.closedFlag = true; this._wake(); });
    sock.on('error', (e) => { this.error = e; this._wake(); });
  }

  _wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  _wait(ms) {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.waiters.push(() => { clearTimeout(t); resolve(); });
    });
  }

  write(data) {
    return new Promise((resolve, reject) => this.sock.write(data, (e) => (e ? reject(e) : resolve())));
  }

  /** Resolves with the next n complete responses (consumed from the buffer). */
  async responses(n = 1, timeoutMs = 2000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { responses } = parseResponses(this.buf);
      if (responses.length >= n) {
        this.buf = this.buf.slice(responses[n - 1].end);
        return responses.slice(0, n);
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.ended || this.closedFlag) {
        throw new Error(`expected ${n} response(s), got ${responses.length} within ${timeoutMs} ms` +
          `${this.ended || this.closedFlag ? ' (connection closed)' : ''}; bytes: ${JSON.stringify(this.buf.toString('latin1').slice(0, 400))}`);
      }
      await this._wait(left);
    }
  }

  async response(timeoutMs) { return (await this.responses(1, timeoutMs))[0]; }

  /** Resolves true once the server has closed (FIN or reset), false on timeout. */
  async waitClosed(timeoutMs = 2000) {
    const deadline = Date.now() + timeoutMs;
    while (!(this.ended || this.closedFlag || this.error)) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this._wait(left);
    }
    return true;
  }

  destroy() { this.sock.destroy(); }
}

function rawConnect(srv) {
  const port = typeof srv === 'number' ? srv : srv.port;
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: HOST, port });
    const conn = new RawConn(sock);
    sock.once('connect', () => resolve(conn));
    sock.once('error', reject);
  });
}

/**
 * Sends exact bytes (string or Buffer, or an array of them written separately) and reads
 * until the server closes or timeoutMs passes. Resolves
 * {raw, text, responses, closed, timedOut, ms}.
 */
async function rawRequest(srv, data, { timeoutMs = 2000 } = {}) {
  const t0 = Date.now();
  const c = await rawConnect(srv);
  const parts = Array.isArray(data) ? data : [data];
  for (const p of parts) {
    try { await c.write(p); } catch (_) { break; }
  }
  const closed = await c.waitClosed(timeoutMs);
  c.destroy();
  const { responses } = parseResponses(c.buf);
  return {
    raw: c.buf, text: c.buf.toString('latin1'), responses, closed, timedOut: !closed, ms: Date.now() - t0,
  };
}

// ---------------------------------------------------------------- raw WebSocket frames

/** Encodes one WebSocket frame. Client frames are masked unless mask: false. */
function encodeFrame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0 } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = data.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (!mask) return Buffer.concat([head, data]);
  head[1] |= 0x80;
  const key = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = data[i] ^ key[i & 3];
  return Buffer.concat([head, key, body]);
}

/** Decodes complete frames from buf: {frames: [{fin, opcode, payload, closeCode?}], rest}. */
function decodeFrames(buf) {
  const frames = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off];
    const b1 = buf[off + 1];
    let len = b1 & 0x7f;
    let p = off + 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      p = off + 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      p = off + 10;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked) p += 4;
    if (buf.length < p + len) break;
    const payload = buf.slice(p, p + len);
    const f = { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload };
    if (f.opcode === 8 && len >= 2) {
      f.closeCode = payload.readUInt16BE(0);
      f.closeReason = payload.slice(2).toString();
    }
    frames.push(f);
    off = p + len;
  }
  return { frames, rest: buf.slice(off) };
}

/**
 * Opens a WebSocket by hand over a raw socket. Resolves {conn, response, frames()}
 * where response is the parsed HTTP response head and nextFrame(timeout) reads frames.
 * opts.headers replaces/extends the handshake headers (null removes one);
 * opts.extra is written in the same write as the handshake.
 */
async function rawWsConnect(srv, room, token, { headers = {}, extra, version = '1.1' } = {}) {
  const hs = {
    Host: `${HOST}:${srv.port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
  };
  if (token) hs.Authorization = `Bearer ${token}`;
  Object.assign(hs, headers);
  let req = `GET /webrtc/ws/${room} HTTP/${version}\r\n`;
  for (const [k, v] of Object.entries(hs)) if (v !== null) req += `${k}: ${v}\r\n`;
  req += '\r\n';
  const conn = await rawConnect(srv);
  await conn.write(extra ? Buffer.concat([Buffer.from(req), extra]) : req);
  // The head alone: a 101 has no Content-Length and is followed by frames.
  const deadline = Date.now() + 3000;
  let end;
  while ((end = conn.buf.indexOf('\r\n\r\n')) < 0) {
    if (Date.now() > deadline || conn.ended || conn.closedFlag) {
      throw new Error(`no handshake response: ${JSON.stringify(conn.buf.toString('latin1'))}`);
    }
    await conn._wait(deadline - Date.now());
  }
  let response;
  if (/^HTTP\/1\.1 101 /.test(conn.buf.toString('latin1', 0, 20))) {
    response = parseResponses(Buffer.concat([conn.buf.slice(0, end), Buffer.from('\r\nContent-Length: 0\r\n\r\n')])).responses[0];
    conn.buf = conn.buf.slice(end + 4);
  } else {
    response = await conn.response();
  }
  const ws = {
    conn,
    response,
    key: hs['Sec-WebSocket-Key'],
    send: (frame) => conn.write(frame),
    async nextFrame(timeoutMs = 2000) {
      const dl = Date.now() + timeoutMs;
      for (;;) {
        const { frames } = decodeFrames(conn.buf);
        if (frames.length) {
          const f = frames[0];
          const hl = 2 + (f.payload.length < 126 ? 0 : f.payload.length < 65536 ? 2 : 8) + (f.masked ? 4 : 0);
          conn.buf = conn.buf.slice(hl + f.payload.length);
          return f;
        }
        if (conn.ended || conn.closedFlag) throw new Error('connection closed while waiting for a frame');
        const left = dl - Date.now();
        if (left <= 0) throw new Error(`no frame within ${timeoutMs} ms`);
        await conn._wait(left);
      }
    },
    /** Skips text/ping frames until a close frame; resolves it. */
    async nextClose(timeoutMs = 2000) {
      const dl = Date.now() + timeoutMs;
      for (;;) {
        const f = await this.nextFrame(Math.max(1, dl - Date.now()));
        if (f.opcode === 8) return f;
      }
    },
  };
  return ws;
}

// ---------------------------------------------------------------- misc

/** Runs `huddle <args>` synchronously with the sanitizer environment. */
function runHuddle(args, { env, timeoutMs = 10000 } = {}) {
  return spawnSync(BIN, args, { env: childEnv(env), encoding: 'utf8', timeout: timeoutMs });
}

/** A syntactically plausible SDP of about `size` bytes. */
function sdp(size = 200, tag = 'x') {
  let s = `v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=tag:${tag}\r\n`;
  while (s.length < size) s += 'a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n';
  return s;
}

module.exports = {
  BIN,
  SECRET,
  HOST,
  WebSocket,
  delay,
  waitFor,
  withTimeout,
  childEnv,
  freshDataDir,
  startServer,
  withServer,
  sub,
  decorateError,
  b64u,
  signRaw,
  mintToken,
  noneToken,
  nowS,
  Client,
  HttpRefusal,
  connect,
  expectRefused,
  join,
  closeAllClients,
  httpRequest,
  httpGet,
  health,
  parseResponses,
  rawConnect,
  rawRequest,
  encodeFrame,
  decodeFrames,
  rawWsConnect,
  runHuddle,
  sdp,
  api,
  assertApiError,
  wsRefused,
};
