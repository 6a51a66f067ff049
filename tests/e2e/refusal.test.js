'use strict';
// A refused WebSocket upgrade shows the refusal's reason, not "Could not
// connect": the browser hides the upgrade's answer, so the SDK asks
// GET /webrtc/rooms/{room_id}/validate with the same token and the web app
// shows the readable message for its code (ROOM_LOCKED, ROOM_FULL).

const test = require('node:test');
const assert = require('node:assert');
const b = require('./browser');

const skip = b.unavailable() || false;

/** Opens the app with a token for room; returns the page once the join screen shows an error. */
async function refusedPage(browser, srv, room, user) {
  const page = await browser.ctx.newPage();
  page._huddleName = user;
  const asked = [];
  page.on('request', (req) => { if (req.url().includes('/validate')) asked.push(req.url()); });
  await page.goto(`http://${srv.addr}/?room=${room}&token=${b.token(srv, room, user)}&cam=0&mic=0`);
  await page.waitForSelector('#join-error', { state: 'visible', timeout: 20000 });
  return { page, asked, text: (await page.textContent('#join-error')).trim() };
}

test('a locked room and a full room are explained on the join screen', { skip, timeout: 90000 }, async () => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const browser = await b.launch();
  const room = 'e2e-refusal';
  try {
    const alice = await b.joinPage(browser, srv, room, 'alice', 'host', { query: '&cam=0&mic=0' });
    await alice.evaluate(() => window.huddle.client.lockRoom(true));
    await alice.waitForFunction(() => window.huddle.client.model.settings.locked === true);

    const bob = await refusedPage(browser, srv, room, 'bob');
    assert.strictEqual(bob.text, 'This room is locked. Ask the host to unlock it.', `bob saw: ${bob.text}`);
    assert.ok(!/could not connect/i.test(bob.text));
    assert.ok(bob.asked.length >= 1, 'the SDK asked the validate endpoint');

    // Unlocked but capped at one participant: the next one is told it is full.
    await alice.evaluate(() => window.huddle.client.updateSettings({ locked: false, max_participants: 1 }));
    await alice.waitForFunction(() => window.huddle.client.model.settings.locked === false &&
      window.huddle.client.model.settings.max_participants === 1);
    const carol = await refusedPage(browser, srv, room, 'carol');
    assert.strictEqual(carol.text, 'This room is full. Try again later, or ask the host to raise the limit.', `carol saw: ${carol.text}`);
    assert.ok(carol.asked.length >= 1, 'the SDK asked the validate endpoint');
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});
