import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { axialLayout, edgeLetters, extractSlice, insertSlice } from "../src/volume/axial.js";
import { readNifti, writeNifti } from "../src/imaging/nifti.js";
import { nifti1, NIFTI_FLOAT32, NIFTI_INT16, NIFTI_RGB24 } from "./helpers/nifti.js";

const ramp = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("NIfTI codec", () => {
  it("reads a gzipped int16 volume into physical units with scl_slope/scl_inter and the sform", () => {
    const srow = [[-1, 0, 0, 30], [0, 1.5, 0, -20], [0, 0, 2.5, 5]];
    const file = gzipSync(nifti1({ dims: [5, 4, 3], datatype: NIFTI_INT16, values: ramp(60), slope: 2, inter: -1024, srow }));
    const volume = readNifti(file, "t.nii.gz");
    assert.deepEqual(volume.dims, [5, 4, 3]);
    assert.equal(volume.version, 1);
    assert.deepEqual(Array.from(volume.data.slice(0, 4)), [-1024, -1022, -1020, -1018]);
    assert.equal(volume.data[59], 59 * 2 - 1024);
    assert.deepEqual(volume.affine.slice(0, 3), srow);
  });

  it("reads big-endian float32 and leaves values unscaled when scl_slope is 0", () => {
    const values = ramp(24).map((v) => v * 0.5 - 3);
    const volume = readNifti(nifti1({ dims: [4, 3, 2], datatype: NIFTI_FLOAT32, values, littleEndian: false }));
    assert.equal(volume.littleEndian, false);
    assert.deepEqual(Array.from(volume.data), values);
  });

  it("writes float32 data with the input's geometry, readable again, and marks it not for clinical use", () => {
    const srow = [[0, 0, 2, -10], [-1, 0, 0, 40], [0, 1, 0, 7]];
    const input = nifti1({ dims: [3, 4, 5], datatype: NIFTI_INT16, values: ramp(60), slope: 1, inter: -1024, srow, littleEndian: false });
    const volume = readNifti(input);
    const synthetic = Float32Array.from(volume.data, (v) => v / 3);
    const written = writeNifti(volume, synthetic, { gzip: true, description: "medsynth synthetic CT - NOT FOR CLINICAL USE" });
    const raw = gunzipSync(written);
    const back = readNifti(written);
    assert.deepEqual(back.dims, volume.dims);
    assert.deepEqual(back.affine, volume.affine);
    assert.equal(back.littleEndian, false);
    assert.deepEqual(back.data, synthetic);
    const view = new DataView(raw.buffer, raw.byteOffset);
    assert.equal(view.getInt16(70, false), NIFTI_FLOAT32);
    assert.equal(view.getInt16(72, false), 32);
    assert.equal(view.getFloat32(112, false), 1);
    assert.equal(view.getFloat32(116, false), 0);
    assert.match(new TextDecoder().decode(raw.subarray(148, 228)), /NOT FOR CLINICAL USE/);
    // Everything but the rewritten fields (datatype, bitpix, vox_offset, scaling, cal range, descrip) is the input's header.
    const rewritten = [[70, 74], [108, 132], [148, 228]];
    for (let n = 0; n < 348; n++) {
      if (rewritten.some(([a, b]) => n >= a && n < b)) continue;
      assert.equal(raw[n], input[n], `header byte ${n}`);
    }
  });

  it("refuses 4-D series, colour volumes and non-NIfTI bytes with a message naming the file", () => {
    assert.throws(() => readNifti(nifti1({ dims: [2, 2, 2, 3], datatype: NIFTI_FLOAT32, values: ramp(24) }), "fmri.nii"), /fmri\.nii: dims \[4, 2, 2, 2, 3\]/);
    assert.throws(() => readNifti(nifti1({ dims: [2, 2, 2], datatype: NIFTI_RGB24, values: ramp(8) }), "rgb.nii"), /rgb\.nii: NIfTI datatype 128/);
    assert.throws(() => readNifti(new Uint8Array(400), "zeros.nii"), /zeros\.nii: not a single-file NIfTI/);
  });
});

describe("axial slicing", () => {
  const dims = [4, 3, 2] as const;
  const volume = Float32Array.from(ramp(24));
  const voxel = (i: number, j: number, k: number) => i + 4 * (j + 3 * k);

  it("shows a RAS volume as DICOM shows an axial slice: anterior up, patient's right on the left", () => {
    const layout = axialLayout(dims, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    assert.deepEqual([layout.width, layout.height, layout.count], [4, 3, 2]);
    const slice = extractSlice(volume, layout, 1);
    assert.equal(slice.data[0], voxel(3, 2, 1)); // top-left: most right (i max) and most anterior (j max)
    assert.equal(slice.data[slice.data.length - 1], voxel(0, 0, 1));
  });

  it("keeps an LPS-ordered volume as stored", () => {
    const layout = axialLayout(dims, [[-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
    assert.deepEqual(Array.from(extractSlice(volume, layout, 0).data), ramp(12));
  });

  it("cuts along the voxel axis nearest to superior, whichever it is", () => {
    // i → S, j → A (reversed), k → R: a sagittally stored volume.
    const layout = axialLayout(dims, [[0, 0, 1, 0], [0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]);
    assert.deepEqual([layout.width, layout.height, layout.count], [2, 3, 4]);
    const slice = extractSlice(volume, layout, 2);
    assert.equal(slice.data[0], voxel(2, 0, 1)); // column axis k points right: flipped; row axis j points posterior: kept
  });

  it("says how far apart and which way the columns, rows and slices run, for the viewer's labels", () => {
    // i → 2.5 mm superior, j → 0.5 mm posterior, k → 0.8 mm right.
    const layout = axialLayout(dims, [[0, 0, 0.8, 0], [0, -0.5, 0, 0], [2.5, 0, 0, 0], [0, 0, 0, 1]]);
    assert.deepEqual(layout.spacing, [0.8, 0.5, 2.5]);
    assert.deepEqual([layout.across, layout.down], [[-1, 0, 0], [0, -1, 0]]);
    assert.deepEqual(edgeLetters(layout.across, layout.down), { left: "R", right: "L", top: "A", bottom: "P" });
    // Tilted 30° about the superior axis: the labels name both axes, the stronger first.
    const c = Math.cos(Math.PI / 6);
    const tilted = axialLayout(dims, [[-c, 0.5, 0, 0], [-0.5, -c, 0, 0], [0, 0, 1, 0]]);
    assert.deepEqual(edgeLetters(tilted.across, tilted.down), { left: "RA", right: "LP", top: "AL", bottom: "PR" });
    // No affine at all: shown as stored, labelled as an axial DICOM image.
    const bare = axialLayout(dims, [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]);
    assert.deepEqual([bare.spacing, edgeLetters(bare.across, bare.down)], [[1, 1, 1], { left: "R", right: "L", top: "A", bottom: "P" }]);
  });

  it("labels a sagittal image's edges with A/P and S/I", () => {
    // DICOM's sagittal: columns toward posterior, rows toward inferior.
    assert.deepEqual(edgeLetters([0, -1, 0], [0, 0, -1]), { left: "A", right: "P", top: "S", bottom: "I" });
  });

  it("puts slices back exactly where they came from", () => {
    for (const affine of [
      [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]],
      [[0, 0, 1, 0], [0, -1, 0, 0], [1, 0, 0, 0]],
      [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    ]) {
      const layout = axialLayout(dims, affine);
      const copy = new Float32Array(volume.length).fill(NaN);
      for (let s = 0; s < layout.count; s++) insertSlice(copy, layout, s, extractSlice(volume, layout, s));
      assert.deepEqual(copy, volume);
    }
    const layout = axialLayout(dims, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]);
    assert.throws(() => insertSlice(volume, layout, 0, { width: 3, height: 3, data: new Float32Array(9) }), /slice 0 is 3×3/);
  });
});
