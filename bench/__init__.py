"""Benchmark harness: starts each server on loopback, drives it with its own load generator.

Layout: ``bench.servers.<name>`` (one module per system under test, registered in
``bench.servers.SERVERS``), ``bench.scenarios.<name>`` (one module per scenario, registered in
``bench.scenarios.SCENARIOS``), ``bench.loadgen`` (client worker processes and wire clients),
``bench.report`` (RESULTS.md and plots). Run with ``python -m bench [--quick] [--scenario NAME]``.
"""
