// The one client of the GraphQL API. It owns the credentials (kept in localStorage so
// every tab shares one login), refreshes the access token before it expires (one tab at
// a time, under a Web Lock: refresh tokens rotate and a reused one revokes the login),
// sends queries over HTTP and subscriptions over one graphql-transport-ws socket, which
// it reconnects whenever the credentials change.

import { LOGIN, LOGOUT, REFRESH } from "./documents.js";
import { Socket } from "./transport-ws.js";

const STORE = "cognitionos.session";
const ENDPOINT = "/graphql";
const ACCEPT = "application/graphql-response+json, application/json";

/** A refused request: every GraphQL error of the answer, with its code and request id. */
export class ApiError extends Error {
  constructor(errors, { status = 0 } = {}) {
    const list = errors.length ? errors : [{ message: "Request failed" }];
    super(list.map((e) => e.message).join("; "));
    this.errors = list;
    this.status = status;
    const ext = list[0].extensions || {};
    this.code = ext.code || (status ? `HTTP ${status}` : "NETWORK");
    this.field = ext.field || null;
    this.requestId = ext.requestId || null;
    this.retryAfter = ext.retryAfter || null;
  }
}

const events = new EventTarget();
let current = read();
let refreshing = null;
let refreshTimer = null;

function read() {
  try {
    const value = JSON.parse(localStorage.getItem(STORE) || "null");
    return value && value.accessToken ? value : null;
  } catch {
    return null;
  }
}

function store(payload) {
  current = {
    accessToken: payload.accessToken,
    refreshToken: payload.refreshToken,
    expiresAt: Date.now() + payload.expiresIn * 1000,
    ttl: payload.expiresIn,
    user: payload.user || current?.user || null,
  };
  localStorage.setItem(STORE, JSON.stringify(current));
  schedule();
}

function forget(reason) {
  const had = current !== null;
  current = null;
  clearTimeout(refreshTimer);
  localStorage.removeItem(STORE);
  socket.close();
  if (had) emit("signedout", { reason });
}

function emit(type, detail) {
  events.dispatchEvent(new CustomEvent(type, { detail }));
}

/** Refresh a fifth of the lifetime (at most a minute) before the access token expires. */
function schedule() {
  clearTimeout(refreshTimer);
  if (!current) return;
  const lead = Math.max(1000, Math.min(60_000, current.ttl * 200));
  const wait = Math.max(0, current.expiresAt - lead - Date.now());
  refreshTimer = setTimeout(refreshInBackground, wait);
}

/** A refresh nobody waits for: a refused one signs out (and says so), others are shown. */
function refreshInBackground() {
  refresh().catch((err) => {
    if (err.code !== "UNAUTHENTICATED") emit("error", err);
  });
}

/** Too close to expiry to send: a tenth of the lifetime, at most 5 s. */
function stale() {
  return current.expiresAt - Date.now() < Math.min(5000, current.ttl * 100);
}

function withLock(fn) {
  if (navigator.locks?.request) return navigator.locks.request(STORE, fn);
  return fn();
}

/** Get a new access token (single flight; adopts one another tab just got). */
export function refresh() {
  if (!refreshing) {
    const seen = current?.accessToken;
    refreshing = withLock(async () => {
      const stored = read();
      if (!stored) {
        forget("expired");
        throw new ApiError([{ message: "Your session has ended. Log in again." }]);
      }
      if (stored.accessToken !== seen && stored.expiresAt - Date.now() > Math.min(5000, stored.ttl * 100)) {
        current = stored; // another tab refreshed while we waited for the lock
        schedule();
      } else {
        let data;
        try {
          data = await post(REFRESH, { refreshToken: stored.refreshToken }, null);
        } catch (err) {
          if (err.code === "UNAUTHENTICATED") forget("expired");
          else refreshTimer = setTimeout(refreshInBackground, Math.min(10_000, stored.ttl * 200));
          throw err;
        }
        store(data.refreshToken);
      }
      emit("refreshed", current);
      socket.reconnect();
      return true;
    }).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function post(query, variables, token) {
  const headers = { "content-type": "application/json", accept: ACCEPT };
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers,
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new ApiError([{ message: `The server cannot be reached (${err.message})` }]);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError([{ message: `The server answered ${response.status} without JSON` }], {
      status: response.status,
    });
  }
  if (body.errors?.length) throw new ApiError(body.errors, { status: response.status });
  if (!response.ok) {
    throw new ApiError([{ message: `HTTP ${response.status}` }], { status: response.status });
  }
  return body.data;
}

/** Run a query or mutation; a refused token is refreshed once and the request sent again. */
export async function gql(query, variables = {}) {
  if (!current) throw new ApiError([{ message: "Log in first.", extensions: { code: "UNAUTHENTICATED" } }]);
  if (stale()) await refresh();
  try {
    return await post(query, variables, current.accessToken);
  } catch (err) {
    if (err.code !== "UNAUTHENTICATED" || !current) throw err;
    await refresh();
    return post(query, variables, current.accessToken);
  }
}

export async function login(email, password) {
  const data = await post(LOGIN, { email, password }, null);
  store(data.login);
  emit("signedin", current);
  return current.user;
}

export async function logout() {
  const token = current?.refreshToken;
  let failure = null;
  if (token) {
    try {
      await post(LOGOUT, { refreshToken: token }, current.accessToken);
    } catch (err) {
      failure = err; // signed out here all the same; the caller shows why the server refused
    }
  }
  forget("logout");
  if (failure) throw failure;
}

export const session = {
  get signedIn() {
    return current !== null;
  },
  get user() {
    return current?.user || null;
  },
  on(type, fn) {
    events.addEventListener(type, (e) => fn(e.detail));
  },
};

// ---- subscriptions -------------------------------------------------------------------

const socket = new Socket({
  url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${ENDPOINT}`,
  async connectionParams() {
    if (!current) throw new Error("not logged in");
    if (stale()) await refresh();
    return { authorization: `Bearer ${current.accessToken}` };
  },
  onState: (state, detail) => emit("connection", { state, ...detail }),
  async onForbidden() {
    try {
      await refresh();
      return true;
    } catch {
      return false;
    }
  },
});

/**
 * Subscribe. `variables` may be a function, called at every (re)subscribe.
 * Handlers: data(value), error(ApiError), complete(), restarted() after a reconnect.
 * Returns a function that unsubscribes.
 */
export function subscribe(query, variables, handlers) {
  let stop = null;
  let retried = false;
  const start = () => {
    stop = socket.subscribe({
      query,
      variables,
      next(payload) {
        if (payload?.errors?.length) handlers.error?.(new ApiError(payload.errors));
        if (payload?.data) handlers.data?.(payload.data);
      },
      error(errors) {
        const err = new ApiError(Array.isArray(errors) ? errors : [errors]);
        if (err.code === "UNAUTHENTICATED" && !retried && current) {
          retried = true; // the socket's token went stale: renew, then ask again
          refresh().then(start, (e) => handlers.error?.(e));
          return;
        }
        handlers.error?.(err);
      },
      complete: () => handlers.complete?.(),
      restarted: () => handlers.restarted?.(),
    });
  };
  start();
  return () => stop?.();
}

export const connection = {
  get state() {
    return socket.state;
  },
};

window.addEventListener("storage", (event) => {
  if (event.key !== STORE) return;
  const stored = read();
  if (!stored) {
    if (current) forget("signed out in another tab");
    return;
  }
  const changed = stored.accessToken !== current?.accessToken;
  const wasSignedIn = current !== null;
  current = stored;
  schedule();
  if (!wasSignedIn) emit("signedin", current);
  else if (changed) socket.reconnect();
});

if (current) {
  if (stale()) {
    // The page was closed longer than the access token lives: renew before anything else.
    refreshInBackground();
  } else {
    schedule();
  }
}
