/**
 * The registered bench experiments: each file below calls `registerExperiment` once. A new
 * experiment is a new file here plus one import line.
 */
import './cge.ts';
import './fusion.ts';
