// A one-line progress bar on stderr. Off unless stderr is a terminal or the caller asks, so
// logs and CI output are not filled with carriage-return frames.

export interface ProgressOptions {
  label: string;
  /** Total amount of work (bytes, characters…); 0 or undefined if unknown. */
  total?: number;
  /** Default: process.stderr.isTTY. */
  enabled?: boolean;
  stream?: NodeJS.WritableStream;
  /** Format an amount for display (default: plain number). */
  format?: (n: number) => string;
}

export interface Progress {
  update(done: number, note?: string): void;
  finish(note?: string): void;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

export function createProgress(opts: ProgressOptions): Progress {
  const enabled = opts.enabled ?? Boolean(process.stderr.isTTY);
  if (!enabled) return { update() {}, finish() {} };
  const stream = opts.stream ?? process.stderr;
  const fmt = opts.format ?? ((n: number) => String(n));
  const t0 = performance.now();
  let lastDraw = -Infinity;
  let lastDone = 0;
  const draw = (done: number, note: string | undefined, final: boolean) => {
    const secs = (performance.now() - t0) / 1000;
    const total = opts.total ?? 0;
    let bar = '';
    if (total > 0) {
      const frac = Math.min(1, done / total);
      const width = 24;
      const filled = Math.round(frac * width);
      bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${fmt(done)}/${fmt(total)}`;
    } else {
      bar = fmt(done);
    }
    stream.write(`\r${opts.label} ${bar} ${secs.toFixed(1)}s${note ? ` ${note}` : ''}\x1b[K${final ? '\n' : ''}`);
  };
  return {
    update(done, note) {
      lastDone = done;
      const now = performance.now();
      if (now - lastDraw < 100) return; // at most 10 frames a second
      lastDraw = now;
      draw(done, note, false);
    },
    finish(note) {
      draw(lastDone, note, true);
    },
  };
}
