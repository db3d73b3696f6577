/* The store's Lua scripts. Each runs atomically on the server, so what one
 * script does (claim due jobs; record a batch's runs and advance its jobs;
 * take over a dead scheduler's runs; start or close a run) is seen by the
 * other schedulers all at once or not at all. KEYS[1] is the root "{P}":
 * every key a script touches is built from it and so shares its hash slot.
 * Times are microseconds as decimal text, passed through unchanged (a Lua
 * number would print them in exponent form); the server's TIME is the
 * clock of leases and of started_at / claimed_at. */
#include "redis_internal.h"

/* What every script starts with: the root, the server's time as text, a
 * hash as a Lua table, and a command applied to a list (one call per 1000
 * elements: a call from a script costs 1-2 us besides its own work, so the
 * writes of a batch to one key are gathered into one). */
#define PRELUDE                                                                                \
  "local R = KEYS[1]\n"                                                                        \
  "local function now_us() local t = redis.call('TIME')\n"                                     \
  "  return t[1] .. string.format('%06d', tonumber(t[2])) end\n"                               \
  "local function fields(key) local h = redis.call('HGETALL', key) local f = {}\n"             \
  "  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end return f end\n"                               \
  "local function batched(cmd, key, list) for i = 1, #list, 1000 do\n"                          \
  "  local j = math.min(i + 999, #list)\n"                                                      \
  "  if key then redis.call(cmd, key, unpack(list, i, j)) else redis.call(cmd, unpack(list, i, j)) end\n" \
  "end end\n"

/* The run history of the scripts that end runs (S_CLOSE, S_ORPHANS): keep
 * is the retention in ms (0: no history, -1: all); an entry per ended run,
 * then entries older than keep by the server's clock are trimmed. */
#define HISTORY                                                                                \
  "local function history_add(keep, ...)\n"                                                    \
  "  if keep ~= 0 then redis.call('XADD', R .. ':history', '*', ...) end end\n"                \
  "local function history_trim(keep) if keep <= 0 then return end\n"                          \
  "  local t = redis.call('TIME')\n"                                                           \
  "  local min = tonumber(t[1]) * 1000 - keep\n"                                               \
  "  if min > 0 then redis.call('XTRIM', R .. ':history', 'MINID', string.format('%d', min)) end end\n"

/* Runs that wait (S_WAIT, S_ADD, S_TAKE): m is a run's job as the commit
 * records it (name flag, name, func, executor, arg, max_instances,
 * max_runtime_ms, delivery). record_runs writes claimed runs as S_COMMIT
 * does; instances counts a job's runs in progress (distinct tokens);
 * wait_run keeps a run waiting under its overlap policy (see waiting.c). */
#define WAITING                                                                                \
  "local function record_runs(id, times, tok, m, owner, now)\n"                                 \
  "  for _, t in ipairs(times) do\n"                                                            \
  "    local rk = R .. ':run:' .. id .. ':' .. t\n"                                             \
  "    redis.call('HSET', rk, 'job_id', id, 'scheduled_time', t, 'owner', owner, 'token', tok,\n" \
  "      'attempt', 1, 'claimed_at', now, 'func', m[3], 'executor', m[4],\n"                    \
  "      'max_instances', m[6], 'max_runtime_ms', m[7], 'delivery', m[8])\n"                    \
  "    if m[1] == '1' then redis.call('HSET', rk, 'name', m[2]) end\n"                          \
  "    if m[5] ~= '' then redis.call('HSET', rk, 'arg', m[5]) end\n"                            \
  "    redis.call('HSET', R .. ':jobruns:' .. id, t, tok)\n"                                    \
  "    redis.call('SADD', R .. ':owned:' .. owner, rk)\n"                                       \
  "  end\n"                                                                                     \
  "  redis.call('SADD', R .. ':owners', owner)\n"                                               \
  "end\n"                                                                                       \
  "local function instances(id) local seen, n = {}, 0\n"                                        \
  "  for _, tok in ipairs(redis.call('HVALS', R .. ':jobruns:' .. id)) do\n"                    \
  "    if not seen[tok] then seen[tok] = true n = n + 1 end end\n"                               \
  "  return n end\n"                                                                            \
  "local function taken(id, times)\n"                                                           \
  "  for _, t in ipairs(times) do\n"                                                            \
  "    if redis.call('HEXISTS', R .. ':jobruns:' .. id, t) == 1 then return true end end\n"     \
  "  return false end\n"                                                                        \
  "local function ask_stop(me, id, policy)\n"                                                   \
  "  local runs, best, btok = redis.call('HGETALL', R .. ':jobruns:' .. id), nil, nil\n"       \
  "  for i = 1, #runs, 2 do\n"                                                                  \
  "    local rk = R .. ':run:' .. id .. ':' .. runs[i]\n"                                       \
  "    if redis.call('HEXISTS', rk, 'stop_request') == 0 and\n"                                 \
  "       (best == nil or tonumber(runs[i]) < tonumber(best)) then best, btok = runs[i], runs[i + 1] end\n" \
  "  end\n"                                                                                     \
  "  if not best then return '', 0 end\n"                                                       \
  "  local req, owner = policy == 'terminate_other' and 'terminate' or 'cancel', nil\n"        \
  "  for i = 1, #runs, 2 do if runs[i + 1] == btok then\n"                                     \
  "    local rk = R .. ':run:' .. id .. ':' .. runs[i]\n"                                       \
  "    redis.call('HSET', rk, 'stop_request', req)\n"                                           \
  "    owner = redis.call('HGET', rk, 'owner') end end\n"                                       \
  "  if owner == me then return best, 1 end\n"                                                  \
  "  if owner then\n"                                                                           \
  "    redis.call('SADD', R .. ':stops:' .. owner, R .. ':run:' .. id .. ':' .. best)\n"       \
  "    redis.call('PUBLISH', R .. ':wakeup', 'stop') end\n"                                     \
  "  return best, 0 end\n"                                                                      \
  "local function wait_run(me, id, policy, on_demand, limit, grace, keep, m, times)\n"         \
  "  if taken(id, times) then return {'taken'} end\n"                                           \
  "  local wk = R .. ':waiting:' .. id\n"                                                       \
  "  if #redis.call('ZRANGEBYSCORE', wk, times[1], times[1]) > 0 then\n"                       \
  "    return {'ok', redis.call('ZCARD', wk), '', '', 0} end\n"                                 \
  "  local replaced = ''\n"                                                                     \
  "  if policy == 'buffer_all' then\n"                                                          \
  "    if redis.call('ZCARD', wk) >= limit then return {'full'} end\n"                          \
  "  else\n"                                                                                    \
  "    local now = now_us()\n"                                                                  \
  "    for _, tok in ipairs(redis.call('ZRANGE', wk, 0, -1)) do\n"                              \
  "      local hk = R .. ':wait:' .. id .. ':' .. tok\n"                                        \
  "      for t in string.gmatch(redis.call('HGET', hk, 'times') or '', '[^,]+') do\n"           \
  "        if replaced == '' or tonumber(t) < tonumber(replaced) then replaced = t end\n"       \
  "        history_add(keep, 'job_id', id, 'scheduled_time', t, 'attempt', '1', 'started_at', '',\n" \
  "          'finished_at', now, 'outcome', 'skipped', 'retval', '',\n"                         \
  "          'error', 'a newer due run waits in its place (overlap policy ' .. policy .. ')')\n"  \
  "      end\n"                                                                                 \
  "      redis.call('DEL', hk)\n"                                                               \
  "    end\n"                                                                                   \
  "    redis.call('DEL', wk)\n"                                                                 \
  "    if replaced ~= '' then history_trim(keep) end\n"                                         \
  "  end\n"                                                                                     \
  "  local tok = redis.call('INCR', R .. ':token')\n"                                           \
  "  redis.call('HSET', R .. ':wait:' .. id .. ':' .. tok, 'times', table.concat(times, ','),\n" \
  "    'name_flag', m[1], 'name', m[2], 'func', m[3], 'executor', m[4], 'arg', m[5],\n"        \
  "    'max_instances', m[6], 'max_runtime_ms', m[7], 'delivery', m[8], 'grace', grace,\n"     \
  "    'on_demand', on_demand, 'overlap', policy)\n"                                            \
  "  redis.call('ZADD', wk, times[1], tok)\n"                                                   \
  "  redis.call('SADD', R .. ':waitjobs', id)\n"                                                \
  "  local stop_t, stop_here = '', 0\n"                                                         \
  "  if policy == 'cancel_other' or policy == 'terminate_other' then\n"                         \
  "    stop_t, stop_here = ask_stop(me, id, policy) end\n"                                      \
  "  return {'ok', redis.call('ZCARD', wk), replaced, stop_t, stop_here}\n"                     \
  "end\n"

static const char *const texts[S_COUNT] = {
    /* ARGV: n, then per job: id, mode (add | upsert | update), next ("":
     * paused), nf, nf field/value pairs. All or nothing: every check comes
     * before the first write. Returns {"ok"} or {"exists" | "missing", index}. */
    [S_PUT] = PRELUDE
    "local n, i, jobs, seen = tonumber(ARGV[1]), 2, {}, {}\n"
    "for j = 1, n do\n"
    "  local job = {id = ARGV[i], mode = ARGV[i + 1], next = ARGV[i + 2], nf = tonumber(ARGV[i + 3]), at = i + 4}\n"
    "  i = i + 4 + 2 * job.nf\n"
    "  local exists = redis.call('EXISTS', R .. ':job:' .. job.id) == 1 or redis.call('ZSCORE', R .. ':jobs', job.id)\n"
    "  if (job.mode == 'add' and (exists or seen[job.id])) then return {'exists', j - 1} end\n"
    "  if (job.mode == 'update' and not exists) then return {'missing', j - 1} end\n"
    "  seen[job.id] = true\n"
    "  jobs[j] = job\n"
    "end\n"
    "for _, job in ipairs(jobs) do\n"
    "  local key = R .. ':job:' .. job.id\n"
    "  redis.call('DEL', key)\n"
    "  redis.call('HSET', key, unpack(ARGV, job.at, job.at + 2 * job.nf - 1))\n"
    "  redis.call('ZADD', R .. ':jobs', 0, job.id)\n"
    "  if job.next == '' then redis.call('ZREM', R .. ':next', job.id)\n"
    "  else redis.call('ZADD', R .. ':next', job.next, job.id) end\n"
    "end\n"
    "redis.call('PUBLISH', R .. ':wakeup', '')\n"
    "return {'ok'}\n",

    /* ARGV: id, or nothing for all jobs. Returns how many were removed.
     * Runs in progress keep their records; runs waiting go with the job. */
    [S_REMOVE] = PRELUDE
    "local ids = ARGV[1] and {ARGV[1]} or redis.call('ZRANGE', R .. ':jobs', 0, -1)\n"
    "local n = 0\n"
    "for _, id in ipairs(ids) do\n"
    "  n = n + math.max(redis.call('DEL', R .. ':job:' .. id), redis.call('ZREM', R .. ':jobs', id))\n"
    "  redis.call('ZREM', R .. ':next', id)\n"
    "  local wk = R .. ':waiting:' .. id\n"
    "  for _, tok in ipairs(redis.call('ZRANGE', wk, 0, -1)) do\n"
    "    redis.call('DEL', R .. ':wait:' .. id .. ':' .. tok) end\n"
    "  redis.call('DEL', wk)\n"
    "  redis.call('SREM', R .. ':waitjobs', id)\n"
    "end\n"
    "if n > 0 then redis.call('PUBLISH', R .. ':wakeup', '') end\n"
    "return n\n",

    /* ARGV: ids to pass over (held by this store's batch, known broken).
     * The earliest next run time of a job no scheduler has claimed, or nil. */
    [S_NEXT] = PRELUDE
    "local skip, off = {}, 0\n"
    "for i = 1, #ARGV do skip[ARGV[i]] = true end\n"
    "while true do\n"
    "  local r = redis.call('ZRANGE', R .. ':next', off, off + 63, 'WITHSCORES')\n"
    "  if #r == 0 then return false end\n"
    "  for i = 1, #r, 2 do\n"
    "    if not skip[r[i]] and redis.call('EXISTS', R .. ':claim:' .. r[i]) == 0 then\n"
    "      return redis.call('HGET', R .. ':job:' .. r[i], 'next_run_time') or r[i + 1]\n"
    "    end\n"
    "  end\n"
    "  off = off + 64\n"
    "end\n",

    /* ARGV: now, max, owner, lease_ms, ids to pass over. Claims up to max
     * due jobs no one has claimed, earliest first (ties by id), each with
     * a claim key expiring after the lease. Returns {token, then per job:
     * id, its HGETALL (or the error of a key of another type), its open
     * runs (jobruns HGETALL)}. */
    [S_CLAIM] = PRELUDE
    "local now, max, owner, lease = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]\n"
    "local skip = {}\n"
    "for i = 5, #ARGV do skip[ARGV[i]] = true end\n"
    "local token = redis.call('INCR', R .. ':token')\n"
    "local out, off, got = {token}, 0, 0\n"
    "while got < max do\n"
    "  local ids = redis.call('ZRANGEBYSCORE', R .. ':next', '-inf', now, 'LIMIT', off, 64)\n"
    "  if #ids == 0 then break end\n"
    "  off = off + #ids\n"
    "  for _, id in ipairs(ids) do\n"
    "    if got < max and not skip[id] and\n"
    "       redis.call('SET', R .. ':claim:' .. id, owner .. ' ' .. token, 'PX', lease, 'NX') then\n"
    "      got = got + 1\n"
    "      out[#out + 1] = id\n"
    "      local h = redis.pcall('HGETALL', R .. ':job:' .. id)\n"
    "      if type(h) == 'table' and h.err then h = h.err end\n"
    "      out[#out + 1] = h\n"
    "      out[#out + 1] = redis.call('HGETALL', R .. ':jobruns:' .. id)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n",

    /* ARGV: owner, n, lease_ms, then per job: id, claim token, expected
     * next_run_time ("": none), next, trigger_time ("": none), remove (0 |
     * 1), nruns, and with runs: name flag (0 | 1), name, func, executor,
     * arg, max_instances, max_runtime_ms, delivery, then the times. Every
     * claim must still be this owner's with its token, else nothing is
     * written (and the claims still held are let go). Then each job's runs
     * are recorded (with its claim's token, their starts recorded ahead as
     * a start group's are, and the owner's liveness renewed as S_START
     * does) and its next run time stored, unless the job was changed since
     * the claim (an update wins, as it would after the claim's commit). */
    [S_COMMIT] = PRELUDE
    "local owner, n, lease, i, jobs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), 4, {}\n"
    "for j = 1, n do\n"
    "  local job = {id = ARGV[i], token = ARGV[i + 1], expected = ARGV[i + 2], next = ARGV[i + 3],\n"
    "               trig = ARGV[i + 4], remove = ARGV[i + 5], nruns = tonumber(ARGV[i + 6])}\n"
    "  i = i + 7\n"
    "  if job.nruns > 0 then\n"
    "    job.m = {unpack(ARGV, i, i + 7)}\n"
    "    i = i + 8\n"
    "    job.times = {unpack(ARGV, i, i + job.nruns - 1)}\n"
    "    i = i + job.nruns\n"
    "  end\n"
    "  jobs[j] = job\n"
    "end\n"
    /* The claims read at once (MGET): every one must be this owner's. */
    "local ckeys, held = {}, {}\n"
    "for j, job in ipairs(jobs) do ckeys[j] = R .. ':claim:' .. job.id end\n"
    "for c = 1, #ckeys, 1000 do\n"
    "  local got = redis.call('MGET', unpack(ckeys, c, math.min(c + 999, #ckeys)))\n"
    "  for x = 1, #got do held[c + x - 1] = got[x] end\n"
    "end\n"
    "for j, job in ipairs(jobs) do\n"
    "  if held[j] ~= owner .. ' ' .. job.token then\n"
    "    local mine = {}\n"
    "    for k, o in ipairs(jobs) do\n"
    "      if held[k] == owner .. ' ' .. o.token then mine[#mine + 1] = ckeys[k] end\n"
    "    end\n"
    "    batched('DEL', nil, mine)\n"
    "    return redis.error_reply('the claim of job ' .. job.id .. ' ran out (held past the lease)')\n"
    "  end\n"
    "end\n"
    /* Writes to keys shared by the batch (the owner's runs, the next run
     * times, the claims) are gathered into one call each. */
    "local now, earlier, recorded = now_us(), false, false\n"
    "local owned, nexts, unqueued = {}, {}, {}\n"
    "for _, job in ipairs(jobs) do\n"
    "  local key = R .. ':job:' .. job.id\n"
    "  for _, t in ipairs(job.times or {}) do\n"
    "    local rk, m = R .. ':run:' .. job.id .. ':' .. t, job.m\n"
    "    local f = {'job_id', job.id, 'scheduled_time', t, 'owner', owner, 'token', job.token,\n"
    "               'attempt', 1, 'claimed_at', now, 'started_at', now, 'func', m[3], 'executor', m[4],\n"
    "               'max_instances', m[6], 'max_runtime_ms', m[7], 'delivery', m[8]}\n"
    "    if m[1] == '1' then f[#f + 1] = 'name' f[#f + 1] = m[2] end\n"
    "    if m[5] ~= '' then f[#f + 1] = 'arg' f[#f + 1] = m[5] end\n"
    "    redis.call('HSET', rk, unpack(f))\n"
    "    redis.call('HSET', R .. ':jobruns:' .. job.id, t, job.token)\n"
    "    owned[#owned + 1] = rk\n"
    "    recorded = true\n"
    "  end\n"
    /* A claimed job had a next run time: when it still has the one it had,
     * its hash exists (EXISTS only for a hash that had none). */
    "  local cur = redis.call('HGET', key, 'next_run_time') or ''\n"
    "  if cur == job.expected and (cur ~= '' or redis.call('EXISTS', key) == 1) then\n"
    "    if job.remove == '1' then\n"
    "      redis.call('DEL', key)\n"
    "      redis.call('ZREM', R .. ':jobs', job.id)\n"
    "      unqueued[#unqueued + 1] = job.id\n"
    "    elseif job.next == '' then\n"
    "      redis.call('HDEL', key, 'next_run_time', 'trigger_time')\n"
    "      unqueued[#unqueued + 1] = job.id\n"
    "    elseif job.trig == '' then\n"
    "      redis.call('HSET', key, 'next_run_time', job.next)\n"
    "      redis.call('HDEL', key, 'trigger_time')\n"
    "    else\n"
    "      redis.call('HSET', key, 'next_run_time', job.next, 'trigger_time', job.trig)\n"
    "    end\n"
    "    if job.remove ~= '1' and job.next ~= '' then\n"
    "      nexts[#nexts + 1] = job.next nexts[#nexts + 1] = job.id\n"
    "      if job.expected == '' or tonumber(job.next) < tonumber(job.expected) then earlier = true end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "batched('SADD', R .. ':owned:' .. owner, owned)\n"
    "batched('ZADD', R .. ':next', nexts)\n"
    "batched('ZREM', R .. ':next', unqueued)\n"
    "batched('DEL', nil, ckeys)\n"
    "if recorded then\n"
    "  redis.call('SADD', R .. ':owners', owner)\n"
    "  redis.call('SET', R .. ':alive:' .. owner, now, 'PX', 2 * lease)\n"
    "end\n"
    "if earlier then redis.call('PUBLISH', R .. ':wakeup', '') end\n"
    "return 1\n",

    /* ARGV: me, max, keep (the history retention, as S_CLOSE's), nd, then
     * nd triples (job id, time, token) of runs in doubt. Returns {taken,
     * lost}: taken runs (this scheduler's in doubt first, then those of
     * owners whose liveness key is gone), 12 values each: job_id,
     * scheduled_time, attempt, token, name flag, name, func, executor, arg,
     * max_instances, max_runtime_ms, delivery; lost at-most-once runs that
     * had started (deleted, and ended in the history as failed: no one else
     * will end them), 3 values each: job_id, scheduled_time, owner. */
    [S_ORPHANS] = PRELUDE HISTORY
    "local me, max, keep, nd = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])\n"
    "local taken, lost, count, now = {}, {}, 0, now_us()\n"
    "local function put(f)\n"
    "  count = count + 1\n"
    "  for _, v in ipairs({f.job_id, f.scheduled_time, f.attempt or '1', f.token, f.name and '1' or '0',\n"
    "      f.name or '', f.func or '', f.executor or '', f.arg or '', f.max_instances or '1',\n"
    "      f.max_runtime_ms or '0', f.delivery or 'at_most_once'}) do taken[#taken + 1] = v end\n"
    "end\n"
    "for d = 0, nd - 1 do\n"
    "  local id, t, tok = ARGV[5 + 3 * d], ARGV[6 + 3 * d], ARGV[7 + 3 * d]\n"
    "  local f = fields(R .. ':run:' .. id .. ':' .. t)\n"
    /* A run in doubt never started here; its start may have been recorded
     * ahead by the commit whose reply was lost: taken back. */
    "  if count < max and f.owner == me and f.token == tok then\n"
    "    if f.started_at then redis.call('HDEL', R .. ':run:' .. id .. ':' .. t, 'started_at') end\n"
    "    put(f)\n"
    "  end\n"
    "end\n"
    "for _, owner in ipairs(redis.call('SMEMBERS', R .. ':owners')) do\n"
    "  if count >= max then break end\n"
    "  local set = R .. ':owned:' .. owner\n"
    "  if owner ~= me and redis.call('EXISTS', R .. ':alive:' .. owner) == 0 then\n"
    "    for _, rk in ipairs(redis.call('SMEMBERS', set)) do\n"
    "      if count >= max then break end\n"
    "      local f = fields(rk)\n"
    "      if f.owner ~= owner then\n"
    "        redis.call('SREM', set, rk)\n"
    "      elseif f.delivery ~= 'at_least_once' and f.started_at then\n"
    "        redis.call('DEL', rk)\n"
    "        redis.call('SREM', set, rk)\n"
    "        redis.call('HDEL', R .. ':jobruns:' .. f.job_id, f.scheduled_time)\n"
    "        history_add(keep, 'job_id', f.job_id, 'scheduled_time', f.scheduled_time,\n"
    "          'attempt', f.attempt or '1', 'started_at', f.started_at, 'finished_at', now,\n"
    "          'outcome', 'failed', 'retval', '',\n"
    "          'error', 'lost with scheduler ' .. owner .. ' (at most once): it started there and did not end')\n"
    "        for _, v in ipairs({f.job_id, f.scheduled_time, owner}) do lost[#lost + 1] = v end\n"
    "      else\n"
    "        local tok = tostring(redis.call('INCR', R .. ':token'))\n"
    "        if f.delivery == 'at_least_once' then f.attempt = tostring(tonumber(f.attempt or '1') + 1) end\n"
    "        f.token = tok\n"
    "        redis.call('HSET', rk, 'owner', me, 'token', tok, 'attempt', f.attempt or '1', 'claimed_at', now)\n"
    "        redis.call('HDEL', rk, 'started_at')\n"
    "        redis.call('SMOVE', set, R .. ':owned:' .. me, rk)\n"
    "        redis.call('SADD', R .. ':owners', me)\n"
    "        redis.call('HSET', R .. ':jobruns:' .. f.job_id, f.scheduled_time, tok)\n"
    "        put(f)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('SCARD', set) == 0 then redis.call('SREM', R .. ':owners', owner) end\n"
    "end\n"
    "if #lost > 0 then history_trim(keep) end\n"
    "return {taken, lost}\n",

    /* A start group (common/start_groups.c). ARGV: me, lease_ms, n, then
     * per run: job id, time, token. Marks started each run still this
     * claim's and renews the liveness key (2 x lease, as a heartbeat);
     * returns the indices (from 1) of the runs marked. */
    [S_START] = PRELUDE
    "local me, n, now, out = ARGV[1], tonumber(ARGV[3]), now_us(), {}\n"
    "redis.call('SET', R .. ':alive:' .. me, now, 'PX', 2 * tonumber(ARGV[2]))\n"
    "for k = 0, n - 1 do\n"
    "  local a = 4 + 3 * k\n"
    "  local rk = R .. ':run:' .. ARGV[a] .. ':' .. ARGV[a + 1]\n"
    "  local f = redis.call('HMGET', rk, 'owner', 'token')\n"
    "  if f[1] == me and f[2] == ARGV[a + 2] then\n"
    "    redis.call('HSET', rk, 'started_at', now)\n"
    "    out[#out + 1] = k + 1\n"
    "  end\n"
    "end\n"
    "return out\n",

    /* Starts recorded ahead and not used: taken back. ARGV as S_START's. */
    [S_UNSTART] = PRELUDE
    "local me, n, out = ARGV[1], tonumber(ARGV[3]), {}\n"
    "for k = 0, n - 1 do\n"
    "  local a = 4 + 3 * k\n"
    "  local rk = R .. ':run:' .. ARGV[a] .. ':' .. ARGV[a + 1]\n"
    "  local f = redis.call('HMGET', rk, 'owner', 'token')\n"
    "  if f[1] == me and f[2] == ARGV[a + 2] then\n"
    "    redis.call('HDEL', rk, 'started_at')\n"
    "    out[#out + 1] = k + 1\n"
    "  end\n"
    "end\n"
    "return out\n",

    /* ARGV: me, retention_ms (0: no history; -1: all), n, then per run:
     * job id, time, token (0: not this store's claim), attempt, started_at,
     * finished_at, outcome, retval, error. Returns per run: 1 closed, 0 no
     * such record, -1 the record is another claim's (this one was lost).
     * Only a run closed here goes into the history, fenced like the record:
     * the end of a run taken over belongs to its new owner, and a run never
     * recorded is claimed and ended again later (each run's end is in the
     * history once). A slot freed for a job with runs waiting wakes every
     * scheduler. */
    [S_CLOSE] = PRELUDE HISTORY
    "local me, keep, n, out, wake = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), {}, false\n"
    "local anywait = redis.call('EXISTS', R .. ':waitjobs') == 1\n"
    "local closed, done = {}, {}\n"
    "for k = 0, n - 1 do\n"
    "  local a = 4 + 9 * k\n"
    "  local id, t, tok = ARGV[a], ARGV[a + 1], ARGV[a + 2]\n"
    "  local rk = R .. ':run:' .. id .. ':' .. t\n"
    /* A record closed earlier in this call is gone, as if deleted. */
    "  local f = done[rk] and {} or redis.call('HMGET', rk, 'owner', 'token')\n"
    "  if tok == '0' then out[k + 1] = 0\n"
    "  elseif f[1] == me and f[2] == tok then\n"
    "    closed[#closed + 1] = rk\n"
    "    done[rk] = true\n"
    "    redis.call('HDEL', R .. ':jobruns:' .. id, t)\n"
    "    if anywait and redis.call('SISMEMBER', R .. ':waitjobs', id) == 1 then wake = true end\n"
    "    out[k + 1] = 1\n"
    "    history_add(keep, 'job_id', id, 'scheduled_time', t, 'attempt', ARGV[a + 3],\n"
    "      'started_at', ARGV[a + 4], 'finished_at', ARGV[a + 5], 'outcome', ARGV[a + 6],\n"
    "      'retval', ARGV[a + 7], 'error', ARGV[a + 8])\n"
    "  elseif f[1] then out[k + 1] = -1\n"
    "  else out[k + 1] = 0 end\n"
    "end\n"
    /* The closed records and their places in the owner's set: one call
     * each for the whole batch. */
    "batched('DEL', nil, closed)\n"
    "batched('SREM', R .. ':owned:' .. me, closed)\n"
    "history_trim(keep)\n"
    "if wake then redis.call('PUBLISH', R .. ':wakeup', '') end\n"
    "return out\n",

    /* ARGV: id, name flag, name, host, pid, lease_ms. The registry entry,
     * the liveness key (2 x lease), and the pruning of schedulers dead for
     * 10 x their lease that hold no runs. Returns the server's time at its
     * end (the closest to the reply, for the clock estimate). */
    [S_BEAT] = PRELUDE
    "local id, lease, now = ARGV[1], tonumber(ARGV[6]), now_us()\n"
    "local key = R .. ':scheduler:' .. id\n"
    "if redis.call('EXISTS', key) == 0 then redis.call('HSET', key, 'started_at', now) end\n"
    "redis.call('HSET', key, 'host', ARGV[4], 'pid', ARGV[5], 'lease_ms', ARGV[6], 'heartbeat_at', now)\n"
    "if ARGV[2] == '1' then redis.call('HSET', key, 'name', ARGV[3]) end\n"
    "redis.call('SADD', R .. ':schedulers', id)\n"
    "redis.call('SET', R .. ':alive:' .. id, now, 'PX', 2 * lease)\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', R .. ':schedulers')) do\n"
    "  if sid ~= id and redis.call('EXISTS', R .. ':alive:' .. sid) == 0 then\n"
    "    local f = redis.call('HMGET', R .. ':scheduler:' .. sid, 'heartbeat_at', 'lease_ms')\n"
    "    local old = not f[1] or tonumber(now) - tonumber(f[1]) > 10000 * tonumber(f[2] or '0')\n"
    "    if old and redis.call('SCARD', R .. ':owned:' .. sid) == 0 then\n"
    "      redis.call('DEL', R .. ':scheduler:' .. sid)\n"
    "      redis.call('SREM', R .. ':schedulers', sid)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return now_us()\n",

    /* The registry, 10 values per scheduler: id, name (nil: none), host,
     * pid, started_at, heartbeat_at, lease_ms, alive (0 | 1), runs claimed
     * and not started, runs started. */
    [S_LIST] = PRELUDE
    "local out = {}\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', R .. ':schedulers')) do\n"
    "  local f = fields(R .. ':scheduler:' .. sid)\n"
    "  local claimed, running = 0, 0\n"
    "  for _, rk in ipairs(redis.call('SMEMBERS', R .. ':owned:' .. sid)) do\n"
    "    if redis.call('HEXISTS', rk, 'started_at') == 1 then running = running + 1\n"
    "    else claimed = claimed + 1 end\n"
    "  end\n"
    "  for _, v in ipairs({sid, f.name or false, f.host or '', f.pid or '0', f.started_at or '0',\n"
    "      f.heartbeat_at or '0', f.lease_ms or '0', redis.call('EXISTS', R .. ':alive:' .. sid),\n"
    "      claimed, running}) do out[#out + 1] = v end\n"
    "end\n"
    "return out\n",

    /* runs_wait. ARGV: me, id, policy, on_demand (0 | 1), limit (buffer_all),
     * grace ("": unlimited), keep (as S_CLOSE's), m (8 values), n, times.
     * Returns {'ok', waiting, replaced ("": none), stop time ("": none),
     * stop here (0 | 1)}, {'full'} (buffer_all's limit) or {'taken'} (a run
     * of the job at one of these times is recorded). */
    [S_WAIT] = PRELUDE HISTORY WAITING
    "local n = tonumber(ARGV[16])\n"
    "return wait_run(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6],\n"
    "  tonumber(ARGV[7]), {unpack(ARGV, 8, 15)}, {unpack(ARGV, 17, 16 + n)})\n",

    /* runs_add. ARGV: me, id, waits (0 | 1), policy, limit, grace, keep,
     * max instances, m (8 values), n, times. With a free slot the run is
     * recorded as this scheduler's: {'open', token}; else it waits as
     * S_WAIT's (when waits) or {'busy', instances}. {'missing'}: no such
     * job; {'claimed'}: a scheduler holds the job's claim (its batch may
     * add runs): try again. */
    [S_ADD] = PRELUDE HISTORY WAITING
    "local me, id, n = ARGV[1], ARGV[2], tonumber(ARGV[17])\n"
    "local m, times = {unpack(ARGV, 9, 16)}, {unpack(ARGV, 18, 17 + n)}\n"
    "if redis.call('EXISTS', R .. ':job:' .. id) == 0 then return {'missing'} end\n"
    "if redis.call('EXISTS', R .. ':claim:' .. id) == 1 then return {'claimed'} end\n"
    "if taken(id, times) then return {'taken'} end\n"
    "local busy = instances(id)\n"
    "if busy < tonumber(ARGV[8]) then\n"
    "  local tok = tostring(redis.call('INCR', R .. ':token'))\n"
    "  record_runs(id, times, tok, m, me, now_us())\n"
    "  return {'open', tok}\n"
    "end\n"
    "if ARGV[3] ~= '1' then return {'busy', tostring(busy)} end\n"
    "local r = wait_run(me, id, ARGV[4], '1', tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7]), m, times)\n"
    /* Its slot may free at once: every scheduler looks (a batch that made
     * a run wait does so after its commit, once its claims are gone). */
    "if r[1] == 'ok' then redis.call('PUBLISH', R .. ':wakeup', '') end\n"
    "return r\n",

    /* claim_waiting. ARGV: me, max. Waiting runs of jobs with a free slot
     * (and no claim held: a batch could add runs), oldest first, up to max,
     * become this scheduler's runs. Per run: id, token, name flag, name,
     * func, executor, arg, max_instances, max_runtime_ms, delivery, grace,
     * on_demand, overlap, n, then its n times. */
    [S_TAKE] = PRELUDE HISTORY WAITING
    "local me, max, now, out, count = ARGV[1], tonumber(ARGV[2]), now_us(), {}, 0\n"
    "for _, id in ipairs(redis.call('SMEMBERS', R .. ':waitjobs')) do\n"
    "  if count >= max then break end\n"
    "  local wk = R .. ':waiting:' .. id\n"
    "  if redis.call('EXISTS', R .. ':claim:' .. id) == 0 then\n"
    "    local busy = instances(id)\n"
    "    for _, wtok in ipairs(redis.call('ZRANGE', wk, 0, -1)) do\n"
    "      if count >= max then break end\n"
    "      local hk = R .. ':wait:' .. id .. ':' .. wtok\n"
    "      local f = fields(hk)\n"
    "      if busy >= tonumber(f.max_instances or '1') then break end\n"
    "      local times = {}\n"
    "      for t in string.gmatch(f.times or '', '[^,]+') do times[#times + 1] = t end\n"
    "      local tok = tostring(redis.call('INCR', R .. ':token'))\n"
    "      local m = {f.name_flag or '0', f.name or '', f.func or '', f.executor or '', f.arg or '',\n"
    "        f.max_instances or '1', f.max_runtime_ms or '0', f.delivery or 'at_most_once'}\n"
    "      record_runs(id, times, tok, m, me, now)\n"
    "      redis.call('DEL', hk)\n"
    "      redis.call('ZREM', wk, wtok)\n"
    "      busy, count = busy + 1, count + 1\n"
    "      for _, v in ipairs({id, tok, m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8], f.grace or '',\n"
    "          f.on_demand or '0', f.overlap or '', tostring(#times)}) do out[#out + 1] = v end\n"
    "      for _, t in ipairs(times) do out[#out + 1] = t end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('EXISTS', wk) == 0 then redis.call('SREM', R .. ':waitjobs', id) end\n"
    "end\n"
    "return out\n",

    /* The stop requests of this scheduler's (ARGV[1]) runs, read once:
     * job id, scheduled time, request (cancel | terminate) each. */
    [S_STOPS] = PRELUDE
    "local key, out = R .. ':stops:' .. ARGV[1], {}\n"
    "for _, rk in ipairs(redis.call('SMEMBERS', key)) do\n"
    "  local f = redis.call('HMGET', rk, 'job_id', 'scheduled_time', 'stop_request', 'owner')\n"
    "  if f[1] and f[3] and f[4] == ARGV[1] then\n"
    "    out[#out + 1] = f[1] out[#out + 1] = f[2] out[#out + 1] = f[3] end\n"
    "end\n"
    "redis.call('DEL', key)\n"
    "return out\n",
};

const char *apsched__redis_script_text(redis_script s) { return texts[s]; }
