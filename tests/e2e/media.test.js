'use strict';
// Three pages join one room through the web app; each decodes video from both
// others (framesDecoded rising) and receives their audio (packetsReceived
// rising). Screenshots at desktop and phone width go to test-artifacts/.

const test = require('node:test');
const assert = require('node:assert');
const b = require('./browser');

const skip = b.unavailable() || false;

test('three pages see and hear each other through the web app', { skip, timeout: 90000 }, async () => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const browser = await b.launch();
  try {
    const alice = await b.joinPage(browser, srv, 'e2e-media', 'alice', 'host');
    const bob = await b.joinPage(browser, srv, 'e2e-media', 'bob');
    const carol = await b.joinPage(browser, srv, 'e2e-media', 'carol');
    await b.expectMediaFrom(alice, ['bob', 'carol']);
    await b.expectMediaFrom(bob, ['alice', 'carol']);
    await b.expectMediaFrom(carol, ['alice', 'bob']);
    // Every page shows three tiles with live video elements.
    for (const p of [alice, bob, carol]) {
      await p.waitForFunction(() => [...document.querySelectorAll('#grid .tile video')]
        .filter((v) => v.srcObject && v.videoWidth > 0).length === 3);
    }
    await b.screenshot(alice, 'meeting-desktop');

    // Alice shares her screen: the others get a second tile for it, with frames decoded.
    await alice.click('#btn-screen');
    await alice.waitForSelector('#btn-screen .lbl:has-text("Stop sharing")');
    for (const p of [bob, carol]) {
      await p.waitForFunction(() => {
        const v = document.querySelector('.tile.screen[data-user="alice"] video');
        return v && v.srcObject && v.videoWidth > 0;
      });
      // Her camera tile still shows the camera, not the screen.
      await p.waitForFunction(() => {
        const cam = document.querySelector('.tile[data-kind="camera"][data-user="alice"] video');
        const scr = document.querySelector('.tile.screen[data-user="alice"] video');
        return cam && scr && cam.srcObject !== scr.srcObject;
      });
    }
    await b.screenshot(bob, 'meeting-desktop-screenshare');
    await alice.click('#btn-screen');
    for (const p of [bob, carol]) await p.waitForSelector('.tile.screen[data-user="alice"]', { state: 'detached' });
    // The camera streams carried on through the renegotiations.
    await b.expectMediaFrom(bob, ['alice', 'carol']);

    // Carol turns her camera off (the device is released) and on again.
    await carol.click('#btn-cam');
    await alice.waitForSelector('.tile[data-user="carol"].novideo');
    assert.strictEqual(await carol.evaluate(() => window.huddle.media.localTrack('video')), null);
    await carol.click('#btn-cam');
    await alice.waitForSelector('.tile[data-user="carol"]:not(.novideo)');
    await b.expectMediaFrom(alice, ['carol']);
    await carol.setViewportSize({ width: 390, height: 844 });
    await carol.click('#btn-chat');
    await carol.fill('#chat-input', 'hello from a phone');
    await carol.press('#chat-input', 'Enter');
    await carol.waitForSelector('#chat-list li >> text=hello from a phone');
    await carol.click('#btn-chat');
    await b.screenshot(carol, 'meeting-phone');
    await carol.click('#btn-people');
    await b.screenshot(carol, 'meeting-phone-people');
    // The server refused nothing the pages sent (signaling, end-of-candidates, media state).
    for (const p of [alice, bob, carol]) assert.deepStrictEqual(await p.evaluate(() => window.huddle.errors), [], p._huddleName);
    assert.deepStrictEqual(browser.logs.filter((l) => /pageerror|Content Security Policy|Refused to/.test(l)), []);
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});

// The README's quick start: open the server in two tabs, enter a name, join
// the room "demo" (a development token), and see and hear each other.
test('two tabs join through the join screen and see and hear each other', { skip, timeout: 60000 }, async () => {
  b.watchdog(90000);
  const srv = await b.startServer();
  const browser = await b.launch();
  try {
    const pages = [];
    for (const name of ['Ana', 'Ben']) {
      const p = await browser.ctx.newPage();
      p._huddleName = name;
      await p.goto(`http://${srv.addr}/`);
      assert.strictEqual(await p.inputValue('#join-room'), 'demo');
      await p.fill('#join-name', name);
      await p.click('#join-button');
      await p.waitForFunction(() => window.huddle.client && window.huddle.client.state === 'joined');
      pages.push(p);
    }
    const ids = await Promise.all(pages.map((p) => p.evaluate(() => window.huddle.client.selfId)));
    assert.match(ids[0], /^Ana-[0-9a-f]{6}$/);
    await b.expectMediaFrom(pages[0], [ids[1]]);
    await b.expectMediaFrom(pages[1], [ids[0]]);
    assert.deepStrictEqual(browser.logs.filter((l) => /pageerror|Content Security Policy|Refused to/.test(l)), []);
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});
