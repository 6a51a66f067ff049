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
