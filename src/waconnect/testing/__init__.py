"""Helpers that run waconnect for real — server, workers, simulator as processes on loopback —
shared by the test suite and the benchmarks (like procrastinate's ``testing`` module)."""
