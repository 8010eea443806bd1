"""Trademax: the HTTP client (``client``), its documented calls (``calls``), the table of WMS operations
delivered to it (``operations``), reading and classifying its answers (``responses``,
``classification``), reading a dispatch back after a refused resend (``read_back``) and telling a 401 for
our clock from one for our credentials (``clock_skew``).

Where the code follows Trademax's API documentation ("Trademax Restful API documentation", which Trademax
gives its integrators) it cites the section by its title: "Authentication", "Signature generation
process", "Http status codes", "Error codes", and under "Resourses" the pages of each resource (e.g.
"Creating new dispatch for outgoing order", "Changing product quantity for one provider").  The API's base
address, as that document gives it, is http://dashboard.trademax.se/api/."""
