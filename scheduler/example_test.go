package scheduler_test

import (
	"fmt"
	"sync"

	"github.com/sluicego/sluice/scheduler"
)

// A Worker runs its tasks one at a time, in order, on a goroutine the
// pool owns. Close is mandatory: it ends the pool's goroutines.
func ExampleNewPool() {
	pool := scheduler.NewPool(2)
	defer pool.Close()

	w := pool.Worker() // pin a sequence of tasks to one goroutine
	var wg sync.WaitGroup
	var log []int // touched only by w's tasks, which never overlap
	for i := range 3 {
		wg.Add(1)
		w.Schedule(func() {
			defer wg.Done()
			log = append(log, i)
		})
	}
	wg.Wait()
	fmt.Println(log)
	// Output: [0 1 2]
}

func ExampleErrClosed() {
	single := scheduler.NewSingle()
	single.Close()
	err := single.Schedule(func() {})
	fmt.Println(err, err == scheduler.ErrClosed)
	// Output: sluice: scheduler closed true
}
