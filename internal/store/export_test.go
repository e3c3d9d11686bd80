package store

import (
	"context"
	"time"
)

// MaintainPartitionsAt is MaintainPartitions with the database clock at
// now, so tests can step through months.
func (db *DB) MaintainPartitionsAt(ctx context.Context, now time.Time, retentionMonths int) (Maintenance, error) {
	return db.maintainPartitions(ctx, now, retentionMonths)
}
