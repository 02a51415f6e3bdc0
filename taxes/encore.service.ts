import { Service } from 'encore.dev/service';

// The tax rates invoices apply: a catalogue whose entries never change once created.
export default new Service('taxes');
