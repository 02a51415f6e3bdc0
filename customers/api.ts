/** Customer endpoints for Encore. The standalone host serves the same table (host/routes.ts). */
import { api, type Header } from 'encore.dev/api';
import { SQLDatabase } from 'encore.dev/storage/sqldb';
import { encoreDeps, run } from '../core/encore';
import { idempotencyKeyOf } from '../core/idempotency';
import type { IdPattern } from '../invoices/requests';
import * as customers from './customers';
import type { CreateCustomerBody, ListCustomersQuery, UpdateCustomerBody } from './requests';
import type { Customer, CustomerPage } from './types';

// Bound once, at the top: Encore's parser binds a database handle to the const it initialises.
const database = SQLDatabase.named('fees');
const deps = () => encoreDeps(database);

/** Creates a customer that bills (and series) can name with `customer_id`. */
export interface CreateCustomerRequest extends CreateCustomerBody {
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const create = api(
  { expose: true, auth: true, method: 'POST', path: '/customers' },
  async (req: CreateCustomerRequest): Promise<Customer> =>
    run('bills:write', async (caller) => {
      const { idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return customers.createCustomer(
        await deps(),
        body,
        idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt),
        caller.key_id,
      );
    }),
);

/** Lists customers, newest first. */
export interface ListCustomersRequest extends ListCustomersQuery {}
export const list = api(
  { expose: true, auth: true, method: 'GET', path: '/customers' },
  async (req: ListCustomersRequest): Promise<CustomerPage> => run('bills:read', async () => customers.listCustomers(await deps(), req)),
);

/** Returns one customer. */
export interface GetCustomerRequest {
  /** The customer's id (`customer_id`). */
  customerId: string & IdPattern;
}
export const get = api(
  { expose: true, auth: true, method: 'GET', path: '/customers/:customerId' },
  async (req: GetCustomerRequest): Promise<Customer> => run('bills:read', async () => customers.getCustomer(await deps(), req.customerId)),
);

/** Changes a customer. Invoices already issued keep the customer as it was when they were finalized. */
export interface UpdateCustomerRequest extends UpdateCustomerBody {
  /** The customer's id (`customer_id`). */
  customerId: string & IdPattern;
  idempotencyKey?: Header<'X-Idempotency-Key'>;
  idempotencyKeyAlt?: Header<'Idempotency-Key'>;
}
export const update = api(
  { expose: true, auth: true, method: 'PATCH', path: '/customers/:customerId' },
  async (req: UpdateCustomerRequest): Promise<Customer> =>
    run('bills:write', async (caller) => {
      const { customerId, idempotencyKey, idempotencyKeyAlt, ...body } = req;
      return customers.updateCustomer(
        await deps(),
        customerId,
        body,
        idempotencyKeyOf(caller.key_id, idempotencyKey, idempotencyKeyAlt),
        caller.key_id,
      );
    }),
);
