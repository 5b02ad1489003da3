/**
 * The outputs a `command` reports through KAIR_OUTPUT (`name=value` lines): what is recorded,
 * and every way a malformed or hostile file is refused as a whole (never half-recorded, never
 * waited on, never followed through a link).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OUTPUTS_MAX_BYTES, parseOutputs, readOutputs } from '../../src/lanes/aec/executor.js';

const dir = mkdtempSync(join(tmpdir(), 'kair-outputs-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parseOutputs', () => {
  it('reads name=value lines; blank lines and CRLF are fine; the value keeps every = after the first', () => {
    expect(parseOutputs('invoice_id=INV-7\r\n\nurl=https://x.example/?a=1&b=2\n')).toEqual({ outputs: { invoice_id: 'INV-7', url: 'https://x.example/?a=1&b=2' } });
    expect(parseOutputs('')).toEqual({});
    expect(parseOutputs('empty=\n')).toEqual({ outputs: { empty: '' } });
  });

  it.each([
    ['no =', 'invoice_id\n', /line 1: expected name=value/],
    ['a duplicate', 'a=1\nb=2\na=3\n', /line 3: a is given twice/],
    ['__proto__', '__proto__=x\n', /is not an output name/],
    ['constructor', 'constructor=x\n', /is not an output name/],
    ['a name with a space', 'invoice id=x\n', /is not an output name/],
    ['a name starting with a digit', '1st=x\n', /is not an output name/],
    ['a name of 65 characters', `${'n'.repeat(65)}=x\n`, /is not an output name/],
    ['an escape sequence in a value', 'a=\u001b[2J\n', /control characters/],
    ['a C1 control in a value', 'a=x\u009by\n', /control characters/],
    ['a value over 1024 characters', `a=${'x'.repeat(1025)}\n`, /longer than 1024/],
    ['65 outputs', Array.from({ length: 65 }, (_, i) => `o${i}=v`).join('\n'), /more than 64 outputs/],
  ])('%s voids every output', (_name, text, why) => {
    const r = parseOutputs(text);
    expect(r.outputs).toBeUndefined();
    expect(r.outputs_error).toMatch(why);
    expect(r.outputs_error).toContain('no output was recorded');
  });

  it('a secret in a value is redacted like stdout, never recorded', () => {
    expect(parseOutputs('token=Bearer abcdefghijklmnopqrstuvwxyz0123456789\n').outputs!.token).toContain('[REDACTED]');
  });
});

describe('readOutputs', () => {
  const file = (name: string, body: string | Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };

  it('a missing or empty file is no outputs; a file is parsed', () => {
    expect(readOutputs(join(dir, 'missing'))).toEqual({});
    expect(readOutputs(file('empty', ''))).toEqual({});
    expect(readOutputs(file('one', 'id=7\n'))).toEqual({ outputs: { id: '7' } });
  });

  it('refuses a FIFO at once (no hang), a symlink (not followed), a directory, too many bytes and bytes that are not UTF-8', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(readOutputs(fifo).outputs_error).toMatch(/not a regular file/);
    const link = join(dir, 'link');
    symlinkSync(file('target', 'id=7\n'), link);
    expect(readOutputs(link).outputs_error).toMatch(/could not be read \(ELOOP\)/);
    expect(readOutputs(dir).outputs_error).toMatch(/not a regular file/);
    expect(readOutputs(file('big', `a=${'x'.repeat(OUTPUTS_MAX_BYTES)}`)).outputs_error).toMatch(/more than 65536 bytes/);
    expect(readOutputs(file('latin1', Buffer.from([0x61, 0x3d, 0xe9, 0x0a]))).outputs_error).toMatch(/not UTF-8/);
  });
});
