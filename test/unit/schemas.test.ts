import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as z from 'zod';
import type { StepResult } from '../../src/app/execute.js';
import type { ArtifactEntry, ContractView } from '../../src/app/read.js';
import type { EnvelopeView, RunResult } from '../../src/app/run.js';
import type { Finding } from '../../src/app/verify.js';
import type { FinderPacket, SimulationMatchPacket } from '../../src/domain/aec/finder.js';
import { defaultConfig, validateConfig } from '../../src/domain/config.js';
import type { Contract, HistoryEvent } from '../../src/domain/contract.js';
import type { Dpc } from '../../src/domain/dpc.js';
import type { UnlockResult } from '../../src/app/unlock.js';
import type { Holder } from '../../src/store/fs/lock.js';
import type { LedgerRow } from '../../src/lanes/aec/ledger.js';
import * as out from '../../src/domain/output-schemas.js';
import { ConfigSchema, ContractSchema, PUBLISHED_SCHEMAS, jsonSchemaOf } from '../../src/domain/schemas.js';
import { ACCESS_DECISIONS } from '../../src/lanes/aec/access.js';
import type { AccessRule } from '../../src/lanes/aec/access.js';
import type { SimulationView } from '../../src/lanes/aec/catalog.js';
import type { KimiRunObject } from '../../src/lanes/kimi/envelopes.js';
import { SCHEMA_VERSIONS } from '../../src/version.js';

const dir = fileURLToPath(new URL('../../docs/schemas/', import.meta.url));

describe('docs/schemas/*.json are generated from the zod schemas (UPDATE_SCHEMAS=1 regenerates)', () => {
  it.each(Object.keys(PUBLISHED_SCHEMAS))('%s.json has not drifted', (name) => {
    const file = `${dir}${name}.json`;
    const generated = JSON.stringify(jsonSchemaOf(name), null, 2) + '\n';
    if (process.env.UPDATE_SCHEMAS === '1') {
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, generated);
    }
    expect(existsSync(file), `${file} is missing: run UPDATE_SCHEMAS=1 npx vitest run test/unit/schemas.test.ts`).toBe(true);
    expect(readFileSync(file, 'utf8')).toBe(generated);
  });

  it('every docs/schemas/*.json file is generated (no stale file of a removed schema)', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
    expect(files.sort()).toEqual(Object.keys(PUBLISHED_SCHEMAS).sort());
  });

  it('docs/schemas/README.md lists every schema file', () => {
    const readme = readFileSync(`${dir}README.md`, 'utf8');
    for (const name of Object.keys(PUBLISHED_SCHEMAS)) expect(readme, name).toContain(`\`${name}.json\``);
  });
});

describe('the hand-written config validator and ConfigSchema agree', () => {
  const base = defaultConfig('ws_x');
  const samples: [string, unknown][] = [
    ['default', base],
    ['unknown top-level key', { ...base, extra: 1 }],
    ['min 0', { ...base, approvals: { ...base.approvals, min: 0 } }],
    ['min 1.5', { ...base, approvals: { ...base.approvals, min: 1.5 } }],
    ['forbid_self as string', { ...base, approvals: { ...base.approvals, forbid_self: 'no' } }],
    ['bad control', { ...base, controls: { registry: ['Local:Read'] } }],
    ['provider other', { ...base, kimi: { ...base.kimi, provider: 'kimi-api' } }],
    ['cost 3 decimals', { ...base, kimi: { ...base.kimi, defaults: { ...base.kimi.defaults, maxCostUSD: 1.234 } } }],
    ['unknown key in defaults', { ...base, kimi: { ...base.kimi, defaults: { ...base.kimi.defaults, x: 1 } } }],
    ['missing approvals', { workspace_id: 'w', controls: base.controls, kimi: base.kimi }],
    ['not an object', []],
  ];
  it.each(samples)('%s', (_name, value) => {
    expect(validateConfig(value).length === 0).toBe(ConfigSchema.safeParse(value).success);
  });
});

describe('a real snapshot satisfies ContractSchema', () => {
  it('parses the fold of a proposed contract', () => {
    const snap = {
      id: 'c1', intent: 'x', state: 'DRAFT', version: 1, versions: [{ version: 1, plan_sha256: null, created_at: 't' }],
      plan_sha256: null, controls: { required: [], granted: [] }, approvals: [], runs: [], created_at: 't', updated_at: 't',
      history_seq: 1, history_head: 'a'.repeat(64),
    };
    expect(ContractSchema.safeParse(snap).success).toBe(true);
    expect(ContractSchema.safeParse({ ...snap, extra: 1 }).success).toBe(false);
  });
});

type Out<S extends z.ZodType> = z.infer<S>;
type RunDoc = Extract<RunResult, { dry_run?: false }>;
type DryRun = Extract<RunResult, { dry_run: true }>;
type RunDocOut = Exclude<Extract<Out<typeof out.RunOutputSchema>, { ok: false }>, { dry_run: true }>;
type DryRunOut = Extract<Out<typeof out.RunOutputSchema>, { dry_run: true }>;
type EnvelopeOut = Out<typeof out.EnvelopesOutputSchema>['envelopes'][number];
type MatchOut = Extract<Out<typeof out.FinderPacketSchema>, { type: 'SimulationMatchPacket' }>;

describe('what the code produces fits the published schemas (type-level: npm run typecheck fails on drift)', () => {
  it('code types extend their schema types (no missing key, no wider value)', () => {
    expectTypeOf<StepResult>().toExtend<Out<typeof out.RunStepSchema>>();
    expectTypeOf<KimiRunObject>().toExtend<Out<typeof out.KimiObjectSchema>>();
    expectTypeOf<Pick<RunDoc, 'run_id' | 'status' | 'kimi' | 'steps' | 'artifacts'>>().toExtend<Pick<RunDocOut, 'run_id' | 'status' | 'kimi' | 'steps' | 'artifacts'>>();
    expectTypeOf<Contract>().toExtend<Out<typeof ContractSchema>>();
    expectTypeOf<ContractView>().toExtend<Out<typeof ContractSchema>>();
    expectTypeOf<HistoryEvent>().toExtend<Out<typeof out.HistoryEventSchema>>();
    expectTypeOf<Holder>().toEqualTypeOf<Out<typeof out.LockHolderSchema>>();
    expectTypeOf<Omit<UnlockResult, 'found'>>().toExtend<Omit<Out<typeof out.UnlockOutputSchema>, 'ok'>>();
    expectTypeOf<Dpc>().toExtend<Out<typeof out.DpcSchema>>();
    expectTypeOf<Finding>().toExtend<Out<typeof out.VerifyOutputSchema>['problems'][number]>();
    expectTypeOf<ArtifactEntry>().toExtend<Out<typeof out.ArtifactsOutputSchema>['artifacts'][number]>();
    expectTypeOf<AccessRule>().toExtend<Out<typeof out.AccessListOutputSchema>['rules'][number]>();
    expectTypeOf<SimulationView>().toExtend<Out<typeof out.SimulationViewSchema>>();
    expectTypeOf<Exclude<FinderPacket, SimulationMatchPacket>>().toExtend<Out<typeof out.FinderPacketSchema>>();
    // CatalogEntry types the executor as unknown; the e2e suite checks a real match packet.
    expectTypeOf<Omit<SimulationMatchPacket, 'simulation'>>().toExtend<Omit<MatchOut, 'simulation'>>();
  });

  it('code types have no key their strict schema lacks', () => {
    // The schema already has the AEC step keys (question, intake_id) the lane is adding.
    expectTypeOf<keyof StepResult>().toExtend<keyof Out<typeof out.RunStepSchema>>();
    expectTypeOf<keyof KimiRunObject>().toEqualTypeOf<keyof Out<typeof out.KimiObjectSchema>>();
    expectTypeOf<keyof Contract>().toEqualTypeOf<keyof Out<typeof ContractSchema>>();
    expectTypeOf<keyof HistoryEvent>().toEqualTypeOf<keyof Out<typeof out.HistoryEventSchema>>();
    expectTypeOf<keyof Dpc>().toEqualTypeOf<keyof Out<typeof out.DpcSchema>>();
    // Typed looser than the values printed (string for a lane or status): keys only here.
    expectTypeOf<keyof DryRun>().toEqualTypeOf<Exclude<keyof DryRunOut, 'ok'>>();
    expectTypeOf<keyof EnvelopeView>().toEqualTypeOf<keyof EnvelopeOut>();
  });

  it('value lists kept outside the domain match the schema enums', () => {
    expect(out.AccessListOutputSchema.shape.rules.element.shape.decision.options).toEqual([...ACCESS_DECISIONS]);
    const versions = out.VersionOutputSchema.shape.schema_versions.shape;
    expect(Object.fromEntries(Object.entries(versions).map(([k, v]) => [k, v.value]))).toEqual(SCHEMA_VERSIONS);
  });
});

describe('strict shapes: a renamed, extra or missing key is rejected', () => {
  const sha = 'a'.repeat(64);
  const step = { id: 'generate', lane: 'kimi', status: 'COMPLETED', reason_code: 'KIMI_OK' };
  const kimi = {
    executionEnvelopeId: 'env_c1-run-1',
    executionRunId: 'kexec_c1-run-1',
    status: 'COMPLETED',
    maxCostUSD: 25,
    maxAgents: 5,
    maxRuntimeSec: 600,
    result: { tokensUsed: 10000, costUSD: 0.02, summary: 'Successfully generated: chat, notifications. Used 5 agents over 8s.', status: 'COMPLETED', runtimeSec: 8 },
  };
  const runResult = {
    version: 'kair.run-result.v1',
    run_id: 'c1-run-1',
    contract_id: 'c1',
    status: 'COMPLETED',
    started_at: 't',
    finished_at: 't',
    kimi,
    steps: [step, { id: 'send', lane: 'aec', status: 'REFUSED', reason_code: 'SIM_FINDER_CLARIFY_MISSING_FIELD', simulation_id: 'send-invoice', question: 'What is the amount?' }, { id: 'later', lane: 'manual', status: 'PENDING', reason_code: null }],
  };
  const rename = (o: Record<string, unknown>, from: string, to: string) => {
    const { [from]: v, ...rest } = o;
    return { ...rest, [to]: v };
  };
  const cases: [string, z.ZodType, Record<string, unknown>, string][] = [
    ['run-result', out.RunResultSchema, runResult, 'finished_at'],
    ['run-result step', out.RunStepSchema, step, 'reason_code'],
    ['kimi object', out.KimiObjectSchema, kimi, 'executionRunId'],
    ['error document', out.ErrorOutputSchema, { ok: false, error: { code: 'CONTRACT_NOT_FOUND', message: 'm', details: {} } }, 'error'],
    ['dry run', out.RunOutputSchema, { ok: true, dry_run: true, contract_id: 'c1', lanes: ['kimi'], steps: [{ id: 'generate', lane: 'kimi', status: 'ok', reason_code: 'KIMI_OK' }], kimi_estimate: { tokens: 10000, costUSD: 0.02, runtimeSec: 8 } }, 'kimi_estimate'],
    ['status', out.StatusOutputSchema, { ok: true, contract: { id: 'c1', intent: 'x', state: 'DRAFT', version: 1, versions: [{ version: 1, plan_sha256: null, created_at: 't' }], plan_sha256: null, controls: { required: [], granted: [] }, approvals: [], runs: [], created_at: 't', updated_at: 't', history_seq: 1, history_head: sha }, plan_sha256: null, next: [] }, 'contract'],
  ];
  it.each(cases)('%s', (_name, schema, doc, key) => {
    expect(schema.safeParse(doc).success).toBe(true);
    expect(schema.safeParse({ ...doc, extra: 1 }).success).toBe(false);
    expect(schema.safeParse(rename(doc, key, `${key}_x`)).success).toBe(false);
  });

  it('step vocabulary: unknown lane or status, or a lowercase reason code, is rejected', () => {
    for (const bad of [{ lane: 'other' }, { status: 'DONE' }, { reason_code: 'kimi_ok' }, { idempotency_key: 'short' }]) {
      expect(out.RunStepSchema.safeParse({ ...step, ...bad }).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('paths in --json documents are relative to the workspace root, never absolute', () => {
    const doc = { ok: true, contract_id: 'c1', runs: [], artifacts: [{ kind: 'snapshot', path: '.kair/contracts/c1/contract.json' }] };
    expect(out.ArtifactsOutputSchema.safeParse(doc).success).toBe(true);
    expect(out.ArtifactsOutputSchema.safeParse({ ...doc, artifacts: [{ kind: 'snapshot', path: '/tmp/w/.kair/contracts/c1/contract.json' }] }).success).toBe(false);
  });

  it('intake and ledger rows are strict: a renamed, missing or extra key fails', () => {
    const row = { id: 'intake-1', contract_id: 'c1', step_id: 's1', utterance: 'do a thing', created_at: 't', run_id: 'c1-run-1', fields: {}, lang: 'en' };
    expect(out.IntakeListOutputSchema.safeParse({ ok: true, intake: [row] }).success).toBe(true);
    expect(out.IntakeListOutputSchema.safeParse({ ok: true, intake: [rename(row, 'utterance', 'text')] }).success).toBe(false);
    expect(out.IntakeListOutputSchema.safeParse({ ok: true, intake: [{ ...row, extra: 1 }] }).success).toBe(false);
    const ledger: LedgerRow = {
      row_id: 1, tenant_id: 'ws_1', plan_id: 'c1:v1/s1', correlation_id: 'c1:v1', contract_id: 'c1', run_id: 'c1-run-1', step_id: 's1', simulation_id: 'ping',
      required_fields_fingerprint: sha, idempotency_key: sha, attempt: 1, event: 'CLAIMED', reason_code: 'AEC_DISPATCH_OK', actor: 'alice',
      finder_packet_ref: 'packet:x', catalog_snapshot_ref: 'catalog:x', policy_snapshot_ref: 'policy:v1', artifact_fingerprint_bundle_ref: 'fingerprints:x',
      access_decision_id: 1, confirmation_id: null, confirmation_proof_ref: null, rollback_plan_ref: null, dispatch_envelope_ref: 'envelope:x',
      decision_ref: 'decision:x', dispatch_decision_hash: sha, outcome: null, latency_us: null, created_at: 't', prev_hash: sha, row_hash: sha,
    };
    expect(out.AecLedgerOutputSchema.safeParse({ ok: true, rows: [ledger] }).success).toBe(true);
    expect(out.AecLedgerOutputSchema.safeParse({ ok: true, rows: [{ ...ledger, attempt: 0 }] }).success).toBe(false);
    expect(out.AecLedgerOutputSchema.safeParse({ ok: true, rows: [rename({ ...ledger }, 'decision_ref', 'decision')] }).success).toBe(false);
  });
});
