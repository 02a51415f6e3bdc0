/**
 * Every search attribute the task queue's workflows set, registered where we start Temporal (the
 * dev server's --search-attribute flags) and checked where we do not (a cluster: the worker looks
 * at start and names what is missing, with the command that adds it).
 */
import { temporal } from '@temporalio/proto';
import type { SearchAttributeType } from '@temporalio/common';
import { BILL_SEARCH_ATTRIBUTES } from '../bills/search-attributes';
import { InvoiceStatusKey } from '../invoices/messages';

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

type OperatorService = temporal.api.operatorservice.v1.OperatorService;

/** gRPC codes of a server that will not say (Temporal Cloud manages search attributes itself). */
const NOT_ALLOWED = new Set([7 /* PERMISSION_DENIED */, 12 /* UNIMPLEMENTED */]);

async function missing(operator: OperatorService, namespace: string): Promise<typeof SEARCH_ATTRIBUTES | undefined> {
  let registered: Record<string, number>;
  try {
    const answer = await operator.listSearchAttributes({ namespace });
    registered = { ...(answer.systemAttributes as Record<string, number>), ...(answer.customAttributes as Record<string, number>) };
  } catch (err) {
    if (NOT_ALLOWED.has((err as { code?: number }).code ?? -1)) return undefined;
    throw err;
  }
  return SEARCH_ATTRIBUTES.filter((k) => registered[k.name] !== indexedValueType(k.type));
}

/**
 * The attributes the namespace lacks (or has with another type), as the commands that add them.
 * Empty when all are there; undefined when the server does not let us look (Temporal Cloud).
 */
export async function missingSearchAttributes(
  connection: { operatorService: OperatorService },
  namespace: string,
  address: string,
): Promise<string[] | undefined> {
  const absent = await missing(connection.operatorService, namespace);
  return absent?.map(
    (k) =>
      `temporal operator search-attribute create --address ${address} --namespace ${namespace} --name ${k.name} --type ${cliType(k.type)}`,
  );
}

/**
 * Adds the missing ones: for the embedded dev server, whose --search-attribute flags register them
 * only when it creates the namespace, so a state file of an earlier release has none of them.
 */
export async function addMissingSearchAttributes(connection: { operatorService: OperatorService }, namespace: string): Promise<string[]> {
  const absent = (await missing(connection.operatorService, namespace)) ?? [];
  if (absent.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(absent.map((k) => [k.name, indexedValueType(k.type)])),
    });
  }
  return absent.map((k) => k.name);
}
