import { createHmac, randomBytes } from "node:crypto";
import type { NaturalDataset } from "dcmjs";
import { uidFromBytes } from "./dicom-uid.js";

/**
 * PS3.15 Table E.1-1 actions of the Basic Application Level Confidentiality
 * Profile, for the attributes a derived instance can hold (the common subset):
 * X remove, Z empty (Patient Name/ID get a consistent pseudonym, which Z
 * allows), U replace the UID consistently.
 */
const BASIC_PROFILE: Readonly<Record<string, "X" | "Z" | "U">> = {
  // Patient
  PatientName: "Z", PatientID: "Z", IssuerOfPatientID: "X", PatientBirthDate: "Z", PatientBirthTime: "X", PatientSex: "Z",
  PatientAge: "X", PatientSize: "X", PatientWeight: "X", PatientAddress: "X", PatientTelephoneNumbers: "X",
  PatientMotherBirthName: "X", PatientBirthName: "X", PatientComments: "X", OtherPatientIDs: "X", OtherPatientNames: "X",
  OtherPatientIDsSequence: "X", MedicalRecordLocator: "X", EthnicGroup: "X", Occupation: "X", AdditionalPatientHistory: "X",
  MilitaryRank: "X", BranchOfService: "X", CountryOfResidence: "X", RegionOfResidence: "X", SmokingStatus: "X",
  PregnancyStatus: "X", MedicalAlerts: "X", Allergies: "X", PatientReligiousPreference: "X", ResponsiblePerson: "X",
  ResponsibleOrganization: "X", ReferencedPatientSequence: "X",
  // Study, visit and request
  StudyInstanceUID: "U", StudyDate: "Z", StudyTime: "Z", StudyID: "Z", AccessionNumber: "Z", ReferringPhysicianName: "Z",
  StudyDescription: "X", AdmittingDiagnosesDescription: "X", AdmissionID: "X", ReferencedStudySequence: "X",
  RequestingPhysician: "X", RequestAttributesSequence: "X", NameOfPhysiciansReadingStudy: "X", PhysiciansOfRecord: "X",
  ReferencedPerformedProcedureStepSequence: "X", PerformedProcedureStepDescription: "X", PerformedProcedureStepID: "X",
  PerformedProcedureStepStartDate: "X", PerformedProcedureStepStartTime: "X",
  // Series, equipment and acquisition
  SeriesInstanceUID: "U", SeriesDate: "X", SeriesTime: "X", SeriesDescription: "X", ProtocolName: "X",
  PerformingPhysicianName: "X", OperatorsName: "X", InstitutionName: "X", InstitutionAddress: "X",
  InstitutionalDepartmentName: "X", StationName: "X", DeviceSerialNumber: "X", AcquisitionDate: "X", AcquisitionTime: "X",
  AcquisitionDateTime: "X", AcquisitionComments: "X", FrameOfReferenceUID: "U", SynchronizationFrameOfReferenceUID: "U",
  // Instance
  SOPInstanceUID: "U", InstanceCreationDate: "X", InstanceCreationTime: "X", InstanceCreatorUID: "U", ContentDate: "Z",
  ContentTime: "Z", TimezoneOffsetFromUTC: "X", ImageComments: "X", DerivationDescription: "X", ReferencedSOPInstanceUID: "U",
  ReferencedFrameOfReferenceUID: "U", IrradiationEventUID: "U", DeidentificationMethod: "X",
};

/** Holds the per-series secret that makes replacements consistent within a series and unlinkable across series. */
export interface Deidentifier {
  /** A stable replacement UID under the root. */
  uid(original: string): string;
  /** A stable pseudonym ("ANON-" and 16 hex digits). */
  pseudonym(original: string): string;
}

export function createDeidentifier(uidRoot: string): Deidentifier {
  const key = randomBytes(32);
  const mac = (value: string) => createHmac("sha256", key).update(value).digest();
  return {
    uid: (original) => uidFromBytes(uidRoot, mac(`uid:${original}`)),
    pseudonym: (original) => `ANON-${mac(`id:${original}`).toString("hex").slice(0, 16).toUpperCase()}`,
  };
}

/**
 * Applies the Basic Profile to a dataset (dcmjs natural form), descending
 * into sequences, and records that it did. Attributes outside the table are
 * kept: the caller passes only attributes it carries over or generates.
 */
export function deidentify(dataset: NaturalDataset, keys: Deidentifier): NaturalDataset {
  return {
    ...clean(dataset, keys),
    PatientIdentityRemoved: "YES",
    DeidentificationMethod: "PS3.15 Basic Application Level Confidentiality Profile",
    DeidentificationMethodCodeSequence: [
      { CodeValue: "113100", CodingSchemeDesignator: "DCM", CodeMeaning: "Basic Application Confidentiality Profile" },
      // The series description, derivation description and comments are the writer's own text, added after cleaning.
      { CodeValue: "113105", CodingSchemeDesignator: "DCM", CodeMeaning: "Clean Descriptors Option" },
    ],
    // Dates are removed or emptied, not shifted.
    LongitudinalTemporalInformationModified: "REMOVED",
  };
}

function clean(dataset: NaturalDataset, keys: Deidentifier): NaturalDataset {
  const out: NaturalDataset = {};
  for (const [keyword, value] of Object.entries(dataset)) {
    const action = BASIC_PROFILE[keyword];
    if (action === "X") continue;
    if (action === "Z") {
      out[keyword] = keyword === "PatientName" || keyword === "PatientID" ? keys.pseudonym(textOf(value)) : "";
    } else if (action === "U") {
      out[keyword] = Array.isArray(value) ? value.map((uid) => keys.uid(String(uid))) : keys.uid(String(value));
    } else if (Array.isArray(value) && value.length > 0 && value.every(isDataset)) {
      out[keyword] = value.map((item) => clean(item, keys));
    } else {
      out[keyword] = value;
    }
  }
  return out;
}

const isDataset = (value: unknown): value is NaturalDataset =>
  typeof value === "object" && value !== null && !ArrayBuffer.isView(value) && !(value instanceof ArrayBuffer) && !Array.isArray(value);

/** A PN, LO, DA or TM value as text (dcmjs gives names as [{ Alphabetic }]). */
export function textOf(value: unknown): string {
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first === "object" && first !== null && "Alphabetic" in first) return String(first.Alphabetic);
  return first === undefined || first === null ? "" : String(first);
}
