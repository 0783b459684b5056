/**
 * dcmjs, with its logging off: its warnings quote attribute values (patient
 * data), and every failure that matters is thrown and reported per slice.
 * Import dcmjs from here. (dcmjs-codecs reads with a copy of its own,
 * silenced in dicom-codecs.ts.)
 */
import dcmjs from "dcmjs";

dcmjs.log.setLevel("silent");

export default dcmjs;
