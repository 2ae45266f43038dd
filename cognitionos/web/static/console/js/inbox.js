// The unread badge, live: unreadCount, then notificationReceived. The inbox view listens
// here for new notifications. After a reconnect the count is read again (a feed only
// delivers what happens while it is subscribed).

import { gql, subscribe } from "./client.js";
import { UNREAD } from "./documents.js";
import { NOTIFICATION_RECEIVED } from "./subscriptions.js";
import { alertError, announce } from "./ui.js";

const listeners = new Set();
const seen = new Set();
let unread = 0;
let received = 0;
let stop = null;

function badge() {
  return document.querySelector("[data-testid=notification-badge]");
}

function render() {
  const el = badge();
  el.textContent = String(unread);
  el.dataset.count = String(unread);
  el.dataset.received = String(received);
  el.classList.toggle("zero", unread === 0);
  el.setAttribute("aria-label", `${unread} unread`);
}

export async function recount() {
  try {
    unread = (await gql(UNREAD)).unreadCount;
    render();
  } catch (err) {
    alertError(err, "Reading the unread count failed");
  }
}

// Tabs share one inbox: what one marks read, the others count again.
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("cognitionos.inbox") : null;
if (tabs) tabs.onmessage = () => { if (stop) recount(); };

/** Call after marking read: every tab's badge follows. */
export function changed() {
  tabs?.postMessage("recount");
  return recount();
}

export function setUnread(value) {
  unread = value;
  render();
}

export function onNotification(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function start() {
  if (stop) return;
  seen.clear();
  received = 0;
  stop = subscribe(NOTIFICATION_RECEIVED, {}, {
    data({ notificationReceived: n }) {
      received += 1;
      if (seen.has(n.id)) return render(); // counted once, however often it arrives
      seen.add(n.id);
      if (!n.readAt) unread += 1;
      render();
      announce(`New notification: ${n.subject || n.body}`);
      for (const fn of listeners) fn(n);
    },
    error: (err) => alertError(err, "The live inbox stopped"),
    restarted: recount,
  });
  recount();
}

export function stopFeed() {
  stop?.();
  stop = null;
  unread = 0;
  received = 0;
  render();
}
