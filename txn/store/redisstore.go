package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStore implements Store on Redis (one server, or a primary behind
// Sentinel; not Redis Cluster: a script touches keys it names itself). Every
// change is one Lua script, so it is atomic; it is as durable as the server
// is configured to be: with appendonly yes and appendfsync always, Redis
// writes the AOF to disk before it answers, and every change is committed
// before it is acknowledged; with appendfsync everysec (Redis's default) a
// crash of the server can lose the last second.
//
// Keys, for prefix p (default "rosen"): p:txn:t:<id> (hash: the
// transaction's columns), p:txn:b:<id> (hash: <branch>/a actions, <branch>/q
// order, <branch>/s state), and the indexes p:txn:i:due (active transactions
// by max(next_due, lease_until): what ClaimDue takes), p:txn:i:created and
// p:txn:i:state:<state> (by creation time, for List) and p:txn:i:finished (by
// finish time, for Purge). Ids may hold ':', so the t/b/i level keeps the
// three apart.
type redisStore struct {
	rdb        redis.UniversalClient
	p          string
	durability string
}

// OpenRedis opens the store on the Redis server at url (redis://[user:pass@]host:port/db
// or rediss://…). Any number of coordinators may share it.
func OpenRedis(ctx context.Context, url string, opts Options) (Store, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store: redis url: %w", err)
	}
	if opts.MaxConns > 0 {
		ro.PoolSize = opts.MaxConns
	}
	prefix := opts.Prefix
	if prefix == "" {
		prefix = "rosen"
	}
	if !prefixRe.MatchString(prefix) {
		return nil, fmt.Errorf("store: key prefix %q: want [a-z_][a-z0-9_]*", prefix)
	}
	rdb := redis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("store: connect redis: %w", err)
	}
	s := &redisStore{rdb: rdb, p: prefix + ":txn"}
	s.durability = s.readDurability(ctx)
	return s, nil
}

// RedisDurability says how durable the Redis server behind s is configured
// to be ("appendfsync always" is the only setting that commits each change
// to disk before it is acknowledged); empty for other stores.
func RedisDurability(s Store) string {
	if r, ok := s.(*redisStore); ok {
		return r.durability
	}
	return ""
}

func (s *redisStore) readDurability(ctx context.Context) string {
	aof, err1 := s.rdb.ConfigGet(ctx, "appendonly").Result()
	fsync, err2 := s.rdb.ConfigGet(ctx, "appendfsync").Result()
	if err1 != nil || err2 != nil {
		return "unknown (CONFIG GET refused)"
	}
	if aof["appendonly"] != "yes" {
		return "appendonly " + aof["appendonly"] + ": changes live in memory (and RDB snapshots) only"
	}
	return "appendonly yes, appendfsync " + fsync["appendfsync"]
}

func (s *redisStore) txnKey(id string) string { return s.p + ":t:" + id }
func (s *redisStore) brKey(id string) string  { return s.p + ":b:" + id }

// The scripts share one helper, reindex, that keeps the indexes in step with
// a transaction's state: p:due holds active transactions by the time they
// are claimable, p:state:<state> and p:finished the rest.
const luaReindex = `
local function active(st) return st == 'trying' or st == 'confirming' or st == 'cancelling' end
local function reindex(p, id, old, new, created, due, lease, finished)
  if old ~= new then
    if old then redis.call('ZREM', p .. ':i:state:' .. old, id) end
    redis.call('ZADD', p .. ':i:state:' .. new, created, id)
  end
  if active(new) then
    redis.call('ZADD', p .. ':i:due', math.max(tonumber(due), tonumber(lease)), id)
  else
    redis.call('ZREM', p .. ':i:due', id)
  end
  if finished then redis.call('ZADD', p .. ':i:finished', finished, id) end
end
`

// KEYS: txn, br. ARGV: p, id, policy, headers, created, deadline, branch state, then (id, actions, status) per branch.
var createScript = redis.NewScript(luaReindex + `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local p, id, created, deadline = ARGV[1], ARGV[2], ARGV[5], ARGV[6]
redis.call('HSET', KEYS[1], 'id', id, 'state', 'trying', 'stuck_phase', '', 'reason', '', 'policy', ARGV[3], 'headers', ARGV[4],
  'created_at', created, 'updated_at', created, 'deadline', deadline, 'finished_at', '0', 'next_due', deadline,
  'owner', '', 'lease_until', '0', 'attempts', '0', 'last_error', '')
local seq = 0
for i = 8, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i] .. '/a', ARGV[i+1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[i] .. '/q', seq, ARGV[i] .. '/s', ARGV[i+2])
  end
  seq = seq + 1
end
redis.call('ZADD', p .. ':i:created', created, id)
reindex(p, id, nil, 'trying', created, deadline, 0, nil)
return 1
`)

// KEYS: txn, br. ARGV: branch id, actions, seq, status, now.
// Answers 1 added, 2 the same registration again, -1 no transaction, -2 other
// actions, -3 past the deadline, else the transaction's state.
var addBranchScript = redis.NewScript(`
local t = redis.call('HMGET', KEYS[1], 'state', 'deadline')
if not t[1] then return -1 end
local old = redis.call('HGET', KEYS[2], ARGV[1] .. '/a')
if old then
  if old ~= ARGV[2] then return -2 end
  if t[1] == 'trying' then return 2 end
  return t[1]
end
if t[1] ~= 'trying' then return t[1] end
if tonumber(t[2]) <= tonumber(ARGV[5]) then return -3 end
redis.call('HSET', KEYS[2], ARGV[1] .. '/a', ARGV[2], ARGV[1] .. '/q', ARGV[3], ARGV[1] .. '/s', ARGV[4])
return 1
`)

// KEYS: txn, br. ARGV: p, id, to, now, owner, lease_until, next_due, reason, reset(0/1),
// deadline condition (” / 'before' / 'after'), then the from states.
// Answers {1|0, txn fields, branch fields}, or {-1} when there is no such transaction.
var transitionScript = redis.NewScript(luaReindex + `
local t = redis.call('HMGET', KEYS[1], 'state', 'deadline', 'created_at')
if not t[1] then return {-1} end
local ok = 0
for i = 11, #ARGV do if ARGV[i] == t[1] then ok = 1 end end
local now = tonumber(ARGV[4])
if ARGV[10] == 'before' and tonumber(t[2]) <= now then ok = 0 end
if ARGV[10] == 'after' and tonumber(t[2]) > now then ok = 0 end
if ok == 1 then
  local to = ARGV[3]
  redis.call('HSET', KEYS[1], 'state', to, 'updated_at', ARGV[4], 'owner', ARGV[5], 'lease_until', ARGV[6], 'next_due', ARGV[7])
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[1], 'reason', ARGV[8]) end
  if ARGV[9] == '1' then redis.call('HSET', KEYS[1], 'attempts', '0', 'stuck_phase', '') end
  local finished = nil
  if to == 'committed' or to == 'aborted' then
    redis.call('HSET', KEYS[1], 'finished_at', ARGV[4])
    finished = ARGV[4]
  end
  reindex(ARGV[1], ARGV[2], t[1], to, t[3], ARGV[7], ARGV[6], finished)
end
return {ok, redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2])}
`)

// KEYS: txn, br. ARGV: p, id, from, owner, to, now, next_due, attempts, last_error, then (branch id, status) pairs.
var saveScript = redis.NewScript(luaReindex + `
local t = redis.call('HMGET', KEYS[1], 'state', 'owner', 'created_at')
if not t[1] or t[1] ~= ARGV[3] or t[2] ~= ARGV[4] then return 0 end
local to = ARGV[5]
redis.call('HSET', KEYS[1], 'state', to, 'updated_at', ARGV[6], 'next_due', ARGV[7], 'owner', '', 'lease_until', '0',
  'attempts', ARGV[8], 'last_error', ARGV[9])
if to == 'stuck' then redis.call('HSET', KEYS[1], 'stuck_phase', ARGV[3]) end
local finished = nil
if to == 'committed' or to == 'aborted' then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[6])
  finished = ARGV[6]
end
for i = 10, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[2], ARGV[i] .. '/a') == 1 then redis.call('HSET', KEYS[2], ARGV[i] .. '/s', ARGV[i+1]) end
end
reindex(ARGV[1], ARGV[2], t[1], to, t[3], ARGV[7], 0, finished)
return 1
`)

// KEYS: due. ARGV: p, owner, now, lease_until, limit.
var claimScript = redis.NewScript(`
local now, lease = tonumber(ARGV[3]), ARGV[4]
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[5]))
local out = {}
for _, id in ipairs(ids) do
  local k = ARGV[1] .. ':t:' .. id
  local t = redis.call('HMGET', k, 'state', 'next_due', 'lease_until')
  local st = t[1]
  if st == 'trying' or st == 'confirming' or st == 'cancelling' then
    if tonumber(t[2]) <= now and tonumber(t[3]) <= now then
      redis.call('HSET', k, 'owner', ARGV[2], 'lease_until', lease)
      redis.call('ZADD', KEYS[1], math.max(tonumber(t[2]), tonumber(lease)), id)
      out[#out + 1] = id
    else
      redis.call('ZADD', KEYS[1], math.max(tonumber(t[2]), tonumber(t[3])), id)
    end
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
`)

// KEYS: finished. ARGV: p, cutoff, limit. Deletes final transactions finished at or before cutoff.
var purgeScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
local n = 0
for _, id in ipairs(ids) do
  local k = ARGV[1] .. ':t:' .. id
  local st = redis.call('HGET', k, 'state')
  if st == 'committed' or st == 'aborted' or not st then
    if st then redis.call('ZREM', ARGV[1] .. ':i:state:' .. st, id) end
    redis.call('DEL', k, ARGV[1] .. ':b:' .. id)
    redis.call('ZREM', ARGV[1] .. ':i:created', id)
    n = n + 1
  end
  redis.call('ZREM', KEYS[1], id)
end
return n
`)

func branchStatus(st BranchState, attempts int, updated time.Time, lastErr string) string {
	return string(st) + "|" + strconv.Itoa(attempts) + "|" + strconv.FormatInt(micros(updated), 10) + "|" + lastErr
}

func (s *redisStore) Create(ctx context.Context, t *Txn) error {
	policy, _ := json.Marshal(t.Policy)
	headers, _ := json.Marshal(t.Headers)
	args := []any{s.p, t.ID, string(policy), string(headers), micros(t.CreatedAt), micros(t.Deadline), ""}
	for _, b := range t.Branches {
		actions, _ := json.Marshal(branchActions{b.Confirm, b.Cancel})
		args = append(args, b.ID, string(actions), branchStatus(BranchRegistered, 0, t.CreatedAt, ""))
	}
	n, err := createScript.Run(ctx, s.rdb, []string{s.txnKey(t.ID), s.brKey(t.ID)}, args...).Int()
	if err != nil {
		return fmt.Errorf("store: create %s: %w", t.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrExists, t.ID)
	}
	return nil
}

type branchActions struct {
	Confirm Action `json:"confirm"`
	Cancel  Action `json:"cancel"`
}

func (s *redisStore) AddBranch(ctx context.Context, txnID string, b Branch, now time.Time) error {
	actions, _ := json.Marshal(branchActions{b.Confirm, b.Cancel})
	res, err := addBranchScript.Run(ctx, s.rdb, []string{s.txnKey(txnID), s.brKey(txnID)},
		b.ID, string(actions), micros(now), branchStatus(BranchRegistered, 0, now, ""), micros(now)).Result()
	if err != nil {
		return fmt.Errorf("store: add branch %s/%s: %w", txnID, b.ID, err)
	}
	switch v := res.(type) {
	case int64:
		switch v {
		case 1, 2:
			return nil
		case -1:
			return fmt.Errorf("%w: %s", ErrNotFound, txnID)
		case -2:
			return fmt.Errorf("%w: %s/%s", ErrDuplicateBranch, txnID, b.ID)
		case -3:
			return fmt.Errorf("%w: %s", ErrTimedOut, txnID)
		}
	case string:
		return fmt.Errorf("%w: %s is %s", ErrState, txnID, v)
	}
	return fmt.Errorf("store: add branch %s/%s: unexpected answer %v", txnID, b.ID, res)
}

// decodeTxn builds a transaction from its hash fields and its branch hash.
func decodeTxn(id string, fields, branches map[string]string) (*Txn, error) {
	num := func(k string) int64 { n, _ := strconv.ParseInt(fields[k], 10, 64); return n }
	t := &Txn{ID: id, State: State(fields["state"]), StuckPhase: State(fields["stuck_phase"]), Reason: fields["reason"],
		CreatedAt: fromMicros(num("created_at")), UpdatedAt: fromMicros(num("updated_at")), Deadline: fromMicros(num("deadline")),
		FinishedAt: fromMicros(num("finished_at")), NextDue: fromMicros(num("next_due")), Owner: fields["owner"],
		LeaseUntil: fromMicros(num("lease_until")), Attempts: int(num("attempts")), LastError: fields["last_error"]}
	if err := json.Unmarshal([]byte(fields["policy"]), &t.Policy); err != nil {
		return nil, fmt.Errorf("store: %s: policy: %w", id, err)
	}
	if err := json.Unmarshal([]byte(fields["headers"]), &t.Headers); err != nil {
		return nil, fmt.Errorf("store: %s: headers: %w", id, err)
	}
	type ordered struct {
		seq int64
		b   Branch
	}
	var list []ordered
	for k, v := range branches {
		bid, ok := strings.CutSuffix(k, "/a")
		if !ok {
			continue
		}
		var a branchActions
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("store: %s/%s actions: %w", id, bid, err)
		}
		b := Branch{ID: bid, Confirm: a.Confirm, Cancel: a.Cancel}
		parts := strings.SplitN(branches[bid+"/s"], "|", 4)
		if len(parts) != 4 {
			return nil, fmt.Errorf("store: %s/%s: damaged status %q", id, bid, branches[bid+"/s"])
		}
		b.State, b.LastError = BranchState(parts[0]), parts[3]
		b.Attempts, _ = strconv.Atoi(parts[1])
		upd, _ := strconv.ParseInt(parts[2], 10, 64)
		b.UpdatedAt = fromMicros(upd)
		seq, _ := strconv.ParseInt(branches[bid+"/q"], 10, 64)
		list = append(list, ordered{seq, b})
	}
	slices.SortFunc(list, func(x, y ordered) int {
		if x.seq != y.seq {
			return int(min(max(x.seq-y.seq, -1), 1))
		}
		return strings.Compare(x.b.ID, y.b.ID)
	})
	t.Branches = make([]Branch, len(list))
	for i, o := range list {
		t.Branches[i] = o.b
	}
	return t, nil
}

// pairs turns a flat [k, v, k, v, …] reply into a map.
func pairs(v any) map[string]string {
	list, _ := v.([]any)
	m := make(map[string]string, len(list)/2)
	for i := 0; i+1 < len(list); i += 2 {
		k, _ := list[i].(string)
		val, _ := list[i+1].(string)
		m[k] = val
	}
	return m
}

func (s *redisStore) Get(ctx context.Context, id string) (*Txn, error) {
	pipe := s.rdb.Pipeline()
	tc := pipe.HGetAll(ctx, s.txnKey(id))
	bc := pipe.HGetAll(ctx, s.brKey(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	if len(tc.Val()) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return decodeTxn(id, tc.Val(), bc.Val())
}

func (s *redisStore) List(ctx context.Context, f Filter) ([]*Txn, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	index := s.p + ":i:created"
	if f.State != "" {
		index = s.p + ":i:state:" + string(f.State)
	}
	// Newest first; ties (same microsecond) by id, as the SQL stores do.
	ids, err := s.rdb.ZRevRange(ctx, index, 0, int64(limit)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.txnKey(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
	}
	out := []*Txn{}
	for i, id := range ids {
		if len(cmds[i].Val()) == 0 {
			continue // purged meanwhile
		}
		t, err := decodeTxn(id, cmds[i].Val(), nil)
		if err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		t.Branches = nil
		out = append(out, t)
	}
	slices.SortStableFunc(out, func(a, b *Txn) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func (s *redisStore) Transition(ctx context.Context, id string, tr Transition) (*Txn, error) {
	if len(tr.From) == 0 || !tr.To.Valid() {
		return nil, fmt.Errorf("store: transition %s: bad states %v → %q", id, tr.From, tr.To)
	}
	reset, cond := "0", ""
	if tr.ResetAttempts {
		reset = "1"
	}
	if tr.BeforeDeadline {
		cond = "before"
	}
	if tr.AfterDeadline {
		cond = "after"
	}
	args := []any{s.p, id, string(tr.To), micros(tr.Now), tr.Owner, micros(tr.LeaseUntil), micros(tr.NextDue), tr.Reason, reset, cond}
	for _, f := range tr.From {
		args = append(args, string(f))
	}
	res, err := transitionScript.Run(ctx, s.rdb, []string{s.txnKey(id), s.brKey(id)}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("store: transition %s to %s: %w", id, tr.To, err)
	}
	if ok, _ := res[0].(int64); ok == -1 || len(res) < 3 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	t, err := decodeTxn(id, pairs(res[1]), pairs(res[2]))
	if err != nil {
		return nil, err
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return t, nil
	}
	if tr.BeforeDeadline && t.State == Trying {
		return t, fmt.Errorf("%w: %s", ErrTimedOut, id)
	}
	return t, fmt.Errorf("%w: %s is %s, not %v", ErrState, id, t.State, tr.From)
}

func (s *redisStore) ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]string, error) {
	ids, err := claimScript.Run(ctx, s.rdb, []string{s.p + ":i:due"}, s.p, owner, micros(now), micros(leaseUntil), limit).StringSlice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: claim due work: %w", err)
	}
	return ids, nil
}

func (s *redisStore) SaveProgress(ctx context.Context, id string, p Progress) error {
	args := []any{s.p, id, string(p.From), p.Owner, string(p.To), micros(p.Now), micros(p.NextDue), p.Attempts, p.LastError}
	for _, b := range p.Branches {
		args = append(args, b.ID, branchStatus(b.State, b.Attempts, p.Now, b.LastError))
	}
	n, err := saveScript.Run(ctx, s.rdb, []string{s.txnKey(id), s.brKey(id)}, args...).Int()
	if err != nil {
		return fmt.Errorf("store: save progress of %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrLeaseLost, id)
	}
	return nil
}

func (s *redisStore) Purge(ctx context.Context, before time.Time, limit int) (int, error) {
	n, err := purgeScript.Run(ctx, s.rdb, []string{s.p + ":i:finished"}, s.p, micros(before), limit).Int()
	if err != nil {
		return 0, fmt.Errorf("store: purge: %w", err)
	}
	return n, nil
}

func (s *redisStore) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: ping redis: %w", err)
	}
	return nil
}

func (s *redisStore) Close() error { return s.rdb.Close() }
