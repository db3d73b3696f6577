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
 * hash as a Lua table, a claim's text judged (claim_holder) and judged
 * once per text (claim_of: a claim script writes one text for all its
 * claims, and Lua interns strings: a table lookup by address), a command applied to a list (one call per 1000
 * elements: a call from a script costs 1-2 us besides its own work, so the
 * writes of a batch to one key are gathered into one), and the three
 * structures every run passes through:
 * - claims: {P}:claims, job id -> "OWNER TOKEN EXPIRY" (EXPIRY in us of
 *   the server's clock), with a '+' appended once the job was changed
 *   while claimed (mark_changed: S_PUT, S_REMOVE), so that the commit
 *   keeps the change without reading the job back; a claim past its
 *   expiry is no claim;
 * - run records: {P}:runs:OWNER, "T:ID" -> the run as JSON (token,
 *   attempt, claimed_at, started_at, stop_request and the job as it was
 *   claimed; members at their default are left out: attempt 1, executor
 *   "default", max_instances 1, max_runtime_ms 0, delivery at_most_once),
 *   one hash per scheduler, so a batch's runs are one write;
 * - open runs: {P}:open, job id -> "T:TOKEN:OWNER,..." (its runs in
 *   progress: their distinct tokens are its instances, across schedulers).
 *   Every script that writes or deletes a run record does the same to its
 *   open entry: the record of OWNER for (ID, T) holds token TOKEN exactly
 *   when ID's entry T:TOKEN:OWNER exists (S_CLOSE fences by the entry).
 * Each of these hashes keeps the field "" for good, its value TABLE: a
 * value over 64 bytes (hash-max-listpack-value) makes Redis keep the hash
 * as a hash table. Without it, a hash of up to 512 fields (Redis 7's
 * hash-max-listpack-entries) is a listpack that every HSET, HMGET and
 * HDEL scans from the start: a batch's 256 claims, runs and open entries
 * cost the server O(256^2) compares each, most of a run's time. */
#define PRELUDE                                                                                \
  "local R = KEYS[1]\n"                                                                        \
  "local TABLE = 'libapsched: this field keeps the hash a hash table (README, The layout)'\n"  \
  "local function now_us() local t = redis.call('TIME')\n"                                     \
  "  return t[1] .. string.format('%06d', tonumber(t[2])) end\n"                               \
  "local function fields(key) local h = redis.call('HGETALL', key) local f = {}\n"             \
  "  for i = 1, #h, 2 do f[h[i]] = h[i + 1] end return f end\n"                               \
  "local function batched(cmd, key, list) for i = 1, #list, 1000 do\n"                          \
  "  local j = math.min(i + 999, #list)\n"                                                      \
  "  if key then redis.call(cmd, key, unpack(list, i, j)) else redis.call(cmd, unpack(list, i, j)) end\n" \
  "end end\n"                                                                                   \
  "local function hmget(key, list) local out = {}\n"                                             \
  "  for i = 1, #list, 1000 do\n"                                                               \
  "    local got = redis.call('HMGET', key, unpack(list, i, math.min(i + 999, #list)))\n"       \
  "    for x = 1, #got do out[i + x - 1] = got[x] end end\n"                                    \
  "  return out end\n"                                                                          \
  "local function claim_holder(v, now) if not v then return nil end\n"                          \
  "  local owner, tok, exp, changed = string.match(v, '^(.*) (%d+) (%d+)(%+?)$')\n"            \
  "  if owner and tonumber(exp) > tonumber(now) then return owner, tok, changed end return nil end\n" \
  "local claim_texts = {}\n"                                                                    \
  "local function claim_of(v, now) if not v then return false end\n"                            \
  "  local c = claim_texts[v]\n"                                                                \
  "  if c == nil then local o, t, m = claim_holder(v, now)\n"                                   \
  "    c = o and {o, t, m} or false claim_texts[v] = c end\n"                                   \
  "  return c end\n"                                                                            \
  "local function mark_changed(ids)\n"                                                          \
  "  if redis.call('HLEN', R .. ':claims') <= 1 then return end -- (no claim: only TABLE, or none)\n" \
  "  local cl, now, set = hmget(R .. ':claims', ids), now_us(), {}\n"                          \
  "  for k, id in ipairs(ids) do local o, _, c = claim_holder(cl[k], now)\n"                    \
  "    if o and c == '' then set[#set + 1] = id set[#set + 1] = cl[k] .. '+' end end\n"         \
  "  batched('HSET', R .. ':claims', set) end\n"                                               \
  "local function earlier_time(a, b)\n"                                                         \
  "  if #a == #b and a:byte(1) ~= 45 and b:byte(1) ~= 45 then return a < b end\n"             \
  "  return tonumber(a) < tonumber(b) end\n"                                                   \
  "local function run_field(id, t) return t .. ':' .. id end\n"                                 \
  "local function run_decode(v) if not v then return nil end\n"                                 \
  "  local ok, f = pcall(cjson.decode, v)\n"                                                    \
  "  if ok and type(f) == 'table' then return f end return {} end\n"                            \
  "local function holds_runs(owner) local rk = R .. ':runs:' .. owner\n"                     \
  "  return redis.call('HLEN', rk) > redis.call('HEXISTS', rk, '') end\n"                      \
  "local function run_get(owner, id, t)\n"                                                      \
  "  return run_decode(redis.call('HGET', R .. ':runs:' .. owner, run_field(id, t))) end\n"     \
  "local function run_put(owner, id, t, f)\n"                                                   \
  "  redis.call('HSET', R .. ':runs:' .. owner, run_field(id, t), cjson.encode(f)) end\n"       \
  "local function run_new(tok, attempt, now, m)\n"                                              \
  "  local f = {token = tok, claimed_at = now, func = m[3]}\n"                                 \
  "  if attempt ~= '1' then f.attempt = attempt end\n"                                         \
  "  if m[4] ~= 'default' then f.executor = m[4] end\n"                                        \
  "  if m[6] ~= '1' then f.max_instances = m[6] end\n"                                         \
  "  if m[7] ~= '0' then f.max_runtime_ms = m[7] end\n"                                        \
  "  if m[8] ~= 'at_most_once' then f.delivery = m[8] end\n"                                   \
  "  if m[1] == '1' then f.name = m[2] end\n"                                                   \
  "  if m[5] ~= '' then f.arg = m[5] end\n"                                                     \
  "  return f end\n"                                                                            \
  "local function open_parse(v) local l = {}\n"                                                 \
  "  for t, tok, o in string.gmatch(v or '', '(%d+):(%d+):([^,]*)') do l[#l + 1] = {t, tok, o} end\n" \
  "  return l end\n"                                                                            \
  "local function open_text(l) local s = {}\n"                                                  \
  "  for i, e in ipairs(l) do s[i] = e[1] .. ':' .. e[2] .. ':' .. e[3] end\n"                 \
  "  return table.concat(s, ',') end\n"                                                         \
  "local function open_get(id) return open_parse(redis.call('HGET', R .. ':open', id)) end\n"   \
  "local function open_store(id, l)\n"                                                          \
  "  if #l == 0 then redis.call('HDEL', R .. ':open', id)\n"                                    \
  "  else redis.call('HSET', R .. ':open', id, open_text(l)) end end\n"                         \
  "local function open_drop(id, t) local l, k = open_get(id), {}\n"                             \
  "  for _, e in ipairs(l) do if e[1] ~= t then k[#k + 1] = e end end\n"                        \
  "  open_store(id, k) end\n"

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

/* S_START and S_UNSTART: sets (now) or clears (nil) started_at of each of
 * the n runs in ARGV (from 4: job id, time, token) that is still this
 * owner's with that token; returns their indices (from 1). */
#define STARTS                                                                                 \
  "local function mark_started(me, n, now)\n"                                                  \
  "  local rk, names, out, puts = R .. ':runs:' .. me, {}, {}, {}\n"                           \
  "  for k = 0, n - 1 do names[k + 1] = run_field(ARGV[4 + 3 * k], ARGV[5 + 3 * k]) end\n"     \
  "  local cur = hmget(rk, names)\n"                                                            \
  "  for k = 0, n - 1 do\n"                                                                    \
  "    local f = run_decode(cur[k + 1])\n"                                                     \
  "    if f and f.token == ARGV[6 + 3 * k] then\n"                                             \
  "      f.started_at = now\n"                                                                 \
  "      puts[#puts + 1] = names[k + 1] puts[#puts + 1] = cjson.encode(f)\n"                   \
  "      out[#out + 1] = k + 1\n"                                                              \
  "    end\n"                                                                                  \
  "  end\n"                                                                                    \
  "  batched('HSET', rk, puts)\n"                                                              \
  "  return out end\n"

/* Runs that wait (S_WAIT, S_ADD, S_TAKE): m is a run's job as the commit
 * records it (name flag, name, func, executor, arg, max_instances,
 * max_runtime_ms, delivery). record_runs writes claimed runs as S_COMMIT
 * does; instances counts a job's runs in progress (distinct tokens);
 * wait_run keeps a run waiting under its overlap policy (see waiting.c). */
#define WAITING                                                                                \
  "local function record_runs(id, times, tok, m, owner, now)\n"                                 \
  "  local l = open_get(id)\n"                                                                  \
  "  for _, t in ipairs(times) do\n"                                                            \
  "    run_put(owner, id, t, run_new(tok, '1', now, m))\n"                                 \
  "    l[#l + 1] = {t, tok, owner}\n"                                                           \
  "  end\n"                                                                                     \
  "  open_store(id, l)\n"                                                                       \
  "  redis.call('SADD', R .. ':owners', owner)\n"                                               \
  "end\n"                                                                                       \
  "local function instances(id) local seen, n = {}, 0\n"                                        \
  "  for _, e in ipairs(open_get(id)) do\n"                                                     \
  "    if not seen[e[2]] then seen[e[2]] = true n = n + 1 end end\n"                             \
  "  return n end\n"                                                                            \
  "local function taken(id, times) local l = open_get(id)\n"                                    \
  "  for _, t in ipairs(times) do\n"                                                            \
  "    for _, e in ipairs(l) do if e[1] == t then return true end end end\n"                    \
  "  return false end\n"                                                                        \
  "local function ask_stop(me, id, policy)\n"                                                   \
  "  local l, best, btok = open_get(id), nil, nil\n"                                            \
  "  for _, e in ipairs(l) do\n"                                                                \
  "    local f = run_get(e[3], id, e[1])\n"                                                     \
  "    if f and not f.stop_request and (best == nil or tonumber(e[1]) < tonumber(best)) then\n" \
  "      best, btok = e[1], e[2] end\n"                                                         \
  "  end\n"                                                                                     \
  "  if not best then return '', 0 end\n"                                                       \
  "  local req, owner = policy == 'terminate_other' and 'terminate' or 'cancel', nil\n"        \
  "  for _, e in ipairs(l) do if e[2] == btok then\n"                                          \
  "    local f = run_get(e[3], id, e[1])\n"                                                     \
  "    if f then f.stop_request = req run_put(e[3], id, e[1], f) owner = e[3] end end end\n"    \
  "  if owner == me then return best, 1 end\n"                                                  \
  "  if owner then\n"                                                                           \
  "    redis.call('SADD', R .. ':stops:' .. owner, run_field(id, best))\n"                      \
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
    "local ids = {}\n"
    "for j, job in ipairs(jobs) do ids[j] = job.id end\n"
    "mark_changed(ids)\n"
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
    "mark_changed(ids)\n"
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
    "local skip, off, now = {}, 0, now_us()\n"
    "for i = 1, #ARGV do skip[ARGV[i]] = true end\n"
    "while true do\n"
    "  local r = redis.call('ZRANGE', R .. ':next', off, off + 63, 'WITHSCORES')\n"
    "  if #r == 0 then return false end\n"
    "  local ids = {}\n"
    "  for i = 1, #r, 2 do ids[#ids + 1] = r[i] end\n"
    "  local cl = redis.call('HMGET', R .. ':claims', unpack(ids))\n"
    "  for i = 1, #r, 2 do\n"
    "    if not skip[r[i]] and not claim_holder(cl[(i + 1) / 2], now) then\n"
    "      return redis.call('HGET', R .. ':job:' .. r[i], 'next_run_time') or r[i + 1]\n"
    "    end\n"
    "  end\n"
    "  off = off + 64\n"
    "end\n",

    /* ARGV: now, max, owner, lease_ms, ids to pass over. Claims up to max
     * due jobs no one has claimed, earliest first (ties by id), each with
     * a claim that expires after the lease (one HSET for the batch).
     * Returns {token, then per job: id, its open runs as time, token
     * pairs (nil: none), its score}; the client reads the claimed hashes itself
     * (store.c, read_claimed). */
    [S_CLAIM] = PRELUDE
    "local now, max, owner, lease = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]\n"
    "local skip = {}\n"
    "for i = 5, #ARGV do skip[ARGV[i]] = true end\n"
    "local token = redis.call('INCR', R .. ':token')\n"
    "local clock = now_us()\n"
    "local held = owner .. ' ' .. token .. ' ' .. string.format('%d', tonumber(clock) + 1000 * tonumber(lease))\n"
    "local out, off, got, claims = {token}, 0, 0, {}\n"
    "while got < max do\n"
    /* Ids first, the scores of the jobs claimed after: the due jobs other
     * schedulers hold come first and are passed over, and Redis formats
     * every score it returns with %.17g (4 k instructions each). */
    "  local ids = redis.call('ZRANGEBYSCORE', R .. ':next', '-inf', now, 'LIMIT', off, 256)\n"
    "  if #ids == 0 then break end\n"
    "  off = off + #ids\n"
    "  local cl, picked = redis.call('HMGET', R .. ':claims', unpack(ids)), {}\n"
    "  for k, id in ipairs(ids) do\n"
    "    if got < max and not skip[id] and not claim_of(cl[k], clock) then\n"
    "      got = got + 1\n"
    "      picked[#picked + 1] = id\n"
    "    end\n"
    "  end\n"
    "  if #picked > 0 then\n"
    "    local op = redis.call('HMGET', R .. ':open', unpack(picked))\n"
    "    local scores = redis.call('ZMSCORE', R .. ':next', unpack(picked))\n"
    "    for k, id in ipairs(picked) do\n"
    "      claims[#claims + 1] = id claims[#claims + 1] = held\n"
    "      out[#out + 1] = id\n"
    "      local runs = false\n" /* (none: nil, not an empty table per job) */
    "      if op[k] then runs = {}\n"
    "        for _, e in ipairs(open_parse(op[k])) do runs[#runs + 1] = e[1] runs[#runs + 1] = e[2] end\n"
    "      end\n"
    "      out[#out + 1] = runs\n"
    "      out[#out + 1] = scores[k]\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #claims > 0 then\n"
    "  claims[#claims + 1] = '' claims[#claims + 1] = TABLE\n"
    "  batched('HSET', R .. ':claims', claims)\n"
    "end\n"
    "return out\n",

    /* ARGV: owner, n, lease_ms, then per job: id, claim token, expected
     * next_run_time ("": none), next ("": none), opts (nruns, then 'r':
     * remove the job, 'f': its hash holds next_run_time or trigger_time,
     * 't' and the trigger time when it is not next: runs.c), and with
     * runs: the job's part of their JSON (run_json.c:
     * from the comma after the run's own members to the closing brace),
     * then the times. Every
     * claim must still be this owner's with its token, else nothing is
     * written (and the claims still held are let go). Then each job's runs
     * are recorded (with its claim's token, their starts recorded ahead as
     * a start group's are, and the owner's liveness renewed as S_START
     * does) and its next run time stored, unless the job was changed since
     * the claim (an update wins, as it would after the claim's commit). */
    [S_COMMIT] = PRELUDE
    /* Each job's arguments are read from ARGV where they stand (at[j]):
     * a table per job cost the server more than the writes it led to. */
    "local A = ARGV\n"
    "local owner, n, lease = A[1], tonumber(A[2]), tonumber(A[3])\n"
    /* opts is the run count alone but for what is seldom there (rare[j]) */
    "local at, ids, counts, rare, withruns, i = {}, {}, {}, {}, {}, 4\n"
    "for j = 1, n do\n"
    "  local o = A[i + 4]\n"
    "  local nruns = tonumber(o)\n"
    "  if not nruns then local n_ n_, rare[j] = string.match(o, '^(%d+)(.*)$') nruns = tonumber(n_) end\n"
    "  at[j], ids[j], counts[j] = i, A[i], nruns\n"
    "  if nruns > 0 then withruns[#withruns + 1] = A[i] i = i + 6 + nruns else i = i + 5 end\n"
    "end\n"
    /* The claims read at once: every one must be this owner's. */
    "local now = now_us()\n"
    "local cl = hmget(R .. ':claims', ids)\n"
    "local function held(v, tok) local c = claim_of(v, now)\n"
    "  return c and c[1] == owner and c[2] == tok end\n"
    "for j = 1, n do\n"
    "  if not held(cl[j], A[at[j] + 1]) then\n"
    "    local mine = {}\n"
    "    for k = 1, n do\n"
    "      if held(cl[k], A[at[k] + 1]) then mine[#mine + 1] = ids[k] end\n"
    "    end\n"
    "    batched('HDEL', R .. ':claims', mine)\n"
    "    return redis.error_reply('the claim of job ' .. ids[j] .. ' ran out (held past the lease)')\n"
    "  end\n"
    "end\n"
    /* Writes to keys shared by the batch (the owner's runs, the open runs,
     * the next run times, the claims) are gathered into one call each. */
    "local earlier, recorded = false, false\n"
    "local runs, opens, nexts, unqueued = {}, {}, {}, {}\n"
    "local op = hmget(R .. ':open', withruns)\n"
    "local w, heads, tails = 0, {}, {}\n"
    "for j = 1, n do\n"
    "  local p = at[j]\n"
    "  local id, tok, expected, nx = A[p], A[p + 1], A[p + 2], A[p + 3]\n"
    "  local nruns, remove, fields, trig = counts[j], '', '', nx\n"
    "  if rare[j] then local t_\n"
    "    remove, fields, t_, trig = string.match(rare[j], '^(r?)(f?)(t?)(.*)$')\n"
    "    if t_ == '' then trig = nx end\n"
    "  end\n"
    "  if nruns > 0 then\n"
    "    w = w + 1\n"
    "    local l, tail = op[w] or '', A[p + 5]\n"
    /* What a claim's runs share, made once per claim token: the start of
     * their JSON and the end of their open entries. */
    "    local head, sfx = heads[tok], tails[tok]\n"
    "    if not head then\n"
    "      head = '{\"token\":\"' .. tok .. '\",\"claimed_at\":\"' .. now ..\n"
    "        '\",\"started_at\":\"' .. now .. '\"'\n"
    "      sfx = ':' .. tok .. ':' .. owner\n"
    "      heads[tok], tails[tok] = head, sfx\n"
    "    end\n"
    "    for x = p + 6, p + 5 + nruns do\n"
    "      local t = A[x]\n"
    "      runs[#runs + 1] = t .. ':' .. id\n"
    "      runs[#runs + 1] = head .. tail\n"
    "      l = l == '' and t .. sfx or l .. ',' .. t .. sfx\n"
    "    end\n"
    "    opens[#opens + 1] = id opens[#opens + 1] = l\n"
    "    recorded = true\n"
    "  end\n"
    /* A job changed since its claim ('+', S_PUT, S_REMOVE) keeps what
     * the change wrote. */
    "  if claim_of(cl[j], now)[3] ~= '+' then\n"
    "    if remove == 'r' then\n"
    "      redis.call('DEL', R .. ':job:' .. id)\n"
    "      redis.call('ZREM', R .. ':jobs', id)\n"
    "      unqueued[#unqueued + 1] = id\n"
    "    elseif nx == '' then\n"
    "      if fields == 'f' then redis.call('HDEL', R .. ':job:' .. id, 'next_run_time', 'trigger_time') end\n"
    "      unqueued[#unqueued + 1] = id\n"
    /* The score is the next run time; the hash only holds what it cannot
     * say (store/redis codec: apsched__redis_time_kept). */
    "    else\n"
    "      local big = #nx > 15 and math.abs(tonumber(nx)) > 9007199254740992\n"
    "      local jitter = trig ~= '' and trig ~= nx\n"
    "      if big or jitter or fields == 'f' then\n"
    "        local key, set, del = R .. ':job:' .. id, {}, {}\n"
    "        if big then set[#set + 1] = 'next_run_time' set[#set + 1] = nx\n"
    "        else del[#del + 1] = 'next_run_time' end\n"
    "        if jitter then set[#set + 1] = 'trigger_time' set[#set + 1] = trig\n"
    "        else del[#del + 1] = 'trigger_time' end\n"
    "        if #set > 0 then redis.call('HSET', key, unpack(set)) end\n"
    "        if #del > 0 and fields == 'f' then redis.call('HDEL', key, unpack(del)) end\n"
    "      end\n"
    "      nexts[#nexts + 1] = nx nexts[#nexts + 1] = id\n"
    "      if expected == '' or earlier_time(nx, expected) then earlier = true end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if recorded then\n"
    "  runs[#runs + 1] = '' runs[#runs + 1] = TABLE\n"
    "  opens[#opens + 1] = '' opens[#opens + 1] = TABLE\n"
    "  batched('HSET', R .. ':runs:' .. owner, runs)\n"
    "  batched('HSET', R .. ':open', opens)\n"
    "end\n"
    "batched('ZADD', R .. ':next', nexts)\n"
    "batched('ZREM', R .. ':next', unqueued)\n"
    "batched('HDEL', R .. ':claims', ids)\n"
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
    "      f.name or '', f.func or '', f.executor or 'default', f.arg or '', f.max_instances or '1',\n"
    "      f.max_runtime_ms or '0', f.delivery or 'at_most_once'}) do taken[#taken + 1] = v end\n"
    "end\n"
    "for d = 0, nd - 1 do\n"
    "  local id, t, tok = ARGV[5 + 3 * d], ARGV[6 + 3 * d], ARGV[7 + 3 * d]\n"
    "  local f = run_get(me, id, t)\n"
    /* A run in doubt never started here; its start may have been recorded
     * ahead by the commit whose reply was lost: taken back. */
    "  if count < max and f and f.token == tok then\n"
    "    if f.started_at then f.started_at = nil run_put(me, id, t, f) end\n"
    "    f.job_id, f.scheduled_time = id, t\n"
    "    put(f)\n"
    "  end\n"
    "end\n"
    "for _, owner in ipairs(redis.call('SMEMBERS', R .. ':owners')) do\n"
    "  if count >= max then break end\n"
    "  local rk = R .. ':runs:' .. owner\n"
    "  if owner ~= me and redis.call('EXISTS', R .. ':alive:' .. owner) == 0 then\n"
    "    local h = redis.call('HGETALL', rk)\n"
    "    for i = 1, #h, 2 do\n"
    "      if count >= max then break end\n"
    "      local t, id = string.match(h[i], '^(%d+):(.*)$')\n"
    "      local f = run_decode(h[i + 1])\n"
    "      if t then redis.call('HDEL', rk, h[i]) end\n"
    "      if not t then -- (not a run field: left alone)\n"
    "      elseif f.delivery ~= 'at_least_once' and f.started_at then\n"
    "        open_drop(id, t)\n"
    "        history_add(keep, 'job_id', id, 'scheduled_time', t,\n"
    "          'attempt', f.attempt or '1', 'started_at', f.started_at, 'finished_at', now,\n"
    "          'outcome', 'failed', 'retval', '',\n"
    "          'error', 'lost with scheduler ' .. owner .. ' (at most once): it started there and did not end')\n"
    "        for _, v in ipairs({id, t, owner}) do lost[#lost + 1] = v end\n"
    "      else\n"
    "        local tok = tostring(redis.call('INCR', R .. ':token'))\n"
    "        if f.delivery == 'at_least_once' then f.attempt = tostring(tonumber(f.attempt or '1') + 1) end\n"
    "        f.token, f.claimed_at, f.started_at, f.attempt = tok, now, nil, f.attempt or '1'\n"
    "        run_put(me, id, t, f)\n"
    "        redis.call('SADD', R .. ':owners', me)\n"
    "        local l = open_get(id)\n"
    "        for _, e in ipairs(l) do if e[1] == t then e[2], e[3] = tok, me end end\n"
    "        open_store(id, l)\n"
    "        f.job_id, f.scheduled_time = id, t\n"
    "        put(f)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if not holds_runs(owner) then\n"
    "    redis.call('DEL', rk)\n"
    "    redis.call('SREM', R .. ':owners', owner)\n"
    "  end\n"
    "end\n"
    "if #lost > 0 then history_trim(keep) end\n"
    "return {taken, lost}\n",

    /* A start group (common/start_groups.c). ARGV: me, lease_ms, n, then
     * per run: job id, time, token. Marks started each run still this
     * claim's and renews the liveness key (2 x lease, as a heartbeat);
     * returns the indices (from 1) of the runs marked. */
    [S_START] = PRELUDE STARTS
    "local me, now = ARGV[1], now_us()\n"
    "redis.call('SET', R .. ':alive:' .. me, now, 'PX', 2 * tonumber(ARGV[2]))\n"
    "return mark_started(me, tonumber(ARGV[3]), now)\n",

    /* Starts recorded ahead and not used: taken back. ARGV as S_START's. */
    [S_UNSTART] = PRELUDE STARTS
    "return mark_started(ARGV[1], tonumber(ARGV[3]), nil)\n",

    /* ARGV: me, retention_ms (0: no history; -1: all), n, then per run:
     * job id, time, token (0: not this store's claim), and with a history
     * attempt, started_at, finished_at, outcome, retval, error. Returns per run: 1 closed, 0 no
     * such record, -1 the record is another claim's (this one was lost).
     * Only a run closed here goes into the history, fenced like the record:
     * the end of a run taken over belongs to its new owner, and a run never
     * recorded is claimed and ended again later (each run's end is in the
     * history once). A slot freed for a job with runs waiting wakes every
     * scheduler. */
    [S_CLOSE] = PRELUDE HISTORY
    "local me, keep, n, out, wake = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), {}, false\n"
    "local anywait = redis.call('EXISTS', R .. ':waitjobs') == 1\n"
    "local stride = keep == 0 and 3 or 9\n"
    /* The fence reads the jobs' open entries, not the run records: a run
     * record of this owner with token TOK exists exactly when its job's
     * open entry T:TOK:OWNER does (every script writes and deletes both),
     * and the entries are short where the records are the job's JSON.
     * open[id] is the job's text until an entry of it is looked at, then
     * its entries (a table), an ended run's entry removed; '' when the
     * only one ended. */
    "local ids, open = {}, {}\n"
    "for k = 0, n - 1 do local id = ARGV[4 + stride * k]\n"
    "  if open[id] == nil then open[id] = false ids[#ids + 1] = id end end\n"
    "local op = hmget(R .. ':open', ids)\n"
    "for j, id in ipairs(ids) do open[id] = op[j] or '' end\n"
    "local closed, touched = {}, {}\n"
    "for k = 0, n - 1 do\n"
    "  local a = 4 + stride * k\n"
    "  local id, t, tok = ARGV[a], ARGV[a + 1], ARGV[a + 2]\n"
    "  local l, found = open[id], false\n"
    "  out[k + 1] = 0\n"
    /* (Most jobs have one open run, the one that ends: no parsing.) */
    "  if tok == '0' then\n"
    "  elseif l == t .. ':' .. tok .. ':' .. me then open[id], found = '', true\n"
    "  else\n"
    "    if type(l) == 'string' then l = open_parse(l) open[id] = l end\n"
    "    for x, e in ipairs(l) do if e[1] == t then\n"
    "      found = e[2] == tok and e[3] == me\n"
    "      if found then table.remove(l, x) else out[k + 1] = -1 end\n"
    "      break end end\n"
    "  end\n"
    "  if found then\n"
    "    closed[#closed + 1] = run_field(id, t)\n"
    "    if not touched[id] then touched[id] = true touched[#touched + 1] = id end\n"
    "    if anywait and redis.call('SISMEMBER', R .. ':waitjobs', id) == 1 then wake = true end\n"
    "    out[k + 1] = 1\n"
    "    if keep ~= 0 then\n"
    "      history_add(keep, 'job_id', id, 'scheduled_time', t, 'attempt', ARGV[a + 3],\n"
    "        'started_at', ARGV[a + 4], 'finished_at', ARGV[a + 5], 'outcome', ARGV[a + 6],\n"
    "        'retval', ARGV[a + 7], 'error', ARGV[a + 8]) end\n"
    "  end\n"
    "end\n"
    /* The closed records and their open entries: one call each for the
     * whole batch. */
    "batched('HDEL', R .. ':runs:' .. me, closed)\n"
    "local sets, dels = {}, {}\n"
    "for _, id in ipairs(touched) do\n"
    "  local l = open[id]\n"
    "  if #l == 0 then dels[#dels + 1] = id else sets[#sets + 1] = id sets[#sets + 1] = open_text(l) end\n"
    "end\n"
    "batched('HSET', R .. ':open', sets)\n"
    "batched('HDEL', R .. ':open', dels)\n"
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
    "    if old and not holds_runs(sid) then\n"
    "      redis.call('DEL', R .. ':runs:' .. sid)\n"
    "      redis.call('DEL', R .. ':scheduler:' .. sid)\n"
    "      redis.call('SREM', R .. ':schedulers', sid)\n"
    "    end\n"
    "  end\n"
    "end\n"
    /* Claims past their expiry (a scheduler that died mid-batch, a job
     * removed or paused while claimed) are swept. */
    "local cl, stale = redis.call('HGETALL', R .. ':claims'), {}\n"
    "for i = 1, #cl, 2 do\n"
    "  if cl[i] ~= '' and not claim_holder(cl[i + 1], now) then stale[#stale + 1] = cl[i] end end\n"
    "batched('HDEL', R .. ':claims', stale)\n"
    "return now_us()\n",

    /* The registry, 10 values per scheduler: id, name (nil: none), host,
     * pid, started_at, heartbeat_at, lease_ms, alive (0 | 1), runs claimed
     * and not started, runs started. */
    [S_LIST] = PRELUDE
    "local out = {}\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', R .. ':schedulers')) do\n"
    "  local f = fields(R .. ':scheduler:' .. sid)\n"
    "  local claimed, running = 0, 0\n"
    "  local h = redis.call('HGETALL', R .. ':runs:' .. sid)\n"
    "  for i = 1, #h, 2 do if h[i] ~= '' then\n"
    "    if run_decode(h[i + 1]).started_at then running = running + 1\n"
    "    else claimed = claimed + 1 end\n"
    "  end end\n"
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
    "if claim_holder(redis.call('HGET', R .. ':claims', id), now_us()) then return {'claimed'} end\n"
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
    "  if not claim_holder(redis.call('HGET', R .. ':claims', id), now) then\n"
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
    "for _, name in ipairs(redis.call('SMEMBERS', key)) do\n"
    "  local t, id = string.match(name, '^(%d+):(.*)$')\n"
    "  local f = t and run_get(ARGV[1], id, t)\n"
    "  if f and f.stop_request then\n"
    "    out[#out + 1] = id out[#out + 1] = t out[#out + 1] = f.stop_request end\n"
    "end\n"
    "redis.call('DEL', key)\n"
    "return out\n",

    /* Raises layout 3 to 4 (the version only: layout 4 adds the '+' mark
     * to claims, which a layout 3 scheduler would not read as a claim),
     * and layout 1 or 2 to 4 (layout.c): job hashes lose the next run
     * time their score holds (and a trigger time equal to it), claim keys become fields of
     * {P}:claims (with their remaining time), run hashes fields of
     * {P}:runs:OWNER, jobruns hashes the entries of {P}:open; stop
     * requests name runs by "T:ID". Returns the number of runs moved. */
    [S_MIGRATE] = PRELUDE
    "if redis.call('GET', R .. ':version') == '3' then redis.call('SET', R .. ':version', '4') return 0 end\n"
    "local now, moved, opens, seen = now_us(), 0, {}, {}\n"
    "local function run_of(rk) return string.match(string.sub(rk, #R + 6), '^(.*):(%d+)$') end\n"
    "for _, id in ipairs(redis.call('ZRANGE', R .. ':jobs', 0, -1)) do\n"
    "  local ck = R .. ':claim:' .. id\n"
    "  if redis.call('TYPE', ck).ok == 'string' then\n"
    "    local ttl = redis.call('PTTL', ck)\n"
    "    if ttl > 0 then redis.call('HSET', R .. ':claims', '', TABLE, id,\n"
    "      redis.call('GET', ck) .. ' ' .. string.format('%d', tonumber(now) + 1000 * ttl)) end\n"
    "    redis.call('DEL', ck)\n"
    "  end\n"
    "  seen[id] = true\n"
    "  local key = R .. ':job:' .. id\n"
    "  if redis.call('TYPE', key).ok == 'hash' then\n"
    "    local t = redis.call('HMGET', key, 'next_run_time', 'trigger_time')\n"
    "    local score = redis.call('ZSCORE', R .. ':next', id)\n"
    "    if t[1] and score and tonumber(score) == tonumber(t[1]) and math.abs(tonumber(t[1])) <= 9007199254740992 then\n"
    "      redis.call('HDEL', key, 'next_run_time') end\n"
    "    if t[2] and t[2] == t[1] then redis.call('HDEL', key, 'trigger_time') end\n"
    "  end\n"
    "end\n"
    "for _, owner in ipairs(redis.call('SMEMBERS', R .. ':owners')) do\n"
    "  local set = R .. ':owned:' .. owner\n"
    "  for _, rk in ipairs(redis.call('SMEMBERS', set)) do\n"
    "    local f = fields(rk)\n"
    "    if f.owner == owner and f.job_id and f.scheduled_time and f.token then\n"
    "      run_put(owner, f.job_id, f.scheduled_time, {token = f.token, attempt = f.attempt or '1',\n"
    "        claimed_at = f.claimed_at, started_at = f.started_at, stop_request = f.stop_request,\n"
    "        func = f.func, executor = f.executor, max_instances = f.max_instances,\n"
    "        max_runtime_ms = f.max_runtime_ms, delivery = f.delivery, name = f.name, arg = f.arg})\n"
    "      local l = opens[f.job_id] or {}\n"
    "      l[#l + 1] = {f.scheduled_time, f.token, owner}\n"
    "      opens[f.job_id] = l\n"
    "      seen[f.job_id] = true\n"
    "      moved = moved + 1\n"
    "      redis.call('DEL', rk)\n"
    "    end\n"
    "  end\n"
    "  redis.call('DEL', set)\n"
    "  if redis.call('EXISTS', R .. ':runs:' .. owner) == 0 then redis.call('SREM', R .. ':owners', owner) end\n"
    "end\n"
    "for id in pairs(seen) do redis.call('DEL', R .. ':jobruns:' .. id) end\n"
    "for id, l in pairs(opens) do open_store(id, l) end\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', R .. ':schedulers')) do\n"
    "  local sk = R .. ':stops:' .. sid\n"
    "  for _, rk in ipairs(redis.call('SMEMBERS', sk)) do\n"
    "    local id, t = run_of(rk)\n"
    "    redis.call('SREM', sk, rk)\n"
    "    if id then redis.call('SADD', sk, run_field(id, t)) end\n"
    "  end\n"
    "end\n"
    "redis.call('SET', R .. ':version', '4')\n"
    "return moved\n",
};

const char *apsched__redis_script_text(redis_script s) { return texts[s]; }
