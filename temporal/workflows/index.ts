// The worker's workflow bundle entry point: every workflow type the task queue serves.
export { billLifecycleWorkflow } from './bill-lifecycle';
export { closedBillPostProcessWorkflow } from './post-process';
