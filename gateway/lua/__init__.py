"""The Lua scripts of the Redis limiter, one file each beside this module,
composed once when the modules that run them are imported.

Two conventions, and nothing more:

- `--include name.lua` on a line of its own is replaced by that file (one
  level: a fragment includes nothing). The pieces several scripts share are
  written once: now.lua (Redis's clock as `now`) and give_back.lua (a lease's
  unused part out of the budget counters).
- Numbers the Python side owns (WINDOW_MS, LEASE_MS, …) are declared by
  `source()` as Lua locals at the top of the script, so a script and the code
  that runs it never disagree on them; each script's header names the ones it
  is given.

Python runs them with `purebridge.redis_pipe.Script` on the request path and
`sync_script()` (redis-py) off it, and reads the clock now.lua reads with
`redis_now_ms()`. The names of a key's RPM/TPM window, which admit.lua,
settle.lua and release.lua all write, are here too, for the limiter and the
leases alike (a lease's own keys are in gateway/leases.py).

Every key one script call touches starts with its account's hash tag
(usage.budgets.account_tag: `pb:{a<account>}:`): a Redis Cluster keeps them
in one slot, so the scripts run there unchanged. No script touches a global
key.

The files ship with the source tree, as the templates do: PureBridge runs from
its checkout and is not installed as a package (pyproject.toml has no
packages). A missing file fails the import, at a worker's start.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from usage.budgets import account_tag

DIR = Path(__file__).resolve().parent
_INCLUDE = re.compile(r"^--include (\S+)\n", re.MULTILINE)


def source(name: str, **constants: int) -> str:
    """The script `name`, its includes in place and `constants` declared."""
    text = _INCLUDE.sub(lambda line: (DIR / line[1]).read_text(), (DIR / name).read_text())
    return "".join(f"local {k} = {v}\n" for k, v in constants.items()) + text


@functools.cache
def sync_script(client, source: str):
    """A script for a redis-py client (loaded into a pipeline when Redis does
    not have it)."""
    return client.register_script(source)


def redis_now_ms(client) -> int:
    """Redis's clock (ms), which the scripts' windows run on."""
    seconds, micros = client.time()
    return seconds * 1000 + micros // 1000


def window_key(account_id: int, key_id: int) -> str:
    """The key's one-minute window: a sorted set of its admissions."""
    return f"{account_tag(account_id)}:rl:{key_id}:window"


def sums_key(account_id: int, key_id: int) -> str:
    """The requests (`r`) and tokens (`t`) its window holds."""
    return f"{account_tag(account_id)}:rl:{key_id}:sums"
