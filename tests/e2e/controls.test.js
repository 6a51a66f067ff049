'use strict';
// The meeting controls through the UI, checked on the other pages: waiting
// room and admission, chat (room and private), reactions, hand raise and the
// queue, a moderator muting someone.

const test = require('node:test');
const assert = require('node:assert');
const b = require('./browser');

const skip = b.unavailable() || false;

/** Visible buttons, inputs and selects without an accessible name (text, aria-label or a label). */
function unnamedControls(page) {
  return page.evaluate(() => [...document.querySelectorAll('button, input, select, textarea')]
    .filter((e) => e.offsetParent !== null)
    .filter((e) => !((e.getAttribute('aria-label') || '').trim() || (e.labels && e.labels.length) ||
      (e.tagName === 'BUTTON' && e.textContent.trim())))
    .map((e) => e.outerHTML.slice(0, 80)));
}

test('chat, reactions, hands, waiting room and moderation round-trip through the UI', { skip, timeout: 90000 }, async () => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const browser = await b.launch();
  const room = 'e2e-controls';
  try {
    const alice = await b.joinPage(browser, srv, room, 'alice', 'host');
    const bob = await b.joinPage(browser, srv, room, 'bob');

    // The host turns the waiting room on; bob sees the room's badge.
    await alice.click('#btn-people');
    await alice.click('#toggle-waiting');
    await alice.waitForSelector('#toggle-waiting[aria-pressed="true"]');
    await bob.waitForSelector('#ind-waitroom', { state: 'visible' });

    // Carol comes through the join screen (development token) and waits.
    const carol = await browser.ctx.newPage();
    carol._huddleName = 'carol';
    await carol.goto(`http://${srv.addr}/?room=${room}`);
    // Every control on the join screen has an accessible name.
    assert.deepStrictEqual(await unnamedControls(carol), []);
    // By keyboard: type the name (focus starts in it), Enter submits.
    assert.strictEqual(await carol.evaluate(() => document.activeElement.id), 'join-name');
    await carol.keyboard.type('Carol');
    await carol.keyboard.press('Enter');
    await carol.waitForSelector('#notice-text >> text=waiting room');
    assert.strictEqual(await carol.evaluate(() => window.huddle.client.state), 'waiting');

    // The host admits her from the list; everyone now sees three people.
    await alice.click('button[aria-label="Admit Carol"]');
    await carol.waitForFunction(() => window.huddle.client.state === 'joined');
    for (const p of [alice, bob, carol]) {
      await p.waitForFunction(() => window.huddle.client.model.participants.size === 3);
    }
    await bob.click('#btn-people');
    await bob.waitForSelector('#people-list li >> text=Carol');

    // Chat: bob to everyone; alice privately to bob.
    await bob.click('#btn-chat');
    await bob.fill('#chat-input', 'hello <b>all</b>');
    await bob.press('#chat-input', 'Enter');
    for (const p of [alice, carol]) {
      await p.waitForFunction(() => [...document.querySelectorAll('#chat-list .text')].some((e) => e.textContent === 'hello <b>all</b>'));
    }
    await alice.click('#btn-chat');
    await alice.selectOption('#chat-to', 'bob');
    await alice.fill('#chat-input', 'just for you');
    await alice.press('#chat-input', 'Enter');
    await bob.waitForSelector('#chat-list li:has-text("just for you") .private');
    await b.h.delay(300);
    assert.strictEqual(await carol.locator('#chat-list li:has-text("just for you")').count(), 0, 'a private message reached a third person');

    // Reaction from carol shows on alice's page.
    await carol.click('#btn-react');
    await carol.click('#react-menu button[aria-label="Thumbs up"]');
    await alice.waitForSelector('#reactions .reaction:has-text("Carol")');

    // Bob raises his hand: the host sees the queue, carol sees the flag on his tile.
    await bob.click('#btn-hand');
    await bob.waitForSelector('#btn-hand .lbl:has-text("Lower hand")');
    await alice.click('#btn-people');
    await alice.waitForSelector('#hand-list li:has-text("Bob")');
    await carol.waitForSelector('.tile[data-user="bob"].hand');
    await b.screenshot(alice, 'meeting-desktop-people');
    // Every visible control of the meeting page, moderator tools included, has an accessible name.
    assert.deepStrictEqual(await unnamedControls(alice), []);

    // The host mutes bob: bob's own button and everyone's view of him change.
    await bob.waitForFunction(() => window.huddle.micOn === true);
    await carol.waitForSelector('.tile[data-user="bob"][data-audio="on"]');
    await alice.click('button[aria-label="Mute Bob"]');
    await bob.waitForSelector('#btn-mic .lbl:has-text("Unmute")');
    assert.strictEqual(await bob.evaluate(() => window.huddle.media.localTrack('audio').enabled), false);
    await carol.waitForSelector('.tile[data-user="bob"][data-audio="off"]');
    await alice.waitForSelector('button[aria-label="Ask Bob to unmute"]');

    // Next speaker lowers bob's hand everywhere.
    await alice.click('#next-speaker');
    await carol.waitForSelector('.tile[data-user="bob"]:not(.hand)');
    await bob.waitForSelector('#btn-hand .lbl:has-text("Raise hand")');

    // Breakout rooms from the People panel: create one, send carol there, close it.
    await alice.fill('#breakout-name', 'Design');
    await alice.click('#breakout-form button[type=submit]');
    await alice.waitForSelector('#breakout-list li:has-text("Design")');
    const carolId = await carol.evaluate(() => window.huddle.client.selfId);
    await alice.selectOption(`#people-list li[data-user="${carolId}"] select[aria-label^="Breakout room"]`, { label: 'Design' });
    await carol.waitForFunction(() => window.huddle.client.roomId.startsWith('br-') && window.huddle.client.state === 'joined');
    await carol.waitForSelector('#room-name:has-text("Design")');
    await bob.waitForFunction(() => window.huddle.client.model.participants.size === 2);
    await alice.click('button[aria-label="Close breakout room Design"]');
    await carol.waitForFunction(() => window.huddle.client.roomId === 'e2e-controls' && window.huddle.client.state === 'joined');
    await bob.waitForFunction(() => window.huddle.client.model.participants.size === 3);
    await alice.waitForSelector('#breakout-list li', { state: 'detached' });
    assert.deepStrictEqual(browser.logs.filter((l) => /pageerror|Content Security Policy|Refused to/.test(l)), []);
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});
