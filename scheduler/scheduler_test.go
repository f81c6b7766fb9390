package scheduler_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/scheduler"
)

func TestWorkerRunsTasksSeriallyInOrder(t *testing.T) {
	for _, n := range []int{1, 2, 4} {
		p := scheduler.NewPool(n)
		t.Cleanup(func() { p.Close() })
		w := p.Worker()
		const producers, perProducer = 4, 2000
		var (
			running atomic.Int32
			overlap atomic.Bool
			got     [producers][]int // written by tasks only, which are serial
			wg      sync.WaitGroup
			done    sync.WaitGroup
		)
		done.Add(producers * perProducer)
		for g := range producers {
			wg.Go(func() {
				for i := range perProducer {
					err := w.Schedule(func() {
						if running.Add(1) != 1 {
							overlap.Store(true)
						}
						got[g] = append(got[g], i)
						running.Add(-1)
						done.Done()
					})
					if err != nil {
						t.Errorf("Schedule: %v", err)
						done.Done()
					}
				}
			})
		}
		wg.Wait()
		done.Wait()
		if overlap.Load() {
			t.Errorf("pool of %d: two tasks of one worker overlapped", n)
		}
		want := make([]int, perProducer)
		for i := range want {
			want[i] = i
		}
		for g := range producers {
			if diff := cmp.Diff(want, got[g]); diff != "" {
				t.Errorf("pool of %d, producer %d: tasks out of order (-want +got)\n%s", n, g, diff)
			}
		}
	}
}

func TestTaskScheduledFromATaskRunsAfterIt(t *testing.T) {
	p := scheduler.NewSingle()
	t.Cleanup(func() { p.Close() })
	w := p.Worker()
	var got []string
	done := make(chan struct{})
	w.Schedule(func() {
		got = append(got, "outer start")
		w.Schedule(func() { got = append(got, "inner"); close(done) })
		got = append(got, "outer end")
	})
	<-done
	if diff := cmp.Diff([]string{"outer start", "outer end", "inner"}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

func TestPoolHandsOutWorkersRoundRobin(t *testing.T) {
	p := scheduler.NewPool(3)
	t.Cleanup(func() { p.Close() })
	ws := make([]scheduler.Worker, 7)
	for i := range ws {
		ws[i] = p.Worker()
	}
	var same []bool
	for i := range ws {
		same = append(same, ws[i] == ws[(i+3)%len(ws)])
	}
	// Worker i and i+3 are the same goroutine, except across the wrap.
	want := []bool{true, true, true, true, false, false, false}
	if diff := cmp.Diff(want, same); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if ws[0] == ws[1] || ws[1] == ws[2] || ws[0] == ws[2] {
		t.Error("consecutive Workers share a goroutine")
	}
	if got := p.Size(); got != 3 {
		t.Errorf("Size() = %d, want 3", got)
	}
	s := scheduler.NewSingle()
	t.Cleanup(func() { s.Close() })
	if s.Worker() != s.Worker() {
		t.Error("NewSingle handed out two different Workers")
	}
}

func TestCloseRunsAcceptedTasksThenRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := scheduler.NewPool(2)
		var ran atomic.Int64
		gate := make(chan struct{})
		w := p.Worker()
		w.Schedule(func() { <-gate })
		for range 100 {
			if err := p.Schedule(func() { ran.Add(1) }); err != nil {
				t.Fatal(err)
			}
		}
		closed := make(chan struct{})
		go func() { p.Close(); close(closed) }()
		synctest.Wait() // Close has begun and waits for the blocked task
		select {
		case <-closed:
			t.Fatal("Close returned while a task was still running")
		default:
		}
		var errs []error
		_, err := p.AfterFunc(time.Second, func() {})
		errs = append(errs, p.Schedule(func() { ran.Add(1000) }), w.Schedule(func() { ran.Add(1000) }), err)
		close(gate)
		<-closed
		errs = append(errs, p.Close())
		if got := ran.Load(); got != 100 {
			t.Errorf("tasks run = %d, want the 100 accepted before Close", got)
		}
		want := []error{scheduler.ErrClosed, scheduler.ErrClosed, scheduler.ErrClosed, nil}
		if diff := cmp.Diff(want, errs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
			t.Errorf("after Close (-want +got)\n%s", diff)
		}
	})
}

func TestAfterFunc(t *testing.T) {
	schedulers := map[string]func() scheduler.Scheduler{
		"single":    func() scheduler.Scheduler { return scheduler.NewSingle() },
		"pool":      func() scheduler.Scheduler { return scheduler.NewPool(2) },
		"immediate": func() scheduler.Scheduler { return scheduler.Immediate },
	}
	for name, newS := range schedulers {
		t.Run(name+"/runs after the delay", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newS()
				defer s.Close()
				start := time.Now()
				fired := make(chan time.Duration, 1)
				if _, err := s.AfterFunc(3*time.Second, func() { fired <- time.Since(start) }); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				if len(fired) != 0 {
					t.Fatal("task ran before its delay")
				}
				if got := <-fired; got != 3*time.Second {
					t.Errorf("task ran after %v, want 3s", got)
				}
			})
		})
		t.Run(name+"/stop cancels", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newS()
				defer s.Close()
				var ran atomic.Bool
				tm, err := s.AfterFunc(time.Second, func() { ran.Store(true) })
				if err != nil {
					t.Fatal(err)
				}
				got := []bool{tm.Stop(), tm.Stop()}
				time.Sleep(2 * time.Second)
				synctest.Wait()
				got = append(got, ran.Load())
				if diff := cmp.Diff([]bool{true, false, false}, got); diff != "" {
					t.Errorf("Stop, Stop, ran (-want +got)\n%s", diff)
				}
			})
		})
	}
	t.Run("stop after firing reports false", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := scheduler.NewSingle()
			defer s.Close()
			tm, _ := s.AfterFunc(time.Second, func() {})
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if tm.Stop() {
				t.Error("Stop after the task ran = true, want false")
			}
		})
	})
	t.Run("close stops pending timers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := scheduler.NewPool(2)
			var ran atomic.Int32
			for range 5 {
				if _, err := p.AfterFunc(time.Minute, func() { ran.Add(1) }); err != nil {
					t.Fatal(err)
				}
			}
			p.Close()
			time.Sleep(2 * time.Minute)
			synctest.Wait()
			if got := ran.Load(); got != 0 {
				t.Errorf("%d timer tasks ran after Close, want 0", got)
			}
		})
	})
}

func TestImmediateRunsOnTheCallersGoroutine(t *testing.T) {
	var got []string
	w := scheduler.Immediate.Worker()
	err := w.Schedule(func() {
		got = append(got, "task")
	})
	got = append(got, "after Schedule")
	errs := []error{err, scheduler.Immediate.Schedule(func() {}), scheduler.Immediate.Close(), scheduler.Immediate.Schedule(func() {})}
	if diff := cmp.Diff([]string{"task", "after Schedule"}, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: error %v, want nil (Immediate never closes)", i, err)
		}
	}
}

func TestConstructorAndNilTaskPanics(t *testing.T) {
	p := scheduler.NewSingle()
	t.Cleanup(func() { p.Close() })
	tests := map[string]struct {
		f    func()
		want string
	}{
		"NewPool(0)":    {func() { scheduler.NewPool(0) }, "sluice: scheduler.NewPool: n <= 0"},
		"Schedule(nil)": {func() { p.Schedule(nil) }, "sluice: scheduler: Schedule: nil task"},
		"AfterFunc nil": {func() { p.AfterFunc(time.Second, nil) }, "sluice: scheduler: AfterFunc: nil task"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if got := recover(); got != tt.want {
					t.Errorf("panic = %v, want %q", got, tt.want)
				}
			}()
			tt.f()
		})
	}
}

func TestPoolUnderSynctest(t *testing.T) {
	// A pool created in a bubble parks durably, so synctest.Wait returns
	// once every task scheduled so far has run.
	synctest.Test(t, func(t *testing.T) {
		p := scheduler.NewPool(2)
		defer p.Close()
		var n atomic.Int32
		for range 10 {
			p.Schedule(func() { n.Add(1) })
		}
		synctest.Wait()
		if got := n.Load(); got != 10 {
			t.Errorf("ran %d tasks, want 10", got)
		}
	})
}
