/**
 * Simulation definitions (SPEC §9.1): the strict schema `sim register --file F` takes, and the
 * catalog status lifecycle. Pure: no fs, no SQLite.
 */
import * as z from 'zod';
import type { Problem } from '../config.js';
import { kairError } from '../errors.js';
import { ID_PATTERN } from '../ids.js';
import { parseJsonInput } from '../json-input.js';
import { sortProblems, zodProblems } from '../problems.js';
import type { SimulationStatus } from './finder.js';
import { hasSideEffects } from './impact.js';

export type { SimulationImpact, SimulationStatus } from './finder.js';

const id = z.string().regex(ID_PATTERN, { error: `must match ${ID_PATTERN.source}` });
const text = z.string().trim().min(1, { error: 'must not be empty' });

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const BUILTIN_EXECUTORS = ['noop', 'echo', 'write_file', 'fail'] as const;

export const ExecutorSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('builtin'), name: z.enum(BUILTIN_EXECUTORS) }),
  z.strictObject({
    kind: z.literal('command'),
    argv: z.array(z.string().min(1, { error: 'must not be empty' })).min(1, { error: 'needs at least the program' }),
    timeout_ms: z.int().positive(),
  }),
]);

export const SimulationSchema = z.strictObject({
  // An editor's pointer to docs/schemas/simulation.json; dropped at validation, never stored.
  $schema: z.string().optional(),
  id,
  title: text,
  examples: z.array(text).min(1, { error: 'needs at least one example utterance' }),
  required_fields: z.array(text),
  impact: z.enum(['none', 'side_effecting', 'impactful', 'irreversible']),
  access_action: text,
  rollback_simulation_id: id.optional(),
  executor: ExecutorSchema,
  // Names of kair's environment variables a `command` executor may see beyond the fixed allow-list.
  env_allow: z.array(z.string().regex(ENV_NAME, { error: 'must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)' })).optional(),
});

export type SimulationDefinition = z.infer<typeof SimulationSchema>;
export type SimulationExecutor = z.infer<typeof ExecutorSchema>;

export const SIMULATION_STATUSES: readonly SimulationStatus[] = ['Draft', 'Active', 'Deprecated', 'Disabled'];

/** `sim activate|deprecate|disable` → the status each sets. */
export const STATUS_COMMANDS = { activate: 'Active', deprecate: 'Deprecated', disable: 'Disabled' } as const satisfies Record<string, SimulationStatus>;
export type StatusCommand = keyof typeof STATUS_COMMANDS;

export { effectiveImpact, hasSideEffects, needsRollback } from './impact.js';

/** Every problem with the definition, each with its JSON path (sorted); empty when valid. */
export function validateSimulation(input: unknown): { simulation?: SimulationDefinition; problems: Problem[] } {
  const parsed = SimulationSchema.safeParse(input);
  const problems = zodProblems(parsed.error);
  // Checked on the raw input too, so one pass reports it alongside every other problem.
  const raw = typeof input === 'object' && input !== null && !Array.isArray(input) ? (input as Record<string, unknown>) : undefined;
  if (raw && (raw.impact === 'impactful' || raw.impact === 'irreversible') && raw.rollback_simulation_id === undefined) {
    problems.push({ path: 'rollback_simulation_id', message: `required when impact is ${JSON.stringify(raw.impact)}` });
  }
  if (raw && raw.impact === 'none' && hasSideEffects(raw.executor)) {
    const what = (raw.executor as { kind: string }).kind === 'command' ? 'a command executor' : 'the write_file executor';
    problems.push({ path: 'impact', message: `"none" is not allowed with ${what}, which has side effects: declare "side_effecting" (or "impactful"/"irreversible" with a rollback_simulation_id)` });
  }
  sortProblems(problems);
  if (problems.length > 0 || !parsed.success) return { problems };
  const { $schema: _schema, ...simulation } = parsed.data;
  return { simulation, problems };
}

/** The definition, or SIMULATION_INVALID (exit 2) with `details.problems`. */
export function parseSimulation(input: unknown, source?: string): SimulationDefinition {
  const r = validateSimulation(input);
  if (r.simulation) return r.simulation;
  const sideEffects = r.problems.some((p) => p.path === 'impact' && p.message.includes('side_effecting'));
  const fix = sideEffects ? '; its executor has side effects, so impact must be "side_effecting" (or "impactful"/"irreversible")' : '';
  const e = invalid(`${source ? `${source}: ` : ''}the simulation is invalid (${r.problems.length} problem(s))${fix}`, r.problems, source);
  if (sideEffects) e.details.hint = 'set "impact": "side_effecting" (steps then need confirmation)';
  throw e;
}

/** Parses JSON text first: unparsable (or too deep) text is one problem at `(root)`, its contents never quoted. */
export function parseSimulationText(textIn: string, source?: string): SimulationDefinition {
  const parsed = parseJsonInput(textIn);
  if (!parsed.ok) throw invalid(`${source ? `${source}: ` : ''}${parsed.message}`, [{ path: '(root)', message: parsed.message }], source);
  return parseSimulation(parsed.value, source);
}

/** SIMULATION_INVALID for a definition over `limits.max_input_bytes`. */
export const simulationTooLarge = (source: string) => (max: number) =>
  invalid(`${source}: larger than ${max} bytes (limits.max_input_bytes)`, [{ path: '(root)', message: `larger than ${max} bytes` }], source);

function invalid(message: string, problems: Problem[], source?: string) {
  return kairError('SIMULATION_INVALID', message, { ...(source ? { file: source } : {}), problems });
}
