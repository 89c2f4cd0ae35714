-- 014_invoice_lines_charged.sql: whether an invoice charged for its plan lines.
-- A trial period charges nothing for the plan, so a plan line with an amount
-- proves the period is no trial: such an invoice needs not wait for its
-- subscription's state to know (sql/invoices.sql). The batch row carries it.
ALTER TYPE paystream.batch_event ADD ATTRIBUTE lines_charged boolean;

DROP FUNCTION IF EXISTS
    paystream.ps_invoice_paid(uuid, text, text, text, text[], integer[], bigint, text),
    paystream._invoice_paid(uuid, text, text, text, text[], integer[], bigint, text);
