/** Completion scripts generated from the registry: commands, flags, and contract ids. */
import type { Ctx } from '../app/context.js';
import { kairError } from '../domain/errors.js';
import type { Parsed } from './parse.js';
import type { Output } from './registry.js';
import { COMMANDS, GLOBAL_OPTIONS } from './registry.js';

const ID_COMMANDS = COMMANDS.filter((c) => c.args[0]?.name === 'id').map((c) => c.name);

export function bashScript(): string {
  const visible = COMMANDS.filter((c) => !c.hidden);
  const top = [...new Set(visible.map((c) => c.name.split(' ')[0]))].join(' ');
  const globals = GLOBAL_OPTIONS.flatMap((o) => [o.long, ...(o.short ? [o.short] : []), ...(o.aliases ?? [])]).join(' ');
  const cases = visible
    .map((c) => `    "${c.name}") opts="${c.options.map((o) => o.long).join(' ')}" ;;`)
    .join('\n');
  return `# kair bash completion: source it, or put it in /etc/bash_completion.d/kair
_kair() {
  local cur words cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  words=()
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do [[ $w != -* ]] && words+=("$w"); done
  cmd="\${words[*]:0:2}"
  case "$cmd" in
${cases}
    *) cmd="\${words[0]}"; case "$cmd" in
${visible.filter((c) => !c.name.includes(' ')).map((c) => `      "${c.name}") opts="${c.options.map((o) => o.long).join(' ')}" ;;`).join('\n')}
      *) opts="" ;;
    esac ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts ${globals}" -- "$cur") )
  elif [[ \${#words[@]} -eq 0 ]]; then
    COMPREPLY=( $(compgen -W "${top}" -- "$cur") )
  else
    case "\${words[0]}" in
      ${ID_COMMANDS.filter((n) => !n.includes(' ')).join('|')}) COMPREPLY=( $(compgen -W "$(kair __ids 2>/dev/null)" -- "$cur") ) ;;
      sim) COMPREPLY=( $(compgen -W "register list show activate deprecate disable" -- "$cur") ) ;;
      access) COMPREPLY=( $(compgen -W "allow deny require-ap list" -- "$cur") ) ;;
      aec) COMPREPLY=( $(compgen -W "ledger rebuild replay stats waiver" -- "$cur") ) ;;
      completion) COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") ) ;;
      grant) [[ \${#words[@]} -eq 1 ]] && COMPREPLY=( $(compgen -W "list $(kair __ids 2>/dev/null)" -- "$cur") ) ;;
    esac
  fi
}
complete -F _kair kair
`;
}

export function zshScript(): string {
  return `#compdef kair
# kair zsh completion: put it on your $fpath as _kair, or source it after compinit
autoload -U bashcompinit && bashcompinit
${bashScript()}`;
}

export function fishScript(): string {
  const visible = COMMANDS.filter((c) => !c.hidden && !c.name.includes(' '));
  const lines = [
    '# kair fish completion: save as ~/.config/fish/completions/kair.fish',
    'complete -c kair -f',
    ...visible.map((c) => `complete -c kair -n '__fish_use_subcommand' -a '${c.name}' -d '${c.summary.replace(/'/g, "\\'")}'`),
    ...GLOBAL_OPTIONS.map((o) => `complete -c kair -l ${o.long.slice(2)}${o.short ? ` -s ${o.short.slice(1)}` : ''}${o.value ? ' -r' : ''} -d '${o.description.replace(/'/g, "\\'")}'`),
    ...visible.flatMap((c) => c.options.map((o) => `complete -c kair -n '__fish_seen_subcommand_from ${c.name}' -l ${o.long.slice(2)}${o.value ? ' -r' : ''} -d '${o.description.replace(/'/g, "\\'")}'`)),
    `complete -c kair -n '__fish_seen_subcommand_from ${ID_COMMANDS.filter((n) => !n.includes(' ')).join(' ')}' -a '(kair __ids 2>/dev/null)'`,
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
