// @ts-check
/**
 * vitrine-desk.js: the consult desk's socket (/v1/consult/shopper and /v1/consult/agent), shared by
 * the widget and the agent console. The room's signaling (/v1/rtc) is in vitrine-client.js.
 */

/** Ping every 10 s, well inside the server's idle timeout; no frame at all for 35 s means a dead socket. */
const PING_INTERVAL_MS = 10_000;
const DESK_STALE_AFTER_MS = 35_000;
const DESK_BACKOFF_MIN_MS = 500;
const DESK_BACKOFF_MAX_MS = 15_000;
const DESK_MAX_QUEUED = 32;
/** The server refused this page (its origin): retrying cannot help. */
const CLOSE_POLICY = 1008;

/** ws(s)://HOST/v1/consult/<side> for a page or server URL; side is "shopper" or "agent". */
export function deskUrl(base, side) {
  const url = new URL(`/v1/consult/${side}`, base || window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  url.search = "";
  return url.toString();
}

/**
 * The consult desk's socket (vitrine/consult/protocol.py), shared by the widget and the agent
 * console. It keeps one socket alive for as long as the page wants it:
 *
 *  - every (re)connection first sends `hello()`: the console's `login`, the widget's `enter`
 *    or, once it holds a ticket, `resume`;
 *  - `ping` every 10 s, and a socket silent for 35 s is treated as dead (a half-open TCP
 *    connection after a network change looks open for minutes);
 *  - an unexpected close reconnects with jittered exponential backoff (0.5 s to 15 s), at once
 *    when the browser says it is back online; a policy close (1008) is final (`refused`).
 *
 *   const desk = new DeskSocket(deskUrl(base, "agent"), { hello: () => ({ type: "login", token }) });
 *   desk.addEventListener("message", (e) => handle(e.detail));
 *   desk.open();
 *
 * Events: `message` (a parsed server message; pongs are swallowed), `state`
 * { state: "connecting" | "open" | "reconnecting" | "closed", attempt, delayMs, code },
 * `refused` { code }. The hello may carry a credential: nothing here logs a message.
 */
export class DeskSocket extends EventTarget {
  /**
   * @param {string} url  from deskUrl()
   * @param {object} options
   * @param {() => object} options.hello  the first message of every connection
   * @param {boolean} [options.queue=false]  keep messages sent while disconnected (up to 32) and
   *        send them after the next hello, instead of dropping them
   */
  constructor(url, { hello, queue = false }) {
    super();
    this.url = url;
    this.hello = hello;
    this.state = "closed";
    this.attempt = 0;
    this._queueing = queue;
    this._queue = [];
    this._ws = null;
    this._wanted = false;
    this._retryTimer = null;
    this._pingTimer = null;
    this._lastRx = 0;
    this._onOnline = () => {
      if (this._wanted && !this._ws) this._connect();
    };
  }

  get isOpen() {
    return this._ws !== null && this._ws.readyState === WebSocket.OPEN && this.state === "open";
  }

  /** Connect, and stay connected until close(). A no-op while already wanted. */
  open() {
    if (this._wanted) return;
    this._wanted = true;
    this.attempt = 0;
    window.addEventListener("online", this._onOnline);
    this._connect();
  }

  /** True if sent now; false if not connected (then kept for later when `queue` is on). */
  send(message) {
    if (this.isOpen) {
      this._ws.send(JSON.stringify(message));
      return true;
    }
    if (this._queueing && this._queue.length < DESK_MAX_QUEUED) this._queue.push(message);
    return false;
  }

  /** Close for good: no reconnect, anything queued is dropped. */
  close() {
    this._wanted = false;
    this._queue = [];
    window.removeEventListener("online", this._onOnline);
    clearTimeout(this._retryTimer);
    this._dropSocket(1000);
    this._setState("closed");
  }

  _connect() {
    clearTimeout(this._retryTimer);
    this._dropSocket(1000);
    if (!this._wanted) return;
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this._ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this._ws) return;
      this._lastRx = Date.now();
      ws.send(JSON.stringify(this.hello()));
      for (const message of this._queue.splice(0)) ws.send(JSON.stringify(message));
      this._pingTimer = setInterval(() => this._ping(ws), PING_INTERVAL_MS);
      this._setState("open");
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this._ws) return;
      this._lastRx = Date.now();
      this.attempt = 0; // the server answers: the next drop backs off from the start again
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return; // not JSON: ignore the frame, keep the socket
      }
      if (message && typeof message.type === "string" && message.type !== "pong") {
        this.dispatchEvent(new CustomEvent("message", { detail: message }));
      }
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this._ws) return;
      this._dropSocket(1000);
      if (!this._wanted) return;
      if (event.code === CLOSE_POLICY) {
        this.close();
        this.dispatchEvent(new CustomEvent("refused", { detail: { code: event.code } }));
        return;
      }
      this._scheduleRetry(event.code);
    });
    // "error" is always followed by "close": the retry is scheduled there.
  }

  _ping(ws) {
    if (ws !== this._ws || ws.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this._lastRx > DESK_STALE_AFTER_MS) {
      ws.close(4000, "stale"); // its close event schedules the reconnect
      return;
    }
    ws.send(JSON.stringify({ type: "ping", ts: Date.now() }));
  }

  _scheduleRetry(code) {
    const ceiling = Math.min(DESK_BACKOFF_MAX_MS, DESK_BACKOFF_MIN_MS * 2 ** this.attempt);
    const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.attempt += 1;
    this._setState("reconnecting", { delayMs, code });
    this._retryTimer = setTimeout(() => this._connect(), delayMs);
  }

  _dropSocket(code) {
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    const ws = this._ws;
    this._ws = null;
    if (ws && ws.readyState !== WebSocket.CLOSED && ws.readyState !== WebSocket.CLOSING) {
      try {
        ws.close(code);
      } catch {
        /* already closing */
      }
    }
  }

  _setState(state, extra = {}) {
    const changed = state !== this.state || state === "reconnecting";
    this.state = state;
    if (changed) this.dispatchEvent(new CustomEvent("state", { detail: { state, attempt: this.attempt, ...extra } }));
  }
}
