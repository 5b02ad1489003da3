import { describe, it, expect } from 'vitest';
import { applyDpc, newDpc, redactPatterns, redactSecrets, resolveAddition, type Dpc } from '../../src/domain/dpc.js';

const AT0 = '2025-01-01T00:00:00.000Z';
const AT1 = '2025-01-02T00:00:00.000Z';

const GHP = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
const SK = 'sk-' + 'proj_AbCdEfGhIjKlMnOpQrStUvWx1234';
const AKIA = 'AKIAIOSFODNN7EXAMPLE';
const PEM = ['-----BEGIN RSA PRIVATE KEY-----', 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo', '4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u', '-----END RSA PRIVATE KEY-----'].join('\n');
const SSH = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ', '-----END OPENSSH PRIVATE KEY-----'].join('\n');

describe('redactSecrets', () => {
  const secrets: Array<[string, string, string]> = [
    ['GitHub token', `use ${GHP} to push`, GHP],
    ['GitHub token alone', GHP, GHP],
    ['OpenAI-style key', `OPENAI=${SK}`, SK],
    ['AWS access key id', `aws key ${AKIA} here`, AKIA],
    ['password=', 'login with password=hunter22 please', 'hunter22'],
    ['password: quoted', 'password: "hunter22"', 'hunter22'],
    ['api_key=', 'api_key=abcdef123456', 'abcdef123456'],
    ['token:', 'TOKEN: s3cr3t-t0k3n', 's3cr3t-t0k3n'],
    ['Bearer token', 'Authorization: Bearer abcdefghijklmnop1234567890', 'abcdefghijklmnop1234567890'],
    ['RSA private key block', `before\n${PEM}\nafter`, 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo'],
    ['OpenSSH private key block', SSH, 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ'],
    ['Slack token', 'xoxb-1234567890-abcdefghij', 'xoxb-1234567890-abcdefghij'],
    ['JWT', 'jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U', 'eyJhbGciOiJIUzI1NiJ9'],
  ];

  it.each(secrets)('%s is redacted', (_n, text, secret) => {
    const out = redactSecrets(text);
    expect(out).not.toContain(secret);
    expect(out).toContain('[REDACTED]');
  });

  it('keeps the text around a secret', () => {
    expect(redactSecrets(`use ${GHP} to push`)).toBe('use [REDACTED] to push');
    expect(redactSecrets('login with password=hunter22 please')).toBe('login with password=[REDACTED] please');
    expect(redactSecrets('Authorization: Bearer abcdefghijklmnop1234567890')).toBe('Authorization: Bearer [REDACTED]');
    expect(redactSecrets(`before\n${PEM}\nafter`)).toBe('before\n[REDACTED]\nafter');
    expect(redactSecrets(`aws key ${AKIA} here`)).toBe('aws key [REDACTED] here');
  });

  it('redacts several secrets in one text', () => {
    const out = redactSecrets(`${GHP} and ${AKIA} and password=hunter22`);
    for (const s of [GHP, AKIA, 'hunter22']) expect(out).not.toContain(s);
    expect(out.match(/\[REDACTED\]/g)).toHaveLength(3);
  });

  // Was a bug (fixed): src/domain/dpc.ts SECRET_PATTERNS: the key=value rule starts with \b, and '_' is a word
  // character, so the most common env/config spellings are not redacted: `DB_PASSWORD=hunter22`,
  // `GITHUB_TOKEN=…`, `access_token=…`, `client_secret: …` come back unchanged; JSON-style
  // `"password": "hunter22"` is missed because the closing quote sits between the key and ':';
  // and `bearer` in lower case (HTTP auth schemes are case-insensitive) is missed too.
  // SPEC §10: "Secrets matching common token patterns are redacted before writing."
  it.each([
    ['DB_PASSWORD=hunter22', 'hunter22'],
    ['GITHUB_TOKEN=abcdef123456', 'abcdef123456'],
    ['https://x.test/cb?access_token=abcdef123456', 'abcdef123456'],
    ['client_secret: abcdef123456', 'abcdef123456'],
    ['{"password": "hunter22"}', 'hunter22'],
    ['authorization: bearer abcdefghijklmnop1234', 'abcdefghijklmnop1234'],
  ])('%j is redacted', (text, secret) => {
    expect(redactSecrets(text)).not.toContain(secret);
  });

  const ordinary = [
    'Add chat and invoicing',
    'Send the first invoice to acme for $120',
    'We use scikit-learn (sk-learn) for the model',
    'The password policy requires 8 characters',
    'Bearer auth is used for the API',
    'token: abc',
    'task-management-system-for-everyone-in-the-team',
    'ghp_short',
    'AKIA is the prefix of AWS access keys',
    'café ✓ 日本語',
    '',
  ];
  it.each(ordinary)('ordinary text %j is unchanged', (text) => {
    expect(redactSecrets(text)).toBe(text);
  });

  // redactSecrets runs the patterns only when a marker word is present: it must redact exactly
  // what the patterns alone do, whatever the case and the surroundings of the secret.
  it('the marker test skips only text the patterns leave unchanged (examples and 40,000 generated texts)', () => {
    const markers = ['ghp_', 'gho_', 'github_pat_', 'sk-', 'AKIA', 'xoxb-', 'eyJ', 'Bearer', 'api_key', 'api-key', 'apikey', 'token', 'secret', 'password', 'passwd', 'authorization', '-----BEGIN RSA PRIVATE KEY-----'];
    const glue = ['', ' ', '=', ': ', '"', '": "', '\n', '_', 'DB_', 'x', '.'];
    const chars = 'aB3_-.=/+~é9ZkQ';
    let seed = 42;
    const next = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pick = <T,>(a: readonly T[]) => a[next(a.length)]!;
    const run = () => Array.from({ length: next(30) }, () => chars[next(chars.length)]).join('');
    const cased = (m: string) => [m, m.toUpperCase(), m.toLowerCase(), m[0]!.toUpperCase() + m.slice(1)][next(4)]!;
    const texts = [...secrets.map((x) => x[1]), ...ordinary];
    for (let i = 0; i < 20_000; i++) {
      texts.push(pick(glue) + run() + pick(glue) + cased(pick(markers)) + pick(glue) + run() + (next(4) === 0 ? '.' + run() + '.' + run() : '') + pick(glue) + (next(8) === 0 ? '-----END RSA PRIVATE KEY-----' : ''));
      texts.push(run() + pick(glue) + run()); // without a marker: never changed
    }
    let redacted = 0;
    for (const t of texts) {
      const expected = redactPatterns(t);
      if (expected !== t) redacted++;
      expect(redactSecrets(t), t).toBe(expected);
    }
    expect(redacted).toBeGreaterThan(1000); // the corpus does exercise the patterns
  });
});

describe('newDpc', () => {
  it('creates an empty kair.dpc.v1 with topic = intent', () => {
    expect(newDpc('Add chat', AT0)).toEqual({
      version: 'kair.dpc.v1',
      topic: 'Add chat',
      assumptions: [],
      constraints: [],
      decisions: [],
      open_questions: [],
      evidence: [],
      updated_at: AT0,
    });
  });

  it('redacts the topic', () => {
    expect(newDpc(`deploy with ${GHP}`, AT0).topic).toBe('deploy with [REDACTED]');
  });
});

describe('resolveAddition / applyDpc', () => {
  it('assigns d1/q1/e1 on an empty DPC', () => {
    const dpc = newDpc('t', AT0);
    const added = resolveAddition(dpc, {
      decisions: [{ decision: 'use postgres', rationale: 'team knows it' }, { decision: 'no ORM' }],
      open_questions: [{ question: 'which region?', impact: 'latency' }],
      evidence: [{ kind: 'plan', ref: '.kair/contracts/c1/plan/plan_v1.json', note: 'v1' }, { kind: 'prompt', ref: 'p' }],
      assumptions: ['a1'],
      constraints: ['c1'],
    });
    expect(added).toEqual({
      assumptions: ['a1'],
      constraints: ['c1'],
      decisions: [
        { id: 'd1', decision: 'use postgres', status: 'active', rationale: 'team knows it' },
        { id: 'd2', decision: 'no ORM', status: 'active' },
      ],
      open_questions: [{ id: 'q1', question: 'which region?', impact: 'latency' }],
      evidence: [
        { id: 'e1', kind: 'plan', ref: '.kair/contracts/c1/plan/plan_v1.json', note: 'v1' },
        { id: 'e2', kind: 'prompt', ref: 'p' },
      ],
    });
  });

  it('continues ids from the existing ones', () => {
    let dpc: Dpc = newDpc('t', AT0);
    dpc = applyDpc(dpc, resolveAddition(dpc, { decisions: [{ decision: 'x' }, { decision: 'y' }], open_questions: [{ question: 'q' }], evidence: [{ kind: 'run', ref: 'r1' }] }), AT0);
    const added = resolveAddition(dpc, { decisions: [{ decision: 'z' }], open_questions: [{ question: 'q2' }, { question: 'q3' }], evidence: [{ kind: 'diff', ref: 'd' }] });
    expect(added.decisions?.map((d) => d.id)).toEqual(['d3']);
    expect(added.open_questions?.map((q) => q.id)).toEqual(['q2', 'q3']);
    expect(added.evidence?.map((e) => e.id)).toEqual(['e2']);
    const next = applyDpc(dpc, added, AT1);
    expect(next.decisions.map((d) => d.id)).toEqual(['d1', 'd2', 'd3']);
    expect(next.open_questions.map((q) => q.id)).toEqual(['q1', 'q2', 'q3']);
    expect(next.evidence.map((e) => e.id)).toEqual(['e1', 'e2']);
    expect(next.updated_at).toBe(AT1);
  });

  it('empty additions add nothing', () => {
    const dpc = newDpc('t', AT0);
    expect(resolveAddition(dpc, {})).toEqual({});
    expect(resolveAddition(dpc, { assumptions: [], decisions: [] })).toEqual({});
    const next = applyDpc(dpc, {}, AT1);
    expect({ ...next, updated_at: AT0 }).toEqual(dpc);
  });

  it('supersedes_active marks the earlier active decisions superseded', () => {
    let dpc: Dpc = newDpc('t', AT0);
    dpc = applyDpc(dpc, resolveAddition(dpc, { decisions: [{ decision: 'one' }, { decision: 'two' }] }), AT0);
    // supersede d1, d2 with d3
    let added = resolveAddition(dpc, { decisions: [{ decision: 'three', rationale: 'rewind', supersedes_active: true }] });
    expect(added.superseded).toEqual(['d1', 'd2']);
    dpc = applyDpc(dpc, added, AT1);
    expect(dpc.decisions.map((d) => [d.id, d.status])).toEqual([
      ['d1', 'superseded'],
      ['d2', 'superseded'],
      ['d3', 'active'],
    ]);
    // a plain decision does not supersede
    added = resolveAddition(dpc, { decisions: [{ decision: 'four' }] });
    expect(added.superseded).toBeUndefined();
    dpc = applyDpc(dpc, added, AT1);
    expect(dpc.decisions.filter((d) => d.status === 'active').map((d) => d.id)).toEqual(['d3', 'd4']);
    // only the active ones are listed as superseded
    added = resolveAddition(dpc, { decisions: [{ decision: 'five', supersedes_active: true }] });
    expect(added.superseded).toEqual(['d3', 'd4']);
    dpc = applyDpc(dpc, added, AT1);
    expect(dpc.decisions.map((d) => d.status)).toEqual(['superseded', 'superseded', 'superseded', 'superseded', 'active']);
    expect(dpc.decisions[2].rationale).toBe('rewind');
  });

  it('applyDpc does not mutate its input', () => {
    const dpc = applyDpc(newDpc('t', AT0), resolveAddition(newDpc('t', AT0), { decisions: [{ decision: 'a' }] }), AT0);
    const snap = JSON.parse(JSON.stringify(dpc)) as Dpc;
    applyDpc(dpc, resolveAddition(dpc, { decisions: [{ decision: 'b', supersedes_active: true }], assumptions: ['x'] }), AT1);
    expect(dpc).toEqual(snap);
  });

  it('redacts secrets anywhere in an addition', () => {
    const dpc = newDpc('t', AT0);
    const added = resolveAddition(dpc, {
      assumptions: [`key ${AKIA}`],
      constraints: ['password=hunter22'],
      decisions: [{ decision: `push with ${GHP}`, rationale: `because ${SK}` }],
      open_questions: [{ question: 'Bearer abcdefghijklmnop1234567890?', impact: AKIA }],
      evidence: [{ kind: 'prompt', ref: GHP, note: PEM }],
    });
    const text = JSON.stringify(added);
    for (const s of [AKIA, 'hunter22', GHP, SK, 'abcdefghijklmnop1234567890', 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo']) {
      expect(text).not.toContain(s);
    }
    expect(added.decisions?.[0]).toMatchObject({ id: 'd1', decision: 'push with [REDACTED]', rationale: 'because [REDACTED]' });
    expect(added.evidence?.[0]).toMatchObject({ id: 'e1', kind: 'prompt', ref: '[REDACTED]', note: '[REDACTED]' });
  });
});
