// A small event emitter that works the same in browsers and in Node.

/**
 * @template {string} [E=string]
 */
export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
  }

  /**
   * Adds a listener; returns a function that removes it.
   * @param {string} event
   * @param {(...args: any[]) => void} fn
   * @returns {() => void}
   */
  on(event, fn) {
    let set = this._handlers.get(event);
    if (!set) this._handlers.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /**
   * Adds a listener that runs once.
   * @param {string} event
   * @param {(...args: any[]) => void} fn
   * @returns {() => void}
   */
  once(event, fn) {
    const off = this.on(event, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /**
   * @param {string} event
   * @param {(...args: any[]) => void} fn
   */
  off(event, fn) {
    const set = this._handlers.get(event);
    if (set) set.delete(fn);
  }

  /**
   * Calls every listener of event; a throwing listener does not stop the others.
   * @param {string} event
   * @param {...any} args
   * @returns {boolean} whether anyone listened
   */
  emit(event, ...args) {
    const set = this._handlers.get(event);
    if (!set || set.size === 0) return false;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        // A broken listener must not break the SDK's own state machine.
        if (typeof console !== 'undefined') console.error(`huddle: listener for "${event}" threw`, e);
      }
    }
    return true;
  }

  /**
   * Resolves with the arguments of the next emit of event.
   * @param {string} event
   * @returns {Promise<any>}
   */
  next(event) {
    return new Promise((resolve) => this.once(event, (...args) => resolve(args.length > 1 ? args : args[0])));
  }
}
