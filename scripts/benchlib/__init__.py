"""Shared helpers of the order-path benchmarks (scripts/bench_orders.py, scripts/bench_cod.py).

Nothing here imports the gateway: the benchmark client frames and builds FIX by hand so that it
costs as little CPU as possible and never shares the gateway's validation code.
"""
