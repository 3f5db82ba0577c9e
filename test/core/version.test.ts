import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dropmonVersion } from '../../src/core/version.js';
import { PROJECT_ROOT } from '../helpers/dropgen.js';

test("the version is package.json's, the same on every call", () => {
  const pkg = JSON.parse(readFileSync(`${PROJECT_ROOT}/package.json`, 'utf8')) as { version: string };
  assert.equal(dropmonVersion(), pkg.version);
  assert.equal(dropmonVersion(), dropmonVersion());
});
