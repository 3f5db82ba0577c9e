// The layer rules of src/, checked by `npm run lint` (README.md, "Layout").
//
// Layers, lowest first; a module imports only from its own layer or lower ones:
//   0 core  <-  1 kernel, knowledge  <-  2 sources, outputs  <-  3 recording, service  <-  4 cli
// Folders that share a layer and must not know each other are listed in `siblingsApart`.

const layers = [
  ['core'],
  ['kernel', 'knowledge'],
  ['sources', 'outputs'],
  ['recording', 'service'],
  ['cli'],
];

// Same layer, independent: a formatter never reaches into a source (and back), the
// knowledge base needs only core's models, and the syscall wrappers need no knowledge.
const siblingsApart = [
  ['sources', 'outputs'],
  ['outputs', 'sources'],
  ['knowledge', 'kernel'],
  ['kernel', 'knowledge'],
];

// Built-ins that reach the host. core stays pure: it gets such things through
// interfaces that the layers above implement and inject.
const hostIo = ['fs', 'net', 'dgram', 'http', 'https', 'http2', 'tls', 'child_process', 'worker_threads', 'cluster'];

const folders = (names) => `^src/(${names.join('|')})/`;

const upward = layers.slice(0, -1).map((layer, i) => ({
  name: `layer-${layer.join('-')}-imports-upward`,
  comment: `${layer.join(' and ')} (layer ${i}) may import only from layers 0..${i}, not from ${layers.slice(i + 1).flat().join(', ')}`,
  severity: 'error',
  from: { path: folders(layer) },
  to: { path: folders(layers.slice(i + 1).flat()) },
}));

const apart = siblingsApart.map(([from, to]) => ({
  name: `${from}-imports-${to}`,
  comment: `${from} and ${to} share a layer but must not know each other`,
  severity: 'error',
  from: { path: folders([from]) },
  to: { path: folders([to]) },
}));

export default {
  forbidden: [
    ...upward,
    ...apart,
    {
      name: 'core-does-host-io',
      comment: `core is pure: no ${hostIo.join(', ')}; I/O comes in through injected interfaces`,
      severity: 'error',
      from: { path: '^src/core/' },
      to: { dependencyTypes: ['core'], path: `^(node:)?(${hostIo.join('|')})(/|$)` },
    },
    {
      name: 'no-circular',
      comment: 'an import cycle means two modules are one concept, or a model sits in the wrong file',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-imports-tests',
      comment: 'the shipped code never depends on tests, benchmarks or scripts',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts)/' },
    },
    {
      name: 'not-resolvable',
      comment: 'an import that resolves to nothing',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json'],
    },
  },
};
