'use strict';
// The store's writer gives back its cache and free memory when it has been
// quiet for a ping interval (src/store/store.c, store_idle_release): after
// that, history reads what was written before, full-text search still finds
// it, and new chat is stored and found too.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

async function say(c, text, id) {
  c.send({ type: 'chat-message', id, payload: { text } });
  return c.nextWhere((m) => m.ref === id, 5000, `echo of ${id}`);
}

test('after the idle release, stored chat reads back and new chat is stored', async () => {
  await h.withServer({ args: ['--log-level', 'debug'] }, async (srv) => {
    const { alice } = await f.joinAll(srv, 'idle', [['alice'], ['bob']]);
    for (let i = 1; i <= 200; i++) await say(alice, `before release note ${i} walrus${i}`, `a${i}`);
    await srv.waitForLog(/store_idle_release backend=sqlite us=\d+/, 8000);
    const tok = f.tok(srv, { sub: 'bob', room: 'idle' });
    let r = await f.rest(srv, 'GET', '/webrtc/rooms/idle/chat?limit=100', { token: tok });
    assert.strictEqual(r.status, 200, r.text);
    assert.strictEqual(r.json.messages.length, 100);
    assert.strictEqual(r.json.messages[99].text, 'before release note 200 walrus200');
    r = await f.rest(srv, 'GET', '/webrtc/rooms/idle/chat?q=walrus17', { token: tok });
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), ['before release note 17 walrus17']);
    await say(alice, 'after release narwhal', 'z');
    r = await f.rest(srv, 'GET', '/webrtc/rooms/idle/chat?q=narwhal', { token: tok });
    assert.deepStrictEqual(r.json.messages.map((m) => m.text), ['after release narwhal']);
    // Once per quiet spell: the next release follows the next write.
    const n = (srv.stderr.match(/store_idle_release/g) || []).length;
    await srv.waitForLog(new RegExp(`(store_idle_release[^]*){${n + 1}}`), 8000);
  });
});
