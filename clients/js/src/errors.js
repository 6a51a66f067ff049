// Errors as typed objects carrying the server's taxonomy code, message and
// recovery hint (docs/protocol.md "Errors"), plus a few codes of the SDK's own
// for failures the server never saw.

/** Codes the SDK itself produces (never sent by the server). */
export const CLIENT_ERRORS = Object.freeze({
  NETWORK_ERROR: {
    message: 'The server could not be reached.',
    recovery: 'Check the network connection and the server address, then try again.',
  },
  CONNECTION_FAILED: {
    message: 'The WebSocket connection was refused and the server did not say why.',
    recovery: 'Try again; if it keeps failing, check the token and the room id.',
  },
  RECONNECT_FAILED: {
    message: 'The connection was lost and could not be re-established.',
    recovery: 'Join the room again.',
  },
  TIMEOUT: {
    message: 'The server did not answer in time.',
    recovery: 'Try again.',
  },
  MEDIA_ERROR: {
    message: 'The camera, microphone or screen could not be used.',
    recovery: 'Allow access to the device in the browser, or check that no other application holds it.',
  },
  NOT_CONNECTED: {
    message: 'The client is not connected to a room.',
    recovery: 'Call connect() first.',
  },
});

/**
 * An error from huddle: a taxonomy code, a message for people and a hint on
 * what to do next.
 */
export class HuddleError extends Error {
  /**
   * @param {string} code SCREAMING_SNAKE_CASE taxonomy code
   * @param {string} [message]
   * @param {{recovery?: string, status?: number, detail?: string, ref?: string,
   *          retryAfterMs?: number, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    const known = CLIENT_ERRORS[/** @type {keyof typeof CLIENT_ERRORS} */ (code)];
    super(message || (known && known.message) || code);
    this.name = 'HuddleError';
    /** @type {string} */
    this.code = code;
    /** @type {string} */
    this.recovery = extra.recovery || (known && known.recovery) || '';
    /** @type {number|undefined} HTTP status, for REST and upgrade refusals */
    this.status = extra.status;
    /** @type {string|undefined} */
    this.detail = extra.detail;
    /** @type {string|undefined} the id of the client message that caused it */
    this.ref = extra.ref;
    /** @type {number|undefined} */
    this.retryAfterMs = extra.retryAfterMs;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }

  /**
   * Builds an error from a server error object ({code, message, recovery, ...}).
   * @param {any} e
   * @param {number} [status]
   * @returns {HuddleError}
   */
  static fromServer(e, status) {
    if (!e || typeof e !== 'object' || typeof e.code !== 'string') {
      return new HuddleError('INTERNAL_ERROR', 'The server answered with an unexpected error.', { status });
    }
    return new HuddleError(e.code, e.message, {
      recovery: e.recovery, status, detail: e.detail, ref: e.ref, retryAfterMs: e.retry_after_ms,
    });
  }
}

/** Close codes after which the SDK does not reconnect (docs/protocol.md "Close codes"). */
export const FINAL_CLOSE_CODES = Object.freeze({
  1000: 'LEFT',
  1002: 'PROTOCOL_ERROR',
  1007: 'PROTOCOL_ERROR',
  1009: 'MESSAGE_TOO_LARGE',
  4001: 'SESSION_REPLACED',
  4003: 'REMOVED',
  4004: 'WAITING_ROOM_REJECTED',
  4005: 'BREAKOUT_CLOSED',
  4006: 'ROOM_CLOSED',
  4007: 'ERASED',
});
