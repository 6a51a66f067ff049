'use strict';
// WebSocket input and output limits: message size, fragment count, slow readers.

const test = require('node:test');
const assert = require('node:assert');
const h = require('./helpers');

test('a message over --max-ws-message is closed with 1009', async () => {
  await h.withServer({ args: ['--max-ws-message', '4096'] }, async (srv) => {
    const alice = await h.join(srv, 'big', 'alice');
    const bob = await h.join(srv, 'big', 'bob');
    await alice.next('user-joined');
    // Just under the limit passes.
    const okMsg = JSON.stringify({ type: 'offer', to: 'bob', payload: { type: 'offer', sdp: 'v=0\r\n', pad: '' } });
    const padded = okMsg.replace('"pad":""', `"pad":"${'p'.repeat(4000 - okMsg.length)}"`);
    assert.ok(padded.length <= 4096);
    alice.send(padded);
    assert.strictEqual((await bob.next('offer')).from, 'alice');
    // 5000 bytes: closed with 1009, and the other participant sees the leave.
    const msg = JSON.stringify({ type: 'offer', to: 'bob', payload: { type: 'offer', sdp: `v=0\r\n${'a'.repeat(5000)}` } });
    assert.ok(msg.length > 5000);
    alice.send(msg);
    const c = await alice.waitClose();
    assert.strictEqual(c.code, 1009);
    const l = await bob.next('user-left');
    assert.strictEqual(l.payload.user_id, 'alice');
    await bob.expectNone(100);
    assert.ok(!bob.all.some((m) => m.type === 'offer' && m.payload.sdp.length > 4096), 'oversized message not relayed');
  });
});

test('a message in more than --max-ws-fragments frames is closed with 1009', async () => {
  await h.withServer({ args: ['--max-ws-fragments', '8'] }, async (srv) => {
    const alice = await h.join(srv, 'frags', 'alice');
    const bob = await h.join(srv, 'frags', 'bob');
    await alice.next('user-joined');
    const text = JSON.stringify({ type: 'offer', to: 'bob', payload: { type: 'offer', sdp: `v=0\r\n${'x'.repeat(500)}` } });
    const parts = 100;
    const q = Math.ceil(text.length / parts);
    for (let i = 0; i < parts; i++) {
      alice.ws.send(text.slice(i * q, (i + 1) * q), { fin: i === parts - 1 });
    }
    const c = await alice.waitClose();
    assert.strictEqual(c.code, 1009);
    const l = await bob.next('user-left');
    assert.strictEqual(l.payload.user_id, 'alice');
    assert.ok(!bob.all.some((m) => m.type === 'offer'), 'the fragmented message was not relayed');
    await srv.waitForLog(/too_many_fragments/);
  });
});

test('a client that never reads is cut off and server memory stays bounded', async () => {
  const args = ['--max-send-queue', '262144', '--max-ws-message', '131072'];
  await h.withServer({ args }, async (srv) => {
    const victim = await h.join(srv, 'slow', 'victim');
    victim.ws._socket.pause(); // stop reading right after room-state
    const sender = await h.join(srv, 'slow', 'sender');
    const bystander = await h.join(srv, 'slow', 'bystander');
    await sender.next('user-joined');
    const rss0 = srv.rssKb();
    const sdp = h.sdp(60 * 1024, 'flood');
    const payload = { type: 'offer', sdp };
    let sent = 0;
    let gone = false;
    const maxMessages = 3000; // ~180 MB at most: far beyond any kernel buffering
    const deadline = Date.now() + 20000;
    while (!gone && sent < maxMessages && Date.now() < deadline) {
      sender.send({ type: 'offer', to: 'victim', payload });
      sent++;
      // Keep our own send buffer small so the flood is paced by the server.
      while (sender.ws.bufferedAmount > 512 * 1024) await h.delay(2);
      if (sent % 16 === 0) {
        await h.delay(1);
        gone = sender.queue.some((m) => m.type === 'user-left' && m.payload.user_id === 'victim');
      }
    }
    const left = await sender.next('user-left', 5000);
    assert.strictEqual(left.payload.user_id, 'victim');
    const rss1 = srv.rssKb();
    await srv.waitForLog(/slow_consumer_dropped/);
    const growthMb = (rss1 - rss0) / 1024;
    assert.ok(growthMb < 64, `server VmRSS grew by ${growthMb.toFixed(1)} MB (${rss0} -> ${rss1} kB) after ${sent} messages of 60 KB`);
    // The bystander saw the leave and none of the flood.
    const bl = await bystander.next('user-left');
    assert.strictEqual(bl.payload.user_id, 'victim');
    assert.ok(!bystander.all.some((m) => m.type === 'offer'), 'the flood went only to the victim');
    // The victim is gone from the room: offers to it are now TARGET_NOT_FOUND.
    sender.queue.length = 0;
    sender.send({ type: 'offer', id: 'after', to: 'victim', payload: { type: 'offer', sdp: 'v=0\r\n' } });
    const e = await h.waitFor(() => sender.queue.find((m) => m.type === 'error' && m.ref === 'after'), 3000, 10, 'error for ref "after"');
    assert.strictEqual(e.payload.code, 'TARGET_NOT_FOUND');
    // The server is still healthy and serves the others.
    assert.strictEqual((await h.health(srv)).status, 'ok');
    bystander.send({ type: 'offer', to: 'sender', payload: { type: 'offer', sdp: 'v=0\r\n' } });
    assert.strictEqual((await sender.next('offer')).from, 'bystander');
    victim.terminate();
  });
});
