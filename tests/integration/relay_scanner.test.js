'use strict';
// Issue 16: offer, answer and ice-candidate are validated by a one-pass
// scanner instead of a jansson tree (docs/internals/jscan.md). These check
// what that path must keep: the payload relayed as the sender's own bytes,
// forms the scanner leaves to jansson (escaped keys and ids) handled as
// before, and the publish check reading SDPs written with any escapes.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, people, ofType, assertWsError } = require('./feature_helpers');

const HEAD = 'v=0\\r\\no=- 1 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\nt=0 0\\r\\n';

/* The raw text frames c receives from now on. */
function rawFrames(c) {
  const frames = [];
  c.ws.on('message', (data, isBinary) => { if (!isBinary) frames.push(data.toString()); });
  return frames;
}

test('relay scanner: the payload goes out as the bytes sent, escapes and spacing included', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rs1', [['alice', 'participant'], ['bob', 'participant']]);
    await p.alice.nextWhere(ofType('user-joined'));
    const frames = rawFrames(p.bob);
    const payload = `{ "type" : "offer", "sdp": "${HEAD}m=audio 9 RTP/AVP 0\\r\\na=x:caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\t\\/\\r\\n",` +
      ' "extra": [1, -2.5e3, true, null, {"k": "v"}] }';
    p.alice.send(`{"type":"offer","id":"r1","to":"bob","payload":${payload}}`);
    const got = await p.bob.nextWhere(ofType('offer'));
    assert.strictEqual(got.from, 'alice');
    assert.deepStrictEqual(got.payload, JSON.parse(payload));
    const raw = frames.find((f) => f.includes('"type":"offer"'));
    assert.ok(raw.includes(`"payload":${payload}`), `relayed bytes differ: ${raw.slice(0, 300)}`);
  });
});

test('relay scanner: forms left to jansson (escaped keys, id and to) are still relayed', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rs2', [['alice', 'participant'], ['bob', 'participant']]);
    await p.alice.nextWhere(ofType('user-joined'));
    p.alice.send('{"type":"ice-candidate","id":"c\\u0031","to":"b\\u006fb","payload":{"c\\u0061ndidate":"","sdpMid":"0"}}');
    const c = await p.bob.nextWhere(ofType('ice-candidate'));
    assert.deepStrictEqual(c.payload, { candidate: '', sdpMid: '0' });
    p.alice.send(`{"type":"offer","id":"o\\u0031","to":"bob","payload":{"\\u0073dp":"\\u0076=0\\r\\n","type":"\\u006fffer"}}`);
    const o = await p.bob.nextWhere(ofType('offer'));
    assert.deepStrictEqual(o.payload, { sdp: 'v=0\r\n', type: 'offer' });
    // An escaped type that is not "offer" is still refused, with the ref.
    p.alice.send(`{"type":"offer","id":"o2","to":"bob","payload":{"sdp":"v=0","type":"\\u0061nswer"}}`);
    assertWsError(await p.alice.nextWhere(ofType('error')), 'INVALID_SDP', 'o2');
  });
});

test('relay scanner: a duplicate key inside the payload is refused as before', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rs3', [['alice', 'participant'], ['bob', 'participant']]);
    await p.alice.nextWhere(ofType('user-joined'));
    p.alice.send('{"type":"offer","id":"d1","to":"bob","payload":{"sdp":"v=0","x":{"a":1,"a":2}}}');
    const e = await p.alice.nextWhere(ofType('error'));
    assert.strictEqual(e.payload.code, 'DUPLICATE_KEY');
    await p.bob.expectNoneWhere((m) => m.type === 'offer', 'an offer with a duplicate key');
  });
});

test('relay scanner: the publish check reads SDPs written with any escapes', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'rs4', [['hana', 'host'], ['vic', 'viewer']]);
    await p.hana.nextWhere(ofType('user-joined'));
    // Only \r\n escapes (read in its JSON form) and other escapes (read unescaped).
    const sendsVideo = [
      `${HEAD}m=audio 9 RTP/AVP 0\\r\\na=recvonly\\r\\nm=video 9 RTP/AVP 96\\r\\na=sendrecv\\r\\n`,
      `${HEAD}m=audio 9 RTP/AVP 0\\r\\na=recvonly\\r\\nm=video 9 RTP/AVP 96\\r\\n\\u0061=sendrecv\\r\\n`,
      `${HEAD}m=audio 9 RTP/AVP 0\\r\\na=recvonly\\r\\nm=video 9 RTP/AVP 96\\r\\na=sendrecv\\u000d\\u000a`,
    ];
    let i = 0;
    for (const sdp of sendsVideo) {
      const id = `v${i++}`;
      p.vic.send(`{"type":"offer","id":"${id}","to":"hana","payload":{"type":"offer","sdp":"${sdp}"}}`);
      assertWsError(await p.vic.nextWhere(ofType('error')), 'PERMISSION_DENIED', id);
    }
    const receives = `${HEAD}m=audio 9 RTP/AVP 0\\r\\n\\u0061=recvonly\\r\\nm=video 9 RTP/AVP 96\\r\\na=inactive\\t\\r\\na=recvonly\\r\\n`;
    p.vic.send(`{"type":"offer","id":"ok","to":"hana","payload":{"type":"offer","sdp":"${receives}"}}`);
    const got = await p.hana.nextWhere(ofType('offer'));
    assert.strictEqual(got.payload.sdp, JSON.parse(`"${receives}"`));
    assert.strictEqual(p.hana.all.filter((m) => m.type === 'offer').length, 1, 'only the receive-only offer reached hana');
  });
});
