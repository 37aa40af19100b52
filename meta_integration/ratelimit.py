"""Per business number send throughput, shared by every worker: a token bucket in Redis.

Meta limits how many messages per second one business number may send (80 by default);
going over earns 130429 errors. Workers are many processes on many hosts, so the bucket
lives in Redis and is updated by one Lua script (atomic: two workers can never spend the
same token) using Redis' own clock (no skew between hosts).

**Priorities.** Conversations (HIGH) and campaigns (LOW) share one bucket per number, and a
reply must never queue behind campaign tokens. A LOW caller takes a token only if the bucket
keeps ``reserve`` tokens after it (``default_reserve``: half the burst); HIGH callers may
take every token. While a campaign saturates the number the bucket hovers at the reserve,
so a reply finds a token at once; while replies use tokens, the campaign waits until the
bucket refills above the reserve. Nothing is wasted: with no replies the campaign still
gets the full rate (the refill), and HIGH and LOW waiters are counted separately, so a
campaign's backlog never lengthens a reply's wait.

``acquire`` never sleeps. It grants a token now, grants one that becomes due within
``max_wait`` (the caller sleeps that little), or refuses and says how long to wait, so a
send task can re-schedule itself with a countdown instead of holding a worker slot. Refused
callers are counted in a decaying "waiting" estimate and told to come back after the ones
ahead of them, which spreads a backlog over time instead of waking it all at once.

No Django here: the caller passes the Redis client, the rate and the burst.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis as redis_lib

__all__ = ["Acquired", "TokenBucket", "default_burst", "default_reserve"]

# KEYS[1] bucket hash; KEYS[2] (optional) a hold on the recipient, e.g. a 131056 back-off.
# ARGV: rate (tokens/s), burst (capacity), max_wait (s), low (0/1), reserve (tokens LOW leaves).
# Returns {granted (0/1), wait (s, as a string: Lua numbers are truncated to integers), held (0/1)}.
# A held recipient spends no token: the caller comes back when the hold ends.
_ACQUIRE = """
if KEYS[2] then
  local hold_ms = redis.call('PTTL', KEYS[2])
  if hold_ms > 0 then
    return {0, tostring(hold_ms / 1000), 1}
  end
end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local low = tonumber(ARGV[4]) == 1
local reserve = 0
if low then reserve = tonumber(ARGV[5]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'waiting', 'waiting_low')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
local waiting = tonumber(state[3]) or 0
local waiting_low = tonumber(state[4]) or 0
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = math.max(0, now - ts)
tokens = math.min(burst, tokens + elapsed * rate)
waiting = math.max(0, waiting - elapsed * rate)
waiting_low = math.max(0, waiting_low - elapsed * rate)
local granted = 0
local wait = 0
local need = 1 + reserve
if tokens >= need then
  tokens = tokens - 1
  granted = 1
else
  wait = (need - tokens) / rate
  if wait <= max_wait then
    tokens = tokens - 1
    granted = 1
  elseif low then
    -- behind every HIGH waiter and every LOW one already told to come back
    wait = (need - tokens + waiting + waiting_low) / rate
    waiting_low = waiting_low + 1
  else
    -- HIGH waits only for HIGH callers: the campaign's backlog does not count
    wait = (need - tokens + waiting) / rate
    waiting = waiting + 1
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now), 'waiting', tostring(waiting),
  'waiting_low', tostring(waiting_low))
-- Keep the state until the bucket is full again and the waiters are gone, plus a second.
local ttl_ms = math.ceil(((burst - tokens) + waiting + waiting_low) / rate * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl_ms)
return {granted, tostring(wait), 0}
"""


def default_burst(rate: float) -> float:
    """A quarter second of tokens (at least one): smooth enough for Meta's per-second
    accounting, large enough that a worker's concurrent sends do not queue needlessly."""
    return max(1.0, rate / 4)


def default_reserve(burst: float, share: float = 0.5) -> float:
    """Tokens a LOW caller leaves in the bucket for HIGH ones: ``share`` of the burst, but
    always room for one LOW token (a burst of 1, i.e. a rate under 8/s, has no reserve)."""
    if not 0 <= share < 1:
        raise ValueError(f"share: must be in [0, 1), got {share!r}")
    return max(0.0, min(burst - 1, burst * share))


@dataclass(frozen=True)
class Acquired:
    """``granted``: send after sleeping ``wait`` seconds (at most max_wait). Otherwise do not
    send; try again in ``wait`` seconds (``held``: because the recipient is on hold)."""

    granted: bool
    wait: float
    held: bool = False


class TokenBucket:
    """One bucket per key (a phone_number_id), in a Redis hash ``{prefix}{key}``."""

    def __init__(self, client: redis_lib.Redis, prefix: str = "wa:sendrate:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_ACQUIRE)

    def acquire(
        self,
        key: str,
        rate: float,
        *,
        burst: float | None = None,
        max_wait: float = 0.05,
        hold_key: str | None = None,
        low_priority: bool = False,
        reserve: float | None = None,
    ) -> Acquired:
        """One round trip: refuse while ``hold_key`` exists, else take a token (see the module).

        ``low_priority`` callers (campaigns) leave ``reserve`` tokens (default
        ``default_reserve(burst)``) for the others."""
        if not rate > 0:
            raise ValueError(f"rate: must be > 0 tokens per second, got {rate!r}")
        burst = default_burst(rate) if burst is None else burst
        if burst < 1:
            raise ValueError(f"burst: must be at least 1 token, got {burst!r}")
        if max_wait < 0:
            raise ValueError(f"max_wait: must be >= 0 seconds, got {max_wait!r}")
        reserve = default_reserve(burst) if reserve is None else reserve
        if not 0 <= reserve <= burst - 1:
            raise ValueError(f"reserve: must be between 0 and burst - 1 ({burst - 1}) tokens, got {reserve!r}")
        keys = [self._prefix + key] if hold_key is None else [self._prefix + key, hold_key]
        args = [rate, burst, max_wait, 1 if low_priority else 0, reserve]
        granted, wait, held = self._script(keys=keys, args=args)
        return Acquired(bool(int(granted)), max(0.0, float(wait)), bool(int(held)))

    def reset(self, key: str) -> None:
        self._client.delete(self._prefix + key)
