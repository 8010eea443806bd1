"""Stock2Shop (a channel hub): stock levels through its products queue, with one login token shared by
every worker (docs/destinations.md, "Stock2Shop")."""
