// Shared dispatch geometry: a 1-D range of work items as a 2-D grid of 64-lane workgroups
// (each dimension is capped at 65,535 workgroups).
export function grid(items: number, perGroup = 64): [number, number] {
  const groups = Math.max(1, Math.ceil(items / perGroup));
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}
