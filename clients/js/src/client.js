// HuddleClient: one member's connection to one room. It owns the WebSocket,
// the room model, reconnection with resume, and a media engine (MeshMedia by
// default) that it feeds with signaling. Every client message type of
// docs/protocol.md is a method; every server message type is an event.

import { Emitter } from './emitter.js';
import { HuddleError, FINAL_CLOSE_CODES } from './errors.js';
import { HuddleRest } from './rest.js';
import { RoomModel } from './room.js';

/** Server message types (docs/protocol.md "Message types"), each emitted as an event. */
export const SERVER_MESSAGE_TYPES = Object.freeze([
  'room-state', 'user-joined', 'user-left', 'error', 'offer', 'answer', 'ice-candidate',
  'media-control', 'screen-share-control', 'chat-message', 'role-updated', 'permission-updated',
  'recording-status', 'file-share-offer', 'file-share-accept', 'file-share-reject',
  'file-share-progress', 'file-share-complete', 'network-stats', 'quality-update',
  'participant-update', 'room-settings-update', 'hand-raise', 'hand-raise-queue',
  'waiting-room-join', 'waiting-room-admit', 'waiting-room-reject', 'reaction',
  'breakout-room-create', 'breakout-room-assign', 'breakout-room-close',
  'virtual-background-update', 'live-stream-start', 'live-stream-stop',
  'e2ee-key-exchange', 'e2ee-ratchet-update',
]);

/** Client message types, each sent by a method of HuddleClient. */
export const CLIENT_MESSAGE_TYPES = Object.freeze([
  'offer', 'answer', 'ice-candidate', 'media-control', 'screen-share-control', 'chat-message',
  'role-updated', 'permission-updated', 'recording-control', 'file-share-offer',
  'file-share-accept', 'file-share-reject', 'file-share-progress', 'file-share-complete',
  'network-stats', 'quality-update', 'analytics-event', 'participant-update',
  'room-settings-update', 'hand-raise', 'waiting-room-admit', 'waiting-room-reject', 'reaction',
  'breakout-room-create', 'breakout-room-assign', 'breakout-room-close',
  'virtual-background-update', 'live-stream-start', 'live-stream-stop',
  'e2ee-key-exchange', 'e2ee-ratchet-update',
]);

/** Messages resent by the SDK itself when the server's rate limit refuses them:
 * losing one would break a call (signaling) or leave the room's view wrong. */
const RESEND_TYPES = new Set(['offer', 'answer', 'ice-candidate', 'media-control', 'screen-share-control', 'participant-update']);

/** Refusals worth retrying while reconnecting; any other code ends the attempt. */
const TRANSIENT_CODES = new Set(['RATE_LIMIT_EXCEEDED', 'SERVER_FULL', 'SHUTTING_DOWN',
  'TOO_MANY_CONNECTIONS', 'INTERNAL_ERROR', 'NETWORK_ERROR', 'CONNECTION_FAILED']);

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [baseMs=500] first delay
 * @property {number} [maxMs=8000] longest delay
 * @property {number} [maxAttempts=15]
 * @property {number} [maxElapsedMs=45000] give up after this long (the server's grace is 30 s)
 *
 * @typedef {object} ClientOptions
 * @property {string} room room id
 * @property {string | (() => string | Promise<string>)} [token] a JWT, or a function returning a fresh one
 * @property {string} [grant] a breakout grant instead of a token
 * @property {string} [baseUrl] server origin (default: the page's origin)
 * @property {MediaEngine | null} [media] the media engine (default: none; pass new MeshMedia())
 * @property {ReconnectOptions | false} [reconnect]
 * @property {number} [joinTimeoutMs=15000] how long connect() waits for room-state (or the waiting room)
 * @property {(url: string) => any} [createSocket] transport factory (default: new WebSocket(url))
 * @property {typeof fetch} [fetch]
 * @property {() => number} [random] for jitter (tests pass a fixed one)
 * @property {{setTimeout: typeof setTimeout, clearTimeout: typeof clearTimeout}} [timers]
 *
 * @typedef {object} MediaEngine
 * @property {(client: HuddleClient) => void} attach
 * @property {() => void} close
 */

export class HuddleClient extends Emitter {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    super();
    if (!opts || !opts.room) throw new TypeError('HuddleClient: opts.room is required');
    this.roomId = opts.room;
    this.token = opts.token;
    this.grant = opts.grant || null;
    this.baseUrl = (opts.baseUrl || (typeof location !== 'undefined' ? location.origin : '')).replace(/\/$/, '');
    this.rest = new HuddleRest({ baseUrl: this.baseUrl, token: () => this._token(), fetch: opts.fetch });
    /** The room model; listen to model.on('change'). */
    this.model = new RoomModel();
    this.reconnectOpts = opts.reconnect === false ? null
      : Object.assign({ baseMs: 500, maxMs: 8000, maxAttempts: 15, maxElapsedMs: 45000 }, opts.reconnect || {});
    this.joinTimeoutMs = opts.joinTimeoutMs || 15000;
    this._createSocket = opts.createSocket || ((url) => new WebSocket(url));
    this._random = opts.random || Math.random;
    this._timers = opts.timers || { setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (t) => clearTimeout(t) };
    /** @type {'idle'|'connecting'|'waiting'|'joined'|'reconnecting'|'closed'|'failed'} */
    this.state = 'idle';
    this.lastSeq = 0;
    this.resumeToken = null;
    this._ws = null;
    this._ids = 0;
    this._replaying = false;
    this._attempt = 0;
    this._reconnectStarted = 0;
    this._retryTimer = null;
    this._queue = [];
    this._pending = new Map();
    this._resend = new Map(); // id -> serialized message, for RESEND_TYPES (bounded)
    this._joinedOnce = false;
    this.media = opts.media || null;
    if (this.media) this.media.attach(this);
  }

  async _token() {
    return typeof this.token === 'function' ? await this.token() : this.token;
  }

  /** The local user id (after room-state). */
  get selfId() { return this.model.selfId; }

  /** Builds the upgrade URL (with resume_token and last_seq when resuming). */
  async _url(resume) {
    const ws = this.baseUrl.replace(/^http/, 'ws');
    const q = [];
    if (this.grant) q.push(`grant=${encodeURIComponent(this.grant)}`);
    else {
      const t = await this._token();
      if (t) q.push(`token=${encodeURIComponent(t)}`);
    }
    if (resume && this.resumeToken) {
      q.push(`resume_token=${encodeURIComponent(this.resumeToken)}`, `last_seq=${this.lastSeq}`);
    }
    return `${ws}/webrtc/ws/${encodeURIComponent(this.roomId)}${q.length ? `?${q.join('&')}` : ''}`;
  }

  /**
   * Connects and joins. Resolves with {status: "joined"} after room-state, or
   * {status: "waiting"} when the room's waiting room holds us (then "joined"
   * follows on admission). Rejects with a HuddleError naming the refusal.
   * @returns {Promise<{status: 'joined'|'waiting'}>}
   */
  connect() {
    if (this.state !== 'idle' && this.state !== 'closed' && this.state !== 'failed') {
      return Promise.reject(new HuddleError('INVALID_MESSAGE', 'connect() was called twice.'));
    }
    this.state = 'connecting';
    return new Promise((resolve, reject) => {
      this._connectWaiter = { resolve, reject };
      this._joinTimer = this._timers.setTimeout(() => {
        if (this.state !== 'connecting') return;
        const ws = this._ws;
        this._ws = null;
        this.state = 'closed';
        if (ws) try { ws.close(1000, 'timeout'); } catch (_) { /* closing */ }
        this._settleConnect(new HuddleError('TIMEOUT', 'The server did not let us into the room in time.'));
      }, this.joinTimeoutMs);
      this._open(false).catch((e) => this._settleConnect(e));
    });
  }

  _settleConnect(err, value) {
    const w = this._connectWaiter;
    if (!w) return;
    this._timers.clearTimeout(this._joinTimer);
    this._connectWaiter = null;
    if (err) w.reject(err);
    else w.resolve(value);
  }

  async _open(resume) {
    const url = await this._url(resume);
    if (this.state === 'closed') return;
    const ws = this._createSocket(url);
    this._ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this._replaying = resume;
      this.emit('open', { resume });
    };
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onerror = () => {};
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onClose(ev.code, ev.reason || '', opened);
    };
  }

  /** Why an upgrade was refused: asks the validate endpoint (CONTRACTS "Refusal readable by browsers"). */
  async _whyRefused() {
    try {
      const r = await this.rest.validate(this.roomId);
      if (r && r.ok) return null; // it would be admitted now: the failure was transient
      return new HuddleError('CONNECTION_FAILED');
    } catch (e) {
      if (e instanceof HuddleError && e.code !== 'NOT_FOUND') return e;
      return new HuddleError('CONNECTION_FAILED', undefined, { cause: e });
    }
  }

  async _onClose(code, reason, opened) {
    for (const [, p] of this._pending) p.reject(new HuddleError('NOT_CONNECTED'));
    this._pending.clear();
    if (this.state === 'closed' || this.state === 'failed') return;
    const final = FINAL_CLOSE_CODES[code];
    if (final && opened) {
      this._finish('closed', { code, reason: final, detail: reason });
      return;
    }
    if (!opened) {
      // The browser hides the refusal's body: ask the server what it was.
      const err = await this._whyRefused();
      if (this.state === 'connecting') {
        this.state = 'closed';
        this._settleConnect(err || new HuddleError('CONNECTION_FAILED'));
        return;
      }
      if (this.state === 'reconnecting' && err && !TRANSIENT_CODES.has(err.code)) {
        this._fail(err);
        return;
      }
    }
    if (this.state === 'connecting') {
      this.state = 'closed';
      this._settleConnect(new HuddleError('CONNECTION_FAILED'));
      return;
    }
    if (!this.reconnectOpts) {
      this._finish('closed', { code, reason: 'DISCONNECTED', detail: reason });
      return;
    }
    this._scheduleReconnect(code);
  }

  _scheduleReconnect(code) {
    const o = this.reconnectOpts;
    if (this.state !== 'reconnecting') {
      this.state = 'reconnecting';
      this._attempt = 0;
      this._reconnectStarted = Date.now();
    }
    if (this._attempt >= o.maxAttempts || Date.now() - this._reconnectStarted > o.maxElapsedMs) {
      this._fail(new HuddleError('RECONNECT_FAILED'));
      return;
    }
    const exp = Math.min(o.maxMs, o.baseMs * 2 ** this._attempt);
    const delay = Math.round(exp / 2 + this._random() * (exp / 2)); // "equal jitter"
    this._attempt++;
    this.emit('reconnecting', { attempt: this._attempt, delayMs: delay, code });
    this._retryTimer = this._timers.setTimeout(() => {
      this._retryTimer = null;
      if (this.state !== 'reconnecting') return;
      this._open(true).catch(() => this._scheduleReconnect(code));
    }, delay);
  }

  /** Reconnects now instead of waiting for the backoff timer (e.g. on the browser's "online"). */
  retryNow() {
    if (this.state !== 'reconnecting' || !this._retryTimer) return;
    this._timers.clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._open(true).catch(() => this._scheduleReconnect(1006));
  }

  _fail(err) {
    this.state = 'failed';
    this._teardown();
    this.emit('failed', err);
  }

  _finish(state, info) {
    this.state = state;
    this._teardown();
    this.emit('closed', info);
  }

  _teardown() {
    if (this._retryTimer) this._timers.clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this._queue = [];
    if (this.media) this.media.close();
    this.model.status = 'left';
  }

  _onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (_) {
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    const roomMessage = msg.type !== 'room-state' && msg.type !== 'error';
    if (roomMessage && typeof msg.seq === 'number') {
      if (this._replaying && msg.seq <= this.lastSeq) return; // already processed before the cut
      if (msg.seq > this.lastSeq) this.lastSeq = msg.seq;
    }
    if (msg.type === 'room-state') return this._onRoomState(msg);
    if (msg.type === 'error') return this._onError(msg);
    if (msg.ref && this._pending.has(msg.ref)) {
      this._pending.get(msg.ref).resolve(msg);
      this._pending.delete(msg.ref);
    }
    const wasWaiting = this.model.status === 'waiting';
    this.model.apply(msg);
    if (msg.type === 'waiting-room-join' && !msg.payload.user_id && !wasWaiting) {
      this.state = 'waiting';
      this._settleConnect(null, { status: 'waiting' });
      this.emit('waiting', msg.payload);
    }
    this.emit(msg.type, msg.payload || {}, msg);
    this.emit('message', msg);
    const p = msg.payload || {};
    if (msg.type === 'participant-update' && p.action === 'removed' && p.user_id === this.selfId) {
      this.emit('removed', p);
    } else if (msg.type === 'breakout-room-assign' && msg.to && msg.to === this.selfId && p.grant) {
      this.emit('breakout-assigned', p);
    } else if (msg.type === 'breakout-room-close' && p.grant) {
      this.emit('breakout-closed', p);
    } else if (msg.type === 'waiting-room-reject' && (!p.user_id || p.user_id === this.selfId || this.state === 'waiting')) {
      this.emit('rejected', p);
    }
  }

  _onRoomState(msg) {
    const p = msg.payload || {};
    const resumed = p.resumed === true;
    const wasReconnecting = this.state === 'reconnecting';
    this._replaying = false;
    if (typeof p.seq === 'number') this.lastSeq = resumed ? Math.max(this.lastSeq, p.seq) : p.seq;
    else if (typeof msg.seq === 'number' && !resumed) this.lastSeq = msg.seq;
    if (p.self && p.self.resume_token) this.resumeToken = p.self.resume_token;
    if (!resumed || !this._joinedOnce) this.model.apply(msg);
    else this._mergeResumed(msg);
    this.state = 'joined';
    this._attempt = 0;
    this.emit('room-state', p, msg);
    this.emit('message', msg);
    if (!this._joinedOnce) {
      this._joinedOnce = true;
      this._settleConnect(null, { status: 'joined' });
      this.emit('joined', this.model);
    } else if (wasReconnecting) {
      this.emit('reconnected', { resumed });
      if (!resumed) this.emit('resynced', this.model);
    } else {
      // Admitted from the waiting room, or moved to another room.
      this.emit('joined', this.model);
    }
    const q = this._queue;
    this._queue = [];
    if (resumed) for (const s of q) this._rawSend(s);
  }

  /** After a resume the current room-state replaces the model, keeping listeners. */
  _mergeResumed(msg) {
    this.model.apply(msg);
  }

  _onError(msg) {
    const p = msg.payload || {};
    const err = HuddleError.fromServer(p);
    const ref = p.ref || msg.ref;
    if (ref && this._pending.has(ref)) {
      this._pending.get(ref).reject(err);
      this._pending.delete(ref);
    }
    if (err.code === 'RATE_LIMIT_EXCEEDED' && ref && this._resend.has(ref)) {
      // A signaling message over the budget: send it again when the budget allows.
      const s = this._resend.get(ref);
      const wait = Math.max(50, err.retryAfterMs || 1000);
      this.emit('rate-limited', { ref, retryAfterMs: wait });
      this._timers.setTimeout(() => {
        if (this.state === 'joined' && this._resend.has(ref)) this._rawSend(s);
      }, wait);
      return;
    }
    if (/^RESUME_/.test(err.code)) {
      this.emit('resume-failed', err); // a fresh join (room-state resumed:false) follows
      return;
    }
    this.emit('error', err, msg);
    this.emit('message', msg);
  }

  _rawSend(s) {
    if (this._ws && this._ws.readyState === 1) {
      this._ws.send(s);
      return true;
    }
    return false;
  }

  /**
   * Sends one message; returns its id (echoed as `ref` in replies and errors).
   * While reconnecting, messages are queued and sent after a resume (dropped
   * after a fresh join, whose state they may no longer fit).
   * @param {string} type
   * @param {object} [payload]
   * @param {{to?: string, id?: string}} [o]
   * @returns {string}
   */
  send(type, payload = {}, o = {}) {
    const id = o.id || `c${++this._ids}`;
    const env = { type, id, payload };
    if (o.to) env.to = o.to;
    const s = JSON.stringify(env);
    if (RESEND_TYPES.has(type)) {
      this._resend.set(id, s);
      if (this._resend.size > 512) this._resend.delete(this._resend.keys().next().value);
    }
    if (!this._rawSend(s)) {
      if (this.state === 'reconnecting' && this._queue.length < 256) this._queue.push(s);
      else if (this.state !== 'reconnecting') throw new HuddleError('NOT_CONNECTED');
    }
    return id;
  }

  /**
   * Sends and resolves with the first server message carrying this id as
   * `ref` (e.g. the chat echo), or rejects with the error that carries it.
   * @param {string} type
   * @param {object} [payload]
   * @param {{to?: string, timeoutMs?: number}} [o]
   * @returns {Promise<any>}
   */
  request(type, payload = {}, o = {}) {
    return new Promise((resolve, reject) => {
      const id = `c${++this._ids}`;
      const timer = this._timers.setTimeout(() => {
        this._pending.delete(id);
        reject(new HuddleError('TIMEOUT'));
      }, o.timeoutMs || 10000);
      this._pending.set(id, {
        resolve: (m) => { this._timers.clearTimeout(timer); resolve(m); },
        reject: (e) => { this._timers.clearTimeout(timer); reject(e); },
      });
      try {
        this.send(type, payload, { to: o.to, id });
      } catch (e) {
        this._pending.get(id).reject(e);
        this._pending.delete(id);
      }
    });
  }

  /** Leaves the room: closes with 1000 (others see user-left "left") and stops media. */
  leave() {
    if (this.state === 'closed' || this.state === 'failed') return;
    const ws = this._ws;
    this._ws = null;
    this._finish('closed', { code: 1000, reason: 'LEFT' });
    if (ws) try { ws.close(1000, 'bye'); } catch (_) { /* already closing */ }
  }

  /**
   * Moves to another room with a grant (a breakout assignment or the way
   * back): closes this connection and joins there, keeping the media engine.
   * @param {{room_id: string, grant: string}} target
   */
  async moveTo(target) {
    const old = this._ws;
    this._ws = null;
    if (old) try { old.close(1000, 'moving'); } catch (_) { /* closing */ }
    if (this.media && this.media.reset) this.media.reset();
    this.roomId = target.room_id;
    this.grant = target.grant;
    this.resumeToken = null;
    this.lastSeq = 0;
    this._joinedOnce = false;
    this.model.reset();
    this.state = 'idle';
    return this.connect();
  }

  // ---------------------------------------------------------------- WebRTC signaling
  sendOffer(to, desc) { return this.send('offer', { type: 'offer', sdp: desc.sdp }, { to }); }
  sendAnswer(to, desc) { return this.send('answer', { type: 'answer', sdp: desc.sdp }, { to }); }
  /** candidate: RTCIceCandidateInit; null sends end-of-candidates (an empty candidate). */
  sendIceCandidate(to, candidate) {
    const c = candidate || { candidate: '', sdpMid: null, sdpMLineIndex: null };
    return this.send('ice-candidate', {
      candidate: c.candidate || '',
      sdpMid: c.sdpMid === undefined ? null : c.sdpMid,
      sdpMLineIndex: c.sdpMLineIndex === undefined ? null : c.sdpMLineIndex,
    }, { to });
  }

  // ---------------------------------------------------------------- media state
  /** Tells the room whether own audio/video is on. */
  setMediaState(kind, enabled) { return this.send('media-control', { kind, enabled: !!enabled }); }
  /** Moderator: mutes someone (enabled=false) or asks them to unmute (enabled=true). */
  muteParticipant(userId, kind = 'audio') { return this.send('media-control', { kind, enabled: false, user_id: userId }); }
  requestUnmute(userId, kind = 'audio') { return this.send('media-control', { kind, enabled: true, user_id: userId }); }
  /** Moderator: mutes everyone it outranks. */
  muteAll(kind = 'audio') { return this.send('media-control', { kind, enabled: false, all: true }); }
  screenShareStarted() { return this.send('screen-share-control', { action: 'start' }); }
  screenShareStopped() { return this.send('screen-share-control', { action: 'stop' }); }
  /** Moderator: stops someone's screen share. */
  stopScreenShareOf(userId) { return this.send('screen-share-control', { action: 'stop', user_id: userId }); }

  // ---------------------------------------------------------------- chat, reactions, hands
  /** @param {string} text @param {{to?: string, replyTo?: string}} [o] */
  sendChat(text, o = {}) {
    const p = { text };
    if (o.replyTo) p.reply_to = o.replyTo;
    return this.send('chat-message', p, { to: o.to });
  }
  react(emoji) { return this.send('reaction', { emoji }); }
  raiseHand() { return this.send('hand-raise', { raised: true }); }
  /** Lowers own hand, or (moderator) someone else's. */
  lowerHand(userId) { return this.send('hand-raise', userId ? { raised: false, user_id: userId } : { raised: false }); }
  nextSpeaker() { return this.send('hand-raise', { action: 'next' }); }

  // ---------------------------------------------------------------- moderation
  setRole(userId, role) { return this.send('role-updated', { user_id: userId, role }); }
  setPermissions(userId, permissions) { return this.send('permission-updated', { user_id: userId, permissions }); }
  updateSettings(changes) { return this.send('room-settings-update', changes); }
  lockRoom(locked = true) { return this.updateSettings({ locked: !!locked }); }
  removeParticipant(userId, reason) {
    const p = { action: 'remove', user_id: userId };
    if (reason) p.reason = reason;
    return this.send('participant-update', p);
  }
  admit(userId) { return this.send('waiting-room-admit', { user_id: userId }); }
  reject(userId, reason) { return this.send('waiting-room-reject', reason ? { user_id: userId, reason } : { user_id: userId }); }
  /** @param {{name: string}[]} rooms */
  createBreakouts(rooms) { return this.send('breakout-room-create', { rooms }); }
  assignBreakout(breakoutRoomId, userId) { return this.send('breakout-room-assign', { breakout_room_id: breakoutRoomId, user_id: userId }); }
  closeBreakout(breakoutRoomId) { return this.send('breakout-room-close', { breakout_room_id: breakoutRoomId }); }

  // ---------------------------------------------------------------- recording, streaming
  startRecording() { return this.send('recording-control', { action: 'start' }); }
  stopRecording(recordingId) { return this.send('recording-control', recordingId ? { action: 'stop', recording_id: recordingId } : { action: 'stop' }); }
  startLiveStream(targetUrl, name) { return this.send('live-stream-start', name ? { target_url: targetUrl, name } : { target_url: targetUrl }); }
  stopLiveStream(streamId) { return this.send('live-stream-stop', { stream_id: streamId }); }

  // ---------------------------------------------------------------- files
  /** @param {{name: string, size: number, mime_type: string, sha256: string}} file @param {string} [to] */
  offerFile(file, to) { return this.send('file-share-offer', file, { to }); }
  acceptFile(to, transferId) { return this.send('file-share-accept', { transfer_id: transferId }, { to }); }
  rejectFile(to, transferId, reason) { return this.send('file-share-reject', reason ? { transfer_id: transferId, reason } : { transfer_id: transferId }, { to }); }
  fileProgress(to, transferId, bytes) { return this.send('file-share-progress', { transfer_id: transferId, bytes_transferred: bytes }, { to }); }
  fileComplete(to, transferId, sha256) { return this.send('file-share-complete', sha256 ? { transfer_id: transferId, sha256 } : { transfer_id: transferId }, { to }); }
  /**
   * Shares a file through the server: offers it (name, size, type, sha256),
   * then uploads it with tus to the upload_url of the offer's reply. The
   * server then reports file-share-progress and file-share-complete (with
   * download_url) to the room, or file-share-reject when a check fails.
   * Resolves with the reply's payload (transfer_id, upload_url, ...) once
   * every byte is stored.
   * @param {Blob & {name?: string}} file
   * @param {{to?: string, onProgress?: (sent: number, total: number) => void}} [o]
   */
  async shareFile(file, o = {}) {
    const digest = await globalThis.crypto.subtle.digest('SHA-256', await file.arrayBuffer());
    const sha256 = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    const offer = { name: file.name || 'file', size: file.size, mime_type: file.type || 'application/octet-stream', sha256 };
    const reply = await this.request('file-share-offer', offer, { to: o.to });
    const p = reply.payload || {};
    if (!p.upload_url) throw new HuddleError('INTERNAL_ERROR', 'the offer was answered without an upload_url');
    await this.rest.uploadFile(p.upload_url, file, { onProgress: o.onProgress });
    return p;
  }

  // ---------------------------------------------------------------- stats, info, misc
  sendNetworkStats(stats) { return this.send('network-stats', stats); }
  sendQualityUpdate(q) { return this.send('quality-update', q); }
  trackEvent(name, properties) { return this.send('analytics-event', properties ? { name, properties } : { name }); }
  updateInfo(info) { return this.send('participant-update', { info }); }
  setVirtualBackground(bg) { return this.send('virtual-background-update', bg); }
  sendE2eeKey(payload, to) { return this.send('e2ee-key-exchange', payload, { to }); }
  sendE2eeRatchet(payload, to) { return this.send('e2ee-ratchet-update', payload, { to }); }
}
