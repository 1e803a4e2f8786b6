-- The fenced batch save (pipeline.state.redis.RedisStateStore.save).
-- ARGV[1] = n states, ARGV[2] = history length (0: no history keys or entries),
-- ARGV[3] = alerts kept, ARGV[4] = number of alerts, ARGV[5] = the n latest scores as
-- little-endian doubles in one string (one argument instead of n); then n blobs.
-- KEYS[1..n] are state keys (headers already checked in Python). With a view (#KEYS > n):
-- if the history length is > 0, KEYS[n+1..2n] are history keys and ARGV continues with n
-- history entries; then KEYS[h+1] the scores zset, KEYS[h+2] the alerts stream, KEYS[h+3]
-- the metrics hash (h = n or 2n), and ARGV continues with n stream ids, the alerts, then
-- (field, increment) metric pairs (a field starting with "=" is set, one starting with "^"
-- set only if larger, the rest incremented). A fourth such key, KEYS[h+4], is the
-- generations hash, and then the last ARGV is this client's field in it: every save
-- increments the field, so it goes back only when Redis forgets writes
-- (pipeline.state.base.Generation).
-- Without those keys (#KEYS = h: Redis Cluster, where they live in other slots and
-- pipeline.state.cluster writes them in a second step) only states and history are written.
-- Returns the client's new generation (0 without the key), then the 1-based indices of
-- refused writes. Keys are handled in order, so a stream that appears twice in one batch
-- behaves as two consecutive saves.
--
-- Only the stored header is read (GETRANGE): fetching every old state whole would move
-- another copy of them through the script; the whole value is read only on an offset tie,
-- where an identical rewrite (a retried save that had landed) must still be accepted. Its
-- history points were appended by the save that landed, so they are not appended again
-- (a save is sent in several calls, and a retry after a failed one repeats the others).
-- The score index is updated 500 members per ZADD: one call per stream cost more than the
-- state write itself (measured with INFO commandstats at 10,000 streams).
local n = tonumber(ARGV[1])
local hlen = tonumber(ARGV[2])
local kept = tonumber(ARGV[3])
local n_alerts = tonumber(ARGV[4])
local scores = ARGV[5]
local view = #KEYS > n
local h = n
if view and hlen > 0 then h = 2 * n end
local globals = #KEYS > h
local counted = #KEYS > h + 3
local last = #ARGV
if counted then last = #ARGV - 1 end
local streams = 5 + n
if hlen > 0 then streams = 5 + 2 * n end
local refused = {0}
local ranked = {}
for i = 1, n do
  local key = KEYS[i]
  local new = ARGV[5 + i]
  local old = redis.call('GETRANGE', key, 0, 15)
  local write = true
  local again = false
  if #old >= 16 and string.sub(old, 1, 2) == 'VG' then
    local old_partition = struct.unpack('<i4', old, 5)
    local new_partition = struct.unpack('<i4', new, 5)
    if old_partition == new_partition then
      local old_offset = struct.unpack('<i8', old, 9)
      local new_offset = struct.unpack('<i8', new, 9)
      write = old_offset < new_offset
      if old_offset == new_offset then
        write = redis.call('GET', key) == new
        again = write
      end
    end
  end
  if write then
    if not again then
      redis.call('SET', key, new)
    end
    if view then
      if hlen > 0 and not again then
        local add = ARGV[5 + n + i]
        if #add > 0 then
          -- same rule as pipeline.contracts.history.append_points
          local head_size, point_size = struct.unpack('<I2I2', add, 3)
          local head = string.sub(add, 1, head_size)
          local body = string.sub(add, head_size + 1)
          local old_history = redis.call('GET', KEYS[n + i])
          if old_history and string.sub(old_history, 1, head_size) == head then
            body = string.sub(old_history, head_size + 1) .. body
          end
          local cut = hlen * point_size
          if #body > cut then
            body = string.sub(body, #body - cut + 1)
          end
          redis.call('SET', KEYS[n + i], head .. body)
        end
      end
      if globals then
        ranked[#ranked + 1] = struct.unpack('<d', scores, 8 * (i - 1) + 1)
        ranked[#ranked + 1] = ARGV[streams + i]
        if #ranked >= 1000 then
          redis.call('ZADD', KEYS[h + 1], unpack(ranked))
          ranked = {}
        end
      end
    end
  else
    refused[#refused + 1] = i
  end
end
if #ranked > 0 then
  redis.call('ZADD', KEYS[h + 1], unpack(ranked))
end
if globals then
  local first = streams + n
  for j = first + 1, first + n_alerts do
    redis.call('XADD', KEYS[h + 2], 'MAXLEN', '~', kept, '*', 'alert', ARGV[j])
  end
  for j = first + n_alerts + 1, last, 2 do
    local field = ARGV[j]
    local how = string.sub(field, 1, 1)
    if how == '=' then
      redis.call('HSET', KEYS[h + 3], string.sub(field, 2), ARGV[j + 1])
    elseif how == '^' then
      local old = tonumber(redis.call('HGET', KEYS[h + 3], string.sub(field, 2)))
      if not old or old < tonumber(ARGV[j + 1]) then
        redis.call('HSET', KEYS[h + 3], string.sub(field, 2), ARGV[j + 1])
      end
    else
      redis.call('HINCRBYFLOAT', KEYS[h + 3], field, ARGV[j + 1])
    end
  end
end
if counted then
  refused[1] = redis.call('HINCRBY', KEYS[h + 4], ARGV[#ARGV], 1)
end
return refused
