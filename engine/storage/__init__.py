"""Storage: the durable journal (SQLite), its verification, leases, checkpoints."""
