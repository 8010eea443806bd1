"""StockTrim (inventory forecasting): stock on hand per location, shipped dispatches as sales orders,
products from the catalog, then a forecast run now and then (docs/destinations.md, "StockTrim")."""
