'use strict';
// A page's WebSocket is cut (through a TCP proxy, no close frame) and the SDK
// resumes the session without the call's media stopping: same peer
// connection, frames still decoded on both sides, nobody sees a leave
// (the server side of Resume: docs/protocol.md, "Resume").

const test = require('node:test');
const assert = require('node:assert');
const b = require('./browser');

const skip = b.unavailable() || false;

test('a cut WebSocket resumes and the media keeps flowing', { skip, timeout: 90000 }, async () => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const proxy = await b.tcpProxy(srv);
  const browser = await b.launch();
  try {
    const alice = await b.joinPage(browser, srv, 'e2e-resume', 'alice', 'host');
    const bob = await b.joinPage(browser, proxy, 'e2e-resume', 'bob');
    await b.expectMediaFrom(alice, ['bob']);
    const before = (await b.expectMediaFrom(bob, ['alice'])).second;
    await alice.evaluate(() => {
      window.__seen = [];
      window.huddle.client.on('message', (m) => window.__seen.push([m.type, m.payload && (m.payload.status || m.payload.reason)]));
    });
    await bob.evaluate(() => {
      window.__events = [];
      for (const ev of ['reconnecting', 'reconnected', 'resynced', 'failed']) {
        window.huddle.client.on(ev, (x) => window.__events.push([ev, x && x.resumed]));
      }
    });

    assert.strictEqual(proxy.cutWebSockets(), 1, 'bob had one WebSocket through the proxy');
    await bob.waitForFunction(() => window.__events.some((e) => e[0] === 'reconnected'), null, { timeout: 20000 });
    const events = await bob.evaluate(() => window.__events);
    assert.deepStrictEqual(events.filter((e) => e[0] !== 'reconnecting'), [['reconnected', true]], JSON.stringify(events));
    await alice.waitForFunction(() => window.__seen.some((m) => m[0] === 'participant-update' && m[1] === 'connected'));
    const seen = await alice.evaluate(() => window.__seen);
    assert.ok(seen.some((m) => m[0] === 'participant-update' && m[1] === 'reconnecting'), JSON.stringify(seen));
    assert.ok(!seen.some((m) => m[0] === 'user-left' || m[0] === 'user-joined'), `alice saw no leave or join: ${JSON.stringify(seen)}`);

    // The same RTCPeerConnection carries on, and frames keep being decoded.
    const after = await b.inbound(bob);
    assert.strictEqual(after.alice.serial, before.alice.serial, 'bob kept his peer connection');
    await b.h.waitFor(async () => (await b.inbound(bob)).alice.frames > after.alice.frames, 10000, 200, 'bob still decoding');
    const a1 = await b.inbound(alice);
    await b.h.waitFor(async () => (await b.inbound(alice)).bob.frames > a1.bob.frames, 10000, 200, 'alice still decoding');
    // Signaling works again: a chat message goes both ways.
    await bob.evaluate(() => window.huddle.client.sendChat('back again'));
    await alice.waitForSelector('#chat-list .text >> text=back again', { state: 'attached' });
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await proxy.close();
    await srv.stopAndAssert();
  }
});

// Holds with or without server-side resume: after a cut the SDK gets back in
// (resumed, or rebuilt from a fresh room-state) and media flows again both ways.
test('a cut WebSocket reconnects and media flows again', { skip: b.unavailable() || false, timeout: 90000 }, async () => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const proxy = await b.tcpProxy(srv);
  const browser = await b.launch();
  try {
    const alice = await b.joinPage(browser, srv, 'e2e-reconnect', 'alice', 'host');
    const bob = await b.joinPage(browser, proxy, 'e2e-reconnect', 'bob');
    await b.expectMediaFrom(alice, ['bob']);
    await b.expectMediaFrom(bob, ['alice']);
    await bob.evaluate(() => {
      window.__events = [];
      for (const ev of ['reconnecting', 'reconnected', 'resynced', 'failed']) window.huddle.client.on(ev, () => window.__events.push(ev));
    });
    assert.strictEqual(proxy.cutWebSockets(), 1);
    await bob.waitForFunction(() => window.__events.includes('reconnected'), null, { timeout: 20000 });
    const events = await bob.evaluate(() => window.__events);
    assert.strictEqual(events[0], 'reconnecting');
    assert.ok(!events.includes('failed'));
    await bob.waitForSelector('#conn-status >> text=Connected');
    // Media flows again in both directions (a new peer connection after a fresh join).
    const a0 = await b.inbound(alice);
    const b0 = await b.inbound(bob);
    await b.h.waitFor(async () => { const s = await b.inbound(alice); return s.bob && s.bob.frames > ((a0.bob && a0.bob.serial === s.bob.serial && a0.bob.frames) || 0) && s.bob.audio > 0; }, 20000, 200, 'alice decodes bob again');
    await b.h.waitFor(async () => { const s = await b.inbound(bob); return s.alice && s.alice.frames > ((b0.alice && b0.alice.serial === s.alice.serial && b0.alice.frames) || 0) && s.alice.audio > 0; }, 20000, 200, 'bob decodes alice again');
    await bob.evaluate(() => window.huddle.client.sendChat('back again'));
    await alice.waitForSelector('#chat-list .text >> text=back again', { state: 'attached' });
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await proxy.close();
    await srv.stopAndAssert();
  }
});

test('a reload of the tab rejoins without the token in the address bar; Leave forgets it', { skip: b.unavailable() || false, timeout: 60000 }, async () => {
  b.watchdog(90000);
  const srv = await b.startServer();
  const browser = await b.launch();
  try {
    const alice = await b.joinPage(browser, srv, 'e2e-reload', 'alice', 'host', { query: '&cam=0&mic=0' });
    assert.strictEqual(new URL(alice.url()).search, '?room=e2e-reload', 'the token left the address bar');
    await alice.reload();
    await alice.waitForFunction(() => window.huddle.client && window.huddle.client.state === 'joined');
    assert.strictEqual(await alice.title(), 'e2e-reload · huddle');
    // Leave loads /?room=... anew: the join screen can be visible before the
    // new page's script has filled the room field, so wait for that load.
    const loaded = alice.waitForEvent('load');
    await alice.click('#btn-leave');
    await loaded;
    await alice.waitForSelector('#join-screen', { state: 'visible' });
    assert.strictEqual(await alice.evaluate(() => sessionStorage.getItem('huddle.session')), null);
    assert.strictEqual(await alice.inputValue('#join-room'), 'e2e-reload');
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});
