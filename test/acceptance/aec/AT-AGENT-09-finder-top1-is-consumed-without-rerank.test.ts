/**
 * Seed 001 §13 AT-AGENT-09, §2.2 ("consume Finder top-1 candidate as-is"; "must not re-rank,
 * re-score, or replace Finder candidate simulations"; simulation_id must come from the Finder
 * packet), §5; SPEC §9.2 (top-1 by score, then id), §9.3 (the AEC never re-ranks or replaces the
 * top-1; AEC_PACKET_INVALID), §14 (AEC_PACKET_INVALID is tested in-process with crafted inputs).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalHash } from '../../../src/domain/canonical.js';
import type { CatalogEntry, SimulationMatchPacket } from '../../../src/domain/aec/finder.js';
import { find, isValidPacket } from '../../../src/domain/aec/finder.js';
import type { GateFacts } from '../../../src/domain/aec/gates.js';
import { decideGates } from '../../../src/domain/aec/gates.js';
import type { Json } from '../../helpers/cli.js';
import { cloneWorkspace, kj, makeWorkspace, ok, removeWorkspaces } from '../../helpers/cli.js';
import { approveContract, asAlice, ledgerRows, passingFactsNoImpact, registerSimulation, simPlan, tableRows } from '../../helpers/aec.js';

afterAll(removeWorkspaces);

const UTTERANCE = 'ship the parcel express';

// The Finder's top-1 for UTTERANCE is zz-ship-express (10000 bp); the runner-up aa-ship (7500 bp)
// sorts first by id and is registered first, so any re-ranking by id or by catalog order shows.
const AA: CatalogEntry = { id: 'aa-ship', title: 'Ship a parcel', examples: ['ship the parcel'], required_fields: [], impact: 'none', access_action: 'parcel:ship', status: 'Active', executor: { kind: 'builtin', name: 'echo' } };
const ZZ: CatalogEntry = { ...AA, id: 'zz-ship-express', title: 'Ship a parcel express', examples: ['ship the parcel express'] };

let base: string;

beforeAll(() => {
  base = makeWorkspace();
  for (const s of [AA, ZZ]) {
    const { status: _status, ...def } = s;
    registerSimulation(base, def);
  }
  ok(base, ['access', 'allow', 'alice', 'parcel:ship']);
  approveContract(base, 'ship', simPlan([{ id: 'ship', utterance: UTTERANCE, fields: { parcel: 'p-1' } }]));
});

const body = (ws: string, ref: string): Json => JSON.parse(tableRows(ws, 'aec_refs', 'ref = ?', ref)[0].body);

describe('AT-AGENT-09-finder-top1-is-consumed-without-rerank', () => {
  it("the dispatched simulation is the Finder's top-1, and the packet on record is exactly the one `kair find` prints", () => {
    const ws = cloneWorkspace(base);
    const packet = ok(ws, ['find', UTTERANCE, '--field', 'parcel=p-1']).packet;
    expect(packet).toMatchObject({ type: 'SimulationMatchPacket', simulation_id: 'zz-ship-express', score_bp: 10000 });
    expect(packet.candidates).toEqual([
      { simulation_id: 'zz-ship-express', score_bp: 10000, status: 'Active' },
      { simulation_id: 'aa-ship', score_bp: 7500, status: 'Active' },
    ]);

    const r = kj(ws, ['run', 'ship'], asAlice);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const step = r.json.steps[0];
    expect(step).toMatchObject({ status: 'COMPLETED', reason_code: 'AEC_DISPATCH_OK', simulation_id: packet.simulation_id });
    expect(step.simulation_id).toBe(packet.candidates[0].simulation_id);

    const rows = ledgerRows(ws, "contract_id = 'ship'");
    expect(rows.map((x) => x.simulation_id)).toEqual(['zz-ship-express', 'zz-ship-express']);
    const claim = rows[0];
    // The packet the dispatcher consumed, unaltered: the same document, under its own hash.
    expect(claim.finder_packet_ref).toBe(`packet:${canonicalHash(packet)}`);
    expect(body(ws, claim.finder_packet_ref)).toEqual(packet);
    expect(claim.required_fields_fingerprint).toBe(packet.required_fields_fingerprint);
    expect(claim.catalog_snapshot_ref).toBe(packet.catalog_snapshot_ref);
    // The envelope's simulation_id is the packet's, not one the AEC chose.
    expect(body(ws, claim.dispatch_envelope_ref)).toMatchObject({ simulation_id: packet.simulation_id, required_fields: packet.required_fields });
    expect(ledgerRows(ws, "simulation_id = 'aa-ship'")).toEqual([]);
  });

  it('a blocked top-1 is refused, never replaced by the Active runner-up', () => {
    const ws = cloneWorkspace(base);
    ok(ws, ['sim', 'disable', 'zz-ship-express']);
    const packet = ok(ws, ['find', UTTERANCE, '--field', 'parcel=p-1']).packet;
    expect(packet).toMatchObject({ type: 'RefusePacket', reason_code: 'SIM_FINDER_REFUSE_POLICY_BLOCKED', simulation_id: 'zz-ship-express' });
    expect(packet.candidates[1]).toEqual({ simulation_id: 'aa-ship', score_bp: 7500, status: 'Active' });

    const r = kj(ws, ['run', 'ship'], asAlice);
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ state: 'FAILED', error: { code: 'SIM_FINDER_REFUSE_POLICY_BLOCKED' } });
    expect(r.json.steps[0]).toMatchObject({ status: 'REFUSED', simulation_id: 'zz-ship-express' });
    expect(ledgerRows(ws, "contract_id = 'ship'").map((x) => [x.event, x.simulation_id])).toEqual([['HALTED', null]]);
    expect(body(ws, ledgerRows(ws, "contract_id = 'ship'")[0].finder_packet_ref)).toEqual(packet);
    expect(ledgerRows(ws, "simulation_id = 'aa-ship'")).toEqual([]);

    // Re-activated, the retry dispatches the same top-1.
    ok(ws, ['sim', 'activate', 'zz-ship-express']);
    const retry = kj(ws, ['run', 'ship'], asAlice);
    expect(retry.code, retry.stdout + retry.stderr).toBe(0);
    expect(retry.json.steps[0].simulation_id).toBe('zz-ship-express');
  });

  it('a packet whose top-1 was replaced or re-ranked is invalid and halts at the first gate: AEC_PACKET_INVALID (in-process)', () => {
    const catalog = [AA, ZZ];
    const packet = find({ utterance: UTTERANCE, fields: { parcel: 'p-1' } }, catalog) as SimulationMatchPacket;
    expect(packet.type).toBe('SimulationMatchPacket');
    expect(packet.simulation_id).toBe('zz-ship-express');
    expect(isValidPacket(packet)).toBe(true);

    const facts = (packet_valid: boolean): GateFacts => passingFactsNoImpact({ packet_valid });

    const rehash = <T extends { packet_hash: string }>(p: T): T => {
      const { packet_hash: _h, ...rest } = p;
      return { ...rest, packet_hash: canonicalHash(rest) } as T;
    };

    // The runner-up swapped in as the match (hash left alone, or recomputed): invalid either way.
    const replaced = { ...packet, simulation_id: AA.id, simulation: AA };
    const replacedRehashed = rehash(replaced);
    // Candidates re-ordered (re-ranked) with the match left alone, rehashed: invalid.
    const reranked = rehash({ ...packet, candidates: [...packet.candidates].reverse() });
    // A re-scored packet (score changed), not rehashed: invalid.
    const rescored = { ...packet, score_bp: 9999 };
    for (const bad of [replaced, replacedRehashed, reranked, rescored]) {
      expect(isValidPacket(bad)).toBe(false);
    }
    expect(decideGates(facts(true))).toMatchObject({ dispatch: true });
    expect(decideGates(facts(false))).toEqual({ dispatch: false, replay: false, reason_code: 'AEC_PACKET_INVALID', reached: ['packet'] });
  });
});
