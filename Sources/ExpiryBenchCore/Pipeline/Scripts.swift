/// The Lua scripts that make each step of the protocol atomic (DESIGN.md, "The protocol").
///
/// All of a script's keys share the run's prefix; per-key names (data keys, locks) are built inside the
/// script from a prefix argument, so one call serves a whole batch.
public enum Scripts {
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

    /// Sweep: publishes keys whose deadline passed more than a grace period ago, whether or not their expired
    /// event came, removing them from the due index in the same step (so a later event for them publishes
    /// nothing), and deletes the keys themselves (their deadline is past; Redis's own expiry may lag).
    /// KEYS: due index, stream. ARGV: data-key prefix, grace ms, limit. Returns how many were published.
    public static let sweep = RedisScript(name: "sweep", source: """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
        if #due == 0 then return 0 end
        local members, keys = {}, {}
        for i = 1, #due, 2 do
          members[#members + 1] = due[i]
          keys[#keys + 1] = ARGV[1] .. due[i]
          redis.call('XADD', KEYS[2], '*', 'k', due[i], 'd', due[i + 1], 's', 's')
        end
        redis.call('ZREM', KEYS[1], unpack(members))
        redis.call('UNLINK', unpack(keys))
        return #members
        """)

    /// Claim: for each delivered entry, acks it at once if the key is already processed or dead-lettered (a
    /// duplicate delivery caught), else takes the key's lock (a retried call finds the lock already its own).
    /// KEYS: processed bitmap, stream, dead-letter bitmap. ARGV: group, lock prefix, token, lock ttl ms, then
    /// (entry id, index) pairs. Returns one code per pair: 0 already done, 1 claimed, 2 locked by another consumer.
    public static let claim = RedisScript(name: "claim", source: """
        local fields = {}
        for i = 5, #ARGV, 2 do
          fields[#fields + 1] = 'GET'
          fields[#fields + 1] = 'u1'
          fields[#fields + 1] = ARGV[i + 1]
        end
        local processed = redis.call('BITFIELD_RO', KEYS[1], unpack(fields))
        local dead = redis.call('BITFIELD_RO', KEYS[3], unpack(fields))
        local out, done = {}, {}
        for i = 5, #ARGV, 2 do
          local j = #out + 1
          local id, lock = ARGV[i], ARGV[2] .. ARGV[i + 1]
          if processed[j] == 1 or dead[j] == 1 then
            done[#done + 1] = id
            out[j] = 0
          elseif redis.call('SET', lock, ARGV[3], 'NX', 'PX', ARGV[4]) or redis.call('GET', lock) == ARGV[3] then
            out[j] = 1
          else
            out[j] = 2
          end
        end
        if #done > 0 then redis.call('XACK', KEYS[2], ARGV[1], unpack(done)) end
        return out
        """)

    /// Commit: settles a claimed batch atomically, for each key whose lock this claim still holds:
    /// a key whose work succeeded gets its processed bit, its entry acked, its lock released; a key whose work
    /// failed is either handed back for another delivery (XCLAIM to this consumer: the delivery count goes up)
    /// or, at the maximum number of deliveries, written to the dead-letter stream and its bitmap, acked and
    /// released. The outcome is recorded under the claim's token (KEYS[3], kept for the retry window), so a call
    /// retried after a lost reply gets the first call's answer instead of acting twice.
    /// The shard's tally (KEYS[6]) counts first commits per consumer, finished keys and repeats, for the driver's
    /// report over every process.
    /// KEYS: processed bitmap, stream, commit record, dead-letter bitmap, dead-letter stream, tally.
    /// ARGV: group, lock prefix, token, record ttl ms, max deliveries, consumer, then (entry id, index, deadline,
    /// succeeded 1/0) quadruples. Returns the server time in µs, then one code per key: 1 first commit,
    /// 2 repeat (already processed), 0 fenced (the lock lapsed or moved on: nothing written, the entry stays
    /// pending and is redone), 3 failed and handed back for redelivery, 4 dead-lettered.
    public static let commit = RedisScript(name: "commit", source: """
        local t = redis.call('TIME')
        local out = { tonumber(t[1]) * 1000000 + tonumber(t[2]) }
        local prior = redis.call('GET', KEYS[3])
        if prior then
          for code in string.gmatch(prior, '%d') do out[#out + 1] = tonumber(code) end
          return out
        end
        local locks = {}
        for i = 7, #ARGV, 4 do locks[#locks + 1] = ARGV[2] .. ARGV[i + 1] end
        local holders = redis.call('MGET', unpack(locks))
        local fields, acks, release, codes = {}, {}, {}, {}
        for j = 1, #locks do
          local i = 3 + 4 * j
          local id, idx = ARGV[i], ARGV[i + 1]
          if holders[j] ~= ARGV[3] then
            codes[j] = 0
          elseif ARGV[i + 3] == '1' then
            fields[#fields + 1] = 'SET'
            fields[#fields + 1] = 'u1'
            fields[#fields + 1] = idx
            fields[#fields + 1] = 1
            acks[#acks + 1] = id
            release[#release + 1] = locks[j]
            codes[j] = -1
          else
            local pending = redis.call('XPENDING', KEYS[2], ARGV[1], id, id, 1)
            local deliveries = 1
            if pending[1] then deliveries = tonumber(pending[1][4]) end
            release[#release + 1] = locks[j]
            if deliveries >= tonumber(ARGV[5]) then
              redis.call('XADD', KEYS[5], '*', 'k', idx, 'd', ARGV[i + 2], 'n', deliveries)
              redis.call('SETBIT', KEYS[4], idx, 1)
              acks[#acks + 1] = id
              codes[j] = 4
            else
              redis.call('XCLAIM', KEYS[2], ARGV[1], ARGV[6], 0, id)
              codes[j] = 3
            end
          end
        end
        local before = {}
        if #fields > 0 then before = redis.call('BITFIELD', KEYS[1], unpack(fields)) end
        if #acks > 0 then redis.call('XACK', KEYS[2], ARGV[1], unpack(acks)) end
        if #release > 0 then redis.call('DEL', unpack(release)) end
        local k, firsts, repeats, dead = 0, 0, 0, 0
        for j = 1, #locks do
          if codes[j] == -1 then
            k = k + 1
            if before[k] == 0 then codes[j] = 1 else codes[j] = 2 end
          end
          if codes[j] == 1 then firsts = firsts + 1 elseif codes[j] == 2 then repeats = repeats + 1 elseif codes[j] == 4 then dead = dead + 1 end
          out[#out + 1] = codes[j]
        end
        if firsts > 0 then redis.call('HINCRBY', KEYS[6], 'c:' .. ARGV[6], firsts) end
        if firsts + dead > 0 then redis.call('HINCRBY', KEYS[6], 'done', firsts + dead) end
        if repeats > 0 then redis.call('HINCRBY', KEYS[6], 'dup', repeats) end
        redis.call('SET', KEYS[3], table.concat(codes), 'PX', ARGV[4])
        return out
        """)

    public static let all = [publish, sweep, claim, commit]
}
