// MeshMedia: one RTCPeerConnection per remote member, negotiated with the
// "perfect negotiation" pattern so that offers crossing in flight never fail.
// The polite side (the one that yields on a collision) is the member whose
// user id is lexicographically larger; both sides compute the same answer.
// The impolite side also makes the first offer of each connection, so the
// common collision (both sides starting at once) does not happen at all.
//
// It implements the small MediaEngine interface HuddleClient uses (attach,
// close, reset); an SFU engine can implement the same interface later
// without changing the app.

import { Emitter } from './emitter.js';
import { HuddleError } from './errors.js';

/** Whether we yield on an offer collision with remote (docs: "polite = the larger user id"). */
export function isPolite(selfId, remoteId) {
  return selfId > remoteId;
}

/** Quality from measurements, with the server's thresholds (protocol.md "network-stats"). */
export function qualityOf({ rtt_ms = 0, jitter_ms = 0, packet_loss = 0 } = {}) {
  if (packet_loss > 5 || rtt_ms > 400 || jitter_ms > 100) return 'poor';
  if (packet_loss > 1 || rtt_ms > 150 || jitter_ms > 30) return 'fair';
  return 'good';
}

/**
 * @typedef {object} Peer
 * @property {string} userId
 * @property {RTCPeerConnection} pc
 * @property {boolean} polite
 * @property {boolean} makingOffer
 * @property {boolean} ignoreOffer
 * @property {boolean} settingRemoteAnswer
 * @property {Promise<void>} chain serializes signaling for this peer
 * @property {Map<string, MediaStream>} streams remote streams by id
 * @property {any} stats last measurement
 * @property {number} serial a number per RTCPeerConnection created (tests check it survives a reconnect)
 */

export class MeshMedia extends Emitter {
  /**
   * @param {{RTCPeerConnection?: any, mediaDevices?: MediaDevices,
   *          statsIntervalMs?: number, reportIntervalMs?: number,
   *          iceRestartDelayMs?: number, firstOfferWaitMs?: number, timers?: object}} [opts]
   */
  constructor(opts = {}) {
    super();
    this._RTCPeerConnection = opts.RTCPeerConnection || globalThis.RTCPeerConnection;
    this._devices = opts.mediaDevices || (globalThis.navigator && globalThis.navigator.mediaDevices);
    this.statsIntervalMs = opts.statsIntervalMs ?? 2000;
    this.reportIntervalMs = opts.reportIntervalMs ?? 20000;
    this.iceRestartDelayMs = opts.iceRestartDelayMs ?? 4000;
    this.firstOfferWaitMs = opts.firstOfferWaitMs ?? 3000;
    /** Timer functions (tests pass their own). */
    this._t = Object.assign({
      setTimeout: (f, ms) => setTimeout(f, ms), clearTimeout: (h) => clearTimeout(h),
      setInterval: (f, ms) => setInterval(f, ms), clearInterval: (h) => clearInterval(h),
    }, opts.timers || {});
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {MediaStream|null} camera and microphone */
    this.localStream = null;
    /** @type {MediaStream|null} */
    this.screenStream = null;
    this.iceServers = [];
    this._serial = 0;
    this._client = null;
    this._offs = [];
    this._turnTimer = null;
    this._statsTimer = null;
    this._lastReport = 0;
  }

  // ------------------------------------------------------------ MediaEngine interface
  /** @param {import('./client.js').HuddleClient} client */
  attach(client) {
    this._client = client;
    const on = (ev, fn) => this._offs.push(client.on(ev, fn));
    on('room-state', (p, msg) => this._onRoomState(p, msg));
    on('user-joined', (p) => this._ensurePeer(p.user_id));
    on('user-left', (p) => this._dropPeer(p.user_id));
    on('resynced', () => this._rebuild());
    on('offer', (p, m) => this._onDescription(m.from, p));
    on('answer', (p, m) => this._onDescription(m.from, p));
    on('ice-candidate', (p, m) => this._onCandidate(m.from, p));
    on('participant-update', (p) => {
      if (p.action === 'removed' && p.user_id !== client.selfId) this._dropPeer(p.user_id);
    });
  }

  /** Ends every peer connection and stops local devices. */
  close() {
    this.reset();
    for (const s of [this.localStream, this.screenStream]) if (s) for (const t of s.getTracks()) t.stop();
    this.localStream = null;
    this.screenStream = null;
    for (const off of this._offs) off();
    this._offs = [];
    this.emit('closed');
  }

  /** Ends every peer connection but keeps local devices (moving rooms, fresh rejoin). */
  reset() {
    for (const id of [...this.peers.keys()]) this._dropPeer(id);
    if (this._turnTimer) this._t.clearTimeout(this._turnTimer);
    if (this._statsTimer) this._t.clearInterval(this._statsTimer);
    this._turnTimer = this._statsTimer = null;
  }

  // ------------------------------------------------------------ local media
  /**
   * Opens camera and/or microphone and sends them to everyone.
   * @param {{audio?: boolean|MediaTrackConstraints, video?: boolean|MediaTrackConstraints}} [c]
   * @returns {Promise<MediaStream>}
   */
  async startLocal(c = { audio: true, video: true }) {
    let stream;
    try {
      stream = await this._devices.getUserMedia(c);
    } catch (e) {
      throw new HuddleError('MEDIA_ERROR', `${e && e.name ? `${e.name}: ` : ''}${(e && e.message) || 'getUserMedia failed'}`, { cause: e });
    }
    if (!this.localStream) this.localStream = new MediaStream();
    for (const t of stream.getTracks()) this._addLocalTrack(t, this.localStream);
    this.emit('local', this.localStream);
    return this.localStream;
  }

  _addLocalTrack(track, stream) {
    const old = stream.getTracks().find((t) => t.kind === track.kind);
    if (old) {
      stream.removeTrack(old);
      old.stop();
    }
    stream.addTrack(track);
    for (const peer of this.peers.values()) this._sendTrack(peer, track, stream);
  }

  _sendTrack(peer, track, stream) {
    if (peer.awaitingFirstOffer) return; // sent with the rest after the first exchange
    // Reuse this stream's sender of that kind if there is one (no renegotiation).
    const sender = peer.pc.getSenders().find((s) => s._huddleStream === stream.id && s._huddleKind === track.kind);
    if (sender) {
      sender.replaceTrack(track).catch(() => {});
      return;
    }
    const s = peer.pc.addTrack(track, stream);
    s._huddleStream = stream.id;
    s._huddleKind = track.kind;
  }

  /** Camera or microphone track of kind, or null. */
  localTrack(kind) {
    return this.localStream ? this.localStream.getTracks().find((t) => t.kind === kind) || null : null;
  }

  /**
   * Mutes or unmutes own audio/video: the track keeps its sender (no
   * renegotiation); the room is told through media-control.
   */
  setEnabled(kind, enabled) {
    const t = this.localTrack(kind);
    if (t) t.enabled = !!enabled;
    if (this._client && this._client.state === 'joined') this._client.setMediaState(kind, !!enabled && !!t);
  }

  /** Stops the camera or microphone device (the light goes off); startLocal opens it again. */
  stopLocal(kind) {
    const t = this.localTrack(kind);
    if (!t) return;
    t.stop();
    this.localStream.removeTrack(t);
    for (const peer of this.peers.values()) {
      for (const s of peer.pc.getSenders()) if (s.track === t) s.replaceTrack(null).catch(() => {});
    }
    if (this._client && this._client.state === 'joined') this._client.setMediaState(kind, false);
  }

  /** Shares a screen, window or tab with everyone. */
  async startScreenShare() {
    let stream;
    try {
      stream = await this._devices.getDisplayMedia({ video: true, audio: false });
    } catch (e) {
      throw new HuddleError('MEDIA_ERROR', (e && e.message) || 'getDisplayMedia failed', { cause: e });
    }
    this.screenStream = stream;
    const [track] = stream.getVideoTracks();
    track.addEventListener('ended', () => this.stopScreenShare());
    for (const peer of this.peers.values()) this._sendTrack(peer, track, stream);
    if (this._client) {
      this._client.updateInfo({ client: { screen_stream: stream.id } });
      this._client.screenShareStarted();
    }
    this.emit('screen', stream);
    return stream;
  }

  stopScreenShare() {
    const stream = this.screenStream;
    if (!stream) return;
    this.screenStream = null;
    for (const peer of this.peers.values()) {
      for (const s of peer.pc.getSenders()) {
        if (s._huddleStream === stream.id) {
          try { peer.pc.removeTrack(s); } catch (_) { /* closed */ }
        }
      }
    }
    for (const t of stream.getTracks()) t.stop();
    if (this._client && this._client.state === 'joined') this._client.screenShareStopped();
    this.emit('screen', null);
  }

  // ------------------------------------------------------------ peers
  _onRoomState(p) {
    if (p.resumed === true) {
      // Signaling resumed: the peer connections carry on; drop those whose member left meanwhile.
      const present = new Set((p.participants || []).map((x) => x.user_id));
      for (const id of [...this.peers.keys()]) if (!present.has(id)) this._dropPeer(id);
      return;
    }
    this._setIceServers(p.ice_servers || []);
    const self = this._client.selfId;
    for (const x of p.participants || []) if (x.user_id !== self) this._ensurePeer(x.user_id);
    this._scheduleTurnRefresh();
    this._startStats();
  }

  /** After a fresh join that replaced a lost session: the others dropped their side, so rebuild ours. */
  _rebuild() {
    for (const id of [...this.peers.keys()]) this._dropPeer(id);
    const self = this._client.selfId;
    for (const id of this._client.model.participants.keys()) if (id !== self) this._ensurePeer(id);
  }

  _setIceServers(servers) {
    this.iceServers = servers;
    for (const peer of this.peers.values()) {
      try { peer.pc.setConfiguration({ iceServers: servers }); } catch (_) { /* closed */ }
    }
  }

  /** Refreshes TURN credentials at 80 % of their lifetime (GET /webrtc/config). */
  _scheduleTurnRefresh(ttlS) {
    if (this._turnTimer) this._t.clearTimeout(this._turnTimer);
    const ttl = ttlS || Math.max(0, ...this.iceServers.map((s) => s.ttl || 0));
    if (!ttl) return;
    this._turnTimer = this._t.setTimeout(async () => {
      try {
        const cfg = await this._client.rest.config();
        this._setIceServers(cfg.ice_servers || []);
        this.emit('ice-servers', this.iceServers);
        this._scheduleTurnRefresh(cfg.ttl);
      } catch (_) {
        this._scheduleTurnRefresh(60); // try again in a while
      }
    }, Math.max(1000, ttl * 800));
  }

  _ensurePeer(userId) {
    if (!this._client || userId === this._client.selfId || this.peers.has(userId)) return this.peers.get(userId);
    const pc = new this._RTCPeerConnection({ iceServers: this.iceServers });
    /** @type {Peer} */
    const peer = {
      userId, pc, polite: isPolite(this._client.selfId, userId), makingOffer: false,
      ignoreOffer: false, settingRemoteAnswer: false, chain: Promise.resolve(),
      streams: new Map(), stats: null, serial: ++this._serial, restartTimer: null, early: [],
    };
    this.peers.set(userId, peer);
    pc.onnegotiationneeded = async () => {
      try {
        peer.makingOffer = true;
        await pc.setLocalDescription();
        if (pc.localDescription) this._client.sendOffer(userId, pc.localDescription);
      } catch (e) {
        this.emit('peer-error', { userId, error: e });
      } finally {
        peer.makingOffer = false;
      }
    };
    pc.onicecandidate = ({ candidate }) => {
      try {
        this._client.sendIceCandidate(userId, candidate ? candidate.toJSON() : null);
      } catch (_) { /* not connected: the candidate is lost, ICE restart recovers */ }
    };
    pc.ontrack = ({ track, streams }) => {
      const stream = streams[0] || new MediaStream([track]);
      peer.streams.set(stream.id, stream);
      this.emit('track', { userId, track, stream, kind: this.streamKind(userId, stream) });
      stream.onremovetrack = () => {
        if (stream.getTracks().length === 0) {
          peer.streams.delete(stream.id);
          this.emit('stream-removed', { userId, stream });
        }
      };
    };
    pc.oniceconnectionstatechange = () => this._onIceState(peer);
    pc.onconnectionstatechange = () => this.emit('peer-state', { userId, state: pc.connectionState });
    // The impolite side makes the first offer; the polite side adds its media once
    // that first exchange is done (or after firstOfferWaitMs without one). Offers
    // never cross when a connection starts, which is when both sides would
    // otherwise offer at once (a member joining).
    if (!peer.polite) {
      this._sendAllTracks(peer);
      if (pc.getSenders().length === 0) {
        pc.addTransceiver('audio', { direction: 'recvonly' });
        pc.addTransceiver('video', { direction: 'recvonly' });
      }
    } else {
      peer.awaitingFirstOffer = true;
      peer.firstOfferTimer = this._t.setTimeout(() => this._firstExchangeDone(peer), this.firstOfferWaitMs);
    }
    this.emit('peer', { userId, pc, polite: peer.polite });
    return peer;
  }

  _sendAllTracks(peer) {
    if (this.localStream) for (const t of this.localStream.getTracks()) this._sendTrack(peer, t, this.localStream);
    if (this.screenStream) for (const t of this.screenStream.getTracks()) this._sendTrack(peer, t, this.screenStream);
  }

  _firstExchangeDone(peer) {
    if (!peer.awaitingFirstOffer) return;
    peer.awaitingFirstOffer = false;
    this._t.clearTimeout(peer.firstOfferTimer);
    if (this.peers.get(peer.userId) === peer) this._sendAllTracks(peer);
  }

  /** "camera" or "screen": the sender announces its screen stream's id in its info. */
  streamKind(userId, stream) {
    const p = this._client && this._client.model.participant(userId);
    const sid = p && p.info && p.info.client && p.info.client.screen_stream;
    return sid && sid === stream.id ? 'screen' : 'camera';
  }

  _onIceState(peer) {
    const st = peer.pc.iceConnectionState;
    this.emit('peer-state', { userId: peer.userId, state: st });
    if (peer.restartTimer) this._t.clearTimeout(peer.restartTimer);
    peer.restartTimer = null;
    if (st === 'failed') this._restartIce(peer);
    else if (st === 'disconnected') {
      // Often heals by itself; restart if it does not.
      peer.restartTimer = this._t.setTimeout(() => {
        if (peer.pc.iceConnectionState === 'disconnected') this._restartIce(peer);
      }, this.iceRestartDelayMs);
    }
  }

  _restartIce(peer) {
    if (!this.peers.has(peer.userId)) return;
    this.emit('ice-restart', { userId: peer.userId });
    try { peer.pc.restartIce(); } catch (_) { /* closed */ }
  }

  _dropPeer(userId) {
    const peer = this.peers.get(userId);
    if (!peer) return;
    this.peers.delete(userId);
    if (peer.restartTimer) this._t.clearTimeout(peer.restartTimer);
    if (peer.firstOfferTimer) this._t.clearTimeout(peer.firstOfferTimer);
    try { peer.pc.close(); } catch (_) { /* closed */ }
    this.emit('peer-closed', { userId });
  }

  /** Runs fn after the peer's earlier signaling steps (messages apply in order). */
  _serialize(peer, fn) {
    peer.chain = peer.chain.then(fn).catch((e) => this.emit('peer-error', { userId: peer.userId, error: e }));
    return peer.chain;
  }

  _onDescription(from, desc) {
    const peer = this._ensurePeer(from);
    if (!peer) return Promise.resolve();
    return this._serialize(peer, async () => {
      const pc = peer.pc;
      const readyForOffer = !peer.makingOffer && (pc.signalingState === 'stable' || peer.settingRemoteAnswer);
      const collision = desc.type === 'offer' && !readyForOffer;
      peer.ignoreOffer = !peer.polite && collision;
      if (collision) {
        peer.collisions = (peer.collisions || 0) + 1;
        this.emit('collision', { userId: from, polite: peer.polite });
      }
      if (peer.ignoreOffer) return;
      peer.settingRemoteAnswer = desc.type === 'answer';
      try {
        await pc.setRemoteDescription({ type: desc.type, sdp: desc.sdp });
      } finally {
        peer.settingRemoteAnswer = false;
      }
      // Candidates that overtook their description apply now.
      const early = peer.early.splice(0);
      for (const c of early) await pc.addIceCandidate(c).catch(() => {});
      if (desc.type === 'offer') {
        await pc.setLocalDescription();
        this._client.sendAnswer(from, pc.localDescription);
        if (peer.awaitingFirstOffer) this._firstExchangeDone(peer);
      }
    });
  }

  _onCandidate(from, cand) {
    const peer = this.peers.get(from);
    if (!peer) return Promise.resolve();
    return this._serialize(peer, async () => {
      try {
        if (!cand.candidate) {
          // End of candidates; older browsers reject the empty form.
          await peer.pc.addIceCandidate().catch(() => {});
          return;
        }
        if (!peer.pc.remoteDescription) {
          peer.early.push(cand);
          return;
        }
        await peer.pc.addIceCandidate(cand);
      } catch (e) {
        if (!peer.ignoreOffer) throw e;
      }
    });
  }

  // ------------------------------------------------------------ quality
  _startStats() {
    if (this._statsTimer || !this.statsIntervalMs) return;
    this._statsTimer = this._t.setInterval(() => this.measure().catch(() => {}), this.statsIntervalMs);
  }

  /**
   * Reads getStats() of every peer: per-peer quality ("good", "fair",
   * "poor"), emitted as "stats"; every reportIntervalMs the worst of them
   * goes to the server as network-stats.
   * @returns {Promise<Map<string, any>>}
   */
  async measure() {
    const out = new Map();
    for (const peer of [...this.peers.values()]) {
      let report;
      try {
        report = await peer.pc.getStats();
      } catch (_) {
        continue;
      }
      const m = summarize(report, peer.stats);
      m.quality = peer.pc.connectionState === 'failed' ? 'poor' : qualityOf(m);
      peer.stats = m;
      out.set(peer.userId, m);
      this.emit('stats', { userId: peer.userId, ...m });
    }
    const now = Date.now();
    if (out.size && this.reportIntervalMs && now - this._lastReport >= this.reportIntervalMs &&
        this._client && this._client.state === 'joined') {
      this._lastReport = now;
      const worst = [...out.values()].reduce((a, b) => (b.rtt_ms + b.packet_loss * 100 > a.rtt_ms + a.packet_loss * 100 ? b : a));
      const r = { rtt_ms: Math.round(worst.rtt_ms), jitter_ms: Math.round(worst.jitter_ms), packet_loss: Math.min(100, Math.round(worst.packet_loss * 10) / 10) };
      try { this._client.sendNetworkStats(r); } catch (_) { /* reconnecting */ }
    }
    return out;
  }
}

/**
 * Reduces an RTCStatsReport to what the app shows: RTT, jitter, loss,
 * frames decoded, audio packets received, inbound bitrate.
 */
export function summarize(report, prev) {
  const m = { rtt_ms: 0, jitter_ms: 0, packet_loss: 0, frames_decoded: 0, audio_packets: 0,
    video_packets: 0, bytes: 0, fps: 0, ts: Date.now(), bitrate_kbps: 0 };
  let lost = 0;
  let recv = 0;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded' && s.currentRoundTripTime !== undefined) {
      m.rtt_ms = s.currentRoundTripTime * 1000;
    }
    if (s.type === 'inbound-rtp') {
      lost += s.packetsLost || 0;
      recv += s.packetsReceived || 0;
      m.bytes += s.bytesReceived || 0;
      if (s.jitter !== undefined) m.jitter_ms = Math.max(m.jitter_ms, s.jitter * 1000);
      if (s.kind === 'video') {
        m.frames_decoded += s.framesDecoded || 0;
        m.video_packets += s.packetsReceived || 0;
        if (s.framesPerSecond) m.fps = s.framesPerSecond;
      } else if (s.kind === 'audio') {
        m.audio_packets += s.packetsReceived || 0;
      }
    }
  });
  m.packet_loss = recv + lost > 0 ? (100 * lost) / (recv + lost) : 0;
  if (prev && m.ts > prev.ts && m.bytes >= prev.bytes) m.bitrate_kbps = Math.round(((m.bytes - prev.bytes) * 8) / (m.ts - prev.ts));
  return m;
}
