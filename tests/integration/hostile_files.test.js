'use strict';
// Hostile review of shared files through any instance (issue 11, ADR 0019,
// src/cluster/files_fwd.c): a files request reaching an instance that does
// not own the room is forwarded to the owner over a direct HTTP connection.
// Six of them showed defects of the first version (named "FAILS: ..."
// until fixed; ADR 0019, "Hostile review"); all cover paths the feature's
// own tests (redis_files.test.js) do not. Real Redis, real instances, raw
// sockets where the framing matters.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const h = require('./helpers');
const f = require('./feature_helpers');
const rh = require('./redis_helpers');

const MiB = 1024 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };
const sha256 = (b) => crypto.createHash('sha256').update(b).digest();
const fdCount = (srv) => fs.readdirSync(`/proc/${srv.pid}/fd`).length;

const textBytes = (n) => f.textBytes(n);

/**
 * Room `room` owned by A (owen joined there first), alice (the sharer) on B.
 * Alice offers `data` (a text file); resolves the pieces.
 */
async function setup(A, B, room, data) {
  const owen = await h.join(A, room, 'owen', { role: 'host' });
  assert.strictEqual(await rh.ownerOf([A, B], room), A, 'A owns the room');
  const alice = await h.join(B, room, 'alice');
  const atok = f.tok(A, { sub: 'alice', room });
  const btok = f.tok(A, { sub: 'owen', room });
  const ref = `o${crypto.randomBytes(4).toString('hex')}`;
  const payload = { name: 'big.txt', size: data.length, mime_type: 'text/plain', sha256: sha256(data).toString('hex') };
  alice.send({ type: 'file-share-offer', id: ref, payload });
  const echo = await alice.nextWhere((x) => x.ref === ref, 5000, 'offer echo');
  assert.strictEqual(echo.type, 'file-share-offer', JSON.stringify(echo));
  return { owen, alice, atok, btok, url: echo.payload.upload_url };
}

/** Offers another file (data) from alice; resolves its upload URL. */
async function offer(s, data) {
  const ref = `o${crypto.randomBytes(4).toString('hex')}`;
  const payload = { name: 'f.txt', size: data.length, mime_type: 'text/plain', sha256: sha256(data).toString('hex') };
  s.alice.send({ type: 'file-share-offer', id: ref, payload });
  const echo = await s.alice.nextWhere((x) => x.ref === ref, 5000, 'offer echo');
  assert.strictEqual(echo.type, 'file-share-offer', JSON.stringify(echo));
  return echo.payload.upload_url;
}

function patch(srv, url, token, offset, body, extra = {}) {
  return f.rest(srv, 'PATCH', url, { token, body, headers: Object.assign({}, TUS, {
    'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, extra) });
}

const head = (srv, url, token) => f.rest(srv, 'HEAD', url, { token, headers: TUS });

/**
 * Parses the HTTP/1.1 responses in buf (Content-Length framed, or no body
 * for HEAD when noBody). Returns [{status, headers, body}], and `rest`: bytes
 * after the last whole response.
 */
function parseResponses(buf, noBody = false) {
  const out = [];
  let off = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const lines = buf.subarray(off, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m) break;
    const headers = {};
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const status = Number(m[1]);
    const len = noBody || status === 204 || status === 304 ? 0 : Number(headers['content-length'] || 0);
    if (end + 4 + len > buf.length) { out.push({ status, headers, body: buf.subarray(end + 4), partial: true }); off = buf.length; break; }
    out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + len) });
    off = end + 4 + len;
  }
  out.rest = buf.subarray(off);
  return out;
}

/**
 * A raw connection to srv: send(bytes), and `closed`, which resolves with
 * everything received once the server closes (or `timeoutMs` passes:
 * then {timedOut: true}; with oneAnswer, once the first answer is whole).
 */
function raw(srv, timeoutMs = 15000, { oneAnswer = false } = {}) {
  const sock = net.connect(srv.port, h.HOST);
  const chunks = [];
  let how = null;
  const closed = new Promise((resolve) => {
    const timer = setTimeout(() => { how = 'timeout'; sock.destroy(); }, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { how = how || e.code; });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ buf: Buffer.concat(chunks), how: how || 'closed', timedOut: how === 'timeout' });
    });
  });
  if (oneAnswer) { // gone once the first answer is whole (a keep-alive answer leaves the connection open)
    sock.on('data', () => {
      const [res] = parseResponses(Buffer.concat(chunks));
      if (res && !res.partial) { how = 'answered'; sock.destroy(); }
    });
  }
  const ready = new Promise((resolve) => sock.once('connect', resolve));
  return { sock, closed, ready, chunks, received: () => Buffer.concat(chunks) };
}

const patchHead = (url, token, offset, len, extra = '') =>
  `PATCH ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nTus-Resumable: 1.0.0\r\n` +
  `Upload-Offset: ${offset}\r\nContent-Type: application/offset+octet-stream\r\n${extra}Content-Length: ${len}\r\n\r\n`;


test('a client that stalls its PATCH body through a non-owner gets 408 REQUEST_TIMEOUT, as at the owner, not a 503 blaming the owner', async () => {
  // protocol.md ("HTTP-level refusals"): REQUEST_TIMEOUT (408) when "the
  // request did not arrive within --header-timeout-ms"; and "every file
  // endpoint answers the same through any instance" (503 only when the owner
  // "cannot be reached, or its heartbeat is gone"). Here the owner is fine:
  // it is the client that stopped sending, so the forward's no-progress
  // timer leaves it to the client's own timer (files_fwd.c on_timer).
  await rh.withCluster(2, { args: ['--header-timeout-ms', '2000'] }, async (r, [A, B]) => {
    const data = textBytes(64 * 1024);
    const s = await setup(A, B, 'hf-stall', data);
    const answers = {};
    for (const [name, S] of [['owner', A], ['non-owner', B]]) {
      const url = await offer(s, data); // a file of its own: the owner keeps what a stalled PATCH sent
      const c = raw(S);
      await c.ready;
      c.sock.write(patchHead(url, s.atok, 0, data.length));
      c.sock.write(data.subarray(0, 1000)); // then nothing: the body stalls
      const got = await c.closed;
      assert.ok(!got.timedOut, `${name}: the stalled request was answered`);
      const [res] = parseResponses(got.buf);
      assert.ok(res, `${name}: an answer (${got.buf.toString('latin1').slice(0, 200)})`);
      answers[name] = { status: res.status, code: JSON.parse(res.body.toString()).error.code };
    }
    assert.deepStrictEqual(answers.owner, { status: 408, code: 'REQUEST_TIMEOUT' }, 'control: the owner itself');
    assert.deepStrictEqual(answers['non-owner'], answers.owner, 'through the non-owner as at the owner');
  });
});

test('a files request whose head fits --max-header-bytes at the owner is not refused 431 through a non-owner', async () => {
  // protocol.md: "every file endpoint answers the same through any instance"
  // (ADR 0019). The client's head is within --max-header-bytes (8192) and the
  // owner accepts it; the non-owner adds Host, Connection, X-Huddle-Forwarded
  // and X-Forwarded-For to the head it passes on, which goes over
  // --max-header-bytes: the owner allows a head that carries
  // X-Huddle-Forwarded HTTP_FORWARD_HEAD_EXTRA (256) bytes more.
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(4096);
    const s = await setup(A, B, 'hf-431', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 10000);
    const answers = {};
    for (const [name, S] of [['owner', A], ['non-owner', B]]) {
      const start = `GET ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.btok}\r\nIf-None-Match: "`;
      const end = '"\r\nConnection: close\r\n\r\n';
      const req = `${start}${'x'.repeat(8192 - 40 - start.length - end.length)}${end}`;
      assert.strictEqual(req.length, 8192 - 40, 'the head is 40 bytes under --max-header-bytes');
      const c = raw(S);
      await c.ready;
      c.sock.write(req);
      const got = await c.closed;
      const [res] = parseResponses(got.buf);
      assert.ok(res, `${name}: an answer`);
      answers[name] = { status: res.status, body: res.status === 200 ? res.body.equals(data) : res.body.toString() };
    }
    assert.deepStrictEqual(answers.owner, { status: 200, body: true }, 'control: the owner serves it');
    assert.deepStrictEqual(answers['non-owner'], answers.owner);
  });
});

/** 1 while a PATCH of url is being written on srv (TRANSFER_STATE). */
async function patchBusy(srv, url, token) {
  const w = await patch(srv, url, token, 0, Buffer.alloc(0));
  return w.status === 409 && w.json && w.json.error.code === 'TRANSFER_STATE';
}

/** Waits until srv's descriptor count is at most n. */
const fdsBack = (srv, n, what) => h.waitFor(() => fdCount(srv) <= n, 8000, 50, `${what}: descriptors back to ${n} (now ${fdCount(srv)})`);

/** A download of url through S read one piece, then held (the client does not read). */
async function slowDownload(S, url, token) {
  const c = raw(S, 30000);
  await c.ready;
  c.sock.write(`GET ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
  await h.waitFor(() => c.received().length > 1000, 5000, 10, 'the first bytes of the download');
  c.sock.pause();
  return c;
}

test('SIGTERM of a non-owner in the middle of a forwarded download and a forwarded upload: a clean exit (sanitizers), the clients see cuts', async () => {
  // README/ADR 0019: every handle is closed and the forward freed on every
  // path; protocol.md: a cut, never a short body presented as whole.
  await rh.withCluster(2, { args: ['--shutdown-timeout-ms', '500'] }, async (r, [A, B]) => {
    const data = textBytes(16 * MiB);
    const s = await setup(A, B, 'hf-term', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 20000);
    const up = textBytes(4 * MiB);
    const url2 = await offer(s, up);
    const dl = await slowDownload(B, s.url, s.btok);
    const ul = raw(B, 30000);
    await ul.ready;
    ul.sock.write(patchHead(url2, s.atok, 0, up.length));
    ul.sock.write(up.subarray(0, MiB)); // the rest never comes
    await h.waitFor(() => patchBusy(A, url2, s.atok), 5000, 20, 'the upload reached the owner');
    const st = await B.stop({ timeoutMs: 8000 });
    assert.ok(!st.hung, 'B exited');
    assert.strictEqual(st.code, 0, `B's exit code ${st.code} (23 = ASan/LSan, 24 = UBSan)`);
    dl.sock.resume();
    const got = await dl.closed;
    const [res] = parseResponses(got.buf);
    assert.strictEqual(res.status, 200);
    assert.ok(res.partial, 'the download is cut short, not presented as whole');
    assert.ok(data.subarray(0, res.body.length).equals(res.body), 'what came is the file\'s start');
    await ul.closed;
    // The owner is unharmed: the upload resumes from what it stored.
    await h.waitFor(async () => !(await patchBusy(A, url2, s.atok)), 5000, 50, 'the owner ended the cut PATCH');
    const off = Number((await head(A, url2, s.atok)).headers['upload-offset']);
    assert.ok(off <= MiB, `offset ${off}`);
    assert.strictEqual((await patch(A, url2, s.atok, off, up.subarray(off))).status, 204);
    assert.strictEqual((await head(A, url2, s.atok)).headers['upload-offset'], String(up.length));
  });
});

test('the owner stopped (SIGSTOP) in the middle of a forwarded upload: 503 with a retry hint, no descriptor left, and after SIGCONT the upload resumes byte-equal', async () => {
  await rh.withCluster(2, { args: ['--header-timeout-ms', '2500'] }, async (r, [A, B]) => {
    const data = textBytes(12 * MiB);
    const s = await setup(A, B, 'hf-stop', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200); // libuv's spare descriptor opened
    const beforeB = fdCount(B);
    const c = raw(B, 30000);
    await c.ready;
    c.sock.write(patchHead(s.url, s.atok, 0, data.length));
    c.sock.write(data.subarray(0, 2 * MiB));
    await h.waitFor(() => patchBusy(A, s.url, s.atok), 5000, 20, 'the PATCH reached the owner');
    process.kill(A.pid, 'SIGSTOP');
    try {
      c.sock.write(data.subarray(2 * MiB)); // more than the sockets hold: B stops reading the client
      const got = await c.closed;
      const [res] = parseResponses(got.buf);
      assert.ok(res, `an answer: ${got.how}`);
      f.assertRestError({ status: res.status, headers: res.headers, text: res.body.toString(), json: JSON.parse(res.body) },
        503, 'SERVICE_UNAVAILABLE');
      assert.ok(Number(res.headers['retry-after']) > 0);
      await fdsBack(B, beforeB, 'B');
    } finally {
      process.kill(A.pid, 'SIGCONT');
    }
    // The owner ends the PATCH it was reading (reset by B); the rest resumes.
    await h.waitFor(async () => !(await patchBusy(A, s.url, s.atok)), 8000, 50, 'the owner ended the cut PATCH');
    await rh.waitRedisUp(A, 8000);
    const off = Number((await head(B, s.url, s.atok)).headers['upload-offset']);
    assert.ok(off >= 0 && off <= data.length, `offset ${off}`);
    const p = await patch(B, s.url, s.atok, off, data.subarray(off));
    assert.strictEqual(p.status, 204, p.text);
    await s.alice.next('file-share-complete', 20000);
    const dl = await h.httpRequest(B, 'GET', s.url, { headers: { Authorization: `Bearer ${s.btok}` }, timeoutMs: 20000 });
    assert.strictEqual(dl.status, 200);
    assert.strictEqual(sha256(Buffer.from(dl.text, 'utf8')).toString('hex'), sha256(data).toString('hex'), 'byte-equal');
  });
});

test('pipelined on one keep-alive connection: an ordinary request, a forwarded download, then another: answered in order, the forwarded answer byte-equal and last (Connection: close)', async () => {
  // protocol.md: a forwarded answer "carries Connection: close and ends the
  // connection"; what came before it is answered first, in order.
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(300 * 1024);
    const s = await setup(A, B, 'hf-pipe', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 10000);
    const c = raw(B);
    await c.ready;
    c.sock.write(`GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n` +
      `GET ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.btok}\r\nRange: bytes=100-\r\n\r\n` +
      `GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n`);
    const got = await c.closed;
    assert.ok(!got.timedOut, 'the connection ended');
    const res = parseResponses(got.buf);
    assert.deepStrictEqual(res.map((x) => x.status), [200, 206], 'health, then the range; nothing after the close');
    assert.strictEqual(res[1].headers.connection, 'close');
    assert.ok(res[1].body.equals(data.subarray(100)), 'byte-equal');
  });
});

test('a forwarded PATCH with a chunked body and one pipelined behind a HEAD: the owner stores the bytes, byte-equal', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(700 * 1024 + 3);
    const s = await setup(A, B, 'hf-chunk', data);
    const c = raw(B);
    await c.ready;
    let body = '';
    const parts = [];
    for (let o = 0; o < data.length; o += 100000) {
      const p = data.subarray(o, Math.min(o + 100000, data.length));
      parts.push(Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n'));
    }
    parts.push(Buffer.from('0\r\n\r\n'));
    body = Buffer.concat(parts);
    c.sock.write(`HEAD ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nTus-Resumable: 1.0.0\r\n\r\n` +
      `PATCH ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nTus-Resumable: 1.0.0\r\n` +
      'Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    c.sock.write(body);
    const got = await c.closed;
    const res = parseResponses(got.buf, true);
    assert.strictEqual(res[0].status, 200, 'HEAD forwarded, answered');
    assert.strictEqual(res[0].headers['upload-offset'], '0');
    // The HEAD's answer closes the connection (documented): the PATCH is not run.
    assert.strictEqual(res.length, 1, got.buf.toString('latin1').slice(0, 500));
    // The same chunked PATCH alone goes through and stores the bytes.
    const c2 = raw(B);
    await c2.ready;
    c2.sock.write(`PATCH ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nTus-Resumable: 1.0.0\r\n` +
      'Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    c2.sock.write(body);
    const got2 = await c2.closed;
    const [p] = parseResponses(got2.buf);
    assert.strictEqual(p.status, 204, got2.buf.toString('latin1').slice(0, 500));
    assert.strictEqual(p.headers['upload-offset'], String(data.length));
    await s.alice.next('file-share-complete', 10000);
    const dl = await f.rest(B, 'GET', s.url, { token: s.btok });
    assert.strictEqual(sha256(Buffer.from(dl.text)).toString('hex'), sha256(data).toString('hex'));
  });
});

test('the owner killed (SIGKILL) in the middle of a forwarded upload: the client gets 503 or a cut, never a success; the non-owner keeps no descriptor and exits clean', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(16 * MiB);
    const s = await setup(A, B, 'hf-kill-up', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    const beforeB = fdCount(B);
    const c = raw(B, 20000);
    await c.ready;
    c.sock.write(patchHead(s.url, s.atok, 0, data.length));
    c.sock.write(data.subarray(0, 2 * MiB));
    await h.waitFor(() => patchBusy(A, s.url, s.atok), 5000, 20, 'the PATCH reached the owner');
    await A.stop({ signal: 'SIGKILL' });
    c.sock.write(data.subarray(2 * MiB), () => {});
    const got = await c.closed;
    assert.ok(!got.timedOut, 'answered or cut, not left hanging');
    const res = parseResponses(got.buf);
    if (res.length) assert.strictEqual(res[0].status, 503, got.buf.toString('latin1').slice(0, 300));
    await fdsBack(B, beforeB, 'B');
    assert.strictEqual((await rh.clusterHealth(B)).components.cluster.files_forward_failed >= 1, true);
  });
});

test('many forwarded downloads at once on a non-owner with few descriptors (prlimit): each is whole or refused with a taxonomy error, the instance lives on and lets go of every descriptor', async () => {
  await rh.withCluster(2, { args: ['--max-connections', '200'] }, async (r, [A, B]) => {
    const data = textBytes(2 * MiB);
    const s = await setup(A, B, 'hf-fds', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 10000);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    const beforeB = fdCount(B);
    // Room for about 20 more descriptors: 40 downloads need 80 (client + owner).
    require('node:child_process').execFileSync('prlimit', ['--pid', String(B.pid), `--nofile=${beforeB + 20}:${beforeB + 20}`]);
    const conns = [];
    for (let i = 0; i < 40; i++) {
      const c = raw(B, 20000, { oneAnswer: true }); // a 503 keeps the connection alive
      c.ready.then(() => c.sock.write(`GET ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.btok}\r\n\r\n`));
      conns.push(c);
    }
    const outs = await Promise.all(conns.map((c) => c.closed));
    let whole = 0;
    for (const o of outs) {
      assert.ok(!o.timedOut, 'no client left hanging');
      const [res] = parseResponses(o.buf);
      if (!res) continue; // refused before a byte (a reset at accept)
      if (res.status === 200) {
        assert.ok(!res.partial && res.body.equals(data), 'a 200 is the whole file');
        whole++;
      } else {
        assert.ok([503, 429].includes(res.status), `${res.status} ${res.body}`);
        assert.ok(JSON.parse(res.body).error.code);
      }
    }
    assert.ok(whole > 0, 'some went through');
    await fdsBack(B, beforeB, 'B');
    assert.strictEqual((await f.rest(B, 'GET', s.url, { token: s.btok })).status, 200, 'B serves again');
  });
});

test('an owner that accepts and never answers (stopped): GET, HEAD and OPTIONS through a non-owner get 503 with a retry hint in bounded time, no descriptor left', async () => {
  // ADR 0019: "No progress either way for --header-timeout-ms less 1 s: the
  // same" (503); every handle closed and the forward freed on every path.
  await rh.withCluster(2, { args: ['--header-timeout-ms', '2000'] }, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-deaf', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    const beforeB = fdCount(B);
    process.kill(A.pid, 'SIGSTOP');
    try {
      const base = s.url.replace(/[^/]+$/, '');
      const asks = [['GET', s.url, { token: s.btok }], ['HEAD', s.url, { token: s.atok, headers: TUS }],
        ['OPTIONS', base, {}]];
      const got = await Promise.all(asks.map(([m, u, o]) => f.rest(B, m, u, o)));
      for (let i = 0; i < got.length; i++) {
        assert.strictEqual(got[i].status, 503, `${asks[i][0]}: ${got[i].text}`);
        assert.ok(Number(got[i].headers['retry-after']) > 0, asks[i][0]);
        if (asks[i][0] !== 'HEAD') f.assertRestError(got[i], 503, 'SERVICE_UNAVAILABLE');
      }
      await fdsBack(B, beforeB, 'B');
    } finally {
      process.kill(A.pid, 'SIGCONT');
    }
  });
});

test('an owner that answers a forwarded download unreadably, resets, or cuts its answer: 503 before any byte, a cut after, never a whole-looking body; no descriptor left; SIGTERM with a forward waiting on a silent owner exits clean', async () => {
  // A stand-in for the owner's listener: A advertises it (--advertise-addr)
  // and owns the room, so B forwards there.
  const fake = net.createServer();
  const modes = [];
  let silentAsked = false;
  fake.on('connection', (sock) => {
    const mode = modes.shift();
    sock.once('data', () => {
      if (mode === 'silent') silentAsked = true;
      if (mode === 'garbage') sock.end('HTTP/1.1 2x0 nonsense\r\n\r\n');
      else if (mode === 'cut') sock.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\nConnection: close\r\n\r\nhello');
      else if (mode === 'reset') sock.resetAndDestroy();
      // 'silent': reads, never answers
    });
    sock.on('error', () => {});
  });
  await new Promise((resolve) => fake.listen(0, h.HOST, resolve));
  const fakeAddr = `${h.HOST}:${fake.address().port}`;
  try {
    const r = await rh.startRedis();
    const A = await h.startServer({ args: ['--redis-url', r.url, '--advertise-addr', fakeAddr] });
    const B = await h.startServer({ args: ['--redis-url', r.url, '--shutdown-timeout-ms', '300'] });
    try {
      await rh.waitRedisUp(A);
      await rh.waitRedisUp(B);
      const owen = await h.join(A, 'hf-fake', 'owen', { role: 'host' });
      const tok = f.tok(A, { sub: 'owen', room: 'hf-fake' });
      const url = '/webrtc/rooms/hf-fake/files/f0000000000000000000000000000000';
      await h.waitFor(async () => (await rh.clusterHealth(A)).components.cluster.owned_rooms.includes('hf-fake'), 3000);
      modes.push('reset');
      assert.strictEqual((await f.rest(B, 'GET', url, { token: tok })).status, 503); // libuv's spare descriptor
      const beforeB = fdCount(B);
      for (const mode of ['garbage', 'reset', 'cut']) {
        modes.push(mode);
        const c = raw(B, 15000, { oneAnswer: true });
        await c.ready;
        c.sock.write(`GET ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`);
        const got = await c.closed;
        assert.ok(!got.timedOut, mode);
        const [res] = parseResponses(got.buf);
        if (mode === 'cut') {
          assert.strictEqual(res.status, 200, mode);
          assert.ok(res.partial, `${mode}: the body is short and the connection cut`);
        } else {
          assert.ok(res && res.status === 503, `${mode}: ${got.buf.toString('latin1').slice(0, 300)} (${got.how})`);
          assert.strictEqual(JSON.parse(res.body).error.code, 'SERVICE_UNAVAILABLE');
        }
      }
      await fdsBack(B, beforeB, 'B');
      // SIGTERM of B while a forward waits on a silent owner.
      modes.push('silent');
      const c = raw(B);
      await c.ready;
      c.sock.write(`GET ${url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`);
      await h.waitFor(() => silentAsked, 3000, 10, 'the forward reached the silent owner');
      owen.terminate();
      h.closeAllClients();
      await B.stopAndAssert({ timeoutMs: 8000 });
      const out = await c.closed;
      assert.ok(!out.timedOut, 'the waiting client is let go');
      await A.stopAndAssert();
    } finally {
      for (const S of [A, B]) { if (!S.exit) await S.stop({ signal: 'SIGKILL' }); S.cleanup(); }
      await r.cleanup();
    }
  } finally {
    fake.close();
  }
});

/** What an answer says, for comparing an owner's answer with a non-owner's. */
function said(r) {
  return { status: r.status, json: r.json, tus: r.headers['tus-resumable'], offset: r.headers['upload-offset'],
    range: r.headers['content-range'], length: r.headers['content-length'], etag: r.headers.etag,
    text: r.json ? undefined : r.text };
}

test('Range edge cases through a non-owner answer as at the owner, byte for byte', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(10000);
    const s = await setup(A, B, 'hf-range', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 10000);
    const ranges = ['bytes=0-0', 'bytes=-1', 'bytes=9999-', 'bytes=10000-', 'bytes=5-2', 'bytes=0-99999',
      'bytes=-0', 'bytes=1-2,5-6', 'items=0-1', 'bytes=', 'bytes=abc', 'bytes= 3-4', 'bytes=18446744073709551616-'];
    for (const rg of ranges) {
      const a = await f.rest(A, 'GET', s.url, { token: s.btok, headers: { Range: rg } });
      const b = await f.rest(B, 'GET', s.url, { token: s.btok, headers: { Range: rg } });
      assert.deepStrictEqual(said(b), said(a), `Range: ${rg}`);
    }
  });
});

test('malformed heads to a files URL through a non-owner are refused as at the owner (bare LF, obs-fold, CR in a value, NUL), nothing forwarded', async () => {
  // protocol.md, HTTP-level refusals: BAD_REQUEST (400) for bare LF line
  // endings, obs-fold, ... and the connection is closed.
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-bad', data);
    const heads = [
      `HEAD ${s.url} HTTP/1.1\nHost: x\nAuthorization: Bearer ${s.atok}\nTus-Resumable: 1.0.0\nX-Huddle-Forwarded: evil\n\n`,
      `HEAD ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nUpload-Metadata: a\r\n X-Huddle-Forwarded: evil\r\n\r\n`,
      `HEAD ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nRange: bytes=0-1\rX-Injected: 1\r\n\r\n`,
      `HEAD ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.atok}\r\nUpload-Metadata: a\u0000b\r\n\r\n`,
    ];
    const before = (await rh.clusterHealth(B)).components.cluster.files_forwarded;
    for (const hd of heads) {
      const out = {};
      for (const [name, S] of [['owner', A], ['non-owner', B]]) {
        const c = raw(S, 5000, { oneAnswer: true });
        await c.ready;
        c.sock.write(hd);
        const got = await c.closed;
        const [res] = parseResponses(got.buf, true);
        out[name] = res ? res.status : got.how;
      }
      assert.deepStrictEqual(out['non-owner'], out.owner, JSON.stringify(hd));
      assert.strictEqual(out.owner, 400, JSON.stringify(hd));
    }
    assert.strictEqual((await rh.clusterHealth(B)).components.cluster.files_forwarded, before, 'none was passed on');
  });
});

test('a forged X-Huddle-Forwarded bypasses nothing at the owner: no token is still 401, a token of another room 403', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-forge', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    const forged = { 'X-Huddle-Forwarded': (await rh.clusterHealth(B)).components.cluster.instance || 'x', 'X-Forwarded-For': '10.9.9.9' };
    f.assertRestError(await f.rest(A, 'GET', s.url, { headers: forged }), 401, 'UNAUTHORIZED');
    f.assertRestError(await f.rest(A, 'GET', s.url, { token: f.tok(A, { sub: 'owen', room: 'other' }), headers: forged }),
      403, 'TOKEN_ROOM_MISMATCH');
    const p = await patch(A, s.url, null, 0, 'x', forged);
    assert.strictEqual(p.status, 401, p.text);
    // Through the non-owner with the header: refused, never passed on.
    f.assertRestError(await f.rest(B, 'GET', s.url, { token: s.btok, headers: forged }), 503, 'SERVICE_UNAVAILABLE');
  });
});

test('a PATCH through a non-owner that declares more than it sends, then closes its side: the owner keeps a true prefix, both instances let go of the connections, the upload resumes byte-equal', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(3 * MiB);
    const s = await setup(A, B, 'hf-short', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    const beforeA = fdCount(A);
    const beforeB = fdCount(B);
    const c = raw(B);
    await c.ready;
    c.sock.write(patchHead(s.url, s.atok, 0, data.length));
    c.sock.end(data.subarray(0, MiB + 17)); // FIN with 2 MiB missing
    const got = await c.closed;
    assert.ok(!got.timedOut);
    const [res] = parseResponses(got.buf);
    assert.ok(!res || res.status !== 204, 'never a success for a short body');
    await h.waitFor(async () => !(await patchBusy(A, s.url, s.atok)), 5000, 50, 'the owner ended the cut PATCH');
    await fdsBack(B, beforeB, 'B');
    await fdsBack(A, beforeA, 'A');
    const off = Number((await head(B, s.url, s.atok)).headers['upload-offset']);
    assert.ok(off <= MiB + 17, `offset ${off}`);
    const p = await patch(B, s.url, s.atok, off, data.subarray(off));
    assert.strictEqual(p.status, 204, p.text);
    await s.alice.next('file-share-complete', 10000);
    const dl = await f.rest(B, 'GET', s.url, { token: s.btok });
    assert.strictEqual(sha256(Buffer.from(dl.text)).toString('hex'), sha256(data).toString('hex'), 'byte-equal');
  });
});

test('files calls with a forged X-Huddle-Forwarded through a non-owner spend the api_call budget like any REST call', async () => {
  // protocol.md: "Every REST call except health and the rate-limit status
  // counts against the caller's api_call budget". A client that adds
  // X-Huddle-Forwarded itself is answered 503 by the non-owner (ADR 0019),
  // after api_call is counted: over the budget it gets 429 as the same calls
  // without the header do (the control).
  await rh.withCluster(2, { args: ['--rate-api-call', '3/1m'] }, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-budget', data);
    const ctok = f.tok(A, { sub: 'carol', room: 'hf-budget' });
    const dtok = f.tok(A, { sub: 'dave', room: 'hf-budget' });
    const statuses = async (tok, headers) => {
      const out = [];
      for (let i = 0; i < 6; i++) out.push((await f.rest(B, 'GET', s.url, { token: tok, headers })).status);
      return out;
    };
    const plain = await statuses(ctok, {});
    assert.ok(plain.includes(429), `control: the budget runs out without the header (${plain})`);
    const forged = await statuses(dtok, { 'X-Huddle-Forwarded': 'someone' });
    assert.ok(forged.includes(429), `with the forged header too (${forged})`);
  });
});

test('a room live on no instance (everyone left): its files asked through the other instance get a taxonomy error at once, not a hang or a forward', async () => {
  await rh.withCluster(2, { args: ['--resume-grace-ms', '0'] }, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-gone', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 10000);
    s.alice.terminate();
    s.owen.terminate();
    await h.waitFor(async () => (await rh.ownerOf([A, B], 'hf-gone')) === null, 8000, 100, 'the room is live nowhere');
    const before = (await rh.clusterHealth(B)).components.cluster.files_forwarded;
    const base = s.url.replace(/[^/]+$/, '');
    for (const [m, u, o] of [['GET', s.url, { token: s.btok }], ['HEAD', s.url, { token: s.atok, headers: TUS }],
      ['OPTIONS', base, {}], ['DELETE', s.url, { token: s.atok, headers: TUS }]]) {
      const res = await f.rest(B, m, u, o);
      assert.ok(res.status < 500, `${m}: ${res.status} ${res.text}`);
      if (m === 'GET') f.assertRestError(res, res.status, null);
    }
    assert.strictEqual((await rh.clusterHealth(B)).components.cluster.files_forwarded, before, 'nothing forwarded');
  });
});

test('a download asked in absolute-form (GET http://host/webrtc/rooms/...) through a non-owner is forwarded, as the owner serves it', async () => {
  // RFC 9112 3.2.2: a server MUST accept the absolute-form; huddle does
  // (api_dispatch takes the path out of it; the owner serves the file).
  // protocol.md: "every file endpoint answers the same through any
  // instance". The non-owner recognises the absolute-form as a files URL
  // (files_url_room takes its path as api_dispatch does) and forwards it.
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(5000);
    const s = await setup(A, B, 'hf-abs', data);
    assert.strictEqual((await patch(A, s.url, s.atok, 0, data)).status, 204);
    await s.alice.next('file-share-complete', 10000);
    const answers = {};
    for (const [name, S] of [['owner', A], ['non-owner', B]]) {
      const c = raw(S, 5000, { oneAnswer: true });
      await c.ready;
      c.sock.write(`GET http://${S.addr}${s.url} HTTP/1.1\r\nHost: ${S.addr}\r\nAuthorization: Bearer ${s.btok}\r\n\r\n`);
      const got = await c.closed;
      const [res] = parseResponses(got.buf);
      assert.ok(res, `${name}: an answer`);
      answers[name] = { status: res.status, whole: res.body.equals(data), text: res.status === 200 ? '' : res.body.toString() };
    }
    assert.deepStrictEqual(answers.owner, { status: 200, whole: true, text: '' }, 'control: the owner serves it');
    assert.deepStrictEqual(answers['non-owner'], answers.owner);
  });
});

test('an owner advertising no usable address, or the address of another instance: 503 with a retry hint at once, no forwarding loop, no descriptor left', async () => {
  // ADR 0019: "An instance without an address ... the others answer 503 for
  // its rooms' files"; "a request that carries X-Huddle-Forwarded is never
  // forwarded again".
  const r = await rh.startRedis();
  const B = await h.startServer({ args: ['--redis-url', r.url] });
  const A = await h.startServer({ args: ['--redis-url', r.url, '--advertise-addr', B.addr] }); // B's address: a misconfiguration
  const C = await h.startServer({ args: ['--redis-url', r.url, '--advertise-addr', 'not-an-address'] });
  try {
    for (const S of [A, B, C]) await rh.waitRedisUp(S);
    await h.join(A, 'hf-loop', 'owen', { role: 'host' });
    await h.join(C, 'hf-noaddr', 'owen', { role: 'host' });
    assert.strictEqual((await rh.clusterHealth(C)).components.cluster.advertise_addr, null);
    const url = (room) => `/webrtc/rooms/${room}/files/f0000000000000000000000000000000`;
    const ltok = f.tok(A, { sub: 'owen', room: 'hf-loop' });
    const ntok = f.tok(A, { sub: 'owen', room: 'hf-noaddr' });
    f.assertRestError(await f.rest(B, 'GET', url('hf-loop'), { token: ltok }), 503, 'SERVICE_UNAVAILABLE'); // spare descriptor
    const beforeB = fdCount(B);
    for (let i = 0; i < 3; i++) {
      const res = await f.rest(B, 'GET', url('hf-loop'), { token: ltok });
      f.assertRestError(res, 503, 'SERVICE_UNAVAILABLE', 'forwarded to itself');
      assert.ok(Number(res.headers['retry-after']) > 0);
      const res2 = await f.rest(B, 'GET', url('hf-noaddr'), { token: ntok });
      f.assertRestError(res2, 503, 'SERVICE_UNAVAILABLE', 'no address');
      assert.ok(Number(res2.headers['retry-after']) > 0);
    }
    // The files of the room without an address answer at its owner.
    f.assertRestError(await f.rest(C, 'GET', url('hf-noaddr'), { token: ntok }), 404, 'FILE_NOT_FOUND');
    await fdsBack(B, beforeB, 'B');
    h.closeAllClients();
    for (const S of [A, B, C]) await S.stopAndAssert();
  } finally {
    for (const S of [A, B, C]) { if (!S.exit) await S.stop({ signal: 'SIGKILL' }); S.cleanup(); }
    await r.cleanup();
  }
});

test('a forwarded download that keeps moving is not cut at --header-timeout-ms because the owner sends more slowly than the client reads', async () => {
  // protocol.md: a forwarded answer is cut only when the owner dies in the
  // middle of it; ADR 0019: "No progress either way for --header-timeout-ms
  // less 1 s" ends a forward, progress does not. Here bytes flow all the
  // time (a stand-in owner sends 4 KiB every 50 ms for about 3.5 s, as an
  // owner with a slow disk or a busy loop would), and the client reads
  // every byte at once, so its socket never holds output back. Every piece
  // relayed restarts the client's inactivity timer (as a local download's
  // pieces do), not only a drain after backpressure.
  const body = Buffer.alloc(4096 * 70, 'a');
  const fake = net.createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => {
      sock.write(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      let off = 0;
      const t = setInterval(() => {
        if (sock.destroyed || off >= body.length) { clearInterval(t); sock.end(); return; }
        sock.write(body.subarray(off, off + 4096));
        off += 4096;
      }, 50);
    });
  });
  await new Promise((resolve) => fake.listen(0, h.HOST, resolve));
  const r = await rh.startRedis();
  const args = ['--redis-url', r.url, '--header-timeout-ms', '2000'];
  const A = await h.startServer({ args: [...args, '--advertise-addr', `${h.HOST}:${fake.address().port}`] });
  const B = await h.startServer({ args });
  try {
    await rh.waitRedisUp(A);
    await rh.waitRedisUp(B);
    await h.join(A, 'hf-trickle', 'owen', { role: 'host' });
    await h.waitFor(async () => (await rh.ownerOf([A, B], 'hf-trickle')) === A, 3000);
    const tok = f.tok(A, { sub: 'owen', room: 'hf-trickle' });
    const c = raw(B, 15000);
    await c.ready;
    c.sock.write(`GET /webrtc/rooms/hf-trickle/files/f0000000000000000000000000000000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`);
    const got = await c.closed;
    const [res] = parseResponses(got.buf);
    assert.strictEqual(res.status, 200);
    assert.ok(!res.partial, `the whole body: ${res.body.length} of ${body.length} bytes came before the cut`);
    assert.ok(res.body.equals(body));
    h.closeAllClients();
    await B.stopAndAssert();
    await A.stopAndAssert();
  } finally {
    for (const S of [A, B]) { if (!S.exit) await S.stop({ signal: 'SIGKILL' }); S.cleanup(); }
    await r.cleanup();
    fake.close();
  }
});

test('Redis stalled (SIGSTOP) while a non-owner looks up a files request\'s owner: the request is answered (here, as with Redis away) before the header timeout, and afterwards; nothing leaks', async () => {
  // ADR 0019: "The room here or live nowhere, or Redis away: answered here
  // as before"; redis_watchdog drops a command connection whose heartbeat
  // went unanswered 5 s, and its callbacks get NULL.
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-redis', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    const beforeB = fdCount(B);
    process.kill(r.proc.pid, 'SIGSTOP');
    let res;
    try {
      res = await h.httpRequest(B, 'GET', s.url, { headers: { Authorization: `Bearer ${s.btok}` }, timeoutMs: 9500 });
    } finally {
      process.kill(r.proc.pid, 'SIGCONT');
    }
    assert.ok(res.status >= 400 && res.json && res.json.error, `a taxonomy error: ${res.status} ${res.text}`);
    await rh.waitRedisUp(B, 8000);
    await fdsBack(B, beforeB + 1, 'B'); // the new Redis connection may replace the old one later
    // The stall outlived the lease (3 s): A lost the room and closed it
    // (lease_lost), so the files are asked of a room live nowhere: answered
    // at once with a taxonomy error (ADR 0019), not forwarded, not hung.
    const hd = await f.rest(B, 'GET', s.url, { token: s.btok });
    assert.ok(hd.status >= 400 && hd.json && hd.json.error, `${hd.status} ${hd.text}`);
  });
});

test('the owner refuses a forwarded PATCH at its head while the client still sends a large body: the client reads the refusal, both instances let go', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const data = textBytes(8 * MiB);
    const s = await setup(A, B, 'hf-early', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    const beforeA = fdCount(A);
    const beforeB = fdCount(B);
    const c = raw(B);
    await c.ready;
    c.sock.on('error', () => {});
    c.sock.write(patchHead(s.url, s.atok, 5, data.length)); // offset 5: refused UPLOAD_OFFSET_MISMATCH
    c.sock.write(data, () => {});
    await h.waitFor(() => parseResponses(c.received()).length > 0, 5000, 10, 'the refusal');
    const [res] = parseResponses(c.received());
    assert.strictEqual(res.status, 409, res.body.toString());
    assert.strictEqual(JSON.parse(res.body).error.code, 'UPLOAD_OFFSET_MISMATCH');
    c.sock.destroy();
    await fdsBack(B, beforeB, 'B');
    await fdsBack(A, beforeA, 'A');
    assert.strictEqual((await head(B, s.url, s.atok)).headers['upload-offset'], '0', 'nothing stored');
  });
});

test('SIGTERM of a non-owner while a files request waits on the owner lookup and Redis does not answer: the instance exits', async () => {
  // README (--shutdown-timeout-ms: "Time given to clients to close on
  // SIGTERM/SIGINT"), ADR 0019 (every handle closed and the forward freed
  // on every path): a SIGTERM ends the process. With Redis stalled (not
  // closed), cluster_stop's redisAsyncDisconnect waits for the replies of
  // what was sent (here the owner lookup and the heartbeat); that wait is
  // bounded by what is left of --shutdown-timeout-ms, then the command
  // connection is freed (its callbacks get NULL). Not only files: an
  // instance with no request at all hung the same before.
  await rh.withCluster(2, { args: ['--shutdown-timeout-ms', '300'] }, async (r, [A, B]) => {
    const data = textBytes(1000);
    const s = await setup(A, B, 'hf-termlook', data);
    assert.strictEqual((await head(B, s.url, s.atok)).status, 200);
    process.kill(r.proc.pid, 'SIGSTOP');
    try {
      const c = raw(B);
      await c.ready;
      c.sock.write(`GET ${s.url} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${s.btok}\r\n\r\n`);
      await h.delay(200); // the lookup is sent (no condition to wait on: Redis is stopped)
      const st = await B.stop({ timeoutMs: 8000 });
      assert.ok(!st.hung, 'B exited after SIGTERM (within 8 s) although Redis does not answer');
      assert.strictEqual(st.code, 0, `B's exit code ${st.code}`);
    } finally {
      process.kill(r.proc.pid, 'SIGCONT');
    }
  });
});

test('the head allowance for a forwarded request is small and bounded: 256 bytes over --max-header-bytes with X-Huddle-Forwarded, none without', async () => {
  // src/net/http.h HTTP_FORWARD_HEAD_EXTRA (ADR 0019, "Hostile review" 2):
  // a client forging the header gains those bytes and nothing more.
  await rh.withCluster(2, async (r, [A]) => {
    const status = async (pad, forged) => {
      const start = `GET /webrtc/rooms/hf-allow/files/f0000000000000000000000000000000 HTTP/1.1\r\nHost: x\r\n${forged ? 'X-Huddle-Forwarded: someone\r\n' : ''}X-Pad: `;
      const end = '\r\nConnection: close\r\n\r\n';
      const req = `${start}${'x'.repeat(8192 + pad - start.length - end.length)}${end}`;
      assert.strictEqual(req.length, 8192 + pad);
      const c = raw(A, 5000, { oneAnswer: true });
      await c.ready;
      c.sock.write(req);
      const [res] = parseResponses((await c.closed).buf);
      assert.ok(res, `an answer (pad ${pad}, forged ${forged})`);
      return res.status;
    };
    assert.strictEqual(await status(200, false), 431, 'over the limit without the header');
    assert.notStrictEqual(await status(200, true), 431, 'within the allowance with it');
    assert.strictEqual(await status(257, true), 431, 'past the allowance even with it');
  });
});

test('files calls answered 503 because the owner cannot be reached spend the api_call budget like any REST call', async () => {
  // protocol.md: "Every REST call except health and the rate-limit status
  // counts against the caller's api_call budget"; the owner never got these
  // requests, so the instance that answers 503 counts them (ADR 0019,
  // "Hostile review" 3).
  const r = await rh.startRedis();
  const args = ['--redis-url', r.url, '--rate-api-call', '3/1m'];
  const B = await h.startServer({ args });
  const C = await h.startServer({ args: [...args, '--advertise-addr', 'not-an-address'] });
  try {
    for (const S of [B, C]) await rh.waitRedisUp(S);
    await h.join(C, 'hf-unreach', 'owen', { role: 'host' });
    await h.waitFor(async () => (await rh.ownerOf([B, C], 'hf-unreach')) === C, 3000);
    const tok = f.tok(C, { sub: 'erin', room: 'hf-unreach' });
    const out = [];
    for (let i = 0; i < 6; i++) {
      out.push((await f.rest(B, 'GET', '/webrtc/rooms/hf-unreach/files/f0000000000000000000000000000000', { token: tok })).status);
    }
    assert.strictEqual(out[0], 503, `the owner cannot be reached (${out})`);
    assert.ok(out.includes(429), `the budget runs out (${out})`);
    h.closeAllClients();
    for (const S of [B, C]) await S.stopAndAssert();
  } finally {
    for (const S of [B, C]) { if (!S.exit) await S.stop({ signal: 'SIGKILL' }); S.cleanup(); }
    await r.cleanup();
  }
});

test('a forged X-Huddle-Forwarded for a room live on no instance is answered here as without it, not 503', async () => {
  // ADR 0019: a client setting the header itself "only gets that 503 for
  // rooms owned elsewhere"; the lookup runs first, as for any request.
  await rh.withCluster(2, async (r, [A, B]) => {
    const tok = f.tok(A, { sub: 'owen', room: 'hf-nowhere' });
    const url = '/webrtc/rooms/hf-nowhere/files/f0000000000000000000000000000000';
    const plain = await f.rest(B, 'GET', url, { token: tok });
    const forged = await f.rest(B, 'GET', url, { token: tok, headers: { 'X-Huddle-Forwarded': 'someone' } });
    assert.ok(plain.status < 500, `control: ${plain.status} ${plain.text}`);
    assert.strictEqual(forged.status, plain.status, forged.text);
    assert.strictEqual(forged.json.error.code, plain.json.error.code);
  });
});
