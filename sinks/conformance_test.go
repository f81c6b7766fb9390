package sinks_test

import (
	"context"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/flow/flowtest"
	"github.com/sluicego/sluice/sinks"
)

// Every sink passes the kit's port of the TCK's subscriber verification,
// with the default prefetch and one item at a time.
func TestSinksConform(t *testing.T) {
	element := func(i int64) int { return int(i) }
	for _, sk := range []struct {
		name string
		sink func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error
	}{
		{"ForEach", func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error {
			return sinks.ForEach(ctx, pub, func(int) error { return nil }, opts...)
		}},
		{"Collect", func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error {
			_, err := sinks.Collect(ctx, pub, opts...)
			return err
		}},
		{"Reduce", func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error {
			_, err := sinks.Reduce(ctx, pub, 0, func(a, v int) int { return a + v }, opts...)
			return err
		}},
		{"Drain", func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error {
			_, err := sinks.Drain(ctx, pub, opts...)
			return err
		}},
		{"ToChannel", func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error {
			ch := make(chan int, 4)
			go func() {
				for range ch {
				}
			}()
			return sinks.ToChannel(ctx, pub, ch, opts...)
		}},
		{"All", func(ctx context.Context, pub flow.Publisher[int], opts ...sinks.Option) error {
			for _, err := range sinks.All(ctx, pub, opts...) {
				if err != nil {
					return err
				}
			}
			return nil
		}},
	} {
		for _, p := range []struct {
			name string
			opts []sinks.Option
		}{
			{"default", nil},
			{"prefetch=1", []sinks.Option{sinks.Prefetch(1)}},
		} {
			t.Run(sk.name+"/"+p.name, func(t *testing.T) {
				flowtest.VerifySubscriber(t, flowtest.SubscriberConfig[int]{
					Sink: func(ctx context.Context, pub flow.Publisher[int]) error {
						return sk.sink(ctx, pub, p.opts...)
					},
					Element: element,
				})
			})
		}
	}
}
