// Docs move with the code: the README's configuration table must match
// `huddle --help`, and docs/protocol.md must list every error code in
// src/guard/errors.c and every message type in the signaling table.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '../..');
const bin = process.env.HUDDLE_BIN || path.join(root, 'build/huddle');

function helpOptions() {
  const out = spawnSync(bin, ['--help'], { encoding: 'utf8' });
  assert.strictEqual(out.status, 0, out.stderr);
  const opts = [];
  const lines = out.stdout.split('\n');
  for (const line of lines) {
    const m = /^ {2}--(\S+)\s+(HUDDLE_\S+)\s+default: (.*)$/.exec(line);
    if (m) opts.push({ flag: m[1], env: m[2], def: m[3].trim() });
  }
  return opts;
}

test('README configuration table matches huddle --help', () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const opts = helpOptions();
  assert.ok(opts.length >= 20, `expected the full option table, got ${opts.length}`);
  for (const o of opts) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`--${o.flag}\` `));
    assert.ok(row, `README lacks a row for --${o.flag}`);
    assert.ok(row.includes(`\`${o.env}\``), `README row for --${o.flag} lacks ${o.env}`);
    assert.ok(row.includes(`\`${o.def}\``), `README row for --${o.flag} has a default other than ${o.def}`);
  }
  const rows = readme.split('\n').filter((l) => /^\| `--/.test(l));
  assert.strictEqual(rows.length, opts.length, 'README lists options that --help does not');
});

test('docs/protocol.md lists every error code of the taxonomy', () => {
  const src = fs.readFileSync(path.join(root, 'src/guard/errors.c'), 'utf8');
  const codes = [...src.matchAll(/E\(API_\w+, "([A-Z_]+)"/g)].map((m) => m[1]).filter((c) => c !== 'OK');
  assert.ok(codes.length >= 40, `expected 40+ codes, found ${codes.length}`);
  const doc = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
  for (const c of codes) assert.ok(doc.includes(`| \`${c}\` |`), `docs/protocol.md lacks error code ${c}`);
});

test('docs/protocol.md lists every message type of the signaling table', () => {
  const src = fs.readFileSync(path.join(root, 'src/signal/signal.c'), 'utf8');
  const types = [...src.matchAll(/^ {2}\{"([a-z0-9-]+)", /gm)].map((m) => m[1]);
  assert.strictEqual(types.length, 38);
  const doc = fs.readFileSync(path.join(root, 'docs/protocol.md'), 'utf8');
  for (const t of types) assert.ok(doc.includes(`| \`${t}\` |`), `docs/protocol.md lacks message type ${t}`);
});
