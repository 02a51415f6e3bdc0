import { Service } from 'encore.dev/service';

// Metering: meters, usage events in, and what a bill's usage costs (rated into lines at its close).
export default new Service('usage');
