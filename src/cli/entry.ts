import { runMain } from './main.js';

runMain();
