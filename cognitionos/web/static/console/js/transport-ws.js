// graphql-transport-ws over one WebSocket: connection_init, subscribe / next / error /
// complete, ping / pong, and reconnecting with backoff. Every subscription is sent again
// after a reconnect with variables computed at that moment, so a caller that passes
// `after: lastPosition` resumes exactly where it stopped.

const PROTOCOL = "graphql-transport-ws";
const ACK_TIMEOUT_MS = 10_000;
const PING_EVERY_MS = 20_000;
const PONG_TIMEOUT_MS = 10_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class Socket {
  /**
   * @param {object} options
   * @param {string} options.url
   * @param {() => Promise<object>} options.connectionParams  the connection_init payload
   * @param {(state: string, detail?: object) => void} options.onState
   * @param {() => Promise<boolean>} options.onForbidden  4403: renew credentials; false stops
   */
  constructor({ url, connectionParams, onState, onForbidden }) {
    this.url = url;
    this.connectionParams = connectionParams;
    this.onState = onState;
    this.onForbidden = onForbidden;
    this.ops = new Map(); // local key -> operation
    this.ws = null;
    this.state = "idle";
    this.attempt = 0;
    this.seq = 0;
    this.timers = {};
    this.stopped = false;
    window.addEventListener("online", () => {
      if (this.state === "waiting") this.#open();
    });
  }

  /** Start an operation; returns a function that ends it. */
  subscribe({ query, variables, next, error, complete, restarted }) {
    const op = { key: ++this.seq, query, variables, next, error, complete, restarted };
    op.sent = false;
    op.wireId = null;
    this.ops.set(op.key, op);
    this.stopped = false;
    if (this.state === "connected") this.#send(op);
    else if (this.state === "idle" || this.state === "closed") this.#open();
    return () => this.#end(op, true);
  }

  /** Close and open again at once (new credentials); subscriptions resume. */
  reconnect() {
    if (this.stopped) return;
    this.attempt = 0;
    this.#drop(1000, "reconnecting with new credentials");
    this.#open();
  }

  /** Close for good (logout): every operation is forgotten. */
  close() {
    this.stopped = true;
    this.ops.clear();
    this.#drop(1000, "closed");
    this.#setState("idle");
  }

  #setState(state, detail) {
    this.state = state;
    this.onState?.(state, detail);
  }

  #open() {
    clearTimeout(this.timers.retry);
    if (this.ws || this.stopped) return;
    this.#setState("connecting");
    let ws;
    try {
      ws = new WebSocket(this.url, PROTOCOL);
    } catch (err) {
      this.#scheduleRetry(String(err));
      return;
    }
    this.ws = ws;
    ws.onopen = async () => {
      let payload;
      try {
        payload = await this.connectionParams();
      } catch (err) {
        this.#drop(1000, "no credentials");
        this.#setState("closed", { reason: err.message || String(err) });
        return;
      }
      if (this.ws !== ws) return;
      ws.send(JSON.stringify({ type: "connection_init", payload }));
      this.timers.ack = setTimeout(() => this.#lost(ws, "no connection_ack"), ACK_TIMEOUT_MS);
    };
    ws.onmessage = (event) => this.#receive(ws, event.data);
    ws.onclose = (event) => this.#closed(ws, event);
    ws.onerror = () => {}; // a close event always follows, with the code
  }

  #receive(ws, text) {
    if (this.ws !== ws) return;
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      this.#lost(ws, "unreadable message");
      return;
    }
    const op = message.id !== undefined ? this.#byWireId(message.id) : null;
    switch (message.type) {
      case "connection_ack":
        clearTimeout(this.timers.ack);
        this.attempt = 0;
        this.#setState("connected");
        this.#heartbeat(ws);
        for (const each of this.ops.values()) this.#send(each);
        break;
      case "ping":
        ws.send(JSON.stringify({ type: "pong" }));
        break;
      case "pong":
        clearTimeout(this.timers.pong);
        break;
      case "next":
        op?.next?.(message.payload);
        break;
      case "error":
        if (op) {
          this.ops.delete(op.key);
          op.error?.(message.payload);
        }
        break;
      case "complete":
        if (op) {
          this.ops.delete(op.key);
          op.complete?.();
        }
        break;
      default:
        break;
    }
  }

  #send(op) {
    const again = op.sent;
    op.sent = true;
    op.wireId = `${op.key}.${this.seq++}`;
    const variables = typeof op.variables === "function" ? op.variables() : op.variables;
    this.ws.send(
      JSON.stringify({ id: op.wireId, type: "subscribe", payload: { query: op.query, variables } }),
    );
    if (again) op.restarted?.();
  }

  #end(op, tell) {
    if (!this.ops.has(op.key)) return;
    this.ops.delete(op.key);
    if (tell && this.state === "connected" && op.wireId) {
      this.ws.send(JSON.stringify({ id: op.wireId, type: "complete" }));
    }
  }

  #byWireId(id) {
    for (const op of this.ops.values()) if (op.wireId === id) return op;
    return null;
  }

  #heartbeat(ws) {
    clearInterval(this.timers.ping);
    this.timers.ping = setInterval(() => {
      if (this.ws !== ws) return;
      ws.send(JSON.stringify({ type: "ping" }));
      clearTimeout(this.timers.pong);
      this.timers.pong = setTimeout(() => this.#lost(ws, "no pong"), PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  #clearTimers() {
    clearTimeout(this.timers.ack);
    clearTimeout(this.timers.pong);
    clearInterval(this.timers.ping);
  }

  /** Forget the current socket without waiting for its close handshake. */
  #drop(code, reason) {
    const ws = this.ws;
    this.ws = null;
    this.#clearTimers();
    for (const op of this.ops.values()) op.wireId = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
  }

  #lost(ws, reason) {
    if (this.ws !== ws) return;
    this.#drop(4499, reason);
    this.#scheduleRetry(reason);
  }

  async #closed(ws, event) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.#clearTimers();
    for (const op of this.ops.values()) op.wireId = null;
    if (this.stopped) return;
    if (event.code === 4403) {
      // Credentials refused: renew them (refresh token) before trying again.
      const renewed = await this.onForbidden?.();
      if (!renewed) {
        this.#setState("closed", { reason: event.reason || "credentials refused" });
        return;
      }
      this.attempt = 0;
    }
    if (!this.ops.size) {
      this.#setState("idle");
      return;
    }
    this.#scheduleRetry(event.reason || `closed (${event.code})`);
  }

  #scheduleRetry(reason) {
    if (this.stopped) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt += 1;
    this.#setState("waiting", { reason, retryAt: Date.now() + delay });
    clearTimeout(this.timers.retry);
    this.timers.retry = setTimeout(() => this.#open(), delay);
  }
}
