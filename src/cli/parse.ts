/**
 * argv parsing from the declarative registry, without loading commander (it is loaded only to
 * render help). Options may appear before or after the command words; `--x=v` and `--` work.
 */
import { kairError } from '../domain/errors.js';
import type { CommandDef, OptionDef } from './registry.js';
import { COMMANDS, GLOBAL_OPTIONS } from './registry.js';

export interface Parsed {
  command: CommandDef | null;
  args: string[];
  opts: Record<string, string | boolean | string[] | undefined>;
  help: boolean;
  version: boolean;
}

function findOption(defs: OptionDef[], token: string): OptionDef | undefined {
  return defs.find((d) => d.long === token || d.short === token || d.aliases?.includes(token));
}

/** Levenshtein distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

export function suggest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function usage(message: string, details: Record<string, unknown> = {}) {
  return kairError('USAGE_ERROR', message, details);
}

export function parseArgv(argv: string[]): Parsed {
  const opts: Parsed['opts'] = {};
  const words: string[] = [];
  let rest: string[] = [];
  const pending: string[] = [];
  // First pass: split globals from the rest so the command words can be found.
  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') {
      rest = argv.slice(i + 1);
      break;
    }
    const [name, inline] = tok.startsWith('--') && tok.includes('=') ? [tok.slice(0, tok.indexOf('=')), tok.slice(tok.indexOf('=') + 1)] : [tok, undefined];
    const g = findOption(GLOBAL_OPTIONS, name);
    if (g) {
      if (g.value) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw usage(`${g.long} needs a value (<${g.value}>)`, { flag: g.long });
        opts[g.key] = v;
      } else {
        opts[g.key] = true;
      }
      continue;
    }
    pending.push(tok);
    if (!tok.startsWith('-') || tok === '-') words.push(tok);
  }
  // `kair help [command…]` is `kair [command…] --help`.
  if (words[0] === 'help') {
    pending.splice(pending.indexOf('help'), 1);
    words.shift();
    opts.help = true;
  }
  const help = opts.help === true;
  const version = opts.version === true;
  const command = matchCommand(pending);
  if (!command) {
    if (words.length === 0 || help) return { command: null, args: [], opts, help: true, version };
    const first = words[0]!;
    const names = [...new Set(COMMANDS.filter((c) => !c.hidden).map((c) => c.name.split(' ')[0]!))];
    const hint = suggest(first, names);
    throw usage(`unknown command ${JSON.stringify(first)}${hint ? `; did you mean \`kair ${hint}\`?` : '; see `kair --help`'}`, {
      command: first,
      ...(hint ? { suggestion: hint } : {}),
    });
  }
  // Second pass: the command's own options and positionals.
  const nameWords = command.name.split(' ').length;
  let skipped = 0;
  const args: string[] = [];
  const tokens = pending;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (skipped < nameWords && !tok.startsWith('-')) {
      skipped++;
      continue;
    }
    if (tok.startsWith('-') && tok !== '-') {
      const [name, inline] = tok.startsWith('--') && tok.includes('=') ? [tok.slice(0, tok.indexOf('=')), tok.slice(tok.indexOf('=') + 1)] : [tok, undefined];
      const def = findOption(command.options, name);
      if (!def) {
        const hint = suggest(name, [...command.options.map((o) => o.long), ...GLOBAL_OPTIONS.map((o) => o.long)]);
        throw usage(`unknown option ${name} for \`kair ${command.name}\`${hint ? `; did you mean ${hint}?` : ''}`, { flag: name });
      }
      if (def.value) {
        const v = inline ?? tokens[++i];
        if (v === undefined) throw usage(`${def.long} needs a value (<${def.value}>)`, { flag: def.long });
        if (def.repeat) {
          const list = (opts[def.key] as string[] | undefined) ?? [];
          list.push(v);
          opts[def.key] = list;
        } else {
          opts[def.key] = v;
        }
      } else {
        opts[def.key] = true;
      }
      continue;
    }
    args.push(tok);
  }
  args.push(...rest);
  if (!help) checkArity(command, args);
  return { command, args, opts, help, version };
}

function matchCommand(tokens: string[]): CommandDef | null {
  const words = tokens.filter((t) => !t.startsWith('-') || t === '-');
  // Longest name first: `grant list` before `grant`, `sim register` before a bare group.
  const byLength = [...COMMANDS].sort((a, b) => b.name.split(' ').length - a.name.split(' ').length);
  for (const c of byLength) {
    const parts = c.name.split(' ');
    if (parts.every((p, i) => words[i] === p)) {
      if (c.exactWords && words.length !== parts.length) continue;
      return c;
    }
  }
  return null;
}

function checkArity(command: CommandDef, args: string[]): void {
  const required = command.args.filter((a) => a.required).length;
  const variadic = command.args.some((a) => a.variadic);
  if (args.length < required) {
    const missing = command.args[args.length]!;
    throw usage(`\`kair ${command.name}\` needs <${missing.name}>; usage: kair ${command.name} ${command.args.map((a) => (a.required ? `<${a.name}${a.variadic ? '...' : ''}>` : `[${a.name}]`)).join(' ')}`, {
      argument: missing.name,
    });
  }
  if (!variadic && args.length > command.args.length) {
    throw usage(`\`kair ${command.name}\` takes ${command.args.length} argument(s), got ${args.length}: unexpected ${JSON.stringify(args[command.args.length])}`, {
      argument: args[command.args.length],
    });
  }
}

export function intOption(value: unknown, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw usage(`${flag} expects a whole number${min > 0 ? ` ≥ ${min}` : ''}, got ${JSON.stringify(value)}`, { flag, value });
  }
  return n;
}
