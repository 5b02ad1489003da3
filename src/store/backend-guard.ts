/**
 * The postgres backend is configurable but its commands do not run on PostgreSQL yet (the use
 * cases still call the local store directly; see docs/decisions/031-storage-port.md). A workspace
 * whose config names it must not quietly keep using local files while its team believes it
 * shares one database, so every command that opens the workspace refuses it.
 *
 * This runs on every command's start-up, before the config is otherwise read (status and list
 * never read it), so it costs one small read and a substring test on the common path.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { kairError } from '../domain/errors.js';
import { DEFAULT_MAX_INPUT_BYTES } from '../domain/json-input.js';
import type { Workspace } from './fs/workspace.js';
import { paths, rel } from './fs/workspace.js';

/** The commands that open a PostgreSQL workspace themselves (src/app/transfer.ts): they read or load it whole. */
const POSTGRES_READY = new Set(['export', 'import']);

export function assertLocalBackend(ws: Workspace, command?: string): void {
  if (command !== undefined && POSTGRES_READY.has(command)) return;
  const file = paths.config(ws);
  let text: string;
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO put in place of the config must not hang the start-up (loadConfig
    // reports it); a regular file reads as usual.
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return; // missing or unreadable: the config loader reports it
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > DEFAULT_MAX_INPUT_BYTES) return;
    const buf = Buffer.alloc(st.size);
    const n = readSync(fd, buf, 0, st.size, 0);
    text = buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
  if (!text.includes('postgres')) return;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return;
  }
  const backend = (value as { backend?: { kind?: unknown } } | null)?.backend;
  if (backend?.kind === 'postgres') {
    // Stays after the backend opens: on PostgreSQL the locks are the server's (an advisory lock
    // ends with the session that holds it), so there is no lock file for unlock to remove.
    if (command === 'unlock') {
      throw kairError('USAGE_ERROR', 'unlock has nothing to remove on a PostgreSQL workspace: its locks belong to the database sessions that hold them and end with them; nothing was read or written', {
        path: rel(ws, file),
        key: 'backend.kind',
        hint: 'wait for the holder named by LOCK_BUSY to finish, or retry with a larger --lock-timeout; a stuck session is ended on the server (pg_terminate_backend)',
      });
    }
    throw kairError('BACKEND_CONFIG_INVALID', 'the postgres backend is not available in this version; nothing was read or written', {
      path: rel(ws, file),
      key: 'backend.kind',
      hint: 'set backend.kind to "local" (kair config set backend.kind local) or remove the backend block',
    });
  }
}
