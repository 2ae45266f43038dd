// Every subscription document the console sends, in one place: the real-time contract
// (DESIGN §7) is what these rely on, so a change to it is a change here.

const STEP = `id executionId stepKey kind status attempt maxAttempts agent inputs output error
  costUsd tokens startedAt finishedAt nextAttemptAt`;

/** An execution's every state change, each as it was at that event (`data` as stored);
 * `after` resumes from a position. */
export const EXECUTION_UPDATED = `subscription ExecutionUpdated($id: ID!, $after: Int) {
  executionUpdated(id: $id, after: $after) {
    position version type data
    execution { id status error outputs costUsd tokens startedAt finishedAt }
    step { ${STEP} } } }`;

/** A row of the executions list: its status and step progress. */
export const EXECUTION_STATUS = `subscription ExecutionStatus($id: ID!, $after: Int) {
  executionUpdated(id: $id, after: $after) {
    position
    execution { id status error costUsd tokens startedAt finishedAt }
    step { id status } } }`;

/** The text an LLM or AGENT step streams, attempt after attempt: what the running attempt
 * has produced so far, then each piece; a `done` chunk ends an attempt. */
export const STEP_OUTPUT = `subscription StepOutput($id: ID!) {
  stepOutputChunks(stepExecutionId: $id) { attempt text done status } }`;

export const NOTIFICATION_RECEIVED = `subscription Inbox { notificationReceived {
  id subject body data priority status createdAt readAt } }`;

export const AGENT_STATUS = `subscription Agents { agentStatusChanged {
  id name role description capabilities provider model maxConcurrency currentLoad status
  lastError } }`;
