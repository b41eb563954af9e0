import { expect, it, vi } from 'vitest';

// A machine without the optional onnxruntime-node package: the import fails as it would there.
vi.doMock('onnxruntime-node', () => {
  throw new Error("Cannot find package 'onnxruntime-node'\n    at somewhere");
});

it('falls back to the exact path, with a one-line reason, when onnxruntime-node cannot load', async () => {
  const { recallAtK, recallAtKParallel, topK } = await import('../src/index.js');
  const dim = 8;
  const n = 2000; // above the size where auto tries the fast backend
  let s = 7;
  const emb = Float32Array.from({ length: n * dim }, () => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
  const labels = Int32Array.from({ length: n }, (_, i) => i % 13);
  const reports: [string, string | undefined][] = [];
  const recalls = await recallAtKParallel(emb, dim, labels, [1, 5], {
    workers: 1,
    onBackend: (b, why) => reports.push([b, why]),
  });
  expect(recalls).toEqual(recallAtK(emb, dim, labels, [1, 5]));
  expect(reports).toHaveLength(1);
  expect(reports[0]?.[0]).toBe('exact');
  // (vitest wraps the thrown error in its own message, so only the frame is checked.)
  expect(reports[0]?.[1]).toMatch(
    /^onnxruntime-node is not available \(.+\); it is an optional dependency of @maskcon\/eval — run `pnpm install` to add it$/,
  );
  expect(reports[0]?.[1]).not.toContain('\n'); // one line, whatever the loader printed

  const found = await topK(emb.subarray(0, 3 * dim), emb, 4, { dim, selfOffset: 0 });
  expect(found.backend).toBe('exact');
  expect(found.indices).toHaveLength(12);
  // Asking for the missing backend by name is an error that carries the same reason.
  await expect(topK(emb, emb, 4, { dim, backend: 'onnxruntime' })).rejects.toThrow(
    /similarity backend 'onnxruntime': onnxruntime-node is not available/,
  );
});
