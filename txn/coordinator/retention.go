package coordinator

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// DefaultRetention is how long finished transactions stay queryable by default.
const DefaultRetention = 7 * 24 * time.Hour

// purgeBatch bounds one delete, so a large backlog never holds the store long.
const purgeBatch = 1000

// purgeLoop deletes committed and aborted transactions older than the
// retention period, every PurgeEvery, until ctx ends. Every replica runs it;
// deletes are idempotent, so replicas racing each other only share the work.
func (c *Coordinator) purgeLoop(ctx context.Context) {
	tick := time.NewTicker(c.opts.PurgeEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.base.Done():
			return
		case <-tick.C:
		}
		c.Purge(ctx)
	}
}

// Purge deletes, now, the committed and aborted transactions that finished
// more than the retention period ago, and returns how many went.
func (c *Coordinator) Purge(ctx context.Context) int {
	retention := c.Settings().Retention // SetSettings may change it
	if retention <= 0 {
		return 0
	}
	cutoff := c.opts.Now().UTC().Add(-retention)
	total := 0
	for ctx.Err() == nil {
		n, err := c.opts.Store.Purge(ctx, cutoff, purgeBatch)
		if err != nil {
			c.m.storeErrors(err)
			c.log.Warn("purging finished transactions failed; retried at the next round", zap.Error(err))
			break
		}
		total += n
		c.m.purged.Add(float64(n))
		if n < purgeBatch {
			break
		}
	}
	if total > 0 {
		c.log.Info("finished transactions past retention deleted", zap.Int("count", total), zap.Duration("retention", retention))
	}
	return total
}
