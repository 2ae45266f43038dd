// DOM helpers shared by the views: element builders (text only, never HTML from data),
// error boxes, announcements, relative times that tick, formatting.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, props, children) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.setAttribute("class", value);
    else if (name === "text") el.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name in el && !(el instanceof SVGElement) && typeof value !== "string") {
      el[name] = value;
    } else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h("a", {href, class}, "text", child…). */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element. */
export function s(tag, props, ...children) {
  return build(document.createElementNS(SVG_NS, tag), props, children);
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Re-render `container` with `render()` without losing the keyboard focus inside it:
 * the element with the same data-testid (or id) gets it back. */
export function keepFocus(container, render) {
  const active = document.activeElement;
  const inside = active && active !== container && container.contains(active);
  const caret = inside && "selectionStart" in active ? [active.selectionStart, active.selectionEnd] : null;
  render();
  if (!inside || document.activeElement === active) return;
  if (container.contains(active)) {
    active.focus(); // the same element, moved: as the person left it
    if (caret) active.setSelectionRange(...caret);
    return;
  }
  const key = active.dataset?.testid;
  const again = key ? container.querySelector(`[data-testid="${key}"]`) : active.id && document.getElementById(active.id);
  again?.focus();
}

// ---- errors and announcements -------------------------------------------------------

/** An API error as the person sees it: message, code, field and request id. */
export function errorBox(err, { title } = {}) {
  const meta = [err.code && `code ${err.code}`, err.field && `field ${err.field}`,
    err.requestId && `request ${err.requestId}`].filter(Boolean).join(" · ");
  return h("div", { class: "error-box", role: "alert", "data-testid": "error" },
    title ? h("strong", {}, `${title}: `) : null,
    h("span", {}, err.message || String(err)),
    meta ? h("div", { class: "meta" }, meta) : null);
}

/** Show an error that belongs to no form: in the page's alert area, dismissible. */
export function alertError(err, title) {
  const area = document.querySelector(".alerts");
  const box = errorBox(err, { title });
  box.dataset.title = title || "";
  for (const old of [...area.children]) if (old.dataset.title === box.dataset.title) old.remove(); // the latest only
  const close = h("button", { type: "button", class: "quiet", onclick: () => box.remove() }, "Dismiss");
  box.append(close);
  area.append(box);
  while (area.children.length > 4) area.firstElementChild.remove();
}

export function announce(text) {
  const region = document.querySelector("[data-announcer]");
  region.textContent = "";
  setTimeout(() => { region.textContent = text; }, 30);
}

export function toast(text, { bad = false } = {}) {
  const el = h("div", { class: bad ? "toast bad" : "toast" }, text);
  const area = document.querySelector(".toasts");
  area.append(el);
  while (area.children.length > 2) area.firstElementChild.remove();
  setTimeout(() => el.remove(), 4000);
}

export function empty(title, ...rest) {
  return h("div", { class: "empty" }, h("strong", {}, title), ...rest);
}

// ---- time ---------------------------------------------------------------------------

export function exact(ts) {
  return ts ? new Date(ts).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "";
}

export function ago(ts, now = Date.now()) {
  const secs = Math.round((now - new Date(ts).getTime()) / 1000);
  if (secs < 5) return "just now";
  if (secs < 60) return `${secs} s ago`;
  if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
  if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
  return `${Math.floor(secs / 86400)} d ago`;
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const secs = ms / 1000;
  if (secs < 60) return `${secs.toFixed(secs < 10 ? 1 : 0)} s`;
  const mins = Math.floor(secs / 60);
  if (mins < 60) return `${mins} min ${Math.floor(secs % 60)} s`;
  return `${Math.floor(mins / 60)} h ${mins % 60} min`;
}

/** "12 s ago", with the exact time on hover; ticks. */
export function relTime(ts, prefix = "") {
  if (!ts) return h("span", { class: "sub" }, "—");
  return h("time", { datetime: ts, title: exact(ts), "data-rel": ts, "data-prefix": prefix },
    `${prefix}${ago(ts)}`);
}

/** The time between start and end; ticks while there is no end. */
export function elapsed(start, end) {
  if (!start) return h("span", { class: "sub" }, "—");
  const el = h("span", { class: "mono", title: `${exact(start)} → ${end ? exact(end) : "now"}` });
  if (end) el.textContent = duration(new Date(end) - new Date(start));
  else {
    el.dataset.since = start;
    el.textContent = duration(Date.now() - new Date(start));
  }
  return el;
}

setInterval(() => {
  const now = Date.now();
  for (const el of document.querySelectorAll("[data-rel]")) {
    el.textContent = `${el.dataset.prefix || ""}${ago(el.dataset.rel, now)}`;
  }
  for (const el of document.querySelectorAll("[data-since]")) {
    el.textContent = duration(now - new Date(el.dataset.since));
  }
}, 1000);

// ---- values -------------------------------------------------------------------------

export function money(usd) {
  if (usd === null || usd === undefined) return "—";
  if (usd === 0) return "$0";
  if (usd < 0.01) return `$${Number(usd.toPrecision(2))}`; // $0.0000027, not $0.00000
  return `$${usd.toFixed(usd < 10 ? 4 : 2)}`;
}

export function count(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString();
}

/** "1 step", "3 steps". */
export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

export function json(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

export function pre(value, props = {}) {
  return h("pre", props, value === null || value === undefined ? "—" : json(value));
}

export function short(id) {
  return id ? String(id).slice(0, 8) : "";
}

/** A submit handler that disables the button while it runs and shows the error. */
export function busy(button, fn) {
  return async (...args) => {
    if (button.disabled) return;
    button.disabled = true;
    try {
      await fn(...args);
    } finally {
      button.disabled = false;
    }
  };
}
