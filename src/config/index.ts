/** config/: registries of pluggable methods and the YAML config toolkit shared by every command. */
export * from './option-paths.ts';
export * from './registry.ts';
export * from './schema-info.ts';
export * from './suggest.ts';
export * from './yaml.ts';
