'use strict';
// The WebSocket handshake and framing (RFC 6455) with hand-made frames.

const test = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const h = require('./helpers');

const TEXT = 0x1;
const CONT = 0x0;
const CLOSE = 0x8;
const PING = 0x9;

const tok = (sub, claims) => h.mintToken(h.SECRET, Object.assign({ sub }, claims));

async function open(srv, room, user, opts) {
  const ws = await h.rawWsConnect(srv, room, tok(user), opts);
  assert.strictEqual(ws.response.status, 101, `upgrade: ${JSON.stringify(ws.response)}`);
  const f = await ws.nextFrame();
  assert.strictEqual(f.opcode, TEXT);
  assert.strictEqual(f.masked, false, 'server frames are unmasked');
  assert.strictEqual(JSON.parse(f.payload).type, 'room-state');
  return ws;
}

function closePayload(code, reason = '') {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

test('handshake', async (t) => {
  await h.withServer({}, async (srv) => {
    const s = (name, fn) => h.sub(t, name, srv, fn);
    await s('101 with the right Sec-WebSocket-Accept and no subprotocol or extension', async () => {
      const ws = await h.rawWsConnect(srv, 'hs', tok('alice'), {
        headers: { 'Sec-WebSocket-Protocol': 'chat', 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' },
      });
      assert.strictEqual(ws.response.status, 101);
      const want = crypto.createHash('sha1').update(`${ws.key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      assert.strictEqual(ws.response.headers['sec-websocket-accept'], want);
      assert.match(ws.response.headers.upgrade, /^websocket$/i);
      assert.strictEqual(ws.response.headers['sec-websocket-protocol'], undefined);
      assert.strictEqual(ws.response.headers['sec-websocket-extensions'], undefined);
      ws.conn.destroy();
    });
    await s('missing Sec-WebSocket-Key -> 400 BAD_REQUEST', async () => {
      const ws = await h.rawWsConnect(srv, 'hs', tok('alice'), { headers: { 'Sec-WebSocket-Key': null } });
      assert.strictEqual(ws.response.status, 400);
      assert.strictEqual(ws.response.json.error.code, 'BAD_REQUEST');
      ws.conn.destroy();
    });
    await s('malformed Sec-WebSocket-Key -> 400 BAD_REQUEST (checked before the token)', async () => {
      for (const key of ['short', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAA', '!!!!!!!!!!!!!!!!!!!!!!==']) {
        const ws = await h.rawWsConnect(srv, 'hs', null, { headers: { 'Sec-WebSocket-Key': key } });
        assert.strictEqual(ws.response.status, 400, `key ${key}`);
        assert.strictEqual(ws.response.json.error.code, 'BAD_REQUEST');
        ws.conn.destroy();
      }
    });
    await s('Sec-WebSocket-Version 8 -> 426 UPGRADE_REQUIRED', async () => {
      const ws = await h.rawWsConnect(srv, 'hs', tok('alice'), { headers: { 'Sec-WebSocket-Version': '8' } });
      assert.strictEqual(ws.response.status, 426);
      assert.strictEqual(ws.response.json.error.code, 'UPGRADE_REQUIRED');
      ws.conn.destroy();
    });
    await s('no Connection: Upgrade -> 426 UPGRADE_REQUIRED', async () => {
      const ws = await h.rawWsConnect(srv, 'hs', tok('alice'), { headers: { Connection: 'keep-alive' } });
      assert.strictEqual(ws.response.status, 426);
      ws.conn.destroy();
    });
    await s('Connection: keep-alive, Upgrade is accepted', async () => {
      const ws = await h.rawWsConnect(srv, 'hs', tok('alice'), { headers: { Connection: 'keep-alive, Upgrade', Upgrade: 'WebSocket' } });
      assert.strictEqual(ws.response.status, 101);
      ws.conn.destroy();
    });
    await s('HTTP/1.0 upgrade -> 400', async () => {
      const ws = await h.rawWsConnect(srv, 'hs', tok('alice'), { version: '1.0' });
      assert.strictEqual(ws.response.status, 400);
      ws.conn.destroy();
    });
    await s('a first frame in the same write as the handshake is processed', async () => {
      const ws = await h.rawWsConnect(srv, 'hs2', tok('alice'), { extra: h.encodeFrame(PING, 'early') });
      assert.strictEqual(ws.response.status, 101);
      const frames = [await ws.nextFrame(), await ws.nextFrame()];
      const pong = frames.find((f) => f.opcode === 0xa);
      assert.ok(pong, `a pong among ${frames.map((f) => f.opcode)}`);
      assert.strictEqual(pong.payload.toString(), 'early');
      const text = frames.find((f) => f.opcode === TEXT);
      assert.strictEqual(JSON.parse(text.payload).type, 'room-state');
      ws.conn.destroy();
    });
  });
});

test('framing violations close with 1002 and the others see user-left', async (t) => {
  // Without a grace period: some cases end with a cut socket, which would otherwise be resumable.
  await h.withServer({ args: ['--resume-grace-ms', '0'] }, async (srv) => {
    const watcher = await h.join(srv, 'frames', 'watcher');
    const cases = [
      ['unmasked client frame', () => h.encodeFrame(TEXT, '{"type":"x"}', { mask: false })],
      ['RSV1 set without an extension', () => h.encodeFrame(TEXT, '{"type":"x"}', { rsv: 4 })],
      ['reserved opcode 0x3', () => h.encodeFrame(0x3, 'x')],
      ['fragmented ping', () => h.encodeFrame(PING, 'x', { fin: false })],
      ['continuation without a start', () => h.encodeFrame(CONT, 'x')],
      ['ping payload over 125 bytes', () => h.encodeFrame(PING, 'p'.repeat(126))],
      ['close code 999', () => h.encodeFrame(CLOSE, closePayload(999))],
      ['close frame with a 1-byte payload', () => h.encodeFrame(CLOSE, Buffer.from([3]))],
      ['new text frame inside a fragmented message', () => Buffer.concat([
        h.encodeFrame(TEXT, '{"type":', { fin: false }), h.encodeFrame(TEXT, '"x"}')])],
    ];
    let i = 0;
    for (const [name, frame] of cases) {
      await h.sub(t, name, srv, async () => {
        const user = `u${i++}`;
        const ws = await open(srv, 'frames', user);
        await watcher.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === user, 2000, `user-joined ${user}`);
        try {
          await ws.send(frame());
          let c;
          try {
            c = await ws.nextClose();
          } catch (e) {
            assert.fail(`expected a close frame with 1002, but: ${e.message}`);
          }
          assert.strictEqual(c.closeCode, 1002, `close code for ${name}`);
        } finally {
          ws.conn.destroy();
          await watcher.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === user, 3000, `user-left ${user}`);
        }
      });
    }
    await h.sub(t, 'a client close is echoed and is a leave with reason left', srv, async () => {
      const ws = await open(srv, 'frames', 'closer');
      await watcher.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'closer', 2000, 'user-joined closer');
      await ws.send(h.encodeFrame(CLOSE, closePayload(1000, 'bye')));
      const c = await ws.nextClose();
      assert.strictEqual(c.closeCode, 1000);
      assert.ok(await ws.conn.waitClosed(3000), 'server closes the TCP connection after the close handshake');
      const l = await watcher.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'closer', 2000, 'user-left closer');
      assert.deepStrictEqual(l.payload, { user_id: 'closer', reason: 'left' });
      ws.conn.destroy();
    });
    await h.sub(t, 'ping and control frames between fragments are fine', srv, async () => {
      const ws = await open(srv, 'frames', 'frag');
      await watcher.nextWhere((m) => m.type === 'user-joined' && m.payload.user_id === 'frag', 2000, 'user-joined frag');
      const msg = JSON.stringify({ type: 'offer', to: 'watcher', payload: { type: 'offer', sdp: 'v=0\r\n' } });
      await ws.send(Buffer.concat([
        h.encodeFrame(TEXT, msg.slice(0, 10), { fin: false }),
        h.encodeFrame(PING, 'mid'),
        h.encodeFrame(CONT, msg.slice(10), { fin: true }),
      ]));
      const pong = await ws.nextFrame();
      assert.strictEqual(pong.opcode, 0xa);
      const o = await watcher.next('offer');
      assert.strictEqual(o.from, 'frag');
      ws.conn.destroy();
      await watcher.nextWhere((m) => m.type === 'user-left' && m.payload.user_id === 'frag', 2000, 'user-left frag');
    });
    await watcher.end();
  });
});
