// Every subscription document the console sends, in one place: the real-time contract
// (DESIGN §7) is what these rely on, so a change to it is a change here.

const STEP = `id executionId stepKey kind status attempt maxAttempts agent output error
  costUsd tokens startedAt finishedAt nextAttemptAt`;

/** An execution's every state change; `after` resumes from a position. */
export const EXECUTION_UPDATED = `subscription ExecutionUpdated($id: ID!, $after: Int) {
  executionUpdated(id: $id, after: $after) {
    position version type
    execution { id status error outputs costUsd tokens startedAt finishedAt }
    step { ${STEP} } } }`;

/** A row of the executions list: its status and step progress. */
export const EXECUTION_STATUS = `subscription ExecutionStatus($id: ID!, $after: Int) {
  executionUpdated(id: $id, after: $after) {
    position
    execution { id status error costUsd tokens startedAt finishedAt }
    step { id status } } }`;

/** The tokens of a running LLM or AGENT step. */
export const STEP_OUTPUT = `subscription StepOutput($id: ID!) { stepOutput(stepExecutionId: $id) }`;

export const NOTIFICATION_RECEIVED = `subscription Inbox { notificationReceived {
  id subject body data priority status createdAt readAt } }`;

export const AGENT_STATUS = `subscription Agents { agentStatusChanged {
  id name role description capabilities provider model maxConcurrency currentLoad status
  lastError } }`;
