'use strict';
// HTTP/1.1 strictness over raw sockets: exact bytes in, exact responses out.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const ARGS = ['--max-header-bytes', '1024', '--max-body-bytes', '1024', '--header-timeout-ms', '5000'];

/** Sends bytes, expects exactly one response with status (and code), then a close. */
async function expectOne(srv, bytes, status, code, { closes = true, timeoutMs = 2000 } = {}) {
  const r = await h.rawRequest(srv, bytes, { timeoutMs });
  assert.ok(r.responses.length >= 1,
    `expected HTTP ${status}${code ? ` ${code}` : ''} within ${timeoutMs} ms, got ${JSON.stringify(r.text.slice(0, 300)) || 'nothing'}` +
    `${r.closed ? ' and a close' : ''}`);
  const res = r.responses[0];
  assert.strictEqual(res.status, status, `status: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.ok(res.json && res.json.error, `JSON error body: ${res.text}`);
  if (code) assert.strictEqual(res.json.error.code, code);
  assert.strictEqual(typeof res.json.error.message, 'string');
  assert.strictEqual(typeof res.json.error.recovery, 'string');
  if (closes) {
    assert.ok(r.closed, 'the connection is closed after a malformed request');
    assert.strictEqual(r.responses.length, 1, 'exactly one response');
  }
  return { r, res };
}

test('HTTP strictness', async (t) => {
  await h.withServer({ args: ARGS }, async (srv) => {
    const s = (name, fn) => h.sub(t, name, srv, fn);

    await s('bare LF line endings -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\nHost: x\n\n', 400, 'BAD_REQUEST', { timeoutMs: 1000 });
    });
    await s('a bare LF inside CRLF headers -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('bare LF as the final line ending -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\n', 400, 'BAD_REQUEST', { timeoutMs: 1000 });
    });
    await s('bare CR -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('obs-fold continuation line -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\nX-A: b\r\n  c\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('obs-fold with a tab -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('whitespace before the colon -> 400', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/1.1\r\nHost : a\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('HTTP/0.9 request line -> 400', async () => {
      await expectOne(srv, 'GET /\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('garbage request line -> 400', async () => {
      await expectOne(srv, 'HELLO\r\n\r\n', 400, 'BAD_REQUEST');
    });
    await s('HTTP/9.9 -> 505', async () => {
      const { res } = await expectOne(srv, 'GET /webrtc/health HTTP/9.9\r\nHost: x\r\n\r\n', 505);
      assert.strictEqual(res.version, '1.1');
    });
    await s('HTTP/2.0 -> 505', async () => {
      await expectOne(srv, 'GET /webrtc/health HTTP/2.0\r\nHost: x\r\n\r\n', 505);
    });
    await s('headers over --max-header-bytes -> 431', async () => {
      await expectOne(srv, `GET /webrtc/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE');
    });
    await s('an unterminated head over --max-header-bytes -> 431 without waiting', async () => {
      const { r } = await expectOne(srv, `GET /webrtc/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2000)}`, 431, 'HEADERS_TOO_LARGE');
      assert.ok(r.ms < 2000, `answered after ${r.ms} ms`);
    });
    await s('more than 100 headers -> 431', async () => {
      let hs = '';
      for (let i = 0; i < 101; i++) hs += `X${i}: y\r\n`;
      await expectOne(srv, `GET /webrtc/health HTTP/1.1\r\n${hs}\r\n`, 431, 'HEADERS_TOO_LARGE');
    });
    await s('body over --max-body-bytes -> 413', async () => {
      await expectOne(srv, `POST /webrtc/health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n${'{'.repeat(5000)}`, 413, 'PAYLOAD_TOO_LARGE');
    });
    await s('announced body over --max-body-bytes -> 413 before it is sent', async () => {
      await expectOne(srv, 'POST /webrtc/config HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n', 413, 'PAYLOAD_TOO_LARGE');
    });
    await s('chunked body over --max-body-bytes -> 413', async () => {
      const chunk = 'x'.repeat(800);
      const body = `320\r\n${chunk}\r\n320\r\n${chunk}\r\n0\r\n\r\n`;
      await expectOne(srv, `POST /webrtc/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, 413, 'PAYLOAD_TOO_LARGE');
    });
    await s('unknown path -> 404 NOT_FOUND JSON', async () => {
      const { res } = await expectOne(srv, 'GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 404, 'NOT_FOUND');
      assert.strictEqual(res.headers['x-content-type-options'], 'nosniff');
    });
    await s('an unknown REST route under /webrtc/rooms -> 404 NOT_FOUND', async () => {
      const r = await h.httpGet(srv, '/webrtc/rooms/demo/nope');
      assert.strictEqual(r.status, 404);
      assert.strictEqual(r.json.error.code, 'NOT_FOUND');
    });
    await s('POST /webrtc/health -> 405 with Allow', async () => {
      const { res } = await expectOne(srv, 'POST /webrtc/health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n', 405, 'METHOD_NOT_ALLOWED');
      assert.ok(res.headers.allow, 'Allow header present');
      assert.match(res.headers.allow, /\bGET\b/);
    });
    await s('DELETE /webrtc/config -> 405 with Allow: GET', async () => {
      const r = await h.httpRequest(srv, 'DELETE', '/webrtc/config');
      assert.strictEqual(r.status, 405);
      assert.strictEqual(r.json.error.code, 'METHOD_NOT_ALLOWED');
      assert.match(String(r.headers.allow), /\bGET\b/);
    });
    await s('GET on the WebSocket path without an upgrade -> 426 UPGRADE_REQUIRED', async () => {
      const r = await h.httpGet(srv, `/webrtc/ws/demo?token=${h.mintToken(h.SECRET, { sub: 'alice' })}`);
      assert.strictEqual(r.status, 426);
      assert.strictEqual(r.json.error.code, 'UPGRADE_REQUIRED');
    });
    await s('keep-alive: two requests on one socket are both answered', async () => {
      const c = await h.rawConnect(srv);
      await c.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
      const a = await c.response();
      assert.strictEqual(a.status, 200);
      assert.strictEqual(a.json.status, 'ok');
      assert.match(String(a.headers.connection), /keep-alive/i);
      await c.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
      const b = await c.response();
      assert.strictEqual(b.status, 200);
      assert.strictEqual(b.json.status, 'ok');
      // A 404 keeps the connection too.
      await c.write('GET /missing HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.strictEqual((await c.response()).status, 404);
      await c.write('GET /webrtc/config HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.strictEqual((await c.response()).status, 200);
      assert.ok(!c.ended && !c.closedFlag, 'still open');
      c.destroy();
    });
    await s('pipelined requests in one write are answered in order', async () => {
      const c = await h.rawConnect(srv);
      await c.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /webrtc/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      const rs = await c.responses(3);
      assert.deepStrictEqual(rs.map((r) => r.status), [200, 404, 200]);
      assert.strictEqual(rs[0].json.status, 'ok');
      assert.ok(Array.isArray(rs[2].json.ice_servers));
      assert.ok(await c.waitClosed(2000), 'Connection: close is honoured');
      c.destroy();
    });
    await s('a request split across many writes is answered', async () => {
      const req = 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
      const parts = [];
      for (let i = 0; i < req.length; i += 7) parts.push(req.slice(i, i + 7));
      const c = await h.rawConnect(srv);
      for (const p of parts) { await c.write(p); await h.delay(1); }
      assert.strictEqual((await c.response()).status, 200);
      c.destroy();
    });
    await s('HTTP/1.0 is answered and closed', async () => {
      const r = await h.rawRequest(srv, 'GET /webrtc/health HTTP/1.0\r\n\r\n');
      assert.strictEqual(r.responses.length, 1);
      assert.strictEqual(r.responses[0].status, 200);
      assert.ok(r.closed);
    });
    await s('a malformed request after a good one on the same socket: answer, then 400 and close', async () => {
      const r = await h.rawRequest(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost : y\r\n\r\n');
      assert.deepStrictEqual(r.responses.map((x) => x.status), [200, 400]);
      assert.ok(r.closed);
    });
    await s('the server still answers normally after all that', async () => {
      const r = await h.httpGet(srv, '/webrtc/health');
      assert.strictEqual(r.status, 200);
    });
  });
});

test('an idle keep-alive connection is closed after --idle-timeout-ms', async () => {
  await h.withServer({ args: ['--idle-timeout-ms', '300'] }, async (srv) => {
    const c = await h.rawConnect(srv);
    await c.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.strictEqual((await c.response()).status, 200);
    const t0 = Date.now();
    assert.ok(await c.waitClosed(3000), 'closed after the idle timeout');
    const ms = Date.now() - t0;
    assert.ok(ms >= 200, `closed after ${ms} ms, not before the idle timeout`);
    c.destroy();
  });
});
