// The selected step beside the graph: state, attempts, agent, tokens, cost, output
// (or the tokens streaming in), error, approval, and its inputs (its config as rendered).

import { STREAMING_KINDS, stateBadge, word } from "../states.js";
import { count, elapsed, empty, exact, h, money, pre, relTime } from "../ui.js";

/**
 * @param {object} args
 * @param {object} args.def       the step's definition (key, kind, config, dependsOn, retry)
 * @param {object|null} args.step the step's execution
 * @param {string|null} args.streamed  tokens received while it runs
 * @param {object[]} args.history the execution's events (this step's are picked out)
 * @param {Map} args.agents       agent id -> name
 * @param {HTMLTextAreaElement} args.comment  kept across renders: what the person typed
 * @param {(approved: boolean, button: HTMLButtonElement) => void} args.onApprove
 */
export function stepDetails({ def, step, streamed, history, agents, comment, onApprove }) {
  if (!def) return empty("Select a step", "Click a step in the graph (or focus it and press Enter).");
  const status = step?.status || "PENDING";
  const streaming = STREAMING_KINDS.has(def.kind) && (status === "RUNNING" || status === "RETRYING");
  const panel = h("section", { class: "panel details", "aria-labelledby": "step-title", "data-testid": "step-details",
    "data-step-key": def.key },
  h("h2", { id: "step-title" }, def.name && def.name !== def.key ? `${def.name} (${def.key})` : def.key),
  h("div", {}, stateBadge(status, { big: true }), h("span", { class: "sub" }, `  ${def.kind}`)));

  const facts = [
    ["Attempt", step?.attempt ? `${step.attempt} of ${step.maxAttempts}`
      : ["PENDING", "QUEUED"].includes(status) ? `none yet (up to ${step?.maxAttempts ?? def.retry?.maxAttempts ?? 1})` : "—"],
    def.kind === "AGENT" ? ["Agent", step?.agent ? agents.get(step.agent) || step.agent : `any with “${def.agentCapability}”`] : null,
    ["Started", step?.startedAt ? relTime(step.startedAt) : "—"],
    ["Duration", step?.startedAt ? elapsed(step.startedAt, step.finishedAt) : "—"],
    ["Tokens", count(step?.tokens ?? 0)],
    ["Cost", money(step?.costUsd ?? null)],
    ["Depends on", def.dependsOn.length ? def.dependsOn.join(", ") : "nothing (a root)"],
  ].filter(Boolean);
  if (status === "RETRYING" && step?.nextAttemptAt) {
    facts.push(["Next attempt", h("time", { datetime: step.nextAttemptAt, title: exact(step.nextAttemptAt) }, exact(step.nextAttemptAt))]);
  }
  panel.append(h("dl", {}, facts.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));

  if (status === "WAITING_APPROVAL" && step) {
    // The prompt the step asked with (its event), else the definition's.
    const asked = history.filter((e) => e.type === "STEP_WAITING_APPROVAL" && e.data?.stepKey === def.key).pop();
    const prompt = asked?.data?.prompt || def.config?.prompt;
    const approve = h("button", { type: "button", class: "good", "data-testid": "approve-button" }, "Approve");
    const reject = h("button", { type: "button", class: "bad", "data-testid": "reject-button" }, "Reject");
    approve.addEventListener("click", () => onApprove(true, approve));
    reject.addEventListener("click", () => onApprove(false, reject));
    panel.append(h("div", { class: "approval" },
      h("strong", {}, "Waiting for your approval"),
      prompt ? h("p", {}, prompt) : null,
      h("div", { class: "field" }, h("label", { for: comment.id }, "Comment (optional)"), comment),
      h("div", { class: "buttons" }, approve, reject)));
  }

  panel.append(h("h3", {}, "Output ", streaming ? h("span", { class: "streaming-label" }, "streaming…") : null));
  if (streaming) {
    panel.append(h("pre", { class: "stream", "data-testid": "step-output", "data-streaming": "true",
      "aria-live": "off" }, streamed || "waiting for the first tokens…"));
  } else {
    panel.append(pre(step?.output ?? (streamed || null), { "data-testid": "step-output" }));
  }
  if (step?.error) panel.append(h("h3", {}, "Error"), h("pre", { class: "error-box", "data-testid": "step-error" }, step.error));

  const attempts = history.filter((e) => e.data?.stepKey === def.key);
  panel.append(h("h3", {}, "Attempts and changes"));
  panel.append(attempts.length
    ? h("ol", { class: "sub" }, attempts.map((e) => h("li", {},
      h("span", { class: "mono" }, `#${e.position} `), `${word(e.data.status)} `,
      e.data.attempt ? `(attempt ${e.data.attempt}) ` : "", relTime(e.createdAt),
      e.data.error ? h("div", { class: "error-box" }, e.data.error) : null)))
    : h("p", { class: "sub" }, "Nothing has happened to this step yet."));

  // The config as rendered for the latest attempt; before that (or when rendering
  // failed), the definition's config as written.
  if (step?.inputs != null) {
    panel.append(h("h3", {}, "Inputs"), pre(step.inputs, { "data-testid": "step-inputs", "data-rendered": "true" }));
  } else {
    panel.append(h("h3", {}, "Inputs ", h("span", { class: "sub" }, "config (not yet rendered)")),
      pre(def.config || {}, { "data-testid": "step-inputs", "data-rendered": "false" }));
  }
  panel.append(h("p", { class: "sub" }, `Retries: up to ${def.retry?.maxAttempts ?? 1} attempts; timeout ${def.timeoutSeconds} s.`));
  return panel;
}
