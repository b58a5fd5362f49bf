// Lint: typescript-eslint's recommended rules, plus the layering of DESIGN.md as import
// rules so that review does not have to check the arrows.
import tseslint from 'typescript-eslint';

const noNode = {
  group: ['node:*', 'better-sqlite3', 'pg', 'yaml', 'zod', 'commander', 'tsx', 'tsx/*'],
  message: 'core/ is pure: no IO, no drivers, no parsers (DESIGN.md, layers).',
};
const faces = { group: ['**/cli/**', '**/server/**', '**/ui/**'], message: 'Drivers never import faces.' };
const drivers = {
  group: ['**/engine/**', '**/store/**', '**/app/**', '**/cli/**'],
  message: 'Lower layers never import upper ones.',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '**/.baton/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [noNode, drivers, faces, { group: ['**/define/**'], message: 'core/ does not import define/.' }] },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'core/ reads no environment.' }],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'core/ takes time as a parameter.' },
        { object: 'Math', property: 'random', message: 'core/ takes randomness as a parameter.' },
      ],
    },
  },
  {
    files: ['src/define/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/store/**', '**/engine/**', '**/app/**', '**/cli/**'],
              message: 'define/ sits below store, engine, app and faces.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/engine/**', '**/app/**', '**/cli/**'], message: 'store/ sits below the engine.' }] },
      ],
    },
  },
  {
    files: ['src/triggers/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/app/**', '**/cli/**'], message: 'Drivers never import faces or wiring.' }] },
      ],
    },
  },
  {
    files: ['src/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/app/**', '**/cli/**'], message: 'Drivers never import faces or wiring.' }] },
      ],
    },
  },
  {
    // The web UI runs in the browser: it may take types from the server's schemas, never code.
    files: ['ui/**/*.ts', 'ui/**/*.tsx'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/src/**', 'node:*'],
              allowTypeImports: true,
              message: 'The UI imports only types from the server (import type).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['ui/vite.config.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': 'off' },
  },
  {
    files: ['bench/**/*.js', 'bin/**/*.js'],
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', performance: 'readonly', global: 'readonly' },
    },
  },
);
