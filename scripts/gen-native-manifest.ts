// Regenerates native/src/manifest.gen.h from src/backend/manifest.ts (run after changing the
// manifest, then `npm run build:native`): node --import tsx scripts/gen-native-manifest.ts
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeManifestHeader } from '../src/backend/native/manifest-header.ts';

const path = join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'src', 'manifest.gen.h');
writeFileSync(path, nativeManifestHeader());
console.log(`wrote ${path}`);
