/**
 * Completion scripts generated from the registry, one native script per shell (bash, zsh, fish)
 * sharing one model: the words typed so far minus options and their values (so `kair --dir X
 * st<TAB>` completes a command), then by position: commands, a group's subcommands, contract ids
 * where an `<id>` goes, controls after `grant|revoke|require|unrequire <id>`, states after
 * `--state`, file names after `--file` and `--dir`. Ids and controls are asked of kair itself
 * (`__ids`, `grant list`) in the workspace named by `--dir`, if one was typed.
 */
import type { Ctx } from '../app/context.js';
import { kairError } from '../domain/errors.js';
import { STATES } from '../domain/states.js';
import type { Parsed } from './parse.js';
import type { CommandDef, Output } from './registry.js';
import { COMMANDS, GLOBAL_OPTIONS } from './registry.js';

interface Model {
  top: string[];
  groups: Record<string, string[]>;
  /** Commands whose first argument is a contract id. */
  idCommands: string[];
  /** Commands taking `<id> <control>…`. */
  controlCommands: string[];
  /** Every option that takes a value (its value is not a command word). */
  valueOptions: string[];
  fileOptions: string[];
  /** Options per command name (`sim register`, `run`, …), plus '' for the global ones. */
  options: Record<string, string[]>;
  globals: string[];
  summaries: Record<string, string>;
}

function model(): Model {
  const visible = COMMANDS.filter((c) => !c.hidden);
  const top = [...new Set(visible.map((c) => c.name.split(' ')[0]!)), 'help'];
  const groups: Record<string, string[]> = {};
  for (const c of visible) {
    const [g, sub] = c.name.split(' ');
    // `grant list` is a subcommand of a command that also takes ids.
    if (sub !== undefined) (groups[g!] ??= []).push(sub);
  }
  const isIdFirst = (c: CommandDef) => c.args[0]?.name === 'id' || c.args[0]?.name === 'contract';
  const all = [...GLOBAL_OPTIONS, ...visible.flatMap((c) => c.options)];
  const summaries: Record<string, string> = {};
  for (const c of visible) summaries[c.name.split(' ')[0]!] ??= c.name.includes(' ') ? `${c.name.split(' ')[0]} subcommands` : c.summary;
  summaries.help = 'show help for a command';
  return {
    top,
    groups,
    idCommands: visible.filter((c) => !c.name.includes(' ') && isIdFirst(c)).map((c) => c.name),
    controlCommands: visible.filter((c) => c.args[1]?.name === 'control').map((c) => c.name),
    valueOptions: [...new Set(all.filter((o) => o.value).flatMap((o) => [o.long, ...(o.short ? [o.short] : []), ...(o.aliases ?? [])]))],
    fileOptions: ['--file', '--dir'],
    options: Object.fromEntries(visible.map((c) => [c.name, c.options.map((o) => o.long)])),
    globals: GLOBAL_OPTIONS.flatMap((o) => [o.long, ...(o.short ? [o.short] : []), ...(o.aliases ?? [])]),
    summaries,
  };
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function bashScript(): string {
  const m = model();
  const opts = Object.entries(m.options)
    .map(([name, o]) => `    ${q(name)}) opts=${q(o.join(' '))} ;;`)
    .join('\n');
  const groupCases = Object.entries(m.groups)
    .filter(([g]) => g !== 'grant')
    .map(([g, subs]) => `      ${g}) [[ $n -eq 1 ]] && COMPREPLY=( $(compgen -W ${q(subs.join(' '))} -- "$cur") ) ;;`)
    .join('\n');
  return `# kair bash completion: source it, or put it in /etc/bash_completion.d/kair
_kair_ask() {
  if [[ -n $_kair_dir ]]; then kair --dir "$_kair_dir" "$@" 2>/dev/null; else kair "$@" 2>/dev/null; fi
}
_kair() {
  local cur prev w i n opts _kair_dir=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  prev=""
  (( COMP_CWORD > 0 )) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local -a words=()
  for (( i=1; i<COMP_CWORD; i++ )); do
    w="\${COMP_WORDS[i]}"
    case "$w" in
      --dir) _kair_dir="\${COMP_WORDS[i+1]}"; (( i++ )); continue ;;
      ${m.valueOptions.join('|')}) (( i++ )); continue ;;
      --dir=*) _kair_dir="\${w#--dir=}"; continue ;;
      -*) continue ;;
    esac
    words+=("$w")
  done
  n=\${#words[@]}
  COMPREPLY=()
  case "$prev" in
    --state) COMPREPLY=( $(compgen -W ${q(STATES.join(' '))} -- "$cur") ); return 0 ;;
    ${m.fileOptions.join('|')}) compopt -o filenames 2>/dev/null; COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
    ${m.valueOptions.join('|')}) return 0 ;;
  esac
  if [[ $cur == -* ]]; then
    opts=""
    case "\${words[0]} \${words[1]}" in
${opts}
      *) case "\${words[0]}" in
${opts.replace(/^ {4}/gm, '        ')}
        esac ;;
    esac
    COMPREPLY=( $(compgen -W "$opts ${m.globals.join(' ')}" -- "$cur") )
    return 0
  fi
  if [[ $n -eq 0 ]]; then
    COMPREPLY=( $(compgen -W ${q(m.top.join(' '))} -- "$cur") )
    return 0
  fi
  case "\${words[0]}" in
${groupCases}
      grant) if [[ $n -eq 1 ]]; then COMPREPLY=( $(compgen -W "list $(_kair_ask __ids)" -- "$cur") ); elif [[ \${words[1]} != list ]]; then COMPREPLY=( $(compgen -W "$(_kair_ask grant list)" -- "$cur") ); fi ;;
      ${m.controlCommands.filter((c) => c !== 'grant').join('|')}) if [[ $n -eq 1 ]]; then COMPREPLY=( $(compgen -W "$(_kair_ask __ids)" -- "$cur") ); else COMPREPLY=( $(compgen -W "$(_kair_ask grant list)" -- "$cur") ); fi ;;
      ${m.idCommands.filter((c) => !m.controlCommands.includes(c)).join('|')}) [[ $n -eq 1 ]] && COMPREPLY=( $(compgen -W "$(_kair_ask __ids)" -- "$cur") ) ;;
      completion) [[ $n -eq 1 ]] && COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") ) ;;
      help) COMPREPLY=( $(compgen -W ${q(m.top.join(' '))} -- "$cur") ) ;;
  esac
  return 0
}
complete -F _kair kair
`;
}

/** Native zsh (compsys), not the bash script through bashcompinit. */
export function zshScript(): string {
  const m = model();
  const describe = (names: string[]) => names.map((n) => q(`${n.replace(/:/g, '\\:')}:${(m.summaries[n] ?? '').replace(/\s+/g, ' ')}`)).join(' ');
  const opts = Object.entries(m.options)
    .map(([name, o]) => `    ${q(name)}) opts=(${o.join(' ')}) ;;`)
    .join('\n');
  const groupCases = Object.entries(m.groups)
    .filter(([g]) => g !== 'grant')
    .map(([g, subs]) => `    ${g}) (( n == 1 )) && compadd -- ${subs.join(' ')} ;;`)
    .join('\n');
  return `#compdef kair
# kair zsh completion: save as _kair in a folder of your $fpath (before compinit), or source it after compinit
_kair_ask() {
  if [[ -n $_kair_dir ]]; then kair --dir "$_kair_dir" "$@" 2>/dev/null; else kair "$@" 2>/dev/null; fi
}
_kair() {
  local cur prev w i n _kair_dir=""
  local -a ws opts
  cur="\${words[CURRENT]}"
  prev="\${words[CURRENT-1]}"
  for (( i=2; i<CURRENT; i++ )); do
    w="\${words[i]}"
    case "$w" in
      (--dir) _kair_dir="\${words[i+1]}"; (( i++ )); continue ;;
      (${m.valueOptions.join('|')}) (( i++ )); continue ;;
      (--dir=*) _kair_dir="\${w#--dir=}"; continue ;;
      (-*) continue ;;
    esac
    ws+=("$w")
  done
  n=\${#ws}
  case "$prev" in
    (--state) compadd -- ${STATES.join(' ')}; return ;;
    (${m.fileOptions.join('|')}) _files; return ;;
    (${m.valueOptions.join('|')}) return ;;
  esac
  if [[ $cur == -* ]]; then
    case "\${ws[1]} \${ws[2]}" in
${opts}
      (*) case "\${ws[1]}" in
${opts.replace(/^ {4}/gm, '        ')}
        esac ;;
    esac
    compadd -- $opts ${m.globals.join(' ')}
    return
  fi
  if (( n == 0 )); then
    local -a cmds
    cmds=(${describe(m.top)})
    _describe -t commands 'kair command' cmds
    return
  fi
  case "\${ws[1]}" in
${groupCases}
    (grant) if (( n == 1 )); then compadd -- list \${(f)"$(_kair_ask __ids)"}; elif [[ \${ws[2]} != list ]]; then compadd -- \${(f)"$(_kair_ask grant list)"}; fi ;;
    (${m.controlCommands.filter((c) => c !== 'grant').join('|')}) if (( n == 1 )); then compadd -- \${(f)"$(_kair_ask __ids)"}; else compadd -- \${(f)"$(_kair_ask grant list)"}; fi ;;
    (${m.idCommands.filter((c) => !m.controlCommands.includes(c)).join('|')}) (( n == 1 )) && compadd -- \${(f)"$(_kair_ask __ids)"} ;;
    (completion) (( n == 1 )) && compadd -- bash zsh fish ;;
    (help) compadd -- ${m.top.join(' ')} ;;
  esac
}
if [[ \${zsh_eval_context[-1]} == loadautoload ]]; then _kair "$@"; else compdef _kair kair; fi
`.replace(/^( {4})(\w[\w-]*)\) /gm, '$1($2) ').replace(/^( {4})('[^']*')\) opts/gm, '$1($2) opts').replace(/^( {8})('[^']*')\) opts/gm, '$1($2) opts');
}

export function fishScript(): string {
  const m = model();
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
  const groupCases = Object.entries(m.groups)
    .filter(([g]) => g !== 'grant')
    .map(([g, subs]) => `    case ${g}\n      test $n -eq 1; and printf '%s\\n' ${subs.join(' ')}`)
    .join('\n');
  const lines = [
    '# kair fish completion: save as ~/.config/fish/completions/kair.fish',
    'function __kair_words --description "kair: the words typed so far, without options and their values"',
    '  set -l toks (commandline -opc)',
    '  set -e toks[1]',
    '  set -l skip 0',
    '  for t in $toks',
    '    if test $skip -eq 1',
    '      set skip 0',
    '      continue',
    '    end',
    '    switch $t',
    `      case ${m.valueOptions.join(' ')}`,
    '        set skip 1',
    "      case '-*'",
    '      case \'*\'',
    '        echo $t',
    '    end',
    '  end',
    'end',
    'function __kair_ask --description "kair: ask kair itself, in the workspace --dir names"',
    '  set -l toks (commandline -opc)',
    '  set -l i (contains -i -- --dir $toks)',
    '  if test -n "$i"; and test (count $toks) -gt $i',
    '    kair --dir $toks[(math $i + 1)] $argv 2>/dev/null',
    '  else',
    '    kair $argv 2>/dev/null',
    '  end',
    'end',
    'function __kair_args --description "kair: what goes at the cursor"',
    '  set -l w (__kair_words)',
    '  set -l n (count $w)',
    '  if test $n -eq 0',
    ...m.top.map((t) => `    printf '%s\\t%s\\n' ${t} '${esc(m.summaries[t] ?? '')}'`),
    '    return',
    '  end',
    '  switch $w[1]',
    groupCases,
    '    case grant',
    '      if test $n -eq 1',
    '        echo list',
    '        __kair_ask __ids',
    '      else if test "$w[2]" != list',
    '        __kair_ask grant list',
    '      end',
    `    case ${m.controlCommands.filter((c) => c !== 'grant').join(' ')}`,
    '      if test $n -eq 1',
    '        __kair_ask __ids',
    '      else',
    '        __kair_ask grant list',
    '      end',
    `    case ${m.idCommands.filter((c) => !m.controlCommands.includes(c)).join(' ')}`,
    '      test $n -eq 1; and __kair_ask __ids',
    '    case completion',
    '      test $n -eq 1; and printf \'%s\\n\' bash zsh fish',
    '    case help',
    `      printf '%s\\n' ${m.top.join(' ')}`,
    '  end',
    'end',
    'complete -c kair -f',
    "complete -c kair -n 'not __fish_seen_argument -l state -l file' -a '(__kair_args)'",
    ...GLOBAL_OPTIONS.map((o) => `complete -c kair -l ${o.long.slice(2)}${o.short ? ` -s ${o.short.slice(1)}` : ''}${o.long === '--dir' ? " -r -a '(__fish_complete_directories)'" : o.value ? ' -x' : ''} -d '${esc(o.description)}'`),
    `complete -c kair -l state -x -a '${STATES.join(' ')}' -d 'only contracts in this state'`,
    "complete -c kair -l file -r -F -d 'a file'",
    ...Object.entries(m.options).flatMap(([name, o]) =>
      o
        .filter((l) => l !== '--file' && l !== '--state')
        .map((l) => `complete -c kair -n '__fish_seen_subcommand_from ${name.split(' ').pop()}' -l ${l.slice(2)}${m.valueOptions.includes(l) ? ' -x' : ''}`),
    ),
  ];
  return lines.join('\n') + '\n';
}

export async function completion(p: Parsed, _ctx: Ctx): Promise<Output> {
  const shell = p.args[0]!;
  const scripts: Record<string, () => string> = { bash: bashScript, zsh: zshScript, fish: fishScript };
  const gen = scripts[shell];
  if (!gen) throw kairError('USAGE_ERROR', `completion ${shell}: expected bash, zsh or fish`, { argument: shell });
  const script = gen();
  return { json: { shell, script }, text: () => script.trimEnd() };
}
