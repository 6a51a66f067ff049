'use strict';
// Several instances (issue 11): REST answers that must not depend on the
// instance asked. The rate-limit status reads the shared budget in Redis;
// a REST call forwarded to a room's owner keeps HTTP/1.1 keep-alive and
// the order of pipelined requests.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const rh = require('./redis_helpers');

async function status(S, token, cls) {
  const r = await h.api(S, 'GET', `/webrtc/rate-limits/${cls}/status`, token);
  assert.strictEqual(r.status, 200, r.text);
  return r.json;
}

test('GET /webrtc/rate-limits/{class}/status: every instance reports the same shared budget', async () => {
  const args = ['--rate-chat-message', '10/1m', '--rate-api-call', '50/1m'];
  await rh.withCluster(2, { rateLimits: true, args }, async (r, [A, B]) => {
    const x = await h.join(A, 'st-x', 'dana'); // owned by A
    const y = await h.join(B, 'st-y', 'dana'); // owned by B
    const tok = h.mintToken(A.secret, { sub: 'dana' });
    for (const S of [A, B]) {
      const s = await status(S, tok, 'chat_message');
      assert.strictEqual(s.user_id, 'dana');
      assert.strictEqual(s.limit, 10);
      assert.strictEqual(s.window_ms, 60000);
      assert.strictEqual(s.remaining, 10, `nothing spent yet: ${JSON.stringify(s)}`);
    }
    // Three chats through A's room, two through B's: one budget.
    for (let i = 0; i < 5; i++) {
      const c = i < 3 ? x : y;
      const id = `k${i}`;
      c.send({ type: 'chat-message', id, payload: { text: `t${i}` } });
      const m = await c.nextWhere((mm) => mm.ref === id || (mm.payload && mm.payload.ref === id), 3000);
      assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
    }
    for (const S of [A, B]) {
      const s = await status(S, tok, 'chat_message');
      assert.strictEqual(s.remaining, 5, `instance ${S.port}: ${JSON.stringify(s)}`);
      assert.ok(s.reset_ms > 0 && s.reset_ms <= 60000, JSON.stringify(s));
      assert.ok(Math.abs(s.reset_at - (Date.now() + s.reset_ms)) < 5000, JSON.stringify(s));
    }
    // api_call: REST calls counted on A show on B (the status read itself counts nothing).
    for (let i = 0; i < 4; i++) assert.strictEqual((await h.api(A, 'GET', '/webrtc/config', tok)).status, 200);
    const sa = await status(A, tok, 'api_call');
    const sb = await status(B, tok, 'api_call');
    assert.strictEqual(sa.limit, 50);
    assert.strictEqual(sa.remaining, 46, JSON.stringify(sa));
    assert.strictEqual(sb.remaining, 46, JSON.stringify(sb));
    // Another user's budget is untouched; errors are as on one instance.
    assert.strictEqual((await status(B, h.mintToken(A.secret, { sub: 'erin' }), 'chat_message')).remaining, 10);
    h.assertApiError(await h.api(B, 'GET', '/webrtc/rate-limits/nope/status', tok), 404, 'UNKNOWN_LIMIT_TYPE');
    h.assertApiError(await h.api(B, 'GET', '/webrtc/rate-limits/chat_message/status', null), 401, 'UNAUTHORIZED');
  });
});

test('a REST call forwarded to the room\'s owner keeps the connection alive; pipelined calls stay in order', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const hana = await h.join(A, 'ka', 'hana', { role: 'host', room: 'ka' }); // A owns room ka
    const tok = h.mintToken(A.secret, { sub: 'hana', room: 'ka', role: 'host' });
    const req = (method, p, body) => `${method} ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n` +
      (body ? `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` : '') + `\r\n${body || ''}`;
    const c = await h.rawConnect(B);
    try {
      // One at a time: each forwarded answer says keep-alive and the connection serves the next.
      await c.write(req('GET', '/webrtc/rooms/ka/settings'));
      let [x] = await c.responses(1, 5000);
      assert.strictEqual(x.status, 200, x.text);
      assert.strictEqual(x.headers.connection, 'keep-alive');
      assert.strictEqual(x.json.settings ? typeof x.json.settings : typeof x.json, 'object');
      // Pipelined: forwarded, local, forwarded (a change), forwarded (reads the change), local.
      await c.write(req('GET', '/webrtc/rooms/ka/participants') + req('GET', '/webrtc/config') +
        req('POST', '/webrtc/rooms/ka/settings', JSON.stringify({ mute_on_join: true })) +
        req('GET', '/webrtc/rooms/ka/settings') + req('GET', '/webrtc/health'));
      const rs = await c.responses(5, 8000);
      assert.deepStrictEqual(rs.map((y) => y.status), [200, 200, 200, 200, 200], rs.map((y) => y.text).join('\n'));
      assert.deepStrictEqual(rs.map((y) => y.headers.connection), Array(5).fill('keep-alive'));
      assert.ok(JSON.stringify(rs[0].json).includes('hana'), `participants first: ${rs[0].text}`);
      assert.ok(!('components' in rs[1].json) && !JSON.stringify(rs[1].json).includes('hana'), `config second: ${rs[1].text}`);
      const muted = (y) => (y.json.settings || y.json).mute_on_join;
      assert.strictEqual(muted(rs[3]), true, `the read after the change sees it: ${rs[3].text}`);
      assert.ok('components' in rs[4].json, `health last: ${rs[4].text}`);
      assert.ok(!c.ended && !c.closedFlag, 'the connection is still open');
      // The client's "Connection: close" is honoured for a forwarded call too.
      await c.write(`GET /webrtc/rooms/ka/settings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nConnection: close\r\n\r\n`);
      [x] = await c.responses(1, 5000);
      assert.strictEqual(x.status, 200);
      assert.strictEqual(x.headers.connection, 'close');
      assert.ok(await c.waitClosed(3000), 'closed after the answer');
    } finally {
      c.destroy();
    }
    void hana;
  });
});

test('chat history through an instance that does not own the room: the owner\'s held store read is answered', async () => {
  await rh.withCluster(2, async (r, [A, B]) => {
    const alice = await h.join(A, 'hist', 'alice', { room: 'hist' }); // A owns room hist
    for (const text of ['one', 'two']) {
      alice.send({ type: 'chat-message', id: text, payload: { text } });
      await alice.nextWhere((m) => m.type === 'chat-message' && m.ref === text, 3000);
    }
    const tok = h.mintToken(A.secret, { sub: 'alice', room: 'hist' });
    const c = await h.rawConnect(B);
    try {
      const req = (p) => `GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\n\r\n`;
      await c.write(req('/webrtc/rooms/hist/chat') + req('/webrtc/health') + req('/webrtc/rooms/hist/chat?q=two'));
      const rs = await c.responses(3, 8000);
      assert.deepStrictEqual(rs.map((y) => y.status), [200, 200, 200], rs.map((y) => y.text).join('\n'));
      assert.deepStrictEqual(rs[0].json.messages.map((m) => m.text).sort(), ['one', 'two'], rs[0].text);
      assert.ok('components' in rs[1].json, 'health second');
      assert.deepStrictEqual(rs[2].json.messages.map((m) => m.text), ['two'], rs[2].text);
    } finally {
      c.destroy();
    }
  });
});
