'use strict';
// Bad WebSocket input: each gets an `error` reply with the right code and the
// connection lives on (a following valid offer still relays).

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

const GOOD = { type: 'offer', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n' };

function nested(n) {
  return '['.repeat(n) + ']'.repeat(n);
}

// [name, frame (string or {binary}), expected code, expected ref]
const CASES = [
  ['malformed JSON', '{"type":"offer",', 'INVALID_JSON'],
  ['malformed JSON (bare word)', 'bad', 'INVALID_JSON'],
  ['empty text frame', '', 'INVALID_JSON'],
  ['trailing garbage', '{"type":"offer"} x', 'INVALID_JSON'],
  ['duplicate keys', '{"type":"offer","to":"bob","type":"answer","payload":{}}', 'DUPLICATE_KEY'],
  ['duplicate keys nested', '{"type":"offer","to":"bob","payload":{"sdp":"v=0","sdp":"v=0"}}', 'DUPLICATE_KEY'],
  ['100 nested arrays', nested(100), 'JSON_TOO_DEEP'],
  ['100 nested arrays in the payload', `{"type":"offer","id":"deep","to":"bob","payload":{"x":${nested(100)}}}`, 'JSON_TOO_DEEP'],
  ['too many values', JSON.stringify({ type: 'offer', to: 'bob', payload: { sdp: 'v=0', x: new Array(5000).fill(0) } }), 'JSON_TOO_LARGE'],
  ['unknown type', { type: 'no-such-type', id: 'u1' }, 'UNKNOWN_MESSAGE_TYPE', 'u1'],
  ['type is case-sensitive', { type: 'OFFER', id: 'u2', to: 'bob', payload: GOOD }, 'UNKNOWN_MESSAGE_TYPE', 'u2'],
  ['server-only room-state', { type: 'room-state', id: 's1' }, 'SERVER_ONLY_MESSAGE', 's1'],
  ['server-only user-joined', { type: 'user-joined', id: 's2', payload: { user_id: 'x' } }, 'SERVER_ONLY_MESSAGE', 's2'],
  ['server-only user-left', { type: 'user-left', id: 's3', payload: { user_id: 'bob' } }, 'SERVER_ONLY_MESSAGE', 's3'],
  ['server-only error', { type: 'error', id: 's4' }, 'SERVER_ONLY_MESSAGE', 's4'],
  ['bad room-settings-update', { type: 'room-settings-update', id: 'p1', payload: { locked: 'yes' } }, 'INVALID_SETTINGS', 'p1'],
  ['bad participant-update', { type: 'participant-update', id: 'p2', payload: {} }, 'INVALID_MESSAGE', 'p2'],
  ['bad media-control', { type: 'media-control', id: 'p3' }, 'INVALID_MESSAGE', 'p3'],
  ['non-object JSON: array', '[1,2,3]', 'INVALID_MESSAGE'],
  ['non-object JSON: string', '"offer"', 'INVALID_MESSAGE'],
  ['non-object JSON: number', '42', 'INVALID_MESSAGE'],
  ['non-object JSON: null', 'null', 'INVALID_MESSAGE'],
  ['missing type', { id: 'm1', to: 'bob', payload: GOOD }, 'INVALID_MESSAGE', 'm1'],
  ['type not a string', { type: 7, id: 'm2' }, 'INVALID_MESSAGE', 'm2'],
  ['payload not an object', { type: 'offer', id: 'm3', to: 'bob', payload: 'v=0' }, 'INVALID_MESSAGE', 'm3'],
  ['id too long', { type: 'offer', id: 'i'.repeat(65), to: 'bob', payload: GOOD }, 'INVALID_MESSAGE'],
  ['binary frame', { binary: Buffer.from(JSON.stringify({ type: 'offer', to: 'bob', payload: GOOD })) }, 'INVALID_MESSAGE'],
];

test('bad messages get an error reply and the connection lives', async (t) => {
  await h.withServer({}, async (srv) => {
    const alice = await h.join(srv, 'bad', 'alice', { role: 'host' });
    const bob = await h.join(srv, 'bad', 'bob');
    await alice.next('user-joined');
    let n = 0;
    for (const [name, frame, code, ref] of CASES) {
      await h.sub(t, name, srv, async () => {
        if (frame && frame.binary) alice.send(frame.binary, { binary: true });
        else alice.send(frame);
        const e = await alice.next();
        assert.strictEqual(e.type, 'error', JSON.stringify(e));
        assert.strictEqual(e.payload.code, code, JSON.stringify(e));
        assert.strictEqual(e.from, 'server');
        assert.strictEqual(e.room, 'bad');
        assert.strictEqual(typeof e.payload.message, 'string');
        assert.strictEqual(typeof e.payload.recovery, 'string');
        if (ref) {
          assert.strictEqual(e.ref, ref, 'envelope ref');
          assert.strictEqual(e.payload.ref, ref, 'payload ref');
        }
        // Still alive: a valid offer relays, and the bad message was not relayed.
        n++;
        alice.send({ type: 'offer', id: `ok${n}`, to: 'bob', payload: Object.assign({ n }, GOOD) });
        const o = await bob.next();
        assert.strictEqual(o.type, 'offer', `bob got ${JSON.stringify(o)}`);
        assert.strictEqual(o.payload.n, n);
        assert.strictEqual(o.from, 'alice');
        await alice.expectNone(0);
      });
    }
    assert.strictEqual(alice.close, null, 'alice still connected');
    alice.assertEnvelopes();
    bob.assertEnvelopes();
    // Errors went only to the sender.
    assert.ok(bob.all.every((m) => m.type !== 'error'), 'bob received no error');
  });
});

test('a malformed hand-raise is refused for a participant too, and a fragmented message within limits relays', async () => {
  await h.withServer({ args: ['--max-ws-fragments', '8'] }, async (srv) => {
    const alice = await h.join(srv, 'frag', 'alice');
    const bob = await h.join(srv, 'frag', 'bob');
    await alice.next('user-joined');
    alice.send({ type: 'hand-raise', id: 'h1' });
    const e = await alice.next();
    assert.strictEqual(e.payload.code, 'INVALID_MESSAGE');
    assert.strictEqual(e.ref, 'h1');
    // 4 fragments (limit 8) are reassembled.
    const text = JSON.stringify({ type: 'offer', to: 'bob', payload: GOOD });
    const q = Math.ceil(text.length / 4);
    for (let i = 0; i < 4; i++) {
      alice.ws.send(text.slice(i * q, (i + 1) * q), { fin: i === 3 });
    }
    const o = await bob.next('offer');
    assert.deepStrictEqual(o.payload, GOOD);
    assert.strictEqual(o.from, 'alice');
  });
});

test('invalid UTF-8 in a text frame closes with 1007', async () => {
  await h.withServer({}, async (srv) => {
    const alice = await h.join(srv, 'utf', 'alice');
    const bob = await h.join(srv, 'utf', 'bob');
    await alice.next('user-joined');
    // ws does not validate what it sends: a Buffer with binary:false goes out as text.
    bob.send(Buffer.from([0x7b, 0x22, 0x74, 0xff, 0xfe, 0x22, 0x7d]), { binary: false });
    const c = await bob.waitClose();
    assert.strictEqual(c.code, 1007);
    const l = await alice.next('user-left');
    assert.strictEqual(l.payload.user_id, 'bob');
  });
});
