// A form generated from a workflow's input JSON Schema: one labelled control per
// property (text, number, checkbox, choice, or JSON for objects and arrays). Without a
// schema, one JSON box. The server validates again; its errors land on the field named.

import { h, json } from "./ui.js";

function control(id, name, prop, required) {
  const common = { id, name, "data-input": name, required: required || null,
    "aria-describedby": prop.description ? `${id}-help` : null };
  if (Array.isArray(prop.enum)) {
    const select = h("select", common,
      required ? null : h("option", { value: "" }, "—"),
      prop.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
    if (prop.default !== undefined) select.value = JSON.stringify(prop.default);
    return { el: select, read: () => (select.value === "" ? undefined : JSON.parse(select.value)) };
  }
  const type = Array.isArray(prop.type) ? prop.type.find((t) => t !== "null") : prop.type;
  if (type === "boolean") {
    const box = h("input", { ...common, type: "checkbox", required: null, checked: prop.default === true });
    return { el: box, read: () => box.checked, check: true };
  }
  if (type === "number" || type === "integer") {
    const input = h("input", { ...common, type: "number", step: type === "integer" ? "1" : "any",
      min: prop.minimum ?? null, max: prop.maximum ?? null,
      value: prop.default !== undefined ? String(prop.default) : null });
    return { el: input, read: () => (input.value === "" ? undefined : Number(input.value)) };
  }
  if (type === "object" || type === "array" || type === undefined) {
    const area = h("textarea", { ...common, rows: 3, spellcheck: "false",
      placeholder: type === "array" ? "[ ]" : type === "object" ? "{ }" : "any JSON value" });
    if (prop.default !== undefined) area.value = json(prop.default);
    return {
      el: area,
      read: () => {
        if (area.value.trim() === "") return undefined;
        try {
          return JSON.parse(area.value);
        } catch (err) {
          throw new Error(`not valid JSON (${err.message})`);
        }
      },
    };
  }
  const long = (prop.maxLength ?? 0) > 200 || prop.format === "textarea";
  const kind = { email: "email", uri: "url", date: "date", "date-time": "datetime-local" }[prop.format] || "text";
  const input = long
    ? h("textarea", { ...common, rows: 4 })
    : h("input", { ...common, type: kind, maxlength: prop.maxLength ?? null,
      pattern: prop.pattern ?? null });
  if (prop.default !== undefined) input.value = String(prop.default);
  return {
    el: input,
    read: () => {
      if (input.value === "") return undefined;
      return kind === "datetime-local" ? new Date(input.value).toISOString() : input.value;
    },
  };
}

/**
 * Build the fields for `schema` into a fragment.
 * Returns {fields, collect(), showError(name, message), clearErrors()}.
 */
export function schemaForm(schema, idPrefix = "input") {
  const properties = schema && typeof schema === "object" ? schema.properties : null;
  const controls = new Map();
  const fields = [];
  const messages = new Map();
  if (properties && Object.keys(properties).length) {
    const required = new Set(schema.required || []);
    for (const [name, prop] of Object.entries(properties)) {
      const id = `${idPrefix}-${name}`;
      const c = control(id, name, prop || {}, required.has(name));
      const message = h("div", { class: "help", id: `${id}-error`, role: "alert" });
      const label = h("label", { for: id }, prop?.title || name, required.has(name) ? h("span", { class: "req" }, " *") : null);
      fields.push(h("div", { class: c.check ? "field check" : "field" },
        c.check ? [c.el, label] : [label, c.el],
        prop?.description ? h("div", { class: "help", id: `${id}-help` }, prop.description) : null,
        message));
      controls.set(name, { ...c, required: required.has(name), label: prop?.title || name });
      messages.set(name, message);
    }
  } else {
    const id = `${idPrefix}-json`;
    const area = h("textarea", { id, rows: 5, spellcheck: "false", "data-input": "*" }, "{}");
    const message = h("div", { class: "help", role: "alert" });
    fields.push(h("div", { class: "field" }, h("label", { for: id }, "Inputs (JSON object)"),
      h("div", { class: "help" }, "This workflow declares no input schema: any JSON object is accepted."),
      area, message));
    controls.set("*", { el: area, read: () => JSON.parse(area.value || "{}"), required: false, label: "Inputs" });
    messages.set("*", message);
  }

  function showError(name, text) {
    const target = messages.get(name) || messages.get("*") || [...messages.values()][0];
    if (!target) return;
    target.textContent = text;
    target.classList.add("req");
    const el = (controls.get(name) || controls.get("*"))?.el;
    el?.setAttribute("aria-invalid", "true");
    el?.focus();
  }

  function clearErrors() {
    for (const m of messages.values()) m.textContent = "";
    for (const c of controls.values()) c.el.removeAttribute("aria-invalid");
  }

  function collect() {
    clearErrors();
    if (controls.has("*")) {
      try {
        const value = controls.get("*").read();
        if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("must be a JSON object");
        return value;
      } catch (err) {
        showError("*", `Inputs: ${err.message}`);
        return null;
      }
    }
    const value = {};
    for (const [name, c] of controls) {
      let v;
      try {
        v = c.read();
      } catch (err) {
        showError(name, `${c.label}: ${err.message}`);
        return null;
      }
      if (v === undefined) {
        if (c.required) {
          showError(name, `${c.label} is required.`);
          return null;
        }
        continue;
      }
      value[name] = v;
    }
    return value;
  }

  return { fields, collect, showError, clearErrors };
}
