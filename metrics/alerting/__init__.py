"""Alert rules over catalog KPIs, their evaluation (ok → pending → firing → ok), and signed webhooks."""
