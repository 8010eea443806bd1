"""StockTrim (inventory forecasting): stock on hand per location, then a forecast run now and then
(docs/destinations.md, "StockTrim")."""
