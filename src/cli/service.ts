import type { ServerConfig } from "../server/config.js";
import type { RunningServer } from "../server/server.js";
import { createClient, type ClientOptions, type TranslatorClient } from "../client/client.js";

/** A client, and the in-process server it talks to when no target was given. */
export interface ServiceAccess {
  client: TranslatorClient;
  /** "embedded" or the target. */
  target: string;
  /** What to dial: the target, or the embedded server's loopback address. */
  address: string;
  /** The embedded server's configuration (undefined with a target). */
  embedded: ServerConfig | undefined;
  /** The embedded server (undefined with a target). */
  running?: RunningServer;
  close(): Promise<void>;
}

/**
 * Connects to `target`, or, without one, starts the service in this process
 * on a free loopback port (the given server config, with no metrics
 * endpoint and warnings-only logs) and connects to that.
 */
export async function openService(
  target: string | undefined,
  server: ServerConfig,
  clientOptions: ClientOptions = {},
): Promise<ServiceAccess> {
  if (target !== undefined) {
    const client = createClient(target, clientOptions);
    try {
      await client.waitForReady(clientOptions.deadlineMs ?? 10_000);
    } catch (error) {
      client.close();
      throw error;
    }
    return { client, target, address: target, embedded: undefined, close: async () => client.close() };
  }
  // Loaded only here: the server pulls in ONNX Runtime, which a --target run never needs.
  const [{ startServer }, { createLogger }] = await Promise.all([import("../server/server.js"), import("../server/log.js")]);
  const config: ServerConfig = { ...server, host: "127.0.0.1", port: 0, metricsPort: 0, logLevel: "warn" };
  // Server logs go to stderr, so the command's own output on stdout stays clean.
  const running = await startServer(config, { log: createLogger(config.logLevel, (line) => process.stderr.write(line)) });
  const client = createClient(running.address, clientOptions);
  return {
    client,
    target: "embedded",
    address: running.address,
    embedded: config,
    running,
    close: async () => {
      client.close();
      await running.close();
    },
  };
}
