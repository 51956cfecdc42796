"""PureBridge benchmark: the gateway against the same fake upstream called directly.

    make bench                                   # = scripts/with-services.sh .venv/bin/python benchmarks/run.py
    make bench BENCH_ARGS="--quick"              # a smoke run with small counts
    make bench BENCH_ARGS="--workers 1 --skip-slow-streams"
    make bench BENCH_ARGS="--wait-idle 600"      # on a shared machine: wait for quiet
    make bench BENCH_ARGS="--phases flood"       # only the invalid-key flood

benchmarks/README.md describes the scenarios, the options and how to read the
numbers.

One run, on this machine, in the production shape:

1. the fake OpenAI upstream (tests/fake_upstream.py, uvloop, --no-record) on a
   free loopback port;
2. PureBridge against the DATABASE_URL / REDIS_URL that with-services.sh gives:
   `migrate`, `loadconfig` (a generated TOML: one provider pointing at the fake,
   one public model per scenario), `createapikey`, then gunicorn with uvicorn
   workers on 127.0.0.1;
3. a load generator (benchmarks/loadgen.py, aiohttp on uvloop) in its own
   process, driven phase by phase; each phase warms up first;
4. every scenario measured against PureBridge and against the fake upstream
   directly, with the same body and concurrency; CPU from /proc/<pid>/stat of
   the gunicorn workers (children of the master) and of the fake upstream;
   PSS from /proc/<pid>/smaps_rollup;
5. a table at the end and the same numbers in benchmarks/results/latest.json.

The machinery is in benchmarks/harness/; what is measured is in
benchmarks/phases/, one module per phase or family of phases, listed in
benchmarks/phases/__init__.py.

Targets are reported, never asserted: the exit status is 0 whenever the
benchmark itself ran. Every process started here is killed (by process group)
in a `finally`, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from harness.base import log
from harness.bench import Bench


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="PureBridge gateway vs fake upstream direct.")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn web workers (default 2)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--skip-slow-streams", action="store_true", help="skip the 1,000 slow streams"
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before starting, wait up to SECONDS for other work on the machine to finish",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the web workers to their own CPUs and the fake upstream, load generator, "
        "PostgreSQL and Redis to the others (needs more CPUs than --workers)",
    )
    parser.add_argument(
        "--limited-key",
        action="store_true",
        help="send every phase with the key that has limits (never reached), so that every "
        "request also runs the Redis admission step (the admission phases always compare both)",
    )
    parser.add_argument(
        "--phases",
        type=lambda value: [name.strip() for name in value.split(",") if name.strip()],
        metavar="NAME[,NAME...]",
        help="run only these families of phases (and those their figures need): "
        "nonstream, admission, balance, metrics, streams, responses, embeddings, messages, slow, "
        "flood",
    )
    parser.add_argument(
        "--app",
        default="purebridge.asgi:application",
        help="ASGI application gunicorn serves (for experiments; default %(default)s)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run py-spy on every web worker during the gateway phases (c=1, c=64, streams, "
        "slow streams) and write raw stacks and a text summary to DIR; slows the gateway",
    )
    parser.add_argument(
        "--profile-native", action="store_true", help="with --profile: py-spy --native"
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main() -> int:
    args = parse_args()

    def terminate(signum, frame):
        raise KeyboardInterrupt

    # Even when started in the background (where the shell ignores SIGINT).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    bench = Bench(args)
    try:
        return bench.run()
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    except RuntimeError as exc:
        log(f"FAILED: {exc}")
        bench.procs.print_log_tails()
        return 1
    finally:
        # Ignore a second Ctrl-C while cleaning up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        bench.close()


if __name__ == "__main__":
    sys.exit(main())
