// Moves the docs' line links (`[label](file.ts#L10-L12 "snippet")`) to where their snippet now
// sits after the code moved, keeping each range's length, and rewrites a label that shows the
// line numbers. test/docs.test.ts checks the links; this is the fix it suggests.
// A snippet found on several lines goes to the hit the range reaches with the smallest shift; one found nowhere is
// reported and left alone (the link needs a human).
//   npx tsx scripts/fix-doc-links.ts          rewrite the docs in place
//   npx tsx scripts/fix-doc-links.ts --check  only list what would change (exit 1 if anything)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const check = process.argv.includes('--check');
const docs = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join('docs', f))];
const LINK = /\[([^\]]*)\]\(([^)\s]+)#L(\d+)(?:-L(\d+))?(\s+"([^"]*)")?\)/g;

let changed = 0;
let lost = 0;
for (const doc of docs) {
  const text = readFileSync(join(root, doc), 'utf8');
  const next = text.replace(LINK, (whole, label: string, path: string, from: string, to: string | undefined, title: string | undefined, snippet: string | undefined) => {
    if (!snippet) return whole;
    const lines = readFileSync(resolve(root, dirname(doc), path), 'utf8').split('\n');
    const [a, b] = [Number(from), Number(to ?? from)];
    if (lines.slice(a - 1, b).join('\n').includes(snippet)) return whole;
    const first = snippet.split('\n')[0];
    const hits = lines.flatMap((l, i) => (l.includes(first) ? [i + 1] : []));
    if (hits.length === 0) {
      console.log(`${doc}: ${whole}: "${first}" is no longer in ${path}`);
      lost++;
      return whole;
    }
    // The smallest shift of the range that brings a hit inside it.
    const shifts = hits.map((h) => (h < a ? h - a : h - b));
    const d = shifts.reduce((best, s) => (Math.abs(s) < Math.abs(best) ? s : best));
    const anchor = to ? `#L${a + d}-L${b + d}` : `#L${a + d}`;
    const newLabel = label.replace(/#L\d+(?:-L\d+)?$/, anchor);
    const fixed = `[${newLabel}](${path}${anchor}${title})`;
    console.log(`${doc}: ${whole}\n    -> ${fixed}`);
    changed++;
    return fixed;
  });
  if (!check && next !== text) writeFileSync(join(root, doc), next);
}
console.log(`${changed} link(s) ${check ? 'would move' : 'moved'}; ${lost} snippet(s) not found`);
if ((check && changed > 0) || lost > 0) process.exitCode = 1;
