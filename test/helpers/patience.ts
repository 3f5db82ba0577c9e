/**
 * How long a test waits for a condition (a process ready, a process gone):
 * bounds, never expectations, so a passing test is not slowed by a generous
 * one. Inside the test VM (emulated without KVM, on a host that may be busy)
 * everything is several times slower, so bounds stretch there;
 * DROPMON_TEST_PATIENCE sets the factor anywhere.
 */
export function patience(ms: number): number {
  const factor = Number(process.env.DROPMON_TEST_PATIENCE ?? (process.env.DROPMON_IN_VM ? 6 : 1));
  return Number.isFinite(factor) && factor > 0 ? ms * factor : ms;
}
