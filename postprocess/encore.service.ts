import { Service } from 'encore.dev/service';

// Owns the post-processing of closed bills (invoice rendering and delivery build on it).
export default new Service('postprocess');
