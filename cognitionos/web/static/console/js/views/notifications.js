// The in-app inbox: newest first, new ones arriving live, mark read one by one or all.

import { gql } from "../client.js";
import { MARK_ALL_READ, MARK_READ, NOTIFICATIONS } from "../documents.js";
import * as inbox from "../inbox.js";
import { setQuery } from "../router.js";
import { alertError, empty, errorBox, h, relTime, replace, short, toast } from "../ui.js";

const PAGE = 30;

export default {
  title: "Inbox",
  mount(root, { query, href }) {
    let unreadOnly = query.unread === "1";
    let cursor = null;
    const items = new Map(); // id -> {node, el}
    let stopped = false;

    const only = h("input", { id: "inbox-unread", type: "checkbox", checked: unreadOnly });
    const markAll = h("button", { type: "button", class: "quiet", "data-testid": "mark-all-read" }, "Mark all read");
    const problems = h("div");
    const list = h("div", { class: "panel", role: "list", "aria-label": "Notifications", "aria-live": "polite" });
    const more = h("button", { type: "button", class: "quiet more", hidden: true }, "Show older");
    root.append(h("div", { class: "page-head" },
      h("div", { class: "grow" }, h("h1", {}, "Inbox"),
        h("p", { class: "sub" }, "Your in-app notifications, live.")),
      h("div", { class: "filters" },
        h("div", { class: "field check" }, only, h("label", { for: "inbox-unread" }, "Unread only")), markAll)),
    problems, list, more);

    function item(node) {
      const unread = !node.readAt;
      const mark = unread
        ? h("button", { type: "button", class: "quiet", "data-testid": "mark-read",
          "aria-label": `Mark “${node.subject || "notification"}” read` }, "Mark read")
        : h("span", { class: "sub" }, "read");
      if (unread) mark.addEventListener("click", () => markRead([node.id], mark));
      const executionId = node.data?.executionId;
      return h("article", { class: `notification${unread ? " unread" : ""}`, role: "listitem",
        "data-testid": "notification-item", "data-notification-id": node.id, "data-read": String(!unread) },
      h("div", { class: "body" },
        h("strong", {}, node.subject || "(no subject)"), " ",
        node.priority !== "NORMAL" ? h("span", { class: `prio-${node.priority}` }, node.priority.toLowerCase()) : null,
        h("p", {}, node.body),
        h("div", { class: "sub" }, relTime(node.createdAt),
          executionId ? [" · ", h("a", { href: href(`/executions/${executionId}`) }, `execution ${short(executionId)}`)] : null)),
      mark);
    }

    function put(node, { top = false } = {}) {
      const known = items.get(node.id);
      const el = item(node);
      if (known) known.el.replaceWith(el);
      else if (top) list.prepend(el);
      else list.append(el);
      items.set(node.id, { node, el });
    }

    function renderEmpty() {
      if (items.size) {
        list.querySelector(".empty")?.remove();
        return;
      }
      replace(list, empty(unreadOnly ? "Nothing unread." : "No notifications yet.",
        h("p", {}, "Runs that finish, fail or wait for your approval notify you here.")));
    }

    async function load(older) {
      try {
        const data = await gql(NOTIFICATIONS, { first: PAGE, after: older ? cursor : null, unreadOnly });
        if (stopped) return;
        problems.replaceChildren();
        if (!older) { items.clear(); list.replaceChildren(); }
        for (const { node } of data.notifications.edges) put(node);
        cursor = data.notifications.pageInfo.endCursor;
        more.hidden = !data.notifications.pageInfo.hasNextPage;
        inbox.setUnread(data.unreadCount);
        renderEmpty();
      } catch (err) {
        problems.replaceChildren(errorBox(err, { title: "Reading the inbox failed" }));
      }
    }

    async function markRead(ids, button) {
      button.disabled = true;
      try {
        const n = await gql(MARK_READ, { ids });
        for (const id of ids) {
          const known = items.get(id);
          if (known) put({ ...known.node, readAt: new Date().toISOString(), status: "READ" });
        }
        toast(n === 1 ? "Marked read." : `${n} marked read.`);
        await inbox.changed();
      } catch (err) {
        button.disabled = false;
        alertError(err, "Marking read failed");
      }
    }

    markAll.addEventListener("click", async () => {
      markAll.disabled = true;
      try {
        const n = await gql(MARK_ALL_READ);
        toast(`${n} marked read.`);
        inbox.changed();
        await load(false);
      } catch (err) {
        alertError(err, "Marking all read failed");
      } finally {
        markAll.disabled = false;
      }
    });
    only.addEventListener("change", () => {
      unreadOnly = only.checked;
      setQuery({ unread: unreadOnly ? "1" : "" });
      load(false);
    });
    more.addEventListener("click", () => load(true));
    const off = inbox.onNotification((n) => {
      put(n, { top: true });
      renderEmpty();
    });
    load(false);
    return () => {
      stopped = true;
      off();
    };
  },
};
