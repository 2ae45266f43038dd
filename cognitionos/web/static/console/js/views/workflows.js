// Workflows: every key with its versions, newest version first; search by text or tag.

import { gql } from "../client.js";
import { WORKFLOWS } from "../documents.js";
import { setQuery } from "../router.js";
import { empty, errorBox, h, plural, relTime, replace } from "../ui.js";

/** Semver order, newest first (pre-releases before their release). */
export function bySemver(a, b) {
  const parse = (v) => {
    const [core, pre = ""] = v.split("+")[0].split("-", 2);
    return { nums: core.split(".").map(Number), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if (x.nums[i] !== y.nums[i]) return y.nums[i] - x.nums[i];
  if (x.pre === y.pre) return 0;
  if (!x.pre) return -1;
  if (!y.pre) return 1;
  return y.pre.localeCompare(x.pre, undefined, { numeric: true });
}

export default {
  title: "Workflows",
  mount(root, { query, href }) {
    let stopped = false;
    const search = h("input", { id: "wf-search", type: "search", value: query.q || "", placeholder: "name, key or description" });
    const problems = h("div");
    const list = h("div", { class: "cards", "aria-live": "polite" });
    const form = h("form", { class: "filters", role: "search" },
      h("div", { class: "field" }, h("label", { for: "wf-search" }, "Search workflows"), search),
      h("button", { type: "submit" }, "Search"));
    root.append(h("div", { class: "page-head" },
      h("div", { class: "grow" }, h("h1", {}, "Workflows"),
        h("p", { class: "sub" }, "Each key keeps every version; a run pins the version it started with.")),
      form), problems, list);

    async function load() {
      const text = search.value.trim();
      setQuery({ q: text });
      replace(list, h("p", { class: "loading" }, "Loading…"));
      try {
        const nodes = [];
        let after = null;
        for (let page = 0; page < 10; page++) {
          const data = await gql(WORKFLOWS, { first: 100, after, filter: text ? { text } : null });
          nodes.push(...data.workflows.edges.map((e) => e.node));
          if (!data.workflows.pageInfo.hasNextPage) break;
          after = data.workflows.pageInfo.endCursor;
        }
        if (stopped) return;
        problems.replaceChildren();
        const byKey = new Map();
        for (const n of nodes) (byKey.get(n.key) || byKey.set(n.key, []).get(n.key)).push(n);
        if (!byKey.size) {
          replace(list, text
            ? empty(`No workflow matches “${text}”.`)
            : empty("No workflows yet.", h("p", {}, "Create one with the ", h("code", {}, "createWorkflow"),
              " mutation (in ", h("a", { href: "/graphql" }, "GraphiQL"), ") or let the planner write one (",
              h("code", {}, "planWorkflow"), ").")));
          return;
        }
        replace(list, [...byKey.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, versions]) => {
          versions.sort((a, b) => bySemver(a.version, b.version));
          const latest = versions[0];
          const link = (v) => href(`/workflows/${encodeURIComponent(key)}`, { version: v });
          return h("article", { class: "card", "data-testid": "workflow-card", "data-key": key },
            h("h3", {}, h("a", { href: link(latest.version) }, latest.name)),
            h("div", { class: "sub mono" }, key),
            latest.description ? h("p", {}, latest.description) : null,
            h("div", { class: "sub" }, `${plural(latest.steps.length, "step")} · `,
              [...new Set(latest.steps.map((s) => s.kind))].join(", "), " · ", relTime(latest.createdAt, "created ")),
            h("div", { class: "chips", "aria-label": "Versions" },
              versions.map((v) => h("a", { class: "chip", href: link(v.version) }, v.version))),
            latest.tags.length ? h("div", { class: "chips", "aria-label": "Tags" }, latest.tags.map((t) => h("span", { class: "chip" }, `#${t}`))) : null);
        }));
      } catch (err) {
        replace(list);
        problems.replaceChildren(errorBox(err, { title: "Listing workflows failed" }));
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      load();
    });
    load();
    return () => { stopped = true; };
  },
};
