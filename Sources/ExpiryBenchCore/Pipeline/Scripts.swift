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
        local wanted, seen = {}, {}
        for i = 2, #ARGV do
          if not seen[ARGV[i]] then
            seen[ARGV[i]] = true
            wanted[#wanted + 1] = ARGV[i]
          end
        end
        if #wanted == 0 then return 0 end
        local deadlines = redis.call('ZMSCORE', KEYS[1], unpack(wanted))
        local found = {}
        for i = 1, #wanted do
          if deadlines[i] then
            found[#found + 1] = wanted[i]
            redis.call('XADD', KEYS[2], '*', 'k', wanted[i], 'd', deadlines[i], 's', ARGV[1])
          end
        end
        if #found > 0 then redis.call('ZREM', KEYS[1], unpack(found)) end
        return #found
        """)

    /// Claim: for each delivered entry, acks it at once if the key is already processed (a duplicate delivery
    /// caught), else takes the key's lock (a retried call finds the lock already its own).
    /// KEYS: processed bitmap, stream. ARGV: group, lock prefix, token, lock ttl ms, then (entry id, index)
    /// pairs. Returns one code per pair: 0 already done, 1 claimed, 2 locked by another consumer.
    public static let claim = RedisScript(name: "claim", source: """
        local fields = {}
        for i = 5, #ARGV, 2 do
          fields[#fields + 1] = 'GET'
          fields[#fields + 1] = 'u1'
          fields[#fields + 1] = ARGV[i + 1]
        end
        local bits = redis.call('BITFIELD_RO', KEYS[1], unpack(fields))
        local out, done = {}, {}
        for i = 5, #ARGV, 2 do
          local id, lock = ARGV[i], ARGV[2] .. ARGV[i + 1]
          if bits[#out + 1] == 1 then
            done[#done + 1] = id
            out[#out + 1] = 0
          elseif redis.call('SET', lock, ARGV[3], 'NX', 'PX', ARGV[4]) or redis.call('GET', lock) == ARGV[3] then
            out[#out + 1] = 1
          else
            out[#out + 1] = 2
          end
        end
        if #done > 0 then redis.call('XACK', KEYS[2], ARGV[1], unpack(done)) end
        return out
        """)

    /// Commit: for each claimed key whose lock this claim still holds, marks it processed, acks the entry and
    /// releases the lock, atomically. The outcome is recorded under the claim's token (KEYS[3], kept for the
    /// retry window), so a call retried after a lost reply gets the first call's answer instead of acting twice.
    /// KEYS: processed bitmap, stream, commit record. ARGV: group, lock prefix, token, record ttl ms, then
    /// (entry id, index) pairs. Returns the server time in µs, then one code per pair: 1 first commit,
    /// 2 repeat (the key was already processed), 0 fenced (the lock lapsed or moved on: nothing written,
    /// the entry stays pending and is redone).
    public static let commit = RedisScript(name: "commit", source: """
        local t = redis.call('TIME')
        local out = { tonumber(t[1]) * 1000000 + tonumber(t[2]) }
        local prior = redis.call('GET', KEYS[3])
        if prior then
          for code in string.gmatch(prior, '%d') do out[#out + 1] = tonumber(code) end
          return out
        end
        local locks = {}
        for i = 5, #ARGV, 2 do locks[#locks + 1] = ARGV[2] .. ARGV[i + 1] end
        local holders = redis.call('MGET', unpack(locks))
        local fields, ids, owned = {}, {}, {}
        for j = 1, #locks do
          if holders[j] == ARGV[3] then
            local i = 3 + 2 * j
            fields[#fields + 1] = 'SET'
            fields[#fields + 1] = 'u1'
            fields[#fields + 1] = ARGV[i + 1]
            fields[#fields + 1] = 1
            ids[#ids + 1] = ARGV[i]
            owned[#owned + 1] = locks[j]
          end
        end
        local before = {}
        if #owned > 0 then
          before = redis.call('BITFIELD', KEYS[1], unpack(fields))
          redis.call('XACK', KEYS[2], ARGV[1], unpack(ids))
          redis.call('DEL', unpack(owned))
        end
        local codes, k = {}, 0
        for j = 1, #locks do
          local code = 0
          if holders[j] == ARGV[3] then
            k = k + 1
            if before[k] == 0 then code = 1 else code = 2 end
          end
          out[#out + 1] = code
          codes[#codes + 1] = code
        end
        redis.call('SET', KEYS[3], table.concat(codes), 'PX', ARGV[4])
        return out
        """)

    public static let all = [generate, publish, claim, commit]
}
