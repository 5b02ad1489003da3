/**
 * What to do next, per error code: the hint an error gets when the code that raised it gave
 * none of its own (a raiser that knows more, e.g. the exact controls to grant, still wins).
 * `<id>` is replaced by the error's `details.contract_id` when it has one.
 */
import type { ErrorCode } from './errors.js';

/** Reason codes of successful steps and packets: never an error, so never a hint. */
export type SuccessCode = 'AEC_DISPATCH_OK' | 'AEC_IDEMPOTENT_REPLAY' | 'SIM_FINDER_MATCH_OK' | 'KIMI_OK' | 'KIMI_REUSED' | 'MANUAL_RECORDED';

export const ERROR_HINTS = {
  INTERNAL_ERROR: 'this is a bug in kair: run the command again with KAIR_DEBUG=1 and report the stack trace it prints',
  USAGE_ERROR: 'run `kair <command> --help` for its arguments, options and an example',
  PLAN_INVALID: 'fix the plan at the paths listed in details.problems (schema: docs/schemas/plan.json), then `kair plan <id> --file <plan.json>` again',
  INVALID_ID: 'use lowercase letters, digits, - and _ (up to 80, starting with a letter or digit), e.g. `chat-2`; `kair list` shows existing ids',
  INVALID_CONTROL: 'write controls as <namespace>:<permission>, e.g. local:read; `kair grant list` shows the registry',
  CONTROL_UNKNOWN: '`kair grant list` shows the controls in the registry; add a new one to controls.registry with `kair config set controls.registry \'[...]\'`',
  CONFIG_INVALID: 'fix each key listed (`kair config get <key>` shows it, `kair config set <key> <value>` fixes it) or edit .kair/config.json; `kair doctor` checks it',
  SIMULATION_INVALID: 'fix the definition at the paths listed (schema: docs/schemas/simulation.json), then `kair sim register --file <file>` again',
  SIGNING_FAILED: 'load the key into ssh-agent (`ssh-add <key>`) or pass an unencrypted key with --key <path>; check it with `ssh-keygen -y -f <key>`',
  SIGNING_UNAVAILABLE: 'install OpenSSH (it provides ssh-keygen) and make sure ssh-keygen is on PATH, or approve without --sign',
  PLANNER_NOT_CONFIGURED: 'set planner.base_url and planner.model (`kair config set planner.base_url <url>`) and export the API key variable, or use --provider stub',
  INVALID_TRANSITION: '`kair status <id>` shows the state and the command to run next (the message lists what this state allows)',
  APPROVAL_REQUIRED: '`kair show <id>` shows the plan; another actor approves it with `kair approve <id> --actor <name>` until approvals.min is reached',
  APPROVAL_STALE: 'the plan changed since it was approved: read it with `kair show <id>` (`kair diff <id>` shows what changed) and approve it again',
  CONTROLS_MISSING: 'grant the missing controls: `kair grant <id> <control>...` (or remove them with `kair unrequire <id> <control>...`)',
  CONTROL_REVOKED: 'grant the control again (`kair grant <id> <control>`) and `kair resume <id>`, or `kair close <id> "<reason>"` to stop here',
  SELF_APPROVAL_FORBIDDEN: 'someone other than the proposer approves: `kair approve <id> --actor <name>` (approvals.forbid_self is on)',
  NO_EXECUTION_REQUIRED: 'the plan needs no execution: `kair review <id>`/`kair close <id> "<reason>"`, or in a script pass `kair run <id> --allow-noop` to exit 0',
  SCOPE_NOT_ALLOWED: 'remove the scope from the plan, or add it to kimi.defaults.allowedScopes (`kair config get kimi.defaults.allowedScopes`)',
  CONTRACT_EXISTS: 'pick another --id, or leave --id out to get a unique one; `kair status <id>` shows the existing contract',
  SIMULATION_EXISTS: 'register it under another id, or look at the existing one with `kair sim show <simulation>`',
  AEC_IN_DOUBT: 'check whether the step took effect (`kair aec ledger <id>`); if it did not, `kair resume <id> --retry-in-doubt`',
  AEC_PACKET_INVALID: 'this packet did not come from the Finder: run the step again through `kair run <id>`; `kair find "<utterance>"` shows the packet it would build',
  AEC_POLICY_SNAPSHOT_MISSING: 'run the step through `kair run <id>`, which records the policy snapshot; `kair verify` checks the workspace',
  AEC_ARTIFACT_FINGERPRINT_MISSING: 'run the step through `kair run <id>`, which records the artifact fingerprints; `kair verify` checks the workspace',
  AEC_ROLLBACK_REF_MISSING: 'register and activate the rollback simulation the step\'s simulation names (`kair sim register --file <file>`, `kair sim activate <simulation>`)',
  AEC_IDEMPOTENCY_CONFLICT: 'the step already succeeded with other fields or another simulation: `kair rewind <id> "<reason>"` to plan a new version',
  AEC_CONFIRM_REQUIRED: 'answer it: `kair resume <id> --confirm yes` (or no); in CI, answer up front with `kair run <id> --confirm-all yes`',
  AEC_CONFIRM_DECLINED: 'the step was declined; to do it after all, `kair run <id> --confirm yes`, or change the plan with `kair plan <id> --file <plan.json>`',
  AEC_CONFIRM_AMBIGUOUS_REJECTED: 'answer with a clear word of the language: `kair resume <id> --confirm yes --lang en` (en, es, fr, de, pt, zh, ja)',
  ACCESS_SCOPE_VIOLATION: 'an admin allows the action: `kair access allow <actor> <action>` (`kair access list` shows the rules); then `kair run <id>` again',
  ACCESS_AP_REQUIRED: 'the rule for this actor and action requires an approval outside kair; an admin can change it with `kair access allow <actor> <action>`',
  SIMULATION_NOT_REGISTERED: 'register it (`kair sim register --file <file>`) and activate it (`kair sim activate <simulation>`), then run again',
  SIMULATION_NOT_ACTIVE: 'activate it with `kair sim activate <simulation>` (`kair sim list` shows each status), then run again',
  SIM_FINDER_MISSING_SIMULATION: 'no simulation matches the step (`kair intake list` records it): register one (`kair sim register --file <file>`) or reword the step\'s utterance',
  SIM_FINDER_SIMULATION_INACTIVE: 'the simulation that matches is a Draft: `kair sim activate <simulation>`, then run again',
  SIM_FINDER_REFUSE_POLICY_BLOCKED: 'the simulation that matches is deprecated or disabled (`kair sim list` shows each status): name another in the plan (`kair plan <id> --file <plan.json>`) or ask an admin for a new one',
  SIM_FINDER_REFUSE_AMBIGUOUS: 'reword the step\'s utterance so that it names one simulation (`kair find "<utterance>"` shows the match) and set the plan again',
  SIM_FINDER_CLARIFY_AMBIGUOUS: 'reword the step\'s utterance to name one of the two simulations; `kair find "<utterance>"` shows the scores',
  SIM_FINDER_CLARIFY_LOW_CONFIDENCE: 'use words of the simulation\'s examples in the utterance (`kair sim show <simulation>`); `kair find "<utterance>"` shows the score',
  SIM_FINDER_CLARIFY_MISSING_FIELD: 'add the missing field to the step\'s simulation.fields in the plan (`kair find "<utterance>" --field k=v` checks it)',
  NOT_OWNER: 'run it as an actor run.allowed_actors names (the proposer, an approver, …): `--actor <name>`; `kair config get run.allowed_actors` shows the list',
  NOT_ADMIN: 'ask an admin (`kair config get policy.admins` lists them) to make the change, or run it as one with `--actor <name>`',
  SLO_BREACHED: 'see the figures with `kair aec stats`; an admin can waive the gate until a time with `kair aec waiver add --until <time> --reason "<why>"`',
  SIGNATURE_REQUIRED: 'approve with a signature: `kair approve <id> --sign --key <ssh key>` (the key must be listed in the allowed signers file)',
  SIGNATURE_INVALID: 'list the key for this actor in the allowed signers file (`<actor> <public key>`, see approvals.allowed_signers_file) and approve again with --sign',
  AEC_REPEAT_BLOCKED: 'an earlier version already did this step: roll it back (`kair rollback <run_id>`) or repeat it on purpose with `kair resume <id> --allow-repeat`',
  ROLLBACK_UNAVAILABLE: 'the step\'s simulation names no rollback simulation: undo its effect by hand, or register a version that names one (`kair sim register --file <file>` with rollback_simulation_id)',
  DOCTOR_FAILED: 'fix each failing finding as its hint says, then run `kair doctor` again',
  WORKSPACE_NOT_EMPTY: 'choose a target without that content: `kair export --to DIR` needs a DIR without .kair/, `kair import --from DIR` a fresh workspace (`kair init` in an empty folder), `kair artifacts <id> --out DIR` a DIR whose files it would not overwrite',
  CONTRACT_NOT_FOUND: '`kair list` shows the contracts of this workspace (check --dir / KAIR_DIR if you expected another one)',
  WORKSPACE_NOT_FOUND: 'run `kair init` in the project folder, or point at an existing workspace with --dir <path> or KAIR_DIR',
  SIMULATION_NOT_FOUND: '`kair sim list` shows the registered simulations; register one with `kair sim register --file <file>`',
  RUN_NOT_FOUND: '`kair status <id>` lists the runs of a contract (run ids look like <id>-run-1)',
  PLAN_NOT_FOUND: '`kair history <id>` lists the plans the contract had; pass 8+ hex digits of one of their shas',
  BUDGET_EXCEEDED: 'raise budget.maxCostUSD in the plan (within kimi caps) and set it again with `kair plan <id> --file <plan.json>`, or make the plan smaller',
  RUNTIME_EXCEEDED: 'raise budget.maxRuntimeSec in the plan (within kimi caps) and set it again with `kair plan <id> --file <plan.json>`, or split the work',
  CONTRACT_BUDGET_EXCEEDED: 'the contract has spent its Kimi budget: raise kimi.max_cost_usd_per_contract (`kair config set`) or reuse the last result (run without --regenerate)',
  AEC_EXECUTOR_FAILED: 'details say why the executor failed; fix the cause, then `kair run <id>` again (steps that succeeded are replayed, not repeated)',
  AEC_STEP_TIMEOUT: 'raise the simulation\'s executor timeout_ms (register a new version) or make the command faster, then `kair run <id>` again',
  PLANNER_FAILED: 'check planner.base_url, the network and the API key (`kair plan <id> --generate --debug` shows the request), or use --provider stub',
  BACKEND_CONFIG_INVALID: 'check the backend block in .kair/config.json (`kair config get backend`) and the database URL in the variable it names (backend.url_env); `kair config set backend.kind local` goes back to the local folder',
  BACKEND_UNAVAILABLE: 'the database server did not answer: check that it is running and reachable (`kair doctor` checks the configuration), then run the command again; nothing was written',
  LOCK_BUSY: 'wait for the holder named in the message and try again (or raise --lock-timeout); a lock left by a dead process on another host: `kair unlock <id> --force`',
  CONCURRENT_WRITE: 'another command changed the contract at the same moment: run the command again (`kair status <id>` shows the new state)',
  INTEGRITY_FAILED: 'run `kair verify` for the list of problems; restore the named files from a backup (a forged contract.json can be deleted: it is rebuilt from history)',
  AEC_REPLAY_MISMATCH: 'the recorded decision differs from a replay: run `kair verify` and compare the ledger rows named in details (`kair aec ledger <id>`)',
  INTERRUPTED: 'the contract is PAUSED: `kair resume <id>` continues it (add --retry-in-doubt if a step was in flight)',
} as const satisfies Record<Exclude<ErrorCode, SuccessCode>, string>;

/** The catalog hint for a code, with `<id>` filled in from the error's contract id; null for success codes. */
export function hintFor(code: ErrorCode, details: Record<string, unknown> = {}): string | null {
  const hint = (ERROR_HINTS as Record<string, string>)[code];
  if (hint === undefined) return null;
  const id = details.contract_id;
  return typeof id === 'string' && /^[a-z0-9][a-z0-9_-]{0,79}$/.test(id) ? hint.replaceAll('<id>', id) : hint;
}
