/**
 * Curate a JSONL fine-tuning file with CLEAR: read and validate every line first (a bad one is a
 * DataError `file:line`, or, with onBadRecord 'skip', a removed record in the report), measure the
 * BSDetector confidence of each `{prompt, completion}` record with the model, decide keep / remove /
 * correct, then write the curated JSONL and the report, each atomically. The input is never
 * modified; `{text}` records have no response to judge and are kept as they are.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type OnBadRecord, toRecord } from '../data/index.ts';
import { DataError, FormatError, UsageError } from '../errors.ts';
import { writeTextAtomic } from '../io/atomic.ts';
import type { Tokenizer } from '../io/index.ts';
import { writeJsonAtomic } from '../io/json.ts';
import type { CausalLM } from '../models/index.ts';
import { BSDETECTOR_DEFAULTS, type BsdetectorOptions, scorePair } from './bsdetector.ts';
import { CLEAR_CORRECT_THRESHOLD, type ClearOptions, type CurationAction, decideCuration } from './clear.ts';

/** One record of the curation report. */
export interface CurationReportRecord {
  /** 1-based line of the input file. */
  line: number;
  action: CurationAction;
  why: string;
  /** BSDetector confidence of the response (null for records that were not judged). */
  confidence: number | null;
  consistency: number | null;
  reflection: number | null;
  response: string | null;
  modelAnswer: string | null;
  modelConfidence: number | null;
  /** The new response (action 'correct'). */
  corrected?: string;
}

/** The report file (`--report`). */
export interface CurationReport {
  format: 'attune-curation-report';
  version: 1;
  data: string;
  settings: {
    k: number;
    alpha: number;
    beta: number;
    temperature: number;
    reflection: 'choices' | 'none';
    filter: 'median' | number;
    cut: number;
    correctThreshold: number;
    seed: number;
  };
  summary: {
    records: number;
    kept: number;
    removed: number;
    corrected: number;
    malformed: number;
    unjudged: number;
  };
  records: CurationReportRecord[];
}

/** What `curateFile` is given. */
export interface CurateFileOptions extends BsdetectorOptions, ClearOptions {
  /** The input JSONL. */
  data: string;
  /** The curated JSONL to write. */
  out: string;
  /** The report JSON to write (optional). */
  report?: string;
  onBadRecord?: OnBadRecord;
  onProgress?: (done: number, total: number) => void;
}

/** A line of the input: its parsed object and validated prompt/completion, or why it is bad. */
type InputLine =
  | { line: number; kind: 'judge'; object: Record<string, unknown>; prompt: string; completion: string }
  | { line: number; kind: 'text'; object: Record<string, unknown> }
  | { line: number; kind: 'bad'; reason: string };

/** Parse and validate every line of `text` (the contents of `file`). */
export function readCurationInput(text: string, file: string, onBadRecord: OnBadRecord): InputLine[] {
  const out: InputLine[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    const body = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (body.trim() === '') return;
    try {
      let value: unknown;
      try {
        value = JSON.parse(body);
      } catch (error) {
        throw new DataError(
          file,
          line,
          `invalid JSON: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`,
        );
      }
      const record = toRecord(value, file, line);
      const object = value as Record<string, unknown>;
      if (record.shape === 'text') out.push({ line, kind: 'text', object });
      else if (record.shape === 'prompt_completion') {
        if (record.prompt.trim() === '')
          throw new DataError(file, line, 'the prompt is empty: CLEAR needs a question to ask the model');
        out.push({ line, kind: 'judge', object, prompt: record.prompt, completion: record.completion });
      } else
        throw new DataError(
          file,
          line,
          `curate judges {prompt, completion} records (and keeps {text}); found a ${record.shape} record`,
        );
    } catch (error) {
      if (!(error instanceof DataError) || onBadRecord === 'error') throw error;
      out.push({ line, kind: 'bad', reason: error.message.slice(`${file}:${line}: `.length) });
    }
  });
  return out;
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

/** The leading whitespace of a completion (kept when the response is corrected: " 1972" -> " 1968"). */
function leadingSpace(text: string): string {
  return /^\s*/.exec(text)![0];
}

/** Curate `options.data` with `model` (see the file comment); returns the report (also written to `options.report`). */
export function curateFile(
  model: CausalLM,
  tokenizer: Tokenizer,
  options: CurateFileOptions,
): CurationReport {
  const { data, out } = options;
  for (const [flag, path] of [
    ['--out', out],
    ['--report', options.report],
  ] as const) {
    if (path !== undefined && sameFile(path, data))
      throw new UsageError(`${flag} ${path} is the input file; curate never modifies its input`);
  }
  if (options.report !== undefined && resolve(options.report) === resolve(out))
    throw new UsageError('--report and --out name the same file');
  for (const path of [out, options.report]) {
    if (path === undefined) continue;
    const dir = dirname(resolve(path));
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new UsageError(`${path}: the folder ${dir} does not exist (create it first)`);
  }
  let text: string;
  try {
    text = readFileSync(data, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      data,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
  const input = readCurationInput(text, data, options.onBadRecord ?? 'error');
  const judgedLines = input.filter((l) => l.kind === 'judge');
  if (judgedLines.length === 0) throw new DataError(data, 1, 'no {prompt, completion} record to curate');

  const total = judgedLines.length;
  const scored = judgedLines.map((l, i) => {
    const pair = scorePair(model, tokenizer, l.prompt, l.completion.trim(), options, i);
    options.onProgress?.(i + 1, total);
    return pair;
  });
  const { decisions, cut } = decideCuration(
    scored.map((s, i) => ({ ...s, response: judgedLines[i]!.completion })),
    options,
  );

  const records: CurationReportRecord[] = [];
  const kept: string[] = [];
  let j = 0;
  const blank = {
    confidence: null,
    consistency: null,
    reflection: null,
    response: null,
    modelAnswer: null,
    modelConfidence: null,
  };
  for (const l of input) {
    if (l.kind === 'bad') {
      records.push({ line: l.line, action: 'remove', why: `malformed: ${l.reason}`, ...blank });
      continue;
    }
    if (l.kind === 'text') {
      records.push({
        line: l.line,
        action: 'keep',
        why: 'a {text} record has no response to judge',
        ...blank,
      });
      kept.push(JSON.stringify(l.object));
      continue;
    }
    const s = scored[j]!;
    const d = decisions[j]!;
    j++;
    records.push({
      line: l.line,
      action: d.action,
      why: d.why,
      confidence: s.confidence,
      consistency: s.consistency,
      reflection: s.reflection,
      response: l.completion,
      modelAnswer: s.modelAnswer,
      modelConfidence: s.modelConfidence,
      ...(d.corrected !== undefined ? { corrected: `${leadingSpace(l.completion)}${d.corrected}` } : {}),
    });
    if (d.action === 'keep') kept.push(JSON.stringify(l.object));
    if (d.action === 'correct')
      kept.push(JSON.stringify({ ...l.object, completion: `${leadingSpace(l.completion)}${d.corrected}` }));
  }
  const count = (a: CurationAction) => records.filter((r) => r.action === a).length;
  const report: CurationReport = {
    format: 'attune-curation-report',
    version: 1,
    data,
    settings: {
      k: options.k ?? BSDETECTOR_DEFAULTS.k,
      alpha: options.alpha ?? BSDETECTOR_DEFAULTS.alpha,
      beta: options.beta ?? BSDETECTOR_DEFAULTS.beta,
      temperature: options.temperature ?? BSDETECTOR_DEFAULTS.temperature,
      reflection: options.reflection ?? 'choices',
      filter: options.filter ?? 'median',
      cut,
      correctThreshold: options.correctThreshold ?? CLEAR_CORRECT_THRESHOLD,
      seed: options.seed ?? 0,
    },
    summary: {
      records: records.length,
      kept: count('keep'),
      removed: count('remove'),
      corrected: count('correct'),
      malformed: input.filter((l) => l.kind === 'bad').length,
      unjudged: input.filter((l) => l.kind === 'text').length,
    },
    records,
  };
  writeTextAtomic(out, kept.map((l) => `${l}\n`).join(''));
  if (options.report !== undefined)
    writeJsonAtomic(options.report, report as unknown as Record<string, unknown>);
  return report;
}
