-- The Redis store's operations (src/relay/store/redis.rs), each run atomically: a session's
-- seats, counters and limits change only here, so any number of relays can share one Redis.
--
-- Keys of one session share the hash tag of its prefix ARGV[1] = "mpc:{HEX-NAME}:" (all in
-- one Redis Cluster slot): meta (hash: epoch, parties, created, last, qb, qm, complete,
-- n:PAIR next sequence number, b:PAIR queued bytes), seats (hash: c:SEAT client, t:SEAT
-- token digest, s:SEAT last heard of in ms, g:SEAT generation, l:SEAT loss logged), order
-- (list: seats in join order), pairs (set of "FROM:TO"), q:FROM:TO (stream: message n has
-- id 0-(n+1), field d), end (why the session ended, kept for two minutes).
--
-- ARGV: prefix, operation, time-to-live ms, lost-after ms, then the operation's own.
-- Every operation answers {json, data}: json says what happened, data is a message or "".

local P = ARGV[1]
local op = ARGV[2]
local ttl = tonumber(ARGV[3])
local lost_after = tonumber(ARGV[4])
local META, SEATS, ORDER, PAIRS = P .. 'meta', P .. 'seats', P .. 'order', P .. 'pairs'

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function answer(tbl, data)
  return { cjson.encode(tbl), data or '' }
end

local function refuse(code, extra)
  local tbl = extra or {}
  tbl.err = code
  return answer(tbl)
end

local function stream(pair)
  return P .. 'q:' .. pair
end

local function num(v)
  return tonumber(v) or 0
end

-- Keeps every key of the session alive for another time-to-live.
local function touch()
  redis.call('HSET', META, 'last', now)
  redis.call('PEXPIRE', META, ttl)
  redis.call('PEXPIRE', SEATS, ttl)
  redis.call('PEXPIRE', ORDER, ttl)
  redis.call('PEXPIRE', PAIRS, ttl)
  for _, pair in ipairs(redis.call('SMEMBERS', PAIRS)) do
    redis.call('PEXPIRE', stream(pair), ttl)
  end
end

-- Creates the session if it does not exist; true if it did not.
local function ensure(new_epoch)
  if redis.call('EXISTS', META) == 1 then
    return false
  end
  redis.call('HSET', META, 'epoch', new_epoch, 'created', now, 'last', now, 'qb', 0, 'qm', 0)
  redis.call('DEL', P .. 'end')
  return true
end

local function ended()
  return redis.call('GET', P .. 'end') or 'expired'
end

-- Whether SEAT fits a session of `parties` parties (the dealer always does).
local function fits(seat, parties)
  local n = tonumber(seat)
  return parties == nil or n == nil or n < parties
end

local function check_seat(seat)
  local parties = tonumber(redis.call('HGET', META, 'parties'))
  if not fits(seat, parties) then
    return refuse('seat', { seat = seat, parties = parties })
  end
end

local function authorize(seat, token, what)
  local claimed = redis.call('HGET', SEATS, 't:' .. seat)
  if claimed and claimed ~= token then
    return refuse('token', { seat = seat, what = what })
  end
end

-- Drops one pair's queue and starts its numbering again.
local function reset_pair(pair)
  local key = stream(pair)
  local count = redis.call('XLEN', key)
  local bytes = num(redis.call('HGET', META, 'b:' .. pair))
  redis.call('HINCRBY', META, 'qm', -count)
  redis.call('HINCRBY', META, 'qb', -bytes)
  redis.call('HSET', META, 'b:' .. pair, 0, 'n:' .. pair, 0)
  redis.call('DEL', key)
end

-- Empties the pairs from SEAT (and, if `both`, to it): a new client starts from message 0.
local function reset_pairs(seat, both)
  for _, pair in ipairs(redis.call('SMEMBERS', PAIRS)) do
    local from, to = string.match(pair, '^([^:]+):([^:]+)$')
    if from == seat or (both and to == seat) then
      reset_pair(pair)
    end
  end
end

-- Removes the messages of PAIR numbered below `seq`.
local function ack(pair, seq)
  local key = stream(pair)
  if seq <= 0 then
    return
  end
  local old = redis.call('XRANGE', key, '-', '0-' .. seq)
  for _, entry in ipairs(old) do
    local fields = entry[2]
    local len = string.len(fields[2])
    redis.call('XDEL', key, entry[1])
    redis.call('HINCRBY', META, 'qm', -1)
    redis.call('HINCRBY', META, 'qb', -len)
    redis.call('HINCRBY', META, 'b:' .. pair, -len)
  end
end

local function complete_now()
  local parties = tonumber(redis.call('HGET', META, 'parties'))
  if parties == nil or redis.call('HGET', META, 'complete') then
    return false
  end
  for p = 0, parties - 1 do
    if redis.call('HEXISTS', SEATS, 's:' .. p) == 0 then
      return false
    end
  end
  redis.call('HSET', META, 'complete', 1)
  return true
end

if op == 'join' then
  -- seat, client, token, parties, known epoch, new epoch
  local seat, client, token, wanted = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8])
  local known_epoch, new_epoch = ARGV[9], ARGV[10]
  if known_epoch ~= '' and redis.call('HGET', META, 'epoch') ~= known_epoch then
    return refuse('lost_session')
  end
  local created = ensure(new_epoch)
  local has = tonumber(redis.call('HGET', META, 'parties'))
  if wanted ~= nil then
    if has ~= nil and has ~= wanted then
      return refuse('parties', { has = has, wanted = wanted })
    end
    if has == nil then
      for _, s in ipairs(redis.call('LRANGE', ORDER, 0, -1)) do
        if not fits(s, wanted) then
          return refuse('seat', { seat = s, parties = wanted })
        end
      end
      redis.call('HSET', META, 'parties', wanted)
    end
  end
  local bad = check_seat(seat)
  if bad then
    return bad
  end
  local anonymous = client == '' and token == ''
  local out = { epoch = redis.call('HGET', META, 'epoch'), created = created }
  if redis.call('HEXISTS', SEATS, 's:' .. seat) == 0 then
    redis.call('RPUSH', ORDER, seat)
    redis.call('HSET', SEATS, 's:' .. seat, now, 'g:' .. seat, 0, 'l:' .. seat, 0)
    if client ~= '' then
      redis.call('HSET', SEATS, 'c:' .. seat, client)
    end
    if token ~= '' then
      redis.call('HSET', SEATS, 't:' .. seat, token)
      reset_pairs(seat, false)
    end
    out.joined = true
    out.complete = complete_now()
  else
    local mine_t = redis.call('HGET', SEATS, 't:' .. seat)
    local mine_c = redis.call('HGET', SEATS, 'c:' .. seat)
    local held
    if anonymous then
      if mine_t then
        return refuse('token', { seat = seat, what = 'joining it' })
      end
      held = true
    elseif mine_t then
      held = token ~= '' and mine_t == token
    elseif mine_c then
      held = client ~= '' and mine_c == client
    else
      held = true
    end
    if held then
      if not anonymous then
        if not mine_c and client ~= '' then
          redis.call('HSET', SEATS, 'c:' .. seat, client)
        end
        if not mine_t and token ~= '' then
          redis.call('HSET', SEATS, 't:' .. seat, token)
          reset_pairs(seat, false)
        end
      end
      redis.call('HSET', SEATS, 's:' .. seat, now)
    else
      local silent = now - num(redis.call('HGET', SEATS, 's:' .. seat))
      if silent <= lost_after then
        return refuse('taken', { seat = seat, silent = silent })
      end
      redis.call('HDEL', SEATS, 'c:' .. seat, 't:' .. seat)
      if client ~= '' then
        redis.call('HSET', SEATS, 'c:' .. seat, client)
      end
      if token ~= '' then
        redis.call('HSET', SEATS, 't:' .. seat, token)
      end
      redis.call('HSET', SEATS, 's:' .. seat, now, 'l:' .. seat, 0)
      redis.call('HINCRBY', SEATS, 'g:' .. seat, 1)
      reset_pairs(seat, true)
      out.reclaimed = true
      out.silent = silent
    end
  end
  touch()
  return answer(out)
elseif op == 'check_send' or op == 'send' then
  -- from, to, seq ("" for none), token, new epoch[, body, max queue, max session]
  local from, to, seq, token, new_epoch = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8], ARGV[9]
  local created = ensure(new_epoch)
  local bad = check_seat(from) or check_seat(to) or authorize(from, token, 'sending in its name')
  if bad then
    touch()
    return bad
  end
  local pair = from .. ':' .. to
  local next_seq = num(redis.call('HGET', META, 'n:' .. pair))
  local status
  if seq == nil or seq == next_seq then
    status = 'next'
  elseif seq < next_seq then
    status = 'duplicate'
  else
    touch()
    return refuse('gap', { got = seq, expected = next_seq, created = created })
  end
  if op == 'check_send' or status == 'duplicate' then
    if redis.call('HEXISTS', SEATS, 's:' .. from) == 1 then
      redis.call('HSET', SEATS, 's:' .. from, now)
    end
    touch()
    return answer({ status = status, seq = seq or next_seq, created = created })
  end
  local body, max_queue, max_session = ARGV[10], tonumber(ARGV[11]), tonumber(ARGV[12])
  local len = string.len(body)
  local queued = num(redis.call('HGET', META, 'b:' .. pair))
  if queued + len > max_queue then
    touch()
    return refuse('queue_limit', { queued = queued, created = created })
  end
  local total = num(redis.call('HGET', META, 'qb'))
  if total + len > max_session then
    touch()
    return refuse('session_limit', { queued = total, created = created })
  end
  redis.call('SADD', PAIRS, pair)
  redis.call('XADD', stream(pair), '0-' .. (next_seq + 1), 'd', body)
  redis.call('HSET', META, 'n:' .. pair, next_seq + 1)
  redis.call('HINCRBY', META, 'b:' .. pair, len)
  redis.call('HINCRBY', META, 'qb', len)
  redis.call('HINCRBY', META, 'qm', 1)
  touch()
  return answer({ status = 'queued', seq = next_seq, created = created })
elseif op == 'pop' then
  -- from, to, token
  local from, to, token = ARGV[5], ARGV[6], ARGV[7]
  if redis.call('EXISTS', META) == 0 then
    return refuse('no_message')
  end
  local bad = authorize(to, token, 'receiving its messages')
  if bad then
    return bad
  end
  if redis.call('HEXISTS', SEATS, 's:' .. to) == 1 then
    redis.call('HSET', SEATS, 's:' .. to, now)
  end
  touch()
  local pair = from .. ':' .. to
  local first = redis.call('XRANGE', stream(pair), '-', '+', 'COUNT', 1)
  if #first == 0 then
    return refuse('no_message')
  end
  local body = first[1][2][2]
  ack(pair, tonumber(string.match(first[1][1], '^0%-(%d+)$')))
  return answer({ ok = true }, body)
elseif op == 'recv' then
  -- from, to, seq, token, known epoch ("" for the first look), known generation, new epoch
  local from, to, seq, token = ARGV[5], ARGV[6], tonumber(ARGV[7]), ARGV[8]
  local known_epoch, known_gen, new_epoch = ARGV[9], ARGV[10], ARGV[11]
  local created = false
  if known_epoch == '' then
    created = ensure(new_epoch)
  elseif redis.call('HGET', META, 'epoch') ~= known_epoch then
    return refuse('closed', { why = ended() })
  end
  local epoch = redis.call('HGET', META, 'epoch')
  local bad = check_seat(from) or check_seat(to) or authorize(to, token, 'receiving its messages')
  if bad then
    touch()
    return bad
  end
  if redis.call('HEXISTS', SEATS, 's:' .. to) == 1 then
    redis.call('HSET', SEATS, 's:' .. to, now)
  end
  touch()
  local gen = redis.call('HGET', SEATS, 'g:' .. from)
  if gen and known_gen ~= '' and gen ~= known_gen then
    return refuse('reclaimed')
  end
  local pair = from .. ':' .. to
  ack(pair, seq)
  local key = stream(pair)
  local id = '0-' .. (seq + 1)
  local found = redis.call('XRANGE', key, id, id)
  local out = { epoch = epoch, gen = gen or '', created = created }
  if #found == 1 then
    out.ready = true
    return answer(out, found[1][2][2])
  end
  if seq < num(redis.call('HGET', META, 'n:' .. pair)) then
    return refuse('delivered')
  end
  local claimed = redis.call('HGET', SEATS, 'c:' .. from) or redis.call('HGET', SEATS, 't:' .. from)
  if claimed then
    local silent = now - num(redis.call('HGET', SEATS, 's:' .. from))
    if silent > lost_after then
      local first = redis.call('HGET', SEATS, 'l:' .. from) ~= '1'
      redis.call('HSET', SEATS, 'l:' .. from, 1)
      return refuse('lost', { silent = silent, first = first })
    end
    out.recheck = lost_after - silent + 1
  end
  return answer(out)
elseif op == 'delete' then
  -- token digest ("" for none), admin ("1" or "")
  local token, admin = ARGV[5], ARGV[6] == '1'
  if redis.call('EXISTS', META) == 0 then
    return answer({ deleted = false })
  end
  if not admin then
    local holder = false
    local fields = redis.call('HGETALL', SEATS)
    for i = 1, #fields, 2 do
      if string.sub(fields[i], 1, 2) == 't:' and token ~= '' and fields[i + 1] == token then
        holder = true
      end
    end
    if not holder then
      return refuse('forbidden')
    end
  end
  for _, pair in ipairs(redis.call('SMEMBERS', PAIRS)) do
    redis.call('DEL', stream(pair))
  end
  redis.call('DEL', META, SEATS, ORDER, PAIRS)
  redis.call('SET', P .. 'end', 'deleted', 'PX', 120000)
  return answer({ deleted = true })
elseif op == 'detail' then
  -- refresh ("1" to count the look as activity)
  if redis.call('EXISTS', META) == 0 then
    return answer({ exists = false })
  end
  if ARGV[5] == '1' then
    touch()
  end
  local m = redis.call('HMGET', META, 'parties', 'qm', 'qb', 'created', 'last')
  local seats = {}
  local fields = redis.call('HGETALL', SEATS)
  for i = 1, #fields, 2 do
    local s = string.match(fields[i], '^s:(.+)$')
    if s then
      table.insert(seats, s)
    end
  end
  return answer({
    exists = true,
    parties = tonumber(m[1]),
    order = redis.call('LRANGE', ORDER, 0, -1),
    seats = seats,
    qm = num(m[2]),
    qb = num(m[3]),
    age = now - num(m[4]),
    idle = now - num(m[5]),
  })
end
return refuse('unknown_op', { op = op })
