import { createRequire } from 'node:module';
import type { ValidatorFactory } from '@fastify/ajv-compiler';
import type { SerializerFactory } from '@fastify/fast-json-stringify-compiler';

// The compilers are Fastify's own dependencies: resolved from Fastify, as it would.
const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));

type Factory = (...args: unknown[]) => unknown;

/** A compiler factory whose package is required on its first call, then kept. */
function loadedOnUse(name: string): Factory {
  let factory: Factory | undefined;
  return (...args) => {
    factory ??= (fromFastify(name) as () => Factory)();
    return factory(...args);
  };
}

/**
 * Fastify's `schemaController.compilersFactory`, with ajv (validation) and fast-json-stringify
 * (serialization) loaded only when a route declares a schema. Portcullis's routes declare none:
 * bodies are checked by json-body.ts and form.ts, answers are JSON.stringify'd. So no node carries
 * the two compilers' code (about 3 MB of heap), though a plugin that brings a schema still works.
 */
export const lazySchemaCompilers = {
  buildValidator: loadedOnUse('@fastify/ajv-compiler') as ValidatorFactory,
  buildSerializer: loadedOnUse('@fastify/fast-json-stringify-compiler') as SerializerFactory,
};
