// LLM usage: cost (or tokens, or calls) per day as an inline SVG bar chart, with the
// same numbers as a table, and the totals per model.

import { gql } from "../client.js";
import { USAGE } from "../documents.js";
import { setQuery } from "../router.js";
import { count, empty, errorBox, h, money, plural, replace, s } from "../ui.js";

const METRICS = {
  cost: { label: "Cost (USD)", value: (d) => d.costUsd, format: money },
  tokens: { label: "Tokens", value: (d) => d.tokensIn + d.tokensOut, format: count },
  calls: { label: "Calls", value: (d) => d.calls, format: count },
};

function days(since, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const d = new Date(since.getTime() + i * 86400_000);
    out.push(d.toISOString().slice(0, 10));
  }
  return out;
}

/** A bar per day; every bar has a tooltip, and the chart a text summary. */
export function barChart(series, metric) {
  const m = METRICS[metric];
  const values = series.map((d) => m.value(d));
  const max = Math.max(...values, 0);
  const W = Math.max(900, series.length * 26 + 70);
  const H = 240;
  const left = 84;
  const bottom = 36;
  const top = 12;
  const plot = H - bottom - top;
  const step = (W - left - 10) / series.length;
  const bar = Math.max(4, step * 0.7);
  const total = values.reduce((a, b) => a + b, 0);
  const svg = s("svg", { width: "100%", viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": `${m.label} per day over ${series.length} days: total ${m.format(total)}, highest ${m.format(max)}` });
  for (let i = 0; i <= 4; i++) {
    const y = top + plot - (plot * i) / 4;
    svg.append(s("line", { class: "grid", x1: left, x2: W - 10, y1: y, y2: y }),
      s("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, max ? m.format((max * i) / 4) : i ? "" : "0"));
  }
  series.forEach((d, i) => {
    const v = values[i];
    const height = max ? (plot * v) / max : 0;
    const x = left + i * step + (step - bar) / 2;
    svg.append(s("rect", { class: "bar", x, y: top + plot - height, width: bar, height: Math.max(height, v ? 1 : 0),
      "data-day": d.day, "data-value": v }, s("title", {}, `${d.day}: ${m.format(v)} (${d.calls} calls)`)));
    if (series.length <= 14 || i % Math.ceil(series.length / 10) === 0) {
      svg.append(s("text", { x: x + bar / 2, y: H - bottom + 16, "text-anchor": "middle" }, d.day.slice(5)));
    }
  });
  svg.append(s("line", { class: "axis", x1: left, x2: W - 10, y1: top + plot, y2: top + plot }));
  return svg;
}

export default {
  title: "LLM usage",
  mount(root, { query }) {
    let stopped = false;
    const metric = h("select", { id: "usage-metric" },
      Object.entries(METRICS).map(([k, v]) => h("option", { value: k }, v.label)));
    metric.value = METRICS[query.metric] ? query.metric : "cost";
    const span = h("select", { id: "usage-days" },
      [7, 30, 90].map((n) => h("option", { value: String(n) }, `last ${n} days`)));
    span.value = ["7", "30", "90"].includes(query.days) ? query.days : "30";
    const problems = h("div");
    const body = h("div", { "aria-live": "polite" });
    root.append(h("div", { class: "page-head" },
      h("div", { class: "grow" }, h("h1", {}, "LLM usage"),
        h("p", { class: "sub" }, "Every call an LLM or AGENT step, the planner or memory made for you (everyone's, for admins).")),
      h("div", { class: "filters" },
        h("div", { class: "field" }, h("label", { for: "usage-metric" }, "Show"), metric),
        h("div", { class: "field" }, h("label", { for: "usage-days" }, "Period"), span))),
    problems, body);

    let data = null;
    let since = null;
    function render() {
      if (!data) return;
      const n = Number(span.value);
      const byDay = new Map(data.byDay.map((d) => [d.day?.slice(0, 10), d]));
      const zero = { calls: 0, failures: 0, tokensIn: 0, tokensOut: 0, costUsd: 0, unpricedCalls: 0 };
      const series = days(since, n + 1).map((day) => ({ ...zero, ...byDay.get(day), day }));
      const totals = series.reduce((t, d) => ({ calls: t.calls + d.calls, cost: t.cost + d.costUsd,
        tokens: t.tokens + d.tokensIn + d.tokensOut, unpriced: t.unpriced + d.unpricedCalls }), { calls: 0, cost: 0, tokens: 0, unpriced: 0 });
      if (!totals.calls) {
        replace(body, empty("No LLM calls in this period.", h("p", {}, "Run a workflow with an LLM or AGENT step and its cost shows up here.")));
        return;
      }
      const budget = data.budget;
      replace(body,
        h("p", {}, h("b", {}, money(totals.cost)), ` over ${plural(totals.calls, "call")} and ${plural(totals.tokens, "token")}`,
          totals.unpriced ? ` (${totals.unpriced} calls of models without a known price are not in the cost)` : "",
          budget.monthlyUsd !== null ? ` · this month ${money(budget.spentUsd)} of a ${money(budget.monthlyUsd)} budget` : ""),
        h("div", { class: "chart", "data-testid": "usage-chart" }, barChart(series, metric.value)),
        h("h2", {}, "Per model"),
        h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Provider", "Model", "Calls", "Failures", "Tokens in", "Tokens out", "Cost"].map((t, i) =>
            h("th", { scope: "col", class: i > 1 ? "num" : null }, t)))),
          h("tbody", {}, data.byModel.map((r) => h("tr", {},
            h("td", {}, r.provider || "—"), h("td", { class: "mono" }, r.model || "—"),
            h("td", { class: "num" }, count(r.calls)), h("td", { class: "num" }, count(r.failures)),
            h("td", { class: "num" }, count(r.tokensIn)), h("td", { class: "num" }, count(r.tokensOut)),
            h("td", { class: "num" }, r.unpricedCalls && !r.costUsd ? "unknown" : money(r.costUsd))))))),
        h("details", {}, h("summary", {}, "The numbers per day"), h("div", { class: "table-wrap" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Day", "Calls", "Tokens", "Cost"].map((t) => h("th", { scope: "col" }, t)))),
          h("tbody", {}, series.filter((d) => d.calls).map((d) => h("tr", {}, h("td", {}, d.day), h("td", {}, count(d.calls)),
            h("td", {}, count(d.tokensIn + d.tokensOut)), h("td", {}, money(d.costUsd)))))))));
    }

    async function load() {
      setQuery({ metric: metric.value, days: span.value });
      const today = new Date();
      today.setUTCHours(0, 0, 0, 0);
      since = new Date(today.getTime() - Number(span.value) * 86400_000);
      try {
        data = await gql(USAGE, { since: since.toISOString() });
        if (stopped) return;
        problems.replaceChildren();
        render();
      } catch (err) {
        problems.replaceChildren(errorBox(err, { title: "Reading usage failed" }));
      }
    }
    metric.addEventListener("change", () => { setQuery({ metric: metric.value, days: span.value }); render(); });
    span.addEventListener("change", load);
    load();
    return () => { stopped = true; };
  },
};
