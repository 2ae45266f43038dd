// One execution, live and reload-safe. On open: the event history (events), then the
// state (execution), then executionUpdated from the last history position. Every event
// received moves that position; a reconnect resubscribes from it, so nothing is missed
// and nothing is applied twice (an event at or before the position is dropped).

import { gql, subscribe } from "../client.js";
import { AGENT_NAMES, APPROVE, CANCEL, EVENTS, EXECUTION, RETRY } from "../documents.js";
import { drawDag } from "../dag.js";
import { setQuery } from "../router.js";
import { STREAMING_KINDS, TERMINAL_EXECUTION, TERMINAL_STEP, stateBadge, word } from "../states.js";
import { EXECUTION_UPDATED, STEP_OUTPUT } from "../subscriptions.js";
import {
  announce, count, elapsed, errorBox, exact, h, keepFocus, money, pre, relTime, replace, short, toast,
} from "../ui.js";
import { stepDetails } from "./step-details.js";

const EVENTS_PAGE = 1000; // the server's page size for events()
const RECHECK_MS = 4000; // a finished run that can be retried: looked at again this often

async function readEvents(id, after) {
  const all = [];
  for (;;) {
    const page = (await gql(EVENTS, { streamId: id, after })).events;
    all.push(...page);
    if (page.length < EVENTS_PAGE) return all;
    after = page[page.length - 1].position;
  }
}

export default {
  title: "Execution",
  mount(root, { params, query, href }) {
    const [id] = params;
    const st = {
      execution: null, defs: new Map(), steps: new Map(), history: new Map(),
      lastPosition: 0, historyCursor: 0, selected: query.step || null, ended: false, stopped: false,
    };
    const agents = new Map();
    const stream = { stepId: null, attempt: 0, text: "", stop: null };
    const comment = h("textarea", { id: "approval-comment", rows: 2 });
    let dag = null;
    let stopUpdates = null;
    let historyTimer = null;
    let recheckTimer = null;
    let historyView = "table";

    const head = h("div");
    const problems = h("div", { "aria-live": "polite" });
    const graph = h("div", { class: "dag-box", tabindex: -1 });
    const details = h("div", { class: "details-slot" });
    const io = h("div", { class: "two" });
    const historyBox = h("div");
    root.append(head, problems, h("div", { class: "exec-grid" },
      h("div", { class: "area-graph" }, graph),
      h("div", { class: "area-details" }, details),
      h("div", { class: "area-rest" },
        h("h2", {}, "Inputs and result"), io,
        h("section", { class: "history", "aria-labelledby": "history-title" }, historyBox))));
    replace(head, h("p", { class: "loading" }, "Loading the execution…"));

    // One box per kind of problem; a later success of the same kind clears it.
    const issues = new Map();
    const fail = (err, title, kind = title) => {
      issues.get(kind)?.remove();
      const box = errorBox(err, { title });
      issues.set(kind, box);
      problems.append(box);
    };
    const cleared = (kind) => {
      issues.get(kind)?.remove();
      issues.delete(kind);
    };

    // ---- rendering ------------------------------------------------------------------
    function renderHead() {
      keepFocus(head, drawHead);
    }

    function drawHead() {
      const ex = st.execution;
      const actions = h("div", { class: "actions" });
      if (!TERMINAL_EXECUTION.has(ex.status)) {
        const cancel = h("button", { type: "button", class: "warn", "data-testid": "cancel-button" }, "Cancel execution");
        cancel.addEventListener("click", () => act(cancel, CANCEL, "cancelExecution", "Cancellation requested."));
        actions.append(cancel);
      }
      if (ex.status === "FAILED" || ex.status === "CANCELLED") {
        const retry = h("button", { type: "button", "data-testid": "retry-button" }, "Retry failed steps");
        retry.addEventListener("click", () => act(retry, RETRY, "retryExecution", "Retrying the failed and skipped steps."));
        actions.append(retry);
      }
      replace(head,
        h("p", { class: "sub" }, h("a", { href: href("/executions") }, "Executions"), " / ",
          h("a", { href: href(`/workflows/${encodeURIComponent(ex.workflow.key)}`, { version: ex.workflow.version }) },
            `${ex.workflow.key} ${ex.workflow.version}`)),
        h("div", { class: "exec-head" },
          h("h1", {}, `${ex.workflow.name} `, h("span", { class: "mono sub", title: ex.id }, short(ex.id))),
          h("span", { "data-testid": "execution-status", "data-status": ex.status }, stateBadge(ex.status, { big: true })),
          h("div", { class: "facts" },
            h("span", {}, "created ", relTime(ex.createdAt)),
            h("span", {}, "ran ", h("b", {}, elapsed(ex.startedAt, TERMINAL_EXECUTION.has(ex.status) ? ex.finishedAt : null))),
            h("span", {}, "tokens ", h("b", {}, count(ex.tokens))),
            h("span", {}, "cost ", h("b", {}, money(ex.costUsd))),
            h("span", { class: "connection-note", "data-testid": "connection-note" }, !st.ended ? "live"
              : ex.status === "SUCCEEDED" ? "finished: no more updates" : "finished: a retry would show here")),
          actions),
        ex.error ? h("div", { class: "error-box", "data-testid": "execution-error" }, h("strong", {}, "Failed: "), ex.error) : null);
    }

    function renderIO() {
      const ex = st.execution;
      replace(io,
        h("div", {}, h("h3", {}, "Inputs"), pre(ex.inputs)),
        h("div", {}, h("h3", {}, "Outputs"), pre(ex.outputs ?? (TERMINAL_EXECUTION.has(ex.status) ? null : "not finished yet"))));
    }

    function renderDetails() {
      const def = st.defs.get(st.selected);
      keepFocus(details, () => replace(details, stepDetails({
        def, step: st.steps.get(st.selected) || null, streamed: stream.stepId && def &&
          st.steps.get(st.selected)?.id === stream.stepId ? stream.text : null,
        history: [...st.history.values()], agents, comment, onApprove: approve,
      })));
    }

    function renderHistory() {
      keepFocus(historyBox, drawHistory);
    }

    function drawHistory() {
      const events = [...st.history.values()].sort((a, b) => a.position - b.position);
      const tabs = h("div", { class: "tabs", role: "group", "aria-label": "History view" },
        ["table", "json"].map((v) => h("button", { type: "button", "aria-pressed": String(historyView === v),
          "data-testid": `history-${v}`,
          onclick: () => { historyView = v; renderHistory(); } }, v === "table" ? "Timeline" : "JSON")));
      const body = historyView === "json"
        ? pre(events)
        : h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["#", "When", "Event", "Step", "State", "Details"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, events.map((e) => h("tr", { "data-testid": "event-row", "data-position": e.position, "data-type": e.type },
            h("td", { class: "mono" }, e.position),
            h("td", {}, e.createdAt
              ? h("time", { datetime: e.createdAt, title: exact(e.createdAt) }, new Date(e.createdAt).toLocaleTimeString())
              : h("span", { class: "sub" }, "now")),
            h("td", { class: "mono" }, e.type),
            h("td", {}, e.data?.stepKey || "—"),
            h("td", {}, e.data?.status ? word(e.data.status) : word(e.data?.executionStatus)),
            h("td", { class: "sub" }, eventDetail(e)))))));
      replace(historyBox, h("div", { class: "page-head" },
        h("h2", { id: "history-title", class: "grow" }, `Event history (${events.length})`), tabs), body);
    }

    function eventDetail(e) {
      const d = e.data || {};
      const bits = [];
      if (d.attempt) bits.push(`attempt ${d.attempt}`);
      if (d.error) bits.push(d.error);
      if (d.reason) bits.push(d.reason);
      if (d.servedBy) bits.push(`served by ${d.servedBy}`);
      if (d.comment) bits.push(`“${d.comment}”`);
      return bits.join(" · ");
    }

    function select(key) {
      if (!st.defs.has(key)) return;
      st.selected = key;
      setQuery({ step: key });
      dag.select(key);
      manageStream();
      renderDetails();
    }

    // ---- live ---------------------------------------------------------------------
    function apply(ev) {
      if (ev.position <= st.lastPosition) return; // already applied (replay overlap)
      st.lastPosition = ev.position;
      if (!st.history.has(ev.position)) {
        // Shown at once; its stored time comes with the next read of the history.
        st.history.set(ev.position, { position: ev.position, version: ev.version, type: ev.type,
          data: ev.data, createdAt: null });
      }
      const before = st.execution.status;
      Object.assign(st.execution, ev.execution);
      if (ev.step) {
        const old = st.steps.get(ev.step.stepKey);
        st.steps.set(ev.step.stepKey, ev.step);
        dag.update(ev.step.stepKey, ev.step);
        if (old?.status !== ev.step.status) announce(`Step ${ev.step.stepKey}: ${word(ev.step.status)}`);
        if (ev.step.stepKey === st.selected) {
          manageStream();
          renderDetails();
        }
      }
      if (before !== st.execution.status) announce(`Execution ${word(st.execution.status)}`);
      renderHead();
      renderIO();
      renderHistory();
      loadHistorySoon();
    }

    function follow() {
      stopUpdates?.();
      const from = st.lastPosition;
      st.ended = false;
      stopUpdates = subscribe(EXECUTION_UPDATED, () => ({ id, after: st.lastPosition }), {
        data: ({ executionUpdated }) => {
          cleared("live");
          apply(executionUpdated);
        },
        error: (err) => {
          fail(err, "Live updates stopped", "live");
          if (!st.stopped && TERMINAL_EXECUTION.has(st.execution.status)) recheckLater();
        },
        complete: () => {
          stopUpdates = null;
          if (st.stopped) return;
          if (TERMINAL_EXECUTION.has(st.execution.status)) {
            st.ended = true;
            if (st.lastPosition !== from) { // a look that found nothing changes nothing
              renderHead();
              loadHistorySoon();
            }
            recheckLater();
          } else {
            setTimeout(() => { if (!st.stopped) follow(); }, 1000); // cut off: resume
          }
        },
        restarted: loadHistorySoon,
      });
    }

    // A FAILED or CANCELLED run can be retried elsewhere (another tab, the API) after its
    // stream completed: look again now and then while the page is shown (the server
    // completes at once when nothing happened since).
    function recheckLater() {
      if (st.execution.status === "SUCCEEDED" || recheckTimer) return;
      recheckTimer = setTimeout(() => {
        recheckTimer = null;
        // Live again (retried here meanwhile): its stream is open, nothing to look at.
        if (st.stopped || !TERMINAL_EXECUTION.has(st.execution.status)) return;
        if (document.hidden) recheckLater();
        else follow(); // stops whatever subscription is left (one that failed, say) first
      }, RECHECK_MS);
    }

    function manageStream() {
      const step = st.steps.get(st.selected);
      const def = st.defs.get(st.selected);
      const wanted = step && def && STREAMING_KINDS.has(def.kind) && !TERMINAL_STEP.has(step.status);
      if (wanted && stream.stepId === step.id && stream.stop) return;
      stream.stop?.();
      stream.stop = null;
      if (!wanted) return;
      Object.assign(stream, { stepId: step.id, attempt: 0, text: "" });
      stream.stop = subscribe(STEP_OUTPUT, { id: step.id }, {
        data: ({ stepOutputChunks: chunk }) => {
          cleared("stream");
          if (chunk.attempt !== stream.attempt) Object.assign(stream, { attempt: chunk.attempt, text: "" });
          stream.text += chunk.text;
          const out = details.querySelector("[data-testid=step-output][data-streaming]");
          if (out) out.textContent = stream.text;
        },
        error: (err) => fail(err, "Streaming the step's output stopped", "stream"),
        complete: () => { stream.stop = null; },
        restarted: () => Object.assign(stream, { attempt: 0, text: "" }), // sent again from the start
      });
    }

    function loadHistorySoon() {
      // Events are shown as they arrive; this reads them back (with their stored time) at
      // most once a second, however long a burst lasts.
      if (historyTimer) return;
      historyTimer = setTimeout(() => {
        historyTimer = null;
        loadHistory();
      }, 1000);
    }

    async function loadHistory() {
      try {
        for (const e of await readEvents(id, st.historyCursor)) {
          st.history.set(e.position, e);
          st.historyCursor = Math.max(st.historyCursor, e.position);
        }
        cleared("history");
        renderHistory();
        if (st.selected) renderDetails();
      } catch (err) {
        fail(err, "Reading the event history failed", "history");
      }
    }

    // ---- actions ------------------------------------------------------------------
    async function act(button, document_, field, done) {
      button.disabled = true;
      try {
        await gql(document_, { id });
        cleared("action");
        toast(done);
        announce(done);
        // The status shown comes from the execution's events only: the answer can be
        // older than events applied while it travelled (a retried approval step may be
        // waiting again already), and every change is an event. A retried execution's
        // stream had ended: follow it again from where it stopped.
        if (field === "retryExecution" || !stopUpdates) follow();
      } catch (err) {
        fail(err, field === "cancelExecution" ? "Cancel was refused" : "Retry was refused", "action");
        button.disabled = false;
      }
    }

    async function approve(approved, button) {
      const step = st.steps.get(st.selected);
      for (const b of details.querySelectorAll(".approval button")) b.disabled = true;
      try {
        await gql(APPROVE, { id: step.id, approved, comment: comment.value || null });
        comment.value = "";
        cleared("action");
        const done = `${approved ? "Approved" : "Rejected"} ${step.stepKey}.`;
        toast(done);
        announce(done);
      } catch (err) {
        fail(err, `${approved ? "Approval" : "Rejection"} was refused`, "action");
        for (const b of details.querySelectorAll(".approval button")) b.disabled = false;
        button.focus();
      }
    }

    // ---- first load ---------------------------------------------------------------
    (async () => {
      try {
        const history = await readEvents(id, null);
        const data = await gql(EXECUTION, { id });
        if (st.stopped) return;
        if (!data.execution) {
          replace(head, h("h1", {}, "Execution not found"), errorBox({ message: `No execution ${id} is visible to you.`, code: "NOT_FOUND" }));
          return;
        }
        for (const e of history) st.history.set(e.position, e);
        st.lastPosition = st.historyCursor = history.length ? history[history.length - 1].position : 0;
        st.execution = data.execution;
        for (const def of data.execution.workflow.steps) st.defs.set(def.key, def);
        for (const step of data.execution.steps) st.steps.set(step.stepKey, step);
        document.title = `${data.execution.workflow.key} ${short(id)} · CognitionOS`;
        dag = drawDag(graph, data.execution.workflow.steps, { onSelect: (key) => select(key) });
        for (const [key, step] of st.steps) dag.update(key, step);
        if (!st.defs.has(st.selected)) {
          const steps = [...st.steps.values()];
          const pick = ["WAITING_APPROVAL", "RUNNING", "RETRYING", "FAILED"]
            .map((s) => steps.find((x) => x.status === s)).find(Boolean);
          st.selected = pick?.stepKey || data.execution.workflow.steps[0]?.key || null;
        }
        renderHead();
        renderIO();
        renderHistory();
        if (st.selected) {
          select(st.selected);
          dag.reveal(st.selected);
        }
        if (TERMINAL_EXECUTION.has(st.execution.status)) {
          st.ended = true; // over (unless retried elsewhere); catch up on what the history missed
          loadHistorySoon();
          recheckLater();
        } else follow();
        renderHead();
        gql(AGENT_NAMES).then((d) => {
          for (const a of d.agents) agents.set(a.id, `${a.name} (${a.role.toLowerCase()})`);
          if (st.selected) renderDetails();
        }, (err) => fail(err, "Listing agents failed"));
      } catch (err) {
        replace(head, h("h1", {}, "Execution"), errorBox(err, { title: "Opening the execution failed" }));
      }
    })();

    return () => {
      st.stopped = true;
      stopUpdates?.();
      stream.stop?.();
      clearTimeout(historyTimer);
      clearTimeout(recheckTimer);
    };
  },
};
