package sources_test

import (
	"context"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

type emCounter struct{ n int }

func (c *emCounter) OnSubscribe(s flow.Subscription) { s.Request(flow.Unbounded) }
func (c *emCounter) OnNext(int)                      { c.n++ }
func (c *emCounter) OnError(error)                   {}
func (c *emCounter) OnComplete()                     {}

// BenchmarkEmitter measures TryEmit with the subscriber's demand
// unbounded (each item is delivered by the producer that emits it), and
// Emit under Block with the subscriber on another goroutine, beside a Go
// channel of the same capacity (the baseline).
func BenchmarkEmitter(b *testing.B) {
	b.Run("TryEmit/same-goroutine", func(b *testing.B) {
		e := sources.NewEmitter[int](1024, flow.DropOldest)
		e.Publisher().Subscribe(&emCounter{})
		for i := 0; b.Loop(); i++ {
			e.TryEmit(i)
		}
	})
	b.Run("baseline=chan/cross-goroutine", func(b *testing.B) {
		ch := make(chan int, 1024)
		done := make(chan struct{})
		go func() {
			for range ch {
			}
			close(done)
		}()
		for i := 0; b.Loop(); i++ {
			ch <- i
		}
		close(ch)
		<-done
	})
	b.Run("Emit/Block/cross-goroutine", func(b *testing.B) {
		e := sources.NewEmitter[int](1024, flow.Block)
		done := make(chan struct{})
		go func() {
			e.Publisher().Subscribe(flow.SubscriberFuncs[int]{
				Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
				Complete:  func() { close(done) },
			})
		}()
		ctx := context.Background()
		for i := 0; b.Loop(); i++ {
			_ = e.Emit(ctx, i)
		}
		e.Complete()
		<-done
	})
}
