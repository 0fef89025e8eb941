export * from './app-error.js';
export * from './classify.js';
export * from './table.js';
