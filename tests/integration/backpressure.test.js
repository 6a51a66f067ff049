'use strict';
// What the socket does not take at once (src/net/server.c: the sendq, then
// writability): a WebSocket client that stops reading gets everything, in
// order, once it reads again; a file download to a reader that pauses
// arrives whole and ends with EOF; an HTTP answer with Connection: close is
// written in full before the server half-closes. Each sends far more than
// loopback's socket buffers hold, so the server must wait for writability.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const net = require('node:net');
const h = require('./helpers');
const f = require('./feature_helpers');

const MiB = 1024 * 1024;
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

test('a member that stops reading gets every frame, in order, once it reads again', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const slow = await h.join(srv, 'bp', 'slow');
    const sender = await h.join(srv, 'bp', 'sender');
    await slow.next('user-joined');
    slow.ws._socket.pause();
    const n = 400; // 400 x 60 KiB = 24 MiB: more than loopback buffers in both directions
    for (let i = 0; i < n; i++) {
      sender.send({ type: 'offer', to: 'slow', payload: { type: 'offer', sdp: h.sdp(60 * 1024, `n${i}`) } });
      while (sender.ws.bufferedAmount > 2 * MiB) await h.delay(2);
    }
    // Everything went out of the sender; the server holds what slow does not read.
    await h.delay(300);
    assert.ok(slow.all.filter((m) => m.type === 'offer').length < n, 'the pause held frames back');
    slow.ws._socket.resume();
    const got = await h.waitFor(() => {
      const o = slow.all.filter((m) => m.type === 'offer');
      return o.length >= n ? o : null;
    }, 30000, 20, 'every offer at the slow member');
    assert.strictEqual(got.length, n);
    got.forEach((m, i) => assert.ok(m.payload.sdp.includes(`a=tag:n${i}\r\n`), `offer ${i} in order`));
    // Still a working connection, both ways.
    sender.send({ type: 'offer', to: 'slow', payload: { type: 'offer', sdp: 'v=0\r\n' } });
    assert.strictEqual((await slow.nextWhere((m) => m.type === 'offer' && m.payload.sdp === 'v=0\r\n')).from, 'sender');
    slow.send({ type: 'answer', to: 'sender', payload: { type: 'answer', sdp: 'v=0\r\n' } });
    assert.strictEqual((await sender.next('answer')).from, 'slow');
  });
});

/** A raw GET on its own socket that reads nothing for pauseMs, then all. */
function rawGet(srv, path, headers, pauseMs) {
  return new Promise((resolve, reject) => {
    const [host, port] = srv.addr.split(':');
    const s = net.connect(Number(port), host);
    const chunks = [];
    s.on('error', reject);
    s.on('connect', () => {
      s.pause();
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      setTimeout(() => s.resume(), pauseMs);
    });
    s.on('data', (d) => chunks.push(d));
    s.on('end', () => {
      const all = Buffer.concat(chunks);
      const i = all.indexOf('\r\n\r\n');
      resolve({ head: all.subarray(0, i).toString('latin1'), body: all.subarray(i + 4) });
    });
  });
}

test('a download to a reader that pauses arrives whole, then the server half-closes', async () => {
  await h.withServer({ args: ['--max-send-queue', String(64 * 1024), '--metrics-token', 'scrape-token-0123456789abcdef'] }, async (srv) => {
    const line = Buffer.from('big the quick brown fox jumps over the lazy dog 0123456789\n');
    const data = Buffer.alloc(12 * MiB);
    for (let o = 0; o < data.length; o += line.length) line.copy(data, o, 0, Math.min(line.length, data.length - o));
    const rnd = crypto.randomBytes(Math.floor(data.length / 97)); // no two runs alike
    for (let i = 0; i < rnd.length; i++) data[i * 97] = 97 + (rnd[i] % 26);
    const { url, btok } = await f.shareFile(srv, 'dl', data, 'big.txt');
    // The body is far above --max-send-queue: a stream is paced by the socket, not cut as a slow reader.
    const [a, b] = await Promise.all([
      rawGet(srv, url, { Authorization: `Bearer ${btok}`, Connection: 'close' }, 400),
      rawGet(srv, url, { Authorization: `Bearer ${btok}`, Range: 'bytes=1000-5000999', Connection: 'close' }, 200),
    ]);
    assert.match(a.head, /^HTTP\/1.1 200/);
    assert.strictEqual(a.body.length, data.length);
    assert.strictEqual(sha256(a.body), sha256(data));
    assert.match(b.head, /^HTTP\/1.1 206/);
    assert.strictEqual(b.body.length, 5000000);
    assert.ok(b.body.equals(data.subarray(1000, 5001000)));
    const m = await f.rest(srv, 'GET', '/metrics', { token: 'scrape-token-0123456789abcdef' });
    assert.match(m.text, /^huddle_slow_consumers_dropped_total 0$/m);
  });
});

test('pipelined answers to a paused reader, the last with Connection: close, all arrive before the half-close', async () => {
  await h.withServer({ args: ['--max-send-queue', String(256 * MiB)] }, async (srv) => {
    const one = await h.httpRequest(srv, 'GET', '/webrtc/openapi.json');
    assert.strictEqual(one.status, 200);
    const size = Buffer.byteLength(one.text);
    const n = Math.ceil((24 * MiB) / size); // far more than loopback's buffers
    const [host, port] = srv.addr.split(':');
    const s = net.connect(Number(port), host);
    const chunks = [];
    await new Promise((resolve) => s.on('connect', resolve));
    s.pause();
    let req = '';
    for (let i = 0; i < n; i++) req += `GET /webrtc/openapi.json HTTP/1.1\r\nHost: x\r\n${i === n - 1 ? 'Connection: close\r\n' : ''}\r\n`;
    s.write(req);
    await h.delay(500);
    s.on('data', (d) => chunks.push(d));
    const ended = new Promise((resolve, reject) => { s.on('end', resolve); s.on('error', reject); });
    s.resume();
    await ended;
    const all = Buffer.concat(chunks).toString('latin1');
    const heads = all.match(/HTTP\/1\.1 200 OK\r\n/g) || [];
    assert.strictEqual(heads.length, n, `${heads.length} of ${n} answers before the end`);
    const last = all.lastIndexOf('HTTP/1.1 200 OK');
    const tail = all.slice(last);
    const len = Number(/content-length: (\d+)/i.exec(tail)[1]);
    assert.strictEqual(tail.length - tail.indexOf('\r\n\r\n') - 4, len, 'the last answer is whole');
    assert.match(tail, /connection: close/i);
  });
});
