/** A tax rate as the API shows it. */
export interface TaxRate {
  code: string;
  name: string;
  /** A decimal string, as it was created ("19", "7.5"). */
  percentage: string;
  inclusive: false;
  country: string | null;
  description: string | null;
  created_at: string;
}

export interface TaxRateList {
  tax_rates: TaxRate[];
}
