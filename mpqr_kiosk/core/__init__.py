"""The functional core: money, sites and the sale state machine. No I/O lives here."""
