/** What the relay, the delivery workflow and its activity say to each other. */

/** One workflow per delivery and generation (a manual retry is a new generation). */
export const deliveryWorkflowId = (deliveryId: string, generation: number) => `webhook-delivery-${deliveryId}-${generation}`;

export interface DeliveryWorkflowInput {
  delivery_id: string;
  /** Which run of the delivery: a manual retry starts the next one. */
  generation: number;
  /** The number of its first attempt: attempts already made count on. */
  first_attempt: number;
  /** An attempt's activity timeout: the HTTP deadline and room for its bookkeeping. */
  attempt_timeout_ms: number;
}
