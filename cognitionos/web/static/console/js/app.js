// The shell: hash routes, the header (navigation, live indicator, inbox badge, logout),
// and the session's comings and goings. Each view mounts into <main> and returns its
// own cleanup (subscriptions, timers).

import { logout, session } from "./client.js";
import * as inbox from "./inbox.js";
import { go, href, parse } from "./router.js";
import { alertError, duration, h, replace, toast } from "./ui.js";
import agents from "./views/agents.js";
import execution from "./views/execution.js";
import executions from "./views/executions.js";
import login from "./views/login.js";
import memory from "./views/memory.js";
import notifications from "./views/notifications.js";
import usage from "./views/usage.js";
import workflow from "./views/workflow.js";
import workflows from "./views/workflows.js";

const ROUTES = [
  [/^\/login$/, login, { public: true }],
  [/^\/executions$/, executions, { nav: "executions" }],
  [/^\/executions\/([^/]+)$/, execution, { nav: "executions" }],
  [/^\/workflows$/, workflows, { nav: "workflows" }],
  [/^\/workflows\/([^/]+)$/, workflow, { nav: "workflows" }],
  [/^\/notifications$/, notifications, { nav: "notifications" }],
  [/^\/memory$/, memory, { nav: "memory" }],
  [/^\/agents$/, agents, { nav: "agents" }],
  [/^\/usage$/, usage, { nav: "usage" }],
];

const main = document.querySelector("main");
let cleanup = null;

function route() {
  const { path, query, raw } = parse();
  for (const [pattern, view, opts] of ROUTES) {
    const match = path.match(pattern);
    if (!match) continue;
    if (!opts.public && !session.signedIn) {
      go("/login", { next: raw });
      return;
    }
    show(view, match.slice(1).map(decodeURIComponent), query, opts);
    return;
  }
  go("/executions");
}

function show(view, params, query, opts) {
  cleanup?.();
  cleanup = null;
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === opts.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  header();
  replace(main);
  document.title = `${view.title || "Console"} · CognitionOS`;
  try {
    cleanup = view.mount(main, { params, query, go, href }) || null;
  } catch (err) {
    main.append(h("p", {}, "This page failed to open."));
    alertError(err, "Opening the page");
  }
  // Screen readers and keyboards start on the new page, unless the view chose a field.
  if (!main.contains(document.activeElement)) main.focus({ preventScroll: true });
}

function header() {
  const top = document.querySelector(".top");
  top.hidden = !session.signedIn;
  const user = session.user;
  document.querySelector(".who").textContent = user ? `${user.email} (${user.role.toLowerCase()})` : "";
}

function showConnection({ state, reason, retryAt }) {
  const el = document.querySelector("[data-testid=connection]");
  el.dataset.state = state;
  const text = el.querySelector(".word");
  clearInterval(showConnection.timer);
  if (state === "connected") text.textContent = "live";
  else if (state === "connecting") text.textContent = "connecting…";
  else if (state === "idle") text.textContent = "not connected";
  else if (state === "closed") text.textContent = `disconnected: ${reason || "refused"}`;
  else if (state === "waiting") {
    const tick = () => {
      text.textContent = `connection lost, retrying in ${duration(Math.max(0, retryAt - Date.now()))}`;
    };
    tick();
    showConnection.timer = setInterval(tick, 500);
  }
  el.title = reason ? `last problem: ${reason}` : "";
}

session.on("connection", showConnection);
session.on("signedin", () => {
  inbox.start();
  header();
});
session.on("signedout", ({ reason }) => {
  inbox.stopFeed();
  header();
  if (reason === "logout") {
    go("/login");
    return;
  }
  const { raw, path } = parse();
  if (path !== "/login") {
    go("/login", { next: raw, reason: reason === "expired" ? "expired" : "elsewhere" });
  }
});
session.on("error", (err) => alertError(err, "Refreshing the session failed"));

document.querySelector("[data-testid=logout]").addEventListener("click", async () => {
  try {
    await logout();
    toast("Logged out.");
  } catch (err) {
    alertError(err, "The server did not confirm the logout (you are logged out here)");
  }
});
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (event) => alertError(event.reason, "Unexpected error"));

if (session.signedIn) inbox.start();
route();
