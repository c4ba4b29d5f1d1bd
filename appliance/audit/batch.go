package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/custos/custos/internal/tenancy"
	"github.com/custos/custos/raftstore"
)

// Batcher group-commits audit entries that describe no change of the
// store — reads of personal data — so that many of them share one
// replicated transaction instead of paying one each.
//
// Append queues an entry and returns only once the transaction carrying it
// is committed (or has failed): a caller that serves data after Append
// returns nil has its access on record first, exactly as with a
// transaction of its own. A committer goroutine takes everything queued
// (up to MaxEntries entries / MaxBytes bytes) into one transaction, waits
// for it, and repeats while entries keep arriving; with nothing queued it
// exits, and the next Append starts one again. There is no timer: an entry
// that finds the batcher idle is proposed at once, and entries that arrive
// while a commit is in flight form the next batch, so batches grow with
// the load and cost nothing when there is none. (With MaxInFlight n, up
// to n committers run: an entry that finds fewer than n commits in flight
// is proposed at once.)
//
// An entry is given with the scope of the tenant whose data was read: the
// tenancy boundary names that tenant's chain and places the entry's
// conditions below its bucket (tenancy.Boundary.AppendBatch), so the
// batcher never builds a chain name or a path.
//
// An entry may carry conditions (AppendIf): the versions of what the read
// saw, so that its commit also proves the read was current then — a read
// from this node's possibly lagging state needs no read-index round of its
// own. They join the batch's transaction; when one does not hold, nothing
// is written, that entry alone fails with ErrCondition and the rest are
// proposed again at once (after a few such rounds, every remaining entry
// with conditions fails with ErrCondition, so a batch takes a bounded
// number of transactions).
//
// A transaction is all or nothing, so when it is refused (Result.Err:
// nothing of it was written) every entry in it fails — except that a batch
// holding entries of several tenants is retried tenant by tenant first, so
// that one tenant's unwritable chain does not fail another tenant's reads.
// When the outcome is unknown (a timeout, a lost leader) nothing is
// retried: every entry of the batch fails, and some may have been written
// — an access on record that was then refused, never an access served off
// the record.
//
// A Batcher is made and closed by its owner (the node); there is no global
// state.
type Batcher struct {
	tenancy  *tenancy.Boundary
	maxN     int
	maxBytes int
	maxIn    int
	timeout  time.Duration
	observe  func(time.Duration)

	mu         sync.Mutex
	queue      []*queued
	committers int            // running committer goroutines (≤ maxIn)
	wg         sync.WaitGroup // the committers, for Close
	closed     bool
}

// BatchOptions tune a Batcher; zero values take the defaults.
type BatchOptions struct {
	// MaxEntries bounds the entries of one transaction (default 1024;
	// raftstore allows 4096 items per transaction).
	MaxEntries int
	// MaxBytes bounds the encoded entries of one transaction (default
	// 1 MiB; raftstore allows 8 MiB).
	MaxBytes int
	// MaxInFlight bounds the commits in flight at once (default 1: entries
	// that arrive while a commit is in flight form the next batch).
	MaxInFlight int
	// Timeout bounds one commit (default 10 s). Each caller also stops
	// waiting when its own context ends.
	Timeout time.Duration
	// Observe, when set, is told how long each successful Append took,
	// from the call to its commit: the audit append latency metric. It
	// must be cheap and safe for concurrent use.
	Observe func(time.Duration)
}

// Batch defaults.
const (
	defaultBatchEntries = 1024
	defaultBatchBytes   = 1 << 20
	defaultBatchTimeout = 10 * time.Second
	// condRounds bounds the transactions one batch takes for failed
	// conditions.
	condRounds = 3
)

// queued is one entry waiting for its commit. state is guarded by the
// Batcher's mu.
type queued struct {
	scope tenancy.Scope
	data  []byte
	conds []raftstore.Cond // relative to the scope's tenant
	size  int
	state queuedState
	done  chan error // buffered: the committer never blocks on a caller gone
}

type queuedState uint8

const (
	stateQueued  queuedState = iota
	stateTaken               // in a transaction being committed
	stateDropped             // its caller gave up before it was taken
)

// NewBatcher makes a batcher over the tenancy boundary; the scopes given
// to Append come from it.
func NewBatcher(b *tenancy.Boundary, o BatchOptions) *Batcher {
	if o.MaxEntries <= 0 {
		o.MaxEntries = defaultBatchEntries
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultBatchBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultBatchTimeout
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 1
	}
	return &Batcher{tenancy: b, maxN: o.MaxEntries, maxBytes: o.MaxBytes, maxIn: o.MaxInFlight, timeout: o.Timeout, observe: o.Observe}
}

// Append writes e to the chain of sc's tenant in a transaction shared with
// the entries queued meanwhile, and returns once that transaction is
// committed. An error means the entry may not be on record: the caller
// must not serve what it describes. When ctx ends first, the entry is
// withdrawn if it is still queued; if its transaction is already proposed
// it may still be written.
func (b *Batcher) Append(ctx context.Context, sc tenancy.Scope, e Entry) error {
	return b.AppendIf(ctx, sc, e)
}

// AppendIf is Append with conditions (bucket paths relative to sc's
// tenant): the entry is written only if they all hold when its
// transaction applies (ErrCondition otherwise). A reader that read from
// this node's local state conditions its entry on the versions it read: a
// commit then proves the read was current at a point after the request
// began, as a read-index round would.
func (b *Batcher) AppendIf(ctx context.Context, sc tenancy.Scope, e Entry, conds ...raftstore.Cond) error {
	start := time.Now()
	data, err := e.Encode()
	if err != nil {
		return err
	}
	size := len(tenancy.ChainOf(sc.ID())) + len(data) // the append's bytes
	for _, c := range conds {
		size += len(c.Key) + 16
		for _, p := range c.Bucket {
			size += len(p) + 2
		}
	}
	q := &queued{scope: sc, data: data, conds: conds, size: size, done: make(chan error, 1)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrBatcherClosed
	}
	b.queue = append(b.queue, q)
	if b.committers < b.maxIn {
		b.committers++
		b.wg.Add(1)
		go b.commitLoop()
	}
	b.mu.Unlock()
	select {
	case err := <-q.done:
		if err == nil && b.observe != nil {
			b.observe(time.Since(start))
		}
		return err
	case <-ctx.Done():
		b.mu.Lock()
		if q.state == stateQueued {
			q.state = stateDropped
		}
		b.mu.Unlock()
		return fmt.Errorf("audit: append to %s's chain: %w (%v)", sc.ID(), raftstore.ErrTimeout, ctx.Err())
	}
}

// Queued is the number of entries waiting for a transaction (not yet
// proposed): for tests and status.
func (b *Batcher) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, q := range b.queue {
		if q.state == stateQueued {
			n++
		}
	}
	return n
}

// Close stops accepting entries, lets the committer finish what is queued
// and waits for it. Appends after Close fail with ErrBatcherClosed. Close
// the batcher before the store.
func (b *Batcher) Close() {
	b.mu.Lock()
	b.closed = true // no committer starts after this: Wait below is final
	b.mu.Unlock()
	b.wg.Wait()
}

// commitLoop commits batches while entries are queued.
func (b *Batcher) commitLoop() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		batch := b.take()
		if len(batch) == 0 {
			b.committers--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.commit(batch)
	}
}

// take removes the next batch from the queue (b.mu held): the queued
// entries in order, skipping withdrawn ones, up to the limits (at least
// one entry).
func (b *Batcher) take() []*queued {
	var batch []*queued
	size, i := 0, 0
	for ; i < len(b.queue); i++ {
		q := b.queue[i]
		if q.state == stateDropped {
			continue
		}
		if len(batch) > 0 && (len(batch) == b.maxN || size+q.size > b.maxBytes) {
			break
		}
		q.state = stateTaken
		batch = append(batch, q)
		size += q.size
	}
	rest := b.queue[i:]
	if len(rest) == 0 {
		b.queue = nil
	} else {
		b.queue = append(make([]*queued, 0, len(rest)), rest...)
	}
	return batch
}

// commit writes batch in one transaction and tells every waiter.
func (b *Batcher) commit(batch []*queued) {
	rest, err := b.commitConds(batch)
	var refused *refusal
	if errors.As(err, &refused) && !sameTenant(rest) {
		// Nothing was written: retry each tenant's entries on their own,
		// so a refusal reaches only the entries of the chain that caused
		// it.
		for _, group := range byTenant(rest) {
			group, err := b.commitConds(group)
			b.finish(group, err)
		}
		return
	}
	b.finish(rest, err)
}

// commitConds applies batch; an entry whose condition fails is told
// ErrCondition and dropped, and the rest are applied again (after
// condRounds such failures, every entry with conditions is dropped). It
// returns the entries still to be told and the outcome for them.
func (b *Batcher) commitConds(batch []*queued) ([]*queued, error) {
	for round := 1; ; round++ {
		if len(batch) == 0 {
			return nil, nil
		}
		failed, err := b.apply(batch)
		if failed < 0 {
			return batch, err
		}
		b.finish(batch[failed:failed+1], ErrCondition)
		batch = append(batch[:failed:failed], batch[failed+1:]...)
		if round == condRounds {
			var keep []*queued
			for _, q := range batch {
				if len(q.conds) > 0 {
					b.finish([]*queued{q}, ErrCondition)
				} else {
					keep = append(keep, q)
				}
			}
			batch = keep
		}
	}
}

// apply writes batch in one transaction. failed is the index of the entry
// whose condition did not hold (nothing written), or -1.
func (b *Batcher) apply(batch []*queued) (failed int, err error) {
	entries := make([]tenancy.BatchEntry, len(batch))
	for i, q := range batch {
		entries[i] = tenancy.BatchEntry{Scope: q.scope, Data: q.data, Conds: q.conds}
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	failed, res, err := b.tenancy.AppendBatch(ctx, entries)
	switch {
	case err != nil:
		return -1, err
	case res.Err != nil:
		return -1, &refusal{res.Err}
	case failed >= 0:
		return failed, nil
	case !res.Applied || len(res.Chains) != len(batch):
		// Anything else is a store bug, and no entry can be taken as
		// written.
		return -1, fmt.Errorf("%w: %d of %d batched audit entries reported written", raftstore.ErrConflict, len(res.Chains), len(batch))
	}
	return -1, nil
}

func (b *Batcher) finish(batch []*queued, err error) {
	for _, q := range batch {
		if err != nil {
			q.done <- fmt.Errorf("audit: append to %s's chain: %w", q.scope.ID(), err)
		} else {
			q.done <- nil
		}
	}
}

func sameTenant(batch []*queued) bool {
	for _, q := range batch[1:] {
		if q.scope.ID() != batch[0].scope.ID() {
			return false
		}
	}
	return true
}

// byTenant splits batch by tenant (so by chain), keeping each tenant's
// entries in order.
func byTenant(batch []*queued) [][]*queued {
	idx := map[string]int{}
	var groups [][]*queued
	for _, q := range batch {
		i, ok := idx[q.scope.ID()]
		if !ok {
			i = len(groups)
			idx[q.scope.ID()] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], q)
	}
	return groups
}
