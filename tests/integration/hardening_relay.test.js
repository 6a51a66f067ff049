'use strict';
// Issue 13 (hardening): regression tests for the defects in what the server
// checks before it relays: the SDP publish check (4), e2ee size (12),
// reply_to visibility (13) and stream-target redaction (14).

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const { RATES_OFF, people, ofType, assertWsError } = require('./feature_helpers');

const HEAD = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';

test('defect 4: a viewer offer that browsers would send media with is refused in every shape', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd4', [['hana', 'host'], ['vic', 'viewer']]);
    await p.hana.nextWhere(ofType('user-joined'));
    const sending = {
      'session-level recvonly': `${HEAD}a=recvonly\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n`,
      'port 0 with bundle-only': `${HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only\r\na=sendrecv\r\n`,
      'bare CR': `${HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\rm=video 9 UDP/TLS/RTP/SAVPF 96\r\n`,
    };
    let i = 0;
    for (const [what, sdp] of Object.entries(sending)) {
      const id = `o${i++}`;
      p.vic.send({ type: 'offer', id, to: 'hana', payload: { type: 'offer', sdp } });
      const e = await p.vic.nextWhere(ofType('error'), 2000, what);
      assert.ok(['PERMISSION_DENIED', 'INVALID_SDP'].includes(e.payload.code), `${what}: ${JSON.stringify(e)}`);
      assert.strictEqual(e.ref, id);
    }
    // Receiving only passes.
    const ok = `${HEAD}m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n`;
    p.vic.send({ type: 'offer', id: 'fine', to: 'hana', payload: { type: 'offer', sdp: ok } });
    const got = await p.hana.nextWhere(ofType('offer'));
    assert.strictEqual(got.payload.sdp, ok);
    assert.strictEqual(p.hana.all.filter((m) => m.type === 'offer').length, 1, 'only the receive-only offer reached hana');
  });
});

test('defect 12: the e2ee size limit applies to the bytes relayed', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd12', [['alice', 'participant'], ['bob', 'participant']]);
    await p.alice.nextWhere(ofType('user-joined'));
    const raw = `{"type":"e2ee-key-exchange","id":"k","to":"bob","payload":{"k":"abcd"${' '.repeat(60000)}}}`;
    p.alice.send(raw);
    assertWsError(await p.alice.nextWhere(ofType('error')), 'MESSAGE_TOO_LARGE', 'k');
    await p.bob.expectNone(200);
    // Compact within the limit still goes through.
    p.alice.send('{"type":"e2ee-key-exchange","to":"bob","payload":{"k":"abcd"}}');
    const m = await p.bob.next('e2ee-key-exchange');
    assert.deepStrictEqual(m.payload, { k: 'abcd' });
  });
});

test('defect 13: reply_to names only messages the replier could see', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd13', [['alice', 'participant'], ['bob', 'participant'], ['carol', 'participant']]);
    await h.delay(50);
    p.alice.send({ type: 'chat-message', to: 'bob', payload: { text: 'just for bob' } });
    const priv = await p.bob.next('chat-message');
    const mid = priv.payload.message_id;
    p.carol.send({ type: 'chat-message', id: 'r1', payload: { text: 'me too', reply_to: mid } });
    assertWsError(await p.carol.nextWhere(ofType('error')), 'MESSAGE_NOT_FOUND', 'r1');
    // The same answer as for a message that never was.
    p.carol.send({ type: 'chat-message', id: 'r2', payload: { text: 'x', reply_to: 'm999999' } });
    assertWsError(await p.carol.nextWhere(ofType('error')), 'MESSAGE_NOT_FOUND', 'r2');
    // Its sender and recipient may reply to it.
    p.bob.send({ type: 'chat-message', id: 'r3', to: 'alice', payload: { text: 'ok', reply_to: mid } });
    const back = await p.alice.nextWhere(ofType('chat-message', (x) => x.reply_to === mid));
    assert.strictEqual(back.from, 'bob');
    p.alice.send({ type: 'chat-message', id: 'r4', payload: { text: 'public', reply_to: mid } });
    await p.carol.nextWhere(ofType('chat-message', (x) => x.text === 'public'));
  });
});

test('defect 14: stream targets are redacted by structure: key, query, fragment, userinfo', async () => {
  await h.withServer({ args: RATES_OFF }, async (srv) => {
    const p = await people(srv, 'd14', [['hana', 'host'], ['pat', 'participant']]);
    const targets = {
      'rtmp://live.example.com/app/SECRETKEY#/x': 'rtmp://live.example.com/app/****#****',
      'rtmp://live.example.com/app/x#SECRETKEY': 'rtmp://live.example.com/app/****#****',
    };
    for (const [target, want] of Object.entries(targets)) {
      const r = await h.api(srv, 'POST', '/webrtc/rooms/d14/live-streams/start', p.hana.token, { target_url: target });
      assert.strictEqual(r.status, 201, r.text);
      assert.ok(!r.text.includes('SECRETKEY'), r.text);
      assert.strictEqual(r.json.live_stream.target, want);
      const m = await p.pat.nextWhere(ofType('live-stream-start'));
      assert.ok(!JSON.stringify(m).includes('SECRETKEY'), JSON.stringify(m));
    }
    const list = await h.api(srv, 'GET', '/webrtc/rooms/d14/live-streams', p.pat.token);
    assert.ok(!list.text.includes('SECRETKEY'), list.text);
  });
});
