"""mlgate's tests: unit, integration and end-to-end layers, the fakes they run against, seeded fixtures."""
