'use strict';
// bench/report.js OUT_DIR: the side-by-side table of a bench/run.sh run.
// Reads OUT_DIR/s<N>-<server>.json (written by loadgen --json) and, when
// present, OUT_DIR/perfstat-s<N>-<server>.txt; prints Markdown and writes it
// to OUT_DIR/summary.md, with the numbers in OUT_DIR/summary.json.

const fs = require('fs');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node report.js OUT_DIR');
  process.exit(2);
}
const SERVERS = ['huddle', 'peerjs', 'wsroom', 'nchan'];

function load(sc, srv) {
  const f = path.join(dir, `${sc}-${srv}.json`);
  if (!fs.existsSync(f)) return null;
  try {
    return JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    return null;
  }
}

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '-' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
const ms = (us) => (us === null || us === undefined ? '-' : (us / 1000).toFixed(us < 10000 ? 2 : 0));

// What a run found: the best step a server sustained (all deliveries in,
// p99 under the SLO, no errors, sends on schedule), the least saturated
// step, what the limit was (the server, or the load generator: its own CPU
// near its core or its sends behind schedule), and the latency probe.
// loadgen --search names its steps; a fixed ladder is read the old way.
function sustained(r) {
  if (!r || !r.steps.length) return null;
  const st = r.steps;
  const peak = st.reduce((a, b) => (b.window_deliveries_s > a.window_deliveries_s ? b : a));
  let best, sat, limit;
  if (r.search && r.search.on) {
    best = r.search.sustained_step >= 0 ? st[r.search.sustained_step] : null;
    sat = r.search.saturated_step >= 0 ? st[r.search.saturated_step] : null;
    limit = r.search.limit;
  } else {
    const ok = st.filter((s) => !s.saturated && !s.probe);
    best = ok.length ? ok.reduce((a, b) => (b.deliveries_s > a.deliveries_s ? b : a)) : null;
    sat = st.find((s) => s.saturated) || null;
    limit = sat ? (sat.client_bound ? 'loadgen' : 'server') : 'not reached';
  }
  return { best, peak, first: st[0], saturatedAt: sat, limit, probe: st.find((s) => s.probe) || null };
}

// Server CPU per delivery in microseconds (CPU percent of one core / deliveries per second).
const cpuPer = (s) => (s && s.deliveries_s > 0 ? (s.server_cpu_pct / 100) * 1e6 / s.deliveries_s : null);

// Instructions (callgrind Ir, user space only) between the loadgen hooks.
function instructions(sc, srv, r) {
  if (!r || !r.totals) return null;
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(`callgrind-${sc}-${srv}.`) && /\.\d+\.\d+$/.test(f));
  if (!files.length) return null;
  const f = files.map((x) => path.join(dir, x)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
  const m = fs.readFileSync(f, 'utf8').match(/^summary:\s+(\d+)/m);
  if (!m) return null;
  const ir = Number(m[1]);
  return { ir, per_delivery: r.totals.deliveries ? ir / r.totals.deliveries : null, per_message_in: r.totals.sent ? ir / r.totals.sent : null };
}

function syscalls(sc, srv, r) {
  const f = path.join(dir, `perfstat-${sc}-${srv}.txt`);
  if (!fs.existsSync(f) || !r || !r.totals) return null;
  const text = fs.readFileSync(f, 'utf8');
  const count = (name) => {
    const m = text.match(new RegExp(`^\\s*([\\d,]+)\\s+${name.replace(/[:.]/g, '\\$&')}\\b`, 'm'));
    return m ? Number(m[1].replace(/,/g, '')) : null;
  };
  const total = count('raw_syscalls:sys_enter');
  if (total === null) return null;
  return {
    total,
    per_delivery: r.totals.deliveries ? total / r.totals.deliveries : null,
    per_message_in: r.totals.sent ? total / r.totals.sent : null,
    writes: count('syscalls:sys_enter_write'),
    writevs: count('syscalls:sys_enter_writev'),
    reads: count('syscalls:sys_enter_read'),
    epoll_waits: count('syscalls:sys_enter_epoll_wait'),
  };
}

const out = [];
const summary = {};
const say = (s = '') => out.push(s);
const ratio = (a, b) => (a && b ? `${(a / b).toFixed(2)}x` : '-');

if (fs.existsSync(path.join(dir, 'machine.txt'))) {
  say('Machine:');
  say('```');
  say(fs.readFileSync(path.join(dir, 'machine.txt'), 'utf8').trim());
  say('```');
  say();
}

// ---- 1. capacity ----
{
  const rows = SERVERS.map((s) => [s, load('s1', s)]).filter(([, r]) => r);
  if (rows.length) {
    summary.s1 = {};
    say('### 1. Capacity (idle clients in rooms of 20, keepalive)');
    say();
    say('| server | clients held | joins/s | server RSS | RSS empty | bytes per connection | idle CPU | errors |');
    say('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const [s, r] of rows) {
      const e = r.errors;
      summary.s1[s] = { live: r.server.live_conns, joins_per_s: r.connect.joins_per_s, bytes_per_conn: r.server.bytes_per_conn, rss_kib: r.server.rss_kib };
      say(`| ${s} | ${fmt(r.server.live_conns)} / ${fmt(r.connect.attempted)} | ${fmt(r.connect.joins_per_s)} | ${fmt(r.server.rss_kib / 1024, 1)} MiB | ${fmt(r.server.rss_empty_kib / 1024, 1)} MiB | ${fmt(r.server.bytes_per_conn)} | ${fmt(r.server.hold_cpu_pct, 1)}% | ${e.connect + e.handshake + e.closed} |`);
    }
    const h = summary.s1.huddle;
    const peers = rows.filter(([s]) => s !== 'huddle').map(([s]) => [s, summary.s1[s]]);
    if (h && peers.length) {
      const [bs, b] = peers.reduce((a, c) => (c[1].bytes_per_conn < a[1].bytes_per_conn ? c : a));
      const [js, j] = peers.reduce((a, c) => (c[1].joins_per_s > a[1].joins_per_s ? c : a));
      summary.s1.ratio_memory = h.bytes_per_conn / b.bytes_per_conn;
      summary.s1.ratio_joins = h.joins_per_s / j.joins_per_s;
      say();
      say(`Memory per connection, huddle / best peer (${bs}): **${ratio(h.bytes_per_conn, b.bytes_per_conn)}** (lower is better). ` +
          `Join rate, huddle / best peer (${js}): **${ratio(h.joins_per_s, j.joins_per_s)}**. Target: 20,000 clients at <= 8 KiB (8,192 bytes) each.`);
    }
    say();
  }
}

// ---- 2, 3, 5: throughput scenarios ----
function throughputTable(sc, title, unit, peersAllowed) {
  const rows = SERVERS.map((s) => [s, load(sc, s)]).filter(([, r]) => r);
  if (!rows.length) return;
  summary[sc] = {};
  say(`### ${title}`);
  say();
  say(`| server | saturated at: offered msg/s (${unit}/s delivered) | first saturated step, msg/s | limit | server CPU there | server CPU per delivery | loadgen CPU there / at the saturated step | p50 / p99 at half of huddle's saturation (ms) | errors | others' CPU, max |`);
  say('|---|---:|---:|---|---:|---:|---:|---:|---:|---:|');
  const ladders = [];
  for (const [s, r] of rows) {
    const t = sustained(r);
    if (!t) continue;
    const b = t.best;
    const p = t.probe;
    summary[sc][s] = {
      sustained: b ? b.deliveries_s : 0, sustained_offered: b ? b.offered_msgs_s : 0,
      p50_ms: b ? b.lat_us.p50 / 1000 : null, p99_ms: b ? b.lat_us.p99 / 1000 : null,
      server_cpu_pct: b ? b.server_cpu_pct : null, server_cpu_us_per_delivery: cpuPer(b),
      client_cpu_pct: b ? b.client_cpu_pct : null,
      client_cpu_pct_saturated: t.saturatedAt ? t.saturatedAt.client_cpu_pct : null,
      limit: t.limit,
      probe_offered: p ? p.offered_msgs_s : null, probe_p50_ms: p ? p.lat_us.p50 / 1000 : null,
      probe_p99_ms: p ? p.lat_us.p99 / 1000 : null, probe_saturated: p ? p.saturated : null,
      probe_send_lag_p99_ms: p && p.send_lag_us ? p.send_lag_us.p99 / 1000 : null,
      peak: t.peak.window_deliveries_s, first_p50_ms: t.first.lat_us.p50 / 1000, first_p99_ms: t.first.lat_us.p99 / 1000,
      saturated_at: t.saturatedAt ? t.saturatedAt.offered_msgs_s : null,
      syscalls: syscalls(sc, s, r),
      instructions: instructions(sc, s, r),
    };
    const errs = r.errors.connect + r.errors.handshake + r.errors.closed + r.errors.server + r.errors.write;
    const cpu = b ? `${fmt(b.client_cpu_pct)}%` : '-';
    const cpuSat = t.saturatedAt ? `${fmt(t.saturatedAt.client_cpu_pct)}%` : '-';
    // The generator's own share: how late its 1 ms tick sent each message
    // (latency counts from the scheduled time, so this is inside p99).
    const lag = p && p.send_lag_us ? `; send lag p99 ${ms(p.send_lag_us.p99)}` : '';
    const probe = p ? `${ms(p.lat_us.p50)} / ${ms(p.lat_us.p99)} at ${fmt(p.offered_msgs_s)}${p.saturated ? ' (saturated)' : ''}${lag}` : '-';
    say(`| ${s} | ${b ? `${fmt(b.offered_msgs_s)} (${fmt(b.deliveries_s)})` : 'none kept up'} | ${t.saturatedAt ? fmt(t.saturatedAt.offered_msgs_s) : 'not reached'} | ${t.limit} | ${b ? fmt(b.server_cpu_pct) + '%' : '-'} | ${b ? fmt(cpuPer(b), 2) + ' us' : '-'} | ${cpu} / ${cpuSat} | ${probe} | ${errs} | ${fmt(Math.max(...r.steps.map((x) => x.others_cpu_pct || 0)))}% |`);
    ladders.push(`${s}: ` + r.steps.map((x) => `${fmt(x.offered_msgs_s)}${x.probe ? ' probe' : ''}${x.saturated ? ' SAT' : ''}${x.client_bound ? ' (loadgen-bound)' : ''}`).join(', '));
  }
  say();
  say('Steps offered, in order (msg/s; SAT: saturated): ' + ladders.join('; ') + '.');
  const h = summary[sc].huddle;
  const peers = rows.filter(([s]) => s !== 'huddle' && peersAllowed.includes(s)).map(([s]) => [s, summary[sc][s]]);
  if (h && peers.length) {
    const [bs, b] = peers.reduce((a, c) => (c[1].sustained > a[1].sustained ? c : a));
    summary[sc].ratio = b.sustained ? h.sustained / b.sustained : null;
    summary[sc].ratio_peak = b.peak ? h.peak / b.peak : null;
    const sat = (l) => typeof l === 'string' && l.startsWith('server');
    summary[sc].ratio_both_saturated = sat(h.limit) && sat(b.limit);
    const busy = [h.limit, b.limit].some((l) => l === 'server, machine busy');
    const why = summary[sc].ratio_both_saturated
      ? `both saturated${busy ? '; other processes were busy at a saturation point, so it may be early' : ''}`
      : `not saturated against saturated: huddle's limit was ${h.limit}, ${bs}'s ${b.limit}; a bound, not a ratio`;
    say();
    say(`Throughput at saturation, huddle / best peer (${bs}): **${ratio(h.sustained, b.sustained)}** (${why}); ${ratio(h.peak, b.peak)} peak in a step. ` +
        `Server CPU per delivery, huddle / ${bs}: ${ratio(h.server_cpu_us_per_delivery, b.server_cpu_us_per_delivery)} (lower is better).`);
  }
  const sys = rows.map(([s]) => [s, summary[sc][s] && summary[sc][s].syscalls]).filter(([, v]) => v);
  if (sys.length) {
    say();
    say('Syscalls (perf stat, whole measured run): ' + sys.map(([s, v]) =>
      `${s} ${v.per_delivery.toFixed(2)} per delivery, ${v.per_message_in.toFixed(2)} per message in (write ${fmt(v.writes)}, writev ${fmt(v.writevs)}, read ${fmt(v.reads)}, epoll_wait ${fmt(v.epoll_waits)})`).join('; ') + '.');
  }
  const ins = rows.map(([s]) => [s, summary[sc][s] && summary[sc][s].instructions]).filter(([, v]) => v);
  if (ins.length) {
    say();
    say('Instructions (callgrind, user space, whole measured run): ' + ins.map(([s, v]) =>
      `${s} ${fmt(v.per_delivery)} per delivery, ${fmt(v.per_message_in)} per message in`).join('; ') + '.');
  }
  say();
}

throughputTable('s2', '2. Room fan-out (rooms of 50, 200-byte chat; deliveries = messages x 50)', 'deliveries', ['wsroom', 'nchan']);
throughputTable('s3', '3. Signaling relay (offer/answer with 6 KiB / 4.5 KiB SDP, ice-candidates)', 'relays', ['peerjs', 'wsroom']);
throughputTable('s5', '5. Room fan-out with chat persisted (SQLite, durable)', 'deliveries', ['wsroom', 'nchan']);
throughputTable('s5pg', '5. Room fan-out with chat persisted (PostgreSQL, durable)', 'deliveries', ['wsroom', 'nchan']);

// ---- run.sh --instructions: callgrind and strace runs of the same loads ----
function straceCounts(f) {
  if (!fs.existsSync(f)) return null;
  const calls = {};
  for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
    const m = line.match(/^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\S+)\s*$/);
    if (m) calls[m[2]] = Number(m[1]);
  }
  return calls;
}
{
  const shapes = [
    ['relay', "scenario 3's relay mix (offer 6 KiB, answer 4.5 KiB, 4 ice-candidates), per relayed message"],
    ['offer', 'directed 6 KiB offers only, per relayed offer'],
    ['burst', 'scenario 2 in bursts (room of 50, 49 members each send 5 at once), per delivery'],
  ];
  const rows = [];
  for (const [shape, what] of shapes) {
    const c = load(`ca-${shape}`, 'huddle');
    const t = load(`st-${shape}`, 'huddle');
    if (!c && !t) continue;
    const ins = c ? instructions(`ca-${shape}`, 'huddle', c) : null;
    const calls = t ? straceCounts(path.join(dir, `strace-st-${shape}-huddle.txt`)) : null;
    const d = t && t.totals ? t.totals.deliveries : 0;
    const writes = calls ? ['write', 'writev', 'sendmsg', 'sendto', 'sendmmsg', 'pwritev', 'pwritev2'].reduce((a, k) => a + (calls[k] || 0), 0) : null;
    const reads = calls ? ['read', 'readv', 'recvfrom', 'recvmsg'].reduce((a, k) => a + (calls[k] || 0), 0) : null;
    const row = {
      shape, what,
      deliveries_callgrind: c ? c.totals.deliveries : null, messages_in_callgrind: c ? c.totals.sent : null,
      instructions: ins ? ins.ir : null,
      instructions_per_delivery: ins ? ins.per_delivery : null, instructions_per_message_in: ins ? ins.per_message_in : null,
      deliveries_strace: d || null, messages_in_strace: t ? t.totals.sent : null,
      syscalls: calls ? calls.total || null : null,
      syscalls_per_delivery: calls && d ? (calls.total || 0) / d : null,
      writes_per_delivery: calls && d ? writes / d : null,
      reads_per_delivery: calls && d ? reads / d : null,
      epoll_waits_per_delivery: calls && d ? (calls.epoll_wait || 0) / d : null,
      write_calls: calls ? { write: calls.write || 0, writev: calls.writev || 0, sendmsg: calls.sendmsg || 0, sendto: calls.sendto || 0 } : null,
    };
    rows.push(row);
  }
  if (rows.length) {
    summary.instructions = rows;
    say('### huddle: instructions and syscalls per message (callgrind Ir, user space; strace -c -f; light fixed loads)');
    say();
    say('| shape | instructions per delivery | per message in | syscalls per delivery | write-family per delivery (write / writev / sendmsg) | reads per delivery | epoll_wait per delivery | deliveries counted (callgrind / strace) |');
    say('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const w = r.write_calls;
      say(`| ${r.what} | ${fmt(r.instructions_per_delivery)} | ${fmt(r.instructions_per_message_in)} | ${fmt(r.syscalls_per_delivery, 3)} | ${fmt(r.writes_per_delivery, 3)}${w ? ` (${fmt(w.write)} / ${fmt(w.writev)} / ${fmt(w.sendmsg + w.sendto)})` : ''} | ${fmt(r.reads_per_delivery, 3)} | ${fmt(r.epoll_waits_per_delivery, 3)} | ${fmt(r.deliveries_callgrind)} / ${fmt(r.deliveries_strace)} |`);
    }
    say();
  }
}

// ---- 4. storm ----
{
  const rows = SERVERS.map((s) => [s, load('s4', s)]).filter(([, r]) => r);
  if (rows.length) {
    summary.s4 = {};
    say('### 4. Join storm (clients joining within 5 s; connect start as scheduled to room-state / OPEN)');
    say();
    say('| server | joined | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | failed |');
    say('|---|---:|---:|---:|---:|---:|---:|');
    for (const [s, r] of rows) {
      const l = r.connect.lat_us;
      summary.s4[s] = { ready: r.connect.ready, p50_ms: l.p50 / 1000, p99_ms: l.p99 / 1000, max_ms: l.max / 1000, failed: r.connect.failed };
      say(`| ${s} | ${fmt(r.connect.ready)} / ${fmt(r.connect.attempted)} | ${ms(l.p50)} | ${ms(l.p90)} | ${ms(l.p99)} | ${ms(l.max)} | ${r.connect.failed} |`);
    }
    const h = summary.s4.huddle;
    const peers = rows.filter(([s]) => s !== 'huddle').map(([s]) => [s, summary.s4[s]]);
    if (h && peers.length) {
      const [bs, b] = peers.reduce((a, c) => (c[1].p99_ms < a[1].p99_ms ? c : a));
      say();
      say(`p99 connect-to-room-state, huddle / best peer (${bs}): **${ratio(h.p99_ms, b.p99_ms)}** (lower is better).`);
    }
    say();
  }
}

const text = out.join('\n');
console.log(text);
fs.writeFileSync(path.join(dir, 'summary.md'), text + '\n');
fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
