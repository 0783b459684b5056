// The part of dcmjs (which ships no types) that the DICOM codec uses.
declare module "dcmjs" {
  /** dcmjs "natural" form: attribute keyword → value (sequences are arrays of datasets). */
  export type NaturalDataset = Record<string, unknown>;
  /** dcmjs "denaturalized" form: tag "GGGGEEEE" → { vr, Value }. */
  export type TagDataset = Record<string, { vr: string; Value?: unknown[] }>;

  export class DicomDict {
    constructor(meta: TagDataset);
    meta: TagDataset;
    dict: TagDataset;
    /** A Part-10 file in the meta header's transfer syntax. */
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }

  interface Data {
    DicomDict: typeof DicomDict;
    DicomMessage: {
      /** untilTag ("GGGGEEEE"): stop reading there (e.g. "7FE00010", the header without the pixels). */
      readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string }): DicomDict;
    };
    DicomMetaDictionary: {
      naturalizeDataset(dataset: TagDataset): NaturalDataset;
      denaturalizeDataset(dataset: NaturalDataset): TagDataset;
      /** A subset of storage SOP classes, e.g. "1.2.840.10008.5.1.4.1.1.2" → "CTImage". */
      sopClassNamesByUID: Record<string, string>;
      sopClassUIDsByName: Record<string, string>;
    };
  }

  const dcmjs: {
    data: Data;
    log: { setLevel(level: "trace" | "debug" | "info" | "warn" | "error" | "silent"): void };
  };
  export default dcmjs;
}
