"""PDV: the city's personal-data vault."""
