// Paces how Dawn's Node bindings poll while a GPU promise is pending.
//
// Dawn drives a pending `mapAsync` / `onSubmittedWorkDone` / `popErrorScope` by re-arming
// `globalThis.setImmediate` from native code after every `ProcessEvents()` call
// (dawn/node/binding/AsyncRunner). That is a spin: the JS thread runs at 100 % for the whole wait.
// On a GPU it only wastes a host core, but on a CPU adapter (lavapipe, two worker threads on a
// 2-core machine) it takes a core from the kernels: a 1024³ matmul timed with a wait per call ran
// at 18–19 GFLOP/s spinning and 28–32 GFLOP/s paced (.scratch experiment, 2026-12-03).
//
// So once a wait has had its first, immediate poll (a wait whose work is already done answers
// there, as fast as before), the next polls of the same wait run from a 1 ms timer instead. The
// engine marks where each of its waits starts (startingWait); the first poll after the mark runs
// at once, every later one from the timer (a wait the engine did not mark, such as opening the
// device, is paced from its first poll: at most 1 ms later). Only Dawn's callbacks are paced: anonymous native functions taking no arguments —
// JavaScript callers of `setImmediate` pass closures, named or bound functions, or a Promise's
// resolve/reject (anonymous and native too, but taking one argument) — and everything else goes
// to Node's own `setImmediate` untouched.

const POLL_MS = 1;

let installed: { original: typeof setImmediate; timer: typeof setTimeout; paced?: typeof setImmediate } | null = null;
let firstPollDue = false;
let pacedPolls = 0;

function isDawnCallback(fn: unknown): boolean {
  return typeof fn === 'function' && fn.name === '' && fn.length === 0 && Function.prototype.toString.call(fn).includes('[native code]');
}

/** Routes Dawn's polling re-arms through a 1 ms timer (idempotent). */
export function paceDawnPolling(): void {
  if (installed) return;
  const original = globalThis.setImmediate;
  const timer = globalThis.setTimeout; // captured: a test faking timers must not stall GPU waits
  installed = { original, timer };
  const paced = function (this: unknown, fn: (...a: unknown[]) => void, ...args: unknown[]) {
    if (installed && isDawnCallback(fn)) {
      if (!firstPollDue) {
        pacedPolls++;
        return installed.timer(fn, POLL_MS, ...args) as unknown as NodeJS.Immediate;
      }
      firstPollDue = false;
    }
    return original(fn, ...args);
  };
  installed.paced = Object.assign(paced, original) as typeof setImmediate;
  globalThis.setImmediate = installed.paced;
}

/** Marks the start of a wait: its first poll runs at once. */
export function startingWait(): void {
  firstPollDue = true;
}

/** Puts Node's own `setImmediate` back, so Dawn spins again (benchmarks compare the two). */
export function unpaceDawnPolling(): void {
  if (!installed) return;
  if (globalThis.setImmediate === installed.paced) globalThis.setImmediate = installed.original;
  installed = null;
}

/** Polls that were moved to the timer since the process started (tests check pacing happens). */
export function pacedPollCount(): number {
  return pacedPolls;
}
