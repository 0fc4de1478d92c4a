/**
 * Who may connect to the embedded broker (issue 7 §4): generators the admin added (their
 * credentials live in the database, server/domain/generator-credentials.ts), and the built-in
 * generator, whose credential is made at each start and lives only in memory.
 *
 * Revoking from the admin page disconnects the generator at once. `npm run admin -- generator
 * revoke` runs in another process, so the server also compares the connected generators with
 * the table every `sweepMs` and disconnects those whose credential is gone: a cheap query of a
 * handful of names, where checking on every publish would miss a revoked generator that is idle.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { EmbeddedBroker } from "../broker/index";
import {
  addGeneratorCredential,
  existingGeneratorNames,
  listGeneratorCredentials,
  markGeneratorSeen,
  revokeGeneratorCredential,
  verifyGeneratorCredential,
  type GeneratorCredential,
} from "./domain/generator-credentials";
import { newSecretToken } from "./domain/secret-tokens";
import type { Db } from "./db/client";
import type { Logger } from "./logger";

export interface GeneratorAccess {
  /** The built-in generator's credential (username = its id). */
  readonly local: { username: string; password: string };
  /** The broker's authentication check. */
  verify(username: string, password: string): boolean;
  /** The broker's connection events: "last seen". */
  onConnection(clientId: string): void;
  /** Starts disconnecting revoked generators from `broker`. */
  attach(broker: EmbeddedBroker): void;
  /** Adds a generator; its token is returned only now. */
  add(name: string): { name: string; token: string };
  list(): Array<GeneratorCredential & { connected: boolean }>;
  /** Revokes a generator's credential and disconnects it at once. */
  revoke(name: string): void;
  close(): void;
}

const digest = (text: string) => createHash("sha256").update(text).digest();

export function createGeneratorAccess(db: Db, log: Logger, { localGeneratorId, sweepMs }: { localGeneratorId: string; sweepMs: number }): GeneratorAccess {
  const local = { username: localGeneratorId, password: newSecretToken() };
  let broker: EmbeddedBroker | undefined;
  let sweep: NodeJS.Timeout | undefined;

  const disconnect = (name: string) => {
    if (broker?.disconnect(name)) log.info(`generator ${name} disconnected: its credential was revoked`);
  };

  return {
    local,
    verify: (username, password) =>
      username === local.username ? timingSafeEqual(digest(password), digest(local.password)) : verifyGeneratorCredential(db, username, password),
    onConnection(clientId) {
      if (clientId !== local.username) markGeneratorSeen(db, clientId);
    },
    attach(attached) {
      broker = attached;
      sweep = setInterval(() => {
        const connected = attached.connectedIds().filter((id) => id !== local.username);
        if (!connected.length) return;
        const existing = existingGeneratorNames(db);
        for (const id of connected) if (!existing.has(id)) disconnect(id);
      }, sweepMs);
      sweep.unref();
    },
    add: (name) => addGeneratorCredential(db, name),
    list() {
      const connected = new Set(broker?.connectedIds() ?? []);
      return listGeneratorCredentials(db).map((credential) => ({ ...credential, connected: connected.has(credential.name) }));
    },
    revoke(name) {
      revokeGeneratorCredential(db, name);
      disconnect(name);
    },
    close: () => clearInterval(sweep),
  };
}
