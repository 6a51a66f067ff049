'use strict';
// Several instances (issue 11): a Redis connection that stops answering
// without closing (a reset the client library missed, a network path that
// drops everything) is noticed, dropped and made again. huddle reaches
// Redis here through a TCP proxy of the test's own that can stop carrying
// the connections it holds while accepting new ones.

const test = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const h = require('./helpers');
const rh = require('./redis_helpers');
const f = require('./feature_helpers');

/** A proxy to Redis on port; resolves {port, stall(), close()}. stall() stops the connections it has. */
async function startProxy(port) {
  const pairs = new Set();
  const server = net.createServer((client) => {
    const up = net.connect(port, h.HOST);
    const pair = { client, up, stalled: false };
    pairs.add(pair);
    client.on('data', (d) => { if (!pair.stalled) up.write(d); });
    up.on('data', (d) => { if (!pair.stalled) client.write(d); });
    const end = () => { pairs.delete(pair); client.destroy(); up.destroy(); };
    client.on('close', end);
    up.on('close', end);
    client.on('error', end);
    up.on('error', end);
  });
  await new Promise((resolve) => server.listen(0, h.HOST, resolve));
  return {
    port: server.address().port,
    stall() {
      for (const p of pairs) p.stalled = true;
      return pairs.size;
    },
    close() {
      for (const p of pairs) { p.client.destroy(); p.up.destroy(); }
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

test('a Redis command connection that stops answering is dropped and made again; REST calls do not wait on it for ever', async () => {
  const r = await rh.startRedis();
  const proxy = await startProxy(r.port);
  let A;
  try {
    A = await h.startServer({ args: ['--redis-url', `redis://${h.HOST}:${proxy.port}`] });
    await rh.waitRedisUp(A);
    const admin = f.adminTok(A);
    assert.strictEqual((await h.api(A, 'GET', '/webrtc/rooms', admin)).status, 200);
    const before = (await rh.clusterHealth(A)).components.cluster;
    // Both connections go silent: no reply, no close.
    assert.strictEqual(proxy.stall(), 2);
    // A REST call counts api_call in Redis first: answered once the silent
    // connection is given up (as with Redis away), not cut by the header
    // timeout (10 s) while it waits.
    const res = await h.httpRequest(A, 'GET', '/webrtc/rooms',
      { headers: { Authorization: `Bearer ${admin}` }, timeoutMs: 30000 });
    assert.strictEqual(res.status, 200, res.text);
    // Connected again through the proxy, and working.
    await rh.waitRedisUp(A, 15000);
    const hc = (await rh.clusterHealth(A)).components.cluster;
    assert.ok(hc.instance_id === before.instance_id);
    assert.strictEqual((await h.api(A, 'GET', '/webrtc/rooms', admin)).status, 200);
    assert.match(A.stderr, /redis_cmd_stuck/);
    await A.stopAndAssert();
  } catch (e) {
    if (A) h.decorateError(e, A);
    throw e;
  } finally {
    if (A && !A.exit) await A.stop({ signal: 'SIGKILL' }).catch(() => {});
    if (A) A.cleanup();
    await proxy.close();
    await r.cleanup();
  }
});
