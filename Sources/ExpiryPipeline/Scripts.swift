import RedisClient

/// The Lua scripts that make each step of the protocol atomic (DESIGN.md, "The protocol").
///
/// All of a script's keys share the run's prefix; per-key names (data keys, locks) are built inside the
/// script from a prefix argument, so one call serves a whole batch.
package enum Scripts {
    /// Publish once: moves each key still in the due index to the stream, removing it from the index in the
    /// same step; a key already gone from the index is skipped, so two paths can never publish it twice.
    /// An entry holds the key's index and deadline only (`k`, `d`): every field is written, read back and parsed
    /// once per key. KEYS: due index, stream. ARGV: indices... Returns how many were published.
    package static let publish = RedisScript(name: "publish", source: inParts + """
        local wanted, seen = {}, {}
        for i = 1, #ARGV do
          if not seen[ARGV[i]] then
            seen[ARGV[i]] = true
            wanted[#wanted + 1] = ARGV[i]
          end
        end
        if #wanted == 0 then return 0 end
        local deadlines = call_in_parts('ZMSCORE', { KEYS[1] }, wanted)
        local found = {}
        for i = 1, #wanted do
          if deadlines[i] then
            found[#found + 1] = wanted[i]
            redis.call('XADD', KEYS[2], '*', 'k', wanted[i], 'd', deadlines[i])
          end
        end
        if #found > 0 then call_in_parts('ZREM', { KEYS[1] }, found) end
        return #found
        """)

    /// Sweep: makes Redis expire the run's overdue keys, so that Redis raises their `expired` events and the
    /// bridge publishes them; publishes a key itself (rescues it) only when its event has not come long after.
    /// - Touch: keys due in (cursor, now - grace) are touched (EXISTS): a key whose TTL has passed is deleted by
    ///   Redis at once and its event published, whether or not Redis's own expiry cycle had reached it.
    /// - Rescue: keys still in the due index more than grace + rescue past their deadline (their event was lost:
    ///   the subscriber was away, or cut off) are published here (counted apart), and removed from the index in the
    ///   same step, so a late event for them publishes nothing.
    /// Who expired a key is told by DBSIZE before and after the touches (nothing else runs inside the script).
    /// KEYS: due index, stream. ARGV: data-key prefix, grace ms, rescue ms, limit, touch cursor (a deadline in ms,
    /// exclusive; '-inf' at first). Returns {rescued, touched, expired by the touches, next cursor, 1 when more
    /// keys are due now (a full page) else 0}.
    package static let sweep = RedisScript(name: "sweep", source: inParts + """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local limit = tonumber(ARGV[4])
        local due = now - tonumber(ARGV[2]) - 1
        local late = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', due - tonumber(ARGV[3]), 'WITHSCORES', 'LIMIT', 0, limit)
        local touch = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[5], due, 'WITHSCORES', 'LIMIT', 0, limit)
        local cursor, upto, more = tostring(due), #touch, 0
        if #touch == 2 * limit then
          more = 1
          -- A full page: stop before its last deadline, whose keys may go on past the page; a page of one
          -- deadline takes all of that deadline's keys. The next sweep goes on after the cursor.
          local last = touch[#touch]
          if touch[2] == last then
            touch = redis.call('ZRANGEBYSCORE', KEYS[1], last, last, 'WITHSCORES')
            upto = #touch
          else
            while touch[upto] == last do upto = upto - 2 end
          end
          cursor = touch[upto]
        end
        local touched = {}
        for i = 1, #late, 2 do touched[#touched + 1] = ARGV[1] .. late[i] end
        for i = 1, upto, 2 do touched[#touched + 1] = ARGV[1] .. touch[i] end
        local before = redis.call('DBSIZE')
        if #touched > 0 then call_in_parts('EXISTS', {}, touched) end
        local expired = before - redis.call('DBSIZE')
        if #late == limit * 2 then more = 1 end
        if #late == 0 then return { 0, upto / 2, expired, cursor, more } end
        local members = {}
        for i = 1, #late, 2 do
          members[#members + 1] = late[i]
          redis.call('XADD', KEYS[2], '*', 'k', late[i], 'd', late[i + 1])
        end
        call_in_parts('ZREM', { KEYS[1] }, members)
        return { #members, upto / 2, expired, cursor, more }
        """)

    /// Claim: for each delivered entry, acks it at once if the key is already processed or dead-lettered (a
    /// duplicate delivery caught), else takes the key's lock (a retried call finds the lock already its own).
    /// A lock is `lock:<key>` holding `<until ms>|<token>`: held until that time on the server's clock, free after
    /// it. The lease lives in the value, not in a TTL, so the locks in flight add nothing to what Redis's expiry
    /// cycle samples (hundreds of live TTL keys double its lag); the commit script deletes them.
    /// KEYS: processed bitmap, stream, dead-letter bitmap. ARGV: group, lock prefix, token, lock ttl ms, then
    /// (entry id, index) pairs. Returns one code per pair: 0 already done, 1 claimed, 2 locked by another consumer;
    /// a `GONE` error, having written nothing, when one of its KEYS is missing (see `gate`).
    package static let claim = RedisScript(name: "claim", source: gate + now + inParts + claimFunction + """
        local ids, idxs = {}, {}
        for i = 5, #ARGV, 2 do
          ids[#ids + 1] = ARGV[i]
          idxs[#idxs + 1] = ARGV[i + 1]
        end
        return claim_keys(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ids, idxs)
        """)

    /// Commit: settles a claimed batch atomically, for each key whose lock this claim still holds (its token, and
    /// its time not yet past):
    /// a key whose work succeeded gets its processed bit, its entry acked, its lock released; a key whose work
    /// failed is either handed back for another delivery (XCLAIM to this consumer: the delivery count goes up)
    /// or, at the maximum number of deliveries, written to the dead-letter stream and its bitmap, acked and
    /// released. The outcome is recorded in the shard's commit-record hash (KEYS[3], a field per consumer holding
    /// its last call's name and codes), so a call retried after a lost reply gets the first call's answer instead
    /// of acting twice. A consumer settles one call at a time, so its last record is the only one a retry can
    /// ask for, and the hash carries no TTL: it adds nothing to what Redis's expiry cycle samples.
    /// The shard's tally (KEYS[6]) counts first commits per consumer, finished keys and repeats, for the driver's
    /// report over every process.
    /// KEYS: processed bitmap, stream, commit records, dead-letter bitmap, dead-letter stream, tally.
    /// ARGV: group, lock prefix, token, record name, max deliveries, consumer, then (entry id, index, deadline,
    /// succeeded 1/0) quadruples. Returns the server time in µs, then one code per key: 1 first commit,
    /// 2 repeat (already processed), 0 fenced (the lock lapsed or moved on: nothing written, the entry stays
    /// pending and is redone), 3 failed and handed back for redelivery, 4 dead-lettered; a `GONE` error, having
    /// written nothing, when one of its KEYS is missing (see `gate`).
    package static let commit = RedisScript(name: "commit", source: gate + now + inParts + commitFunction + """
        return commit_keys(7)
        """)

    /// Settle and read: the commit script's step for a finished batch, then, in the same call, the consumer's next
    /// batch: up to a count of new entries (XREADGROUP, never blocking) claimed as the claim script would, under
    /// the next claim's token. One round trip per batch instead of three (commit, read, claim), which is what lets
    /// 64 consumers with 5 ms of work each keep up with bursts of expired events. A retry after a lost reply gets
    /// the commit's recorded answer and reads anew; entries read by the lost call stay pending, their locks lapse,
    /// and they are reclaimed once idle, as after any lost read.
    /// KEYS: as the commit script. ARGV: the commit script's first six, then the count to read, the next token,
    /// the lock ttl ms, then the commit's quadruples. Returns {the commit script's reply, the entries read (as
    /// XREADGROUP gives them), their claim codes}; a `GONE` error as the commit script's.
    package static let settleAndRead = RedisScript(name: "settle-and-read", source: gate + now + inParts + claimFunction + commitFunction + """
        local settled = commit_keys(10)
        local entries, codes = {}, {}
        if tonumber(ARGV[7]) > 0 then
          local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[6], 'COUNT', ARGV[7], 'STREAMS', KEYS[2], '>')
          if reply and reply[1] then
            entries = reply[1][2]
            local ids, idxs = {}, {}
            for j = 1, #entries do
              ids[j] = entries[j][1]
              local fields = entries[j][2]
              for i = 1, #fields, 2 do
                if fields[i] == 'k' then idxs[j] = fields[i + 1] end
              end
            end
            codes = claim_keys(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2], ARGV[8], ARGV[9], ids, idxs)
          end
        end
        return { settled, entries, codes }
        """)

    /// The consumers' gate: every key a consumer's script writes, but for the locks, is made when the run starts,
    /// with its safety TTL (`ShardKeyspace.creationCommands`), and no script makes one again. A consumer process
    /// that outlives its run (its driver removed the run, or Redis lost the data) would otherwise bring the
    /// processed bitmap, the tally and the commit records back without a TTL, under a prefix that no run owns. One
    /// EXISTS of the script's KEYS per call; if one is missing, the script writes nothing and answers the error
    /// `GONE` (`RedisError.isRunGone`).
    private static let gate = """
        if redis.call('EXISTS', unpack(KEYS)) < #KEYS then
          return redis.error_reply("\(gone)")
        end

        """

    /// The `GONE` error's text.
    private static let gone = "GONE the run's keys are gone from Redis (its driver removed the run, or the data was lost): nothing written"

    /// Lease renewal: sets each lease key (PX the lease TTL), its deadline in the lease index, and the index's
    /// safety TTL, only while the run's meta hash exists, so that a consumer process still beating after its driver
    /// removed the run brings nothing back. KEYS: meta hash, lease index, then the lease keys. ARGV: lease ttl ms,
    /// deadline ms, safety ttl ms, then one member per lease key. Returns how many leases it renewed; a `GONE` error,
    /// having written nothing, when the meta hash is missing.
    package static let renewLeases = RedisScript(name: "renew-leases", source: inParts + """
        if redis.call('EXISTS', KEYS[1]) == 0 then
          return redis.error_reply("\(gone)")
        end
        local deadline, members = ARGV[2], {}
        for i = 3, #KEYS do
          redis.call('SET', KEYS[i], '1', 'PX', ARGV[1])
          members[#members + 1] = deadline
          members[#members + 1] = ARGV[i + 1]
        end
        if #members > 0 then call_in_parts('ZADD', { KEYS[2] }, members) end
        redis.call('PEXPIRE', KEYS[2], ARGV[3])
        return #KEYS - 2
        """)

    /// `call_in_parts(command, head, items)`: the command with the `head` arguments and then `items`, sent in parts
    /// of at most 2,400 items (a multiple of the 2, 3 and 4 words of a pair, a BITFIELD GET and a BITFIELD SET),
    /// since Lua cannot pass more than about 8,000 values to one call (`--batch` 5,000 needs 15,000 for its
    /// BITFIELD). Returns the parts' array replies joined in order, or an integer reply's sum.
    private static let inParts = """
        local function call_in_parts(command, head, items)
          local joined, sum = {}, 0
          for first = 1, #items, 2400 do
            local args = { unpack(head) }
            for i = first, math.min(first + 2399, #items) do args[#args + 1] = items[i] end
            local reply = redis.call(command, unpack(args))
            if type(reply) == 'table' then
              for i = 1, #reply do joined[#joined + 1] = reply[i] end
            else
              sum = sum + reply
            end
          end
          if #joined == 0 and sum > 0 then return sum end
          return joined
        end

        """

    /// The server's clock, read once per call: `now` in ms, `now_us` in µs.
    private static let now = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])

        """

    /// `claim_keys(processed, stream, dead bits, group, lock prefix, token, lock ms, ids, indices)`: the claim
    /// script's step for the given entries; returns one code per entry.
    private static let claimFunction = """
        local function claim_keys(processed_key, stream_key, dead_key, group, lock_prefix, token, lock_ms, ids, idxs)
          if #ids == 0 then return {} end
          local fields = {}
          for j = 1, #idxs do
            fields[#fields + 1] = 'GET'
            fields[#fields + 1] = 'u1'
            fields[#fields + 1] = idxs[j]
          end
          local processed = call_in_parts('BITFIELD_RO', { processed_key }, fields)
          local dead = call_in_parts('BITFIELD_RO', { dead_key }, fields)
          local held = string.format('%d|%s', now + tonumber(lock_ms), token)
          local out, done, wanted, locks = {}, {}, {}, {}
          for j = 1, #ids do
            if processed[j] == 1 or dead[j] == 1 then
              done[#done + 1] = ids[j]
              out[j] = 0
            else
              wanted[#wanted + 1] = j
              locks[#locks + 1] = lock_prefix .. idxs[j]
            end
          end
          -- One MGET and one MSET for the batch's locks, not a call per key.
          local current = {}
          if #locks > 0 then current = call_in_parts('MGET', {}, locks) end
          local taken = {}
          for w = 1, #wanted do
            local value, free = current[w], not current[w]
            if value then
              local bar = string.find(value, '|', 1, true)
              free = not bar or tonumber(string.sub(value, 1, bar - 1)) <= now or string.sub(value, bar + 1) == token
            end
            if free then
              taken[#taken + 1] = locks[w]
              taken[#taken + 1] = held
              out[wanted[w]] = 1
            else
              out[wanted[w]] = 2
            end
          end
          if #taken > 0 then call_in_parts('MSET', {}, taken) end
          if #done > 0 then call_in_parts('XACK', { stream_key, group }, done) end
          return out
        end

        """

    /// `commit_keys(first)`: the commit script's step, with KEYS and ARGV[1...6] laid out as in the commit script
    /// and its quadruples from ARGV[first]; returns the server time in µs, then one code per key.
    private static let commitFunction = """
        local function commit_keys(first)
          local out = { now_us }
          local prior = redis.call('HGET', KEYS[3], ARGV[6])
          local tag = ARGV[4] .. '|'
          if prior and string.sub(prior, 1, #tag) == tag then
            for code in string.gmatch(string.sub(prior, #tag + 1), '%d') do out[#out + 1] = tonumber(code) end
            return out
          end
          local locks = {}
          for i = first, #ARGV, 4 do locks[#locks + 1] = ARGV[2] .. ARGV[i + 1] end
          if #locks == 0 then return out end
          local holders = call_in_parts('MGET', {}, locks)
          local fields, acks, release, codes = {}, {}, {}, {}
          local mine = '|' .. ARGV[3]
          for j = 1, #locks do
            local i = first + 4 * (j - 1)
            local id, idx = ARGV[i], ARGV[i + 1]
            local holder = holders[j]
            local own = holder and string.sub(holder, -#mine) == mine
            if not own or tonumber(string.sub(holder, 1, #holder - #mine)) <= now then
              -- Fenced: the lock lapsed (or was taken over). A lapsed lock of its own is let go.
              if own then release[#release + 1] = locks[j] end
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
          if #fields > 0 then before = call_in_parts('BITFIELD', { KEYS[1] }, fields) end
          if #acks > 0 then call_in_parts('XACK', { KEYS[2], ARGV[1] }, acks) end
          if #release > 0 then call_in_parts('DEL', {}, release) end
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
          redis.call('HSET', KEYS[3], ARGV[6], tag .. table.concat(codes))
          return out
        end

        """

    /// Footprint: how many keys of the database carry a TTL (INFO keyspace's `expires=`), and how many data keys
    /// wait in the given due indexes, read at one instant (nothing runs between them inside a script).
    /// KEYS: due indexes. ARGV: database number. Returns {keys with a TTL, keys in the due indexes}.
    package static let footprint = RedisScript(name: "footprint", source: """
        local info = redis.call('INFO', 'keyspace')
        local expires = tonumber(string.match(info, 'db' .. ARGV[1] .. ':[^\\r\\n]*expires=(%d+)')) or 0
        local due = 0
        for i = 1, #KEYS do due = due + redis.call('ZCARD', KEYS[i]) end
        return { expires, due }
        """)

    package static let all = [publish, sweep, claim, commit, settleAndRead, renewLeases, footprint]
}
