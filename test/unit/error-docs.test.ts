import { describe, it, expect } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { ERROR_CODES, ERROR_CATALOG } from '../../src/domain/errors.js';

// SPEC §3: every error code has a page docs/errors/<CODE>.md stating its exit status.
const DOCS_DIR = fileURLToPath(new URL('../../docs/errors/', import.meta.url));
const pagePath = (code: string): string => join(DOCS_DIR, `${code}.md`);
const readme = (): string => readFileSync(join(DOCS_DIR, 'README.md'), 'utf8');

describe('docs/errors', () => {
  it('the catalog is not empty', () => {
    expect(ERROR_CODES.length).toBeGreaterThan(0);
  });

  describe.each(ERROR_CODES.map((code) => [code, ERROR_CATALOG[code]] as const))('%s (exit %i)', (code, exit) => {
    it('has a page', () => {
      expect(existsSync(pagePath(code)), `missing docs/errors/${code}.md`).toBe(true);
    });

    it('starts with its heading', () => {
      const firstLine = readFileSync(pagePath(code), 'utf8').split('\n', 1)[0];
      expect(firstLine).toBe(`# ${code}`);
    });

    it('states the exit status of the catalog', () => {
      const text = readFileSync(pagePath(code), 'utf8');
      const m = /\*\*Exit status:\*\* (\d+)\b/.exec(text);
      expect(m, `no "**Exit status:** <n>" line in ${code}.md`).not.toBeNull();
      expect(Number(m![1])).toBe(exit);
    });

    it('has the three sections', () => {
      const text = readFileSync(pagePath(code), 'utf8');
      expect(text).toContain('## What it means');
      expect(text).toContain('## How to fix');
      expect(text).toContain('## Example');
    });

    it('is listed in README.md with its exit status and a link', () => {
      const row = readme()
        .split('\n')
        .find((line) => line.includes(`[\`${code}\`](${code}.md)`));
      expect(row, `README.md does not link ${code}.md`).toBeDefined();
      const cells = row!.split('|').map((c) => c.trim());
      expect(cells[2]).toBe(String(exit));
    });
  });

  it('has no page for a code that is not in the catalog', () => {
    const known = new Set<string>(ERROR_CODES);
    const pages = readdirSync(DOCS_DIR)
      .filter((f) => f.endsWith('.md') && f !== 'README.md')
      .map((f) => f.slice(0, -'.md'.length));
    const orphans = pages.filter((p) => !known.has(p));
    expect(orphans).toEqual([]);
  });

  it('README.md links only pages that exist', () => {
    const links = [...readme().matchAll(/\]\(([^)]+\.md)\)/g)].map((m) => m[1]!);
    expect(links.length).toBe(ERROR_CODES.length);
    for (const link of links) expect(existsSync(join(DOCS_DIR, link)), link).toBe(true);
  });
});
