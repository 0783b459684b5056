// The viewer page in a real browser: Debian's chromium (installed by
// .ci/run; CHROMIUM_PATH overrides) driven headless by playwright-core,
// against a real server on loopback with the default models. It opens
// phantom test slices (MR, with the CT as reference), waits for every
// synthetic slice, checks that the panels are drawn, greyscale, in the window
// chosen (also when it is changed after loading), that the metrics it shows
// are the ones a gRPC client gets for the same slices, and that a NIfTI
// volume stored in another axis order is cut into the same axial slices, and
// grey slices stored as RGB or palette PNG give the same answers (and, for the palettes, the same picture);
// per-slice errors are listed; a page of an origin not allowed cannot call the port. MEDSYNTH_UPDATE_SCREENSHOT=1 rewrites docs/viewer.png.
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { chromium, type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { createClient } from "../../src/client/client.js";
import { Encoding, ImageSchema, type Quality } from "../../src/gen/medsynth/v1/translator_pb.js";
import { decodeImage } from "../../src/imaging/codec.js";
import type { RunningServer } from "../../src/server/server.js";
import { nifti1, NIFTI_FLOAT32 } from "../helpers/nifti.js";
import { freePort } from "../helpers/net.js";
import { handMadePng, PNG_PALETTE, unfilteredRows } from "../helpers/png.js";
import { startTestServer } from "../helpers/service.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SUBJECT = "models/testdata/subject-101";
/** The middle of the head: 12 of the subject's 24 slices. */
const NAMES = readdirSync(join(SUBJECT, "mr")).filter((n) => n.endsWith(".png")).sort().slice(6, 18);
/** The slice the page shows first: the middle one. */
const VISIBLE = Math.floor(NAMES.length / 2);
const METRICS = ["psnr", "ssim", "uqi", "vif", "mae"] as const;
const DIGITS = { psnr: 2, ssim: 4, uqi: 4, vif: 4, mae: 1 };
/** The page's CT presets (level, width), as its select names them. */
const WINDOWS = { brain: [40, 80], bone: [600, 2800] } as const;

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

/** A panel's image as shown, without its text: RGB pixels (less a 2-pixel rim, where the frame may bleed in at fractional offsets). */
async function panelPixels(page: Page, panel: string): Promise<Buffer> {
  const png = await page.locator(`#panel-${panel} canvas`).screenshot({ style: ".corner, .edge { visibility: hidden; }", timeout: 30_000 });
  const { width = 0, height = 0 } = await sharp(png).metadata();
  return sharp(png).extract({ left: 2, top: 2, width: width - 4, height: height - 4 }).removeAlpha().raw().toBuffer();
}

const meanGrey = (rgb: Buffer) => rgb.reduce((sum, v) => sum + v, 0) / rgb.length;
/** Standard deviation of the grey levels: 0 for a blank panel. */
function spread(rgb: Buffer): number {
  const mean = meanGrey(rgb);
  return Math.sqrt(rgb.reduce((sum, v) => sum + (v - mean) ** 2, 0) / rgb.length);
}
/** The largest difference between a pixel's red, green and blue: 0 for greyscale. */
function colourfulness(rgb: Buffer): number {
  let most = 0;
  for (let i = 0; i < rgb.length; i += 3) most = Math.max(most, Math.abs(rgb[i] - rgb[i + 1]), Math.abs(rgb[i + 1] - rgb[i + 2]));
  return most;
}
/** The mean grey level of `values` shown in window (level, width): what the panel's mean must be. */
function windowedMean(values: Float32Array, [level, width]: readonly [number, number]): number {
  return values.reduce((sum, v) => sum + 255 * Math.min(1, Math.max(0, (v - level + width / 2) / width)), 0) / values.length;
}

/** Phantom PNG slices in physical units, decoded as the service decodes them (the test data's convention: MR as stored, CT stored as HU + 1024). */
function physical(modality: "mr" | "ct", names: readonly string[]): Promise<Float32Array[]> {
  const rescaleIntercept = modality === "ct" ? -1024 : 0;
  return Promise.all(
    names.map(async (name) => {
      const image = create(ImageSchema, { encoding: Encoding.PNG, data: readFileSync(join(SUBJECT, modality, name)), rescaleSlope: 1, rescaleIntercept });
      return (await decodeImage(image, "png")).raster.data;
    }),
  );
}

type PickedFile = { name: string; mimeType: string; buffer: Buffer };

/**
 * Opens a source and a reference series on the page, waits until all `count` slices are answered (a count
 * the page did not show before, or the wait would pass at once) and returns the metrics it shows per slice.
 */
async function translatedMetrics(page: Page, source: PickedFile[], reference: PickedFile[], count: number): Promise<number[][]> {
  await page.setInputFiles("#reference-files", reference);
  await page.setInputFiles("#source-files", source);
  await page.waitForFunction(`document.body.dataset.translated === "${count}" && document.getElementById("per-slice").rows.length === ${count}`, undefined, {
    timeout: 120_000,
    polling: 250,
  });
  assert.equal(await page.getAttribute("body", "data-failed"), "0");
  return page.$$eval("#per-slice tr", (rows) => rows.map((row) => [...row.querySelectorAll("td[data-metric]")].map((td) => Number(td.getAttribute("data-value")))));
}

/**
 * The slices as a NIfTI volume stored slice axis first, then columns toward
 * the patient's right, then rows toward anterior (0.9 mm pixels, 2.5 mm
 * slices): neither axial-first nor in display order, so a viewer that cut
 * the stored third axis would get 256 slices of 4×256.
 */
function sagittalFirst(slices: Float32Array[], size: number): Uint8Array {
  const values = new Array<number>(slices.length * size * size);
  slices.forEach((slice, s) => {
    for (let row = 0; row < size; row++) {
      for (let column = 0; column < size; column++) values[s + slices.length * (size - 1 - column + size * (size - 1 - row))] = slice[row * size + column];
    }
  });
  return nifti1({ dims: [slices.length, size, size], datatype: NIFTI_FLOAT32, values, slope: 1, srow: [[0, 0.9, 0, -115], [0, 0, 0.9, -115], [2.5, 0, 0, -40]] });
}

describe("viewer page in a real browser", () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let outside: string[];
  /** What a gRPC client gets for each of NAMES: the metrics and the synthetic CT. */
  const grpc: { quality: Quality; synthetic: Float32Array }[] = [];

  before(async () => {
    // One slice per batch: the page's slices (three in flight) and the gRPC client's (one at a time) then take the same arithmetic path.
    server = await startTestServer({ modelsDir: "models", webPort: await freePort(), workers: 2, maxBatch: 1 });
    browser = await launch();
    ({ page, outside } = await openViewer(browser, server));
  });
  after(async () => {
    await page?.close();
    await browser?.close();
    await server?.close();
  });

  it("translates the phantom series, draws original | synthetic | difference, and shows the metrics a gRPC client gets", async () => {
    assert.match(await page.locator("#model").inputValue(), /^mr2ct-heads$/);
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
        const { data } = result.image!;
        grpc.push({ quality: result.quality!, synthetic: new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) });
      }
    } finally {
      client.close();
    }
    for (const { slice, cells } of shown) {
      assert.deepEqual(cells.map((c) => c.metric), [...METRICS]);
      for (const { metric, value, text } of cells) {
        const expected = grpc[slice].quality[metric as (typeof METRICS)[number]]!;
        assert.equal(Number(value), expected, `slice ${slice} ${metric}: the page's value is the gRPC client's`);
        assert.equal(text, expected.toFixed(DIGITS[metric as keyof typeof DIGITS]), `slice ${slice} ${metric} as shown`);
      }
    }
    const mean = (m: (typeof METRICS)[number]) => grpc.reduce((sum, { quality }) => sum + quality[m]!, 0) / grpc.length;
    const meanRow = await page.$$eval("#metrics-mean td", (cells) => cells.map((c) => c.textContent));
    assert.deepEqual(meanRow, METRICS.map((m) => mean(m).toFixed(DIGITS[m])), "the series mean");

    // The visible slice in all three panels: original and synthetic greyscale, the difference in colour, with its scale.
    await page.waitForFunction(`document.body.dataset.shown === "${VISIBLE} brain 0"`);
    const pixels = { original: await panelPixels(page, "original"), synthetic: await panelPixels(page, "synthetic"), difference: await panelPixels(page, "difference") };
    for (const [panel, rgb] of Object.entries(pixels)) assert.ok(spread(rgb) > 8, `${panel} is drawn (not blank)`);
    assert.ok(colourfulness(pixels.original) <= 2 && colourfulness(pixels.synthetic) <= 2, "original and synthetic are greyscale");
    assert.ok(colourfulness(pixels.difference) > 100, "the difference is in colour");
    assert.deepEqual(await page.locator("#panel-difference .ticks span").allTextContents(), ["−200", "0 HU", "+200"]);
    assert.deepEqual(await page.locator("#panel-synthetic [data-label=window]").textContent(), "W 80  L 40 HU");
    assert.deepEqual(await page.locator("#panel-original .edge").allTextContents(), ["R", "L", "A", "P"]);
    assert.deepEqual(outside, [], "no request leaves the web port (works offline)");
  });

  it("redraws the synthetic CT in the window chosen after the slices are in", async () => {
    const means: Record<string, number> = {};
    for (const name of ["bone", "brain", "bone"] as const) {
      await page.selectOption("#ct-window", name);
      await page.waitForFunction(`document.body.dataset.shown === "${VISIBLE} ${name} 0"`, undefined, { timeout: 30_000 });
      const rgb = await panelPixels(page, "synthetic");
      const expected = windowedMean(grpc[VISIBLE].synthetic, WINDOWS[name]);
      assert.ok(Math.abs(meanGrey(rgb) - expected) < 3, `${name} window: mean grey ${meanGrey(rgb).toFixed(1)}, expected ${expected.toFixed(1)}`);
      assert.equal(await page.locator("#panel-synthetic [data-label=window]").textContent(), `W ${WINDOWS[name][1]}  L ${WINDOWS[name][0]} HU`);
      means[name] = meanGrey(rgb);
    }
    assert.ok(Math.abs(means.brain - means.bone) > 10, `brain ${means.brain.toFixed(1)} and bone ${means.bone.toFixed(1)} windows look different`);
  });

  it("blends the synthetic image into the original in greyscale, from 0% (the original alone) to 100% (the synthetic alone)", async () => {
    assert.equal(await page.locator("#opacity").inputValue(), "0", "the original alone by default");
    const alone = await panelPixels(page, "original");
    await page.locator("#opacity").fill("0.5");
    await page.waitForFunction(`document.body.dataset.shown === "${VISIBLE} bone 0.5"`);
    const half = await panelPixels(page, "original");
    assert.ok(colourfulness(half) <= 2, "a greyscale blend");
    await page.locator("#opacity").fill("1");
    await page.waitForFunction(`document.body.dataset.shown === "${VISIBLE} bone 1"`);
    const full = await panelPixels(page, "original");
    const synthetic = await panelPixels(page, "synthetic");
    assert.ok(Math.abs(meanGrey(full) - meanGrey(synthetic)) < 2, `at 100% the original panel shows the synthetic CT (${meanGrey(full).toFixed(1)} vs ${meanGrey(synthetic).toFixed(1)})`);
    const between = (meanGrey(alone) + meanGrey(full)) / 2;
    assert.ok(Math.abs(meanGrey(half) - between) < 2, `50% lies halfway (${meanGrey(half).toFixed(1)} vs ${between.toFixed(1)})`);

    // The picture in the README: the brain window, the original alone.
    await page.locator("#opacity").fill("0");
    await page.selectOption("#ct-window", "brain");
    await page.waitForFunction(`document.body.dataset.shown === "${VISIBLE} brain 0"`);
    await page.evaluate("document.activeElement?.blur()"); // no focus ring in the picture
    const picture = await page.screenshot({ fullPage: true });
    if (process.env.MEDSYNTH_UPDATE_SCREENSHOT) await sharp(picture).png({ compressionLevel: 9, palette: true }).toFile("docs/viewer.png");
  });

  it("cuts a NIfTI volume stored in another axis order into the axial slices the CLI sends", async () => {
    const picked = NAMES.slice(4, 8);
    const [mr, ct] = await Promise.all([physical("mr", picked), physical("ct", picked)]);
    const file = (name: string, slices: Float32Array[]) => ({ name, mimeType: "application/octet-stream", buffer: Buffer.from(sagittalFirst(slices, 256)) });
    const values = await translatedMetrics(page, [file("mr.nii", mr)], [file("ct.nii", ct)], picked.length);
    // The same pixels as the PNG slices, so the same answers as the gRPC client got for them.
    assert.deepEqual(values, picked.map((_, s) => METRICS.map((m) => grpc[4 + s].quality[m])));
    assert.equal(await page.locator("#panel-original [data-label=note]").textContent(), "256×256 · 0.90×0.90 mm");
    assert.deepEqual(await page.locator("#panel-original .edge").allTextContents(), ["R", "L", "A", "P"]);
    assert.equal(await page.locator("#slice-label").textContent(), `3 / 4 · mr-002`);
  });

  it("reads grey slices stored as 16-bit RGB PNG as the service does: the same answers as the greyscale files", async () => {
    const picked = NAMES.slice(2, 7); // five: the NIfTI test left four
    const rgb = (modality: string) =>
      Promise.all(picked.map(async (name) => ({ name, mimeType: "image/png", buffer: await sharp(join(SUBJECT, modality, name)).toColourspace("rgb16").png().toBuffer() })));
    const [mr, ct] = await Promise.all([rgb("mr"), rgb("ct")]);
    const meta = await sharp(mr[0].buffer).metadata();
    assert.deepEqual([meta.channels, meta.depth], [3, "ushort"], "the files really are RGB");
    const values = await translatedMetrics(page, mr, ct, picked.length);
    assert.deepEqual(values, picked.map((_, s) => METRICS.map((m) => grpc[2 + s].quality[m])));
  });

  it("reads palette PNGs, 8-bit and 4-bit, as it reads greyscale: the same picture and the same answers", async () => {
    // MR slices brought to 16 grey levels (17 apart), so that an 8-bit greyscale, an 8-bit palette and a
    // 4-bit palette PNG store the same values; both palettes run backwards, so reading an index as its grey
    // would turn the picture over.
    const picked = NAMES.slice(7, 10);
    const levels = (await physical("mr", picked)).map((mr) => {
      const top = mr.reduce((a, b) => Math.max(a, b), 0);
      return Uint8Array.from(mr, (v) => 17 * Math.round((15 * v) / top));
    });
    const side = 256;
    const file = (k: number, buffer: Buffer) => ({ name: picked[k], mimeType: "image/png", buffer });
    const greyscale = (k: number) => file(k, handMadePng({ width: side, height: side, bits: 8, rows: unfilteredRows(levels[k], side, 8) }));
    const palette8 = (k: number) => {
      const palette = Array.from({ length: 256 }, (_, j) => [255 - j, 255 - j, 255 - j]).flat();
      return file(k, handMadePng({ width: side, height: side, bits: 8, colour: PNG_PALETTE, palette, rows: unfilteredRows(levels[k].map((v) => 255 - v), side, 8) }));
    };
    const palette4 = (k: number) => {
      const palette = Array.from({ length: 16 }, (_, j) => [17 * (15 - j), 17 * (15 - j), 17 * (15 - j)]).flat();
      return file(k, handMadePng({ width: side, height: side, bits: 4, colour: PNG_PALETTE, palette, rows: unfilteredRows(levels[k].map((v) => 15 - v / 17), side, 4) }));
    };
    const ct = picked.map((name) => ({ name, mimeType: "image/png", buffer: readFileSync(join(SUBJECT, "ct", name)) }));
    // Each form on a page of its own: the MR window comes from the series' percentiles, so the same slices each time.
    const shown = async (source: PickedFile[]) => {
      const { page: own } = await openViewer(browser, server);
      try {
        const values = await translatedMetrics(own, source, ct, source.length);
        return { values, picture: await panelPixels(own, "original") };
      } finally {
        await own.close();
      }
    };
    const slices = [0, 1, 2];
    const asGrey = await shown(slices.map(greyscale));
    assert.ok(spread(asGrey.picture) > 8, "the slice is drawn");
    assert.deepEqual(await shown(slices.map(palette8)), asGrey, "8-bit palette");
    assert.deepEqual(await shown(slices.map(palette4)), asGrey, "4-bit palette");
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
