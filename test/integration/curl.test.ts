// The smallest client of the web port, as the README shows it: curl with the
// Connect protocol's JSON, against a real server on loopback.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { freePort } from "../helpers/net.js";
import { useTestServer } from "../helpers/service.js";

const run = promisify(execFile);

/** curl -sS with the README's flags; returns the HTTP status and the parsed JSON body. */
async function curlJson(url: string, body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const { stdout } = await run("curl", ["-sS", "-w", "\n%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "-d", body, url], { timeout: 30_000 });
  const at = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(at + 1)), json: JSON.parse(stdout.slice(0, at)) };
}

describe("curl on the web port (Connect JSON)", () => {
  const served = useTestServer(async () => ({ webPort: await freePort() }));
  const url = (method: string) => `http://127.0.0.1:${served.server.webPort}/medsynth.v1.Translator/${method}`;

  it("lists the models", async () => {
    const { status, json } = await curlJson(url("ListModels"), "{}");
    assert.equal(status, 200);
    const models = json.models as { name: string; direction: string; isDefault?: boolean }[];
    assert.deepEqual(models.map((m) => m.name).sort(), ["tiny-ct2mr", "tiny-mr2ct", "tiny-mr2ct-rgb"]);
    assert.equal(models.find((m) => m.name === "tiny-mr2ct")!.direction, "DIRECTION_MR_TO_CT");
  });

  it("gets the per-slice error, naming the field, as JSON with the Connect code", async () => {
    const { status, json } = await curlJson(url("TranslateSlice"), JSON.stringify({ options: { direction: "DIRECTION_MR_TO_CT" }, slice: { image: { encoding: "ENCODING_RAW", width: 4, height: 4, pixelType: "PIXEL_TYPE_UINT8", data: "AAAA" } } }));
    assert.equal(status, 400);
    assert.equal(json.code, "invalid_argument");
    assert.match(json.message as string, /^slice\.image\.data: /);
  });
});
