"""The Redis limiter's Lua scripts are composed from their files once, at import."""

from gateway import leases, limiter_redis, lua


def test_a_script_has_its_includes_in_place_and_the_constants_it_is_given_declared():
    script = lua.source("settle.lua", WINDOW_MS=60_000)

    assert script.startswith("local WINDOW_MS = 60000\n")
    assert (lua.DIR / "now.lua").read_text() in script
    assert "--include" not in script


def test_no_script_the_limiter_runs_is_left_with_an_include_line():
    scripts = [limiter_redis.ADMIT, limiter_redis.SETTLE, limiter_redis.REBUILD]
    scripts += [leases.RELEASE, leases.RECLAIM]

    assert [s for s in scripts if "--include" in s] == []
