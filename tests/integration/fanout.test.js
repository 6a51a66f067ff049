'use strict';
// Batched writes (issue 16): frames are queued per connection and written
// once per loop turn. Bursts from many members at once must still reach
// every member whole, in seq order and in each sender's order; a close frame
// still goes after what was queued before it; a lone message still arrives.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

const MEMBERS = 8;
const BURST = 25;

test('fanout: simultaneous bursts reach every member complete, in seq order and in each sender\'s order', async () => {
  await h.withServer({}, async (srv) => {
    const specs = [];
    for (let i = 0; i < MEMBERS; i++) specs.push([`m${i}`, {}]);
    const { list } = await f.joinAll(srv, 'burst', specs);
    // Every member sends its burst in the same tick: the server reads many
    // messages in one loop turn and queues many frames per connection.
    for (const c of list) {
      for (let k = 0; k < BURST; k++) c.send({ type: 'chat-message', id: `${c.user}-${k}`, payload: { text: `${c.user} ${k}` } });
    }
    const total = MEMBERS * BURST;
    for (const c of list) {
      const got = [];
      while (got.length < total) got.push(await c.next('chat-message', 5000));
      for (let i = 1; i < got.length; i++) assert.ok(got[i].seq > got[i - 1].seq, `seq increases for ${c.user}`);
      for (const s of list) {
        const texts = got.filter((m) => m.from === s.user).map((m) => m.payload.text);
        assert.deepStrictEqual(texts, Array.from({ length: BURST }, (_, k) => `${s.user} ${k}`),
          `${c.user} got ${s.user}'s burst whole and in order`);
      }
      const refs = got.filter((m) => m.from === c.user).map((m) => m.ref);
      assert.deepStrictEqual(refs, Array.from({ length: BURST }, (_, k) => `${c.user}-${k}`), 'own echoes carry their refs in order');
    }
  });
});

test('fanout: the shutdown close frame (1001) goes after the messages queued before it', async () => {
  await h.withServer({}, async (srv) => {
    const { list } = await f.joinAll(srv, 'order', [['a', {}], ['b', {}]]);
    const [a, b] = list;
    // The burst and the signal race: whatever the server read before it
    // closed went to both members before their close frames, so b has
    // exactly the messages a got echoes of, in the same order.
    for (let k = 0; k < BURST; k++) a.send({ type: 'chat-message', payload: { text: `before ${k}` } });
    srv.proc.kill('SIGTERM');
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    assert.strictEqual(ca.code, 1001);
    assert.strictEqual(cb.code, 1001);
    const texts = (c) => c.all.filter((m) => m.type === 'chat-message').map((m) => m.payload.text);
    assert.deepStrictEqual(texts(b), texts(a), 'what a saw echoed, b received before the close');
    await srv.exited;
  });
});

test('fanout: a lone message on an idle server is delivered (no flush waits for more)', async () => {
  await h.withServer({}, async (srv) => {
    const { a, b } = await f.joinAll(srv, 'lone', [['a', {}], ['b', {}]]);
    a.send({ type: 'chat-message', payload: { text: 'just one' } });
    const m = await b.next('chat-message');
    assert.strictEqual(m.payload.text, 'just one');
  });
});
