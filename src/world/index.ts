/** The benchmark world: generate a seeded fictional world, render it as training and evaluation data, grade answers. */

export * from './active-sources.ts';
export * from './corrupt.ts';
export * from './corrupt-score.ts';
export * from './corrupt-write.ts';
export * from './evaluate.ts';
export {
  BIRTH_YEARS,
  type City,
  DEFAULT_WORLD_OPTIONS,
  generateWorld,
  type Person,
  peopleIn,
  RELATIONS,
  type Relation,
  relationValue,
  validateWorldOptions,
  WORLD_SPLITS,
  type World,
  type WorldOptions,
  type WorldSplit,
} from './generate.ts';
export { extractAnswer, gradeAnswer, readEvalRecords } from './grade.ts';
export * from './know-unknown.ts';
export * from './oracle.ts';
export {
  ABSTENTION_ANSWER,
  abstentionPeople,
  heldOutUnknownQuestions,
  isAbstention,
  PREFERENCE_FILES,
  type PreferencePairsOptions,
  renderPreferencePairs,
  type WorldPreferencePair,
  writePreferencePairs,
} from './preferences.ts';
export {
  type EvalRecord,
  type EvalSplit,
  type FinetuneRecord,
  mixEvalSplits,
  type PromptCompletionRecord,
  type RenderedWorld,
  renderBiography,
  renderEvalSplit,
  renderFinetuneRecords,
  renderOodQuestions,
  renderPretrainDocuments,
  renderWorld,
  type TextRecord,
  trainingQuestions,
} from './render.ts';
export * from './selection.ts';
export * from './steps.ts';
export {
  BIOGRAPHY_TEMPLATES,
  QUESTION_TEMPLATES,
  type QuestionTemplates,
  qaPrompt,
  qaText,
} from './templates.ts';
export {
  countWorld,
  toCorpusText,
  toJsonl,
  WORLD_FILES,
  type WorldCounts,
  type WriteWorldResult,
  writeWorld,
} from './write.ts';
