/**
 * The registered bench experiments: each file below calls `registerExperiment` once. A new
 * experiment is a new file here plus one import line.
 */
import './cascade.ts';
import './cge.ts';
import './clear.ts';
import './dpo.ts';
import './first.ts';
import './fusion.ts';
import './intrinsic-d90.ts';
import './know-unknown.ts';
import './lt-sft-compose.ts';
import './masked-thought.ts';
import './mcts-dpo.ts';
import './portllm.ts';
import './selection.ts';
import './uq.ts';
import './star.ts';
