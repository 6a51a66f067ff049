'use strict';
// Negotiation edge cases in a real browser: two members start a screen share
// at the same moment (their offers usually cross, and perfect negotiation
// resolves it; the run prints how many collisions it saw), and a viewer receives everything while sending nothing (the server
// refuses a viewer's offer to send media, so its side stays recvonly).

const test = require('node:test');
const assert = require('node:assert');
const b = require('./browser');

const skip = b.unavailable() || false;

test('screen shares started at the same moment converge, and a viewer receives without sending', { skip, timeout: 90000 }, async (t) => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const browser = await b.launch();
  try {
    const alice = await b.joinPage(browser, srv, 'e2e-nego', 'alice', 'host');
    const bob = await b.joinPage(browser, srv, 'e2e-nego', 'bob');
    const vic = await b.joinPage(browser, srv, 'e2e-nego', 'vic', 'viewer');
    await b.expectMediaFrom(vic, ['alice', 'bob']);
    await b.expectMediaFrom(alice, ['bob']);
    // The viewer publishes nothing: no local media, no packets at the others.
    assert.strictEqual(await vic.evaluate(() => window.huddle.media.localStream), null);
    assert.strictEqual(await vic.evaluate(() => document.getElementById('btn-mic').disabled), true);
    const fromVic = (await b.inbound(alice)).vic;
    assert.ok(fromVic && fromVic.state === 'connected', 'alice is connected to vic');
    assert.strictEqual(fromVic.frames + fromVic.audio, 0, 'nothing arrives from a viewer');

    // Both share at the same moment: offers cross between alice and bob.
    const serials = [(await b.inbound(alice)).bob.serial, (await b.inbound(bob)).alice.serial];
    // Both pages click at the same instant of the (shared) clock.
    const at = Date.now() + 400;
    await Promise.all([alice, bob].map((p) => p.evaluate((when) => new Promise((resolve) => {
      setTimeout(() => { document.getElementById('btn-screen').click(); resolve(); }, when - Date.now());
    }), at)));
    const screenOf = (page, user) => page.waitForFunction((u) => {
      const v = document.querySelector(`.tile.screen[data-user="${u}"] video`);
      return v && v.videoWidth > 0;
    }, user);
    await Promise.all([screenOf(alice, 'bob'), screenOf(bob, 'alice'), screenOf(vic, 'alice'), screenOf(vic, 'bob')]);
    assert.deepStrictEqual([(await b.inbound(alice)).bob.serial, (await b.inbound(bob)).alice.serial], serials,
      'the same peer connections, renegotiated');
    await b.expectMediaFrom(alice, ['bob']);
    // Whether the offers really crossed depends on timing; say so in the output.
    const collisions = await alice.evaluate(() => window.huddle.media.peers.get('bob').collisions || 0) +
      await bob.evaluate(() => window.huddle.media.peers.get('alice').collisions || 0);
    t.diagnostic(`offer collisions between alice and bob: ${collisions}`);
    for (const p of [alice, bob, vic]) assert.deepStrictEqual(await p.evaluate(() => window.huddle.errors), [], p._huddleName);
    assert.deepStrictEqual(browser.logs.filter((l) => /pageerror|Content Security Policy|Refused to/.test(l)), []);
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});
