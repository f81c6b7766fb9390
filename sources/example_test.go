package sources_test

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// printAll subscribes to pub, requests everything, and prints what
// arrives. Real programs use the sinks package instead.
func printAll[T any](pub flow.Publisher[T]) {
	pub.Subscribe(flow.SubscriberFuncs[T]{
		Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
		Next:      func(item T) { fmt.Println(item) },
		Error:     func(err error) { fmt.Println("error:", err) },
		Complete:  func() { fmt.Println("done") },
	})
}

func ExampleRange() {
	printAll(sources.Range(1, 3))
	// Output:
	// 1
	// 2
	// 3
	// done
}

// The subscriber asks for two items at a time: Range emits two, waits for
// the next Request, and completes right after the last item.
func ExampleRange_backpressure() {
	var sub flow.Subscription
	sources.Range(0, 5).Subscribe(flow.SubscriberFuncs[int]{
		Subscribe: func(s flow.Subscription) { sub = s },
		Next:      func(i int) { fmt.Println("item", i) },
		Complete:  func() { fmt.Println("done") },
	})
	for range 3 {
		fmt.Println("request 2")
		sub.Request(2)
	}
	// Output:
	// request 2
	// item 0
	// item 1
	// request 2
	// item 2
	// item 3
	// request 2
	// item 4
	// done
}

func ExampleSlice() {
	printAll(sources.Slice([]string{"alpha", "beta"}))
	// Output:
	// alpha
	// beta
	// done
}

func ExampleJust() {
	printAll(sources.Just(3.5, 7.25))
	// Output:
	// 3.5
	// 7.25
	// done
}

// FromSeq adapts any iterator; here, the lines of a reader. The subscriber
// cancels after the second line, which stops the iterator.
func ExampleFromSeq() {
	lines := func(yield func(string) bool) {
		sc := bufio.NewScanner(strings.NewReader("one\ntwo\nthree\n"))
		defer fmt.Println("iterator stopped")
		for sc.Scan() {
			if !yield(sc.Text()) {
				return
			}
		}
	}
	var sub flow.Subscription
	sources.FromSeq(lines).Subscribe(flow.SubscriberFuncs[string]{
		Subscribe: func(s flow.Subscription) { sub = s; s.Request(1) },
		Next: func(line string) {
			fmt.Println(line)
			if line == "two" {
				sub.Cancel()
				return
			}
			sub.Request(1)
		},
		Complete: func() { fmt.Println("done") },
	})
	// Output:
	// one
	// two
	// iterator stopped
}

// Generate computes each item from a state: here the powers of two below
// 100. Returning sources.Stop ends the stream.
func ExampleGenerate() {
	powers := sources.Generate(
		func() int { return 1 },
		func(x int) (int, int, error) {
			if x >= 100 {
				return 0, x, sources.Stop
			}
			return x, 2 * x, nil
		})
	printAll(powers)
	// Output:
	// 1
	// 2
	// 4
	// 8
	// 16
	// 32
	// 64
	// done
}

// FromChannel receives on demand and completes when the channel is
// closed. The Request blocks the calling goroutine while it waits for
// values.
func ExampleFromChannel() {
	ch := make(chan string)
	go func() {
		defer close(ch)
		for _, w := range []string{"red", "green", "blue"} {
			ch <- w
		}
	}()
	printAll(sources.FromChannel(ch))
	// Output:
	// red
	// green
	// blue
	// done
}

func ExampleError() {
	printAll(sources.Error[int](fmt.Errorf("no data")))
	// Output:
	// error: no data
}

func ExampleEmpty() {
	printAll(sources.Empty[int]())
	// Output:
	// done
}
