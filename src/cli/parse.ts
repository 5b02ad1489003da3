/**
 * argv parsing from the declarative registry, without loading commander (it is loaded only to
 * render help). Options may appear before or after the command words; `--x=v` and `--` work.
 */
import { CONFIRM_LEXICON, isConfirmLang, normalizeLang, parseConfirmation } from '../domain/aec/confirm.js';
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
    // `kair help nosuch` is as unknown as `kair nosuch`: full help with exit 0 hid the typo.
    if (words.length === 0) return { command: null, args: [], opts, help: true, version };
    throw unknownCommand(words);
  }
  // A group matched by its bare word (`kair sim lst`): suggest among its subcommands.
  if (command.hidden && words.length > 1 && !help && COMMANDS.some((c) => c.name.startsWith(`${command.name} `))) {
    const subs = COMMANDS.filter((c) => !c.hidden && c.name.startsWith(`${command.name} `)).map((c) => c.name);
    if (!subs.includes(`${words[0]} ${words[1]}`)) throw unknownCommand(words, { subcommand: words[1], subcommands: subs.map((n) => n.slice(command.name.length + 1)) });
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

function unknownCommand(words: string[], extra: Record<string, unknown> = {}) {
  const names = [...new Set(COMMANDS.filter((c) => !c.hidden).map((c) => c.name))];
  const groups = new Set(names.filter((n) => n.includes(' ')).map((n) => n.split(' ')[0]!));
  // Two words are compared with the two-word names (`sim lst` → `sim list`), one with the rest.
  const typed = groups.has(words[0]!) && words[1] !== undefined ? `${words[0]} ${words[1]}` : words[0]!;
  const pool = typed.includes(' ') ? names.filter((n) => n.startsWith(`${words[0]} `)) : [...new Set(names.map((n) => n.split(' ')[0]!))];
  const hint = suggest(typed, pool);
  const seeHelp = typed.includes(' ') ? `kair ${words[0]} --help` : 'kair --help';
  // Nothing close: the nearest few still beat a bare refusal.
  const nearest = [...pool].sort((x, y) => distance(typed, x) - distance(typed, y)).slice(0, 3);
  const mean = hint ? `\`${hint}\`` : `one of ${nearest.map((n) => `\`${n}\``).join(', ')}`;
  return usage(`unknown command ${JSON.stringify(typed.slice(0, 80))}; did you mean ${mean}?`, {
    command: typed,
    ...extra,
    ...(hint ? { suggestion: hint } : {}),
    hint: hint ? `run \`kair ${hint} --help\`` : `run \`${seeHelp}\` for the commands`,
  });
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

/** `--lang` names a language of the confirmation lexicon; anything else is a typo, not "ambiguous". */
export function langOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const l = normalizeLang(String(value));
  if (!isConfirmLang(l)) {
    const langs = Object.keys(CONFIRM_LEXICON);
    throw usage(`--lang ${JSON.stringify(String(value).slice(0, 80))} is not a language of the confirmation lexicon: one of ${langs.join(', ')}`, {
      flag: '--lang',
      value,
      languages: langs,
      hint: `pass one of ${langs.join(', ')}`,
    });
  }
  return l;
}

/**
 * --confirm / --confirm-all of run and resume. With --dry-run an answer the lexicon cannot read
 * (`maybe`) is a usage error: the dry run would otherwise predict from a token the real run
 * records as ambiguous.
 */
export function confirmOptions(opts: Parsed['opts'], dryRun: boolean, checkLang = true): { confirm?: string; confirmAll?: boolean; lang?: string } {
  const lang = checkLang ? langOption(opts.lang) : (opts.lang as string | undefined);
  const one = opts.confirm as string | undefined;
  const all = opts.confirmAll as string | undefined;
  if (one !== undefined && all !== undefined) throw usage('give --confirm or --confirm-all, not both', { flags: ['--confirm', '--confirm-all'], hint: '--confirm-all answers every confirmation; --confirm only the first' });
  const token = one ?? all;
  const flag = one !== undefined ? '--confirm' : '--confirm-all';
  if (token !== undefined && dryRun) {
    const l = lang ?? 'en';
    const lex = CONFIRM_LEXICON[l as keyof typeof CONFIRM_LEXICON];
    if (parseConfirmation(token, l).result === 'ambiguous') {
      throw usage(`${flag} ${JSON.stringify(token.slice(0, 80))} is not an answer in ${l}: one of ${[...lex.affirmative, ...lex.negative].join(', ')}`, {
        flag,
        value: token,
        hint: `answer with one of ${[...lex.affirmative, ...lex.negative].join(', ')}`,
      });
    }
  }
  return { ...(token === undefined ? {} : { confirm: token }), ...(all !== undefined ? { confirmAll: true } : {}), ...(lang === undefined ? {} : { lang }) };
}
