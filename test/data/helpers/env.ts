// Where the shared WikiText copy lives, and throwaway folders for tests.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** WIKITEXT_DIR, else ../shared/data next to the repository (read-only; never copied into the repo). */
export const sharedDataDir = process.env.WIKITEXT_DIR ? resolve(process.env.WIKITEXT_DIR) : resolve(repoRoot, '../shared/data');

export const hasShared = (rel: string): boolean => existsSync(join(sharedDataDir, rel));

/** A fresh temporary folder; call the returned cleanup in afterAll/afterEach. */
export function makeTmp(prefix = 'sgpt-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
