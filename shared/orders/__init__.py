"""Orders and tickets: what a new order sets in motion, and the order lists."""
