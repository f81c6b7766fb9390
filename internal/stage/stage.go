// Package stage holds the configuration and naming that every sluice stage
// shares. Public packages wrap it in their own Option types.
package stage

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/sluicego/sluice/flow"
)

// Config is the configuration common to stages. The zero value means
// "derive the name, no drop hook, default prefetch".
type Config struct {
	// Name is the stage name given with a Name option; empty means derived.
	Name string
	// OnDrop is a func(T, flow.DropReason) for the stage's item type T, or nil.
	OnDrop any
	// Prefetch is the number of items requested ahead; 0 means the default.
	Prefetch int
	// Concurrency is the number of inner sources or calls in flight; 0
	// means the stage's default.
	Concurrency int
	// Ordered asks a concurrent stage to keep the input order.
	Ordered bool
}

var (
	mu     sync.Mutex
	counts = map[string]int{}
)

// DeriveName returns kind#N, where N counts the stages of that kind built
// in this process, starting at 1. It is called once per stage
// construction, never per item.
func DeriveName(kind string) string {
	mu.Lock()
	defer mu.Unlock()
	counts[kind]++
	return kind + "#" + strconv.Itoa(counts[kind])
}

// NameOr returns c.Name, or a derived name for kind when none was given.
func (c *Config) NameOr(kind string) string {
	if c.Name != "" {
		return c.Name
	}
	return DeriveName(kind)
}

// DropHook returns c.OnDrop as a func(T, flow.DropReason), or nil when no
// hook was given. A hook for another item type is a programmer error and
// panics with a sluice: message naming the stage.
func DropHook[T any](c *Config, stageName string) func(T, flow.DropReason) {
	if c.OnDrop == nil {
		return nil
	}
	h, ok := c.OnDrop.(func(T, flow.DropReason))
	if !ok {
		var zero T
		panic(fmt.Sprintf("sluice: %s: OnDrop hook is %T, want func(%T, flow.DropReason)", stageName, c.OnDrop, zero))
	}
	return h
}

// Build applies opts, in order, to a zero Config and fixes the stage's
// name, for the Option type O of a public package (whose unexported apply
// method is passed as apply). A nil option panics with a sluice: message
// naming kind.
func Build[O comparable](kind string, opts []O, apply func(O, *Config)) (Config, string) {
	var c Config
	var none O
	for _, o := range opts {
		if o == none {
			panic("sluice: " + kind + ": nil Option")
		}
		apply(o, &c)
	}
	return c, c.NameOr(kind)
}

// SetName returns the setter behind every package's Name option. An empty
// name panics.
func SetName(name string) func(*Config) {
	if name == "" {
		panic("sluice: Name: empty name")
	}
	return func(c *Config) { c.Name = name }
}

// SetDropHook returns the setter behind every package's OnDrop option. A
// nil hook panics.
func SetDropHook[T any](hook func(item T, reason flow.DropReason)) func(*Config) {
	if hook == nil {
		panic("sluice: OnDrop: nil hook")
	}
	return func(c *Config) { c.OnDrop = hook }
}

// SyncEmitter is implemented by Subscriptions that may deliver signals
// only from inside a call to their Request, on the goroutine making it,
// and before that call returns (Range and Slice do). A subscriber that
// makes every Request from one goroutine at a time, such as the drain
// loop of an async boundary, then knows that every OnNext it receives
// runs on its own goroutine inside its own Request, and can publish the
// items once per Request instead of once per item.
//
// EmitsInRequest reports whether the property holds; a wrapper (the
// monitor's observer) answers for the Subscription it wraps.
type SyncEmitter interface{ EmitsInRequest() bool }

// EmitsInRequest reports whether s is a SyncEmitter whose property holds.
func EmitsInRequest(s flow.Subscription) bool {
	e, ok := s.(SyncEmitter)
	return ok && e.EmitsInRequest()
}

// MaxBatch is the most items a caller passes in one
// [BatchSubscriber.OnNextBatch] call, so that an implementation's scratch
// space stays bounded.
const MaxBatch = 256

// BatchSubscriber is implemented by the Subscribers of sluice's own
// stages that can take a run of items in one call, which saves the
// per-item interface call and panic guard between stages on the hot path
// of a chain (an async boundary's drain loop handing its queue to Map,
// Map to Filter, Filter to the next boundary's queue, to a sink).
//
// OnNextBatch(items) stands for len(items) OnNext calls, in order, and
// obeys the same rules: it is serial with the other signals, and the
// caller must hold that much outstanding demand. items is not empty and
// holds at most MaxBatch items; it is valid only during the call and
// belongs to the caller, so the callee neither modifies nor retains it.
// An implementation delivers what it cannot take as a batch (when it is
// monitored, or its own downstream takes single items) one item at a
// time, so a caller never needs a fallback of its own.
//
// The interface is internal: user Subscribers receive single OnNext
// calls, and a stage uses batches only when its downstream implements it.
type BatchSubscriber[T any] interface {
	flow.Subscriber[T]
	OnNextBatch(items []T)
}

// Batcher returns s as a BatchSubscriber, or nil when it is not one.
func Batcher[T any](s flow.Subscriber[T]) BatchSubscriber[T] {
	b, _ := s.(BatchSubscriber[T])
	return b
}
