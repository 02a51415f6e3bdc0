import type { PostalAddress } from '../invoices/document';

export interface Customer {
  customer_id: string;
  name: string;
  email: string;
  address: PostalAddress;
  tax_id: string | null;
  tax_exempt: boolean;
  locale: string | null;
  tax_rates: string[];
  created_at: string;
  updated_at: string;
  /** Grows with every change. */
  version: number;
}

export interface CustomerPage {
  customers: Customer[];
  next_cursor: string | null;
}
