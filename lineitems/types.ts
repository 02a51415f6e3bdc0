/** A persisted line item as the API returns it. */
export interface LineItem {
  line_item_id: string;
  bill_id: string;
  amount: number;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
  created_at: string;
}

/** A validated line item, before it is persisted. */
export interface NewLineItem {
  amount: number;
  currency: string;
  description: string;
  metadata: Record<string, unknown> | null;
}
