import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseSimulation, parseSimulationText, validateSimulation } from '../../src/domain/aec/simulation.js';
import { caught } from '../helpers/errors.js';

const FIX = fileURLToPath(new URL('../../fixtures/simulations/', import.meta.url));
const fixture = (name: string): unknown => JSON.parse(readFileSync(FIX + name, 'utf8'));

const base = {
  id: 'ping',
  title: 'Ping',
  examples: ['ping'],
  required_fields: [],
  impact: 'none',
  access_action: 'system:ping',
  executor: { kind: 'builtin', name: 'noop' },
};
const withOver = (over: Record<string, unknown>) => ({ ...base, ...over });
const without = (key: keyof typeof base) => Object.fromEntries(Object.entries(base).filter(([k]) => k !== key));
const paths = (input: unknown) => validateSimulation(input).problems.map((p) => p.path);

describe('simulation schema: valid definitions', () => {
  it.each(['send-invoice.json', 'void-invoice.json', 'ping.json', 'append-line.json'])('fixture %s is valid', (name) => {
    const r = validateSimulation(fixture(name));
    expect(r.problems).toEqual([]);
    expect(r.simulation).toBeDefined();
  });

  it.each([
    ['builtin noop', { kind: 'builtin', name: 'noop' }],
    ['builtin echo', { kind: 'builtin', name: 'echo' }],
    ['builtin write_file', { kind: 'builtin', name: 'write_file' }],
    ['builtin fail', { kind: 'builtin', name: 'fail' }],
    ['command', { kind: 'command', argv: ['node', '-e', '0'], timeout_ms: 1000 }],
  ])('executor %s', (_n, executor) => {
    const impact = executor.kind === 'command' || ('name' in executor && executor.name === 'write_file') ? 'side_effecting' : 'none';
    expect(validateSimulation(withOver({ executor, impact })).problems).toEqual([]);
  });

  it('side_effecting needs no rollback id; impactful and irreversible do', () => {
    expect(paths(withOver({ impact: 'side_effecting', executor: { kind: 'builtin', name: 'write_file' } }))).toEqual([]);
    expect(paths(withOver({ impact: 'side_effecting' }))).toEqual([]);
  });

  it('impactful and irreversible with a rollback id are valid (the target need not exist)', () => {
    for (const impact of ['impactful', 'irreversible']) {
      expect(validateSimulation(withOver({ impact, rollback_simulation_id: 'undo-ping' })).problems).toEqual([]);
    }
  });

  it('an id of 80 characters is valid', () => {
    expect(paths(withOver({ id: 'a'.repeat(80) }))).toEqual([]);
  });
});

describe('simulation schema: invalid definitions (problem paths)', () => {
  it.each<[string, unknown, string[]]>([
    ['impactful without rollback', withOver({ impact: 'impactful' }), ['rollback_simulation_id']],
    ['irreversible without rollback', withOver({ impact: 'irreversible' }), ['rollback_simulation_id']],
    ['unknown top-level key', withOver({ colour: 'red' }), ['colour']],
    ['unknown executor key', withOver({ executor: { kind: 'builtin', name: 'noop', shell: true } }), ['executor.shell']],
    ['bad id (uppercase)', withOver({ id: 'Ping' }), ['id']],
    ['bad id (81 chars)', withOver({ id: 'a'.repeat(81) }), ['id']],
    ['bad id (leading dash)', withOver({ id: '-ping' }), ['id']],
    ['bad rollback id', withOver({ impact: 'impactful', rollback_simulation_id: 'Bad Id' }), ['rollback_simulation_id']],
    ['no examples', withOver({ examples: [] }), ['examples']],
    ['empty example', withOver({ examples: ['ping', '  '] }), ['examples[1]']],
    ['required_fields not strings', withOver({ required_fields: ['a', 3] }), ['required_fields[1]']],
    ['unknown impact', withOver({ impact: 'huge' }), ['impact']],
    ['missing title', without('title'), ['title']],
    ['missing access_action', without('access_action'), ['access_action']],
    ['missing executor', without('executor'), ['executor']],
    ['unknown builtin', withOver({ executor: { kind: 'builtin', name: 'rm' } }), ['executor.name']],
    ['unknown executor kind', withOver({ executor: { kind: 'shell', cmd: 'ls' } }), ['executor.kind']],
    ['command with empty argv', withOver({ executor: { kind: 'command', argv: [], timeout_ms: 10 }, impact: 'side_effecting' }), ['executor.argv']],
    ['command without timeout', withOver({ executor: { kind: 'command', argv: ['ls'] }, impact: 'side_effecting' }), ['executor.timeout_ms']],
    ['command with zero timeout', withOver({ executor: { kind: 'command', argv: ['ls'], timeout_ms: 0 }, impact: 'side_effecting' }), ['executor.timeout_ms']],
    ['command with fractional timeout', withOver({ executor: { kind: 'command', argv: ['ls'], timeout_ms: 1.5 }, impact: 'side_effecting' }), ['executor.timeout_ms']],
    ['write_file with impact none', withOver({ executor: { kind: 'builtin', name: 'write_file' } }), ['impact']],
    ['command with impact none', withOver({ executor: { kind: 'command', argv: ['ls'], timeout_ms: 10 } }), ['impact']],
    ['not an object', [1, 2], ['(root)']],
  ])('%s', (_name, input, expected) => {
    expect(paths(input)).toEqual(expected);
  });

  it('reports every problem at once, sorted by path', () => {
    expect(paths({ ...base, id: 'X', impact: 'impactful', extra: 1, examples: [] })).toEqual(['examples', 'extra', 'id', 'rollback_simulation_id']);
  });
});

describe('parseSimulation errors', () => {

  it('SIMULATION_INVALID with details.problems [{path, message}]', () => {
    const e = caught(() => parseSimulation(withOver({ impact: 'irreversible' }), 'x.json'));
    expect(e.code).toBe('SIMULATION_INVALID');
    expect(e.details).toEqual({ file: 'x.json', problems: [{ path: 'rollback_simulation_id', message: 'required when impact is "irreversible"' }] });
  });

  it('unparsable JSON is one problem at (root)', () => {
    const e = caught(() => parseSimulationText('{nope'));
    expect(e.code).toBe('SIMULATION_INVALID');
    expect((e.details.problems as Array<{ path: string }>).map((p) => p.path)).toEqual(['(root)']);
  });

  it('returns the definition when valid', () => {
    expect(parseSimulation(base).id).toBe('ping');
  });
});
