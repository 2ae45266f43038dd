// A workflow's steps as an SVG graph, left to right by dependency depth. Nodes keep a
// readable size whatever the count (the box scrolls); each shows key, kind, state,
// attempt and duration, and is a keyboard-operable button.

import { STEP_STATES, word } from "./states.js";
import { duration, s } from "./ui.js";

const W = 172;
const H = 64;
const GAP_X = 44;
const GAP_Y = 14;
const PAD = 16;

/** Columns by longest path from a root; rows ordered to keep edges short. */
export function layout(steps) {
  const byKey = new Map(steps.map((st) => [st.key, st]));
  const depth = new Map();
  const visit = (key, trail = new Set()) => {
    if (depth.has(key)) return depth.get(key);
    if (trail.has(key)) return 0; // a cycle cannot be stored, but never loop on one
    trail.add(key);
    const deps = (byKey.get(key)?.dependsOn || []).filter((d) => byKey.has(d));
    const d = deps.length ? Math.max(...deps.map((dep) => visit(dep, trail) + 1)) : 0;
    depth.set(key, d);
    return d;
  };
  steps.forEach((st) => visit(st.key));
  const columns = [];
  for (const st of steps) (columns[depth.get(st.key)] ||= []).push(st.key);
  const row = new Map();
  columns.forEach((col, c) => {
    if (c > 0) {
      // Barycentre of the parents' rows; definition order breaks ties.
      const weight = (key) => {
        const deps = byKey.get(key).dependsOn.filter((d) => row.has(d));
        return deps.length ? deps.reduce((sum, d) => sum + row.get(d), 0) / deps.length : 0;
      };
      col.sort((a, b) => weight(a) - weight(b));
    }
    col.forEach((key, r) => row.set(key, r));
  });
  const tallest = Math.max(1, ...columns.map((col) => col.length));
  const centre = tallest <= 8; // taller than a screen: keep every column's start in view
  const nodes = new Map();
  columns.forEach((col, c) => {
    const offset = centre ? ((tallest - col.length) * (H + GAP_Y)) / 2 : 0;
    col.forEach((key, r) => {
      nodes.set(key, { key, col: c, row: r, x: PAD + c * (W + GAP_X), y: PAD + offset + r * (H + GAP_Y) });
    });
  });
  const edges = [];
  for (const st of steps) {
    for (const dep of st.dependsOn || []) if (nodes.has(dep)) edges.push({ from: dep, to: st.key });
  }
  return {
    nodes,
    edges,
    columns,
    width: PAD * 2 + columns.length * W + Math.max(0, columns.length - 1) * GAP_X,
    height: PAD * 2 + tallest * H + (tallest - 1) * GAP_Y,
  };
}

function clip(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Draw `definition` (steps with key, kind, dependsOn) into `box`.
 * Returns {update(key, step), select(key)}; `onSelect(key)` is called on click or Enter.
 */
export function drawDag(box, definition, { onSelect, label = "Workflow steps" } = {}) {
  const plan = layout(definition);
  const kinds = new Map(definition.map((st) => [st.key, st.kind]));
  const svg = s("svg", { width: plan.width, height: plan.height, viewBox: `0 0 ${plan.width} ${plan.height}`,
    role: "group", "aria-label": `${label}: ${definition.length} steps, dependencies left to right` });
  svg.append(s("defs", {}, s("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
  s("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#8794a3" }))));
  const edgeEls = [];
  const edgeLayer = s("g", { "aria-hidden": "true" });
  for (const edge of plan.edges) {
    const a = plan.nodes.get(edge.from);
    const b = plan.nodes.get(edge.to);
    const x1 = a.x + W;
    const y1 = a.y + H / 2;
    const x2 = b.x - 2;
    const y2 = b.y + H / 2;
    const bend = Math.max(24, (x2 - x1) / 2);
    const path = s("path", { class: "dag-edge", d: `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`,
      "marker-end": "url(#arrow)", "data-from": edge.from, "data-to": edge.to });
    edgeEls.push(path);
    edgeLayer.append(path);
  }
  svg.append(edgeLayer);
  const nodeEls = new Map();
  let selected = null;
  for (const node of plan.nodes.values()) {
    const g = s("g", { class: "dag-node nostate", transform: `translate(${node.x} ${node.y})`,
      tabindex: 0, role: "button", "aria-pressed": "false", "data-testid": "dag-node",
      "data-step-key": node.key, "data-status": "" });
    const title = s("title", {}, node.key);
    const word_ = s("text", { class: "word", x: 28, y: 54 }, "not run");
    const dot = s("circle", { class: "dot", cx: 19, cy: 50, r: 4.5 });
    const meta = s("text", { class: "kind", x: 14, y: 35 }, kinds.get(node.key) || "");
    const time = s("text", { class: "kind", x: W - 10, y: 35, "text-anchor": "end" }, "");
    g.append(title,
      s("rect", { class: "frame", width: W, height: H, rx: 6 }),
      s("rect", { class: "bar", width: 6, height: H, rx: 2 }),
      s("text", { class: "key", x: 14, y: 19 }, clip(node.key, 21)),
      meta, dot, word_, time);
    g.addEventListener("click", () => onSelect?.(node.key));
    g.addEventListener("keydown", (event) => keyNav(event, node));
    nodeEls.set(node.key, { g, word: word_, meta, time, title });
    svg.append(g);
  }
  box.replaceChildren(svg);

  function keyNav(event, node) {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onSelect?.(node.key);
      return;
    }
    const moves = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] };
    const move = moves[event.key];
    if (!move) return;
    event.preventDefault();
    const col = plan.columns[node.col + move[0]];
    if (!col) return;
    const target = move[0] === 0
      ? col[node.row + move[1]]
      : col.reduce((best, key) => (Math.abs(plan.nodes.get(key).y - node.y) <
        Math.abs(plan.nodes.get(best).y - node.y) ? key : best), col[0]);
    if (target) nodeEls.get(target).g.focus();
  }

  return {
    /** Show a step's state, attempt and duration. */
    update(key, step) {
      const el = nodeEls.get(key);
      if (!el || !step) return;
      const status = step.status;
      el.g.setAttribute("class", `dag-node st-${status}${selected === key ? " selected" : ""}`);
      el.g.dataset.status = status;
      el.word.textContent = STEP_STATES[status] || word(status);
      const attempt = step.attempt > 1 || step.maxAttempts > 1 ? ` · try ${step.attempt}/${step.maxAttempts}` : "";
      el.meta.textContent = `${step.kind || kinds.get(key) || ""}${attempt}`;
      const ms = step.startedAt ? (step.finishedAt ? new Date(step.finishedAt) : Date.now()) - new Date(step.startedAt) : null;
      el.time.textContent = ms === null ? "" : duration(ms);
      if (step.startedAt && !step.finishedAt) el.time.dataset.since = step.startedAt;
      else delete el.time.dataset.since;
      el.title.textContent = `${key}: ${word(status)}${attempt}`;
      el.g.setAttribute("aria-label", `${key}, ${step.kind || kinds.get(key)}, ${word(status)}${attempt}`);
    },
    select(key) {
      selected = key;
      for (const [k, el] of nodeEls) {
        el.g.classList.toggle("selected", k === key);
        el.g.setAttribute("aria-pressed", String(k === key));
      }
      for (const path of edgeEls) {
        path.classList.toggle("on", path.dataset.from === key || path.dataset.to === key);
      }
    },
    focus(key) {
      nodeEls.get(key)?.g.focus();
    },
    /** Scroll the box so the step is in view (not the page). */
    reveal(key) {
      const node = plan.nodes.get(key);
      if (!node) return;
      const { clientWidth: w, clientHeight: h } = box;
      if (node.x < box.scrollLeft || node.x + W > box.scrollLeft + w) box.scrollLeft = Math.max(0, node.x - w / 3);
      if (node.y < box.scrollTop || node.y + H > box.scrollTop + h) box.scrollTop = Math.max(0, node.y - h / 3);
    },
  };
}
