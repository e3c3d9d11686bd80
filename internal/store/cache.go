package store

import (
	"hash/maphash"
	"sync"
)

// checkCache keeps every entry of recently checked addresses (none, for
// most), so the single check does not reach the database. It is only used
// while change notifications are being received (see DB.Run): each change
// to an address's entries invalidates it here and in every replica.
//
// A fill that raced an invalidation is dropped: the reader takes its
// shard's generation before querying, and fill stores only if no
// invalidation happened since.
type checkCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

const cacheShards = 64

type cacheShard struct {
	mu  sync.RWMutex
	gen uint64
	m   map[string][]Suppression
}

func newCheckCache(size int) *checkCache {
	if size <= 0 {
		return nil
	}
	c := &checkCache{seed: maphash.MakeSeed(), perShard: max(size/cacheShards, 1)}
	for i := range c.shards {
		c.shards[i].m = map[string][]Suppression{}
	}
	return c
}

func (c *checkCache) shard(key string) *cacheShard {
	return &c.shards[maphash.String(c.seed, key)%cacheShards]
}

func (c *checkCache) get(key string) ([]Suppression, bool) {
	s := c.shard(key)
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	return v, ok
}

func (c *checkCache) generation(key string) uint64 {
	s := c.shard(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

func (c *checkCache) fill(key string, gen uint64, entries []Suppression) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if len(s.m) >= c.perShard {
		clear(s.m) // crude but bounded; hot addresses come back on the next miss
	}
	if entries == nil {
		entries = []Suppression{}
	}
	s.m[key] = entries
}

func (c *checkCache) invalidate(key string) {
	s := c.shard(key)
	s.mu.Lock()
	s.gen++
	delete(s.m, key)
	s.mu.Unlock()
}

func (c *checkCache) flush() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		clear(s.m)
		s.mu.Unlock()
	}
}
