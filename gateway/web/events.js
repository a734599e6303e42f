// What an event is, for display: its kind (icon and colour), label, one-line text and time;
// and how an event moves a run's derived state (the rules ingest applies, see
// proto/decisions.md), for the live run list. Pure functions.

import {fmtDuration, num, parseTs} from './fmt.js';

const KIND_LABELS = {
  tool: 'Tool use',
  result: 'Tool result',
  text: 'Text',
  thinking: 'Thinking',
  pre: 'Before tool use',
  post: 'After tool use',
  prompt: 'User prompt',
  hook: 'Hook',
  system: 'System',
  start: 'Start',
  complete: 'Completed',
  error: 'Error',
  stop: 'Stop',
  stalled: 'Stalled',
  other: 'Event',
};

const BY_EVENT_TYPE = {
  ToolUseBlock: 'tool',
  ToolResultBlock: 'result',
  TextBlock: 'text',
  ThinkingBlock: 'thinking',
  RedactedThinkingBlock: 'thinking',
  PreToolUse: 'pre',
  PostToolUse: 'post',
  PostToolUseFailure: 'error',
  UserPromptSubmit: 'prompt',
  Notification: 'hook',
  Stop: 'stop',
  SubagentStop: 'stop',
  SubagentStart: 'start',
  StopFailure: 'error',
  PermissionRequest: 'hook',
  SessionStart: 'hook',
  SessionEnd: 'hook',
  PreCompact: 'hook',
  AssistantMessage: 'text',
  UserMessage: 'prompt',
  SystemMessage: 'system',
  ResultMessage: 'complete',
};

// Event types offered in the type filter before any have been seen.
export const COMMON_EVENT_TYPES = [
  'ToolUseBlock',
  'ToolResultBlock',
  'TextBlock',
  'ThinkingBlock',
  'PreToolUse',
  'PostToolUse',
  'UserPromptSubmit',
  'Notification',
  'Stop',
  'SubagentStop',
  'SessionStart',
  'adw_start',
  'step_start',
  'step_complete',
  'adw_complete',
  'adw_failed',
];

export function isFailure(s) {
  return typeof s === 'string' && /fail|error|abort|crash|timeout/i.test(s);
}

// -> {kind, kindLabel, name}: `name` is what the event calls itself (event_type, or event for
// a system event).
export function classify(ev) {
  const system = ev.type === 'system';
  const name = String(
    (system ? ev.event : ev.event_type) ?? ev.event_type ?? ev.event ?? ev.type ?? '',
  );
  let kind;
  if (isFailure(ev.status) || /error|fail/i.test(name)) kind = 'error';
  else if (system) {
    if (name === 'run_stalled') kind = 'stalled';
    else if (/_start$|^start/.test(name)) kind = 'start';
    else if (/_complete$|_completed$|_done$|^complete/.test(name)) kind = 'complete';
    else if (/stop/.test(name)) kind = 'stop';
    else kind = 'system';
  } else {
    kind = BY_EVENT_TYPE[name] || (/Block$/.test(name) ? 'text' : 'other');
    if (kind === 'other' && ev.payload && typeof ev.payload.hook_event_name === 'string')
      kind = 'hook';
  }
  return {kind, kindLabel: KIND_LABELS[kind], name};
}

// The line a card shows: the summary, else something drawn from the event.
export function summaryText(ev) {
  if (typeof ev.summary === 'string' && ev.summary !== '') return ev.summary;
  const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
  const parts = [];
  if (typeof p.tool_name === 'string') parts.push(p.tool_name);
  for (const k of ['file_path', 'command', 'path', 'pattern', 'url', 'message', 'text']) {
    if (typeof p[k] === 'string' && p[k]) {
      parts.push(p[k]);
      break;
    }
  }
  if (ev.type === 'system') {
    if (typeof ev.event === 'string') parts.push(ev.event.replace(/_/g, ' '));
    if (ev.status) parts.push(String(ev.status));
    if (Number.isFinite(ev.duration_ms)) parts.push(fmtDuration(ev.duration_ms));
  }
  return parts.length ? parts.join(' · ') : '(no summary)';
}

// The event's own time (timestamp), else when ingest received it; ms since the epoch or NaN.
export function eventTime(ev) {
  const t = parseTs(ev.timestamp);
  return Number.isFinite(t) ? t : parseTs(ev.received_at);
}

function nonNegInt(v) {
  return Number.isInteger(v) && v >= 0 ? v : 0;
}

// The status a system event gives its run, or null (proto/decisions.md "Run status"): only
// run-level events count. adw_complete and adw_failed (whatever their step), or a system
// event without a step that carries a status. A step's events set the step's status only.
export function impliedRunStatus(ev) {
  if (ev.type !== 'system') return null;
  if (ev.event === 'adw_complete') return 'completed';
  if (ev.event === 'adw_failed') return 'failed';
  if ((ev.step === undefined || ev.step === null) && typeof ev.status === 'string' && ev.status)
    return ev.status;
  return null;
}

// The status a system event with a step gives that step, or null (as ingest's rollup).
export function impliedStepStatus(ev) {
  if (ev.type !== 'system' || typeof ev.step !== 'string' || !ev.step) return null;
  if (typeof ev.status === 'string' && ev.status) return ev.status;
  if (ev.event === 'step_start') return 'running';
  if (ev.event === 'step_complete') return 'completed';
  if (ev.event === 'step_failed') return 'failed';
  return null;
}

// Whether the event is ingest's stall notice (a run with no event for a while).
export function isStall(ev) {
  return ev.type === 'system' && ev.event === 'run_stalled';
}

// A StopFailure's reason (the hook body's `error`, else the summary), or null.
export function stopFailureReason(ev) {
  if (ev.type !== 'adw_event' || ev.event_type !== 'StopFailure') return null;
  const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
  if (typeof p.error === 'string' && p.error) return p.error;
  return typeof ev.summary === 'string' && ev.summary ? ev.summary : 'StopFailure';
}

// The subagent an event belongs to (its `agent_id`), or null for the main agent.
export function agentIdOf(ev) {
  return typeof ev.agent_id === 'string' && ev.agent_id ? ev.agent_id : null;
}

// The tool call an event belongs to, or null: payload.tool_use_id (hooks, ToolResultBlock),
// else payload.id of a stream-json ToolUseBlock.
export function toolUseId(ev) {
  const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : null;
  if (!p || ev.type === 'system') return null;
  if (typeof p.tool_use_id === 'string' && p.tool_use_id) return p.tool_use_id;
  if (ev.event_type === 'ToolUseBlock' && typeof p.id === 'string' && p.id) return p.id;
  return null;
}

// What one event says of its tool call's outcome: 'failed', 'completed' or null (no result).
export function toolEventOutcome(ev) {
  const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
  if (ev.event_type === 'PostToolUseFailure') return 'failed';
  if (ev.event_type === 'ToolResultBlock') return p.is_error === true ? 'failed' : 'completed';
  if (ev.event_type === 'PostToolUse') return 'completed';
  return null;
}

// A tool call's outcome from its events: 'failed' wins, then 'completed', else 'running'.
export function toolOutcome(events) {
  let out = 'running';
  for (const ev of events) {
    const o = toolEventOutcome(ev);
    if (o === 'failed') return 'failed';
    if (o === 'completed') out = 'completed';
  }
  return out;
}

// The target part of a tool summary ("Bash: npm test" -> "npm test", "Write /a.py" -> "/a.py"),
// without a PostToolUse's outcome suffix or a PermissionRequest's prefix.
export function toolTarget(tool, summary) {
  let s = typeof summary === 'string' ? summary : '';
  s = s.replace(/^Permission for /, '');
  s = s.replace(/ \((ok|failed|failed: .*|interrupted.*)\)$/, '');
  if (tool) {
    if (s.startsWith(`${tool} result: `) || s.startsWith(`${tool} error: `)) return '';
    if (s.startsWith(`${tool}: `)) return s.slice(tool.length + 2);
    if (s.startsWith(`${tool} `)) return s.slice(tool.length + 1);
    if (s === tool) return '';
  }
  return s;
}

// A run row for an adw_id first seen in an event.
export function emptyRun(adwId) {
  return {
    adw_id: adwId,
    status: 'running',
    stalled: false,
    failed_steps: [],
    current_step: null,
    event_count: 0,
    cost_usd: 0,
    tokens: 0,
    input_tokens: 0,
    output_tokens: 0,
    cache_read_tokens: 0,
    cache_creation_tokens: 0,
    first_ts: null,
    last_ts: null,
    first_id: null,
    last_id: 0,
    updated_at: null,
  };
}

// Adds one event to a run row (mutates and returns `run`), as ingest does in its transaction.
// The caller skips events the row already counts (ev.id <= run.last_id).
export function applyEventToRun(run, ev) {
  const p = ev.payload && typeof ev.payload === 'object' ? ev.payload : {};
  run.event_count = (run.event_count || 0) + 1;
  const cost = num(p.cost_usd);
  if (Number.isFinite(cost) && cost >= 0) run.cost_usd = (run.cost_usd || 0) + cost;
  const it = nonNegInt(p.input_tokens),
    ot = nonNegInt(p.output_tokens);
  const cr = nonNegInt(p.cache_read_tokens),
    cc = nonNegInt(p.cache_creation_tokens);
  run.input_tokens = (run.input_tokens || 0) + it;
  run.output_tokens = (run.output_tokens || 0) + ot;
  run.cache_read_tokens = (run.cache_read_tokens || 0) + cr;
  run.cache_creation_tokens = (run.cache_creation_tokens || 0) + cc;
  run.tokens =
    (run.tokens || 0) +
    (Number.isInteger(p.tokens) && p.tokens >= 0 ? p.tokens : it + ot + cr + cc);
  if (typeof ev.step === 'string' && ev.step) run.current_step = ev.step;
  const st = impliedRunStatus(ev);
  if (st) run.status = st;
  run.stalled = isStall(ev); // the run's next event clears it
  const ss = impliedStepStatus(ev);
  if (ss) {
    const failed = (Array.isArray(run.failed_steps) ? run.failed_steps : []).filter(
      (s) => s !== ev.step,
    );
    if (isFailure(ss)) failed.push(ev.step);
    run.failed_steps = failed;
  }
  const ts = eventTime(ev);
  if (Number.isFinite(ts)) {
    const iso = new Date(ts).toISOString();
    if (!run.first_ts || parseTs(run.first_ts) > ts) run.first_ts = iso;
    if (!run.last_ts || parseTs(run.last_ts) < ts) run.last_ts = iso;
  }
  if (run.first_id == null) run.first_id = ev.id;
  run.last_id = Math.max(run.last_id || 0, ev.id);
  if (ev.received_at) run.updated_at = ev.received_at;
  return run;
}

// Status -> {icon, cls}: never colour alone, the text goes with it.
export function statusLook(status) {
  const s = String(status || 'unknown');
  if (s === 'running' || s === 'started' || s === 'in_progress')
    return {icon: 'running', cls: 'running'};
  if (s === 'completed' || s === 'complete' || s === 'success' || s === 'succeeded' || s === 'ok')
    return {icon: 'completed', cls: 'completed'};
  if (isFailure(s)) return {icon: 'failed', cls: 'failed'};
  return {icon: 'unknown', cls: 'other'};
}
