// Links from the docs into the source that point at lines (`file.ts#L10-L12 "snippet"`) carry
// the code they point at as the link's title, and this test checks the snippet still sits in
// those lines: when the code moves, the test names the stale link instead of the docs quietly
// pointing at the wrong lines. Every line-anchored link must carry such a snippet.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
const LINK = /\[([^\]]*)\]\(([^)\s]+)#L(\d+)(?:-L(\d+))?(?:\s+"([^"]*)")?\)/g;

describe('line links in the docs point at the code they name', () => {
  for (const doc of docs) {
    const text = readFileSync(join(root, doc), 'utf8');
    const links = [...text.matchAll(LINK)];
    if (links.length === 0) continue;
    it(doc, () => {
      for (const [whole, label, path, from, to, snippet] of links) {
        expect(snippet, `${doc}: ${whole} has no "snippet" title to check`).toBeTruthy();
        // A label that shows line numbers (`trainer.ts#L424`, `#L10-L12`) shows the link's own.
        const shown = /#L\d+(?:-L\d+)?$/.exec(label)?.[0];
        if (shown) expect(shown, `${doc}: ${whole}: the label shows ${shown}, the link goes to #L${from}${to ? `-L${to}` : ''}`).toBe(`#L${from}${to ? `-L${to}` : ''}`);
        const lines = readFileSync(resolve(root, dirname(doc), path), 'utf8').split('\n');
        const [a, b] = [Number(from), Number(to ?? from)];
        expect(b, `${doc}: ${whole} points past the end of ${path} (${lines.length} lines)`).toBeLessThanOrEqual(lines.length);
        const range = lines.slice(a - 1, b).join('\n');
        const now = lines.findIndex((l) => l.includes(snippet!.split('\n')[0])) + 1;
        const hint = now > 0 ? `it is now at line ${now}` : 'it is no longer in that file';
        expect(range.includes(snippet!), `${doc}: ${whole}: "${snippet}" is not in lines ${a}–${b} of ${path} (${hint}); update the link (npx tsx scripts/fix-doc-links.ts moves every stale link)`).toBe(true);
      }
    });
  }
});
