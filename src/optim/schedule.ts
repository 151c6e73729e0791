// Learning-rate schedules: functions from the step number (0-based) to a learning rate.

export type Schedule = (step: number) => number;

export const constant = (lr: number): Schedule => () => lr;

/** Cosine decay from `lr` to `minLr` over `totalSteps` (then stays at minLr). */
export const cosine = (lr: number, minLr: number, totalSteps: number): Schedule => (step) => {
  if (step >= totalSteps) return minLr;
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos((Math.PI * step) / totalSteps));
};

/**
 * torch.optim.lr_scheduler.CosineAnnealingWarmRestarts: restarts after T_0 steps, then periods
 * grow by T_mult; within a period η = η_min + (η_max − η_min)(1 + cos(π·T_cur/T_i))/2.
 */
export function cosineWarmRestarts(lr: number, t0: number, tMult = 1, minLr = 0): Schedule {
  if (!Number.isInteger(t0) || t0 < 1) throw new RangeError(`T_0 must be a positive integer, got ${t0}`);
  if (!Number.isInteger(tMult) || tMult < 1) throw new RangeError(`T_mult must be an integer ≥ 1, got ${tMult}`);
  return (step) => {
    let tCur = step;
    let ti = t0;
    if (tMult === 1) tCur = step % t0;
    else {
      const n = Math.floor(Math.log(step / t0 * (tMult - 1) + 1) / Math.log(tMult));
      tCur = step - (t0 * (tMult ** n - 1)) / (tMult - 1);
      ti = t0 * tMult ** n;
    }
    return minLr + ((lr - minLr) * (1 + Math.cos((Math.PI * tCur) / ti))) / 2;
  };
}

/** Linear warm-up from lr/warmup to the schedule's value over `warmup` steps, then `after(step − warmup)`. */
export function withWarmup(warmup: number, after: Schedule): Schedule {
  if (!Number.isInteger(warmup) || warmup < 0) throw new RangeError(`warmup must be a non-negative integer, got ${warmup}`);
  return (step) => (step < warmup ? (after(0) * (step + 1)) / warmup : after(step - warmup));
}
