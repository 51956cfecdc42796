"""The machinery of benchmarks/run.py: processes, servers, seeding, measuring, the report;
the usage benchmarks (rollup.py, usage_scale.py) share its servers and processes, and
their own setup (usage_setup.py, usage_records.py).

What is measured lives in benchmarks/phases/, one module per phase or family of phases.
"""
