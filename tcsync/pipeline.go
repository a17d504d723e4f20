package tcsync

import (
	"context"
	"sync"
)

// pipeline runs commits in submission order on one goroutine, so fetching,
// decoding and mapping the next page overlaps writing this one (the client's
// paging and SQLite each keep one core busy). At most depth jobs wait. The
// first failing job cancels the pipeline's context, which stops the fetch.
type pipeline struct {
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan func(context.Context) error
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
}

func newPipeline(ctx context.Context, depth int) *pipeline {
	ctx, cancel := context.WithCancel(ctx)
	p := &pipeline{ctx: ctx, cancel: cancel, jobs: make(chan func(context.Context) error, depth)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for job := range p.jobs {
			if p.failed() != nil {
				continue // drain: nothing after a failed commit may be written
			}
			if err := job(ctx); err != nil {
				p.mu.Lock()
				p.err = err
				p.mu.Unlock()
				cancel()
			}
		}
	}()
	return p
}

// Context is cancelled when a job fails or the parent is cancelled.
func (p *pipeline) Context() context.Context { return p.ctx }

func (p *pipeline) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// submit queues a job, blocking while depth jobs wait. It returns the
// pipeline's error once a job has failed.
func (p *pipeline) submit(job func(context.Context) error) error {
	if err := p.failed(); err != nil {
		return err
	}
	select {
	case p.jobs <- job:
		return nil
	case <-p.ctx.Done():
		if err := p.failed(); err != nil {
			return err
		}
		return p.ctx.Err()
	}
}

// wait lets every queued job finish and returns the first job error, or
// fetchErr when no job failed.
func (p *pipeline) wait(fetchErr error) error {
	close(p.jobs)
	p.wg.Wait()
	p.cancel()
	if err := p.failed(); err != nil {
		return err
	}
	return fetchErr
}
