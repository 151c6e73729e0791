// Write-after-read guards for deferred kernels.
//
// A deferred kernel (see Storage.deferred) is recorded only when its result is first read, which
// may be long after it was asked for. Its inputs must still hold what they held then: the storages
// are retained, so their buffers cannot be recycled, but a kernel could write into one in place
// (an optimizer update, `assign`). The runtime calls `beforeWrite` for every buffer a dispatch,
// copy or upload writes, and that first records the deferred kernels still waiting to read it.

const readers = new Map<GPUBuffer, Set<() => void>>();

/** `run` records a kernel that reads `buffer`; it must run before anything writes `buffer`. */
export function watchWrites(buffer: GPUBuffer, run: () => void): void {
  let set = readers.get(buffer);
  if (!set) readers.set(buffer, (set = new Set()));
  set.add(run);
}

/** `run` has run, or was dropped unrun. */
export function unwatchWrites(buffer: GPUBuffer, run: () => void): void {
  const set = readers.get(buffer);
  if (!set) return;
  set.delete(run);
  if (set.size === 0) readers.delete(buffer);
}

/** Runs every deferred kernel that still reads `buffer` (they unwatch themselves as they run). */
export function beforeWrite(buffer: GPUBuffer): void {
  if (readers.size === 0) return;
  const set = readers.get(buffer);
  if (set) for (const run of [...set]) run();
}

/** Deferred kernels waiting on some buffer (tests check none are forgotten). */
export function watchedReaders(): number {
  let n = 0;
  for (const set of readers.values()) n += set.size;
  return n;
}
