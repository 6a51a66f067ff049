'use strict';
// File sharing through the web app: a member picks a PNG with "Share a file",
// the SDK offers it and uploads it with tus; the server checks it and the
// others see a download link that fetches the very same bytes.

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const zlib = require('node:zlib');
const b = require('./browser');

const skip = b.unavailable() || false;

/** A valid w x h RGB PNG (libmagic must recognise it as image/png). */
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const x of buf) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = [];
  for (let y = 0; y < h; y++) {
    const row = Buffer.alloc(1 + 3 * w);
    for (let x = 0; x < w; x++) row.set([x * 16, y * 16, 128], 1 + 3 * x);
    rows.push(row);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

test('a PNG shared with "Share a file" is uploaded, and another page downloads the same bytes', { skip, timeout: 90000 }, async () => {
  b.watchdog(120000);
  const srv = await b.startServer();
  const browser = await b.launch();
  const room = 'e2e-files';
  const bytes = png(16, 16);
  try {
    const alice = await b.joinPage(browser, srv, room, 'alice', 'host', { query: '&cam=0&mic=0' });
    const bob = await b.joinPage(browser, srv, room, 'bob', 'participant', { query: '&cam=0&mic=0' });
    await alice.click('#btn-chat');
    await bob.click('#btn-chat');

    // The button opens the (hidden) file input; Playwright picks the file in it.
    const [chooser] = await Promise.all([alice.waitForEvent('filechooser'), alice.click('#btn-file')]);
    await chooser.setFiles({ name: 'dot.png', mimeType: 'image/png', buffer: bytes });

    // Both see the line; the uploader sees the server's progress end at 100 %, then the link.
    await alice.waitForSelector('#chat-list li.file a.download >> text=Download dot.png');
    const link = await bob.waitForSelector('#chat-list li.file a.download >> text=Download dot.png');
    assert.match(await bob.textContent('#chat-list li.file .text'), /shared dot\.png \(\d+ B\)/);
    assert.match(await bob.textContent('#chat-list li.file .file-status'), /^ready/);

    // Bob's click downloads the file with his token; the bytes are the PNG's.
    const [download] = await Promise.all([bob.waitForEvent('download'), link.click()]);
    assert.strictEqual(download.suggestedFilename(), 'dot.png');
    const got = fs.readFileSync(await download.path());
    assert.ok(got.equals(bytes), `downloaded ${got.length} bytes, shared ${bytes.length}`);
  } catch (e) {
    throw b.h.decorateError(new Error(`${e.message}\nbrowser log:\n${browser.logs.join('\n')}`), srv);
  } finally {
    await browser.close();
    await srv.stopAndAssert();
  }
});
