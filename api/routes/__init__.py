"""The read API's endpoints, one module per subject, each a router over a query guard."""
