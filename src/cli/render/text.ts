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
    default:
      return p.bold(state);
  }
}

/** Aligned columns; the last column is not padded. */
export function table(rows: string[][], headers: string[], p: Paint): string {
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
  const lines = [`${p.bold(c.id)}  ${stateColor(c.state, p)}  v${c.version}  ${c.intent}`];
  if (c.plan_sha256) lines.push(`  plan      sha256 ${c.plan_sha256.slice(0, 12)}`);
  const granted = new Set(c.controls.granted);
  if (c.controls.required.length || c.controls.granted.length) {
    const req = c.controls.required.map((r) => (granted.has(r) ? p.green(r) : p.red(`${r} (missing)`)));
    lines.push(`  controls  required: ${req.join(', ') || '-'}; granted: ${c.controls.granted.join(', ') || '-'}`);
  }
  const valid = c.approvals.filter((a) => a.valid && a.plan_sha256 === c.plan_sha256);
  if (c.approvals.length) lines.push(`  approvals ${valid.map((a) => a.actor).join(', ') || 'none valid'} (${c.approvals.length - valid.length} void)`);
  if (c.runs.length) lines.push(`  runs      ${c.runs.join(', ')}`);
  if (c.running) lines.push(`  running   ${c.running.run_id} pid ${c.running.pid} since ${c.running.since}${c.running.alive === false ? p.red(' (process is gone)') : ''}`);
  if (c.pause) lines.push(`  paused    ${c.pause.reason}${c.pause.step_id ? ` before ${c.pause.step_id}` : ''} (by ${c.pause.requested_by})`);
  lines.push(`  updated   ${c.updated_at} (event ${c.history_seq})`);
  return lines.join('\n');
}
