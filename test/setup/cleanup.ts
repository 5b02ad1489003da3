/** Runs in every test file: whatever makeTempDir made is removed when the file ends, pass or fail. */
import { afterAll } from 'vitest';
import { removeTempDirs } from '../helpers/temp.js';

afterAll(removeTempDirs);
