// GET /v1/map and /v1/map/:name: the datapath's maps and their entries, decoded by the map catalog.
import type { FastifyPluginAsync } from 'fastify';
import { ApiError, type MapService } from '../control/types.ts';
import { errorResponses } from './errors.ts';
import type { ApiPluginOptions } from './plugin.ts';

export const MapSummarySchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    type: { type: 'string' },
    keySize: { type: 'integer' },
    valueSize: { type: 'integer' },
    maxEntries: { type: 'integer' },
    count: { type: 'integer' },
    pressure: { type: 'number', description: 'count / maxEntries' },
  },
} as const;

export const MapEntrySchema = {
  type: 'object',
  properties: {
    key: { type: 'string' },
    value: { type: 'string' },
    decoded: {
      type: 'object',
      description: 'the typed key and value the map catalog decoded (absent for a map it does not know)',
      properties: { key: { type: 'object', additionalProperties: true }, value: { type: 'object', additionalProperties: true } },
    },
  },
} as const;

const MapDumpSchema = {
  type: 'object',
  properties: { name: { type: 'string' }, entries: { type: 'array', items: MapEntrySchema } },
} as const;

const MapParams = {
  type: 'object',
  properties: { name: { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' } },
  required: ['name'],
} as const;

export const mapPlugin: FastifyPluginAsync<ApiPluginOptions<MapService>> = async (app, { agent }) => {
  app.get('/v1/map', {
    schema: { summary: 'List maps', tags: ['map'], response: { 200: { type: 'array', items: MapSummarySchema } } },
  }, async () => agent.listMaps());

  app.get<{ Params: { name: string } }>('/v1/map/:name', {
    schema: { summary: 'Dump a map, decoded', tags: ['map'], params: MapParams, response: { 200: MapDumpSchema, ...errorResponses(400, 404) } },
  }, async (req) => {
    const entries = agent.dumpMap(req.params.name);
    if (!entries) throw new ApiError(404, `map "${req.params.name}" not found`);
    return { name: req.params.name, entries };
  });
};
