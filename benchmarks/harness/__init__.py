"""The machinery of benchmarks/run.py: processes, servers, seeding, measuring, the report.

What is measured lives in benchmarks/phases/, one module per phase or family of phases.
"""
