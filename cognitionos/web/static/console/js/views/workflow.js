// One workflow version: its graph and steps, its input schema, a Run form generated
// from that schema (executeWorkflow), and its recent runs.

import { gql } from "../client.js";
import { EXECUTE, WORKFLOW } from "../documents.js";
import { drawDag } from "../dag.js";
import { schemaForm } from "../schema-form.js";
import { stateBadge } from "../states.js";
import { empty, errorBox, h, pre, relTime, replace, short, toast } from "../ui.js";
import { bySemver } from "./workflows.js";

export default {
  title: "Workflow",
  mount(root, { params, query, href, go }) {
    const [key] = params;
    let stopped = false;
    replace(root, h("p", { class: "loading" }, "Loading the workflow…"));

    (async () => {
      let data;
      try {
        data = await gql(WORKFLOW, { key, version: query.version || null });
      } catch (err) {
        replace(root, h("h1", {}, key), errorBox(err, { title: "Opening the workflow failed" }));
        return;
      }
      if (stopped) return;
      const wf = data.workflow;
      if (!wf) {
        replace(root, h("h1", {}, key), empty("No such workflow.",
          h("p", {}, h("a", { href: href("/workflows") }, "See every workflow"))));
        return;
      }
      document.title = `${wf.key} ${wf.version} · CognitionOS`;
      const versions = data.versions.edges.map((e) => e.node.version).sort(bySemver);
      const graph = h("div", { class: "dag-box" });
      replace(root,
        h("p", { class: "sub" }, h("a", { href: href("/workflows") }, "Workflows"), " / ", wf.key),
        h("div", { class: "page-head" },
          h("div", { class: "grow" }, h("h1", {}, wf.name, h("span", { class: "sub" }, `  ${wf.key} ${wf.version}`)),
            wf.description ? h("p", {}, wf.description) : null,
            h("div", { class: "chips", "aria-label": "Versions" }, versions.map((v) => h("a", {
              class: "chip", href: href(`/workflows/${encodeURIComponent(wf.key)}`, { version: v }),
              "aria-current": v === wf.version ? "true" : null }, v))),
            wf.tags.length ? h("div", { class: "chips" }, wf.tags.map((t) => h("span", { class: "chip" }, `#${t}`))) : null)),
        h("div", { class: "wf-grid" },
          h("div", {}, h("h2", {}, `Steps (${wf.steps.length})`), graph, stepsTable(wf.steps)),
          runPanel(wf)),
        h("h2", {}, "Input schema"), pre(wf.inputSchema ?? "none: any JSON object"),
        h("h2", {}, "Your recent runs of this key"), recent(wf.executions));
      drawDag(graph, wf.steps, { label: `${wf.key} ${wf.version}` });
    })();

    function stepsTable(steps) {
      return h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Step", "Kind", "Depends on", "Retries", "Timeout", "Configuration"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, steps.map((st) => h("tr", {},
          h("td", {}, h("b", {}, st.key), st.name && st.name !== st.key ? h("div", { class: "sub" }, st.name) : null),
          h("td", {}, st.kind, st.agentCapability ? h("div", { class: "sub" }, `needs ${st.agentCapability}`) : null),
          h("td", {}, st.dependsOn.join(", ") || "—"),
          h("td", {}, `${st.retry.maxAttempts} attempt${st.retry.maxAttempts > 1 ? "s" : ""}`),
          h("td", {}, `${st.timeoutSeconds} s`),
          h("td", {}, h("details", {}, h("summary", {}, "show"), pre(st.config))))))));
    }

    function recent(executions) {
      if (!executions.length) return empty("Not run yet.", h("p", {}, "Use the form above to start it."));
      return h("ul", {}, executions.slice(0, 10).map((e) => h("li", {},
        stateBadge(e.status), " ", h("a", { class: "mono", href: href(`/executions/${e.id}`) }, short(e.id)), " ",
        relTime(e.createdAt, "created "))));
    }

    function runPanel(wf) {
      const form = schemaForm(wf.inputSchema, "run");
      const idem = h("input", { id: "run-idempotency", type: "text", autocomplete: "off" });
      const submit = h("button", { type: "submit", "data-testid": "run-workflow" }, `Run ${wf.version}`);
      const problems = h("div", { "aria-live": "polite" });
      const el = h("form", { class: "panel details", "aria-labelledby": "run-title", novalidate: true },
        h("h2", { id: "run-title" }, "Run this version"),
        form.fields,
        h("div", { class: "field" }, h("label", { for: "run-idempotency" }, "Idempotency key (optional)"),
          h("div", { class: "help" }, "The same key within 24 h returns the first run instead of starting another."), idem),
        problems, submit);
      el.addEventListener("submit", async (event) => {
        event.preventDefault();
        problems.replaceChildren();
        const inputs = form.collect();
        if (inputs === null) return;
        submit.disabled = true;
        try {
          const data = await gql(EXECUTE, { input: { workflowKey: wf.key, version: wf.version, inputs,
            idempotencyKey: idem.value.trim() || null } });
          toast(`Started ${wf.key} ${wf.version}.`);
          go(`/executions/${data.executeWorkflow.id}`);
        } catch (err) {
          problems.append(errorBox(err, { title: "The run was refused" }));
          if (err.field?.startsWith("inputs.")) form.showError(err.field.slice(7), err.message);
          submit.disabled = false;
        }
      });
      return el;
    }

    return () => { stopped = true; };
  },
};
