/**
 * What runs inside the test VM (scripts/kernel-vm.sh), once per kernel: the
 * tests that need what the host kernel lacks (NET_DM, netdevsim, modules) or
 * another kernel's layout (BPF offsets, reason numbers, tracepoint
 * prototypes). One boot per kernel runs every entry (booting is the slow
 * part under emulation); test/vm/kernels.test.ts boots and judges each entry
 * on its own, and scripts/vm-suite.ts runs them in the guest.
 *
 * A new kernel-dependent test file is one entry here.
 */
export interface GuestRun {
  /** Short name, for the host's subtest and the artifacts. */
  readonly name: string;
  /** Compiled test files, relative to the project root. */
  readonly files: readonly string[];
  /** Only tests whose names match (node --test-name-pattern). */
  readonly patterns?: readonly string[];
  /** Extra environment in the guest. */
  readonly env?: Readonly<Record<string, string>>;
  /** Kernels this entry runs on (default: every kernel of the run). */
  readonly kernels?: readonly string[];
  /** Nothing may be skipped in the VM (it was made to have what these tests need): always, or on these kernels. */
  readonly noSkip?: boolean | readonly string[];
  /** Modules the VM loads at boot for this entry (the boot loads every entry's). */
  readonly modules?: readonly string[];
  /** Host programs the VM needs for this entry (copied in with their libraries). */
  readonly bins?: readonly string[];
  /** Test names (TAP "ok N - NAME" lines) that must have passed. */
  readonly mustPass?: readonly string[];
}

/** The Debian kernels the VM tests boot: Debian 12's own and its backports'. */
export const VM_KERNELS = ['6.1', '6.12'] as const;

export const GUEST_RUNS: readonly GuestRun[] = [
  { name: 'netdm', files: ['dist/test/sources/netdm/kernel.test.js'], noSkip: true },
  // kill -9 of a watch of each source, then a start of each other one: nothing left (NET_DM monitoring included).
  { name: 'reclaim', files: ['dist/test/sources/reclaim.test.js'], noSkip: true },
  { name: 'netdm-record', files: ['dist/test/recording/netdm-record.test.js'], mustPass: ['record --source netdm --mode packet: summaries of dropped packets, bounded per interval'] },
  { name: 'devlink', files: ['dist/test/vm/devlink-kernel.test.js'], noSkip: true },
  {
    name: 'bpf-source',
    files: ['dist/test/sources/bpf/bpf-source.test.js'],
    patterns: ['two namespaces', 'kill -9', 'taking turns', 'hammered', 'full map'],
    mustPass: [
      'drops in two namespaces are told apart',
      'kill -9 leaves nothing attached',
      'two drop points taking turns on one CPU',
      'one drop point hammered from every CPU',
      'a full map: the drops it could not hold are counted as a loss',
    ],
  },
  {
    name: 'bpf-toolkit',
    files: ['dist/test/kernel/bpf/btf.test.js', 'dist/test/kernel/bpf/syscall.test.js'],
    env: { DROPMON_FUZZ_RUNS: '50' },
    mustPass: ['the raw_tp flavour (bpf_probe_read_kernel) counts what the tp_btf one counts', 'live vmlinux BTF: parsed, the offsets and the prototype found'],
  },
  // Subsystem drop reasons (openvswitch's since 6.8): 6.1 has none, and says so by skipping.
  { name: 'subsys', files: ['dist/test/vm/subsys-kernel.test.js'], modules: ['openvswitch'], noSkip: ['6.12'] },
  // Hardware drops from the devlink_trap_report tracepoint (tracefs, BPF) = NET_DM hw alerts = devlink stats.
  { name: 'hwtrap', files: ['dist/test/vm/hwtrap-kernel.test.js'], noSkip: true },
  // The diagnosis scenarios whose qdiscs the host kernel lacks (loaded as modules here); one kernel is enough.
  // Without the noise namespaces: under emulation, reading a namespace's counters takes so long that the
  // first reading's time budget would leave the scenario's own namespace without a baseline.
  {
    name: 'scenarios-qdiscs',
    files: ['dist/test/scenarios/diagnose.test.js'],
    env: { DROPMON_SCENARIOS: 'netem,fq_codel', DROPMON_SCENARIO_NOISE: '0' },
    kernels: ['6.12'],
    modules: ['sch_htb', 'sch_netem', 'sch_fq_codel'],
    bins: ['tc'],
    noSkip: true,
  },
];

/** What the VM must load and carry for every entry that runs on `kernel`. */
export function vmNeeds(kernel: string): { modules: string[]; bins: string[] } {
  const runs = GUEST_RUNS.filter((r) => !r.kernels || r.kernels.includes(kernel));
  return { modules: [...new Set(runs.flatMap((r) => r.modules ?? []))], bins: [...new Set(runs.flatMap((r) => r.bins ?? []))] };
}
