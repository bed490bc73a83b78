// Keeps the first-frame benchmark (first-frame.mjs) working: two calls through
// it, every figure measured. How fast is for BENCHMARKS.md, not for a test.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureFirstFrames } from './first-frame.mjs';

test('the first-frame benchmark measures a kiosk-to-lawyer call from accept to both sides decoding', async () => {
  const results = await measureFirstFrames(2);
  assert.equal(results.length, 2);
  for (const r of results) {
    for (const key of ['kiosk', 'lawyer', 'both']) assert.ok(Number.isFinite(r[key]) && r[key] > 0, JSON.stringify(r));
  }
});
