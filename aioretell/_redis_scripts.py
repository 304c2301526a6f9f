"""The Lua scripts behind the Redis pacer: one script per decision, Redis's clock only.

Times are milliseconds of the Redis server's ``TIME``; no worker's clock is ever trusted, so
machines whose clocks disagree still share one schedule. A bucket is one hash:

``tat``      GCRA theoretical arrival time of the next request
``paused``   no request before this (a 429 anywhere sets it)
``rate``     adaptive buckets: the fleet's current rate (absent: unlimited until a 429)
``ceiling``  adaptive: the rate that drew the last 429
``grown``    adaptive: when ``rate`` last grew
``lastdec``  adaptive: when ``rate`` last fell (one decrease per congestion event)
``oksec``, ``okcur``, ``okprev``: successes in the current and the previous whole second,
counted when reported (server time), so reports arriving out of order cannot reset them.
"""

from __future__ import annotations

# Shared helpers, prepended to the scripts that need them.
_COMMON = """
local function now_ms()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end

local function count_ok(key, now, n)
    if n <= 0 then return end
    local sec = math.floor(now / 1000)
    local h = redis.call('HMGET', key, 'oksec', 'okcur')
    local oksec = tonumber(h[1]) or sec
    local okcur = tonumber(h[2]) or 0
    if sec == oksec then
        okcur = okcur + n
    elseif sec == oksec + 1 then
        redis.call('HSET', key, 'okprev', okcur)
        okcur = n
    else
        redis.call('HSET', key, 'okprev', 0)
        okcur = n
    end
    redis.call('HSET', key, 'oksec', sec, 'okcur', okcur)
end

local function ok_per_second(key, now)
    local h = redis.call('HMGET', key, 'oksec', 'okcur', 'okprev')
    local oksec = tonumber(h[1])
    if not oksec then return 0 end
    local okcur = tonumber(h[2]) or 0
    local okprev = tonumber(h[3]) or 0
    local sec = math.floor(now / 1000)
    local frac = (now - sec * 1000) / 1000
    if sec == oksec then return okprev * (1 - frac) + okcur end
    if sec == oksec + 1 then return okcur * (1 - frac) end
    return 0
end

-- The adaptive rate grows back after a decrease: fast to 90% of the ceiling, then additively.
local function grown_rate(h, now)
    local rate = tonumber(h.rate)
    if not rate then return nil end
    local grown = tonumber(h.grown) or now
    local elapsed = (now - grown) / 1000
    if elapsed <= 0 then return rate end
    local ceiling = tonumber(h.ceiling)
    if not ceiling then
        rate = rate * (1 + elapsed)
    elseif rate < 0.9 * ceiling then
        rate = rate + 0.5 * ceiling * elapsed
    else
        local lastdec = tonumber(h.lastdec) or now
        local calm = math.max(1, (now - lastdec) / 1000)
        rate = rate + math.max(0.5, 0.01 * ceiling) * calm * elapsed
    end
    return rate
end
"""

#: KEYS: bucket hashes. ARGV: ttl_ms, tolerance (fraction of an interval a request may come
#: early), then per bucket: fixed rate (0 = adaptive), successes reported since the last call.
#: Returns {wait_ms, now_ms} as strings: wait 0 means the turn is taken.
TAKE = (
    _COMMON
    + """
local ttl = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local now = now_ms()
local wait = 0
local updates = {}
for i, key in ipairs(KEYS) do
    local fixed = tonumber(ARGV[1 + 2 * i])
    count_ok(key, now, tonumber(ARGV[2 + 2 * i]))
    local raw = redis.call('HMGET', key, 'tat', 'paused', 'rate', 'ceiling', 'grown', 'lastdec')
    local h = {tat = raw[1], paused = raw[2], rate = raw[3], ceiling = raw[4], grown = raw[5],
               lastdec = raw[6]}
    local rate = nil
    if fixed > 0 then
        rate = fixed
    else
        rate = grown_rate(h, now)
        if rate then redis.call('HSET', key, 'rate', tostring(rate), 'grown', tostring(now)) end
    end
    local w = (tonumber(h.paused) or 0) - now
    if rate then
        local interval = 1000 / rate
        local tat = tonumber(h.tat) or 0
        local early = tat - tolerance * interval - now
        if early > w then w = early end
        updates[key] = math.max(tat, now) + interval
    end
    if w > wait then wait = w end
    redis.call('PEXPIRE', key, ttl)
end
if wait <= 0 then
    for key, tat in pairs(updates) do redis.call('HSET', key, 'tat', tostring(tat)) end
    wait = 0
end
return {tostring(wait), tostring(now)}
"""
)

#: A 429. KEYS[1]: the bucket. ARGV: ttl_ms, pause_ms, sent_at_ms (server time of the turn),
#: adaptive (1/0). Every worker honours the pause; an adaptive bucket lowers the fleet's rate.
RATE_LIMITED = (
    _COMMON
    + """
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local pause = tonumber(ARGV[2])
local sent_at = tonumber(ARGV[3])
local adaptive = tonumber(ARGV[4]) == 1
local now = now_ms()
local paused = tonumber(redis.call('HGET', key, 'paused')) or 0
if now + pause > paused then redis.call('HSET', key, 'paused', tostring(now + pause)) end
if adaptive then
    local raw = redis.call('HMGET', key, 'rate', 'lastdec')
    local lastdec = tonumber(raw[2]) or -1
    -- 429s for turns taken before the last decrease belong to the event that caused it.
    if sent_at >= lastdec then
        local accepted = ok_per_second(key, now)
        local current = tonumber(raw[1]) or accepted
        if current > 0 then
            redis.call('HSET', key, 'ceiling', tostring(current))
        else
            redis.call('HDEL', key, 'ceiling')
        end
        local rate = math.max(1, current / 2, 0.9 * accepted)
        redis.call('HSET', key, 'rate', tostring(rate), 'lastdec', tostring(now),
                   'grown', tostring(now))
    end
end
redis.call('PEXPIRE', key, ttl)
return tostring(now)
"""
)

#: Report successes without taking a turn. KEYS[1]: the bucket. ARGV: ttl_ms, count.
REPORT_OK = (
    _COMMON
    + """
count_ok(KEYS[1], now_ms(), tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""
)

#: A concurrency lease. KEYS[1]: sorted set of tokens scored by expiry. ARGV: limit, ttl_ms,
#: token. Returns 0 when leased, else the ms until the earliest lease expires (a hint).
LEASE_ACQUIRE = (
    _COMMON
    + """
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
if redis.call('ZCARD', key) < limit then
    redis.call('ZADD', key, now + ttl, ARGV[3])
    redis.call('PEXPIRE', key, ttl * 2)
    return '0'
end
local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(math.max(1, tonumber(first[2]) - now))
"""
)

#: Extend leases. KEYS[1]: the set. ARGV: ttl_ms, tokens... Returns the tokens no longer held.
LEASE_HEARTBEAT = (
    _COMMON
    + """
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
local lost = {}
for i = 2, #ARGV do
    if redis.call('ZSCORE', key, ARGV[i]) then
        redis.call('ZADD', key, 'XX', now + ttl, ARGV[i])
    else
        table.insert(lost, ARGV[i])
    end
end
redis.call('PEXPIRE', key, ttl * 2)
return lost
"""
)
