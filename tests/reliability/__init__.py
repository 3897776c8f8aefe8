"""The reliability catalogue: hostile inputs, wire faults and races, collected into docs/reliability.md."""
