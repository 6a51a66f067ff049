'use strict';
// chat-message: broadcast and private delivery, the server's message_id,
// replies, permissions, length and emptiness, and the sanitizer as
// docs/protocol.md describes it (HTML escaping, dangerous schemes, control and
// bidi characters removed, all other Unicode kept, invalid UTF-8 refused).

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');
const f = require('./feature_helpers');

test('chat: broadcast reaches everyone, the sender gets the echo with ref and message_id m<seq>', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol } = await f.joinAll(srv, 'chat', [
      ['alice', { name: 'Alice', role: 'host' }], ['bob', { name: 'Bob' }], ['carol', { role: 'viewer' }]]);

    bob.send({ type: 'chat-message', id: 'c1', payload: { text: 'hello all' } });
    const got = await Promise.all([alice.next(), bob.next(), carol.next()]);
    for (const m of got) {
      assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
      assert.strictEqual(m.from, 'bob');
      assert.strictEqual(m.room, 'chat');
      assert.strictEqual(m.to, undefined, 'a room message has no to');
      assert.strictEqual(m.payload.text, 'hello all');
      assert.strictEqual(m.payload.sender_name, 'Bob');
      assert.strictEqual(m.payload.private, false);
      assert.strictEqual(m.payload.message_id, `m${m.seq}`, 'message_id is m<seq>');
      assert.strictEqual(m.payload.reply_to, undefined);
    }
    assert.strictEqual(got[0].seq, got[1].seq, 'one seq for one message');
    assert.strictEqual(got[1].ref, 'c1', 'the echo to the sender carries its ref');
    assert.strictEqual(got[1].payload.ref, undefined);
    const mid = got[0].payload.message_id;

    // A viewer may chat by default; a message without id has no ref.
    carol.send({ type: 'chat-message', payload: { text: 'viewer here', reply_to: mid } });
    const echo = await carol.next();
    assert.strictEqual(echo.type, 'chat-message');
    assert.strictEqual(echo.ref, undefined);
    for (const c of [alice, bob]) {
      const m = await c.next();
      assert.strictEqual(m.from, 'carol');
      assert.strictEqual(m.payload.reply_to, mid, 'reply_to of a known message is delivered');
      assert.strictEqual(m.payload.message_id, `m${m.seq}`);
      assert.ok(m.seq > got[0].seq);
    }
    // reply_to null is the same as none.
    alice.send({ type: 'chat-message', id: 'n', payload: { text: 'x', reply_to: null } });
    for (const c of [alice, bob, carol]) {
      const m = await c.next('chat-message');
      assert.strictEqual(m.payload.reply_to, undefined);
    }
    await f.expectNoneAll([alice, bob, carol]);
    for (const c of [alice, bob, carol]) c.assertEnvelopes();
  });
});

test('chat: private message (to) reaches only to and the sender', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob, carol, dave } = await f.joinAll(srv, 'priv', [
      ['alice'], ['bob'], ['carol'], ['dave', { role: 'host' }]]);
    alice.send({ type: 'chat-message', id: 'p1', to: 'bob', payload: { text: 'just you' } });
    const [toBob, echo] = await Promise.all([bob.next(), alice.next()]);
    for (const m of [toBob, echo]) {
      assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
      assert.strictEqual(m.from, 'alice');
      assert.strictEqual(m.to, 'bob');
      assert.strictEqual(m.payload.private, true);
      assert.strictEqual(m.payload.text, 'just you');
      assert.strictEqual(m.payload.message_id, `m${m.seq}`);
    }
    assert.strictEqual(echo.ref, 'p1');
    assert.strictEqual(toBob.seq, echo.seq);
    // Nobody else, not even the host.
    await f.expectNoneAll([carol, dave], 200);

    // A reply to a private message, privately.
    bob.send({ type: 'chat-message', id: 'p2', to: 'alice', payload: { text: 'ok', reply_to: toBob.payload.message_id } });
    const back = await alice.next();
    assert.strictEqual(back.payload.reply_to, toBob.payload.message_id);
    assert.strictEqual((await bob.next()).ref, 'p2');
    await f.expectNoneAll([carol, dave]);

    // to an unknown user or yourself.
    alice.send({ type: 'chat-message', id: 'p3', to: 'nobody', payload: { text: 'hi' } });
    await f.expectWsError(alice, 'TARGET_NOT_FOUND', 'p3');
    alice.send({ type: 'chat-message', id: 'p4', to: 'alice', payload: { text: 'hi' } });
    await f.expectWsError(alice, 'INVALID_MESSAGE', 'p4');
    await f.expectNoneAll([alice, bob, carol, dave]);
  });
});

test('chat: reply_to unknown -> MESSAGE_NOT_FOUND; permission, length and shape errors', async (t) => {
  await h.withServer({ args: ['--chat-max-chars', '10'] }, async (srv) => {
    const { alice, bob, viewer } = await f.joinAll(srv, 'cerr', [
      ['alice', { role: 'host' }], ['bob'], ['viewer', { role: 'viewer', perms: { can_chat: false } }]]);
    assert.strictEqual(viewer.state.payload.self.permissions.can_chat, false, 'perms override applied');
    const s = (name, fn) => h.sub(t, name, srv, fn);

    await s('ten characters are fine, counted in code points', async () => {
      const text = 'é世👩‍💻🇫🇷x'; // é 世 👩 ZWJ 💻 🇫 🇷 x = 8 code points, many more bytes
      alice.send({ type: 'chat-message', id: 'ok1', payload: { text } });
      for (const c of [alice, bob, viewer]) assert.strictEqual((await c.next('chat-message')).payload.text, text);
      alice.send({ type: 'chat-message', id: 'ok2', payload: { text: '0123456789' } });
      for (const c of [alice, bob, viewer]) assert.strictEqual((await c.next('chat-message')).payload.text, '0123456789');
    });

    const cases = [
      ['reply_to unknown', bob, { type: 'chat-message', id: 'r1', payload: { text: 'hi', reply_to: 'm99999' } }, 'MESSAGE_NOT_FOUND'],
      ['reply_to not an id', bob, { type: 'chat-message', id: 'r2', payload: { text: 'hi', reply_to: 'hello' } }, 'MESSAGE_NOT_FOUND'],
      ['reply_to of a non-chat seq (m1)', bob, { type: 'chat-message', id: 'r3', payload: { text: 'hi', reply_to: 'm1' } }, 'MESSAGE_NOT_FOUND'],
      ['viewer with can_chat:false', viewer, { type: 'chat-message', id: 'v1', payload: { text: 'hi' } }, 'PERMISSION_DENIED'],
      ['private from a viewer with can_chat:false', viewer, { type: 'chat-message', id: 'v2', to: 'alice', payload: { text: 'hi' } }, 'PERMISSION_DENIED'],
      ['11 characters with --chat-max-chars 10', bob, { type: 'chat-message', id: 'l1', payload: { text: '01234567890' } }, 'MESSAGE_TOO_LONG'],
      ['11 emoji', bob, { type: 'chat-message', id: 'l2', payload: { text: '😀'.repeat(11) } }, 'MESSAGE_TOO_LONG'],
      ['empty text', bob, { type: 'chat-message', id: 'e1', payload: { text: '' } }, 'INVALID_MESSAGE'],
      ['whitespace only', bob, { type: 'chat-message', id: 'e2', payload: { text: ' \n\t  ' } }, 'INVALID_MESSAGE'],
      ['control characters only', bob, { type: 'chat-message', id: 'e3', payload: { text: '\u0001\u0007\u001b\u007f\u0085' } }, 'INVALID_MESSAGE'],
      ['bidi override only', bob, { type: 'chat-message', id: 'e4', payload: { text: '\u202e\u202d' } }, 'INVALID_MESSAGE'],
      ['no text', bob, { type: 'chat-message', id: 'e5', payload: {} }, 'INVALID_MESSAGE'],
      ['text not a string', bob, { type: 'chat-message', id: 'e6', payload: { text: 42 } }, 'INVALID_MESSAGE'],
      ['no payload', bob, { type: 'chat-message', id: 'e7' }, 'INVALID_MESSAGE'],
    ];
    for (const [name, who, msg, code] of cases) {
      await s(name, async () => {
        who.send(msg);
        await f.expectWsError(who, code, msg.id, name);
        await f.expectNoneAll([alice, bob, viewer], 50);
      });
    }

    await s('the viewer still receives chat it may not send', async () => {
      bob.send({ type: 'chat-message', id: 'x', payload: { text: 'for all' } });
      for (const c of [alice, bob, viewer]) assert.strictEqual((await c.next()).payload.text, 'for all');
    });
    for (const c of [alice, bob, viewer]) c.assertEnvelopes();
  });
});

// [name, text sent, text every recipient must get]
const SANITIZE = [
  ['script tag', '<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
  ['img onerror', '<img src=x onerror=alert(1)>', '&lt;img src=x onerror=alert(1)&gt;'],
  ['javascript: href', '<a href="javascript:alert(1)">x</a>', '&lt;a href=&quot;javascript&#58;alert(1)&quot;&gt;x&lt;/a&gt;'],
  ['mixed-case javascript:', 'JaVaScRiPt:alert(1)', 'JaVaScRiPt&#58;alert(1)'],
  ['javascript: split by a tab (browsers strip it)', 'java\tscript:alert(1)', 'java\tscript&#58;alert(1)'],
  ['javascript: split by a bidi override', 'java\u202Escript:alert(1)', 'javascript&#58;alert(1)'],
  ['javascript: after a control character', '\u0001javascript:alert(1)', 'javascript&#58;alert(1)'],
  ['javascript: after a quote, in single quotes', "'javascript:alert(1)'", '&#39;javascript&#58;alert(1)&#39;'],
  ['vbscript:', 'vbscript:msgbox(1)', 'vbscript&#58;msgbox(1)'],
  ['data:', 'see data:text/html;base64,PHNjcmlwdD4=', 'see data&#58;text/html;base64,PHNjcmlwdD4='],
  ['quotes and ampersand', `Tom & Jerry's "show"`, 'Tom &amp; Jerry&#39;s &quot;show&quot;'],
  ['a plain colon stays', 'time: 10:30 https://example.com', 'time: 10:30 https://example.com'],
  ['RTL override removed', 'invoice\u202Efdp.exe', 'invoicefdp.exe'],
  ['bidi embeddings, isolates and marks removed', 'a\u202Ab\u202Bc\u202Cd\u2066e\u2067f\u2068g\u2069h\u200Ei\u200Fj', 'abcdefghij'],
  ['control characters removed, newline and tab kept', 'a\u0001b\u0007c\u001b[31md\re\nf\tg\u007fh\u0085i\u009bj', 'abc[31mde\nf\tghij'],
  ['Unicode kept intact', 'héllo 世界 👩‍💻 🇫🇷', 'héllo 世界 👩‍💻 🇫🇷'],
  ['more scripts and emoji kept', 'Ωμέγα Привет مرحبا שלום 👍🏽 1️⃣ ❤️', 'Ωμέγα Привет مرحبا שלום 👍🏽 1️⃣ ❤️'],
];

test('chat: XSS payloads and hostile characters arrive neutralized, exactly as documented', async (t) => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'xss', [['alice'], ['bob']]);
    let n = 0;
    for (const [name, text, expected] of SANITIZE) {
      await h.sub(t, name, srv, async () => {
        const id = `s${++n}`;
        alice.send({ type: 'chat-message', id, payload: { text } });
        const [echo, got] = await Promise.all([alice.next(), bob.next()]);
        for (const m of [echo, got]) {
          assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
          assert.strictEqual(m.payload.text, expected, `${name}: ${JSON.stringify(m.payload.text)}`);
          assert.ok(!/[<>"]/.test(m.payload.text), 'no raw < > "');
          assert.ok(!/(javascript|vbscript|data)\s*:/i.test(m.payload.text), 'no live scheme colon');
        }
        assert.strictEqual(echo.ref, id);
      });
    }
    alice.assertEnvelopes();
    bob.assertEnvelopes();
  });
});

// "\u0000" is refused anywhere in a message (docs/protocol.md, Envelope): a NUL
// inside a string would let C code see a different string than the one sent.
test('chat: a NUL character (JSON "\\u0000") is refused as INVALID_JSON and nothing is delivered', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'nul', [['alice'], ['bob']]);
    alice.send({ type: 'chat-message', id: 'z1', payload: { text: 'a\u0000b' } });
    const e = await alice.next();
    assert.strictEqual(e.type, 'error', `the sender got ${JSON.stringify(e)}`);
    assert.strictEqual(e.payload.code, 'INVALID_JSON');
    await bob.expectNone(50);
  });
});

test('chat: reply_to reaches back over the last 256 chat messages only', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'window', [['alice'], ['bob']]);
    for (let i = 0; i < 257; i++) alice.send({ type: 'chat-message', payload: { text: `n${i}` } });
    const ids = [];
    for (let i = 0; i < 257; i++) ids.push((await bob.next('chat-message')).payload.message_id);
    bob.send({ type: 'chat-message', id: 'old', payload: { text: 'too old', reply_to: ids[0] } });
    await f.expectWsError(bob, 'MESSAGE_NOT_FOUND', 'old', 'the 257th newest message is no longer known');
    bob.send({ type: 'chat-message', id: 'ok', payload: { text: 'fine', reply_to: ids[1] } });
    const m = await bob.next();
    assert.strictEqual(m.type, 'chat-message', JSON.stringify(m));
    assert.strictEqual(m.payload.reply_to, ids[1]);
  });
});

test('chat: sender_name is the display name from the token', async () => {
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'names', [['alice', { name: 'Alice Ångström' }], ['bob']]);
    alice.send({ type: 'chat-message', payload: { text: 'hi' } });
    assert.strictEqual((await bob.next()).payload.sender_name, 'Alice Ångström');
    assert.strictEqual((await alice.next()).payload.sender_name, 'Alice Ångström', 'echo');
    bob.send({ type: 'chat-message', payload: { text: 'hi' } });
    assert.strictEqual((await alice.next()).payload.sender_name, 'bob', 'defaults to sub');
    assert.strictEqual((await bob.next()).payload.sender_name, 'bob', 'echo');
  });
});

test('chat: the frame is compact JSON in the documented member order, escaped as JSON.stringify escapes it', async () => {
  // The server writes the chat-message frame by hand (no JSON tree): its
  // bytes must be what a serializer makes of the same object, member order
  // included, whatever the text, the display name and the ref hold.
  await h.withServer({}, async (srv) => {
    const { alice, bob } = await f.joinAll(srv, 'frame', [['alice', { name: 'Al "the" \\ ice \u00e9' }], ['bob']]);
    const raw = { alice: [], bob: [] };
    alice.ws.on('message', (d) => raw.alice.push(d.toString()));
    bob.ws.on('message', (d) => raw.bob.push(d.toString()));
    alice.send({ type: 'chat-message', id: 'm-0', payload: { text: 'first' } });
    const first = await bob.next('chat-message');
    await alice.next('chat-message');
    // Escapes in the input (read by the scanner), a reply, a ref with a newline.
    alice.send('{"type":"chat-message","id":"r\\u0031\\n","payload":{"text":"caf\\u00e9 \\"5\\" <b> \\ud83d\\ude00 tab\\tnl\\n",' +
      `"reply_to":"${first.payload.message_id}"}}`);
    const m = await bob.next('chat-message');
    const echo = await alice.next('chat-message');
    const text = 'caf\u00e9 &quot;5&quot; &lt;b&gt; \u{1f600} tab\tnl\n';
    const want = (to, ref) => JSON.stringify({
      type: 'chat-message', room: 'frame', from: 'alice', ...(to ? { to } : {}), seq: m.seq, ts: m.ts,
      payload: { message_id: `m${m.seq}`, text, sender_name: 'Al "the" \\ ice \u00e9', private: false,
        reply_to: first.payload.message_id },
      ...(ref ? { ref } : {}),
    });
    assert.strictEqual(m.payload.text, text);
    // One frame for every recipient: the ref is in bob's copy too.
    assert.strictEqual(raw.bob[raw.bob.length - 1], want(null, 'r1\n'));
    assert.strictEqual(echo.ref, 'r1\n');
    assert.strictEqual(raw.alice[raw.alice.length - 1], want(null, 'r1\n'));
    // A private one: to, and private true.
    alice.send({ type: 'chat-message', to: 'bob', payload: { text: 'psst' } });
    const p = await bob.next('chat-message');
    assert.strictEqual(raw.bob[raw.bob.length - 1], JSON.stringify({
      type: 'chat-message', room: 'frame', from: 'alice', to: 'bob', seq: p.seq, ts: p.ts,
      payload: { message_id: `m${p.seq}`, text: 'psst', sender_name: 'Al "the" \\ ice \u00e9', private: true },
    }));
  });
});

test('chat: invalid UTF-8 in a raw text frame closes with 1007; an invalid \\u escape is INVALID_JSON', async () => {
  await h.withServer({}, async (srv) => {
    const alice = await h.join(srv, 'utf8', 'alice');
    // Raw frames: a chat message whose text holds bytes that are not UTF-8.
    const ws = await h.rawWsConnect(srv, 'utf8', f.tok(srv, { sub: 'mallory' }));
    assert.strictEqual(ws.response.status, 101);
    const st = await ws.nextFrame();
    assert.strictEqual(st.opcode, 1);
    assert.strictEqual(JSON.parse(st.payload.toString()).type, 'room-state');
    assert.strictEqual((await alice.next('user-joined')).payload.user_id, 'mallory');
    const bad = Buffer.concat([
      Buffer.from('{"type":"chat-message","id":"b1","payload":{"text":"ab'),
      Buffer.from([0xc3, 0x28, 0xff, 0xed, 0xa0, 0x80]), // bad continuation, 0xFF, encoded surrogate
      Buffer.from('cd"}}'),
    ]);
    await ws.send(h.encodeFrame(1, bad));
    const close = await ws.nextClose();
    assert.strictEqual(close.closeCode, 1007);
    ws.conn.destroy();
    const left = await alice.next();
    assert.strictEqual(left.type, 'user-left', 'nothing of the bad text reaches the room');
    assert.strictEqual(left.payload.user_id, 'mallory');

    // A lone surrogate escape is not a character: INVALID_JSON, and the connection lives.
    const bob = await h.join(srv, 'utf8', 'bob');
    await alice.next('user-joined');
    bob.send('{"type":"chat-message","id":"u1","payload":{"text":"a\\ud800b"}}');
    const e = await f.expectWsError(bob, 'INVALID_JSON');
    assert.ok(e.payload.ref === undefined || e.payload.ref === 'u1');
    bob.send('{"type":"chat-message","id":"u2","payload":{"text":"\\udc00"}}');
    await f.expectWsError(bob, 'INVALID_JSON');
    await alice.expectNone(100);
    // A correct surrogate pair escape is a character and is kept.
    bob.send('{"type":"chat-message","id":"u3","payload":{"text":"ok \\ud83d\\ude00"}}');
    assert.strictEqual((await alice.next()).payload.text, 'ok 😀');
    assert.strictEqual((await bob.next()).ref, 'u3');
    assert.strictEqual(bob.close, null, 'bob is still connected');
  });
});
