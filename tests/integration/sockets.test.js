'use strict';
// Hostile-client tests of the socket layer on uv_poll_t (ADR 0018,
// src/net/server.c): the sendq, writability, streamed downloads, half-closes,
// resets, running out of descriptors. Written by the review of that change;
// each test names the defect it guards against.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const h = require('./helpers');
const f = require('./feature_helpers');

const MiB = 1024 * 1024;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

const { shareFile } = f;

function textData(n) {
  const line = Buffer.from('the quick brown fox jumps over the lazy dog 0123456789\n');
  const data = Buffer.alloc(n);
  for (let o = 0; o < data.length; o += line.length) line.copy(data, o, 0, Math.min(line.length, data.length - o));
  return data;
}

function connectRaw(srv) {
  const [host, port] = srv.addr.split(':');
  const s = net.connect(Number(port), host);
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.once('connect', () => resolve(s));
  });
}

function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * A stand-in clamd on a UNIX socket: answers zPING, and zINSTREAM with
 * "stream: OK" at once, or, while hold is set, only when release() is called
 * (the thread-pool thread that scans waits for it meanwhile).
 */
function fakeClamd(sockPath) {
  const held = [];
  const state = { hold: false, scans: 0 };
  const server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    let done = false;
    s.on('error', () => {});
    s.on('data', (d) => {
      if (done) return;
      buf = Buffer.concat([buf, d]);
      if (buf.subarray(0, 6).toString() === 'zPING\0') { done = true; s.end('PONG\0'); return; }
      if (buf.length < 10 || buf.subarray(0, 10).toString('latin1') !== 'zINSTREAM\0') return;
      let o = 10;
      for (;;) {
        if (buf.length < o + 4) return;
        const n = buf.readUInt32BE(o);
        if (n === 0) break;
        if (buf.length < o + 4 + n) return;
        o += 4 + n;
      }
      done = true;
      state.scans++;
      if (state.hold) held.push(s);
      else s.end('stream: OK\0');
    });
  });
  return {
    state,
    listen: () => new Promise((resolve) => server.listen(sockPath, resolve)),
    heldCount: () => held.length,
    release: () => { for (const s of held.splice(0)) s.end('stream: OK\0'); },
    close: () => new Promise((resolve) => { for (const s of held.splice(0)) s.destroy(); server.close(resolve); }),
  };
}

// Defect: on_poll() (src/net/server.c) calls the stream's on_drained whenever
// the sendq empties while a streamed response is attached, even if no chunk
// of that stream was waiting in it (here the sendq held earlier, pipelined
// answers and the download's head). files.c's on_download_drained then starts
// a second uv_fs_read on the same uv_fs_t while the first is still queued in
// the thread pool. The pool is kept busy by a virus scan that clamd has not
// answered yet: four scans, libuv's default pool of four threads (set
// explicitly so that the environment cannot change it).
const POOL = 4;
test('a download pipelined behind answers the socket held back, while the thread pool is busy: the file arrives whole, once', async () => {
  const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'nr-clamd-'));
  const sock = path.join(dir, 'clamd.sock');
  const clamd = fakeClamd(sock);
  await clamd.listen();
  try {
    await h.withServer({ args: ['--max-send-queue', String(256 * MiB), '--clamd-socket', sock], env: { UV_THREADPOOL_SIZE: String(POOL) } }, async (srv) => {
      const data = textData(700 * 1024); // three reads of 256 KiB
      const { url, btok, alice } = await shareFile(srv, 'pipedl', data);
      // Uploads whose scans clamd holds: every pool thread (libuv's default
      // is 4) waits for one, so the download's first read waits in the queue.
      clamd.state.hold = true;
      const atok = f.tok(srv, { sub: 'alice', room: 'pipedl' });
      const patches = [];
      for (let k = 0; k < POOL; k++) {
        const other = Buffer.from(`another file ${k}\n`);
        alice.send({ type: 'file-share-offer', id: `o2${k}`, payload: { name: `g${k}.txt`, size: other.length, mime_type: 'text/plain', sha256: sha256(other) } });
        const echo = await alice.nextWhere((x) => x.ref === `o2${k}`, 3000, 'offer echo');
        patches.push(f.rest(srv, 'PATCH', echo.payload.upload_url, {
          token: atok, body: other,
          headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
        }));
      }
      await h.waitFor(() => clamd.heldCount() === POOL, 5000, 10, 'the scans reached clamd');

      const one = await h.httpRequest(srv, 'GET', '/webrtc/openapi.json');
      const n = Math.ceil((8 * MiB) / Buffer.byteLength(one.text));
      const s = await connectRaw(srv);
      s.pause();
      let req = '';
      for (let i = 0; i < n; i++) req += 'GET /webrtc/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n';
      req += `GET ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${btok}\r\nConnection: close\r\n\r\n`;
      s.write(req);
      await h.delay(500); // all answered; the socket holds back most of it
      const chunks = [];
      s.on('data', (d) => chunks.push(d));
      const ended = new Promise((resolve) => { s.on('end', resolve); s.on('close', resolve); s.on('error', resolve); });
      s.resume();
      // Everything before the file's bytes arrives while its first read waits in the pool.
      await h.waitFor(() => Buffer.concat(chunks).includes('Content-Disposition: attachment'), 10000, 5, 'download head');
      await h.delay(300);
      clamd.release();
      await Promise.allSettled(patches);
      await Promise.race([ended, h.delay(5000)]);
      s.destroy();
      await h.delay(200);
      assert.strictEqual(srv.exit, null, `the server is still running (exit ${JSON.stringify(srv.exit)})`);
      const all = Buffer.concat(chunks);
      const at = all.indexOf('Content-Disposition: attachment');
      const body = all.subarray(all.indexOf('\r\n\r\n', at) + 4);
      assert.strictEqual(body.length, data.length, 'the download is whole, once');
      assert.ok(body.equals(data));
      const again = await h.httpRequest(srv, 'GET', '/webrtc/health');
      assert.strictEqual(again.status, 200);
    });
  } finally {
    await clamd.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** CPU time (user + system, clock ticks) the process used so far. */
function cpuTicks(pid) {
  const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f2 = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return Number(f2[11]) + Number(f2[12]); // utime, stime (fields 14 and 15)
}

// Out of descriptors (ADR 0018: the listener pauses 100 ms on EMFILE instead
// of spinning): clients over the limit wait in the backlog, the server keeps
// serving the ones it has, does not burn the CPU, and accepts again once
// clients leave.
test('out of descriptors: no spin, existing clients served, new ones accepted once others leave', async () => {
  await h.withServer({}, async (srv) => {
    const a = await h.join(srv, 'fdroom', 'a');
    const b = await h.join(srv, 'fdroom', 'b');
    await a.next('user-joined');
    const base = fdCount(srv.pid);
    const limit = base + 20;
    execFileSync('prlimit', ['--pid', String(srv.pid), `--nofile=${limit}:${limit}`]);
    const socks = [];
    for (let i = 0; i < 60; i++) {
      const s = await connectRaw(srv); // the kernel completes the handshake from the backlog
      s.on('error', () => {});
      socks.push(s);
    }
    await h.delay(300);
    const t0 = cpuTicks(srv.pid);
    await h.delay(1000);
    const used = cpuTicks(srv.pid) - t0;
    // 100 ticks a second is one core; a paused listener uses next to nothing.
    assert.ok(used < 30, `CPU while out of descriptors: ${used} ticks in 1 s`);
    // The clients it has are served.
    a.send({ type: 'offer', to: 'b', payload: { type: 'offer', sdp: 'v=0\r\n' } });
    assert.strictEqual((await b.next('offer')).from, 'a');
    // Clients leave: the ones that waited are accepted and answered. Fifty
    // leave so that the ten still open and the health request fit in the
    // twenty descriptors (forty leaving left exactly twenty open sockets
    // ahead of it in the backlog: whether it got in depended on timing).
    for (const s of socks.splice(0, 50)) s.destroy();
    await h.delay(300);
    const r = await h.httpRequest(srv, 'GET', '/webrtc/health', { timeoutMs: 5000 });
    assert.strictEqual(r.status, 200);
    for (const s of socks) s.destroy();
    await h.waitFor(() => fdCount(srv.pid) <= base + 2, 5000, 50, 'descriptors given back');
    a.ws.close(); b.ws.close();
  });
});

/** A GET on its own socket that reads nothing: resolves the socket once the server answered into it. */
async function pausedGet(srv, urlPath, headers = {}) {
  const s = await connectRaw(srv);
  s.on('error', () => {});
  s.pause();
  s.write(`GET ${urlPath} HTTP/1.1\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
  return s;
}

// Cut mid-download, three ways, while the server holds a chunk in the sendq
// (the reader paused): a reset, a plain close, and a half-close. Every one
// must give back the file's descriptor and the socket's, and the server must
// go on serving the same file.
test('downloads cut by reset, close or half-close while the socket holds output back: no descriptor kept', async () => {
  await h.withServer({ args: ['--max-send-queue', String(64 * 1024)] }, async (srv) => {
    const data = textData(12 * MiB);
    const { url, btok } = await shareFile(srv, 'cutdl', data);
    await h.delay(200);
    const before = fdCount(srv.pid);
    for (const how of ['reset', 'destroy', 'halfclose', 'reset', 'destroy']) {
      const s = await pausedGet(srv, url, { Authorization: `Bearer ${btok}` });
      await h.delay(300); // the server filled the socket and waits for writability
      assert.ok(fdCount(srv.pid) >= before + 2, 'socket and file open while the download is paused');
      if (how === 'reset') s.resetAndDestroy();
      else if (how === 'destroy') s.destroy();
      else { s.end(); await h.delay(100); s.destroy(); }
    }
    await h.waitFor(() => fdCount(srv.pid) <= before, 5000, 50, `descriptors back to ${before}`);
    const whole = await h.httpRequest(srv, 'GET', url, { headers: { Authorization: `Bearer ${btok}` }, timeoutMs: 20000 });
    assert.strictEqual(whole.status, 200);
  });
});

// A WebSocket reader that stops reading with lots queued for it, then resets
// its connection: the server notices (the poll watches writability), drops
// the queue, and tells the room the member left.
test('a paused WebSocket reader with a large sendq resets: dropped, room told, no descriptor kept', async () => {
  await h.withServer({ args: ['--max-send-queue', String(64 * MiB)] }, async (srv) => {
    const slow = await h.join(srv, 'rst', 'slow');
    const sender = await h.join(srv, 'rst', 'sender');
    await slow.next('user-joined');
    const before = fdCount(srv.pid);
    slow.ws._socket.pause();
    for (let i = 0; i < 150; i++) {
      sender.send({ type: 'offer', to: 'slow', payload: { type: 'offer', sdp: h.sdp(60 * 1024, `n${i}`) } });
      while (sender.ws.bufferedAmount > 2 * MiB) await h.delay(2);
    }
    await h.delay(300);
    slow.ws._socket.resetAndDestroy();
    const left = await sender.nextWhere((m) => m.type === 'user-left' || (m.type === 'participant-update' && m.payload && m.payload.user_id === 'slow'), 5000, 'slow gone');
    assert.ok(left);
    await h.waitFor(() => fdCount(srv.pid) <= before - 1, 5000, 50, 'the reset socket closed');
    sender.send({ type: 'chat', payload: { text: 'still here' } });
  });
});

// SIGTERM while clients have output the socket did not take: a paused
// WebSocket reader, a paused download, and a paused pipelined reader. The
// server must exit (code 0; no leak in the sanitizer build) within the
// bounds (2 s per paused peer, --shutdown-timeout overall).
test('SIGTERM with paused readers holding output: clean exit', async () => {
  const srv = await h.startServer({ args: ['--max-send-queue', String(256 * MiB)] });
  try {
    const data = textData(12 * MiB);
    const { url, btok } = await shareFile(srv, 'term', data);
    const slow = await h.join(srv, 'term', 'slow');
    const sender = await h.join(srv, 'term', 'sender');
    await slow.next('user-joined');
    slow.ws._socket.pause();
    for (let i = 0; i < 150; i++) {
      sender.send({ type: 'offer', to: 'slow', payload: { type: 'offer', sdp: h.sdp(60 * 1024, `n${i}`) } });
      while (sender.ws.bufferedAmount > 2 * MiB) await h.delay(2);
    }
    const dl = await pausedGet(srv, url, { Authorization: `Bearer ${btok}` });
    const one = await h.httpRequest(srv, 'GET', '/webrtc/openapi.json');
    const n = Math.ceil((8 * MiB) / Buffer.byteLength(one.text));
    const pipe = await connectRaw(srv);
    pipe.on('error', () => {});
    pipe.pause();
    pipe.write('GET /webrtc/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n));
    await h.delay(500);
    const r = await srv.stop({ timeoutMs: 15000 });
    dl.destroy(); pipe.destroy();
    assert.ok(!r.hung, 'exited');
    assert.strictEqual(r.signal, null);
    assert.strictEqual(r.code, 0, `exit code ${r.code}\n${srv.stderrTail(4000)}`);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
});

/** n pipelined GETs of openapi.json (the last one with lastHeaders) to a paused reader; then extra bytes and/or a half-close. */
async function pipelinedPaused(srv, total, { lastHeaders = '', extra = '', extraLater = '', halfClose = false } = {}) {
  const one = await h.httpRequest(srv, 'GET', '/webrtc/openapi.json');
  const n = Math.ceil(total / Buffer.byteLength(one.text));
  const s = await connectRaw(srv);
  s.pause();
  let req = '';
  for (let i = 0; i < n; i++) req += `GET /webrtc/openapi.json HTTP/1.1\r\nHost: x\r\n${i === n - 1 ? lastHeaders : ''}\r\n`;
  s.write(req + extra);
  if (extraLater) { await h.delay(200); s.write(extraLater); }
  if (halfClose) s.end();
  await h.delay(500);
  const chunks = [];
  s.on('data', (d) => chunks.push(d));
  const ended = new Promise((resolve) => { s.on('end', () => resolve('end')); s.on('error', (e) => resolve(e.code)); });
  s.resume();
  const how = await Promise.race([ended, h.delay(10000).then(() => 'timeout')]);
  s.destroy();
  const all = Buffer.concat(chunks).toString('latin1');
  return { n, how, answers: (all.match(/HTTP\/1\.1 200 OK\r\n/g) || []).length, bytes: all.length };
}

// Connection: close with one more request already sent behind it (a client
// may pipeline; RFC 9112 9.6 says it retries what was not answered). The
// server half-closes and closes with that request unread, so the kernel
// resets the connection and throws away what it had not sent yet: answers
// the server had written are lost.
test('Connection: close with a pipelined request behind it: every answer up to the close arrives', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const r = await pipelinedPaused(srv, 8 * MiB, { lastHeaders: 'Connection: close\r\n', extraLater: 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n' });
    assert.strictEqual(r.answers, r.n, `${r.answers} of ${r.n} answers (${r.bytes} bytes), ended by ${r.how}`);
  });
});

// A client that half-closes (shutdown of its write side) after its requests:
// it still reads. The server answered them all, but what the socket did not
// take yet is dropped when the server reads the EOF.
test('pipelined requests then a half-close: every answer arrives', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const r = await pipelinedPaused(srv, 8 * MiB, { halfClose: true });
    assert.strictEqual(r.answers, r.n, `${r.answers} of ${r.n} answers (${r.bytes} bytes), ended by ${r.how}`);
  });
});

// The close handshake while the server holds frames for the client: the
// close frame goes after them, and the client gets it once it reads again.
test('WebSocket close from a paused reader with frames queued: frames, then the close reply', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const slow = await h.join(srv, 'wsclose', 'slow');
    const sender = await h.join(srv, 'wsclose', 'sender');
    await slow.next('user-joined');
    slow.ws._socket.pause();
    const n = 100;
    for (let i = 0; i < n; i++) {
      sender.send({ type: 'offer', to: 'slow', payload: { type: 'offer', sdp: h.sdp(60 * 1024, `n${i}`) } });
      while (sender.ws.bufferedAmount > 2 * MiB) await h.delay(2);
    }
    await h.delay(300);
    const closed = new Promise((resolve) => slow.ws.on('close', (code) => resolve(code)));
    slow.ws.close(1000, 'bye');
    await h.delay(300);
    slow.ws._socket.resume();
    const code = await Promise.race([closed, h.delay(10000).then(() => 'timeout')]);
    assert.strictEqual(code, 1000);
    assert.strictEqual(slow.all.filter((m) => m.type === 'offer').length, n, 'every queued offer before the close');
  });
});

// HEAD (tus's offset query) and a Range download on one kept-alive connection, then a GET.
test('HEAD, a Range and a GET of a file on one kept-alive connection', async () => {
  await h.withServer({}, async (srv) => {
    const data = textData(600 * 1024);
    const { url, btok } = await shareFile(srv, 'headdl', data);
    const before = fdCount(srv.pid);
    const s = await connectRaw(srv);
    const chunks = [];
    s.on('data', (d) => chunks.push(d));
    const auth = `Authorization: Bearer ${btok}\r\n`;
    s.write(`HEAD ${url} HTTP/1.1\r\nHost: x\r\n${auth}\r\n` +
            `GET ${url} HTTP/1.1\r\nHost: x\r\n${auth}Range: bytes=100-299999\r\n\r\n` +
            `GET ${url} HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
    await new Promise((resolve) => s.on('end', resolve));
    const all = Buffer.concat(chunks);
    const h1 = all.indexOf('\r\n\r\n') + 4;
    assert.match(all.subarray(0, h1).toString(), /^HTTP\/1\.1 200 OK\r\n[^]*Upload-Offset: 614400\r\n/); // HEAD is tus's offset query
    const h2 = all.indexOf('\r\n\r\n', h1) + 4;
    assert.match(all.subarray(h1, h2).toString(), /^HTTP\/1\.1 206 /);
    assert.ok(all.subarray(h2, h2 + 299900).equals(data.subarray(100, 300000)), 'the range');
    const h3 = all.indexOf('\r\n\r\n', h2 + 299900) + 4;
    assert.match(all.subarray(h2 + 299900, h3).toString(), /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(all.subarray(h3).equals(data), 'the whole file, then EOF');
    await h.waitFor(() => fdCount(srv.pid) <= before, 3000, 50, 'descriptors back');
  });
});

// A burst of connections at once (more than the listen backlog of 1,024):
// every one is accepted and answered, and none is left open.
test('a burst of 2,500 connections at once: every one answered, none left open', async () => {
  await h.withServer({ args: ['--max-connections-per-ip', '100000'] }, async (srv) => {
    const before = fdCount(srv.pid);
    const [host, port] = srv.addr.split(':');
    const one = () => new Promise((resolve) => {
      const s = net.connect(Number(port), host);
      const chunks = [];
      s.on('connect', () => s.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      s.on('data', (d) => chunks.push(d));
      s.on('error', (e) => resolve(`error ${e.code}`));
      s.on('end', () => resolve(Buffer.concat(chunks).toString('latin1').split('\r\n')[0]));
      s.setTimeout(20000, () => { s.destroy(); resolve('timeout'); });
    });
    const res = await Promise.all(Array.from({ length: 2500 }, one));
    const counts = {};
    for (const r of res) counts[r] = (counts[r] || 0) + 1;
    assert.deepStrictEqual(counts, { 'HTTP/1.1 200 OK': 2500 });
    await h.waitFor(() => fdCount(srv.pid) <= before, 5000, 50, 'descriptors back');
  });
});

// --listen [::]:port took IPv4 clients too with uv_tcp_bind (libuv sets
// IPV6_V6ONLY to 0); server_listen's own socket() leaves it to the host's
// net.ipv6.bindv6only. Run in a network namespace of its own (needs root).
test('--listen [::]:port serves IPv4 clients whatever net.ipv6.bindv6only says', (t) => {
  const { spawnSync } = require('node:child_process');
  if (spawnSync('unshare', ['-n', 'true']).status !== 0) { t.skip('needs unshare -n (root)'); return; }
  const r = spawnSync('unshare', ['-n', path.join(__dirname, 'sockets_v6only.sh'), h.BIN || process.env.HUDDLE_BIN], { encoding: 'utf8', timeout: 20000 });
  if (r.status === 2) { t.skip(`the namespace cannot be set up here: ${r.stderr.trim()}`); return; }
  assert.match(r.stdout, /^v6 200$/m, r.stdout + r.stderr);
  assert.match(r.stdout, /^v4 200$/m, r.stdout + r.stderr);
});

// conn_end's 2 s bound is for "a peer that never reads" (ADR 0018), but it
// runs from the conn_end, not from the last progress: a reader that reads
// steadily, just not 8 MiB in 2 s, is cut and loses the answers it asked for.
// (backpressure.test.js's pipelined case depends on the same race and fails
// under the sanitizer build on a loaded machine.)
test('Connection: close after pipelined answers to a steady but slow reader: every answer arrives', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const one = await h.httpRequest(srv, 'GET', '/webrtc/openapi.json');
    const n = Math.ceil((8 * MiB) / Buffer.byteLength(one.text));
    const s = await connectRaw(srv);
    s.pause();
    let req = '';
    for (let i = 0; i < n; i++) req += `GET /webrtc/openapi.json HTTP/1.1\r\nHost: x\r\n${i === n - 1 ? 'Connection: close\r\n' : ''}\r\n`;
    s.write(req);
    await h.delay(300);
    const chunks = [];
    let got = 0;
    const ended = new Promise((resolve) => { s.on('end', () => resolve('end')); s.on('error', (e) => resolve(e.code)); });
    s.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      s.pause();
      setTimeout(() => s.resume(), 50); // about 1 MB/s: never stalls for long
    });
    s.resume();
    const how = await ended;
    s.destroy();
    const answers = (Buffer.concat(chunks).toString('latin1').match(/HTTP\/1\.1 200 OK\r\n/g) || []).length;
    assert.strictEqual(answers, n, `${answers} of ${n} answers (${got} bytes), ended by ${how}`);
  });
});

// The store writer's idle release (sqlite3_db_release_memory + malloc_trim)
// between bursts of chat from several members, with history reads running
// at the same time: nothing lost, nothing out of order, no crash.
test('chat bursts around the store idle release, history read meanwhile: every message stored in order', async () => {
  await h.withServer({}, async (srv) => {
    const names = ['u1', 'u2', 'u3'];
    const cs = await f.joinAll(srv, 'idlechat', names.map((n) => [n]));
    const tok = f.tok(srv, { sub: 'u1', room: 'idlechat' });
    let sent = 0;
    for (let burst = 0; burst < 3; burst++) {
      const waits = [];
      for (let i = 0; i < 60; i++) {
        const c = cs[names[i % 3]];
        const id = `b${burst}m${i}`;
        c.send({ type: 'chat-message', id, payload: { text: `burst ${burst} msg ${i}` } });
        waits.push(c.nextWhere((m) => m.ref === id, 10000, `echo ${id}`));
        sent++;
        if (i % 20 === 0) f.rest(srv, 'GET', '/webrtc/rooms/idlechat/chat?limit=50', { token: tok }).catch(() => {});
      }
      await Promise.all(waits);
      const n = (srv.stderr.match(/store_idle_release/g) || []).length;
      await srv.waitForLog(new RegExp(`(store_idle_release[^]*){${n + 1}}`), 8000);
    }
    const texts = [];
    let cursor = '';
    for (let page = 0; page < 10; page++) {
      const r = await f.rest(srv, 'GET', `/webrtc/rooms/idlechat/chat?limit=100${cursor}`, { token: tok });
      assert.strictEqual(r.status, 200, r.text);
      texts.unshift(...r.json.messages.map((m) => m.text));
      if (!r.json.has_more) break;
      cursor = `&before=${encodeURIComponent(r.json.messages[0].message_id)}`;
    }
    assert.strictEqual(texts.length, sent, `stored ${texts.length} of ${sent}`);
    for (let b = 0; b < 3; b++) {
      for (let k = 0; k < 3; k++) { // order holds per connection
        const mine = texts.filter((t) => t.startsWith(`burst ${b} `) && Number(t.split(' ')[3]) % 3 === k);
        assert.deepStrictEqual(mine, Array.from({ length: 20 }, (_, i) => `burst ${b} msg ${3 * i + k}`), `burst ${b} sender ${k} in order`);
      }
    }
  });
});

// A reset while pipelined answers wait in the sendq and more requests wait
// unparsed: the connection goes, nothing is kept, the server serves on.
test('a reset during pipelined answers held in the sendq: closed, nothing kept', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const before = fdCount(srv.pid);
    const rss0 = srv.rssKb();
    for (let k = 0; k < 5; k++) {
      const one = await h.httpRequest(srv, 'GET', '/webrtc/openapi.json');
      const n = Math.ceil((16 * MiB) / Buffer.byteLength(one.text));
      const s = await connectRaw(srv);
      s.on('error', () => {});
      s.pause();
      s.write('GET /webrtc/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n));
      await h.delay(300);
      s.resetAndDestroy();
    }
    await h.waitFor(() => fdCount(srv.pid) <= before, 5000, 50, 'descriptors back');
    const r = await h.httpRequest(srv, 'GET', '/webrtc/health');
    assert.strictEqual(r.status, 200);
    // The held answers (about 10 MiB each time) were freed, not kept (the
    // sanitizer build keeps freed memory in quarantine: its exit check counts there).
    const asan = fs.readFileSync(`/proc/${srv.pid}/maps`, 'utf8').includes('libasan');
    if (!asan) assert.ok(srv.rssKb() - rss0 < 40 * 1024, `RSS grew by ${srv.rssKb() - rss0} kB`);
  });
});

// SIGTERM while accepting is paused for lack of descriptors (the pause timer
// armed, clients waiting in the backlog): a clean exit.
test('SIGTERM while out of descriptors: clean exit', async () => {
  const srv = await h.startServer({});
  const socks = [];
  try {
    const a = await h.join(srv, 'fdterm', 'a');
    const limit = fdCount(srv.pid) + 5;
    execFileSync('prlimit', ['--pid', String(srv.pid), `--nofile=${limit}:${limit}`]);
    for (let i = 0; i < 30; i++) {
      const s = await connectRaw(srv);
      s.on('error', () => {});
      socks.push(s);
    }
    await srv.waitForLog(/accept_failed err=Too many open files/, 3000);
    const r = await srv.stop({ timeoutMs: 10000 });
    assert.ok(!r.hung, 'exited');
    assert.strictEqual(r.signal, null);
    assert.strictEqual(r.code, 0, `exit code ${r.code}\n${srv.stderrTail(3000)}`);
    a.ws.terminate();
  } finally {
    for (const s of socks) s.destroy();
    await srv.stop();
    srv.cleanup();
  }
});

// A soft open-files limit of 1,024 (a common default) would cap clients far
// below --max-connections: huddle raises it at start to --max-connections
// plus a reserve of 256, up to the hard limit, and says when it cannot.
test('the soft open-files limit is raised to --max-connections + 256, up to the hard limit', async () => {
  const { spawn } = require('node:child_process');
  const os = require('node:os');
  const start = async (maxConns, hard) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-nofile-'));
    const p = spawn('prlimit', [`--nofile=1024:${hard}`, h.BIN || process.env.HUDDLE_BIN, '--listen', '127.0.0.1:0',
      '--data-dir', dir, '--jwt-secret', h.SECRET, '--max-connections', String(maxConns)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    await h.waitFor(() => /listening addr=/.test(err), 10000, 20, 'listening');
    const soft = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p.pid}/limits`, 'utf8'))[1]);
    p.kill('SIGTERM');
    await new Promise((resolve) => p.on('exit', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
    return { soft, err };
  };
  let r = await start(3000, 8192);
  assert.strictEqual(r.soft, 3256, r.err);
  assert.doesNotMatch(r.err, /open_files_limit/);
  r = await start(100000, 8192);
  assert.strictEqual(r.soft, 8192, 'up to the hard limit');
  assert.match(r.err, /open_files_limit limit=8192 max_connections=100000/);
});
