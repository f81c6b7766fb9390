package sources_test

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/sluicego/sluice/flow"
)

// recorder is a Subscriber that logs every signal it receives as a string
// ("OnSubscribe", "OnNext(3)", "OnError(msg)", "OnComplete") and lets a
// test script its requests through hooks. It reports signals that overlap
// (rule 1.3) and signals after a terminal one (rule 1.7) as test errors.
// Hooks run without the lock held, so they may call Request and Cancel.
type recorder[T any] struct {
	t           testing.TB
	onSubscribe func(r *recorder[T])
	onNext      func(r *recorder[T], i int, item T) // i counts OnNext calls from 0

	sub      flow.Subscription
	inSignal atomic.Int32
	nexts    int // touched only inside serial signals
	done     chan struct{}

	mu       sync.Mutex
	log      []string
	items    []T
	err      error
	terminal bool
}

func newRecorder[T any](t testing.TB) *recorder[T] {
	return &recorder[T]{t: t, done: make(chan struct{})}
}

func (r *recorder[T]) enter(name string) {
	if r.inSignal.Add(1) != 1 {
		r.t.Errorf("%s overlaps another signal (rule 1.3)", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.terminal {
		r.t.Errorf("%s after a terminal signal (rule 1.7)", name)
	}
}

func (r *recorder[T]) leave() { r.inSignal.Add(-1) }

func (r *recorder[T]) append(entry string) {
	r.mu.Lock()
	r.log = append(r.log, entry)
	r.mu.Unlock()
}

func (r *recorder[T]) OnSubscribe(s flow.Subscription) {
	r.enter("OnSubscribe")
	r.sub = s
	r.append("OnSubscribe")
	r.leave()
	if r.onSubscribe != nil {
		r.onSubscribe(r)
	}
}

func (r *recorder[T]) OnNext(item T) {
	r.enter("OnNext")
	r.mu.Lock()
	r.log = append(r.log, fmt.Sprintf("OnNext(%v)", item))
	r.items = append(r.items, item)
	r.mu.Unlock()
	i := r.nexts
	r.nexts++
	r.leave()
	if r.onNext != nil {
		r.onNext(r, i, item)
	}
}

func (r *recorder[T]) OnError(err error) {
	r.enter("OnError")
	r.mu.Lock()
	r.log = append(r.log, "OnError("+err.Error()+")")
	r.err = err
	r.terminal = true
	r.mu.Unlock()
	close(r.done)
	r.leave()
}

func (r *recorder[T]) OnComplete() {
	r.enter("OnComplete")
	r.mu.Lock()
	r.log = append(r.log, "OnComplete")
	r.terminal = true
	r.mu.Unlock()
	close(r.done)
	r.leave()
}

// Log returns a copy of the signals received so far.
func (r *recorder[T]) Log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

// Items returns a copy of the items received so far.
func (r *recorder[T]) Items() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// Err returns the error received, if any.
func (r *recorder[T]) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Terminated reports whether OnError or OnComplete was received.
func (r *recorder[T]) Terminated() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terminal
}

// requestEach returns an onNext hook that requests n after every item.
func requestEach[T any](n int64) func(*recorder[T], int, T) {
	return func(r *recorder[T], _ int, _ T) { r.sub.Request(n) }
}

// requestFirst returns an onSubscribe hook that requests n.
func requestFirst[T any](n int64) func(*recorder[T]) {
	return func(r *recorder[T]) { r.sub.Request(n) }
}

// logOf builds the expected log: OnSubscribe, OnNext(x) for each x, then
// the given terminal entries.
func logOf[T any](items []T, terminal ...string) []string {
	log := []string{"OnSubscribe"}
	for _, x := range items {
		log = append(log, fmt.Sprintf("OnNext(%v)", x))
	}
	return append(log, terminal...)
}

// ints returns start, start+1, …, start+n-1.
func ints(start, n int) []int {
	xs := make([]int, n)
	for i := range xs {
		xs[i] = start + i
	}
	return xs
}

// badRequest is the log entry for OnError after Request(n).
func badRequest(n int64) string {
	return "OnError(" + flow.NonPositiveRequestError(n).Error() + ")"
}

// goid returns the current goroutine's id, parsed from its stack header.
// Tests use it to tell which goroutine ran a piece of code.
func goid() int64 {
	var buf [64]byte
	s := string(buf[:runtime.Stack(buf[:], false)])
	s = strings.TrimPrefix(s, "goroutine ")
	id, err := strconv.ParseInt(s[:strings.IndexByte(s, ' ')], 10, 64)
	if err != nil {
		panic(err)
	}
	return id
}

// mustPanic returns the value f panicked with, or fails the test.
func mustPanic(t *testing.T, f func()) (v any) {
	t.Helper()
	defer func() { v = recover() }()
	f()
	t.Fatal("did not panic")
	return nil
}
