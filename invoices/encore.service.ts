import { Service } from 'encore.dev/service';

// Owns the invoice's whole life after its bill closes: rendering, delivery, payments, credit notes.
export default new Service('invoices');
