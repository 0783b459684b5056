// DICOM in and out for the codec: decode a Part-10 slice to physical units,
// and write synthetic slices as a derived series.
export { decodeDicom, type DicomDecodeOptions, type DicomSource } from "./dicom-read.js";
export { createDerivedSeries, type DerivedSeries, type DerivedSeriesOptions, type DerivedSlice } from "./dicom-write.js";
export { checkUidRoot, DEFAULT_UID_ROOT, newUid } from "./dicom-uid.js";
