/**
 * History fixtures as JSON: protobufjs' own object form (enums and 64-bit numbers as strings,
 * bytes as base64), written and read with @temporalio/proto's classes. (The SDK's historyToJSON
 * fails in this install: @temporalio/common and @temporalio/proto each get their own copy of
 * protobufjs, and its JSON writer refuses types from the other copy.)
 */
import path from 'node:path';
import { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;
const HistoryType = temporal.api.history.v1.History;

/** Stack traces in failures name files of the machine that recorded them: those become relative. */
const ROOT = path.resolve(__dirname, '..', '..');

export function historyToFile(history: History): string {
  const object = HistoryType.toObject(HistoryType.fromObject(history), { enums: String, longs: String, bytes: String, defaults: false });
  return `${JSON.stringify(object, null, 1).split(`${ROOT}/`).join('')}\n`;
}

export function historyFromFile(text: string): temporal.api.history.v1.History {
  return HistoryType.fromObject(JSON.parse(text));
}
