// Agents with their load and status, live (agentStatusChanged).

import { gql, subscribe } from "../client.js";
import { AGENTS } from "../documents.js";
import { stateBadge, word } from "../states.js";
import { AGENT_STATUS } from "../subscriptions.js";
import { announce, empty, errorBox, h, replace } from "../ui.js";

export default {
  title: "Agents",
  mount(root) {
    const agents = new Map();
    const rows = new Map();
    let stopped = false;
    const problems = h("div");
    const body = h("tbody");
    const list = h("div");
    root.append(h("div", { class: "page-head" }, h("div", { class: "grow" }, h("h1", {}, "Agents"),
      h("p", { class: "sub" }, "Load and status change live as agents take and finish work."))), problems, list);

    function row(a) {
      const bar = h("span", { class: "load", role: "img", "aria-label": `${a.currentLoad} of ${a.maxConcurrency} busy` }, h("span"));
      bar.firstChild.style.width = `${Math.min(100, (a.currentLoad / Math.max(1, a.maxConcurrency)) * 100)}%`;
      return h("tr", { "data-testid": "agent-row", "data-agent-id": a.id, "data-status": a.status },
        h("td", {}, h("b", {}, a.name), a.description ? h("div", { class: "sub" }, a.description) : null),
        h("td", {}, a.role.toLowerCase()),
        h("td", {}, stateBadge(a.status), a.lastError && a.status === "ERROR" ? h("div", { class: "sub" }, a.lastError) : null),
        h("td", {}, bar, `${a.currentLoad} / ${a.maxConcurrency}`),
        h("td", {}, h("div", { class: "chips" }, a.capabilities.map((c) => h("span", { class: "chip" }, c)))),
        h("td", { class: "mono" }, [a.provider, a.model].filter(Boolean).join(":") || "default"));
    }

    function put(a) {
      agents.set(a.id, a);
      const tr = row(a);
      const old = rows.get(a.id);
      if (old) old.replaceWith(tr);
      else body.append(tr);
      rows.set(a.id, tr);
    }

    function render() {
      if (!agents.size) {
        replace(list, empty("No agents.", h("p", {}, "The default four are stored on the first start; an admin adds more with ",
          h("code", {}, "registerAgent"), ".")));
        return;
      }
      replace(list, h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Agent", "Role", "Status", "Load", "Capabilities", "Model"].map((t) => h("th", { scope: "col" }, t)))),
        body)));
    }

    async function load() {
      try {
        const data = await gql(AGENTS);
        if (stopped) return;
        problems.replaceChildren();
        for (const a of data.agents) put(a);
        render();
      } catch (err) {
        problems.replaceChildren(errorBox(err, { title: "Listing agents failed" }));
      }
    }

    const stop = subscribe(AGENT_STATUS, {}, {
      data({ agentStatusChanged: a }) {
        const before = agents.get(a.id)?.status;
        put({ ...agents.get(a.id), ...a });
        if (!list.contains(body)) render();
        if (before && before !== a.status) announce(`Agent ${a.name} is ${word(a.status)}`);
      },
      error: (err) => problems.replaceChildren(errorBox(err, { title: "Live agent status stopped" })),
      restarted: load,
    });
    load();
    return () => {
      stopped = true;
      stop();
    };
  },
};
