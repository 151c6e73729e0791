// Checkpoints: everything a run needs to continue bit-identically — model weights, optimizer
// state, data-loader position, random-generator states, and the metric rows written so far (a copy
// of metrics.jsonl up to the checkpoint, so a resume restores them even if that file was lost).
//
// A checkpoint is a directory written whole under a temporary name, its files fsynced, then
// renamed into place; `LATEST` (itself replaced atomically) names the newest one. A run killed at
// any moment therefore leaves the previous checkpoint intact and pointed to.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readSafetensors, writeFileAtomic, writeSafetensors, type HostTensor } from '../nn/safetensors.ts';

export interface CheckpointData {
  step: number;
  /** JSON-serialisable state (loader, generators, optimizer scalars, metrics row count, ...). */
  state: Record<string, unknown>;
  /** Named tensors (model parameters and optimizer state), read back from the GPU by the caller. */
  tensors: Map<string, HostTensor>;
  /** metrics.jsonl as it stood at this checkpoint (absent in checkpoints of older versions). */
  metrics?: string;
}

const FORMAT = 1;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function writeCheckpoint(root: string, data: CheckpointData, keep = 2): string {
  mkdirSync(root, { recursive: true });
  const name = `step-${String(data.step).padStart(8, '0')}`;
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  // What a run killed mid-write left behind (a half-written folder, a LATEST.tmp-…) is never
  // read; it is cleared here so that it does not pile up (one run writes a folder at a time).
  for (const d of readdirSync(root)) if (/^\.step-\d{8}\.tmp-\d+$|^LATEST\.tmp-\d+$/.test(d)) rmSync(join(root, d), { recursive: true, force: true });
  mkdirSync(tmp);
  writeSafetensors(join(tmp, 'tensors.safetensors'), data.tensors);
  writeFileAtomic(join(tmp, 'state.json'), JSON.stringify({ format: FORMAT, step: data.step, state: data.state }));
  if (data.metrics !== undefined) writeFileAtomic(join(tmp, 'metrics.jsonl'), data.metrics);
  fsyncDir(tmp);
  // The same step written again (a resumed run stopped before its next step) gets a fresh name:
  // replacing the folder LATEST names would leave a moment with no valid checkpoint.
  let final = join(root, name);
  for (let k = 1; existsSync(final); k++) final = join(root, `${name}.${k}`);
  renameSync(tmp, final);
  fsyncDir(root);
  writeFileAtomic(join(root, 'LATEST'), basename(final) + '\n');
  // Older checkpoints beyond `keep` are removed only after LATEST points at the new one.
  const all = readdirSync(root).filter((d) => /^step-\d{8}(\.\d+)?$/.test(d)).sort();
  for (const d of all.slice(0, Math.max(0, all.length - keep))) rmSync(join(root, d), { recursive: true, force: true });
  return final;
}

/** Whether `root` holds a checkpoint to resume from (LATEST is written last). */
export function hasCheckpoint(root: string): boolean {
  return existsSync(join(root, 'LATEST'));
}

export function readLatestCheckpoint(root: string): CheckpointData {
  const latest = join(root, 'LATEST');
  if (!existsSync(latest)) throw new Error(`no checkpoint in ${root} (LATEST is missing): nothing to resume`);
  const dir = join(root, readFileSync(latest, 'utf8').trim());
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) throw new Error(`checkpoint ${dir} is incomplete (state.json missing)`);
  const parsed = JSON.parse(readFileSync(statePath, 'utf8')) as { format: number; step: number; state: Record<string, unknown> };
  if (parsed.format !== FORMAT) throw new Error(`checkpoint ${dir} has format ${parsed.format}; this version reads format ${FORMAT}`);
  const { tensors } = readSafetensors(join(dir, 'tensors.safetensors'));
  const metricsPath = join(dir, 'metrics.jsonl');
  const metrics = existsSync(metricsPath) ? readFileSync(metricsPath, 'utf8') : undefined;
  return { step: parsed.step, state: parsed.state, tensors, metrics };
}
