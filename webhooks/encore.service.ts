import { Service } from 'encore.dev/service';

// Owns webhook endpoints and their deliveries; the events come from the outbox the other services write.
export default new Service('webhooks');
