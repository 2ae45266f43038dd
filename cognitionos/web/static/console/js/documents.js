// Every query and mutation the console sends (subscriptions: subscriptions.js).

const AUTH = "accessToken refreshToken expiresIn user { id email fullName role }";

export const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) { ${AUTH} } }`;
export const REFRESH = `mutation Refresh($refreshToken: String!) {
  refreshToken(refreshToken: $refreshToken) { ${AUTH} } }`;
export const LOGOUT = `mutation Logout($refreshToken: String!) { logout(refreshToken: $refreshToken) }`;
export const ME = `query Me { me { id email fullName role } }`;

const STEP = `id executionId stepKey kind status attempt maxAttempts agent inputs output error
  costUsd tokens startedAt finishedAt nextAttemptAt`;
const EXECUTION_ROW = `id status error costUsd tokens createdAt startedAt finishedAt
  workflow { key version name } steps { id status }`;

export const EXECUTIONS = `query Executions($first: Int, $after: String, $filter: ExecutionFilter) {
  executions(first: $first, after: $after, filter: $filter) {
    edges { node { ${EXECUTION_ROW} } }
    pageInfo { hasNextPage endCursor } } }`;

export const EXECUTION = `query Execution($id: ID!) { execution(id: $id) {
  id status inputs outputs error costUsd tokens createdAt startedAt finishedAt
  workflow { id key version name
    steps { key name kind agentCapability config dependsOn timeoutSeconds
      retry { maxAttempts initialDelaySeconds backoffFactor maxDelaySeconds } } }
  steps { ${STEP} } } }`;

export const EVENTS = `query Events($streamId: ID!, $after: Int) {
  events(streamId: $streamId, after: $after) { position version type data createdAt } }`;

export const CANCEL = `mutation Cancel($id: ID!) { cancelExecution(id: $id) { id status } }`;
export const RETRY = `mutation Retry($id: ID!) { retryExecution(id: $id) { id status } }`;
export const APPROVE = `mutation Approve($id: ID!, $approved: Boolean!, $comment: String) {
  approveStep(stepExecutionId: $id, approved: $approved, comment: $comment) { ${STEP} } }`;

export const WORKFLOW_KEYS = `query WorkflowKeys { workflows(first: 100) { edges { node { key } } } }`;
export const WORKFLOWS = `query Workflows($first: Int, $after: String, $filter: WorkflowFilter) {
  workflows(first: $first, after: $after, filter: $filter) {
    edges { node { id key version name description tags createdAt steps { key kind } } }
    pageInfo { hasNextPage endCursor } } }`;
export const WORKFLOW = `query Workflow($key: String!, $version: String) {
  workflow(key: $key, version: $version) {
    id key version name description tags inputSchema metadata createdAt
    steps { key name kind agentCapability config dependsOn timeoutSeconds
      retry { maxAttempts initialDelaySeconds backoffFactor maxDelaySeconds } }
    executions { id status createdAt finishedAt } }
  versions: workflows(first: 100, filter: { key: $key }) { edges { node { version createdAt } } } }`;
export const EXECUTE = `mutation Execute($input: ExecuteWorkflowInput!) {
  executeWorkflow(input: $input) { id status } }`;

export const UNREAD = `query Unread { unreadCount }`;
export const NOTIFICATIONS = `query Inbox($first: Int, $after: String, $unreadOnly: Boolean!) {
  notifications(first: $first, after: $after, unreadOnly: $unreadOnly) {
    edges { node { id subject body data priority status createdAt readAt } }
    pageInfo { hasNextPage endCursor } }
  unreadCount }`;
export const MARK_READ = `mutation MarkRead($ids: [ID!]!) { markNotificationsRead(ids: $ids) }`;
export const MARK_ALL_READ = `mutation MarkAllRead { markAllNotificationsRead }`;

const MEMORY = `id content type scope scopeId importance confidence accessCount metadata createdAt`;
export const SEARCH_MEMORIES = `query Search($query: String!, $limit: Int!, $filter: MemoryFilter) {
  searchMemories(query: $query, limit: $limit, filter: $filter) {
    score similarity rank vectorRank textRank recency memory { ${MEMORY} } } }`;
export const MEMORIES = `query Memories($first: Int) {
  memories(first: $first) { edges { node { ${MEMORY} } } } }`;

export const AGENTS = `query Agents { agents {
  id name role description capabilities provider model maxConcurrency currentLoad status
  lastError } }`;
export const AGENT_NAMES = `query AgentNames { agents { id name role } }`;

export const USAGE = `query Usage($since: DateTime) {
  byDay: llmUsage(since: $since, groupBy: [DAY]) {
    day calls failures tokensIn tokensOut costUsd unpricedCalls }
  byModel: llmUsage(since: $since, groupBy: [PROVIDER, MODEL]) {
    provider model calls failures tokensIn tokensOut costUsd unpricedCalls }
  budget { monthlyUsd spentUsd } }`;
