"""An order's files: folders, names, receiving, virus scan, placing, retention, the backlog."""
