// The words for every state; their colours live in console.css (.st-<STATE>).

import { h } from "./ui.js";

export const STEP_STATES = {
  PENDING: "pending",
  QUEUED: "queued",
  RUNNING: "running",
  RETRYING: "retrying",
  WAITING_APPROVAL: "waiting for approval",
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  SKIPPED: "skipped",
  CANCELLED: "cancelled",
};

export const EXECUTION_STATES = {
  PENDING: "pending",
  RUNNING: "running",
  WAITING: "waiting for approval",
  SUCCEEDED: "succeeded",
  FAILED: "failed",
  CANCELLED: "cancelled",
};

export const AGENT_STATES = { IDLE: "idle", BUSY: "busy", ERROR: "error", OFFLINE: "offline" };

export const TERMINAL_EXECUTION = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);
export const TERMINAL_STEP = new Set(["SUCCEEDED", "FAILED", "SKIPPED", "CANCELLED"]);
export const STREAMING_KINDS = new Set(["LLM", "AGENT"]);

export function word(status) {
  return STEP_STATES[status] || EXECUTION_STATES[status] || AGENT_STATES[status] ||
    String(status || "").toLowerCase();
}

/** The state as a coloured dot and its word. */
export function stateBadge(status, { big = false } = {}) {
  return h("span", { class: `state st-${status}${big ? " big" : ""}`, "data-state": status },
    word(status));
}
