/** Human-readable rendering shared by the handlers. */
import type { Contract } from '../../domain/contract.js';
import type { Paint } from '../io.js';

export function stateColor(state: string, p: Paint): string {
  switch (state) {
    case 'APPROVED':
    case 'COMPLETED':
    case 'ACCEPTED':
      return p.green(state);
    case 'FAILED':
      return p.red(state);
    case 'RUNNING':
    case 'AWAITING_APPROVAL':
      return p.cyan(state);
    case 'PAUSED':
    case 'REWOUND':
      return p.yellow(state);
    case 'CLOSED':
      return p.dim(state);
    default:
      return p.bold(state);
  }
}

/** Aligned columns; the last column is not padded. */
export function table(rowsIn: string[][], headers: string[], p: Paint): string {
  // A cell is one line whatever a user put into it (kair's own colour codes contain no newline).
  const rows = rowsIn.map((r) => r.map((cell) => cell.replace(/[\n\r\t]/g, (m) => escapeOne(m, false))));
  // eslint-disable-next-line no-control-regex -- stripping our own colour codes
  const visible = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;
  const all = [headers, ...rows];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => visible(r[i] ?? ''))));
  const line = (r: string[], head = false) =>
    r
      .map((cell, i) => {
        const c = head ? p.dim(cell) : cell;
        return i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - visible(cell));
      })
      .join('  ')
      .trimEnd();
  return [line(headers, true), ...rows.map((r) => line(r))].join('\n');
}

export function contractSummary(c: Contract & { running?: { alive?: boolean } }, p: Paint): string {
  const lines = [`${p.bold(c.id)}  ${stateColor(c.state, p)}  v${c.version}  ${oneLine(c.intent)}`];
  if (c.plan_sha256) lines.push(`  plan      sha256 ${c.plan_sha256.slice(0, 12)}`);
  const granted = new Set(c.controls.granted);
  if (c.controls.required.length || c.controls.granted.length) {
    const req = c.controls.required.map((r) => (granted.has(r) ? p.green(r) : p.red(`${r} (missing)`)));
    lines.push(`  controls  required: ${req.join(', ') || '-'}; granted: ${c.controls.granted.join(', ') || '-'}`);
  }
  const valid = c.approvals.filter((a) => a.valid && a.plan_sha256 === c.plan_sha256);
  if (c.approvals.length) lines.push(`  approvals ${valid.map((a) => oneLine(a.actor)).join(', ') || 'none valid'} (${c.approvals.length - valid.length} void)`);
  if (c.runs.length) lines.push(`  runs      ${c.runs.join(', ')}`);
  if (c.running) lines.push(`  running   ${c.running.run_id} pid ${c.running.pid} since ${c.running.since}${c.running.alive === false ? p.red(' (process is gone)') : ''}`);
  if (c.pause) lines.push(`  paused    ${c.pause.reason}${c.pause.step_id ? ` before ${c.pause.step_id}` : ''} (by ${oneLine(c.pause.requested_by)})`);
  lines.push(`  updated   ${c.updated_at} (event ${c.history_seq})`);
  return lines.join('\n');
}

const hex2 = (c: number) => `\\x${c.toString(16).padStart(2, '0')}`;
const hex4 = (c: number) => `\\u${c.toString(16).padStart(4, '0')}`;
// C0 and C1 controls, DEL, and the bidirectional overrides that can reorder what a line shows.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex -- exactly the colour codes painter() emits (io.ts)
const CONTROL_OR_SGR = /\u001b\[(?:3[1-6]|39|90|1|2|22)m|[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(ch: string, keepNewline: boolean): string {
  const c = ch.charCodeAt(0);
  if (ch === '\n') return keepNewline ? ch : '\\n';
  if (ch === '\t') return keepNewline ? ch : '\\t';
  if (ch === '\r') return '\\r';
  return c > 0xff ? hex4(c) : hex2(c);
}

/**
 * Human output as it reaches the terminal: every control character a user-supplied string could
 * carry (ESC, CR, BEL, C1, bidi overrides) is shown escaped, so an intent, id, actor or title
 * can never move the cursor, clear the screen or retitle the window. The line breaks and
 * tabs of the layout stay; kair's own colour codes stay when colour is on. --json output never
 * passes through here (JSON escapes controls itself).
 */
export function escapeControls(text: string, keepColour: boolean): string {
  return text.replace(keepColour ? CONTROL_OR_SGR : CONTROL, (m) => (m.length > 1 ? m : escapeOne(m, true)));
}

/** One user-supplied value on one line (a table cell, a summary field): line breaks escaped too. */
export function oneLine(s: string): string {
  return s.replace(CONTROL, (m) => escapeOne(m, false));
}
