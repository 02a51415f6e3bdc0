/**
 * Every search attribute the task queue's workflows set, registered where we start Temporal (the
 * dev server's --search-attribute flags) and checked where we do not (a cluster: the worker looks
 * at start and names what is missing, with the command that adds it).
 */
import { temporal } from '@temporalio/proto';
import type { NativeConnection } from '@temporalio/worker';
import type { SearchAttributeType } from '@temporalio/common';
import { BILL_SEARCH_ATTRIBUTES } from '../bills/search-attributes';
import { InvoiceStatusKey } from '../postprocess/messages';

export const SEARCH_ATTRIBUTES: readonly { name: string; type: SearchAttributeType }[] = [...BILL_SEARCH_ATTRIBUTES, InvoiceStatusKey];

/** As the CLI names the types: KEYWORD_LIST is KeywordList. */
const cliType = (type: SearchAttributeType) =>
  type
    .toLowerCase()
    .split('_')
    .map((w) => w[0].toUpperCase() + w.slice(1))
    .join('');

/** `--search-attribute Name=Type` for each: the dev server registers them at start. */
export function devServerSearchAttributeArgs(): string[] {
  return SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${cliType(k.type)}`]);
}

/** The server answers with the protobuf enum (INDEXED_VALUE_TYPE_KEYWORD_LIST, ...). */
const indexedValueType = (type: SearchAttributeType): number => temporal.api.enums.v1.IndexedValueType[`INDEXED_VALUE_TYPE_${type}`];

/**
 * The attributes the namespace lacks (or has with another type), with the command that adds each.
 * Empty when all are there; undefined when the server does not let us look (Temporal Cloud
 * manages them through its own API).
 */
export async function missingSearchAttributes(connection: NativeConnection, namespace: string): Promise<string[] | undefined> {
  let registered: Record<string, number>;
  try {
    const answer = await connection.operatorService.listSearchAttributes({ namespace });
    registered = { ...(answer.systemAttributes as Record<string, number>), ...(answer.customAttributes as Record<string, number>) };
  } catch {
    return undefined;
  }
  return SEARCH_ATTRIBUTES.filter((k) => registered[k.name] !== indexedValueType(k.type)).map(
    (k) => `temporal operator search-attribute create --namespace ${namespace} --name ${k.name} --type ${cliType(k.type)}`,
  );
}
