// `meson install` puts the binary, its man page (made from --help) and a
// sandboxed systemd unit in place, and systemd-analyze accepts the unit.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const h = require('./helpers');

const buildDir = path.dirname(h.BIN);

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

test('meson install: binary, man page and a systemd unit that systemd-analyze verify accepts', (t) => {
  if (!fs.existsSync(path.join(buildDir, 'build.ninja')) || !have('meson')) {
    t.skip(`${buildDir} is not a meson build directory`);
    return;
  }
  const dest = fs.mkdtempSync(path.join(os.tmpdir(), 'huddle-install-'));
  try {
    const inst = spawnSync('meson', ['install', '-C', buildDir, '--destdir', dest, '--no-rebuild', '--quiet'],
      { encoding: 'utf8', timeout: 60000 });
    assert.strictEqual(inst.status, 0, `${inst.stdout}${inst.stderr}`);
    const intro = spawnSync('meson', ['introspect', buildDir, '--buildoptions'], { encoding: 'utf8' });
    const opts = Object.fromEntries(JSON.parse(intro.stdout).map((o) => [o.name, o.value]));
    const prefix = opts.prefix;
    const bin = path.join(dest, prefix, opts.bindir, 'huddle');
    const man = path.join(dest, prefix, opts.mandir, 'man1', 'huddle.1');
    const unitRel = path.join(prefix, 'lib', 'systemd', 'system', 'huddle.service');
    const unit = path.join(dest, unitRel);
    for (const p of [bin, man, unit]) assert.ok(fs.existsSync(p), `installed ${p}`);
    // The man page carries every option of --help.
    const page = fs.readFileSync(man, 'utf8');
    const help = spawnSync(h.BIN, ['--help'], { encoding: 'utf8' }).stdout;
    for (const m of help.matchAll(/^ {2}--([a-z0-9-]+)/gm)) assert.ok(page.includes(`\\-\\-${m[1]}`) || page.includes(`--${m[1]}`), `man page lists --${m[1]}`);
    assert.match(page, /^\.TH HUDDLE 1/m);
    const text = fs.readFileSync(unit, 'utf8');
    assert.ok(text.includes(`ExecStart=${path.join(prefix, opts.bindir, 'huddle')}`), 'ExecStart is the installed binary');
    for (const d of ['DynamicUser=yes', 'StateDirectory=huddle', 'ProtectSystem=strict', 'NoNewPrivileges=yes',
      'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=']) {
      assert.ok(text.split('\n').includes(d), `unit sets ${d}`);
    }
    if (!have('systemd-analyze')) {
      t.diagnostic('systemd-analyze not installed: unit not verified');
      return;
    }
    // Verify inside the install root: the targets the unit names come from the host.
    const sys = path.join(dest, 'usr', 'lib', 'systemd', 'system');
    fs.mkdirSync(sys, { recursive: true });
    for (const n of fs.readdirSync('/usr/lib/systemd/system')) {
      if (/\.(target|slice)$/.test(n)) {
        try { fs.copyFileSync(path.join('/usr/lib/systemd/system', n), path.join(sys, n)); } catch (_) { /* dangling */ }
      }
    }
    const v = spawnSync('systemd-analyze', ['verify', '--man=no', `--root=${dest}`, unitRel], { encoding: 'utf8' });
    assert.strictEqual(v.status, 0, `${v.stdout}${v.stderr}`);
    assert.strictEqual(`${v.stdout}${v.stderr}`.trim(), '', 'systemd-analyze verify reports nothing');
  } finally {
    fs.rmSync(dest, { recursive: true, force: true });
  }
});
