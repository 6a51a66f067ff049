// The room as an observable model: it applies server messages to a plain
// state (participants, roles, permissions, settings, hand queue, waiting room,
// breakout rooms, recording, live streams) and emits "change" after each.
// It does no I/O, so it is tested in Node with recorded messages.

import { Emitter } from './emitter.js';

/**
 * @typedef {{audio: boolean, video: boolean, screen: boolean}} MediaState
 * @typedef {object} Participant
 * @property {string} user_id
 * @property {string} name
 * @property {string} role
 * @property {number} [joined_at]
 * @property {MediaState} media
 * @property {'connected'|'reconnecting'} status
 * @property {boolean} hand_raised
 * @property {Record<string, boolean>} [permissions]
 * @property {any} [info]
 * @property {any} [quality]
 * @property {any} [network_stats]
 * @property {any} [virtual_background]
 */

const MEDIA_OFF = () => ({ audio: false, video: false, screen: false });

export class RoomModel extends Emitter {
  constructor() {
    super();
    this.reset();
  }

  /** Forgets everything (a fresh join rebuilds it from room-state). */
  reset() {
    /** @type {string|null} */
    this.roomId = null;
    /** @type {'idle'|'waiting'|'joined'|'left'} */
    this.status = 'idle';
    /** @type {any} own entry from room-state.self (user_id, role, permissions, session_id, resume_token...) */
    this.self = null;
    /** @type {Map<string, Participant>} in join order */
    this.participants = new Map();
    /** @type {Record<string, any>} */
    this.settings = {};
    /** @type {{user_id: string, name?: string, raised_at?: number, position: number}[]} */
    this.handQueue = [];
    /** @type {Map<string, {user_id: string, name?: string, role?: string, requested_at?: number, position?: number}>} */
    this.waiting = new Map();
    /** @type {number|null} own place while waiting to be admitted */
    this.waitingPosition = null;
    /** @type {{breakout_room_id: string, name: string, assigned: string[], participants?: string[]}[]} */
    this.breakoutRooms = [];
    /** @type {string|null} */
    this.parentRoom = null;
    /** @type {any} the active recording or null */
    this.recording = null;
    /** @type {any[]} */
    this.liveStreams = [];
    /** @type {any[]} */
    this.iceServers = [];
  }

  /** @returns {string|null} */
  get selfId() { return this.self ? this.self.user_id : null; }

  /**
   * Whether the local user holds a permission (e.g. "can_moderate").
   * @param {string} perm
   */
  can(perm) { return !!(this.self && this.self.permissions && this.self.permissions[perm]); }

  /** @param {string} id */
  participant(id) { return this.participants.get(id) || null; }

  _upsert(p) {
    const old = this.participants.get(p.user_id);
    const entry = Object.assign(old || { media: MEDIA_OFF(), status: 'connected', hand_raised: false }, p);
    entry.media = Object.assign(MEDIA_OFF(), (old && old.media) || {}, p.media || {});
    if (!entry.status) entry.status = 'connected';
    this.participants.set(p.user_id, entry);
    return entry;
  }

  _markHands() {
    const raised = new Set(this.handQueue.map((h) => h.user_id));
    for (const p of this.participants.values()) p.hand_raised = raised.has(p.user_id);
  }

  /**
   * Applies one server message. Returns true if the state changed (and
   * "change" was emitted with the message).
   * @param {{type: string, from?: string, to?: string, room?: string, payload?: any}} msg
   */
  apply(msg) {
    const p = msg.payload || {};
    const me = this.selfId;
    let changed = true;
    switch (msg.type) {
      case 'room-state': {
        const self = p.self || {};
        this.reset();
        this.roomId = msg.room || null;
        this.status = 'joined';
        this.self = Object.assign({}, self);
        for (const x of p.participants || []) this._upsert(Object.assign({}, x));
        if (self.permissions && this.participants.has(self.user_id)) {
          this.participants.get(self.user_id).permissions = self.permissions;
        }
        this.settings = Object.assign({}, p.settings || {});
        this.handQueue = (p.hand_raise_queue || []).slice();
        this.recording = p.recording && p.recording.state !== 'stopped' ? p.recording : null;
        this.liveStreams = (p.live_streams || []).slice();
        this.breakoutRooms = (p.breakout_rooms || []).map((b) => Object.assign({ assigned: [] }, b));
        this.parentRoom = p.parent_room || null;
        this.iceServers = p.ice_servers || [];
        const w = Array.isArray(p.waiting_room) ? p.waiting_room : (p.waiting_room && p.waiting_room.waiting) || [];
        for (const x of w) this.waiting.set(x.user_id, x);
        this._markHands();
        break;
      }
      case 'user-joined':
        this._upsert(Object.assign({ status: 'connected' }, p));
        this.waiting.delete(p.user_id);
        this._markHands();
        break;
      case 'user-left':
        this.participants.delete(p.user_id);
        break;
      case 'participant-update': {
        const target = this.participants.get(p.user_id);
        if (p.action === 'removed') {
          if (p.user_id === me) this.status = 'left';
          else this.participants.delete(p.user_id);
        } else if (target) {
          if (p.status === 'reconnecting' || p.status === 'connected') target.status = p.status;
          if (p.info) target.info = Object.assign({}, target.info || {}, p.info);
        } else {
          changed = false;
        }
        break;
      }
      case 'media-control': {
        if (p.request) { changed = false; break; }
        const ids = p.all ? p.user_ids || [] : [p.user_id];
        for (const id of ids) {
          const t = this.participants.get(id);
          if (t && (p.kind === 'audio' || p.kind === 'video')) t.media[p.kind] = !!p.enabled;
          if (id === me && this.self) {
            this.self.media = Object.assign(MEDIA_OFF(), this.self.media || {});
            this.self.media[p.kind] = !!p.enabled;
          }
        }
        break;
      }
      case 'screen-share-control': {
        const t = this.participants.get(p.user_id);
        if (t) t.media.screen = !!p.sharing;
        else changed = false;
        break;
      }
      case 'role-updated': {
        const t = this.participants.get(p.user_id);
        if (t) {
          t.role = p.role;
          if (p.permissions) t.permissions = p.permissions;
        }
        if (p.user_id === me && this.self) {
          this.self.role = p.role;
          if (p.permissions) this.self.permissions = p.permissions;
        }
        break;
      }
      case 'permission-updated': {
        const t = this.participants.get(p.user_id);
        if (t && p.permissions) t.permissions = p.permissions;
        if (p.user_id === me && this.self && p.permissions) this.self.permissions = p.permissions;
        break;
      }
      case 'room-settings-update':
        this.settings = Object.assign({}, this.settings, p.settings || p.changed || {});
        break;
      case 'hand-raise': {
        const t = this.participants.get(p.user_id);
        if (t) t.hand_raised = !!p.raised;
        else changed = false;
        break;
      }
      case 'hand-raise-queue':
        this.handQueue = (p.queue || []).slice();
        this._markHands();
        break;
      case 'waiting-room-join':
        if (p.user_id && p.user_id !== me) {
          if (p.status === 'left') this.waiting.delete(p.user_id);
          else this.waiting.set(p.user_id, Object.assign({}, this.waiting.get(p.user_id) || {}, p));
        } else {
          this.status = 'waiting';
          this.waitingPosition = p.position || null;
        }
        break;
      case 'waiting-room-admit':
        if (p.user_id && p.user_id !== me && this.status === 'joined') this.waiting.delete(p.user_id);
        else this.waitingPosition = null;
        break;
      case 'waiting-room-reject':
        if (p.user_id && p.user_id !== me && this.status === 'joined') this.waiting.delete(p.user_id);
        else this.status = 'left';
        break;
      case 'breakout-room-create':
        for (const b of p.breakout_rooms || []) {
          if (!this.breakoutRooms.some((x) => x.breakout_room_id === b.breakout_room_id)) {
            this.breakoutRooms.push(Object.assign({ assigned: [] }, b));
          }
        }
        break;
      case 'breakout-room-assign': {
        if (msg.to && msg.to === me) { changed = false; break; } // the move itself: an event for the app
        const b = this.breakoutRooms.find((x) => x.breakout_room_id === p.breakout_room_id);
        for (const x of this.breakoutRooms) x.assigned = (x.assigned || []).filter((u) => u !== p.user_id);
        if (b && p.user_id) b.assigned.push(p.user_id);
        break;
      }
      case 'breakout-room-close':
        this.breakoutRooms = this.breakoutRooms.filter((x) => x.breakout_room_id !== p.breakout_room_id);
        break;
      case 'recording-status':
        this.recording = p.state === 'stopped' ? null : p;
        break;
      case 'live-stream-start':
        this.liveStreams = this.liveStreams.filter((s) => s.stream_id !== p.stream_id).concat([p]);
        break;
      case 'live-stream-stop':
        this.liveStreams = this.liveStreams.filter((s) => s.stream_id !== p.stream_id);
        break;
      case 'quality-update':
      case 'virtual-background-update':
      case 'network-stats': {
        const t = this.participants.get(msg.from);
        const key = msg.type === 'quality-update' ? 'quality'
          : msg.type === 'network-stats' ? 'network_stats' : 'virtual_background';
        if (t) t[key] = p;
        else changed = false;
        break;
      }
      default:
        changed = false;
    }
    if (changed) this.emit('change', msg);
    return changed;
  }

  /** A plain snapshot (for logging, tests and frameworks that want immutable data). */
  toJSON() {
    return {
      roomId: this.roomId, status: this.status, self: this.self,
      participants: [...this.participants.values()], settings: this.settings,
      handQueue: this.handQueue, waiting: [...this.waiting.values()], breakoutRooms: this.breakoutRooms,
      parentRoom: this.parentRoom, recording: this.recording, liveStreams: this.liveStreams,
    };
  }
}
