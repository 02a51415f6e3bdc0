import { Service } from 'encore.dev/service';

// The customers bills are issued to; invoices freeze a copy of one at finalization.
export default new Service('customers');
