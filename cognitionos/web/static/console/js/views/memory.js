// Memory search: hybrid (vector + full text) hits with the ranks that explain each one.

import { gql } from "../client.js";
import { MEMORIES, SEARCH_MEMORIES } from "../documents.js";
import { setQuery } from "../router.js";
import { empty, errorBox, h, relTime, replace } from "../ui.js";

const TYPES = ["WORKING", "SHORT_TERM", "LONG_TERM", "EPISODIC", "SEMANTIC"];
const SCOPES = ["GLOBAL", "USER", "TASK", "SESSION"];

function memoryCard(memory, hit) {
  const why = hit ? h("div", { class: "why", "data-testid": "memory-why" },
    h("span", {}, "rank ", h("b", {}, `#${hit.rank}`)),
    h("span", {}, "score ", h("b", {}, hit.score.toFixed(4))),
    h("span", {}, "similarity ", h("b", {}, hit.similarity.toFixed(3))),
    h("span", {}, "vector rank ", h("b", {}, hit.vectorRank ?? "—")),
    h("span", {}, "text rank ", h("b", {}, hit.textRank ?? "—")),
    h("span", {}, "recency ", h("b", {}, hit.recency.toFixed(2)))) : null;
  return h("article", { class: "card", "data-testid": hit ? "memory-hit" : "memory" },
    h("p", {}, memory.content),
    h("div", { class: "chips" },
      h("span", { class: "chip" }, memory.type.toLowerCase().replace("_", " ")),
      h("span", { class: "chip" }, memory.scope.toLowerCase() + (memory.scopeId ? `: ${memory.scopeId}` : "")),
      h("span", { class: "chip" }, `importance ${memory.importance}`),
      h("span", { class: "chip" }, `confidence ${memory.confidence.toFixed(2)}`)),
    why,
    h("div", { class: "sub" }, relTime(memory.createdAt, "stored "), ` · read ${memory.accessCount}×`));
}

export default {
  title: "Memory",
  mount(root, { query }) {
    let stopped = false;
    const text = h("input", { id: "mem-query", type: "search", required: true, value: query.q || "" });
    const limit = h("input", { id: "mem-limit", type: "number", min: 1, max: 100, value: query.limit || "10" });
    const type = h("select", { id: "mem-type" }, h("option", { value: "" }, "any type"),
      TYPES.map((t) => h("option", { value: t }, t.toLowerCase().replace("_", " "))));
    const scope = h("select", { id: "mem-scope" }, h("option", { value: "" }, "any scope"),
      SCOPES.map((t) => h("option", { value: t }, t.toLowerCase())));
    type.value = query.type || "";
    scope.value = query.scope || "";
    const submit = h("button", { type: "submit" }, "Search");
    const problems = h("div");
    const results = h("div", { "aria-live": "polite" });
    const form = h("form", { class: "filters panel", role: "search" },
      h("div", { class: "field" }, h("label", { for: "mem-query" }, "Search memories"), text),
      h("div", { class: "field" }, h("label", { for: "mem-type" }, "Type"), type),
      h("div", { class: "field" }, h("label", { for: "mem-scope" }, "Scope"), scope),
      h("div", { class: "field" }, h("label", { for: "mem-limit" }, "Hits"), limit),
      submit);
    root.append(h("div", { class: "page-head" }, h("div", { class: "grow" }, h("h1", {}, "Memory"),
      h("p", { class: "sub" }, "Hits are fused from a vector ranking and a full-text ranking, weighted by importance, confidence and recency. Each says why it ranks where it does."))),
    form, problems, results);

    async function search() {
      const q = text.value.trim();
      setQuery({ q, type: type.value, scope: scope.value, limit: limit.value });
      if (!q) return recentList();
      submit.disabled = true;
      try {
        const filter = {};
        if (type.value) filter.types = [type.value];
        if (scope.value) filter.scope = scope.value;
        const data = await gql(SEARCH_MEMORIES, { query: q, limit: Number(limit.value) || 10,
          filter: Object.keys(filter).length ? filter : null });
        if (stopped) return;
        problems.replaceChildren();
        const hits = data.searchMemories;
        replace(results, hits.length
          ? [h("h2", {}, `${hits.length} hit${hits.length > 1 ? "s" : ""} for “${q}”`),
            h("div", { class: "hits" }, hits.map((hit) => memoryCard(hit.memory, hit)))]
          : empty(`Nothing found for “${q}”.`, h("p", {}, "Try other words, or widen the type and scope.")));
      } catch (err) {
        problems.replaceChildren(errorBox(err, { title: "The search failed" }));
      } finally {
        submit.disabled = false;
      }
    }

    async function recentList() {
      try {
        const data = await gql(MEMORIES, { first: 10 });
        if (stopped) return;
        const nodes = data.memories.edges.map((e) => e.node);
        replace(results, nodes.length
          ? [h("h2", {}, "Newest memories"), h("div", { class: "hits" }, nodes.map((m) => memoryCard(m, null)))]
          : empty("No memories yet.", h("p", {}, "Agents and MEMORY_STORE steps store them; so does the ",
            h("code", {}, "storeMemory"), " mutation.")));
      } catch (err) {
        problems.replaceChildren(errorBox(err, { title: "Listing memories failed" }));
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    search();
    text.focus();
    return () => { stopped = true; };
  },
};
