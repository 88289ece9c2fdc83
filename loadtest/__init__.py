"""Load tests and benchmarks for Vitrine (run against real servers on loopback)."""
