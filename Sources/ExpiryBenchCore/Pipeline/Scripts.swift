/// The Lua scripts that make each step of the protocol atomic (DESIGN.md, "The protocol").
///
/// All of a script's keys share the run's prefix; per-key names (data keys, locks) are built inside the
/// script from a prefix argument, so one call serves a whole batch.
public enum Scripts {
    /// Generate: writes keys `first ..< first + count`, each with its TTL and its entry in the due index, in one
    /// atomic step. A high-water mark makes a retried call harmless: a range already written is skipped.
    /// KEYS: due index, generator mark. ARGV: data-key prefix, ttl ms, first, count.
    /// Returns the deadline (server ms), or 0 if the range had been written before.
    public static let generate = RedisScript(name: "generate", source: """
        local first, count = tonumber(ARGV[3]), tonumber(ARGV[4])
        local mark = tonumber(redis.call('GET', KEYS[2]) or '0')
        if mark >= first + count then return 0 end
        local t = redis.call('TIME')
        local ttl = tonumber(ARGV[2])
        local deadline = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + ttl
        local zargs = {}
        for idx = math.max(first, mark), first + count - 1 do
          redis.call('SET', ARGV[1] .. idx, deadline, 'PX', ttl)
          zargs[#zargs + 1] = deadline
          zargs[#zargs + 1] = idx
          if #zargs >= 1000 then
            redis.call('ZADD', KEYS[1], unpack(zargs))
            zargs = {}
          end
        end
        if #zargs > 0 then redis.call('ZADD', KEYS[1], unpack(zargs)) end
        redis.call('SET', KEYS[2], first + count)
        return deadline
        """)

    /// Publish once: moves each key still in the due index to the stream, removing it from the index in the
    /// same step; a key already gone from the index is skipped, so two paths can never publish it twice.
    /// KEYS: due index, stream. ARGV: source tag, indices... Returns how many were published.
    public static let publish = RedisScript(name: "publish", source: """
        local published = 0
        for i = 2, #ARGV do
          local deadline = redis.call('ZSCORE', KEYS[1], ARGV[i])
          if deadline then
            redis.call('ZREM', KEYS[1], ARGV[i])
            redis.call('XADD', KEYS[2], '*', 'k', ARGV[i], 'd', deadline, 's', ARGV[1])
            published = published + 1
          end
        end
        return published
        """)

    /// Claim: for each delivered entry, acks it at once if the key is already processed (a duplicate delivery
    /// caught), else takes the key's lock (a retried call finds the lock already its own). KEYS: processed bitmap, stream. ARGV: group, lock prefix, token,
    /// lock ttl ms, then (entry id, index) pairs. Returns one code per pair: 0 already done, 1 claimed, 2 locked.
    public static let claim = RedisScript(name: "claim", source: """
        local out = {}
        for i = 5, #ARGV, 2 do
          local id, idx = ARGV[i], ARGV[i + 1]
          if redis.call('GETBIT', KEYS[1], idx) == 1 then
            redis.call('XACK', KEYS[2], ARGV[1], id)
            out[#out + 1] = 0
          elseif redis.call('SET', ARGV[2] .. idx, ARGV[3], 'NX', 'PX', ARGV[4]) then
            out[#out + 1] = 1
          elseif redis.call('GET', ARGV[2] .. idx) == ARGV[3] then
            out[#out + 1] = 1
          else
            out[#out + 1] = 2
          end
        end
        return out
        """)

    /// Commit: for each claimed key whose lock this claim still holds, marks it processed, acks the entry and
    /// releases the lock, atomically. Releasing leaves a short-lived marker `<token>:<code>` in the lock's place,
    /// so that a call retried after a lost reply learns what the first one did instead of seeing a lapsed lock.
    /// KEYS: processed bitmap, stream. ARGV: group, lock prefix, token, marker ttl ms, then (entry id, index)
    /// pairs. Returns the server time in µs, then one code per pair: 1 first commit, 2 repeat (the key was
    /// already processed), 0 fenced (the lock lapsed or moved on: nothing written, the entry stays pending).
    public static let commit = RedisScript(name: "commit", source: """
        local t = redis.call('TIME')
        local out = { tonumber(t[1]) * 1000000 + tonumber(t[2]) }
        for i = 5, #ARGV, 2 do
          local id, idx = ARGV[i], ARGV[i + 1]
          local lock = ARGV[2] .. idx
          local holder = redis.call('GET', lock)
          if holder == ARGV[3] then
            local was = redis.call('SETBIT', KEYS[1], idx, 1)
            redis.call('XACK', KEYS[2], ARGV[1], id)
            local code = 1
            if was == 1 then code = 2 end
            redis.call('SET', lock, ARGV[3] .. ':' .. code, 'PX', ARGV[4])
            out[#out + 1] = code
          elseif holder == ARGV[3] .. ':1' then
            out[#out + 1] = 1
          elseif holder == ARGV[3] .. ':2' then
            out[#out + 1] = 2
          else
            out[#out + 1] = 0
          end
        end
        return out
        """)

    public static let all = [generate, publish, claim, commit]
}
