// Without any WebGPU adapter, every entry point stops with one message that names the set-up
// command, not a stack trace. The Vulkan loader is pointed at a driver list that does not exist,
// so Dawn finds no adapter even on a machine that has one.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const noDriver = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json', VK_ADD_DRIVER_FILES: '' };

describe('no adapter', () => {
  for (const entry of ['examples/demo.ts', 'examples/doctor.ts', 'examples/gpt2-wikitext.ts']) {
    it(`${entry} names npm run setup and exits 1`, () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', entry], { cwd: root, env: noDriver, encoding: 'utf8', timeout: 60_000 });
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/No WebGPU adapter is available .*run `npm run setup`/);
      expect(r.stderr).not.toMatch(/NoAdapterError|at open \(|src\/gpu\/device\.ts/); // no stack trace of ours
    });
  }
});

describe('npm run doctor, with an adapter', () => {
  it('prints the adapter, its kind, the features the engine uses and the limits it plans around', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'examples/doctor.ts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^adapter: +\S/m);
    expect(r.stdout).toMatch(/^backend: +\S/m);
    expect(r.stdout).toMatch(/^kind: +(CPU|GPU)/m);
    expect(r.stdout).toMatch(/^features: .*\S/m);
    expect(r.stdout).toMatch(/^ {2}used by the engine: /m);
    for (const limit of ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension']) {
      expect(r.stdout).toMatch(new RegExp(`^  ${limit} +[\\d,]+$`, 'm'));
    }
  });
});
