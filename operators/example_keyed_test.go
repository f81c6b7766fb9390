package operators_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// Even and odd numbers go to two outputs, each consumed by its own sink.
// The stage starts once both are subscribed.
func ExamplePartition() {
	outs := operators.Partition(sources.Range(0, 10), 2, func(v int) int { return v % 2 })
	results := make([][]int, len(outs))
	var wg sync.WaitGroup
	for i, out := range outs {
		wg.Go(func() { results[i], _ = sinks.Collect(context.Background(), out) })
	}
	wg.Wait()
	fmt.Println("even:", results[0])
	fmt.Println("odd: ", results[1])
	// Output:
	// even: [0 2 4 6 8]
	// odd:  [1 3 5 7 9]
}

// Words grouped by their first letter. Every group must be subscribed and
// consumed: a group nobody reads stops the whole GroupBy once its queue
// is full.
func ExampleGroupBy() {
	words := sources.Slice([]string{"apple", "banana", "avocado", "cherry", "blueberry", "apricot"})
	groups := operators.GroupBy(words, func(w string) byte { return w[0] }, 16)
	byLetter := map[byte][]string{}
	_ = sinks.ForEach(context.Background(), groups, func(g *operators.Group[byte, string]) error {
		g.Subscribe(flow.SubscriberFuncs[string]{
			Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
			Next:      func(w string) { byLetter[g.Key()] = append(byLetter[g.Key()], w) },
		})
		return nil
	})
	var letters []string
	for l := range byLetter {
		letters = append(letters, string(l))
	}
	sort.Strings(letters)
	for _, l := range letters {
		fmt.Println(l, strings.Join(byLetter[l[0]], " "))
	}
	// Output:
	// a apple avocado apricot
	// b banana blueberry
	// c cherry
}

// A noisy tenant's burst does not delay the others by more than one item
// per round: requests queued before the consumer was ready come out
// round-robin.
func ExampleFairByKey() {
	reqs := sources.Slice([]string{"noisy:1", "noisy:2", "noisy:3", "noisy:4", "calm:1", "quiet:1", "calm:2"})
	tenant := func(r string) string { return r[:strings.IndexByte(r, ':')] }
	fair := operators.FairByKey(reqs, tenant, 8)
	var sub flow.Subscription
	fair.Subscribe(flow.SubscriberFuncs[string]{
		Subscribe: func(s flow.Subscription) { sub = s }, // not ready yet
		Next:      func(r string) { fmt.Println(r) },
	})
	sub.Request(flow.Unbounded)
	// Output:
	// noisy:1
	// calm:1
	// quiet:1
	// noisy:2
	// calm:2
	// noisy:3
	// noisy:4
}

// A group nobody reads no longer holds back the others: under DropNewest
// its queue keeps its first items and drops the rest, each passed to
// OnDrop, while the other group and the source keep flowing.
func ExampleGroupOverflow() {
	parity := func(v int) string {
		if v%2 == 0 {
			return "even"
		}
		return "odd"
	}
	var dropped []string
	groups := operators.GroupBy(sources.Range(0, 10), parity, 2,
		operators.Prefetch(2), operators.GroupOverflow(flow.DropNewest),
		operators.OnDrop(func(v int, r flow.DropReason) { dropped = append(dropped, fmt.Sprint(v, " ", r)) }))
	var odd []int
	_ = sinks.ForEach(context.Background(), groups, func(g *operators.Group[string, int]) error {
		if g.Key() == "odd" { // the "even" group is never subscribed
			g.Subscribe(flow.SubscriberFuncs[int]{
				Subscribe: func(s flow.Subscription) { s.Request(flow.Unbounded) },
				Next:      func(v int) { odd = append(odd, v) },
			})
		}
		return nil
	})
	fmt.Println("odd:", odd)
	fmt.Println("dropped:", strings.Join(dropped, ", "))
	// Output:
	// odd: [1 3 5 7 9]
	// dropped: 4 newest, 6 newest, 8 newest
}

// With EagerCancel, the first output to cancel ends the whole Partition:
// once Take has its three even numbers, upstream is cancelled and the odd
// output, which has requested nothing yet, completes at once; the items
// queued for it are dropped.
func ExampleEagerCancel() {
	var dropped []int
	outs := operators.Partition(sources.Range(0, 100), 2, func(v int) int { return v % 2 },
		operators.EagerCancel(),
		operators.OnDrop(func(v int, _ flow.DropReason) { dropped = append(dropped, v) }))
	outs[1].Subscribe(flow.SubscriberFuncs[int]{ // not ready: requests nothing
		Complete: func() { fmt.Println("odd: complete") },
	})
	even, _ := sinks.Collect(context.Background(), operators.Take(outs[0], 3))
	fmt.Println("even:", even)
	fmt.Println("dropped:", dropped)
	// Output:
	// odd: complete
	// even: [0 2 4]
	// dropped: [1 3]
}
