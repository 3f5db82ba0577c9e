/**
 * Reads and parses /proc/kallsyms on a worker thread, so that a drop source
 * can start at once: the kernel needs ~50 ms to list 5 MB of symbols and the
 * parse ~100 ms, during which the main thread would not read ring buffers.
 * The parsed arrays are transferred back, not copied.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { KallsymsTable, type KallsymsParts } from './kallsyms.js';

if (!isMainThread && parentPort && (workerData as { kallsymsLoader?: string } | undefined)?.kallsymsLoader) {
  const port = parentPort;
  try {
    const parts = KallsymsTable.load((workerData as { kallsymsLoader: string }).kallsymsLoader).toParts();
    port.postMessage({ parts }, [parts.text.buffer as ArrayBuffer, ...parts.arrays.map((a) => a.buffer as ArrayBuffer)]);
  } catch (err) {
    port.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
}

/** Load kallsyms off the main thread; resolves with the table or rejects with the reason. */
export function loadKallsymsInBackground(path = '/proc/kallsyms'): Promise<KallsymsTable> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL(import.meta.url), { workerData: { kallsymsLoader: path } });
    worker.unref();
    worker.once('message', (m: { parts?: KallsymsParts; error?: string }) => {
      void worker.terminate();
      if (m.parts) resolve(KallsymsTable.fromParts(m.parts));
      else reject(new Error(m.error ?? 'kallsyms loader failed'));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`kallsyms loader exited with code ${code}`));
    });
  });
}
