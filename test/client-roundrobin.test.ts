import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { createClient } from "../src/client/client.js";
import { Encoding } from "../src/gen/medsynth/v1/translator_pb.js";
import { spawnCli, type CliProcess } from "./helpers/cli.js";
import { freePort } from "./helpers/net.js";
import { scrape, TINY_MODELS } from "./helpers/service.js";

interface ServerProcess {
  address: string;
  metricsPort: number;
  process: CliProcess;
}

/** `medsynth serve` in its own process on free loopback ports; resolves once it answers. */
async function serve(): Promise<ServerProcess> {
  const [port, metricsPort] = [await freePort(), await freePort()];
  const process = spawnCli([
    "serve", "--host", "127.0.0.1", "--port", String(port), "--metrics-port", String(metricsPort),
    "--models-dir", TINY_MODELS, "--workers", "1", "--log-level", "warn",
  ]);
  const address = `127.0.0.1:${port}`;
  const probe = createClient(address);
  try {
    await probe.waitForReady(60_000);
  } finally {
    probe.close();
  }
  return { address, metricsPort, process };
}

describe("one client, two server processes", () => {
  let servers: ServerProcess[] = [];

  before(async () => {
    servers = await Promise.all([serve(), serve()]);
  });
  after(async () => {
    for (const server of servers) server.process.child.kill("SIGKILL");
  });

  it("spreads streams over both servers round-robin, as each server's metrics show", async () => {
    const client = createClient(servers.map((s) => s.address));
    assert.equal(client.target, `ipv4:${servers.map((s) => s.address).join(",")}`);
    const image = { encoding: Encoding.PNG, data: readFileSync("models/testdata/subject-101/mr/010.png") };
    const streams = 8;
    try {
      await client.waitForReady(10_000);
      for (let s = 0; s < streams; s++) {
        let answered = 0;
        for await (const answer of client.translate({ direction: "mr2ct" }, [{ index: 0n, image }, { index: 1n, image }])) {
          assert.equal(answer.$typeName, "medsynth.v1.SliceResult");
          answered++;
        }
        assert.equal(answered, 2);
      }
    } finally {
      client.close();
    }
    const perServer = await Promise.all(servers.map((s) => scrape(s.metricsPort, "medsynth_streams_total")));
    const slices = await Promise.all(servers.map((s) => scrape(s.metricsPort, "medsynth_slices_total")));
    assert.equal(perServer[0] + perServer[1], streams, `streams per server: ${perServer}`);
    assert.ok(perServer.every((n) => n > 0), `both servers took streams: ${perServer}`);
    assert.deepEqual(slices, perServer.map((n) => 2 * n));
  });

  it("`medsynth serve` drains on SIGTERM and exits 0", async () => {
    const [server] = servers;
    const exited = once(server.process.child, "exit");
    server.process.child.kill("SIGTERM");
    const [code] = await exited;
    assert.equal(code, 0, server.process.stderr());
  });
});
