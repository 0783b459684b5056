// The viewer page in a real browser: Debian's chromium (installed by
// .ci/run; CHROMIUM_PATH overrides) driven headless by playwright-core,
// against a real server on loopback with the default phantom models. It opens
// phantom test slices (MR, with the CT as reference), waits for every
// synthetic slice, checks that the panels are drawn and that the metrics it
// shows are the ones a gRPC client gets for the same slices; per-slice
// errors are listed; a page of an origin not allowed cannot call the port.
// MEDSYNTH_UPDATE_SCREENSHOT=1 rewrites docs/viewer.png from this run.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { createClient } from "../../src/client/client.js";
import { Encoding, type Quality } from "../../src/gen/medsynth/v1/translator_pb.js";
import type { RunningServer } from "../../src/server/server.js";
import { freePort } from "../helpers/net.js";
import { startTestServer } from "../helpers/service.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SUBJECT = "models/testdata/subject-101";
/** The middle of the head: 12 of the subject's 24 slices. */
const NAMES = readdirSync(join(SUBJECT, "mr")).filter((n) => n.endsWith(".png")).sort().slice(6, 18);
const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;
const DIGITS = { psnr: 2, ssim: 4, uqi: 4, vif: 4, mae: 1 };

async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does), or set CHROMIUM_PATH`);
  // WebGL2 (niivue) on the CPU: SwiftShader, as on a machine without a GPU.
  return chromium.launch({ executablePath: CHROMIUM, args: ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-gpu-sandbox"] });
}

/** Opens the viewer; any request that leaves the web port is blocked and recorded (the page must work offline). */
async function openViewer(browser: Browser, server: RunningServer): Promise<{ page: Page; outside: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const outside: string[] = [];
  const own = `http://127.0.0.1:${server.webPort}/`;
  await page.route("**/*", (route) => {
    if (route.request().url().startsWith(own)) return route.continue();
    outside.push(route.request().url());
    return route.abort();
  });
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(`${own}viewer/`);
  await page.waitForFunction('/models on/.test(document.getElementById("service").textContent)', undefined, { timeout: 30_000 });
  assert.deepEqual(errors, []);
  return { page, outside };
}

/** Standard deviation of a canvas' pixels, from a screenshot of it: 0 for a blank canvas. */
async function spread(page: Page, id: string): Promise<number> {
  const png = await page.locator(`#${id}`).screenshot();
  const { channels } = await sharp(png).greyscale().stats();
  return channels[0].stdev;
}

describe("viewer page in a real browser", () => {
  let server: RunningServer;
  let browser: Browser;

  before(async () => {
    // One slice per batch: the page's slices (three in flight) and the gRPC client's (one at a time) then take the same arithmetic path.
    server = await startTestServer({ modelsDir: "models", webPort: await freePort(), workers: 2, maxBatch: 1 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it("translates the phantom series, draws original | synthetic | difference, and shows the metrics a gRPC client gets", async () => {
    const { page, outside } = await openViewer(browser, server);
    assert.match(await page.locator("#model").inputValue(), /^mr2ct-phantom$/);
    await page.setInputFiles("#reference-files", NAMES.map((n) => join(SUBJECT, "ct", n)));
    await page.setInputFiles("#source-files", NAMES.map((n) => join(SUBJECT, "mr", n)));
    await page.waitForFunction(`document.body.dataset.translated === "${NAMES.length}"`, undefined, { timeout: 240_000, polling: 250 });
    assert.equal(await page.getAttribute("body", "data-failed"), "0");

    // What the page shows, per slice.
    const shown = await page.$$eval("#per-slice tr", (rows) =>
      rows.map((row) => ({
        slice: Number(row.getAttribute("data-slice")),
        cells: [...row.querySelectorAll("td[data-metric]")].map((td) => ({ metric: td.getAttribute("data-metric")!, value: td.getAttribute("data-value")!, text: td.textContent! })),
      })),
    );
    assert.equal(shown.length, NAMES.length);

    // The same slices through the gRPC port.
    const client = createClient(server.address);
    const expected: Quality[] = [];
    try {
      for (const name of NAMES) {
        const result = await client.translateSlice(
          { direction: "mr2ct", outputEncoding: Encoding.RAW },
          {
            index: 0n,
            image: { encoding: Encoding.PNG, data: readFileSync(join(SUBJECT, "mr", name)), rescaleSlope: 1, rescaleIntercept: 0 },
            reference: { encoding: Encoding.PNG, data: readFileSync(join(SUBJECT, "ct", name)), rescaleSlope: 1, rescaleIntercept: -1024 },
          },
        );
        expected.push(result.quality!);
      }
    } finally {
      client.close();
    }
    for (const { slice, cells } of shown) {
      assert.deepEqual(cells.map((c) => c.metric), [...METRICS]);
      for (const { metric, value, text } of cells) {
        const grpc = expected[slice][metric as (typeof METRICS)[number]]!;
        assert.equal(Number(value), grpc, `slice ${slice} ${metric}: the page's value is the gRPC client's`);
        assert.equal(text, grpc.toFixed(DIGITS[metric as keyof typeof DIGITS]), `slice ${slice} ${metric} as shown`);
      }
    }
    const mean = (m: (typeof METRICS)[number]) => expected.reduce((sum, q) => sum + q[m]!, 0) / expected.length;
    const meanRow = await page.$$eval("#metrics-mean td", (cells) => cells.map((c) => c.textContent));
    assert.deepEqual(meanRow, METRICS.map((m) => mean(m).toFixed(DIGITS[m])), "the series mean");

    // The visible slice in all three panels, the synthetic CT overlaid on the MR at 50%.
    await page.locator("#opacity").fill("0.5");
    for (const id of ["canvas-original", "canvas-synthetic", "canvas-difference"]) {
      assert.ok((await spread(page, id)) > 8, `${id} is drawn (not blank)`);
    }
    await page.waitForTimeout(300);
    const picture = await page.screenshot({ fullPage: true });
    if (process.env.MEDSYNTH_UPDATE_SCREENSHOT) await sharp(picture).png({ compressionLevel: 9, palette: true }).toFile("docs/viewer.png");
    assert.deepEqual(outside, [], "no request leaves the web port (works offline)");
    await page.close();
  });
});

describe("viewer page: per-slice errors and CORS in a real browser", () => {
  let server: RunningServer;
  let browser: Browser;
  let elsewhere: Server;
  let allowedPage: Server;

  before(async () => {
    const allowedPort = await freePort();
    // Tiny models, and a largest dimension the 256² phantom slices exceed: every slice is refused by the service.
    server = await startTestServer({ webPort: await freePort(), maxDimension: 200, webCorsOrigins: `http://127.0.0.1:${allowedPort}` });
    browser = await launch();
    const page = (_: unknown, response: import("node:http").ServerResponse) => response.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>other origin</title>");
    elsewhere = createServer(page).listen(0, "127.0.0.1");
    allowedPage = createServer(page).listen(allowedPort, "127.0.0.1");
  });
  after(async () => {
    elsewhere?.close();
    allowedPage?.close();
    await browser?.close();
    await server?.close();
  });

  it("lists each slice the service refuses, with the field it names", async () => {
    const { page } = await openViewer(browser, server);
    await page.setInputFiles("#source-files", NAMES.slice(0, 4).map((n) => join(SUBJECT, "mr", n)));
    await page.waitForFunction('document.body.dataset.failed === "4"', undefined, { timeout: 60_000 });
    const errors = await page.$$eval("#errors li", (items) => items.map((li) => li.textContent));
    assert.equal(errors.length, 4);
    for (const error of errors) assert.match(error!, /^\d{3} InvalidArgument: slice\.image\.data: .*exceeds/);
    await page.close();
  });

  it("a page of an origin not allowed cannot call the web port; an allowed one can", async () => {
    const call = (origin: string) =>
      browser.newPage().then(async (page) => {
        await page.goto(origin);
        const outcome = await page.evaluate(async (url) => {
          try {
            const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", "connect-protocol-version": "1" }, body: "{}" });
            return `status ${response.status}`;
          } catch (error) {
            return `refused: ${(error as Error).message}`;
          }
        }, `http://127.0.0.1:${server.webPort}/medsynth.v1.Translator/ListModels`);
        await page.close();
        return outcome;
      });
    assert.match(await call(`http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/`), /^refused: Failed to fetch/);
    assert.equal(await call(`http://127.0.0.1:${(allowedPage.address() as AddressInfo).port}/`), "status 200");
  });
});
