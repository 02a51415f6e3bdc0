// The worker's workflow bundle entry point: every workflow type the task queue serves.
export { billLifecycleWorkflow } from '../bills/workflow';
export { closedBillPostProcessWorkflow } from '../invoices/workflow';
export { webhookDeliveryWorkflow } from '../webhooks/workflow';
