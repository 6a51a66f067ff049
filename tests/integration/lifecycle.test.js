'use strict';
// Timers and process lifecycle: ping/pong keepalive, dead peers, slow request
// heads, graceful shutdown on SIGTERM.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

test('keepalive: a ws client that answers pings stays; a paused one is dropped with reason timeout', async (t) => {
  // Without a grace period: a dead peer leaves at once (resume.test.js covers the grace period).
  await h.withServer({ args: ['--ping-interval-ms', '200', '--resume-grace-ms', '0'] }, async (srv) => {
    await h.sub(t, 'an answering client stays connected for > 1 s and gets pings', srv, async () => {
      const alice = await h.join(srv, 'ka', 'alice');
      const bob = await h.join(srv, 'ka', 'bob');
      await alice.next('user-joined');
      const t0 = Date.now();
      // Neither side sends anything: only ping/pong keeps them alive.
      await h.delay(1300);
      assert.ok(Date.now() - t0 >= 1200);
      assert.strictEqual(alice.close, null, `alice was closed: ${JSON.stringify(alice.close)}`);
      assert.strictEqual(bob.close, null, `bob was closed: ${JSON.stringify(bob.close)}`);
      assert.ok(alice.pings >= 2, `alice got ${alice.pings} pings in 1.3 s at a 200 ms interval`);
      assert.ok(bob.pings >= 2, `bob got ${bob.pings} pings`);
      await alice.expectNone(0);
      await bob.expectNone(0);
      // Still relaying.
      alice.send({ type: 'offer', to: 'bob', payload: { type: 'offer', sdp: 'v=0\r\n' } });
      assert.strictEqual((await bob.next('offer')).from, 'alice');
      await alice.end();
      await bob.end();
    });
    await h.sub(t, 'a client that cannot answer is dropped and the others get user-left timeout', srv, async () => {
      const alice = await h.join(srv, 'ka2', 'alice');
      const bob = await h.join(srv, 'ka2', 'bob');
      await alice.next('user-joined');
      bob.ws._socket.pause(); // no reads, so no pongs
      const t0 = Date.now();
      const l = await alice.next('user-left', 3000);
      const ms = Date.now() - t0;
      assert.deepStrictEqual(l.payload, { user_id: 'bob', reason: 'timeout' });
      assert.ok(ms >= 250, `dropped after ${ms} ms: not before two intervals of silence`);
      await srv.waitForLog(/dead_peer/);
      assert.strictEqual(alice.close, null, 'alice, who answers pings, stays');
      bob.terminate();
      await alice.end();
    });
  });
});

test('a client that pings keeps a silent connection open; the server answers its pings', async () => {
  await h.withServer({ args: ['--ping-interval-ms', '200'] }, async (srv) => {
    const alice = await h.join(srv, 'cp', 'alice');
    const pongs = [];
    alice.ws.on('pong', (d) => pongs.push(d.toString()));
    alice.ws.ping('p1');
    await h.waitFor(() => pongs.includes('p1'), 2000, 10, 'pong p1');
    await alice.end();
  });
});

test('a slow request head gets 408 REQUEST_TIMEOUT and the socket is closed', async () => {
  await h.withServer({ args: ['--header-timeout-ms', '300'] }, async (srv) => {
    const r = await h.rawRequest(srv, 'GET /webrtc/health HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 3000 });
    assert.ok(r.closed, `socket closed (got ${JSON.stringify(r.text)})`);
    assert.strictEqual(r.responses.length, 1, `one response: ${JSON.stringify(r.text)}`);
    const res = r.responses[0];
    assert.strictEqual(res.status, 408);
    assert.strictEqual(res.json && res.json.error.code, 'REQUEST_TIMEOUT');
    assert.ok(r.ms >= 250 && r.ms < 2500, `answered after ${r.ms} ms with a 300 ms header timeout`);
    // Dribbling bytes does not extend the deadline.
    const c = await h.rawConnect(srv);
    const t0 = Date.now();
    await c.write('GET /webrtc/health HTTP/1.1\r\n');
    for (let i = 0; i < 6 && !c.ended; i++) {
      await h.delay(100);
      try { await c.write(`X-${i}: y\r\n`); } catch (_) { break; }
    }
    assert.ok(await c.waitClosed(3000), 'closed');
    const res2 = h.parseResponses(c.buf).responses[0];
    assert.ok(res2, `a response: ${JSON.stringify(c.buf.toString())}`);
    assert.strictEqual(res2.status, 408);
    assert.ok(Date.now() - t0 < 2500);
    c.destroy();
    // A body that never arrives in full times out the same way.
    const b = await h.rawRequest(srv, 'POST /webrtc/health HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a":', { timeoutMs: 3000 });
    assert.ok(b.closed, 'closed');
    assert.strictEqual(b.responses.length, 1, JSON.stringify(b.text));
    assert.strictEqual(b.responses[0].status, 408);
    assert.strictEqual(b.responses[0].json.error.code, 'REQUEST_TIMEOUT');
  });
});

test('a connection that never sends a byte is closed (header or idle timeout)', async () => {
  const args = ['--header-timeout-ms', '300', '--idle-timeout-ms', '300'];
  await h.withServer({ args }, async (srv) => {
    const idle = await h.rawConnect(srv);
    const t0 = Date.now();
    const closed = await idle.waitClosed(2500);
    idle.destroy();
    assert.ok(closed, `a silent connection was still open after ${Date.now() - t0} ms with ` +
      '--header-timeout-ms 300 --idle-timeout-ms 300');
    const res = h.parseResponses(idle.buf).responses[0];
    if (res) assert.strictEqual(res.status, 408);
  });
});

test('graceful shutdown: SIGTERM closes WebSockets with 1001 and exits 0 within 5 s', async () => {
  const srv = await h.startServer();
  try {
    const alice = await h.join(srv, 'bye', 'alice');
    const bob = await h.join(srv, 'bye', 'bob');
    await alice.next('user-joined');
    const http = await h.rawConnect(srv); // an idle keep-alive HTTP connection too
    await http.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.strictEqual((await http.response()).status, 200);
    const r = await srv.stop({ timeoutMs: 5000 });
    assert.ok(!r.hung, 'exited within 5 s');
    const [ca, cb] = await Promise.all([alice.waitClose(1000), bob.waitClose(1000)]);
    assert.strictEqual(ca.code, 1001);
    assert.strictEqual(cb.code, 1001);
    assert.ok(await http.waitClosed(1000), 'idle HTTP connection closed');
    http.destroy();
    assert.strictEqual(r.signal, null);
    assert.strictEqual(r.code, 0, `exit code ${r.code}`);
    assert.ok(r.ms < 5000, `exit took ${r.ms} ms`);
    assert.match(srv.stderr, /shutdown_begin/);
    srv.cleanup();
  } catch (e) {
    h.closeAllClients();
    await srv.stop();
    throw h.decorateError(e, srv);
  }
});

test('graceful shutdown does not wait forever for a client that never reads', async () => {
  const srv = await h.startServer({ args: ['--shutdown-timeout-ms', '300'] });
  try {
    const alice = await h.join(srv, 'stuck', 'alice');
    const bob = await h.join(srv, 'stuck', 'bob');
    bob.ws._socket.pause();
    await alice.next('user-joined');
    // And an HTTP request whose head never completes.
    const partial = await h.rawConnect(srv);
    await partial.write('GET /webrtc/health HTTP/1.1\r\nHost: x\r\n');
    const r = await srv.stop({ timeoutMs: 5000 });
    assert.ok(await partial.waitClosed(1000), 'the half-sent request is closed');
    partial.destroy();
    assert.ok(!r.hung, 'exited within 5 s');
    assert.strictEqual((await alice.waitClose(1000)).code, 1001);
    assert.strictEqual(r.signal, null);
    assert.strictEqual(r.code, 0, `exit code ${r.code}`);
    assert.ok(r.ms < 3000, `exit took ${r.ms} ms with --shutdown-timeout-ms 300`);
    bob.terminate();
    srv.cleanup();
  } catch (e) {
    h.closeAllClients();
    await srv.stop();
    throw h.decorateError(e, srv);
  }
});

test('SIGINT shuts down cleanly too', async () => {
  const srv = await h.startServer();
  try {
    const alice = await h.join(srv, 'int', 'alice');
    const r = await srv.stop({ signal: 'SIGINT', timeoutMs: 5000 });
    assert.strictEqual((await alice.waitClose(1000)).code, 1001);
    assert.ok(!r.hung);
    assert.strictEqual(r.code, 0);
    srv.cleanup();
  } catch (e) {
    h.closeAllClients();
    await srv.stop();
    throw h.decorateError(e, srv);
  }
});
