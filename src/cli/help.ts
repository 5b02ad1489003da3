/** Help text, rendered by commander from the registry (loaded only for --help). */
import { Command } from 'commander';
import type { CommandDef } from './registry.js';
import { COMMANDS, GLOBAL_OPTIONS } from './registry.js';

function globalFlags(o: (typeof GLOBAL_OPTIONS)[number]) {
  return [o.short, o.long, ...(o.aliases ?? [])].filter(Boolean).join(', ') + (o.value ? ` <${o.value}>` : '');
}

const TRAILER = `
Example:
  $ kair propose "Add chat" --id chat && kair plan chat --file plan.json && kair request-approval chat && kair approve chat && kair run chat --json

Exit status: 0 ok · 1 bug · 2 usage/validation · 3 refused by a gate · 4 not found · 5 execution failed · 6 busy · 7 integrity
Every command takes --json: one JSON document on stdout, {"ok": true, ...} or {"ok": false, "error": {...}}.
Run \`kair <command> --help\` (or \`kair help <command>\`) for a command's options and an example.
`;

export function helpText(cmd: CommandDef | null, version: string): string {
  const program = new Command('kair').description('kair — the authority layer for agent work: contracts, approvals bound to an exact plan, controls, governed runs, rewinds.').version(version, '-V, --version');
  program.helpOption('-h, --help', 'show help');
  for (const g of GLOBAL_OPTIONS) if (g.key !== 'help' && g.key !== 'version') program.option(globalFlags(g), g.description);
  program.configureHelp({ sortSubcommands: false, showGlobalOptions: true });
  const byName = new Map<string, Command>();
  for (const c of COMMANDS.filter((x) => !x.hidden)) {
    const sub = new Command(c.name).description(c.summary);
    for (const a of c.args) sub.argument(a.required ? `<${a.name}${a.variadic ? '...' : ''}>` : `[${a.name}]`);
    for (const o of c.options) sub.option(`${o.long}${o.value ? ` <${o.value}>` : ''}`, o.description + (o.repeat ? ' (repeatable)' : ''));
    sub.helpOption('-h, --help', 'show help');
    program.addCommand(sub);
    byName.set(c.name, sub);
  }
  // helpInformation() leaves out addHelpText sections, so the trailers are appended here.
  if (!cmd) return program.helpInformation() + TRAILER;
  const sub = byName.get(cmd.name);
  if (!sub) return groupHelp(cmd);
  return sub.helpInformation() + `\nGlobal options: ${GLOBAL_OPTIONS.map((g) => globalFlags(g)).join(', ')}\n\nExample:\n  $ ${cmd.example}\n`;
}

/** `kair sim --help`, `kair help access`: a command group lists its subcommands with an example each. */
function groupHelp(group: CommandDef): string {
  const subs = COMMANDS.filter((c) => !c.hidden && c.name.startsWith(`${group.name} `));
  const width = Math.max(...subs.map((c) => c.name.length));
  return [
    `Usage: kair ${group.name} <subcommand> [options]`,
    '',
    'Subcommands:',
    ...subs.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Examples:',
    ...subs.map((c) => `  $ ${c.example}`),
    '',
    `Run \`kair ${group.name} <subcommand> --help\` for a subcommand's options.`,
    '',
  ].join('\n');
}
