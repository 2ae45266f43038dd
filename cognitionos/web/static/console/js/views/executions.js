// Executions, live. Statuses change through executionUpdated (one subscription per
// visible unfinished run); new runs appear because the first page is read again every
// few seconds (no subscription announces new executions).

import { gql, subscribe } from "../client.js";
import { EXECUTIONS, WORKFLOW_KEYS } from "../documents.js";
import { setQuery } from "../router.js";
import { EXECUTION_STATES, TERMINAL_EXECUTION, stateBadge, word } from "../states.js";
import { EXECUTION_STATUS } from "../subscriptions.js";
import {
  announce, count, elapsed, empty, errorBox, h, keepFocus, money, relTime, replace, short,
} from "../ui.js";

const PAGE = 25;
const POLL_MS = 4000;

function progress(steps) {
  const total = steps.length || 1;
  const by = (pred) => steps.filter(pred).length;
  const ok = by((s) => s.status === "SUCCEEDED" || s.status === "SKIPPED");
  const bad = by((s) => s.status === "FAILED" || s.status === "CANCELLED");
  const live = by((s) => ["RUNNING", "RETRYING", "WAITING_APPROVAL", "QUEUED"].includes(s.status));
  const bar = (cls, n) => (n ? h("span", { class: cls, "data-w": n / total }) : null);
  const el = h("span", { class: "progress", role: "img",
    "aria-label": `${ok} of ${steps.length} steps done` },
  bar("ok", ok), bar("bad", bad), bar("live", live));
  for (const span of el.children) span.style.width = `${Number(span.dataset.w) * 100}%`;
  return h("span", {}, el, h("span", { class: "sub" }, ` ${ok}/${steps.length}`));
}

export default {
  title: "Executions",
  mount(root, { query, href }) {
    const filter = { status: query.status || "", workflowKey: query.workflow || "" };
    const rows = new Map(); // id -> {node, tr, stop}
    let order = [];
    let cursor = null;
    let hasMore = false;
    let stopped = false;

    const statusSelect = h("select", { id: "filter-status", "data-testid": "filter-status" },
      h("option", { value: "" }, "any status"),
      Object.entries(EXECUTION_STATES).map(([v, w]) => h("option", { value: v }, w)));
    statusSelect.value = filter.status;
    const workflowSelect = h("select", { id: "filter-workflow", "data-testid": "filter-workflow" },
      h("option", { value: "" }, "any workflow"));
    const problems = h("div");
    const body = h("tbody");
    const table = h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "sr-only" }, "Executions, newest first"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Workflow"),
        h("th", { scope: "col" }, "Execution"), h("th", { scope: "col" }, "Steps"),
        h("th", { scope: "col" }, "Started"), h("th", { scope: "col" }, "Duration"),
        h("th", { scope: "col", class: "num hide-narrow" }, "Tokens"),
        h("th", { scope: "col", class: "num hide-narrow" }, "Cost"))),
      body));
    const more = h("button", { type: "button", class: "quiet more", hidden: true }, "Show older runs");
    const list = h("div");
    root.append(
      h("div", { class: "page-head" },
        h("div", { class: "grow" }, h("h1", {}, "Executions"),
          h("p", { class: "sub" }, "Live: statuses change as they happen; new runs appear on their own.")),
        h("div", { class: "filters" },
          h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
          h("div", { class: "field" }, h("label", { for: "filter-workflow" }, "Workflow"), workflowSelect))),
      problems, list, more);

    gql(WORKFLOW_KEYS).then((data) => {
      const keys = [...new Set(data.workflows.edges.map((e) => e.node.key))].sort();
      if (filter.workflowKey && !keys.includes(filter.workflowKey)) keys.unshift(filter.workflowKey);
      for (const key of keys) workflowSelect.append(h("option", { value: key }, key));
      workflowSelect.value = filter.workflowKey;
    }, (err) => problems.append(errorBox(err, { title: "Listing workflows failed" })));

    const onFilter = () => {
      filter.status = statusSelect.value;
      filter.workflowKey = workflowSelect.value;
      setQuery({ status: filter.status, workflow: filter.workflowKey });
      for (const row of rows.values()) row.stop?.();
      rows.clear();
      order = [];
      body.replaceChildren();
      load(false);
    };
    statusSelect.addEventListener("change", onFilter);
    workflowSelect.addEventListener("change", onFilter);
    more.addEventListener("click", () => load(true));

    function variables(after) {
      const f = {};
      if (filter.status) f.status = filter.status;
      if (filter.workflowKey) f.workflowKey = filter.workflowKey;
      return { first: PAGE, after, filter: f };
    }

    function render() {
      if (!order.length) {
        const filtered = filter.status || filter.workflowKey;
        replace(list, filtered
          ? empty("No executions match these filters.", h("p", {}, "Change the status or workflow above."))
          : empty("No executions yet.", h("p", {}, "Start one from ",
            h("a", { href: href("/workflows") }, "a workflow"), ": it will show up here live.")));
      } else if (!list.contains(table)) replace(list, table);
      more.hidden = !hasMore;
    }

    function rowFor(node) {
      const tr = h("tr", { "data-testid": "execution-row" });
      const row = { node, tr, stop: null, seen: JSON.stringify(node),
        steps: new Map(node.steps.map((s) => [s.id, s.status])) };
      fill(row);
      return row;
    }

    function fill(row) {
      const { node, tr } = row;
      tr.dataset.executionId = node.id;
      tr.dataset.status = node.status;
      const steps = [...row.steps.values()].map((status) => ({ status }));
      replace(tr,
        h("td", {}, stateBadge(node.status)),
        h("td", {}, h("a", { href: href(`/workflows/${encodeURIComponent(node.workflow.key)}`, { version: node.workflow.version }),
          "data-testid": "workflow-link" },
          node.workflow.key), h("span", { class: "sub" }, ` ${node.workflow.version}`)),
        h("td", {}, h("a", { href: href(`/executions/${node.id}`), class: "mono", "data-testid": "execution-link",
          "aria-label": `Execution ${short(node.id)} of ${node.workflow.key}, ${word(node.status)}` }, short(node.id))),
        h("td", {}, progress(steps)),
        h("td", {}, relTime(node.startedAt || node.createdAt)),
        h("td", {}, elapsed(node.startedAt, TERMINAL_EXECUTION.has(node.status) ? node.finishedAt || node.startedAt : null)),
        h("td", { class: "num hide-narrow" }, count(node.tokens)),
        h("td", { class: "num hide-narrow" }, money(node.costUsd)));
    }

    function follow(row) {
      if (row.stop || TERMINAL_EXECUTION.has(row.node.status)) return;
      row.stop = subscribe(EXECUTION_STATUS, { id: row.node.id, after: null }, {
        data({ executionUpdated: ev }) {
          const before = row.node.status;
          Object.assign(row.node, ev.execution);
          if (ev.step) row.steps.set(ev.step.id, ev.step.status);
          keepFocus(row.tr, () => fill(row));
          if (before !== row.node.status) {
            announce(`Execution ${short(row.node.id)} of ${row.node.workflow.key} is ${word(row.node.status)}`);
          }
        },
        error: (err) => problems.replaceChildren(errorBox(err, { title: "Live status stopped" })),
        complete: () => { row.stop = null; },
      });
    }

    async function load(older) {
      try {
        const data = await gql(EXECUTIONS, variables(older ? cursor : null));
        if (stopped) return;
        problems.replaceChildren();
        const page = data.executions;
        if (older || !order.length) {
          cursor = page.pageInfo.endCursor;
          hasMore = page.pageInfo.hasNextPage;
        }
        const fresh = [];
        const initial = order.length === 0;
        for (const { node } of page.edges) {
          const known = rows.get(node.id);
          if (known) {
            const seen = JSON.stringify(node);
            if (known.seen !== seen && !known.stop) {
              // Unfollowed rows take the page's word; followed ones their subscription's.
              known.seen = seen;
              Object.assign(known.node, node);
              known.steps = new Map(node.steps.map((s) => [s.id, s.status]));
              keepFocus(known.tr, () => fill(known));
            }
            follow(known);
            continue;
          }
          const row = rowFor(node);
          rows.set(node.id, row);
          fresh.push(row);
          follow(row);
        }
        if (older) {
          for (const row of fresh) { order.push(row.node.id); body.append(row.tr); }
        } else {
          // New runs go on top, newest first.
          for (const row of fresh.reverse()) {
            order.unshift(row.node.id);
            body.prepend(row.tr);
            if (!initial) row.tr.classList.add("fresh");
          }
        }
        render();
      } catch (err) {
        if (!stopped) problems.replaceChildren(errorBox(err, { title: "Listing executions failed" }));
      }
    }

    load(false);
    const poll = setInterval(() => { if (!document.hidden) load(false); }, POLL_MS);
    return () => {
      stopped = true;
      clearInterval(poll);
      for (const row of rows.values()) row.stop?.();
    };
  },
};
