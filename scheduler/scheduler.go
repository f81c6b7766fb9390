// Package scheduler decides where the work of asynchronous stages runs.
//
// A [Scheduler] hands out [Worker]s. A Worker runs the tasks given to it
// one at a time, in the order they were scheduled, so a stage that pins
// its drain loop to one Worker never runs it on two goroutines at once.
//
// # Schedulers
//
//   - [Immediate] runs every task at once, on the goroutine that schedules
//     it. It owns no goroutine.
//   - [NewSingle] owns one goroutine; every Worker it hands out is that
//     goroutine.
//   - [NewPool] owns n goroutines; its Workers are handed out round robin,
//     so n stages pinned to a pool of n run in parallel, each serially.
//
// # Tasks and wake-ups
//
// No goroutine is started per task. Each goroutine of a Pool owns a queue
// (a mutex and a slice that is reused): Schedule appends the task and
// wakes the goroutine only if it was parked, and the goroutine takes the
// whole queue at once and runs it before it looks at the queue again. A
// burst of tasks costs one wake-up. A goroutine that finds its queue
// empty yields to the Go scheduler a few dozen times (a few microseconds
// when other goroutines are runnable, less when none is) before it parks,
// so the stages of a busy pipeline hand work to each other without the
// latency of parking and waking a thread (the Go runtime's own idle Ps
// spin for the same reason). A task must not block waiting for
// something that only another task of the same Worker can provide, and
// sluice stages never block a worker waiting for demand: they return and
// are scheduled again when demand arrives.
//
// A task must not panic: as in a goroutine of its own, a panic crashes
// the program. sluice stages recover the panics of user code themselves
// and end their stream with a *flow.PanicError.
//
// # Timers
//
// [Worker.AfterFunc] runs a task on the Worker after a delay, for
// time-based operators; [Timer.Stop] cancels it. Timers use package time,
// so they run on the fake clock of testing/synctest when the scheduler is
// created inside the bubble.
//
// # Closing
//
// Close is mandatory for [NewSingle] and [NewPool]: until it is called
// their goroutines stay parked. Close stops pending timers, lets each
// goroutine finish the tasks already accepted, and waits until every
// goroutine has returned. After Close, Schedule and AfterFunc return
// [ErrClosed], and a stage that fails to schedule its work ends its
// stream with an error that matches ErrClosed.
package scheduler

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// ErrClosed is returned by Schedule and AfterFunc of a scheduler, or of
// one of its Workers, after its Close has been called.
var ErrClosed = errors.New("sluice: scheduler closed")

// Worker runs tasks serially, in the order they were scheduled: a task
// never overlaps another task of the same Worker. Its methods are
// goroutine-safe and may be called from inside a task.
type Worker interface {
	// Schedule queues task to run on the Worker. It never blocks and never
	// runs the task itself, except on Immediate. It returns ErrClosed,
	// without queueing, once the scheduler is closed.
	Schedule(task func()) error
	// AfterFunc runs task on the Worker once d has elapsed, unless the
	// returned Timer is stopped first. A task whose time comes after the
	// scheduler was closed does not run.
	AfterFunc(d time.Duration, task func()) (*Timer, error)
}

// Scheduler hands out Workers and owns the goroutines they run on. Its
// methods are goroutine-safe.
type Scheduler interface {
	// Worker returns a Worker of the scheduler. Consecutive calls spread
	// the Workers over the scheduler's goroutines.
	Worker() Worker
	// Schedule runs task on one of the scheduler's Workers, as
	// Worker().Schedule(task).
	Schedule(task func()) error
	// AfterFunc runs task on one of the scheduler's Workers after d, as
	// Worker().AfterFunc(d, task).
	AfterFunc(d time.Duration, task func()) (*Timer, error)
	// Close stops the scheduler: see the package documentation. It is
	// idempotent and returns nil. It must not be called from a task of the
	// same scheduler, which it would wait for.
	Close() error
}

// Timer is a task scheduled with AfterFunc.
type Timer struct {
	t     *time.Timer
	owner *timers // nil for Immediate
}

// Stop cancels the task. It reports whether it did so, that is false when
// the task has already been handed to its Worker or the Timer was stopped
// before. Stop is goroutine-safe.
func (t *Timer) Stop() bool {
	ok := t.t.Stop()
	if ok && t.owner != nil {
		t.owner.remove(t)
	}
	return ok
}

// timers is the set of a scheduler's pending timers, stopped by Close.
type timers struct {
	mu     sync.Mutex
	closed bool
	set    map[*Timer]struct{}
}

func (ts *timers) add(w Worker, d time.Duration, task func()) (*Timer, error) {
	tm := &Timer{owner: ts}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return nil, ErrClosed
	}
	if ts.set == nil {
		ts.set = make(map[*Timer]struct{})
	}
	ts.set[tm] = struct{}{}
	tm.t = time.AfterFunc(d, func() {
		ts.remove(tm)
		_ = w.Schedule(task) // ErrClosed: the scheduler is gone, so is the task
	})
	return tm, nil
}

func (ts *timers) remove(tm *Timer) {
	ts.mu.Lock()
	delete(ts.set, tm)
	ts.mu.Unlock()
}

func (ts *timers) close() {
	ts.mu.Lock()
	ts.closed = true
	set := ts.set
	ts.set = nil
	ts.mu.Unlock()
	for tm := range set {
		tm.t.Stop()
	}
}

// ---- Immediate ----

// Immediate runs each task on the goroutine that schedules it, before
// Schedule returns, and each timer task on the goroutine of package time
// that fires it (as time.AfterFunc does). It owns no goroutine; its Close
// does nothing, and it never returns ErrClosed.
//
// An async stage on Immediate is synchronous: it delivers on whichever
// goroutine signals it, which is useful in tests and to measure the cost
// of a boundary itself.
var Immediate Scheduler = immediate{}

type immediate struct{}

func (immediate) Worker() Worker             { return immediate{} }
func (immediate) Schedule(task func()) error { task(); return nil }
func (immediate) Close() error               { return nil }
func (immediate) AfterFunc(d time.Duration, task func()) (*Timer, error) {
	return &Timer{t: time.AfterFunc(d, task)}, nil
}

// ---- Pool ----

// Pool is a scheduler that owns a fixed number of goroutines, each of
// which runs the tasks of its Workers serially. Create it with [NewPool]
// or [NewSingle]; the zero value is not usable. Close is mandatory.
//
// Cost: Schedule takes the worker's mutex and appends to a reused slice;
// it wakes the goroutine (one channel send) only if the goroutine was
// parked on an empty queue, so a burst of tasks costs one wake-up.
type Pool struct {
	workers []*worker
	next    atomic.Uint32
	timers  timers
	closing sync.Once
	wg      sync.WaitGroup
}

// NewPool returns a Pool of n goroutines, started at once and parked
// until they have work. n <= 0 panics.
func NewPool(n int) *Pool {
	if n <= 0 {
		panic("sluice: scheduler.NewPool: n <= 0")
	}
	p := &Pool{workers: make([]*worker, n)}
	for i := range p.workers {
		w := &worker{pool: p, wake: make(chan struct{}, 1)}
		p.workers[i] = w
		p.wg.Add(1)
		go w.run(&p.wg)
	}
	return p
}

// NewSingle returns a Pool of one goroutine: every Worker it hands out is
// that goroutine, so all its tasks run serially.
func NewSingle() *Pool { return NewPool(1) }

// Size returns the number of goroutines of the pool.
func (p *Pool) Size() int { return len(p.workers) }

// Worker returns the pool's goroutines in turn, round robin.
func (p *Pool) Worker() Worker {
	if len(p.workers) == 1 {
		return p.workers[0]
	}
	return p.workers[(p.next.Add(1)-1)%uint32(len(p.workers))]
}

// Schedule runs task on the next Worker, round robin.
func (p *Pool) Schedule(task func()) error { return p.Worker().Schedule(task) }

// AfterFunc runs task on the next Worker after d.
func (p *Pool) AfterFunc(d time.Duration, task func()) (*Timer, error) {
	return p.Worker().AfterFunc(d, task)
}

// Close stops the pending timers, rejects new tasks with ErrClosed, lets
// every goroutine run the tasks it had already accepted, and returns once
// all of them have ended. It is idempotent and must not be called from a
// task of the pool.
func (p *Pool) Close() error {
	p.closing.Do(func() {
		p.timers.close()
		for _, w := range p.workers {
			w.close()
		}
	})
	p.wg.Wait()
	return nil
}

// worker is one goroutine of a Pool and its queue.
type worker struct {
	pool *Pool
	wake chan struct{} // capacity 1; a send means "look at the queue"

	mu     sync.Mutex
	queue  []func()
	parked bool // the goroutine found the queue empty and waits on wake
	closed bool

	spare []func() // the goroutine's: the previous batch, reused

	pending atomic.Bool // the queue is not empty; read without the lock while spinning
}

// spinTries is how many times an idle goroutine yields, watching its
// queue, before it parks. Each yield goes through the Go scheduler's
// global run queue and its lock, so spinning pays only while the work
// that follows a wake-up is small. On the async chain of bench/ (three
// PublishOn on three Singles, 2 cores): with item-by-item hand-over
// between stages 64 tries took the cost per item from about 50 ns to 30
// (16 gave 37); once stages passed runs of items (stage.BatchSubscriber)
// 64 tries cost 21–23 ns, 2 to 8 tries 14–17, and no spinning 19–21.
// ParallelMap is the same with 4 or 64.
const spinTries = 4

func (w *worker) Schedule(task func()) error {
	if task == nil {
		panic("sluice: scheduler: Schedule: nil task")
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.queue = append(w.queue, task)
	w.pending.Store(true)
	wake := w.parked
	w.parked = false
	w.mu.Unlock()
	if wake {
		w.wake <- struct{}{} // never blocks: one send per parking
	}
	return nil
}

func (w *worker) AfterFunc(d time.Duration, task func()) (*Timer, error) {
	if task == nil {
		panic("sluice: scheduler: AfterFunc: nil task")
	}
	return w.pool.timers.add(w, d, task)
}

func (w *worker) close() {
	w.mu.Lock()
	w.closed = true
	wake := w.parked
	w.parked = false
	w.mu.Unlock()
	if wake {
		w.wake <- struct{}{}
	}
}

// run is the goroutine's loop: take the whole queue, run it, repeat; park
// when the queue is empty; return when closed and empty.
func (w *worker) run(wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		for i := 0; i < spinTries && !w.pending.Load(); i++ {
			runtime.Gosched()
		}
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.parked = true
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		batch := w.queue
		w.queue = w.spare[:0]
		w.pending.Store(false)
		w.mu.Unlock()
		for i, task := range batch {
			batch[i] = nil // release the task's references before it runs
			task()
		}
		w.spare = batch[:0]
	}
}
