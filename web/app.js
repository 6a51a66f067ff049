// huddle web app: plain ES modules on the SDK (served at /sdk/). No framework
// (docs/adr/0009-web-app-without-framework.md). The view is rebuilt from the
// SDK's room model after each change; media elements are kept per stream.

import { HuddleClient, HuddleRest, MeshMedia, HuddleError } from '/sdk/src/index.js';

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
};

/** Chat text arrives HTML-escaped by the server; decode it for textContent (never innerHTML). */
export function unescapeChat(s) {
  return String(s).replace(/&(amp|lt|gt|quot|#39|#x27|#58);/g, (m, n) => (
    { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'", '#x27': "'", '#58': ':' }[n]));
}

/** Messages for people, by taxonomy code or SDK reason. */
const EXPLAIN = {
  ROOM_FULL: 'This room is full. Try again later, or ask the host to raise the limit.',
  ROOM_LOCKED: 'This room is locked. Ask the host to unlock it.',
  USER_BANNED: 'You were removed from this room and cannot rejoin it.',
  TOKEN_EXPIRED: 'Your link or token has expired. Ask for a new one.',
  INVALID_TOKEN: 'This link or token is not valid.',
  TOKEN_ROOM_MISMATCH: 'This token is for a different room.',
  UNAUTHORIZED: 'A token is needed to join this room.',
  RATE_LIMIT_EXCEEDED: 'Too many attempts. Wait a moment and try again.',
  SERVER_FULL: 'The server is at capacity. Try again later.',
  SHUTTING_DOWN: 'The server is restarting. Try again in a moment.',
  INVALID_ROOM_ID: 'Room names use letters, digits, dot, dash and underscore (up to 64).',
  NETWORK_ERROR: 'The server could not be reached. Check your connection.',
  CONNECTION_FAILED: 'Could not connect to the meeting. Try again.',
  MEDIA_ERROR: 'The camera or microphone could not be used. Check the browser permission.',
  REMOVED: 'You were removed from the meeting by a moderator.',
  WAITING_ROOM_REJECTED: 'The host did not let you in.',
  SESSION_REPLACED: 'You joined this meeting from another tab or device, so this one was disconnected.',
  RECONNECT_FAILED: 'The connection was lost and could not be restored.',
  CHAT_DISABLED: 'Chat is turned off in this room.',
  PERMISSION_DENIED: 'You do not have permission to do that.',
};
const explain = (e) => EXPLAIN[e.code] || `${e.message}${e.recovery ? ` ${e.recovery}` : ''}`;

const app = {
  client: null, media: null, rest: null, tiles: new Map(), chatSeen: new Set(), panel: null,
  unread: false, handUp: false, camOn: false, micOn: false, sharing: false, stats: new Map(), errors: [],
};
window.huddle = app; // for the console and for the browser tests

// ------------------------------------------------------------------ join screen

function userIdFrom(name) {
  const base = name.normalize('NFKD').replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'guest';
  const rnd = Array.from(crypto.getRandomValues(new Uint8Array(3)), (b) => b.toString(16).padStart(2, '0')).join('');
  return `${base}-${rnd}`;
}

function showJoinError(text) {
  const p = $('join-error');
  p.textContent = text;
  p.hidden = !text;
}

async function onJoinSubmit(ev) {
  ev.preventDefault();
  showJoinError('');
  const name = $('join-name').value.trim();
  const room = $('join-room').value.trim();
  if (!name) { showJoinError('Enter your name.'); $('join-name').focus(); return; }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(room)) { showJoinError(EXPLAIN.INVALID_ROOM_ID); $('join-room').focus(); return; }
  let token = $('join-token').value.trim();
  const btn = $('join-button');
  btn.disabled = true;
  btn.textContent = 'Joining…';
  try {
    if (!token) {
      try {
        const r = await app.rest.devToken({ room, user: userIdFrom(name), name, role: $('join-role').value });
        token = r.token;
      } catch (e) {
        if (e.code === 'NOT_FOUND') throw new HuddleError('UNAUTHORIZED', 'This server does not hand out development tokens. Paste a token from your application under "I have a token".');
        throw e;
      }
    }
    await startMeeting(room, token, { cam: $('join-cam').checked, mic: $('join-mic').checked });
  } catch (e) {
    showJoinError(e instanceof HuddleError ? explain(e) : String(e.message || e));
    showScreen('join');
  } finally {
    btn.disabled = false;
    btn.textContent = 'Join';
  }
}

function showScreen(which) {
  $('join-screen').hidden = which !== 'join';
  $('meeting-screen').hidden = which !== 'meeting';
}

// ------------------------------------------------------------------ meeting

async function startMeeting(room, token, want) {
  const media = new MeshMedia();
  const client = new HuddleClient({ room, token, media });
  app.client = client;
  app.media = media;
  app.want = want;
  $('room-name').textContent = room;
  wireClient(client, media);
  updateSelfState();
  showScreen('meeting');
  setConn('Connecting…');
  let res;
  try {
    res = await client.connect();
  } catch (e) {
    app.client = null;
    media.close();
    throw e;
  }
  history.replaceState(null, '', `/?room=${encodeURIComponent(room)}`); // the token stays out of the address bar
  // A reload of this tab rejoins (the token lives in this tab's sessionStorage only).
  try { sessionStorage.setItem(SESSION_KEY, JSON.stringify({ room, token, want })); } catch (_) { /* private mode */ }
  document.title = `${room} · huddle`;
}

const SESSION_KEY = 'huddle.session';
function forgetSession() {
  try { sessionStorage.removeItem(SESSION_KEY); } catch (_) { /* ignore */ }
}
function savedSession(room) {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return s && (!room || s.room === room) ? s : null;
  } catch (_) {
    return null;
  }
}

async function openLocalMedia() {
  const { media, client, want } = app;
  const perms = client.model.self.permissions || {};
  const audio = want.mic && perms.can_publish_audio !== false;
  const video = want.cam && perms.can_publish_video !== false;
  const mute = !!client.model.settings.mute_on_join;
  if (!audio && !video) { updateSelfState(); return; }
  try {
    await media.startLocal({ audio, video: video ? { width: 640, height: 480 } : false });
    app.micOn = audio && !mute;
    app.camOn = video;
    if (audio && mute) media.localTrack('audio').enabled = false;
    if (app.micOn) client.setMediaState('audio', true);
    if (app.camOn) client.setMediaState('video', true);
  } catch (e) {
    showNotice(explain(e), [], 'error');
  }
  updateSelfState();
}

function wireClient(client, media) {
  const model = client.model;
  model.on('change', () => render());
  client.on('joined', async () => {
    $('meeting-screen').classList.remove('is-waiting');
    hideNotice();
    setConn('Connected');
    render();
    if (!media.localStream) await openLocalMedia();
    loadChatHistory();
  });
  client.on('waiting', () => {
    $('meeting-screen').classList.add('is-waiting'); // nothing but Leave works until admitted
    setConn('Waiting to be admitted');
    showNotice('You are in the waiting room. The host will let you in soon.', [], 'info');
  });
  client.on('reconnecting', ({ attempt }) => {
    setConn(`Connection lost. Reconnecting (attempt ${attempt})…`, true);
    showNotice('Network connection lost. Trying to reconnect; your call continues if it can.', [], 'info');
  });
  client.on('reconnected', () => { setConn('Connected'); hideNotice(); });
  client.on('resynced', () => { render(); });
  client.on('failed', (e) => {
    setConn('Disconnected', true);
    showNotice(explain(e), [button('Rejoin', () => location.reload())], 'error');
  });
  client.on('closed', ({ reason }) => {
    if (reason === 'LEFT') return;
    if (reason === 'BREAKOUT_CLOSED') return; // moving back to the main room
    forgetSession();
    setConn('Disconnected', true);
    showNotice(EXPLAIN[reason] || `Disconnected (${reason}).`, [button('Back to start', () => location.assign('/'))], 'error');
    clearTiles();
  });
  client.on('removed', (p) => showNotice(`${EXPLAIN.REMOVED}${p.reason ? ` Reason: ${p.reason}` : ''}`, [], 'error'));
  client.on('rejected', (p) => showNotice(`${EXPLAIN.WAITING_ROOM_REJECTED}${p.reason ? ` (${p.reason})` : ''}`, [], 'error'));
  client.on('error', (e) => {
    app.errors.push(e.code); // kept for the console and the browser tests
    toast(explain(e));
  });
  client.on('chat-message', (p, msg) => addChat(Object.assign({ from: msg.from, ts: msg.ts, to: msg.to }, p)));
  client.on('reaction', (p, msg) => showReaction(msg.from, p.emoji));
  client.on('media-control', (p) => {
    const me = client.selfId;
    if (p.request && p.user_id === me) {
      showNotice(`${nameOf(p.by)} asks you to turn on your ${p.kind === 'audio' ? 'microphone' : 'camera'}.`, [
        button('Turn on', () => { hideNotice(); toggle(p.kind, true); }), button('Not now', hideNotice)], 'info');
      return;
    }
    const mine = p.all ? (p.user_ids || []).includes(me) : p.user_id === me;
    if (mine && p.enabled === false && p.by && p.by !== me) {
      // A moderator muted us: obey locally.
      const t = media.localTrack(p.kind);
      if (t) t.enabled = false;
      if (p.kind === 'audio') app.micOn = false; else app.camOn = false;
      updateSelfState();
      toast(`${nameOf(p.by)} turned off your ${p.kind === 'audio' ? 'microphone' : 'camera'}.`);
    }
  });
  client.on('screen-share-control', (p) => {
    if (!p.sharing && p.user_id !== client.selfId) removeTile(`${p.user_id}#screen`);
    if (p.user_id === client.selfId && !p.sharing && app.sharing) { media.stopScreenShare(); app.sharing = false; updateSelfState(); }
  });
  client.on('breakout-assigned', (p) => {
    toast(`Moving you to breakout room "${p.name}".`);
    addNote(`You moved to the breakout room "${p.name}".`);
    client.moveTo({ room_id: p.room_id, grant: p.grant }).then(() => { $('room-name').textContent = p.name; }).catch((e) => showNotice(explain(e), [], 'error'));
  });
  client.on('breakout-closed', (p) => {
    toast('The breakout room closed. Returning to the main room.');
    addNote('You are back in the main room.');
    client.moveTo({ room_id: p.room_id, grant: p.grant }).then(() => { $('room-name').textContent = p.room_id; }).catch((e) => showNotice(explain(e), [], 'error'));
  });
  client.on('waiting-room-join', (p) => { if (p.user_id && p.status === 'waiting') toast(`${p.name || p.user_id} is waiting to join.`); });
  // Shared files: the offer, the server's progress, then a download link (or why it was refused).
  client.on('file-share-offer', (p, msg) => fileLine(p, msg.from));
  client.on('file-share-progress', (p, msg) => { if (msg.from === 'server') fileStatus(p.transfer_id, `${Math.floor(p.percent || 0)} % uploaded`); });
  client.on('file-share-complete', (p, msg) => { if (msg.from === 'server') fileReady(p); });
  client.on('file-share-reject', (p, msg) => {
    if (msg.from === 'server') fileStatus(p.transfer_id, `not shared: ${p.message || p.reason}`, true);
  });

  media.on('local', (stream) => setTileStream(client.selfId || 'self', stream, 'camera', true));
  media.on('screen', (stream) => {
    if (stream) setTileStream(`${client.selfId}`, stream, 'screen', true);
    else removeTile(`${client.selfId}#screen`);
  });
  media.on('track', ({ userId, stream, kind }) => {
    // The first stream of a member is its camera unless it announced it as a screen.
    const cam = app.tiles.get(`${userId}#camera`);
    if (kind === 'camera' && cam && cam.stream && cam.stream !== stream && cam.stream.getTracks().some((t) => t.readyState === 'live')) kind = 'screen';
    setTileStream(userId, stream, kind, false);
  });
  media.on('stream-removed', ({ userId, stream }) => {
    const t = app.tiles.get(`${userId}#screen`);
    if (t && t.stream === stream) removeTile(`${userId}#screen`);
  });
  media.on('peer-closed', ({ userId }) => { removeTile(`${userId}#camera`); removeTile(`${userId}#screen`); });
  media.on('stats', (s) => { app.stats.set(s.userId, s); renderQuality(s.userId); });
  window.addEventListener('online', () => client.retryNow());
  // Closing the tab is leaving (1000); the browser's own 1001 would read as a
  // dropped connection, shown to the others as "reconnecting" for the grace period.
  window.addEventListener('pagehide', () => client.leave());
}

async function loadChatHistory() {
  const c = app.client;
  try {
    const r = await c.rest.chatHistory(c.roomId, { limit: 50 });
    for (const m of r.messages || []) addChat(m, true);
  } catch (_) {
    // No history endpoint on this server (404), or not allowed: live chat only.
  }
}

// ------------------------------------------------------------------ tiles

function nameOf(id) {
  if (!id || id === 'server') return 'The server';
  const p = app.client && app.client.model.participant(id);
  return (p && p.name) || id;
}

function tileFor(key, userId, kind, self) {
  let t = app.tiles.get(key);
  if (t) return t;
  const node = $('tile-tpl').content.firstElementChild.cloneNode(true);
  node.dataset.user = userId;
  node.dataset.kind = kind;
  if (kind === 'screen') node.classList.add('screen');
  if (self && kind === 'camera') node.classList.add('self');
  const video = node.querySelector('video');
  video.muted = !!self; // never play our own microphone back
  t = { key, userId, kind, node, video, stream: null, self };
  app.tiles.set(key, t);
  $('grid').append(node);
  return t;
}

function setTileStream(userId, stream, kind, self) {
  const t = tileFor(`${userId}#${kind}`, userId, kind, self);
  if (t.stream !== stream) {
    t.stream = stream;
    t.video.srcObject = stream;
    t.video.play().catch(() => {});
  }
  render();
}

function removeTile(key) {
  const t = app.tiles.get(key);
  if (!t) return;
  t.video.srcObject = null;
  t.node.remove();
  app.tiles.delete(key);
  layout();
}

function clearTiles() {
  for (const k of [...app.tiles.keys()]) removeTile(k);
}

function layout() {
  const grid = $('grid');
  const n = grid.children.length;
  grid.dataset.count = String(n);
  if (n > 4) grid.dataset.many = n > 9 ? '4' : '3';
  else delete grid.dataset.many;
}

function renderQuality(userId) {
  const s = app.stats.get(userId);
  const t = app.tiles.get(`${userId}#camera`);
  if (!t || !s) return;
  const q = t.node.querySelector('.q');
  q.className = `q ${s.quality}`;
  const label = `Connection ${s.quality}: ${Math.round(s.rtt_ms)} ms round trip, ${s.packet_loss.toFixed(1)} % loss`;
  q.setAttribute('aria-label', label);
  q.title = label;
}

function renderTiles() {
  const model = app.client.model;
  const me = model.selfId;
  // Everyone in the room has a camera tile, with or without video.
  for (const p of model.participants.values()) {
    const self = p.user_id === me;
    if (self && app.tiles.has('self#camera')) {
      // Our tile was made before room-state told us our id.
      const t = app.tiles.get('self#camera');
      app.tiles.delete('self#camera');
      t.key = `${me}#camera`; t.userId = me; t.node.dataset.user = me;
      app.tiles.set(t.key, t);
    }
    tileFor(`${p.user_id}#camera`, p.user_id, 'camera', self);
  }
  for (const t of [...app.tiles.values()]) {
    const p = model.participant(t.userId);
    if (!p) { if (t.userId !== 'self') removeTile(t.key); continue; }
    const self = t.userId === me;
    const hasVideo = t.kind === 'screen' || (self ? app.camOn && !!app.media.localTrack('video') : p.media.video);
    t.node.classList.toggle('novideo', !hasVideo || !t.stream);
    t.node.classList.toggle('hand', !!p.hand_raised && t.kind === 'camera');
    t.node.querySelector('.avatar').textContent = (p.name || p.user_id).slice(0, 1).toUpperCase();
    t.node.querySelector('.name').textContent = `${p.name || p.user_id}${self ? ' (you)' : ''}${t.kind === 'screen' ? ' — screen' : ''}`;
    t.node.querySelector('.role-tag').textContent = t.kind === 'camera' && (p.role === 'host' || p.role === 'moderator') ? p.role : '';
    const flags = [];
    if (t.kind === 'camera' && !p.media.audio) flags.push('🔇');
    if (t.kind === 'camera' && p.hand_raised) flags.push('✋');
    if (p.status === 'reconnecting') flags.push('reconnecting…');
    const f = t.node.querySelector('.flags');
    f.textContent = flags.join(' ');
    f.setAttribute('aria-label', [!p.media.audio && t.kind === 'camera' ? 'microphone off' : '', p.hand_raised ? 'hand raised' : '', p.status === 'reconnecting' ? 'reconnecting' : ''].filter(Boolean).join(', '));
    t.node.dataset.audio = p.media.audio ? 'on' : 'off';
    t.node.setAttribute('aria-label', `${p.name || p.user_id}${t.kind === 'screen' ? ' screen share' : ''}`);
    renderQuality(t.userId);
  }
  layout();
}

// ------------------------------------------------------------------ panel

function button(text, fn, attrs = {}) {
  return el('button', Object.assign({ type: 'button', text, onclick: fn }, attrs));
}

function renderPeople() {
  const c = app.client;
  const model = c.model;
  const me = model.selfId;
  const mod = model.can('can_moderate');
  const list = $('people-list');
  list.replaceChildren();
  $('people-count').textContent = `(${model.participants.size})`;
  const rank = { host: 3, moderator: 2, participant: 1, viewer: 0 };
  const myRank = rank[model.self ? model.self.role : 'viewer'];
  for (const p of model.participants.values()) {
    const li = el('li', { 'data-user': p.user_id },
      el('span', { class: 'pname', text: `${p.name || p.user_id}${p.user_id === me ? ' (you)' : ''}` }),
      el('span', { class: 'tag', text: p.role }),
      p.media.audio ? null : el('span', { 'aria-label': 'microphone off', title: 'microphone off', text: '🔇' }),
      p.hand_raised ? el('span', { 'aria-label': 'hand raised', title: 'hand raised', text: '✋' }) : null,
      p.status === 'reconnecting' ? el('span', { class: 'tag', text: 'reconnecting' }) : null);
    const outranks = mod && p.user_id !== me && (model.self.role === 'host' || myRank > rank[p.role]);
    if (outranks) {
      const who = p.name || p.user_id;
      if (p.media.audio) li.append(button('Mute', () => c.muteParticipant(p.user_id, 'audio'), { 'aria-label': `Mute ${who}` }));
      else li.append(button('Ask to unmute', () => c.requestUnmute(p.user_id, 'audio'), { 'aria-label': `Ask ${who} to unmute` }));
      if (p.hand_raised) li.append(button('Lower hand', () => c.lowerHand(p.user_id), { 'aria-label': `Lower ${who}'s hand` }));
      const sel = el('select', { 'aria-label': `Role of ${who}` });
      for (const r of ['host', 'moderator', 'participant', 'viewer']) {
        if (model.self.role !== 'host' && rank[r] > myRank) continue;
        sel.append(el('option', { value: r, text: r, selected: r === p.role }));
      }
      sel.addEventListener('change', () => c.setRole(p.user_id, sel.value));
      li.append(sel);
      if (model.breakoutRooms.length) {
        const bs = el('select', { 'aria-label': `Breakout room for ${who}` }, el('option', { value: '', text: 'Breakout…' }));
        for (const b of model.breakoutRooms) bs.append(el('option', { value: b.breakout_room_id, text: b.name }));
        bs.addEventListener('change', () => { if (bs.value) c.assignBreakout(bs.value, p.user_id); });
        li.append(bs);
      }
      li.append(button('Remove', () => {
        if (confirm(`Remove ${who} from the meeting? They cannot rejoin.`)) c.removeParticipant(p.user_id, 'removed by a moderator');
      }, { class: 'danger', 'aria-label': `Remove ${who}` }));
    }
    list.append(li);
  }
  // waiting room
  $('waiting-section').hidden = !mod || model.waiting.size === 0;
  const wl = $('waiting-list');
  wl.replaceChildren();
  for (const w of model.waiting.values()) {
    const who = w.name || w.user_id;
    wl.append(el('li', { 'data-user': w.user_id }, el('span', { class: 'pname', text: who }),
      button('Admit', () => c.admit(w.user_id), { class: 'primary', 'aria-label': `Admit ${who}` }),
      button('Reject', () => c.reject(w.user_id), { 'aria-label': `Reject ${who}` })));
  }
  // hands
  $('hands-section').hidden = model.handQueue.length === 0;
  const hl = $('hand-list');
  hl.replaceChildren();
  for (const h of model.handQueue) hl.append(el('li', {}, el('span', { class: 'pname', text: `${h.position}. ${h.name || nameOf(h.user_id)}` })));
  // moderator tools
  $('mod-tools').hidden = !mod;
  setPressed($('toggle-lock'), !!model.settings.locked, 'Lock room');
  setPressed($('toggle-waiting'), !!model.settings.waiting_room, 'Waiting room');
  $('toggle-rec').textContent = model.recording ? 'Stop recording' : 'Record';
  $('toggle-rec').hidden = !model.can('can_record');
  $('next-speaker').disabled = model.handQueue.length === 0;
  // breakouts
  $('breakout-section').hidden = !mod || !!model.parentRoom;
  const bl = $('breakout-list');
  bl.replaceChildren();
  for (const b of model.breakoutRooms) {
    const n = (b.participants || b.assigned || []).length;
    bl.append(el('li', {}, el('span', { class: 'pname', text: `${b.name} (${n})` }),
      button('Close', () => c.closeBreakout(b.breakout_room_id), { 'aria-label': `Close breakout room ${b.name}` })));
  }
  // chat recipients
  const to = $('chat-to');
  const cur = to.value;
  to.replaceChildren(el('option', { value: '', text: 'Everyone' }));
  for (const p of model.participants.values()) if (p.user_id !== me) to.append(el('option', { value: p.user_id, text: p.name || p.user_id }));
  to.value = [...to.options].some((o) => o.value === cur) ? cur : '';
}

function setPressed(btn, on, label) {
  btn.setAttribute('aria-pressed', on ? 'true' : 'false');
  btn.classList.toggle('toggle-on', on && !btn.closest('.toolbar'));
  if (label) btn.textContent = label;
}

function renderIndicators() {
  const m = app.client.model;
  $('ind-rec').hidden = !m.recording;
  $('ind-live').hidden = m.liveStreams.length === 0;
  $('ind-lock').hidden = !m.settings.locked;
  $('ind-waitroom').hidden = !m.settings.waiting_room;
}

function updateSelfState() {
  const perms = (app.client && app.client.model.self && app.client.model.self.permissions) || {};
  const mic = $('btn-mic');
  mic.querySelector('use').setAttribute('href', app.micOn ? '#i-mic' : '#i-mic-off');
  mic.querySelector('.lbl').textContent = app.micOn ? 'Mute' : 'Unmute';
  mic.classList.toggle('off', !app.micOn);
  mic.setAttribute('aria-label', app.micOn ? 'Mute microphone' : 'Unmute microphone');
  mic.disabled = perms.can_publish_audio === false;
  const cam = $('btn-cam');
  cam.querySelector('use').setAttribute('href', app.camOn ? '#i-cam' : '#i-cam-off');
  cam.querySelector('.lbl').textContent = app.camOn ? 'Stop video' : 'Start video';
  cam.classList.toggle('off', !app.camOn);
  cam.setAttribute('aria-label', app.camOn ? 'Turn camera off' : 'Turn camera on');
  cam.disabled = perms.can_publish_video === false;
  const scr = $('btn-screen');
  scr.classList.toggle('on', app.sharing);
  scr.querySelector('.lbl').textContent = app.sharing ? 'Stop sharing' : 'Share screen';
  scr.disabled = perms.can_share_screen === false || !(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia);
  const me = app.client && app.client.model.participant(app.client.selfId);
  app.handUp = !!(me && me.hand_raised);
  const hand = $('btn-hand');
  hand.classList.toggle('on', app.handUp);
  hand.querySelector('.lbl').textContent = app.handUp ? 'Lower hand' : 'Raise hand';
  if (app.client) renderTiles();
}

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    if (!app.client || !app.client.model.self) return;
    renderIndicators();
    renderPeople();
    updateSelfState();
  });
}

// ------------------------------------------------------------------ chat, reactions, notices

function addChat(m, fromHistory) {
  const id = m.message_id;
  if (id && app.chatSeen.has(id)) return;
  if (id) app.chatSeen.add(id);
  const me = app.client.selfId;
  const priv = m.private || !!m.to;
  const who = m.sender_name || nameOf(m.from);
  const li = el('li', { 'data-id': id || '' },
    el('time', { datetime: new Date(m.ts || Date.now()).toISOString(), text: new Date(m.ts || Date.now()).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) }),
    priv ? el('span', { class: 'private', text: m.from === me ? `(private to ${nameOf(m.to)})` : '(private)' }) : null,
    el('span', { class: 'who', text: m.from === me ? 'You' : who }),
    el('span', { class: 'text', text: unescapeChat(m.text) }));
  const list = $('chat-list');
  list.append(li);
  list.scrollTop = list.scrollHeight;
  if (!fromHistory && (app.panel !== 'chat') && m.from !== me) {
    $('chat-unread').hidden = false;
  }
}

// ------------------------------------------------------------------ shared files

function humanSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function fileItem(id) {
  return [...$('chat-list').querySelectorAll('li.file')].find((li) => li.dataset.transfer === id) || null;
}

/** The chat line of a shared file (one per transfer_id). */
function fileLine(p, from) {
  if (!p.transfer_id) return null;
  const old = fileItem(p.transfer_id);
  if (old) return old;
  const me = app.client.selfId;
  const li = el('li', { class: 'file', 'data-transfer': p.transfer_id },
    el('time', { datetime: new Date().toISOString(), text: new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) }),
    el('span', { class: 'who', text: from === me ? 'You' : nameOf(from) }),
    el('span', { class: 'text', text: `shared ${p.name} (${humanSize(p.size || 0)})` }),
    el('span', { class: 'file-status', text: 'uploading' }));
  const list = $('chat-list');
  list.append(li);
  list.scrollTop = list.scrollHeight;
  if (app.panel !== 'chat' && from !== me) $('chat-unread').hidden = false;
  return li;
}

function fileStatus(id, text, bad) {
  const li = fileItem(id);
  const s = li && li.querySelector('.file-status');
  if (!s) return;
  s.textContent = text;
  s.classList.toggle('bad', !!bad);
}

/** The file is checked and stored: a link that downloads it with this member's token. */
function fileReady(p) {
  const li = fileItem(p.transfer_id) || fileLine(p, null);
  if (!li || li.querySelector('a.download')) return;
  fileStatus(p.transfer_id, p.scanned ? 'ready (virus-scanned)' : 'ready');
  const a = el('a', { class: 'download', href: '#', 'data-url': p.download_url, text: `Download ${p.name}` });
  a.addEventListener('click', async (e) => {
    e.preventDefault();
    try {
      const blob = await app.client.rest.downloadFile(p.download_url);
      const url = URL.createObjectURL(blob);
      const tmp = el('a', { href: url, download: p.name });
      document.body.append(tmp);
      tmp.click();
      tmp.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      toast(err instanceof HuddleError ? explain(err) : String(err.message || err));
    }
  });
  li.append(a);
}

async function shareChosenFile() {
  const input = $('file-input');
  const file = input.files && input.files[0];
  input.value = '';
  if (!file) return;
  try {
    await app.client.shareFile(file);
  } catch (e) {
    toast(e instanceof HuddleError ? explain(e) : String(e.message || e));
  }
}

/** A line in the chat from the app itself (room moves). */
function addNote(text) {
  const list = $('chat-list');
  list.append(el('li', { class: 'note', text }));
  list.scrollTop = list.scrollHeight;
}

function showReaction(from, emoji) {
  const r = el('div', { class: 'reaction', text: `${emoji} ${nameOf(from)}` });
  $('reactions').append(r);
  setTimeout(() => r.remove(), 4000);
}

function setConn(text, bad) {
  const s = $('conn-status');
  s.textContent = text;
  s.classList.toggle('bad', !!bad);
}

function showNotice(text, actions = [], kind = 'info') {
  $('notice-text').textContent = text;
  $('notice-actions').replaceChildren(...actions);
  $('notice').classList.toggle('error', kind === 'error');
  $('notice').hidden = false;
  if (actions[0]) actions[0].focus();
}
function hideNotice() { $('notice').hidden = true; }

let toastTimer = null;
function toast(text) {
  const s = $('conn-status');
  const before = s.dataset.base || s.textContent;
  s.dataset.base = before;
  s.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { s.textContent = s.dataset.base; delete s.dataset.base; }, 4000);
}

function openPanel(which) {
  const panel = $('panel');
  if (app.panel === which) { app.panel = null; panel.hidden = true; }
  else {
    app.panel = which;
    panel.hidden = false;
    selectTab(which);
  }
  setPressed($('btn-chat'), app.panel === 'chat');
  setPressed($('btn-people'), app.panel === 'people');
  if (app.panel === 'chat') { $('chat-unread').hidden = true; $('chat-input').focus(); }
}

function selectTab(which) {
  app.panel = which;
  for (const [tab, pane, name] of [['tab-chat', 'pane-chat', 'chat'], ['tab-people', 'pane-people', 'people']]) {
    const on = name === which;
    $(tab).setAttribute('aria-selected', on ? 'true' : 'false');
    $(tab).tabIndex = on ? 0 : -1;
    $(pane).hidden = !on;
  }
  setPressed($('btn-chat'), which === 'chat');
  setPressed($('btn-people'), which === 'people');
}

// ------------------------------------------------------------------ controls

async function toggle(kind, force) {
  const { media, client } = app;
  const on = force !== undefined ? force : !(kind === 'audio' ? app.micOn : app.camOn);
  try {
    if (on && !media.localTrack(kind)) {
      await media.startLocal(kind === 'audio' ? { audio: true } : { video: { width: 640, height: 480 } });
    } else if (kind === 'video' && !on) {
      media.stopLocal('video'); // the camera light goes off
    } else {
      media.localTrack(kind).enabled = on;
    }
    if (kind === 'audio') app.micOn = on; else app.camOn = on;
    client.setMediaState(kind, on);
  } catch (e) {
    toast(explain(e));
  }
  updateSelfState();
}

async function toggleScreen() {
  const { media } = app;
  if (app.sharing) {
    media.stopScreenShare();
    app.sharing = false;
  } else {
    try {
      await media.startScreenShare();
      app.sharing = true;
      media.screenStream.getVideoTracks()[0].addEventListener('ended', () => { app.sharing = false; updateSelfState(); });
    } catch (e) {
      if (e.cause && e.cause.name === 'NotAllowedError') return; // the person cancelled the picker
      toast(explain(e));
    }
  }
  updateSelfState();
}

function bindControls() {
  $('join-form').addEventListener('submit', onJoinSubmit);
  $('btn-mic').addEventListener('click', () => toggle('audio'));
  $('btn-cam').addEventListener('click', () => toggle('video'));
  $('btn-screen').addEventListener('click', toggleScreen);
  $('btn-hand').addEventListener('click', () => (app.handUp ? app.client.lowerHand() : app.client.raiseHand()));
  $('btn-file').addEventListener('click', () => $('file-input').click());
  $('file-input').addEventListener('change', shareChosenFile);
  const menu = $('react-menu');
  const setMenu = (open) => {
    menu.hidden = !open;
    $('btn-react').setAttribute('aria-expanded', open ? 'true' : 'false');
    if (open) menu.querySelector('button').focus();
  };
  $('btn-react').addEventListener('click', () => setMenu(menu.hidden));
  menu.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') { setMenu(false); $('btn-react').focus(); }
  });
  for (const b of document.querySelectorAll('.react')) {
    b.addEventListener('click', () => { app.client.react(b.dataset.emoji); setMenu(false); });
  }
  $('btn-chat').addEventListener('click', () => openPanel('chat'));
  $('btn-people').addEventListener('click', () => openPanel('people'));
  $('tab-chat').addEventListener('click', () => selectTab('chat'));
  $('tab-people').addEventListener('click', () => selectTab('people'));
  for (const t of ['tab-chat', 'tab-people']) {
    $(t).addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const next = t === 'tab-chat' ? 'people' : 'chat';
        selectTab(next);
        $(`tab-${next}`).focus();
      }
    });
  }
  $('btn-leave').addEventListener('click', () => {
    forgetSession();
    if (app.client) app.client.leave();
    location.assign(`/?room=${encodeURIComponent(app.client ? app.client.roomId : '')}`);
  });
  $('chat-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text) return;
    app.client.sendChat(text, { to: $('chat-to').value || undefined });
    input.value = '';
  });
  $('mute-all').addEventListener('click', () => app.client.muteAll('audio'));
  $('toggle-lock').addEventListener('click', () => app.client.lockRoom(!app.client.model.settings.locked));
  $('toggle-waiting').addEventListener('click', () => app.client.updateSettings({ waiting_room: !app.client.model.settings.waiting_room }));
  $('next-speaker').addEventListener('click', () => app.client.nextSpeaker());
  $('toggle-rec').addEventListener('click', () => (app.client.model.recording ? app.client.stopRecording() : app.client.startRecording()));
  $('breakout-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('breakout-name').value.trim();
    if (!name) return;
    app.client.createBreakouts([{ name }]);
    $('breakout-name').value = '';
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !$('notice').hidden && $('notice-actions').children.length === 0) hideNotice();
  });
}

function main() {
  app.rest = new HuddleRest();
  bindControls();
  const q = new URLSearchParams(location.search);
  const room = q.get('room') || '';
  const token = q.get('token');
  $('join-room').value = room;
  try { $('join-name').value = localStorage.getItem('huddle.name') || ''; } catch (_) { /* private mode */ }
  $('join-name').addEventListener('change', () => { try { localStorage.setItem('huddle.name', $('join-name').value); } catch (_) { /* ignore */ } });
  const saved = !token && savedSession(room);
  if ((room && token) || saved) {
    const want = saved ? saved.want : { cam: q.get('cam') !== '0', mic: q.get('mic') !== '0' };
    startMeeting(saved ? saved.room : room, saved ? saved.token : token, want).catch((e) => {
      forgetSession();
      showScreen('join');
      showJoinError(e instanceof HuddleError ? explain(e) : String(e.message || e));
    });
  } else {
    showScreen('join');
    (room ? $('join-name') : $('join-room')).focus();
    if (!room) $('join-room').value = 'demo';
    if (!$('join-name').value) $('join-name').focus();
  }
}

main();
